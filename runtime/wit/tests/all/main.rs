//! tern-wit's tests: the world descriptions and device images.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

mod describe;
mod fuzz_seeds;
mod image;
mod world_file;
