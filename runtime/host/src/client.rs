//! HTTP client of the fleet server, for the gateway agent and the admin commands:
//! postcard check-ins, resumable `Range` downloads, and the admin API
//! (`docs/protocol.md`) as typed calls: [`Client::publish`], [`Client::assign`],
//! [`Client::provision`], [`Client::devices`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

/// A failed call: what was asked, and why it failed.
#[derive(Debug)]
pub struct ClientError {
    /// Request, such as `POST /device/v1/check-in`.
    pub what: String,
    /// Why.
    pub reason: String,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{}: HTTP {s}: {}", self.what, self.reason),
            None => write!(f, "{}: {}", self.what, self.reason),
        }
    }
}

impl std::error::Error for ClientError {}

/// A server address (`http://127.0.0.1:8080` or `127.0.0.1:8080`) and a bearer token.
#[derive(Clone, Debug)]
pub struct Client {
    authority: String,
    token: String,
}

/// A piece of a streamed answer ([`Client::exchange`]).
#[derive(Clone, Copy, Debug)]
pub enum Piece<'a> {
    /// The status code, first.
    Status(u16),
    /// The next bytes of the body.
    Data(&'a [u8]),
}

/// A response: status and body.
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// `Content-Range`, if any.
    pub content_range: Option<String>,
    /// Body bytes.
    pub body: Bytes,
}

impl Client {
    /// A client for `server` that sends `token`.
    pub fn new(server: &str, token: &str) -> Result<Client, String> {
        let authority = server
            .strip_prefix("http://")
            .unwrap_or(server)
            .trim_end_matches('/')
            .to_string();
        if authority.is_empty() || authority.contains('/') || server.starts_with("https://") {
            return Err(format!(
                "server `{server}`: expected http://HOST:PORT (TLS terminates in front of tern serve)"
            ));
        }
        Ok(Client {
            authority,
            token: token.to_string(),
        })
    }

