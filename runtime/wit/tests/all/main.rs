//! tern-wit's tests: the world descriptions, device images and types as text.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

mod describe;
mod fuzz_seeds;
mod image;
mod text;
mod world_file;
