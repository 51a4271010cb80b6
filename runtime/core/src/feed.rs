//! The sensor feed of a simulated device board: what its sensors read, and when.
//!
//! One format, written on the host (`tern feed`, the end-to-end test, the demo) and
//! read by the QEMU board's firmware from `tern-feed.bin`: the postcard encoding of
//! `(config, events)`, the component's `init` config and the events in delivery order.

use alloc::string::String;
use alloc::vec::Vec;

use crate::wit::Event;

/// Largest feed a device board reads: it loads the feed into RAM whole.
pub const MAX_FEED_BYTES: usize = 16 * 1024;

/// The `init` config and the events.
pub type Feed = (Vec<(String, String)>, Vec<Event>);

/// Encodes a feed.
pub fn encode(config: &[(String, String)], events: &[Event]) -> Vec<u8> {
    // Encoding owned strings and `Event`s into a Vec cannot fail.
    postcard::to_allocvec(&(config, events)).unwrap_or_default()
}

/// Decodes a feed; `None` if the bytes are not one.
pub fn decode(bytes: &[u8]) -> Option<Feed> {
    postcard::from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::Sample;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn what_is_encoded_decodes_and_garbage_does_not() {
        let config = vec![("alpha".to_string(), "0.25".to_string())];
        let events = vec![
            Event::Sample(Sample {
                sensor: "temp-0".into(),
                milli: -1500,
                at_ms: 7600,
            }),
            Event::Tick(5250),
            Event::Frame(vec![0x02, 0x01]),
        ];
        assert_eq!(decode(&encode(&config, &events)), Some((config, events)));
        assert_eq!(decode(b"not a feed"), None);
    }
}
