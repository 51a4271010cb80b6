//! OTA under faults: a real fleet server and the real gateway agent on loopback,
//! with a proxy between them that drops connections at random byte offsets, corrupts
//! bytes in transit, sends a body without end, or loses the server mid-download. The
//! gateway must end up running exactly the signed bundle it was assigned, or keep
//! what it had; never anything else.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_agent::{SlotLayout, SlotManager};
use tern_core::bundle::{Target, Version};
use tern_core::{Grant, protocol};
use tern_host::client::Client;
use tern_host::gateway::{GatewayConfig, file_flash::FileFlash};
use tern_host::keys::KeyFile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const ADMIN: &str = "fault-test-admin-token";
const DEVICE: &str = "gw-f";
const TOKEN: &str = "fault-test-device-token";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn board() -> &'static tern_core::board::BoardTable {
    tern_host::boards::by_name("linux-gateway").unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-ota-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Version `major`.0.0.
fn v(major: u32) -> Version {
    Version {
        major,
        minor: 0,
        patch: 0,
    }
}

/// A signed smoother bundle for linux-gateway.
fn bundle(version: Version, counter: u64) -> Vec<u8> {
    let wasm = std::fs::read(root().join("target/components/smoother.wasm"))
        .expect("build the components first: cargo xtask components");
    let key = KeyFile::read(&root().join("boards/keys/tern-dev-2026.key")).unwrap();
    tern_host::sign::build(
        &wasm,
        "smoother",
        version,
        counter,
        vec![Target::Board("linux-gateway".into())],
        Grant::parse(["log", "sensors=temp-0", "kv=4096"]).unwrap(),
        &[key],
    )
    .unwrap()
}

struct TestServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tern_server::Error>>,
}

async fn start_server(dir: &Path) -> TestServer {
    let listener = tern_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = tern_server::Config::new(ADMIN, tern_host::boards::ALL);
    config.poll_after_ms = 100;
    config.shutdown_grace = Duration::from_secs(2);
    let dir = dir.to_path_buf();
    let server = tokio::task::spawn_blocking(move || tern_server::Server::open(dir, config))
        .await
        .unwrap()
        .unwrap();
    server.provision_device(DEVICE, TOKEN, None).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    TestServer { addr, stop, task }
}

async fn stop_server(s: TestServer) {
    let _ = s.stop.send(());
    s.task.await.unwrap().unwrap();
}

/// What the proxy does to bundle downloads (one entry used per download connection).
#[derive(Default)]
struct Plan {
    /// Where the proxy is forwarding to (changes when the server restarts).
    upstream: Option<SocketAddr>,
    /// Close the connection after this many response bytes.
    drops: Vec<usize>,
    /// Connections closed by `drops` so far.
    dropped: usize,
    /// Go silent after this many response bytes, holding the connection open.
    stalls: Vec<usize>,
    /// Flip the response byte at this offset.
    corrupt: Vec<usize>,
    /// `Range` headers of download requests, in order.
    ranges: Vec<String>,
    /// Download connections to make endless: the response head loses its
    /// `Content-Length` (so the body ends only when the connection does), and after
    /// the real body come junk bytes without end.
    endless: usize,
    /// Junk bytes the endless connections got written, in all.
    junk_sent: usize,
    /// Download connections to trickle: 64 bytes every 250 ms (256 bytes/s).
    trickle: usize,
    /// Download connections seen.
    downloads: usize,
}

