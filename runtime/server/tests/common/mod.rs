//! Test helpers: two board tables trusting the development keys, bundle signing, a
//! server on a loopback port over a fresh data dir, and a small HTTP/1.1 client.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tern_core::board::{BoardFields, BoardTable, Offer, Slot, TrustKey};
use tern_core::bundle::{self, EngineKind, Manifest, SignatureRecord, Target, Version};
use tern_core::protocol::{CheckIn, CheckInReply, Installed, PROTOCOL_VERSION, Report};
use tern_core::wit::WIT_PACKAGE;
use tern_core::{Grant, Limits};
use tern_server::{Config, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not lowercase hex"),
    }
}

/// 64 hex characters as 32 bytes, at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// `boards/keys/tern-dev-2026.pub` (checked against the file by `key_files_match`).
pub const DEV_PUB: &str = "1f48883bb18d82d2c872c4f1ca7abcb9f799967be95779362690655f43819de8";
/// `boards/keys/tern-dev-ops-2026.pub`.
pub const OPS_PUB: &str = "443b0555f66e2360a5c177d2990562d463df3584afb64c55c5b306c0fc30df82";

const SLOTS: &[Slot] = &[
    Slot {
        name: "a",
        offset: 0,
        size: 256 * 1024,
    },
    Slot {
        name: "b",
        offset: 256 * 1024,
        size: 256 * 1024,
    },
];

const OFFERS: Offer = Offer {
    log: true,
    clock: true,
    sensors: None,
    gpio: None,
    kv: None,
    publish: None,
};

// Test boards no board.toml describes, made with `BoardTable::new` (meant for
// tern-board's generated code) as test fixtures.

/// A wasmi device trusting the development key.
pub static DEVICE_BOARD: BoardTable = BoardTable::new(BoardFields {
    name: "test-device",
    engine: EngineKind::Wasmi,
    limits: Limits::HOST,
    sector_size: 4096,
    trial_restarts: 0,
    download_floor: tern_core::board::DownloadFloor::DEFAULT,
    slots: SLOTS,
    trust_keys: &[TrustKey {
        name: "tern-dev-2026",
        public_key: hex32(DEV_PUB),
    }],
    signatures_required: 1,
    offers: OFFERS,
});

/// A Wasmtime gateway trusting only the ops key.
pub static GATEWAY_BOARD: BoardTable = BoardTable::new(BoardFields {
    name: "test-gateway",
    engine: EngineKind::Wasmtime,
    limits: Limits::HOST,
    sector_size: 4096,
    trial_restarts: 0,
    download_floor: tern_core::board::DownloadFloor::DEFAULT,
    slots: SLOTS,
    trust_keys: &[TrustKey {
        name: "tern-dev-ops-2026",
        public_key: hex32(OPS_PUB),
    }],
    signatures_required: 1,
    offers: OFFERS,
});

pub static BOARDS: &[&BoardTable] = &[&DEVICE_BOARD, &GATEWAY_BOARD];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A key from `boards/keys/<name>.key` (hex seed).
pub fn key(name: &str) -> SigningKey {
    let text = std::fs::read_to_string(repo_root().join("boards/keys").join(format!("{name}.key")))
        .unwrap();
    let seed = tern_core::wit::hex_bytes::decode(text.trim()).unwrap();
    SigningKey::from_bytes(&seed.try_into().unwrap())
}

pub fn dev_key() -> SigningKey {
    key("tern-dev-2026")
}

/// A key no board trusts.
pub fn stranger_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// Deterministic payload bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A bundle for the device board, signed by `keys`.
pub fn bundle_for(
    targets: Vec<Target>,
    counter: u64,
    payload: &[u8],
    keys: &[&SigningKey],
) -> Vec<u8> {
    let manifest = Manifest {
        name: "smoother".into(),
        version: Version {
            major: 1,
            minor: 0,
            patch: counter as u32,
        },
        security_counter: counter,
        targets,
        capabilities: Grant {
            log: true,
            ..Grant::default()
        },
        payload_len: payload.len() as u32,
        payload_sha256: bundle::sha256(payload),
        wit: WIT_PACKAGE.into(),
    };
    bundle::encode(&manifest, payload, |message| {
        keys.iter()
            .map(|k| SignatureRecord {
                key_id: bundle::key_id(&k.verifying_key().to_bytes()),
                signature: k.sign(message).to_bytes(),
            })
            .collect()
    })
    .unwrap()
}

