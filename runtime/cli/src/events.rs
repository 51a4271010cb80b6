//! Event-stream files (`events.jsonl`): an optional `{"init": {...}}` first line with
//! the component's config, then one `tern_core::Event` per line.

use std::fmt;

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

impl EventFile {
    /// The file as a device sensor feed ([`tern_core::feed`]).
    pub fn to_feed(&self) -> Vec<u8> {
        tern_core::feed::encode(&self.config, &self.events)
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
}