/// A TCP proxy that injects the plan's faults into download responses.
async fn proxy(plan: Arc<Mutex<Plan>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let plan = plan.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 8192];
                let n = client.read(&mut head).await.unwrap_or(0);
                head.truncate(n);
                let text = String::from_utf8_lossy(&head).to_string();
                let (upstream, drop_at, corrupt_at, endless, stall_at, trickle) = {
                    let mut p = plan.lock().unwrap();
                    let mut faults = (None, None);
                    let mut endless = false;
                    let mut stall = None;
                    let mut trickle = false;
                    if text.starts_with("GET /device/v1/bundles/") {
                        p.downloads += 1;
                        let range = text
                            .lines()
                            .find(|l| l.to_ascii_lowercase().starts_with("range:"))
                            .unwrap_or("range: none")
                            .to_string();
                        p.ranges.push(range);
                        faults = (
                            (!p.drops.is_empty()).then(|| p.drops.remove(0)),
                            (!p.corrupt.is_empty()).then(|| p.corrupt.remove(0)),
                        );
                        if p.endless > 0 {
                            p.endless -= 1;
                            endless = true;
                        }
                        stall = (!p.stalls.is_empty()).then(|| p.stalls.remove(0));
                        if p.trickle > 0 {
                            p.trickle -= 1;
                            trickle = true;
                        }
                    }
                    (p.upstream, faults.0, faults.1, endless, stall, trickle)
                };
                let Some(up) = upstream else { return };
                let Ok(mut server) = TcpStream::connect(up).await else {
                    return;
                };
                if server.write_all(&head).await.is_err() {
                    return;
                }
                if endless {
                    endless_response(&mut client, &mut server, &plan).await;
                    return;
                }
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let to_server = tokio::io::copy(&mut cr, &mut sw);
                let to_client = async {
                    let mut sent = 0usize;
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let mut chunk = buf[..n].to_vec();
                        if let Some(at) = corrupt_at.filter(|at| (sent..sent + n).contains(at)) {
                            chunk[at - sent] ^= 0x20;
                        }
                        if let Some(limit) = drop_at.filter(|l| sent + n >= *l) {
                            let _ = cw.write_all(&chunk[..limit - sent]).await;
                            plan.lock().unwrap().dropped += 1;
                            return;
                        }
                        if let Some(limit) = stall_at.filter(|l| sent + n >= *l) {
                            let _ = cw.write_all(&chunk[..limit - sent]).await;
                            // Silent, the connection held open, until the test ends.
                            std::future::pending::<()>().await;
                        }
                        if trickle {
                            for piece in chunk.chunks(64) {
                                if cw.write_all(piece).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(250)).await;
                            }
                        } else if cw.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                };
                tokio::select! {
                    _ = to_server => {}
                    () = to_client => {}
                }
            });
        }
    });
    addr
}