    /// Sends one request on a fresh connection and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        range_from: Option<u64>,
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        let what = format!("{method} {path}");
        let resp = self
            .request(method, path, content_type, range_from, body)
            .await?;
        let err = |reason: String| ClientError {
            what: what.clone(),
            reason,
            status: None,
        };
        let status = resp.status();
        let content_range = resp
            .headers()
            .get(hyper::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| err(format!("connection dropped while reading the answer: {e}")))?
            .to_bytes();
        if !(status.is_success()) {
            return Err(ClientError {
                what,
                reason: String::from_utf8_lossy(&body).trim().to_string(),
                status: Some(status.as_u16()),
            });
        }
        Ok(Response {
            status,
            content_range,
            body,
        })
    }

    /// Sends one device request on a fresh connection and streams the answer to
    /// `sink`: first [`Piece::Status`], then each [`Piece::Data`] as it arrives, so a
    /// dropped connection keeps what was received. `sink` returns `false` to stop
    /// reading (the connection is dropped). An error means the request could not be
    /// sent or the connection dropped before the answer ended.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        range_from: Option<u64>,
        body: Vec<u8>,
        mut sink: impl FnMut(Piece<'_>) -> bool,
    ) -> Result<(), ClientError> {
        let what = format!("{method} {path}");
        // A device request's body is a postcard message, or nothing.
        let content_type = (!body.is_empty()).then_some("application/octet-stream");
        let err = |reason: String| ClientError {
            what: what.clone(),
            reason,
            status: None,
        };
        // A device request is small (a check-in, a download's head): its answer's head
        // comes within the silence limit, or the exchange is given up.
        let silence = Duration::from_millis(tern_core::protocol::SILENCE_TIMEOUT_MS);
        let resp = tokio::time::timeout(
            silence,
            self.request(method, path, content_type, range_from, body),
        )
        .await
        .map_err(|_| {
            err(format!(
                "no answer from the server within {} s",
                silence.as_secs()
            ))
        })??;
        if !sink(Piece::Status(resp.status().as_u16())) {
            return Ok(());
        }
        let mut body = resp.into_body();
        loop {
            let Ok(next) = tokio::time::timeout(silence, body.frame()).await else {
                return Err(err(format!(
                    "the server sent nothing for {} s during the answer",
                    silence.as_secs()
                )));
            };
            let Some(frame) = next else { break };
            let frame =
                frame.map_err(|e| err(format!("connection dropped during the answer: {e}")))?;
            if let Some(data) = frame.data_ref()
                && !sink(Piece::Data(data))
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sends one request on a fresh connection (with the bearer token, and a `Range`
    /// from `range_from` if given) and returns the answer's head, its body unread.
    async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        range_from: Option<u64>,
        body: Vec<u8>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let err = |reason: String| ClientError {
            what: format!("{method} {path}"),
            reason,
            status: None,
        };
        let connect = Duration::from_millis(tern_core::protocol::CONNECT_TIMEOUT_MS);
        let stream = tokio::time::timeout(connect, tokio::net::TcpStream::connect(&self.authority))
            .await
            .map_err(|_| {
                err(format!(
                    "cannot connect to {}: no answer within {} s",
                    self.authority,
                    connect.as_secs()
                ))
            })?
            .map_err(|e| err(format!("cannot connect to {}: {e}", self.authority)))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| err(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            );
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        if let Some(from) = range_from {
            req = req.header(hyper::header::RANGE, format!("bytes={from}-"));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| err(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| err(e.to_string()))
    }

    /// An admin JSON call.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let body = json.map(|j| j.to_string().into_bytes()).unwrap_or_default();
        let ct = json.map(|_| "application/json");
        let r = self.send(method, path, ct, None, body).await?;
        if r.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&r.body).map_err(|e| ClientError {
            what: path.to_string(),
            reason: format!("not JSON: {e}"),
            status: Some(r.status.as_u16()),
        })
    }

    /// An admin call with a typed body and answer.
    async fn admin_typed<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let what = format!("{method} {path}");
        let r = self.send(method, path, content_type, None, body).await?;
        serde_json::from_slice(&r.body).map_err(|e| ClientError {
            what,
            reason: format!("not the expected JSON: {e}"),
            status: Some(r.status.as_u16()),
        })
    }

    /// `POST /api/v1/bundles`: publishes a bundle; returns what the server made of it.
    pub async fn publish(&self, bundle: Vec<u8>) -> Result<Published, ClientError> {
        self.admin_typed(
            Method::POST,
            "/api/v1/bundles",
            Some("application/octet-stream"),
            bundle,
        )
        .await
    }

    /// `PUT /api/v1/assignments/{target}`: assigns published bundle `bundle` (its id)
    /// to `target`, `device:<id>` or `group:<name>`.
    pub async fn assign(&self, target: &str, bundle: &str) -> Result<Assigned, ClientError> {
        let body = AssignBody { bundle };
        self.admin_typed(
            Method::PUT,
            &format!("/api/v1/assignments/{target}"),
            Some("application/json"),
            json_body(&body),
        )
        .await
    }

    /// `PUT /api/v1/devices/{id}`: registers device `device` with `token`, in `group`
    /// if given (replacing its token and group if it exists).
    pub async fn provision(
        &self,
        device: &str,
        token: &str,
        group: Option<&str>,
    ) -> Result<(), ClientError> {
        let body = ProvisionBody { token, group };
        self.admin(
            Method::PUT,
            &format!("/api/v1/devices/{device}"),
            Some(&serde_json::to_value(&body).unwrap_or_default()),
        )
        .await
        .map(drop)
    }

    /// `GET /api/v1/devices`: every device and what it runs, as the server wrote it
    /// (printed as is by `tern devices`).
    pub async fn devices(&self) -> Result<serde_json::Value, ClientError> {
        self.admin(Method::GET, "/api/v1/devices", None).await
    }

    /// `GET /api/v1/devices/{id}`: one device, with its status history, as the server
    /// wrote it.
    pub async fn device(&self, device: &str) -> Result<serde_json::Value, ClientError> {
        self.admin(Method::GET, &format!("/api/v1/devices/{device}"), None)
            .await
    }
}

fn json_body(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[derive(Serialize)]
struct AssignBody<'a> {
    bundle: &'a str,
}

#[derive(Serialize)]
struct ProvisionBody<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
}

/// A published bundle, as the server answers `POST /api/v1/bundles` (the fields the
/// tools use; the answer has more).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Published {
    /// The bundle id: its SHA-256 in hex.
    pub id: String,
    /// Its length in bytes.
    pub len: u64,
    /// The boards whose trust keys and threshold its signatures satisfy.
    pub trusted_by: Vec<String>,
    /// One verdict per known board the manifest targets.
    pub boards: Vec<BoardVerdict>,
}

/// What a board's policy says about a published bundle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BoardVerdict {
    /// The board.
    pub board: String,
    /// Whether its signatures satisfy the board's trust keys and threshold.
    pub trusted: bool,
    /// Whether a device of the board with nothing installed would install it.
    pub installable: bool,
    /// Why not, if not.
    #[serde(default)]
    pub reason: Option<String>,
}

/// An assignment, as the server answers `PUT /api/v1/assignments/{target}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Assigned {
    /// `device:<id>` or `group:<name>`.
    pub target: String,
    /// The bundle id.
    pub bundle: String,
    /// When, Unix milliseconds.
    pub assigned_at_ms: u64,
}
