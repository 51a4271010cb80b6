//! Event-stream files (`events.jsonl`): an optional `{"init": {...}}` first line with
//! the component's config, then one `tern_core::Event` per line.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use tern_core::Event;

/// A parsed event file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFile {
    /// Config for `init`, in file order.
    pub config: Vec<(String, String)>,
    /// Events for `on-event`.
    pub events: Vec<Event>,
}

/// A line of an event file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for EventFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {}; expected {{\"init\":{{..}}}} (first line only), {{\"sample\":{{\"sensor\":..,\"milli\":..,\"at-ms\":..}}}}, {{\"frame\":\"<hex>\"}} or {{\"tick\":<ms>}}",
            self.line, self.reason
        )
    }
}

impl std::error::Error for EventFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitLine {
    init: serde_json::Map<String, serde_json::Value>,
}

/// An event file too long for a device's sensor feed ([`EventFile::to_device_feed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedTooLarge {
    /// The feed's length in bytes.
    pub len: usize,
}

impl fmt::Display for FeedTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the feed would be {} bytes; a device reads at most {} (use fewer events)",
            self.len,
            tern_core::feed::MAX_FEED_BYTES
        )
    }
}

impl std::error::Error for FeedTooLarge {}

impl EventFile {
    /// The file as a device sensor feed ([`tern_core::feed`]).
    pub fn to_feed(&self) -> Vec<u8> {
        tern_core::feed::encode(&self.config, &self.events)
    }

    /// The file as a sensor feed a device can read: at most
    /// [`tern_core::feed::MAX_FEED_BYTES`].
    pub fn to_device_feed(&self) -> Result<Vec<u8>, FeedTooLarge> {
        let bytes = self.to_feed();
        if bytes.len() > tern_core::feed::MAX_FEED_BYTES {
            return Err(FeedTooLarge { len: bytes.len() });
        }
        Ok(bytes)
    }

    /// Reads and parses the event file at `path`; the error names the file.
    pub fn read(path: &Path) -> Result<EventFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        EventFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of an event file. Blank lines are skipped.
    pub fn parse(text: &str) -> Result<EventFile, EventFileError> {
        let mut file = EventFile::default();
        let mut seen_any = false;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let err = |reason: String| EventFileError {
                line: line_no,
                reason,
            };
            if !seen_any {
                seen_any = true;
                if let Ok(init) = serde_json::from_str::<InitLine>(line) {
                    for (k, v) in init.init {
                        let v = match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        file.config.push((k, v));
                    }
                    continue;
                }
            }
            let event: Event =
                serde_json::from_str(line).map_err(|e| err(format!("not an event: {e}")))?;
            file.events.push(event);
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::Sample;

    #[test]
    fn parses_init_and_events() {
        let f = EventFile::parse(
            "{\"init\":{\"alpha\":\"0.5\",\"n\":3}}\n\n{\"sample\":{\"sensor\":\"t\",\"milli\":-5,\"at-ms\":7}}\n{\"frame\":\"0aff\"}\n{\"tick\":9}\n",
        )
        .unwrap();
        assert_eq!(
            f.config,
            vec![("alpha".into(), "0.5".into()), ("n".into(), "3".into())]
        );
        assert_eq!(
            f.events,
            vec![
                Event::Sample(Sample {
                    sensor: "t".into(),
                    milli: -5,
                    at_ms: 7
                }),
                Event::Frame(vec![0x0a, 0xff]),
                Event::Tick(9)
            ]
        );
    }

    #[test]
    fn rejects_bad_lines_with_line_numbers() {
        let e = EventFile::parse("{\"tick\":1}\n{\"frame\":\"abc\"}\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = EventFile::parse("{\"tick\":1}\n{\"init\":{}}\n").unwrap_err();
        assert_eq!(e.line, 2, "init is only allowed on the first line");
        let e = EventFile::parse("{\"wind\":3}").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().contains("expected"));
    }

    #[test]
    fn a_feed_too_long_for_a_device_is_refused() {
        let f = EventFile {
            config: Vec::new(),
            events: vec![Event::Frame(vec![0; 512]); 64],
        };
        assert!(f.to_feed().len() > tern_core::feed::MAX_FEED_BYTES);
        let e = f.to_device_feed().unwrap_err();
        assert_eq!(e.len, f.to_feed().len());
        assert!(e.to_string().contains("use fewer events"));
        assert!(EventFile::default().to_device_feed().is_ok());
    }
}
