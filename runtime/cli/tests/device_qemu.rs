//! The device end to end, on every QEMU device board (mps2-an386, a Cortex-M4, and
//! mps2-an505, a Cortex-M33): the real firmware under `qemu-system-arm`, talking
//! smoltcp TCP through QEMU's restricted user network to a real fleet server on
//! loopback. The same test, table-driven, with the same signed bundles on both.
//!
//! One device lives through a fleet's week: v1 installed and run, an update to v2, a
//! bundle tampered with on its way to the device (a byte flipped by a proxy between
//! QEMU and the server: the server refuses to serve a bundle tampered on its own
//! disk, so the network is where a device meets one), a bundle asking for a gpio pin
//! outside the board table, and a component that loops forever; then QEMU is stopped
//! and started again and v2 comes back from the device's flash without a download. After every
//! change the device's results over the sensor feed are compared with the same bundle
//! run on the server's engine, Wasmtime, over the same events.
//!
//! Needs `qemu-system-arm`. Outside CI the test skips with a message saying how to
//! install it; with `TERN_REQUIRE_QEMU=1` (set by `.ci/run`) a missing QEMU fails it.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_core::board::{BoardFields, BoardTable, Offer, StaticScope};
use tern_core::bundle::{Target, Version};
use tern_core::{Grant, Granted, protocol};
use tern_host::client::Client;
use tern_host::events::EventFile;
use tern_host::keys::KeyFile;
use tern_host::run::{EngineKind, Engines, SharedSim};
use tern_qemu::{Echo, Qemu, QemuOptions};
use tokio::sync::oneshot;

/// The QEMU device boards. Every bundle is signed once, for all of them.
const BOARDS: [&str; 2] = ["qemu-mps2-an386", "qemu-mps2-an505"];
const ADMIN: &str = "device-test-admin-token";
/// The identity the firmware is built with when nothing else is set (its build.rs).
const DEVICE: &str = "qemu-1";
const TOKEN: &str = "qemu-1-development-token";
/// Longest wait for one step of the device (QEMU without acceleration is slow, and
/// CI machines are slower than this one).
const STEP: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-device-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn board(name: &str) -> &'static BoardTable {
    tern_host::boards::by_name(name).unwrap()
}

fn v(major: u32) -> Version {
    Version {
        major,
        minor: 0,
        patch: 0,
    }
}

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(root().join(format!("target/components/{name}.wasm")))
        .expect("build the components first: cargo xtask components")
}

/// A bundle signed with the development key the boards trust, for every QEMU board.
fn bundle(name: &str, version: Version, counter: u64, grant: &[&str]) -> Vec<u8> {
    bundle_of(&wasm(name), name, version, counter, grant)
}

/// [`bundle`] with `payload` as it is.
fn bundle_of(
    payload: &[u8],
    name: &str,
    version: Version,
    counter: u64,
    grant: &[&str],
) -> Vec<u8> {
    let key = KeyFile::read(&root().join("boards/keys/tern-dev-2026.key")).unwrap();
    tern_host::sign::build(
        payload,
        name,
        version,
        counter,
        BOARDS.iter().map(|b| Target::Board((*b).into())).collect(),
        Grant::parse(grant.iter().copied()).unwrap(),
        &[key],
    )
    .unwrap()
}

const SMOOTHER: &[&str] = &["log", "sensors=temp-0", "kv=4096"];
/// The grant of heartbeat (`components/heartbeat/component.toml`).
const HEARTBEAT: &[&str] = &["log", "clock", "kv=64"];
/// The grant of the environment app (`components/environment/component.toml`).
const ENVIRONMENT: &[&str] = &["log", "kv=4096"];

