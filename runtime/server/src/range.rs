//! HTTP `Range` requests on bundle downloads (RFC 9110 §14): one byte range, so an
//! agent can resume an interrupted download where it stopped.

/// What to send for a `Range` header on a resource of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// The whole resource (no header, or one this server ignores): 200.
    Full,
    /// Bytes `start..=end`: 206 with `Content-Range`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A syntactically valid range that starts past the end: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header. Supported: `bytes=N-`, `bytes=N-M` and `bytes=-S`
/// (the last `S` bytes). Anything else (another unit, several ranges, bad syntax) is
/// ignored, as RFC 9110 allows, and the whole resource is sent.
pub(crate) fn parse(header: Option<&str>, len: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match num(suffix) {
            None => RangeSpec::Full,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if len == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (start, "") => match num(start) {
            None => RangeSpec::Full,
            Some(s) if s >= len => RangeSpec::Unsatisfiable,
            Some(s) => RangeSpec::Partial {
                start: s,
                end: len - 1,
            },
        },
        (start, end) => match (num(start), num(end)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= len {
                    RangeSpec::Unsatisfiable
                } else {
                    RangeSpec::Partial {
                        start: s,
                        end: e.min(len - 1),
                    }
                }
            }
            _ => RangeSpec::Full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::RangeSpec::*;
    use super::*;

    #[test]
    fn single_ranges_are_honoured_and_clipped() {
        assert_eq!(parse(None, 100), Full);
        assert_eq!(
            parse(Some("bytes=10-"), 100),
            Partial { start: 10, end: 99 }
        );
        assert_eq!(parse(Some("bytes=0-0"), 100), Partial { start: 0, end: 0 });
        assert_eq!(
            parse(Some("bytes=90-200"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse(Some("bytes=-30"), 100),
            Partial { start: 70, end: 99 }
        );
        assert_eq!(
            parse(Some("bytes=-300"), 100),
            Partial { start: 0, end: 99 }
        );
    }

    #[test]
    fn past_the_end_is_unsatisfiable_and_the_rest_is_ignored() {
        assert_eq!(parse(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse(Some("bytes=100-120"), 100), Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Unsatisfiable);
        for ignored in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-",
            "bytes=-",
            "bytes=1",
            "bytes=+1-2",
        ] {
            assert_eq!(parse(Some(ignored), 100), Full, "{ignored}");
        }
    }
}
