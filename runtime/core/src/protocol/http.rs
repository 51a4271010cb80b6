//! The little of HTTP/1.1 a device agent needs to read the fleet server's answers:
//! the status and the headers that decide how to read the body.
//!
//! The server (hyper) always sends `Content-Length` (every body is complete before it
//! is sent), so an agent on a small device reads bodies by length and refuses chunked
//! ones rather than carry a decoder. Used by the QEMU board's firmware; the gateway
//! uses hyper's client.

/// What an agent needs from a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The `Content-Length` header, if sent.
    pub content_length: Option<u64>,
    /// The server will close the connection after this response (`Connection:
    /// close`, or HTTP/1.0).
    pub close: bool,
}

/// Parses a response head: the status line and the header lines, up to (without or
/// with) the blank line that ends them, `\r\n` or `\n` line ends. The error says what
/// is wrong, for a person reading the device's log.
pub fn parse_response_head(head: &[u8]) -> Result<ResponseHead, &'static str> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    // "HTTP/1.1 200 OK": version, status, reason.
    let status_line = lines.next().unwrap_or_default();
    let Some(&[minor, b' ', s0, s1, s2, ref rest @ ..]) = status_line.strip_prefix(b"HTTP/1.")
    else {
        return Err("the status line is not `HTTP/1.x NNN ...`");
    };
    if !minor.is_ascii_digit() || !matches!(rest.first(), None | Some(b' ')) {
        return Err("the status line is not `HTTP/1.x NNN ...`");
    }
    let status = match parse_u64(&[s0, s1, s2]) {
        Some(n @ 100..=999) => n as u16,
        _ => return Err("the status code is not three digits"),
    };
    let mut parsed = ResponseHead {
        status,
        content_length: None,
        // HTTP/1.0 closes unless asked not to; an agent never asks.
        close: minor == b'0',
    };
    for line in lines.filter(|line| !line.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err("a header line without a colon");
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_u64(value).ok_or("a Content-Length that is not a number")?;
            if parsed.content_length.is_some_and(|l| l != length) {
                return Err("two different Content-Length headers");
            }
            parsed.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"connection") {
            parsed.close |= value.eq_ignore_ascii_case(b"close");
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err("a Transfer-Encoding (chunked) body, which this client does not read");
        }
    }
    Ok(parsed)
}

/// A decimal number of ASCII digits only, without overflow.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let digit = d.checked_sub(b'0').filter(|&d| d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn reads_what_the_fleet_server_sends() {
        let head = b"HTTP/1.1 206 Partial Content\r\ncontent-type: application/octet-stream\r\n\
                     content-length: 83527\r\ncontent-range: bytes 41763-125289/125290\r\n\
                     date: Wed, 25 Nov 2026 05:00:00 GMT\r\n\r\n";
        assert_eq!(
            parse_response_head(head),
            Ok(ResponseHead {
                status: 206,
                content_length: Some(83527),
                close: false,
            })
        );
    }

    #[test]
    fn knows_when_the_server_will_close() {
        let closing = parse_response_head(
            b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(closing.map(|h| (h.status, h.close)), Ok((401, true)));
        let old = parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(old.map(|h| h.close), Ok(true));
        let bare_lf = parse_response_head(b"HTTP/1.1 204 No Content\n\n");
        assert_eq!(
            bare_lf,
            Ok(ResponseHead {
                status: 204,
                content_length: None,
                close: false
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_why() {
        let cases: [(&[u8], &str); 10] = [
            (b"", "status line"),
            (b"garbage\r\n\r\n", "status line"),
            (b"HTTP/2 200 OK\r\n\r\n", "status line"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "status line"),
            (b"HTTP/1.x 200 OK\r\n\r\n", "status line"),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", "three digits"),
            (
                b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                "without a colon",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
                "not a number",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                "not a number",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "chunked",
            ),
        ];
        for (head, why) in cases {
            let err = parse_response_head(head).expect_err(why);
            assert!(
                err.contains(why),
                "{:?}: {err}",
                String::from_utf8_lossy(head)
            );
        }
        let twice = parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        );
        assert_eq!(twice, Err("two different Content-Length headers"));
    }
}
