//! The agent against a scripted fleet server: every rule of the module docs, each
//! with the exchange that shows it. The engine here is a small scripted one (this is
//! a unit test of the agent); the gateway's and the device's fault suites run the same
//! agent against the real server and real engines.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use tern_core::bundle;
use tern_core::host::{Host, Platform};
use tern_core::{Error, Event, Grant, Granted, Limits, Output, SimPlatform};

extern crate std;

use embedded_storage::nor_flash::NorFlash;

use super::*;
use crate::layout::SlotLayout;
use crate::sim::SimFlash;
use crate::testkit::{Spec, board, board_restarting, untrusted_key};

type Flash = SimFlash<1024, 8>;
const SLOT: u32 = 16 * 1024;

fn fresh_flash() -> Flash {
    let layout = SlotLayout::from_board(board(1024, SLOT)).unwrap();
    Flash::new(layout.end() as usize, 0xFF)
}

fn agent(flash: Flash) -> Agent<Flash> {
    let b = board(1024, SLOT);
    let layout = SlotLayout::from_board(b).unwrap();
    let slots = SlotManager::open(flash, layout, b).unwrap();
    Agent::new(
        Config {
            device: "dev-1".into(),
            poll_ms: 1000,
            trial_events: 2,
        },
        slots,
    )
}

/// A component whose calls do what the payload's last byte says: `0` all good,
/// `1` the health check fails, `2` every event traps.
struct Scripted;

struct ScriptedInstance {
    mode: u8,
    host: Host,
}

impl Engine for Scripted {
    type Component = (u8, Grant);
    type Instance = ScriptedInstance;

    fn load(&self, wasm: &[u8], grant: &Granted) -> Result<(u8, Grant), Error> {
        Ok((wasm.last().copied().unwrap_or(0) % 3, grant.grant().clone()))
    }

    fn instantiate(
        &self,
        c: &(u8, Grant),
        platform: Box<dyn Platform + Send>,
    ) -> Result<ScriptedInstance, Error> {
        Ok(ScriptedInstance {
            mode: c.0,
            host: Host::new(c.1.clone(), platform),
        })
    }

    fn limits(&self) -> Limits {
        Limits::HOST
    }
}

impl Instance for ScriptedInstance {
    fn init(&mut self, _: &[(String, String)]) -> Result<Result<(), String>, Error> {
        Ok(Ok(()))
    }

    fn on_event(&mut self, _: &Event) -> Result<Result<Vec<Output>, String>, Error> {
        if self.mode == 2 {
            return Err(Error::Trap("unreachable".into()));
        }
        Ok(Ok(Vec::new()))
    }

    fn health_check(&mut self) -> Result<Result<(), String>, Error> {
        if self.mode == 1 {
            return Ok(Err("sensor missing".into()));
        }
        Ok(Ok(()))
    }

    fn host(&mut self) -> &mut Host {
        &mut self.host
    }
}

struct Ticks(Vec<Event>);

impl Workload for Ticks {
    fn config(&self) -> &[(String, String)] {
        &[]
    }
    fn events(&self) -> &[Event] {
        &self.0
    }
    fn platform(&mut self) -> Box<dyn Platform + Send> {
        Box::new(SimPlatform::default())
    }
    fn observe(&mut self, _: &Event) {}
}

fn ticks() -> Ticks {
    Ticks((0..5).map(Event::Tick).collect())
}

/// A spec whose payload ends in `mode` (see [`Scripted`]).
fn spec(counter: u64, mode: u8) -> Spec {
    let mut s = Spec::new(counter, 6000);
    if let Some(last) = s.payload.last_mut() {
        *last = mode;
    }
    s
}

/// The fleet server, scripted.
#[derive(Default)]
struct Server {
    bundles: BTreeMap<String, Vec<u8>>,
    assignment: Option<Assignment>,
    /// For each download connection in turn: cut it after this many body bytes.
    cuts: VecDeque<usize>,
    /// Flip a bit of this bundle byte in the next this-many downloads.
    corrupt: Option<(usize, u32)>,
    /// Answer ranged requests with the whole bundle (200).
    ignore_range: bool,
    /// Fail this many check-ins at the transport.
    unreachable: u32,
    /// Fail every check-in after this many got through.
    down_after: Option<usize>,
    /// Every request, in order.
    requests: Vec<Request>,
    /// Bytes sent after every download's body, as a server that never stops would.
    endless: usize,
    /// Response bytes the agent read, in all.
    fed: usize,
    /// Every check-in received.
    check_ins: Vec<CheckIn>,
    /// For each download connection in turn: milliseconds between its 100-byte
    /// chunks (a server that trickles).
    trickle: VecDeque<u64>,
    /// The pace of the answer being served.
    pace_ms: u64,
}

