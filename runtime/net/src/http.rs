//! The little of HTTP/1.1 the device needs to read the fleet server's answers: the
//! status and the headers that decide how to read the body. `httparse` (no_std, no
//! allocation) splits the head into status line and header lines; the checks that
//! decide whether this client can read the response are here.
//!
//! The server (hyper) always sends `Content-Length` (every body is complete before it
//! is sent), so the device reads bodies by length and refuses chunked ones rather than
//! carry a decoder.

/// What the client needs from a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Length` header, if sent.
    pub(crate) content_length: Option<u64>,
    /// The server will close the connection after this response (`Connection:
    /// close`, or HTTP/1.0).
    pub(crate) close: bool,
}

/// The most header lines read from one head (16 bytes of stack each); the fleet
/// server sends four or five.
const HEADERS_MAX: usize = 32;

const BAD_STATUS_LINE: &str = "the status line is not `HTTP/1.x NNN ...`";
const BAD_STATUS_CODE: &str = "the status line has no three-digit status code";

/// Parses a response head: the status line and the header lines, up to and with the
/// blank line that ends them, `\r\n` or `\n` line ends. The error says what is wrong,
/// for a person reading the device's log.
pub(crate) fn parse_response_head(head: &[u8]) -> Result<ResponseHead, &'static str> {
    // httparse skips empty lines before the status line; the server sends none.
    if !head.starts_with(b"HTTP/1.") {
        return Err(BAD_STATUS_LINE);
    }
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if response.code.is_none() => return Err(BAD_STATUS_LINE),
        Ok(httparse::Status::Partial) => return Err("the head does not end with a blank line"),
        Err(e) => {
            return Err(match e {
                httparse::Error::Version => BAD_STATUS_LINE,
                httparse::Error::Status => BAD_STATUS_CODE,
                httparse::Error::HeaderName => {
                    "a header line without a colon, or with a name that is not a token"
                }
                httparse::Error::HeaderValue => "a header value with control characters",
                httparse::Error::TooManyHeaders => "more than 32 header lines",
                httparse::Error::NewLine | httparse::Error::Token => "a malformed line",
            });
        }
    }
    let status = match response.code {
        Some(code @ 100..=999) => code,
        _ => return Err(BAD_STATUS_CODE),
    };
    let mut parsed = ResponseHead {
        status,
        content_length: None,
        // HTTP/1.0 closes unless asked not to; the device never asks.
        close: response.version == Some(0),
    };
    for header in response.headers.iter() {
        let (name, value) = (header.name, header.value.trim_ascii());
        if name.eq_ignore_ascii_case("content-length") {
            let length = parse_u64(value).ok_or("a Content-Length that is not a number")?;
            if parsed.content_length.is_some_and(|l| l != length) {
                return Err("two different Content-Length headers");
            }
            parsed.content_length = Some(length);
        } else if name.eq_ignore_ascii_case("connection") {
            parsed.close |= value.eq_ignore_ascii_case(b"close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
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
    use alloc::vec::Vec;

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
        // The same length twice is one length; a status line without a reason is fine.
        let twice = parse_response_head(
            b"HTTP/1.1 200\r\nContent-Length: 5\r\ncontent-length:  5 \r\n\r\n",
        );
        assert_eq!(
            twice.map(|h| (h.status, h.content_length)),
            Ok((200, Some(5)))
        );
    }

    #[test]
    fn knows_when_the_server_will_close() {
        let closing = parse_response_head(
            b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(closing.map(|h| (h.status, h.close)), Ok((401, true)));
        let keep = parse_response_head(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(keep.map(|h| h.close), Ok(false));
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
        let many: Vec<u8> = [&b"HTTP/1.1 200 OK\r\n"[..]]
            .into_iter()
            .chain(core::iter::repeat_n(&b"x-a: b\r\n"[..], 33))
            .chain([&b"\r\n"[..]])
            .flatten()
            .copied()
            .collect();
        let cases: [(&[u8], &str); 16] = [
            (b"", "status line"),
            (b"HTTP/1.1 200", "blank line"),
            (b"garbage\r\n\r\n", "status line"),
            (b"\r\nHTTP/1.1 200 OK\r\n\r\n", "status line"),
            (b"HTTP/2 200 OK\r\n\r\n", "status line"),
            (b"HTTP/1.x 200 OK\r\n\r\n", "status line"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "three-digit status code"),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", "three-digit status code"),
            (b"HTTP/1.1 099 OK\r\n\r\n", "three-digit status code"),
            (
                b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                "without a colon",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "blank line"),
            (&many, "more than 32 header lines"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
                "not a number",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
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
        let different = parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        );
        assert_eq!(different, Err("two different Content-Length headers"));
    }
}