/// Forwards the server's response to `client` without its `Content-Length`, then
/// junk until the client stops reading (the write fails).
async fn endless_response(client: &mut TcpStream, server: &mut TcpStream, plan: &Mutex<Plan>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    let end = loop {
        let n = match server.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        got.extend_from_slice(&buf[..n]);
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    let mut body_len = 0usize;
    let mut out = String::new();
    for line in head.split_inclusive("\r\n") {
        match line.to_ascii_lowercase().strip_prefix("content-length:") {
            Some(v) => body_len = v.trim().parse().unwrap_or(0),
            None => out.push_str(line),
        }
    }
    let mut body = got[end..].to_vec();
    while body.len() < body_len {
        let n = match server.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        body.extend_from_slice(&buf[..n]);
    }
    if client.write_all(out.as_bytes()).await.is_err() || client.write_all(&body).await.is_err() {
        return;
    }
    let junk = vec![0x5au8; 16 * 1024];
    loop {
        let write = tokio::time::timeout(Duration::from_secs(5), client.write_all(&junk));
        if !matches!(write.await, Ok(Ok(()))) {
            return;
        }
        plan.lock().unwrap().junk_sent += junk.len();
    }
}

/// One fault test's set-up: a fresh server with bundle v1 published and assigned to
/// the device, behind a proxy that follows `plan` (made from v1's length; its
/// upstream is the server).
struct Faulty {
    dir: PathBuf,
    server: TestServer,
    v1: Vec<u8>,
    sha: [u8; 32],
    plan: Arc<Mutex<Plan>>,
    via: SocketAddr,
}

impl Faulty {
    /// A gateway on this set-up's data directory through its proxy.
    fn gateway(&self, polls: u32) -> GatewayConfig {
        gateway(self.via, &self.dir.join("gw"), polls)
    }

    /// The bundle the gateway's flash says is active.
    fn active(&self) -> Option<[u8; 32]> {
        active_sha(&self.dir.join("gw"))
    }
}

async fn faulty(name: &str, plan: impl FnOnce(usize) -> Plan) -> Faulty {
    let dir = scratch(name);
    let server = start_server(&dir.join("server")).await;
    let v1 = bundle(v(1), 1);
    let sha = tern_core::bundle::sha256(&v1);
    let plan = Arc::new(Mutex::new(Plan {
        upstream: Some(server.addr),
        ..plan(v1.len())
    }));
    let via = proxy(plan.clone()).await;
    publish_and_assign(server.addr, v1.clone()).await;
    Faulty {
        dir,
        server,
        v1,
        sha,
        plan,
        via,
    }
}

async fn publish_and_assign(server: SocketAddr, bytes: Vec<u8>) -> String {
    let admin = Client::new(&format!("http://{server}"), ADMIN).unwrap();
    let id = protocol::bundle_id(&tern_core::bundle::sha256(&bytes));
    admin.publish(bytes).await.unwrap();
    admin
        .assign(&format!("device:{DEVICE}"), &id)
        .await
        .unwrap();
    id
}

fn gateway(via: SocketAddr, data: &Path, polls: u32) -> GatewayConfig {
    GatewayConfig {
        board: board(),
        server: format!("http://{via}"),
        device: DEVICE.into(),
        token: TOKEN.into(),
        data: data.to_path_buf(),
        events: Some(root().join("components/smoother/events.jsonl")),
        poll: Duration::from_millis(100),
        max_polls: Some(polls),
        trial_events: 3,
    }
}

/// The bundle the gateway's flash says is active, read by a fresh slot manager.
fn active_sha(data: &Path) -> Option<[u8; 32]> {
    let layout = SlotLayout::from_board(board()).unwrap();
    let cap = (layout.end() as usize).div_ceil(4096) * 4096;
    let flash = FileFlash::open(&data.join("flash.bin"), cap).unwrap();
    let slots = SlotManager::open(flash, layout, board()).unwrap();
    slots.active().map(|a| a.bundle_sha256)
}

/// A tiny deterministic generator for fault offsets.
fn offsets(seed: u64, n: usize, max: usize) -> Vec<usize> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            400 + (x as usize) % max
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_at_random_offsets_resume_and_install_the_signed_bundle() {
    for seed in [1u64, 7, 42] {
        // Each of the first three download connections is cut somewhere in its first
        // quarter, so every one of them ends early.
        let t = faulty(&format!("drops-{seed}"), |len| Plan {
            drops: offsets(seed, 3, len / 4),
            ..Plan::default()
        })
        .await;
        tern_host::gateway::run(t.gateway(2)).await.unwrap();
        assert_eq!(t.active(), Some(t.sha), "seed {seed}");
        {
            let p = t.plan.lock().unwrap();
            assert_eq!(
                p.downloads, 4,
                "3 cut downloads, then the rest: {:?}",
                p.ranges
            );
            assert!(
                p.ranges[1..]
                    .iter()
                    .all(|r| r.contains("bytes=") && !r.contains("bytes=0-")),
                "every attempt after a cut resumes with a Range: {:?}",
                p.ranges
            );
        }
        stop_server(t.server).await;
    }
}

/// A download whose body never ends (no `Content-Length`, junk after the bundle,
/// without end): the gateway stops reading at the bundle's signed length, closes the
/// connection, and installs exactly the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_signed_length() {
    let t = faulty("endless", |_| Plan {
        endless: 1,
        ..Plan::default()
    })
    .await;
    tokio::time::timeout(
        Duration::from_secs(60),
        tern_host::gateway::run(t.gateway(2)),
    )
    .await
    .expect("the gateway is not still reading")
    .unwrap();
    assert_eq!(t.active(), Some(t.sha));
    {
        let p = t.plan.lock().unwrap();
        assert_eq!(
            p.downloads, 1,
            "one download, cut by the gateway: {:?}",
            p.ranges
        );
        // What socket buffers take before the gateway closes; far below what an
        // agent reading on would have taken in the same time.
        assert!(p.junk_sent < 32 << 20, "junk written: {}", p.junk_sent);
    }
    stop_server(t.server).await;
}