impl Server {
    fn assign(&mut self, bytes: Vec<u8>) -> Assignment {
        let (header, _) = bundle::parse(&bytes).unwrap();
        let sha = bundle::sha256(&bytes);
        let a = Assignment {
            bundle_id: protocol::bundle_id(&sha),
            len: bytes.len() as u32,
            sha256: sha,
            security_counter: header.manifest.security_counter,
            name: header.manifest.name.clone(),
            version: header.manifest.version,
        };
        self.bundles.insert(a.bundle_id.clone(), bytes);
        self.assignment = Some(a.clone());
        a
    }

    /// Answers `req`: status, body, and where the connection is cut (if it is).
    fn serve(&mut self, req: &Request) -> Result<(u16, Vec<u8>, Option<usize>), &'static str> {
        self.requests.push(req.clone());
        if req.path == CHECK_IN_PATH {
            if self.unreachable > 0 {
                self.unreachable -= 1;
                return Err("connection refused");
            }
            if self.down_after.is_some_and(|n| self.check_ins.len() >= n) {
                return Err("connection refused");
            }
            self.check_ins.push(CheckIn::decode(&req.body).unwrap());
            let reply = CheckInReply {
                version: protocol::PROTOCOL_VERSION,
                assignment: self.assignment.clone(),
                poll_after_ms: 500,
            };
            return Ok((200, reply.encode().unwrap(), None));
        }
        let id = req.path.rsplit('/').next().unwrap();
        self.pace_ms = self.trickle.pop_front().unwrap_or(0);
        let Some(bytes) = self.bundles.get(id) else {
            return Ok((404, b"no such bundle".to_vec(), None));
        };
        let mut bytes = bytes.clone();
        if let Some((at, n)) = &mut self.corrupt
            && *n > 0
        {
            bytes[*at] ^= 0x10;
            *n -= 1;
        }
        let (status, mut body) = match req.range_from {
            Some(from) if !self.ignore_range => (206, bytes[from as usize..].to_vec()),
            _ => (200, bytes),
        };
        body.extend(std::iter::repeat_n(0xa5, self.endless));
        Ok((status, body, self.cuts.pop_front()))
    }
}

/// Drives `agent` against `server` until it has sent `check_ins` check-ins and is
/// idle again. Returns the notices, as lines.
fn drive<F: NorFlash>(agent: &mut Agent<F>, server: &mut Server, check_ins: usize) -> Vec<String> {
    let mut now = 0u64;
    let mut lines = Vec::new();
    let mut sent = 0;
    for _ in 0..10_000 {
        match agent.poll(now) {
            Action::Notice(n) => lines.push(n.to_string()),
            Action::Run(_) => {}
            Action::Trial => agent.run_trial(now, &Scripted, &mut ticks()),
            Action::WaitUntil(t) => {
                if sent >= check_ins && agent.is_idle() {
                    return lines;
                }
                now = now.max(t);
            }
            Action::Send(req) => {
                if req.path == CHECK_IN_PATH {
                    sent += 1;
                }
                match server.serve(&req) {
                    Err(why) => agent.transport_failed(now, why),
                    Ok((status, body, cut)) => {
                        agent.response_head(status);
                        let end = cut.unwrap_or(body.len()).min(body.len());
                        let mut stopped = false;
                        for chunk in body[..end].chunks(100) {
                            server.fed += chunk.len();
                            now += server.pace_ms;
                            if agent.response_data(now, chunk) == Flow::Stop {
                                stopped = true;
                                break;
                            }
                        }
                        if cut.is_some() && !stopped {
                            agent.transport_failed(now, "connection reset");
                        } else {
                            agent.response_end(now);
                        }
                    }
                }
            }
        }
    }
    panic!("the agent never settled: {lines:?}");
}

