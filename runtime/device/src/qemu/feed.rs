//! The simulated sensor feed: what the board's sensors will read and when, loaded at
//! boot from a file on the QEMU host.
//!
//! `tern-feed.bin` in QEMU's working directory holds a [`tern_core::feed`]: the
//! component's `init` config and the events, in order (`tern feed` writes it from an
//! events `.jsonl` file). The
//! same events go to the server's Wasmtime in the end-to-end test and the demo, so the
//! two sets of results can be compared line by line.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use tern_core::Event;
use tern_core::feed::{self, MAX_FEED_BYTES};

use super::semihost::{HostFile, Mode};

/// The feed file, relative to QEMU's working directory.
pub const FEED_FILE: &core::ffi::CStr = c"tern-feed.bin";

/// The config and the events.
#[derive(Default)]
pub struct Feed {
    /// The component's `init` config.
    pub config: Vec<(String, String)>,
    /// The events, in delivery order.
    pub events: Vec<Event>,
}

/// Why the feed could not be used; the board then runs with no events.
#[derive(Debug, defmt::Format)]
pub enum FeedError {
    /// No feed file (fine: the components only get `init` and health checks).
    Missing,
    /// The file is larger than [`MAX_FEED_BYTES`].
    TooLarge(usize),
    /// The host could not read it.
    Read,
    /// Not a feed ([`tern_core::feed`]).
    Decode,
}

impl core::fmt::Display for FeedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FeedError::Missing => f.write_str("no feed file"),
            FeedError::TooLarge(len) => write!(
                f,
                "the feed is {len} bytes, over the {MAX_FEED_BYTES} this board reads; use fewer events"
            ),
            FeedError::Read => f.write_str("the host could not read the feed file"),
            FeedError::Decode => {
                f.write_str("not a sensor feed; write one with `tern feed EVENTS.jsonl`")
            }
        }
    }
}

impl Feed {
    /// Loads the feed file.
    pub fn load() -> Result<Feed, FeedError> {
        let mut f = HostFile::open(FEED_FILE, Mode::Read).map_err(|_| FeedError::Missing)?;
        let len = f.len().map_err(|_| FeedError::Read)?;
        if len > MAX_FEED_BYTES {
            return Err(FeedError::TooLarge(len));
        }
        let mut bytes = vec![0; len];
        f.read_at(0, &mut bytes).map_err(|_| FeedError::Read)?;
        let (config, events) = feed::decode(&bytes).ok_or(FeedError::Decode)?;
        Ok(Feed { config, events })
    }
}