/// Two download connections, the second resuming with a `Range` past byte 0.
fn resumed_once(plan: &Mutex<Plan>) {
    let p = plan.lock().unwrap();
    assert_eq!(p.downloads, 2, "{:?}", p.ranges);
    assert!(
        p.ranges[1].contains("bytes=") && !p.ranges[1].contains("bytes=0-"),
        "the second attempt resumes: {:?}",
        p.ranges
    );
}

/// linux-gateway's table with a download floor of 1 KiB/s over 2 s (a test fixture,
/// as `tern_core::board::BoardFields` allows): the default's 30 s would make the
/// test half a minute longer, not different.
fn floored_board() -> &'static tern_core::board::BoardTable {
    let b = board();
    Box::leak(Box::new(tern_core::board::BoardTable::new(
        tern_core::board::BoardFields {
            name: b.name(),
            engine: b.engine(),
            limits: b.limits(),
            sector_size: b.sector_size(),
            trial_restarts: b.trial_restarts(),
            download_floor: tern_core::board::DownloadFloor {
                min_bytes_per_s: 1024,
                window_s: 2,
            },
            slots: b.slots(),
            trust_keys: b.trust_keys(),
            signatures_required: b.signatures_required(),
            offers: *b.offers(),
        },
    )))
}

/// A server that trickles the bundle (256 bytes/s, fast enough never to trip the
/// silence limit) below the board's floor (1 KiB/s over 2 s): the gateway drops the
/// connection once the window has passed, resumes with a `Range`, and installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_server_is_dropped_below_the_floor_and_the_download_resumed() {
    let t = faulty("trickle", |_| Plan {
        trickle: 1,
        ..Plan::default()
    })
    .await;
    let started = std::time::Instant::now();
    let cfg = GatewayConfig {
        board: floored_board(),
        ..t.gateway(2)
    };
    tokio::time::timeout(Duration::from_secs(60), tern_host::gateway::run(cfg))
        .await
        .expect("the gateway is not still reading the trickle")
        .unwrap();
    assert_eq!(t.active(), Some(t.sha));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "it read the trickle for a window first: {took:?}"
    );
    let trickled_whole = Duration::from_millis(250 * (t.v1.len() as u64).div_ceil(64));
    assert!(
        took < trickled_whole,
        "it did not read the whole trickle ({trickled_whole:?}): {took:?}"
    );
    resumed_once(&t.plan);
    stop_server(t.server).await;
}