fn downloads(server: &Server) -> Vec<Option<u64>> {
    server
        .requests
        .iter()
        .filter(|r| r.method == Method::Get)
        .map(|r| r.range_from)
        .collect()
}

fn outcomes(c: &CheckIn) -> Vec<&'static str> {
    c.reports.iter().map(protocol::Report::outcome).collect()
}

#[test]
fn installs_confirms_and_reports_installed_then_confirmed() {
    let mut a = agent(fresh_flash());
    let mut s = Server::default();
    let assigned = s.assign(spec(1, 0).build());
    let lines = drive(&mut a, &mut s, 2);
    assert_eq!(
        a.slots().active().map(|i| i.bundle_sha256),
        Some(assigned.sha256)
    );
    assert_eq!(outcomes(&s.check_ins[1]), ["installed", "confirmed"]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("confirmed sensor-filter 1.0.1")),
        "{lines:?}"
    );
    assert!(a.reports().is_empty(), "delivered reports leave the queue");
    // Up to date: the third check-in fetches nothing.
    drive(&mut a, &mut s, 1);
    assert_eq!(downloads(&s).len(), 1);
}

#[test]
fn reports_past_the_eighth_wait_for_the_next_check_in() {
    // The gateway used to `drain(..).take(8)`: reports 9 and 10 were lost.
    let mut q = ReportQueue::default();
    for i in 0..10u8 {
        q.push(protocol::Report::Confirmed {
            bundle_sha256: [i; 32],
        });
    }
    let first = q.batch();
    assert_eq!(first.reports.len(), protocol::MAX_REPORTS);
    assert_eq!(q.len(), 10, "nothing leaves before a reply");
    q.delivered(&first);
    let second = q.batch();
    assert_eq!(
        second.reports,
        [8u8, 9].map(|i| protocol::Report::Confirmed {
            bundle_sha256: [i; 32]
        })
    );
    q.delivered(&second);
    assert!(q.is_empty());
}

#[test]
fn a_failed_check_in_keeps_every_report() {
    let mut a = agent(fresh_flash());
    for i in 0..10u8 {
        a.queue(protocol::Report::Confirmed {
            bundle_sha256: [i; 32],
        });
    }
    let mut s = Server {
        unreachable: 1,
        ..Server::default()
    };
    drive(&mut a, &mut s, 1);
    assert_eq!(a.reports().len(), 10, "the failed check-in took nothing");
    drive(&mut a, &mut s, 1);
    assert_eq!(s.check_ins[0].reports.len(), 8);
    assert_eq!(a.reports().len(), 2);
    drive(&mut a, &mut s, 1);
    assert_eq!(s.check_ins[1].reports.len(), 2);
    assert!(a.reports().is_empty());
}

#[test]
fn reports_survive_a_restart_before_they_are_delivered() {
    // The gateway lost 5 of 34 confirmations this way: it died after confirming and
    // before the next check-in, with its reports in RAM.
    let mut a = agent(fresh_flash());
    let mut s = Server::default();
    let v1 = s.assign(spec(1, 0).build());
    // One check-in brings the assignment; the update is installed and confirmed; then
    // the server is unreachable, and the process dies.
    s.down_after = Some(1);
    drive(&mut a, &mut s, 3);
    s.down_after = None;
    assert_eq!(a.slots().active().map(|i| i.bundle_sha256), Some(v1.sha256));
    assert_eq!(s.check_ins.len(), 1, "nothing reported yet");
    let mut a = agent(a.into_slots().release().reboot());
    assert_eq!(a.reports().len(), 2, "the queue came back from flash");
    drive(&mut a, &mut s, 1);
    assert_eq!(outcomes(&s.check_ins[1]), ["installed", "confirmed"]);
    // Delivered: the journal is empty now, so a further restart sends nothing again.
    let mut a = agent(a.into_slots().release().reboot());
    assert!(a.reports().is_empty());
    drive(&mut a, &mut s, 1);
    assert!(s.check_ins[2].reports.is_empty());
}