/// A signed bundle for `test-device` with a `len`-byte payload.
pub fn device_bundle(counter: u64, len: usize) -> Vec<u8> {
    bundle_for(
        vec![Target::Board("test-device".into())],
        counter,
        &payload(len, counter),
        &[&dev_key()],
    )
}

pub fn bundle_id(bytes: &[u8]) -> String {
    tern_core::protocol::bundle_id(&bundle::sha256(bytes))
}

/// A fresh, empty data dir for test `name`.
pub fn data_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-server-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn config() -> Config {
    let mut c = Config::new(ADMIN_TOKEN, BOARDS);
    c.poll_after_ms = 5_000;
    c.shutdown_grace = std::time::Duration::from_secs(5);
    c
}

/// A server running on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tern_server::Error>>,
}

impl TestServer {
    pub async fn start(dir: &Path) -> TestServer {
        TestServer::start_with(dir, config()).await
    }

    /// [`TestServer::start`] with `config`.
    pub async fn start_with(dir: &Path, config: Config) -> TestServer {
        let listener = tern_server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let dir = dir.to_path_buf();
        let server = tokio::task::spawn_blocking(move || Server::open(dir, config))
            .await
            .unwrap()
            .unwrap();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts the server down gracefully and waits until its store is closed.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap().unwrap();
    }

    pub async fn conn(&self) -> Conn {
        Conn::connect(self.addr).await
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        Conn::connect_from(addr, std::net::Ipv4Addr::LOCALHOST).await
    }

    /// A connection from loopback address `from` (any of 127.0.0.0/8), as a client on
    /// another host would have its own address.
    pub async fn connect_from(addr: SocketAddr, from: std::net::Ipv4Addr) -> Conn {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Conn { tx }
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        self.tx.ready().await.unwrap();
        let resp = self.tx.send_request(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn admin(&mut self, method: Method, path: &str, body: impl Into<Bytes>) -> Reply {
        self.send(method, path, Some(ADMIN_TOKEN), &[], body).await
    }

    pub async fn publish(&mut self, bundle: &[u8]) -> Reply {
        self.admin(Method::POST, "/api/v1/bundles", bundle.to_vec())
            .await
    }

    pub async fn provision(&mut self, id: &str, token: &str, group: Option<&str>) -> Reply {
        let body = serde_json::json!({ "token": token, "group": group }).to_string();
        self.admin(Method::PUT, &format!("/api/v1/devices/{id}"), body)
            .await
    }

    pub async fn assign(&mut self, target: &str, bundle: &str) -> Reply {
        let body = serde_json::json!({ "bundle": bundle }).to_string();
        self.admin(Method::PUT, &format!("/api/v1/assignments/{target}"), body)
            .await
    }

    pub async fn device(&mut self, id: &str) -> serde_json::Value {
        let r = self
            .admin(Method::GET, &format!("/api/v1/devices/{id}"), Bytes::new())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.json()
    }

    /// Posts a check-in; the raw reply.
    pub async fn check_in_raw(&mut self, token: &str, msg: &CheckIn) -> Reply {
        let body = postcard::to_allocvec(msg).unwrap();
        self.send(Method::POST, "/device/v1/check-in", Some(token), &[], body)
            .await
    }

    /// Posts a check-in that must succeed; the decoded reply.
    pub async fn check_in(&mut self, token: &str, msg: &CheckIn) -> CheckInReply {
        let r = self.check_in_raw(token, msg).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        CheckInReply::decode(&r.body).unwrap()
    }

    /// Downloads (part of) a bundle.
    pub async fn download(&mut self, token: &str, id: &str, range: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
        self.send(
            Method::GET,
            &format!("/device/v1/bundles/{id}"),
            Some(token),
            &headers,
            Bytes::new(),
        )
        .await
    }
}

/// A check-in from `device` on `test-device`, with what it runs and reports.
pub fn check_in_msg(device: &str, installed: Option<&[u8]>, reports: Vec<Report>) -> CheckIn {
    CheckIn {
        version: PROTOCOL_VERSION,
        device: device.into(),
        board: "test-device".into(),
        installed: installed.map(|b| {
            let (h, _) = bundle::parse(b).unwrap();
            Installed {
                name: h.manifest.name,
                version: h.manifest.version,
                security_counter: h.manifest.security_counter,
                bundle_sha256: bundle::sha256(b),
            }
        }),
        reports,
    }
}

/// A device token for device number `i`.
pub fn token(i: usize) -> String {
    format!("device-token-{i:08}-abcdef")
}