/// The board as a fleet server with an out-of-date copy of it would see it: it also
/// offers gpio pin 5. Such a server offers the device a bundle asking for pin 5, and
/// the device must refuse it on its own compiled-in table. (A server with the real
/// table does not even offer it; `runtime/server/tests` covers that.)
fn stale_boards(name: &str) -> &'static [&'static BoardTable] {
    let real = board(name);
    // A test fixture: the one kind of table, besides tern-board's generated code, made
    // with `BoardTable::new`.
    let stale: &'static BoardTable = Box::leak(Box::new(BoardTable::new(BoardFields {
        name: real.name(),
        engine: real.engine(),
        limits: real.limits(),
        sector_size: real.sector_size(),
        trial_restarts: real.trial_restarts(),
        download_floor: tern_core::board::DownloadFloor::DEFAULT,
        slots: real.slots(),
        trust_keys: real.trust_keys(),
        signatures_required: real.signatures_required(),
        offers: Offer {
            gpio: Some(StaticScope::Only(&[4, 5])),
            ..*real.offers()
        },
    })));
    let others = tern_host::boards::ALL
        .iter()
        .copied()
        .filter(|b| b.name() != name);
    Box::leak(
        std::iter::once(stale)
            .chain(others)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

/// A man in the middle between the device and the server: passes everything through,
/// except that in the response to a download of the bundle named in `tamper` it
/// flips one byte, deep in the payload.
#[derive(Default)]
struct Proxy {
    tamper: Mutex<Option<String>>,
}

/// Bytes into the server's answer to a tampered download at which a bit is flipped:
/// past the response head and the bundle header, inside the payload.
const FLIP_AT: usize = 20_000;

/// Starts the proxy on a loopback port (plain threads: one pair per connection).
fn proxy(upstream: SocketAddr, plan: Arc<Proxy>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (Ok(client), Ok(server)) = (client, std::net::TcpStream::connect(upstream)) else {
                continue;
            };
            // Set when this connection asks for the bundle to tamper with; the answer
            // to that request is the next thing the server sends on it.
            let armed = Arc::new(AtomicBool::new(false));
            let (mut from_client, mut to_server) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (arm, plan) = (armed.clone(), plan.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                while let Ok(n @ 1..) = from_client.read(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    let wanted = plan.tamper.lock().unwrap().clone();
                    if wanted
                        .is_some_and(|id| text.contains(&format!("GET /device/v1/bundles/{id}")))
                    {
                        arm.store(true, Ordering::SeqCst);
                    }
                    if to_server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to_server.shutdown(std::net::Shutdown::Write);
            });
            let (mut from_server, mut to_client) = (server, client);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                let mut seen = 0usize;
                while let Ok(n @ 1..) = from_server.read(&mut buf) {
                    if armed.load(Ordering::SeqCst) {
                        if (seen..seen + n).contains(&FLIP_AT) {
                            buf[FLIP_AT - seen] ^= 0x01;
                            armed.store(false, Ordering::SeqCst);
                            seen = 0;
                        } else {
                            seen += n;
                        }
                    }
                    if to_client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to_client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

struct TestServer {
    addr: SocketAddr,
    admin: Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tern_server::Error>>,
}

async fn start_server(dir: &Path, board: &str) -> TestServer {
    let listener = tern_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = tern_server::Config::new(ADMIN, stale_boards(board));
    config.poll_after_ms = 200;
    config.shutdown_grace = Duration::from_secs(2);
    let data = dir.to_path_buf();
    let server = tokio::task::spawn_blocking(move || tern_server::Server::open(data, config))
        .await
        .unwrap()
        .unwrap();
    server.provision_device(DEVICE, TOKEN, None).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let admin = Client::new(&format!("http://{addr}"), ADMIN).unwrap();
    TestServer {
        addr,
        admin,
        stop,
        task,
    }
}

impl TestServer {
    async fn publish(&self, bytes: Vec<u8>) -> String {
        let id = protocol::bundle_id(&tern_core::bundle::sha256(&bytes));
        let answer = self.admin.publish(bytes).await.unwrap();
        assert_eq!(answer.id, id, "published: {answer:?}");
        id
    }

    async fn assign(&self, id: &str) {
        self.admin
            .assign(&format!("device:{DEVICE}"), id)
            .await
            .unwrap();
    }

    async fn device(&self) -> serde_json::Value {
        self.admin.device(DEVICE).await.unwrap()
    }

    /// Waits until the device's status history holds `outcome` for bundle `id`.
    async fn wait_report(&self, id: &str, outcome: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let d = self.device().await;
            if let Some(h) = d["history"].as_array().and_then(|h| {
                h.iter()
                    .find(|r| r["bundle"] == id && r["outcome"] == outcome)
            }) {
                return h.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{outcome}` report for {id} within {STEP:?}; the server sees: {d:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// The result lines the firmware prints for a run over the feed, made from the same
/// bundle's run on the server's engine, Wasmtime, over the same events.
fn wasmtime_results(board_name: &str, name: &str, grant: &[&str], feed: &EventFile) -> Vec<String> {
    wasmtime_results_of(board_name, &wasm(name), grant, feed)
}

/// [`wasmtime_results`] of a payload: a module or a component.
fn wasmtime_results_of(
    board_name: &str,
    payload: &[u8],
    grant: &[&str],
    feed: &EventFile,
) -> Vec<String> {
    let engines = Engines::new(board(board_name).limits()).unwrap();
    engines
        .run(
            EngineKind::Wasmtime,
            payload,
            // The reference run: the same grant the bundle is signed with, unsigned.
            &Granted::for_development(Grant::parse(grant.iter().copied()).unwrap()),
            &feed.config,
            &feed.events,
            &SharedSim::default(),
        )
        .unwrap()
        .result_lines()
}

/// Waits for the device to run `name version` over the feed and returns its result
/// lines, in order; the heap's peak stays within what one component was measured to
/// need.
fn device_results(qemu: &mut Qemu, name: &str, version: &str) -> Vec<String> {
    device_results_within(qemu, name, version, tern_board::firmware::ENGINE_PEAK)
}

/// The engine heap board `name` gives (`memory.engine-heap`).
fn engine_heap(name: &str) -> u32 {
    let file = format!("boards/{name}/board.toml");
    let text = std::fs::read_to_string(root().join(&file)).unwrap();
    tern_board::parse_board(&file, &text)
        .unwrap()
        .memory
        .unwrap()
        .engine_heap
}

/// [`device_results`] with the heap's peak held to `heap` bytes.
fn device_results_within(qemu: &mut Qemu, name: &str, version: &str, heap: u32) -> Vec<String> {
    let seen = qemu
        .wait_for(&format!("running {name} {version} over"), STEP)
        .unwrap();
    assert!(!seen.is_empty());
    let run = qemu.wait_for("done: ", STEP).unwrap();
    // "done: N events; heap U bytes in use, peak P": the heap (the linear memory is
    // apart) stays within the measured engine peak that sizes it.
    let done = &run.last().unwrap().text;
    let peak: u32 = done.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        peak <= heap,
        "{done}: a heap peak above the {heap} bytes measured when the heap rule was set; \
         measure again and raise tern_board::firmware::ENGINE_PEAK (one component) or \
         the board's memory.engine-heap (a composed app)"
    );
    run.iter()
        .filter(|l| l.text.starts_with("result "))
        .map(|l| l.text.clone())
        .collect()
}

fn start_device(board: &str, elf: &Path, dir: &Path, server: SocketAddr) -> Qemu {
    let network = tern_board::parse_board(
        &format!("boards/{board}/board.toml"),
        &std::fs::read_to_string(root().join("boards").join(board).join("board.toml")).unwrap(),
    )
    .unwrap()
    .network
    .expect("the board has a [network] section");
    // The device's log goes to stderr as it arrives (`--nocapture` shows it).
    Qemu::start_with_echo(
        elf,
        &QemuOptions {
            machine: tern_qemu::machine_of(board).unwrap().to_string(),
            server_port: Some(server.port()),
            guest_server: network.server,
            workdir: dir.to_path_buf(),
            icount: false,
            exec_trace: None,
            timeout: Some(Duration::from_secs(30 * 60)),
        },
        Echo::Stderr {
            prefix: format!("[{board}] "),
        },
    )
    .unwrap()
}

#[test]
fn mps2_an386_installs_updates_refuses_and_survives_restart() {
    device_installs_updates_refuses_and_survives_restart(BOARDS[0]);
}

#[test]
fn mps2_an505_installs_updates_refuses_and_survives_restart() {
    device_installs_updates_refuses_and_survives_restart(BOARDS[1]);
}

fn device_installs_updates_refuses_and_survives_restart(name: &'static str) {
    if let Err(why) = tern_qemu::check_tools() {
        if std::env::var_os("TERN_REQUIRE_QEMU").is_some() {
            panic!("TERN_REQUIRE_QEMU is set but QEMU is missing: {why}");
        }
        eprintln!("SKIPPED device end-to-end test: {why}");
        return;
    }
    let dir = scratch(name);
    let device_dir = dir.join("device");
    std::fs::create_dir_all(&device_dir).unwrap();
    let elf = tern_qemu::build_firmware(&root(), name, &[]).unwrap();
    // The server and the proxy run on their own runtime; this thread waits on QEMU's
    // log (blocking) without holding up a runtime worker.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The sensor feed: the smoother example's events, as the device's sensors read them.
    let events = root().join("components/smoother/events.jsonl");
    let feed = EventFile::parse(&std::fs::read_to_string(&events).unwrap()).unwrap();
    std::fs::write(device_dir.join("tern-feed.bin"), feed.to_feed()).unwrap();
    let expected = wasmtime_results(name, "smoother", SMOOTHER, &feed);
    assert!(
        expected.iter().filter(|l| l.contains(".ema=")).count() >= 3,
        "the reference run has outputs to compare: {expected:#?}"
    );

    let server = rt.block_on(start_server(&dir.join("server"), name));
    let mitm = Arc::new(Proxy::default());
    let via = proxy(server.addr, mitm.clone());
    let mut qemu = start_device(name, &elf, &device_dir, via);
    qemu.wait_for("flash: erased (first boot)", STEP).unwrap();

    // v1: fetched over smoltcp, verified, staged, trialled, confirmed, run.
    let v1 = rt.block_on(server.publish(bundle("smoother", v(1), 1, SMOOTHER)));
    rt.block_on(server.assign(&v1));
    qemu.wait_for("confirmed smoother 1.0.0", STEP).unwrap();
    assert_eq!(device_results(&mut qemu, "smoother", "1.0.0"), expected);
    rt.block_on(server.wait_report(&v1, "confirmed"));

    // v2: the update lands in the other slot.
    let v2 = rt.block_on(server.publish(bundle("smoother", v(2), 2, SMOOTHER)));
    rt.block_on(server.assign(&v2));
    qemu.wait_for("confirmed smoother 2.0.0", STEP).unwrap();
    assert_eq!(device_results(&mut qemu, "smoother", "2.0.0"), expected);
    rt.block_on(server.wait_report(&v2, "confirmed"));
    assert_eq!(
        rt.block_on(server.device())["installed"]["bundle"],
        v2.as_str()
    );

    // A bundle tampered with on the way: one payload bit flipped in every download.
    let v3 = rt.block_on(server.publish(bundle("smoother", v(3), 3, SMOOTHER)));
    *mitm.tamper.lock().unwrap() = Some(v3.clone());
    rt.block_on(server.assign(&v3));
    let lines = qemu.wait_for("rejected smoother 3.0.0", STEP).unwrap();
    let last = &lines.last().unwrap().text;
    assert!(last.contains("SHA-256"), "names the hash check: {last}");
    let r = rt.block_on(server.wait_report(&v3, "rejected"));
    assert!(r["reason"].as_str().unwrap().contains("SHA-256"), "{r}");

    // A bundle asking for gpio pin 5: the board has the pin but does not offer it.
    let greedy = rt.block_on(server.publish(bundle(
        "alarm",
        v(4),
        4,
        &["log", "clock", "gpio=5", "publish=alerts/"],
    )));
    rt.block_on(server.assign(&greedy));
    let lines = qemu.wait_for("rejected alarm 4.0.0", STEP).unwrap();
    let last = &lines.last().unwrap().text;
    assert!(last.contains("gpio"), "names the capability: {last}");
    rt.block_on(server.wait_report(&greedy, "rejected"));

    // A component that never returns from on-event: fuel stops it during the trial,
    // the device rolls back to v2 and keeps serving.
    let spin = rt.block_on(server.publish(bundle("spin", v(5), 5, &["log"])));
    rt.block_on(server.assign(&spin));
    let lines = qemu.wait_for("rolled back", STEP).unwrap();
    assert!(
        lines.iter().any(|l| l.text.contains("fuel")),
        "the trial was stopped by fuel: {:#?}",
        &lines[lines.len().saturating_sub(8)..]
    );
    let r = rt.block_on(server.wait_report(&spin, "rolled-back"));
    assert!(r["reason"].as_str().unwrap().contains("fuel"), "{r}");
    assert_eq!(device_results(&mut qemu, "smoother", "2.0.0"), expected);

    // A component that recurses without bound: wasmi's call-depth limit stops it (the
    // firmware's tail-call dispatch runs guest calls on wasmi's own stack, not the
    // native one), the device rolls back to v2 and keeps serving.
    let dive = rt.block_on(server.publish(bundle("recursion", v(6), 6, &["log"])));
    rt.block_on(server.assign(&dive));
    qemu.wait_for("rolled back", STEP).unwrap();
    let r = rt.block_on(server.wait_report(&dive, "rolled-back"));
    assert!(
        r["reason"].as_str().unwrap().contains("stack overflow"),
        "{r}"
    );
    assert_eq!(device_results(&mut qemu, "smoother", "2.0.0"), expected);

    assert_eq!(
        rt.block_on(server.device())["installed"]["bundle"],
        v2.as_str()
    );
    let check_ins = rt.block_on(server.device())["check_ins"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        rt.block_on(server.device())["check_ins"].as_u64().unwrap() > check_ins,
        "the device keeps checking in"
    );

    // Power off, power on: v2 comes back from flash, verified again, without a download.
    qemu.kill();
    let mut qemu = start_device(name, &elf, &device_dir, via);
    let boot = qemu.wait_for("active: smoother 2.0.0", STEP).unwrap();
    assert!(
        boot.iter().any(|l| l.text.contains("flash: restored")),
        "{boot:#?}"
    );
    let results = device_results(&mut qemu, "smoother", "2.0.0");
    assert_eq!(results, expected);
    assert!(
        !qemu
            .transcript()
            .iter()
            .any(|l| l.text.contains("downloading")),
        "nothing was downloaded after the restart"
    );

    // A component that takes every page of linear memory the board promises, one page
    // at a time: the device must give them all (from the buffer it set aside, see
    // tern_device::linear), exactly as Wasmtime does under the same limits.
    let fill = rt.block_on(server.publish(bundle("fill", v(7), 7, &["log"])));
    rt.block_on(server.assign(&fill));
    let fill_results = device_results(&mut qemu, "fill", "7.0.0");
    let fill_expected = wasmtime_results(name, "fill", &["log"], &feed);
    assert_eq!(
        board(name).limits().memory_bytes,
        4 << 16,
        "fill grows to 4 pages"
    );
    assert!(
        fill_expected
            .iter()
            .any(|l| l.contains("pages=4.000 pages")),
        "Wasmtime gives all 4 pages: {fill_expected:#?}"
    );
    assert_eq!(fill_results, fill_expected);
    rt.block_on(server.wait_report(&fill, "confirmed"));

    // The smoother as a component (what `wasm-tools component new` makes of its core
    // module): for a wasmi board the payload is the device image `tern sign` makes of
    // it, core modules (wit-component's shim and fixup among them) and its plan, all
    // under the signature; the device replays the plan and gives Wasmtime's results.
    let component = tern_wasmtime::WasmtimeEngine::componentize(&wasm("smoother")).unwrap();
    let image = tern_host::sign::device_image(&component).unwrap();
    assert!(tern_core::image::is_image(&image));
    let from_image = rt.block_on(server.publish(bundle_of(&image, "smoother", v(8), 8, SMOOTHER)));
    rt.block_on(server.assign(&from_image));
    assert_eq!(device_results(&mut qemu, "smoother", "8.0.0"), expected);
    rt.block_on(server.wait_report(&from_image, "confirmed"));

    // A component of a world of its own, built with wit-bindgen alone: heartbeat
    // reaches the log and the clock through WASI's interfaces (wasi:logging,
    // wasi:clocks/monotonic-clock) and keeps its count in tern:edge/kv. Signed as the
    // device image of its component and delivered over the air, it gives Wasmtime's
    // results.
    let heartbeat = tern_host::compose::componentize(&wasm("heartbeat")).unwrap();
    let heartbeat_expected = wasmtime_results_of(name, &heartbeat, HEARTBEAT, &feed);
    assert!(
        heartbeat_expected
            .iter()
            .any(|l| l.contains("monotonic=true")),
        "the reference run reads the clock: {heartbeat_expected:#?}"
    );
    let image = tern_host::sign::device_image(&heartbeat).unwrap();
    let v9 = rt.block_on(server.publish(bundle_of(&image, "heartbeat", v(9), 9, HEARTBEAT)));
    rt.block_on(server.assign(&v9));
    assert_eq!(
        device_results(&mut qemu, "heartbeat", "9.0.0"),
        heartbeat_expected
    );
    rt.block_on(server.wait_report(&v9, "confirmed"));

    // A composed app: environment + ruuvi-decoder made one component (`tern compose`),
    // each with its own linear memory, over Ruuvi frames. The device splits the one
    // buffer its board sets aside between the two memories and gives Wasmtime's
    // results for the component.
    qemu.kill();
    let frames = root().join("components/environment/events.jsonl");
    let frames = EventFile::parse(&std::fs::read_to_string(&frames).unwrap()).unwrap();
    std::fs::write(device_dir.join("tern-feed.bin"), frames.to_feed()).unwrap();
    let mut qemu = start_device(name, &elf, &device_dir, via);
    qemu.wait_for("active: heartbeat 9.0.0", STEP).unwrap();
    let app = tern_host::compose::compose(
        &tern_host::compose::componentize(&wasm("environment")).unwrap(),
        &[(
            "tern:ruuvi/decode@0.1.0",
            &tern_host::compose::componentize(&wasm("ruuvi-decoder")).unwrap(),
        )],
    )
    .unwrap();
    let app_expected = wasmtime_results_of(name, &app, ENVIRONMENT, &frames);
    assert!(
        app_expected.iter().any(|l| l.contains("temperature=")),
        "the reference run decodes frames: {app_expected:#?}"
    );
    let image = tern_host::sign::device_image(&app).unwrap();
    let v10 = rt.block_on(server.publish(bundle_of(&image, "environment", v(10), 10, ENVIRONMENT)));
    rt.block_on(server.assign(&v10));
    let heap = engine_heap(name);
    assert!(
        heap > tern_board::firmware::ENGINE_PEAK,
        "{name} gives composed apps more"
    );
    assert_eq!(
        device_results_within(&mut qemu, "environment", "10.0.0", heap),
        app_expected
    );
    rt.block_on(server.wait_report(&v10, "confirmed"));

    // The server stops accepting the device's token: every check-in is refused with
    // the server's reason, and the device keeps running what it has.
    rt.block_on(
        server
            .admin
            .provision(DEVICE, "another-token-for-qemu-1", None),
    )
    .unwrap();
    let lines = qemu.wait_for("check-in refused: HTTP 401", STEP).unwrap();
    assert!(
        lines.last().unwrap().text.contains("token"),
        "says why: {}",
        lines.last().unwrap().text
    );
    qemu.kill();

    // A sensor feed that is not one: said at boot, and the device runs without events.
    std::fs::write(device_dir.join("tern-feed.bin"), b"not a feed").unwrap();
    let mut qemu = start_device(name, &elf, &device_dir, via);
    // (The app's device image comes back from flash, verified and planned again.)
    let boot = qemu.wait_for("active: environment 10.0.0", STEP).unwrap();
    assert!(
        boot.iter().any(|l| l.text.contains("sensor feed unusable")),
        "{boot:#?}"
    );
    let no_events = EventFile::parse("").unwrap();
    assert_eq!(
        device_results_within(&mut qemu, "environment", "10.0.0", heap),
        wasmtime_results_of(name, &app, ENVIRONMENT, &no_events)
    );
    qemu.kill();
    rt.block_on(server.stop());
}