/// A server that goes silent mid-download, the connection held open: the gateway
/// gives the download up after the silence limit (`SILENCE_TIMEOUT_MS`, the device's
/// too), resumes it with a `Range` on its next attempt, and installs the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_silent_is_given_up_and_the_download_resumed() {
    let t = faulty("silent", |len| Plan {
        stalls: vec![len / 2],
        ..Plan::default()
    })
    .await;
    let started = std::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(60),
        tern_host::gateway::run(t.gateway(2)),
    )
    .await
    .expect("the gateway is not still waiting on the silent server")
    .unwrap();
    assert_eq!(t.active(), Some(t.sha));
    assert!(
        started.elapsed() >= Duration::from_millis(tern_core::protocol::SILENCE_TIMEOUT_MS),
        "it waited out the silence limit before giving up"
    );
    resumed_once(&t.plan);
    stop_server(t.server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_corrupted_in_transit_are_thrown_away_and_fetched_again() {
    let t = faulty("corrupt", |len| Plan {
        // Past the HTTP head (a few hundred bytes): a byte of the bundle itself.
        corrupt: vec![len / 2],
        ..Plan::default()
    })
    .await;
    tern_host::gateway::run(t.gateway(2)).await.unwrap();
    assert_eq!(t.active(), Some(t.sha));
    {
        let p = t.plan.lock().unwrap();
        assert_eq!(
            p.ranges,
            ["range: none", "range: none"],
            "the corrupted copy is discarded whole and fetched again from the start"
        );
    }
    stop_server(t.server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_lost_mid_download_then_agent_restarts_and_resumes() {
    let dir = scratch("killed");
    let server = start_server(&dir.join("server")).await;
    let v1 = bundle(v(1), 1);
    let sha = tern_core::bundle::sha256(&v1);
    let half = v1.len() / 2;
    let plan = Arc::new(Mutex::new(Plan {
        upstream: Some(server.addr),
        drops: vec![half],
        ..Plan::default()
    }));
    let via = proxy(plan.clone()).await;
    publish_and_assign(server.addr, v1).await;
    // The first download is cut half way and the server goes away: the agent gives
    // up for this check-in with a partial download on disk.
    let gw = tokio::spawn(tern_host::gateway::run(gateway(via, &dir.join("gw"), 1)));
    // Once the cut is made (half the bundle reached the gateway), before its next
    // attempt (`DOWNLOAD_PAUSE_MS` later).
    while plan.lock().unwrap().dropped == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_server(server).await;
    gw.await.unwrap().unwrap();
    assert_eq!(
        active_sha(&dir.join("gw")),
        None,
        "nothing half-downloaded is active"
    );
    // The server comes back on the same data; a new agent process resumes.
    let server = start_server(&dir.join("server")).await;
    plan.lock().unwrap().upstream = Some(server.addr);
    let before = plan.lock().unwrap().ranges.len();
    tern_host::gateway::run(gateway(via, &dir.join("gw"), 2))
        .await
        .unwrap();
    assert_eq!(active_sha(&dir.join("gw")), Some(sha));
    {
        let p = plan.lock().unwrap();
        let resumed = &p.ranges[before..];
        assert!(
            resumed
                .first()
                .is_some_and(|r| r.contains("bytes=") && !r.contains("bytes=0-")),
            "the restarted agent resumes where the first stopped: {resumed:?}"
        );
    }
    stop_server(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_tampered_on_the_server_disk_is_never_activated() {
    let dir = scratch("tampered");
    let server = start_server(&dir.join("server")).await;
    let v1 = bundle(v(1), 1);
    let v1_sha = tern_core::bundle::sha256(&v1);
    let plan = Arc::new(Mutex::new(Plan {
        upstream: Some(server.addr),
        ..Plan::default()
    }));
    let via = proxy(plan.clone()).await;
    publish_and_assign(server.addr, v1).await;
    tern_host::gateway::run(gateway(via, &dir.join("gw"), 2))
        .await
        .unwrap();
    assert_eq!(active_sha(&dir.join("gw")), Some(v1_sha));

    let v2 = bundle(
        Version {
            major: 1,
            minor: 1,
            patch: 0,
        },
        2,
    );
    let id = publish_and_assign(server.addr, v2.clone()).await;
    stop_server(server).await;
    // Someone edits the stored bundle: one payload byte.
    let path = dir.join("server/bundles").join(format!("{id}.tern"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let server = start_server(&dir.join("server")).await;
    plan.lock().unwrap().upstream = Some(server.addr);
    tern_host::gateway::run(gateway(via, &dir.join("gw"), 3))
        .await
        .unwrap();
    assert_eq!(
        active_sha(&dir.join("gw")),
        Some(v1_sha),
        "v1 keeps running"
    );
    stop_server(server).await;
}