#[test]
fn the_journal_keeps_what_fits_and_counts_the_rest() {
    let mut q = ReportQueue::default();
    for i in 0..10u8 {
        q.push(protocol::Report::Rejected {
            bundle_sha256: [i; 32],
            reason: "x".repeat(100),
        });
    }
    let journal = q.to_journal(600);
    assert!(journal.len() <= 600);
    let back = ReportQueue::from_journal(&journal).unwrap();
    assert!(back.len() < 10 && back.len() >= 3, "{}", back.len());
    assert_eq!(back.dropped() as usize, 10 - back.len());
    // The newest are kept, in order.
    let first_kept = (10 - back.len()) as u8;
    assert_eq!(
        back.items.front().map(|r| *r.bundle_sha256().unwrap()),
        Some([first_kept; 32])
    );
    assert_eq!(
        back.items.back().map(|r| *r.bundle_sha256().unwrap()),
        Some([9; 32])
    );
    assert_eq!(ReportQueue::from_journal(&[]).map(|q| q.len()), Some(0));
    assert!(
        ReportQueue::from_journal(&[7, 1, 2]).is_none(),
        "unknown format"
    );
}

#[test]
fn a_full_queue_drops_the_oldest_and_says_how_many() {
    let mut q = ReportQueue::default();
    for i in 0..(REPORT_QUEUE_LEN + 3) as u8 {
        q.push(protocol::Report::Installed {
            bundle_sha256: [i; 32],
        });
    }
    assert_eq!(q.dropped(), 3);
    let b = q.batch();
    assert_eq!(b.reports[0], protocol::Report::Dropped { count: 3 });
    assert_eq!(
        b.reports[1],
        protocol::Report::Installed {
            bundle_sha256: [3; 32]
        },
        "the oldest three are gone"
    );
    assert_eq!(b.reports.len(), protocol::MAX_REPORTS);
    q.delivered(&b);
    assert_eq!(q.dropped(), 0);
    assert_eq!(q.len(), REPORT_QUEUE_LEN - (protocol::MAX_REPORTS - 1));
}

/// A fresh agent against `s` with one bundle assigned, driven through two check-ins;
/// checks the bundle is then active. Returns the server and the assignment.
fn installs(s: Server) -> (Server, Assignment) {
    let (s, assigned, _) = installs_saying(s);
    (s, assigned)
}

/// [`installs`], with the notices it logged.
fn installs_saying(mut s: Server) -> (Server, Assignment, Vec<String>) {
    let mut a = agent(fresh_flash());
    let assigned = s.assign(spec(1, 0).build());
    let lines = drive(&mut a, &mut s, 2);
    assert_eq!(
        a.slots().active().map(|i| i.bundle_sha256),
        Some(assigned.sha256)
    );
    (s, assigned, lines)
}

/// A server that sends more than the bundle, without end: the agent reads no further
/// than the signed length (one 100-byte chunk at most past it, as the transport hands
/// it over), closes the connection, and installs exactly the bundle.
#[test]
fn bytes_past_the_signed_length_are_never_read() {
    let (s, assigned) = installs(Server {
        endless: 10 * 1024 * 1024,
        ..Server::default()
    });
    // The bundle, one chunk past it, and the check-in replies (each at most
    // MAX_REPLY_LEN).
    assert!(
        s.fed < assigned.len as usize + 100 + 3 * protocol::MAX_REPLY_LEN,
        "read {} bytes of a {}-byte bundle",
        s.fed,
        assigned.len
    );
}

/// A server that trickles the bundle (100 bytes every 2 s, 50 bytes/s) stays below
/// the board's floor (`DownloadFloor::DEFAULT`: 128 bytes/s over 30 s): the agent
/// drops the connection once a window has passed, says why, and resumes with a
/// `Range` from what is in flash; a server at full speed then finishes the install.
#[test]
fn a_download_below_the_boards_floor_is_dropped_and_resumed() {
    let floor = tern_core::board::DownloadFloor::DEFAULT;
    let (s, assigned, lines) = installs_saying(Server {
        trickle: [2000].into(),
        ..Server::default()
    });
    let window_bytes = (floor.window_s as usize * 1000 / 2000) * 100;
    assert!(
        assigned.len as usize > window_bytes + 200,
        "the bundle outlasts one window"
    );
    let d = downloads(&s);
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0], None);
    // Stopped after the window's bytes (plus the chunk that showed it), resumed there.
    let resumed = d[1].unwrap() as usize;
    assert!(
        resumed > window_bytes - 200 && resumed <= window_bytes + 100,
        "{d:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "bytes/s for {} s, below the board's floor of {} bytes/s",
            floor.window_s, floor.min_bytes_per_s
        ))),
        "{lines:#?}"
    );
}

/// A slow link that still beats the floor (130 bytes/s) is read to the end.
#[test]
fn a_download_above_the_floor_is_read_to_the_end() {
    let (s, _) = installs(Server {
        trickle: [769].into(),
        ..Server::default()
    });
    assert_eq!(downloads(&s), [None], "one connection");
}

#[test]
fn a_dropped_connection_resumes_with_a_range() {
    let (s, _) = installs(Server {
        cuts: [700, 1500].into(),
        ..Server::default()
    });
    let d = downloads(&s);
    assert_eq!(d.len(), 3);
    assert_eq!(d[0], None);
    // Resumed at the last whole write unit in flash, never later than what arrived.
    let first = d[1].unwrap();
    assert!(first > 600 && first <= 700, "{d:?}");
    let second = d[2].unwrap();
    assert!(second > first + 1400 && second <= first + 1500, "{d:?}");
}

#[test]
fn a_restart_mid_download_resumes_from_what_is_in_flash() {
    let mut a = agent(fresh_flash());
    // The first connection is cut after 3000 bytes, the next seven at once: the first
    // process gives up with part of the bundle in flash.
    let mut s = Server {
        cuts: [3000].into_iter().chain([0; 7]).collect(),
        ..Server::default()
    };
    let assigned = s.assign(spec(1, 0).build());
    let lines = drive(&mut a, &mut s, 1);
    assert!(
        lines.iter().any(|l| l.starts_with("download failed")),
        "{lines:?}"
    );
    assert!(a.slots().active().is_none());
    // Power off, power on: a new agent on the same flash.
    let flash = a.into_slots().release().reboot();
    let mut a = agent(flash);
    let before = downloads(&s).len();
    let lines = drive(&mut a, &mut s, 2);
    let resumed = downloads(&s)[before];
    assert!(
        resumed.is_some_and(|from| from > 2000 && from <= 3000),
        "the new process resumes from flash: {resumed:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("resuming")), "{lines:?}");
    assert_eq!(
        a.slots().active().map(|i| i.bundle_sha256),
        Some(assigned.sha256)
    );
}

#[test]
fn a_range_answered_with_the_whole_bundle_starts_over() {
    let mut a = agent(fresh_flash());
    let mut s = Server {
        cuts: [2000].into(),
        ignore_range: true,
        ..Server::default()
    };
    let assigned = s.assign(spec(1, 0).build());
    drive(&mut a, &mut s, 2);
    assert_eq!(
        a.slots().active().map(|i| i.bundle_sha256),
        Some(assigned.sha256)
    );
}

#[test]
fn corruption_in_transit_is_fetched_again_from_the_first_byte() {
    let mut a = agent(fresh_flash());
    let bytes = spec(1, 0).build();
    let mut s = Server {
        corrupt: Some((bytes.len() - 100, 1)),
        ..Server::default()
    };
    let assigned = s.assign(bytes);
    let lines = drive(&mut a, &mut s, 2);
    assert_eq!(downloads(&s), [None, None], "{lines:?}");
    assert_eq!(
        a.slots().active().map(|i| i.bundle_sha256),
        Some(assigned.sha256)
    );
}

#[test]
fn corruption_twice_is_refused_reported_and_not_fetched_again() {
    let mut a = agent(fresh_flash());
    let bytes = spec(1, 0).build();
    let mut s = Server {
        corrupt: Some((bytes.len() - 100, 2)),
        ..Server::default()
    };
    s.assign(bytes);
    let lines = drive(&mut a, &mut s, 2);
    assert_eq!(downloads(&s), [None, None]);
    assert!(a.slots().active().is_none());
    let r = &s.check_ins[1].reports;
    assert_eq!(outcomes(&s.check_ins[1]), ["rejected"]);
    assert!(r[0].reason().unwrap().contains("SHA-256"), "{r:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("rejected sensor-filter 1.0.1")),
        "{lines:?}"
    );
    drive(&mut a, &mut s, 2);
    assert_eq!(
        downloads(&s).len(),
        2,
        "a refused bundle is not fetched again"
    );
}

#[test]
fn a_policy_refusal_is_not_fetched_again() {
    let mut a = agent(fresh_flash());
    let mut bad = spec(1, 0);
    bad.keys = vec![untrusted_key()];
    let mut s = Server::default();
    s.assign(bad.build());
    drive(&mut a, &mut s, 2);
    assert_eq!(downloads(&s), [None], "no re-fetch for an untrusted signer");
    assert_eq!(outcomes(&s.check_ins[1]), ["rejected"]);
}

#[test]
fn a_failed_trial_rolls_back_keeps_the_old_component_and_is_not_fetched_again() {
    let mut a = agent(fresh_flash());
    let mut s = Server::default();
    let v1 = s.assign(spec(1, 0).build());
    drive(&mut a, &mut s, 2);
    s.assign(spec(2, 2).build());
    let lines = drive(&mut a, &mut s, 2);
    assert_eq!(a.slots().active().map(|i| i.bundle_sha256), Some(v1.sha256));
    let last = s.check_ins.last().unwrap();
    assert_eq!(outcomes(last), ["installed", "rolled-back"]);
    assert!(last.reports[1].reason().unwrap().contains("unreachable"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("rolled back sensor-filter 1.0.2")),
        "{lines:?}"
    );
    let n = downloads(&s).len();
    drive(&mut a, &mut s, 2);
    assert_eq!(downloads(&s).len(), n);
}

#[test]
fn an_unhealthy_component_is_rolled_back_with_the_reason() {
    let mut a = agent(fresh_flash());
    let mut s = Server::default();
    s.assign(spec(1, 1).build());
    drive(&mut a, &mut s, 2);
    assert!(a.slots().active().is_none());
    let last = s.check_ins.last().unwrap();
    assert_eq!(outcomes(last), ["installed", "rolled-back"]);
    assert!(last.reports[1].reason().unwrap().contains("sensor missing"));
}

#[test]
fn failed_check_ins_back_off_exponentially_up_to_the_poll_period() {
    let mut a = agent(fresh_flash());
    let mut now = 0;
    let mut waits = Vec::new();
    while waits.len() < 6 {
        match a.poll(now) {
            Action::Send(_) => a.transport_failed(now, "connection refused"),
            Action::WaitUntil(t) => {
                waits.push(t - now);
                now = t;
            }
            _ => {}
        }
    }
    assert_eq!(waits, [250, 500, 1000, 1000, 1000, 1000]);
}

#[test]
fn an_http_error_page_is_shown_and_never_written() {
    let mut a = agent(fresh_flash());
    a.poll(0);
    a.poll(0);
    let Action::Send(_) = a.poll(0) else {
        panic!("expected a check-in");
    };
    a.response_head(401);
    a.response_data(0, b"unknown device or token");
    a.response_end(0);
    let Action::Notice(n) = a.poll(0) else {
        panic!("expected a notice");
    };
    assert_eq!(
        n.to_string(),
        "check-in refused: HTTP 401: unknown device or token"
    );
    assert_eq!(n.level(), Level::Error);
}

#[test]
fn the_first_polls_say_what_is_installed_and_what_runs() {
    let mut a = agent(fresh_flash());
    let Action::Notice(n) = a.poll(0) else {
        panic!("a notice first");
    };
    assert_eq!(n, Notice::NothingInstalled);
    assert!(matches!(a.poll(0), Action::Run(None)));
    assert!(matches!(a.poll(0), Action::Send(r) if r.path == CHECK_IN_PATH));
}

/// An agent on a `SimFlash<E, W>` erasing to `erased`, for a board of `E`-byte sectors.
fn agent_on<const E: usize, const W: usize>(
    flash: SimFlash<E, W>,
    erased: u8,
) -> Agent<SimFlash<E, W>> {
    // A restart during the trial is inconclusive here: the recovery runs it again.
    let b = board_restarting(E as u32, SLOT, 2);
    let layout = SlotLayout::from_board(b).unwrap();
    let mut slots = SlotManager::open(flash, layout, b).unwrap();
    slots.set_erased_value(erased);
    Agent::new(
        Config {
            device: "dev-1".into(),
            poll_ms: 1000,
            trial_events: 2,
        },
        slots,
    )
}

/// The agent under power cuts: v1 is active and v2 assigned; the download is cut once
/// in transit, and power is cut at every flash operation of the whole update in turn
/// (download, resume, stage, trial, confirm). After each cut a fresh boot runs v1 or
/// v2 (never anything else, the counter never down), and a new agent on that flash,
/// against the same server, ends with v2 confirmed: whatever a torn write left in the
/// inactive slot is resumed from or fetched again, never installed.
fn agent_cut_everywhere<const E: usize, const W: usize>(erased: u8, ecc: bool) -> (u64, u64) {
    let b = board(E as u32, SLOT);
    let layout = SlotLayout::from_board(b).unwrap();
    let v1 = spec(1, 0).build();
    let v2 = spec(2, 0).build();
    let server = |cut: bool| {
        let mut s = Server {
            cuts: if cut { [2500].into() } else { VecDeque::new() },
            ..Server::default()
        };
        s.assign(v2.clone());
        s
    };
    let mut base = SimFlash::<E, W>::new(layout.end() as usize, erased).with_seed(erased.into());
    if ecc {
        base = base.ecc();
    }
    let base = {
        let mut a = agent_on(base, erased);
        let mut s = server(false);
        s.assign(v1.clone());
        drive(&mut a, &mut s, 2);
        assert_eq!(a.slots().installed_counter(), Some(1));
        a.into_slots().release().reboot()
    };
    // The uncut run: how many flash operations there are to cut.
    let mut probe = agent_on(base.clone().reboot(), erased);
    drive(&mut probe, &mut server(true), 2);
    assert_eq!(probe.slots().installed_counter(), Some(2));
    let ops = probe.into_slots().release().stats().ops();
    assert!(ops > 20, "only {ops} flash operations");
    let mut cuts = 0;
    let mut resumed = 0;
    for n in 0..ops {
        let what = format!("page {E}, write {W}, erased {erased:#04x}, cut at op {n} of {ops}");
        let mut flash = base.clone().reboot();
        flash.cut_power_at(n);
        let mut a = agent_on(flash, erased);
        drive(&mut a, &mut server(true), 2);
        let flash = a.into_slots().release();
        assert!(!flash.is_powered(), "{what}: no cut");
        let mut a = agent_on(flash.reboot(), erased);
        let after = a.slots().active().map(|i| i.security_counter);
        assert!(matches!(after, Some(1 | 2)), "{what}: boot found {after:?}");
        assert!(a.slots().installed_counter() >= Some(1), "{what}");
        let mut s = server(false);
        let lines = drive(&mut a, &mut s, 3);
        assert_eq!(
            a.slots().active().map(|i| i.bundle_sha256),
            Some(bundle::sha256(&v2)),
            "{what}: {lines:?}"
        );
        // Whenever the cut came, the server hears that v2 was confirmed: from the
        // journal the cut left, or from the install the recovery finished.
        let v2_sha = bundle::sha256(&v2);
        assert!(
            s.check_ins.iter().flat_map(|c| &c.reports).any(|r| *r
                == protocol::Report::Confirmed {
                    bundle_sha256: v2_sha
                }),
            "{what}: v2's confirmation never reached the server: {:?}",
            s.check_ins
        );
        if lines.iter().any(|l| l.starts_with("resuming")) {
            resumed += 1;
        }
        cuts += 1;
    }
    (cuts, resumed)
}

#[test]
fn the_agent_recovers_from_a_cut_at_every_flash_operation_of_an_update() {
    let (mut cuts, mut resumed) = (0, 0);
    for erased in [0xFF, 0x00] {
        for (c, r) in [
            agent_cut_everywhere::<1024, 8>(erased, false),
            agent_cut_everywhere::<256, 1>(erased, false),
            agent_cut_everywhere::<2048, 8>(erased, true),
        ] {
            cuts += c;
            resumed += r;
        }
    }
    std::println!("agent power cuts: {cuts}, of which {resumed} resumed from flash");
    assert!(cuts > 300, "{cuts} cuts");
    assert!(
        resumed > cuts / 4,
        "only {resumed} of {cuts} recoveries resumed"
    );
}

#[test]
fn a_downgrade_is_refused_without_a_download() {
    let mut a = agent(fresh_flash());
    let mut s = Server::default();
    s.assign(spec(5, 0).build());
    drive(&mut a, &mut s, 2);
    s.assign(spec(3, 0).build());
    drive(&mut a, &mut s, 2);
    assert_eq!(downloads(&s).len(), 1, "only v5 was fetched");
    let last = s.check_ins.last().unwrap();
    assert_eq!(outcomes(last), ["rejected"]);
    assert!(last.reports[0].reason().unwrap().contains("3"), "{last:?}");
}

/// Runs `agent` until a trial is about to start, and returns without running it: the
/// device "restarts" there.
fn until_trial<F: NorFlash>(agent: &mut Agent<F>, server: &mut Server) {
    let mut now = 0;
    for _ in 0..10_000 {
        match agent.poll(now) {
            Action::Trial => return,
            Action::WaitUntil(t) => now = now.max(t),
            Action::Send(req) => {
                let (status, body, _) = server.serve(&req).unwrap();
                agent.response_head(status);
                for chunk in body.chunks(100) {
                    agent.response_data(now, chunk);
                }
                agent.response_end(now);
            }
            _ => {}
        }
    }
    panic!("no trial");
}

/// Boots an agent on `flash` for a board that takes `restarts` restarts during a
/// trial as inconclusive.
fn restarting(restarts: u8) -> impl Fn(Flash) -> Agent<Flash> {
    let b = board_restarting(1024, SLOT, restarts);
    let layout = SlotLayout::from_board(b).unwrap();
    move |flash| {
        Agent::new(
            Config {
                device: "dev-1".into(),
                poll_ms: 1000,
                trial_events: 2,
            },
            SlotManager::open(flash, layout, b).unwrap(),
        )
    }
}

#[test]
fn a_restart_during_a_trial_is_inconclusive_up_to_the_boards_limit() {
    let open = restarting(2);
    let mut a = open(fresh_flash());
    let mut s = Server::default();
    let v1 = s.assign(spec(1, 0).build());
    // The trial starts (the slot is on trial) and the device restarts, twice.
    for restart in 1..=2u8 {
        until_trial(&mut a, &mut s);
        a.slots_mut().start_trial().unwrap();
        a = open(a.into_slots().release().reboot());
        assert_eq!(
            a.slots()
                .interrupted_trial()
                .map(|(c, n)| (c.bundle_sha256, *n)),
            Some((v1.sha256, restart)),
            "restart {restart} is inconclusive"
        );
        assert_eq!(
            a.reports().batch().reports,
            [protocol::Report::Installed {
                bundle_sha256: v1.sha256
            }],
            "no rollback to report"
        );
    }
    // The third time, the trial runs to the end: confirmed, no rollback reported.
    let lines = drive(&mut a, &mut s, 2);
    assert!(
        lines.iter().any(|l| l.starts_with(
            "a restart interrupted the trial of sensor-filter 1.0.1 (counter 1): restart 2 of the 2"
        )),
        "{lines:?}"
    );
    assert_eq!(a.slots().active().map(|i| i.bundle_sha256), Some(v1.sha256));
    let reported: Vec<_> = s.check_ins.iter().flat_map(outcomes).collect();
    assert!(
        reported.contains(&"confirmed") && !reported.contains(&"rolled-back"),
        "{reported:?}"
    );
    assert_eq!(
        downloads(&s).len(),
        1,
        "staged again from flash, not downloaded again"
    );
}

#[test]
fn one_restart_more_than_the_limit_rolls_back_with_the_reason() {
    let open = restarting(1);
    let mut a = open(fresh_flash());
    let mut s = Server::default();
    let v1 = s.assign(spec(1, 0).build());
    until_trial(&mut a, &mut s);
    a.slots_mut().start_trial().unwrap();
    a = open(a.into_slots().release().reboot());
    until_trial(&mut a, &mut s);
    a.slots_mut().start_trial().unwrap();
    let mut a = open(a.into_slots().release().reboot());
    assert!(a.slots().interrupted_trial().is_none());
    assert!(a.slots().active().is_none());
    drive(&mut a, &mut s, 1);
    let last = s.check_ins.last().unwrap();
    assert_eq!(outcomes(last), ["installed", "rolled-back"], "{last:?}");
    assert_eq!(*last.reports[1].bundle_sha256().unwrap(), v1.sha256);
    assert!(
        last.reports[1]
            .reason()
            .unwrap()
            .contains("restarted during the trial 2 time(s)")
    );
    // Rolled back for good: not fetched again while it is still assigned.
    drive(&mut a, &mut s, 2);
    assert_eq!(downloads(&s).len(), 1);
}
