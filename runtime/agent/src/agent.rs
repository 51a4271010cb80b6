//! The one update agent, sans-IO: every decision a box makes about updates, for the
//! tokio gateway, the smoltcp firmware and a test script alike.
//!
//! [`Agent`] owns the slot manager, the report queue, the refused set and the state
//! of a transfer. It never opens a socket, sleeps or logs. A driver asks it what to
//! do next with [`Agent::poll`] and carries out the [`Action`]:
//!
//! - [`Action::Send`]: send the HTTP [`Request`] to the fleet server and feed the
//!   answer back: [`Agent::response_head`], then [`Agent::response_data`] for each
//!   piece of the body (stop reading when it says [`Flow::Stop`]), then
//!   [`Agent::response_end`]; or [`Agent::transport_failed`] if the connection could
//!   not be made or dropped.
//! - [`Action::Trial`]: run the staged component's trial with [`Agent::run_trial`],
//!   on the board's [`Engine`] and the box's [`Workload`].
//! - [`Action::Run`]: the component to run changed (or this is the first poll).
//! - [`Action::Notice`]: something worth a log line, at its [`Level`].
//! - [`Action::WaitUntil`]: nothing to do before this time on the driver's clock.
//!
//! # The rules, in one place
//!
//! - **Check-in.** Carries the active component and the oldest queued reports (at
//!   most [`protocol::MAX_REPORTS`]); they leave the queue only when that check-in
//!   got a `200` with a reply that decodes. The queue holds [`REPORT_QUEUE_LEN`];
//!   when full, the oldest report is dropped, and the next check-in says how many
//!   were ([`protocol::Report::Dropped`]). A failed check-in is retried with
//!   exponential backoff from [`BACKOFF_FIRST_MS`] up to the poll period.
//! - **The queue survives a restart.** It is kept in flash with the slot metadata
//!   (the journal, [`SlotManager::journal`]): an outcome is committed in the same
//!   atomic metadata commit as the slot change it reports (confirm, roll back), other
//!   queue changes in a commit of their own. What does not fit a record is dropped
//!   oldest first and counted.
//! - **What to fetch.** An assignment is fetched unless it is the active bundle or
//!   one this agent refused or rolled back (the last [`REFUSED_LEN`], in RAM). One
//!   whose security counter is not above the installed one is refused (and
//!   reported) without a download.
//! - **Download and resume.** The bundle streams into the inactive slot as it
//!   arrives (the header is checked against the board before anything is erased).
//!   A transfer picks up where the inactive slot's content stops
//!   ([`SlotManager::resume_receiving`]: after a dropped connection, and after a
//!   restart), with `Range: bytes=N-`. A `200` where a `206` was asked for, or a
//!   `416`, starts from the first byte; a `403` (the assignment changed) checks in
//!   at once; any other error status waits for the next check-in. [`DOWNLOAD_ATTEMPTS`] connections per check-in, with a
//!   growing pause; then the next check-in tries again (resuming).
//! - **Re-fetch.** A bundle refused for something corruption in transit can cause
//!   (a format error, a payload hash mismatch, a bad signature by a trusted key, or
//!   bytes that verify but are not the assigned bundle) is fetched once more from the
//!   first byte; refused again, it is reported and remembered.
//! - **Trial and settle.** Load, instantiate, `init`, `health-check`, then events
//!   until the [`Supervisor`] decides (at most [`Config::trial_events`]); a healthy
//!   trial that runs out of events is confirmed. Then settle (confirm or roll back)
//!   and report `installed`, then `confirmed` or `rolled-back`. A restart during a
//!   trial is inconclusive: up to the board's `trial_restarts` the trial runs again
//!   after the restart (after [`TRIAL_RETRY_PAUSE_MS`], doubled per restart); only a
//!   failed trial, or one more restart than that, rolls it back.
//! - **What runs.** The active component, after every change and at the start.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use embedded_storage::nor_flash::NorFlash;
use tern_core::bundle::BundleError;
use tern_core::host::Platform;
use tern_core::policy::Rejection;
use tern_core::protocol::{self, Assignment, CheckIn, CheckInReply};
use tern_core::{Engine, Event, Instance};

use crate::error::AgentError;
use crate::slots::{ComponentInfo, Expected, Receiving, SlotManager};
use crate::supervisor::{ComponentId, Decision, Report, Supervisor, TrialPolicy};

/// Reports the agent keeps until a check-in delivers them; past this the oldest is
/// dropped (and the drop counted and reported).
pub const REPORT_QUEUE_LEN: usize = 16;
/// Refused or rolled-back bundles remembered so they are not fetched again (in RAM:
/// a restart forgets them; the server blocks them too until they are reassigned).
pub const REFUSED_LEN: usize = 8;
/// Connections one download may use per check-in before it waits for the next.
pub const DOWNLOAD_ATTEMPTS: u32 = 8;
/// The first pause after a failed check-in; it doubles up to the poll period.
pub const BACKOFF_FIRST_MS: u64 = 250;
/// The pause before download attempt `n + 1` is `n` times this.
pub const DOWNLOAD_PAUSE_MS: u64 = 200;
/// The pause before a trial interrupted by a restart runs again, doubled per restart.
pub const TRIAL_RETRY_PAUSE_MS: u64 = 500;
/// A progress notice every this many bytes of a download.
pub const PROGRESS_EVERY: u64 = 16 * 1024;
/// Bytes of an error page kept for the notice.
const PAGE_LEN: usize = 256;
/// The first byte of a journal ([`ReportQueue::to_journal`]).
const JOURNAL_FORMAT: u8 = 1;

/// The device path of check-ins.
pub const CHECK_IN_PATH: &str = "/device/v1/check-in";

/// How an agent behaves; the rest comes from the board table.
#[derive(Clone, Debug)]
pub struct Config {
    /// The device's id on the fleet server.
    pub device: String,
    /// Longest wait between check-ins (the server's `poll_after_ms` can shorten it).
    pub poll_ms: u32,
    /// Events a trial must handle after its health check before it is confirmed
    /// (fewer if the workload has fewer).
    pub trial_events: u32,
}

/// An HTTP method the agent uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET` (bundle downloads).
    Get,
    /// `POST` (check-ins).
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request for the driver to send to the fleet server, with the device's bearer
/// token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, such as `/device/v1/check-in`.
    pub path: String,
    /// `Range: bytes=N-`, when set.
    pub range_from: Option<u64>,
    /// The body (`application/octet-stream`; empty for a `GET`).
    pub body: Vec<u8>,
}

/// Whether the driver should keep reading a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Stop reading and drop the connection; then call [`Agent::response_end`].
    Stop,
}

/// How loud a [`Notice`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Progress and outcomes that went well.
    Info,
    /// Something failed and will be tried again.
    Warn,
    /// Something was refused or rolled back.
    Error,
}

/// Something the driver should log. [`fmt::Display`] is the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// At start: the active component.
    Active(ComponentInfo),
    /// At start: nothing is installed.
    NothingInstalled,
    /// At start: the active slot failed verification and will not run.
    BootFault(AgentError),
    /// At start: what the restart did (a trial it interrupted was rolled back).
    AfterRestart(Report),
    /// A check-in did not reach the server; reports are kept.
    CheckInFailed(String),
    /// The server answered a check-in with an error.
    CheckInRefused {
        /// HTTP status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// The server's reply did not decode.
    ReplyRefused(protocol::ProtocolError),
    /// The queue was full: this many reports were dropped, oldest first.
    ReportsDropped(u32),
    /// The report queue could not be kept in flash (it stays in RAM).
    JournalNotSaved(AgentError),
    /// The journal in flash is not a report queue; it was ignored.
    JournalUnreadable,
    /// An assignment to fetch.
    Assigned(Assignment),
    /// The inactive slot already holds this much of the assigned bundle.
    Resuming {
        /// Bytes already there.
        from: u64,
        /// The bundle's length.
        total: u32,
    },
    /// Download progress.
    Progress {
        /// Bytes received.
        received: u64,
        /// The bundle's length.
        total: u32,
    },
    /// A connection ended before the bundle did; the next resumes.
    Interrupted {
        /// Bytes received.
        received: u64,
        /// The bundle's length.
        total: u32,
        /// Why.
        reason: String,
    },
    /// The download stopped until the next check-in.
    DownloadFailed(String),
    /// The bundle was refused for something transit can cause: fetched once more.
    Refetching(AgentError),
    /// Verified and stored in the inactive slot.
    Staged(ComponentInfo),
    /// A trial run starts.
    TrialStarted(ComponentId),
    /// At start: a restart interrupted this component's trial; it runs again.
    TrialInterrupted {
        /// The component.
        component: ComponentId,
        /// Restarts during its trials so far.
        restarts: u8,
        /// Restarts the board takes as inconclusive before it rolls back.
        allowed: u8,
    },
    /// The outcome of an update: confirmed, rolled back, or refused.
    Outcome {
        /// What was assigned (names a refused bundle the report cannot).
        name: String,
        /// Its version.
        version: tern_core::bundle::Version,
        /// The report sent to the server.
        report: Report,
    },
}

impl Notice {
    /// How loud it is.
    pub fn level(&self) -> Level {
        match self {
            Notice::Active(_)
            | Notice::NothingInstalled
            | Notice::Assigned(_)
            | Notice::Resuming { .. }
            | Notice::Progress { .. }
            | Notice::Staged(_)
            | Notice::TrialStarted(_) => Level::Info,
            Notice::Outcome {
                report: Report::Confirmed { .. } | Report::Installed { .. },
                ..
            } => Level::Info,
            Notice::CheckInFailed(_)
            | Notice::AfterRestart(_)
            | Notice::Interrupted { .. }
            | Notice::DownloadFailed(_)
            | Notice::Refetching(_)
            | Notice::ReportsDropped(_)
            | Notice::JournalNotSaved(_)
            | Notice::JournalUnreadable
            | Notice::TrialInterrupted { .. } => Level::Warn,
            Notice::BootFault(_)
            | Notice::CheckInRefused { .. }
            | Notice::ReplyRefused(_)
            | Notice::Outcome { .. } => Level::Error,
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Active(a) => write!(
                f,
                "active: {} {} (counter {}) in slot {}",
                a.name, a.version, a.security_counter, a.slot
            ),
            Notice::NothingInstalled => f.write_str("no component installed yet"),
            Notice::BootFault(e) => write!(f, "flash: {e}"),
            Notice::AfterRestart(r) => write!(f, "after restart: {r}"),
            Notice::CheckInFailed(why) => write!(f, "check-in failed: {why}"),
            Notice::CheckInRefused { status, body } => {
                write!(f, "check-in refused: HTTP {status}: {body}")
            }
            Notice::ReplyRefused(e) => write!(f, "check-in reply refused: {e}"),
            Notice::ReportsDropped(n) => write!(
                f,
                "report queue full: {n} oldest report(s) dropped; the server is told how many"
            ),
            Notice::JournalNotSaved(e) => write!(
                f,
                "reports not kept in flash ({e}); they are sent from RAM, and a restart before then loses them"
            ),
            Notice::JournalUnreadable => {
                f.write_str("the report journal in flash is unreadable: ignored")
            }
            Notice::Assigned(a) => write!(
                f,
                "assigned {} {} (counter {}, {} bytes): downloading",
                a.name, a.version, a.security_counter, a.len
            ),
            Notice::Resuming { from, total } => write!(
                f,
                "resuming the download at byte {from} of {total} (already in flash)"
            ),
            Notice::Progress { received, total } => {
                write!(f, "downloading: {received} of {total} bytes")
            }
            Notice::Interrupted {
                received,
                total,
                reason,
            } => write!(
                f,
                "download interrupted at {received} of {total} bytes ({reason}): resuming"
            ),
            Notice::DownloadFailed(why) => {
                write!(
                    f,
                    "download failed: {why}; trying again at the next check-in"
                )
            }
            Notice::Refetching(e) => write!(
                f,
                "refused ({e}): possibly corrupted in transit, fetching it once more from the first byte"
            ),
            Notice::Staged(i) => write!(
                f,
                "verified and staged {} {} in slot {}",
                i.name, i.version, i.slot
            ),
            Notice::TrialStarted(c) => write!(f, "trial of {} {}", c.name, c.version),
            Notice::TrialInterrupted {
                component,
                restarts,
                allowed,
            } => write!(
                f,
                "a restart interrupted the trial of {component}: restart {restarts} of the {allowed} taken as inconclusive, running it again"
            ),
            Notice::Outcome {
                report: Report::Confirmed { component },
                ..
            } => write!(f, "confirmed {component}: now active"),
            Notice::Outcome {
                report: Report::RolledBack { component, reason },
                name,
                version,
            } => match component {
                Some(c) => write!(f, "rolled back {c}: {reason}"),
                None => write!(f, "rolled back {name} {version}: {reason}"),
            },
            Notice::Outcome {
                report: Report::Rejected { reason },
                name,
                version,
            } => write!(f, "rejected {name} {version}: {reason}"),
            Notice::Outcome {
                report: Report::Installed { component },
                ..
            } => write!(f, "installed {component}"),
        }
    }
}

/// What the agent asks its driver to do next.
#[derive(Debug)]
pub enum Action {
    /// Send this request and feed the answer back (see the module docs).
    Send(Request),
    /// Run the staged component's trial: [`Agent::run_trial`].
    Trial,
    /// Run this component from now on (`None`: nothing to run). The payload is
    /// [`SlotManager::active_payload`] of [`Agent::slots_mut`].
    Run(Option<ComponentInfo>),
    /// Log this.
    Notice(Notice),
    /// Nothing to do before this time (milliseconds on the driver's clock); poll
    /// again then (or earlier: nothing breaks).
    WaitUntil(u64),
}

/// What a box feeds a component: its `init` config, its events, and the platform its
/// host calls reach. The gateway's is an events file on a simulated platform; the
/// QEMU device's is its sensor feed.
pub trait Workload {
    /// The `init(config)` pairs.
    fn config(&self) -> &[(String, String)];
    /// The events, in order.
    fn events(&self) -> &[Event];
    /// A fresh platform for an instance.
    fn platform(&mut self) -> Box<dyn Platform + Send>;
    /// Called before event `event` is handed to the component (a platform whose
    /// sensors follow the events reads it here).
    fn observe(&mut self, event: &Event);
}

/// The bounded report queue: oldest first, the oldest dropped when full.
#[derive(Clone, Debug, Default)]
pub struct ReportQueue {
    items: VecDeque<protocol::Report>,
    /// Reports dropped since the server was last told.
    dropped: u32,
}

impl ReportQueue {
    /// Queues `r`, dropping (and counting) the oldest if the queue is full. Returns
    /// whether one was dropped.
    pub fn push(&mut self, r: protocol::Report) -> bool {
        let full = self.items.len() >= REPORT_QUEUE_LEN;
        if full {
            self.items.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.items.push_back(r);
        full
    }

    /// Reports waiting, not counting the drop notice.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is waiting (no report and no drop to tell).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.dropped == 0
    }

    /// Reports dropped and not yet told.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// What the next check-in carries: a drop notice first if there is one, then the
    /// oldest reports, [`protocol::MAX_REPORTS`] in all.
    pub fn batch(&self) -> Batch {
        let mut reports = Vec::new();
        if self.dropped > 0 {
            reports.push(protocol::Report::Dropped {
                count: self.dropped,
            });
        }
        let room = protocol::MAX_REPORTS - reports.len();
        let queued = self.items.len().min(room);
        reports.extend(self.items.iter().take(queued).cloned());
        Batch {
            reports,
            queued,
            dropped: self.dropped,
        }
    }

    /// A check-in carrying `batch` got a reply: those reports leave the queue.
    pub fn delivered(&mut self, batch: &Batch) {
        // Items are only ever taken from the front, and nothing but `push` adds; if
        // reports were dropped while the batch was out, fewer of its items are left.
        let gone = (self.dropped.saturating_sub(batch.dropped)) as usize;
        let take = batch.queued.saturating_sub(gone).min(self.items.len());
        self.items.drain(..take);
        self.dropped = self.dropped.saturating_sub(batch.dropped);
    }

    /// The journal that keeps this queue in flash, at most `capacity` bytes: a format
    /// byte (1), then postcard of the dropped count and the reports, oldest first.
    /// Reports that do not fit are left out, oldest first, and counted as dropped.
    pub fn to_journal(&self, capacity: usize) -> Vec<u8> {
        let mut skip = 0;
        loop {
            let reports: Vec<&protocol::Report> = self.items.iter().skip(skip).collect();
            let dropped = self.dropped.saturating_add(skip as u32);
            let mut bytes = alloc::vec![JOURNAL_FORMAT];
            if let Ok(body) = postcard::to_allocvec(&(dropped, reports)) {
                bytes.extend_from_slice(&body);
                if bytes.len() <= capacity {
                    return bytes;
                }
            }
            if skip >= self.items.len() {
                return Vec::new();
            }
            skip += 1;
        }
    }

    /// The queue a journal holds; `None` if it is not one (an empty journal is an
    /// empty queue).
    pub fn from_journal(bytes: &[u8]) -> Option<ReportQueue> {
        let Some((&format, body)) = bytes.split_first() else {
            return Some(ReportQueue::default());
        };
        if format != JOURNAL_FORMAT {
            return None;
        }
        let (dropped, reports): (u32, Vec<protocol::Report>) = postcard::from_bytes(body).ok()?;
        let mut q = ReportQueue {
            items: VecDeque::new(),
            dropped,
        };
        for r in reports {
            q.push(r);
        }
        Some(q)
    }

    /// Takes back the newest report (an outcome whose slot change did not commit).
    fn pop_newest(&mut self) -> Option<protocol::Report> {
        self.items.pop_back()
    }
}

/// The reports one check-in carries, and what they stand for in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The reports, in order.
    pub reports: Vec<protocol::Report>,
    queued: usize,
    dropped: u32,
}

/// The bundle an outcome is about: its SHA-256 (for the report and the refused
/// set), name and version (for the notice).
#[derive(Clone, Debug)]
struct Subject {
    sha256: [u8; 32],
    name: String,
    version: tern_core::bundle::Version,
}

impl From<&Assignment> for Subject {
    fn from(a: &Assignment) -> Self {
        Subject {
            sha256: a.sha256,
            name: a.name.clone(),
            version: a.version,
        }
    }
}

impl From<&ComponentId> for Subject {
    fn from(c: &ComponentId) -> Self {
        Subject {
            sha256: c.bundle_sha256,
            name: c.name.clone(),
            version: c.version,
        }
    }
}

/// A bundle transfer in progress.
struct Download {
    assignment: Assignment,
    /// The slot being written; `None` between connections until the next starts.
    rx: Option<Receiving>,
    /// Whether the next start must be from the first byte (no resume from flash).
    fresh: bool,
    /// Connections used in this round.
    attempts: u32,
    /// The one re-fetch from the first byte was used.
    refetched: bool,
    /// Don't connect again before this time.
    not_before: u64,
    /// The answer being read.
    status: Option<u16>,
    /// Whether the request asked for a range.
    ranged: bool,
    /// An error page, kept for the notice.
    page: Vec<u8>,
    /// The slot manager refused the bytes; the connection is being dropped.
    refused: Option<AgentError>,
    last_progress: u64,
    /// The rate window of this answer: when it started and the bytes received then.
    rate_window: Option<(u64, u64)>,
    /// The answer stayed below the board's download floor: bytes a second it came at.
    too_slow: Option<u64>,
}

/// Where the agent is.
enum Phase {
    /// Waiting to check in at this time.
    Idle { at: u64 },
    /// A check-in is out.
    CheckingIn {
        batch: Batch,
        status: Option<u16>,
        body: Vec<u8>,
    },
    /// A download is out or about to be.
    Downloading(Box<Download>),
    /// The staged component waits for its trial, not before this time.
    Trial(Subject, u64),
}

/// The update agent (see the module docs).
pub struct Agent<F: NorFlash> {
    config: Config,
    slots: SlotManager<F>,
    reports: ReportQueue,
    refused: VecDeque<[u8; 32]>,
    notices: VecDeque<Notice>,
    phase: Phase,
    /// Whether the driver should be told what to run.
    rerun: bool,
    /// Consecutive failed check-ins.
    failures: u32,
    /// Check-ins that got an answer or failed.
    check_ins: u32,
}

impl<F: NorFlash> fmt::Debug for Agent<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("device", &self.config.device)
            .field("slots", &self.slots)
            .field("reports", &self.reports.len())
            .field("check_ins", &self.check_ins)
            .finish_non_exhaustive()
    }
}

impl<F: NorFlash> Agent<F> {
    /// An agent over opened slots. What the boot found (the active component, a
    /// fault, a trial the restart rolled back) comes out as the first notices, and
    /// the rollback as the first report.
    pub fn new(config: Config, mut slots: SlotManager<F>) -> Self {
        let mut notices = VecDeque::new();
        let mut reports = ReportQueue::from_journal(slots.journal()).unwrap_or_else(|| {
            notices.push_back(Notice::JournalUnreadable);
            ReportQueue::default()
        });
        if let Some(fault) = slots.boot_fault() {
            notices.push_back(Notice::BootFault(fault.clone()));
        }
        let mut changed = false;
        let mut refused = VecDeque::new();
        if let Some(r) = slots.take_boot_report() {
            if let Report::RolledBack {
                component: Some(c), ..
            } = &r
            {
                // Rolled back for good: not fetched again, as after a failed trial.
                refused.push_back(c.bundle_sha256);
            }
            reports.push(r.to_protocol([0; 32]));
            notices.push_back(Notice::AfterRestart(r));
            changed = true;
        }
        notices.push_back(match slots.active() {
            Some(a) => Notice::Active(a.clone()),
            None => Notice::NothingInstalled,
        });
        let mut phase = Phase::Idle { at: 0 };
        if let Some((component, restarts)) = slots.interrupted_trial() {
            // Inconclusive: run the trial again, after a pause that grows with every
            // restart (a component that crashes the device should not do so at once).
            notices.push_back(Notice::TrialInterrupted {
                component: component.clone(),
                restarts: *restarts,
                allowed: slots.board().trial_restarts(),
            });
            let pause = TRIAL_RETRY_PAUSE_MS << (*restarts).min(8);
            phase = Phase::Trial(Subject::from(component), pause);
        }
        let mut agent = Agent {
            config,
            slots,
            reports,
            refused,
            notices,
            phase,
            rerun: true,
            failures: 0,
            check_ins: 0,
        };
        if changed {
            agent.persist();
        }
        agent
    }

    /// Keeps the report queue in flash (a metadata commit, when it changed).
    fn persist(&mut self) {
        let journal = self.reports.to_journal(self.slots.journal_capacity());
        if let Err(e) = self.slots.save_journal(journal) {
            self.notices.push_back(Notice::JournalNotSaved(e));
        }
    }

    /// Stages the report queue for the next metadata commit (see
    /// [`SlotManager::stage_journal`]).
    fn stage(&mut self) {
        let journal = self.reports.to_journal(self.slots.journal_capacity());
        // Cannot fail: the journal was cut to the capacity.
        let _ = self.slots.stage_journal(journal);
    }

    /// The slots (read the active payload to run it).
    pub fn slots(&self) -> &SlotManager<F> {
        &self.slots
    }

    /// The slots, mutably (to read a payload).
    pub fn slots_mut(&mut self) -> &mut SlotManager<F> {
        &mut self.slots
    }

    /// Gives the slots back.
    pub fn into_slots(self) -> SlotManager<F> {
        self.slots
    }

    /// The report queue.
    pub fn reports(&self) -> &ReportQueue {
        &self.reports
    }

    /// Check-ins answered or failed so far.
    pub fn check_ins(&self) -> u32 {
        self.check_ins
    }

    /// Whether the agent is between check-ins (no request out, no trial waiting).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle { .. })
    }

    /// What to do next, at `now` (milliseconds on the driver's clock).
    pub fn poll(&mut self, now: u64) -> Action {
        if let Some(n) = self.notices.pop_front() {
            return Action::Notice(n);
        }
        if self.rerun {
            self.rerun = false;
            return Action::Run(self.slots.active().cloned());
        }
        match &mut self.phase {
            Phase::Idle { at } if now < *at => Action::WaitUntil(*at),
            Phase::Idle { .. } => self.start_check_in(),
            Phase::CheckingIn { .. } => Action::WaitUntil(now),
            Phase::Trial(_, at) if now < *at => Action::WaitUntil(*at),
            Phase::Trial(..) => Action::Trial,
            Phase::Downloading(d) if d.rx.is_some() => Action::WaitUntil(now),
            Phase::Downloading(d) if now < d.not_before => Action::WaitUntil(d.not_before),
            Phase::Downloading(_) => self.start_connection(now),
        }
    }

    fn start_check_in(&mut self) -> Action {
        let batch = self.reports.batch();
        let msg = CheckIn {
            version: protocol::PROTOCOL_VERSION,
            device: self.config.device.clone(),
            board: self.slots.board().name().to_string(),
            installed: self.slots.active().map(ComponentInfo::installed),
            reports: batch.reports.clone(),
        };
        // Reasons are cut to their limit when queued, so only a device id outside the
        // protocol's rules can fail here; the server would refuse it anyway.
        let body = msg.encode().unwrap_or_default();
        self.phase = Phase::CheckingIn {
            batch,
            status: None,
            body: Vec::new(),
        };
        Action::Send(Request {
            method: Method::Post,
            path: CHECK_IN_PATH.to_string(),
            range_from: None,
            body,
        })
    }

    /// Starts the next connection of a download: resumes from what the inactive
    /// slot holds, or starts from the first byte.
    fn start_connection(&mut self, now: u64) -> Action {
        let Phase::Downloading(d) = &mut self.phase else {
            return Action::WaitUntil(now);
        };
        let a = &d.assignment;
        let rx = if d.fresh {
            d.fresh = false;
            self.slots.start_receiving()
        } else {
            let expected = Expected {
                bundle_len: a.len,
                name: &a.name,
                version: a.version,
                security_counter: a.security_counter,
            };
            match self.slots.resume_receiving(&expected) {
                Ok(Some(rx)) => {
                    if d.attempts == 0 {
                        self.notices.push_back(Notice::Resuming {
                            from: rx.accepted(),
                            total: a.len,
                        });
                    }
                    Ok(rx)
                }
                Ok(None) => self.slots.start_receiving(),
                Err(e) => Err(e),
            }
        };
        let rx = match rx {
            Ok(rx) => rx,
            Err(e) => {
                self.refuse(now, e);
                return self.poll(now);
            }
        };
        let Phase::Downloading(d) = &mut self.phase else {
            return Action::WaitUntil(now);
        };
        let from = rx.accepted();
        d.attempts += 1;
        d.status = None;
        d.page.clear();
        d.last_progress = from;
        d.ranged = from > 0;
        d.rx = Some(rx);
        if from >= u64::from(d.assignment.len) {
            // Everything is in flash already: just finish.
            self.finish_download(now);
            return self.poll(now);
        }
        Action::Send(Request {
            method: Method::Get,
            path: format!("/device/v1/bundles/{}", d.assignment.bundle_id),
            range_from: (from > 0).then_some(from),
            body: Vec::new(),
        })
    }

    /// The status of the answer to the last [`Action::Send`].
    pub fn response_head(&mut self, status: u16) {
        match &mut self.phase {
            Phase::CheckingIn { status: s, .. } => *s = Some(status),
            Phase::Downloading(d) => {
                d.status = Some(status);
                // Each answer is measured against the floor on its own.
                d.rate_window = None;
                if status == 200 && d.ranged {
                    // The server sends the whole bundle: start again from byte 0.
                    d.last_progress = 0;
                    match self.slots.start_receiving() {
                        Ok(rx) => d.rx = Some(rx),
                        Err(e) => d.refused = Some(e),
                    }
                }
            }
            Phase::Idle { .. } | Phase::Trial(..) => {}
        }
    }

    /// The next piece of the answer's body, arrived at `now`.
    pub fn response_data(&mut self, now: u64, chunk: &[u8]) -> Flow {
        match &mut self.phase {
            Phase::CheckingIn { status, body, .. } => {
                if *status == Some(200) {
                    if body.len() + chunk.len() > protocol::MAX_REPLY_LEN {
                        return Flow::Stop;
                    }
                    body.extend_from_slice(chunk);
                } else {
                    keep_page(body, chunk);
                }
                Flow::Continue
            }
            Phase::Downloading(d) => {
                if !matches!(d.status, Some(200 | 206)) {
                    keep_page(&mut d.page, chunk);
                    return Flow::Continue;
                }
                let (Some(rx), None) = (d.rx.as_mut(), &d.refused) else {
                    return Flow::Stop;
                };
                let total = u64::from(d.assignment.len);
                let window = *d.rate_window.get_or_insert((now, rx.accepted()));
                let take = (chunk.len() as u64).min(total.saturating_sub(rx.accepted())) as usize;
                if let Err(e) = rx.write(&mut self.slots, &chunk[..take]) {
                    d.refused = Some(e);
                    return Flow::Stop;
                }
                let received = rx.accepted();
                if received.saturating_sub(d.last_progress) >= PROGRESS_EVERY || received == total {
                    d.last_progress = received;
                    self.notices.push_back(Notice::Progress {
                        received,
                        total: d.assignment.len,
                    });
                }
                // Bytes past the assigned length are never read: a server (or a
                // man in the middle) that sends more than it announced, without end,
                // gets the connection closed once the signed length has arrived.
                if take < chunk.len() {
                    return Flow::Stop;
                }
                // The board's floor: a window of the answer that brought fewer bytes a
                // second than the floor drops the connection (the next one resumes).
                let floor = self.slots.board().download_floor();
                let elapsed = now.saturating_sub(window.0);
                if floor.min_bytes_per_s > 0 && elapsed >= u64::from(floor.window_s) * 1000 {
                    let rate = received.saturating_sub(window.1).saturating_mul(1000) / elapsed;
                    if rate < u64::from(floor.min_bytes_per_s) && received < total {
                        d.too_slow = Some(rate);
                        return Flow::Stop;
                    }
                    d.rate_window = Some((now, received));
                }
                Flow::Continue
            }
            Phase::Idle { .. } | Phase::Trial(..) => Flow::Stop,
        }
    }

    /// The answer ended (or the driver stopped reading it after [`Flow::Stop`]).
    pub fn response_end(&mut self, now: u64) {
        match core::mem::replace(&mut self.phase, Phase::Idle { at: now }) {
            Phase::CheckingIn {
                batch,
                status,
                body,
            } => self.check_in_answered(now, &batch, status.unwrap_or(0), &body),
            Phase::Downloading(d) => {
                self.phase = Phase::Downloading(d);
                self.connection_ended(now, None);
            }
            other => self.phase = other,
        }
    }

    /// The request could not be sent, or the connection dropped before the answer
    /// ended.
    pub fn transport_failed(&mut self, now: u64, reason: &str) {
        match core::mem::replace(&mut self.phase, Phase::Idle { at: now }) {
            Phase::CheckingIn { .. } => {
                self.check_ins += 1;
                self.notices
                    .push_back(Notice::CheckInFailed(reason.to_string()));
                self.back_off(now);
            }
            Phase::Downloading(d) => {
                self.phase = Phase::Downloading(d);
                self.connection_ended(now, Some(reason));
            }
            other => self.phase = other,
        }
    }

    fn back_off(&mut self, now: u64) {
        self.failures = self.failures.saturating_add(1);
        let exp = BACKOFF_FIRST_MS.saturating_mul(1 << self.failures.min(16).saturating_sub(1));
        self.phase = Phase::Idle {
            at: now + exp.min(u64::from(self.config.poll_ms)),
        };
    }

    fn check_in_answered(&mut self, now: u64, batch: &Batch, status: u16, body: &[u8]) {
        self.check_ins += 1;
        if status != 200 {
            self.notices.push_back(Notice::CheckInRefused {
                status,
                body: String::from_utf8_lossy(body).trim().to_string(),
            });
            if status >= 500 {
                self.back_off(now);
            } else {
                // 401/403: the provisioning is wrong; knocking faster will not help.
                self.phase = Phase::Idle {
                    at: now + u64::from(self.config.poll_ms),
                };
            }
            return;
        }
        let reply = match CheckInReply::decode(body) {
            Ok(r) => r,
            Err(e) => {
                self.notices.push_back(Notice::ReplyRefused(e));
                self.back_off(now);
                return;
            }
        };
        self.failures = 0;
        if !batch.reports.is_empty() {
            self.reports.delivered(batch);
            self.persist();
        }
        let wait = u64::from(self.config.poll_ms.min(reply.poll_after_ms));
        self.phase = Phase::Idle { at: now + wait };
        let active = self.slots.active().map(|a| a.bundle_sha256);
        if let Some(a) = reply.assignment
            && Some(a.sha256) != active
            && !self.refused.contains(&a.sha256)
        {
            if let Some(installed) = self.slots.installed_counter()
                && a.security_counter <= installed
            {
                // A downgrade: refused on the assignment's word, before any download
                // (the signed header would be refused the same way).
                let reason = AgentError::Rejected(Rejection::Downgrade {
                    offered: a.security_counter,
                    installed,
                });
                self.settled(now, &Subject::from(&a), Report::Rejected { reason });
                return;
            }
            self.notices.push_back(Notice::Assigned(a.clone()));
            self.phase = Phase::Downloading(Box::new(Download {
                assignment: a,
                rx: None,
                fresh: false,
                attempts: 0,
                refetched: false,
                not_before: now,
                status: None,
                ranged: false,
                page: Vec::new(),
                refused: None,
                last_progress: 0,
                rate_window: None,
                too_slow: None,
            }));
        }
    }

    /// A download connection ended: finished, refused, or cut short.
    fn connection_ended(&mut self, now: u64, transport: Option<&str>) {
        let Phase::Downloading(d) = &mut self.phase else {
            return;
        };
        if let Some(e) = d.refused.take() {
            d.rx = None;
            self.refuse(now, e);
            return;
        }
        let total = u64::from(d.assignment.len);
        match d.status {
            Some(200 | 206) | None => {}
            Some(416) if d.ranged && d.attempts < DOWNLOAD_ATTEMPTS => {
                // The server refuses the offset: start again from the first byte.
                d.rx = None;
                d.fresh = true;
                self.notices.push_back(Notice::Interrupted {
                    received: 0,
                    total: d.assignment.len,
                    reason: "the server refused the range (HTTP 416); starting again".to_string(),
                });
                return;
            }
            Some(status) => {
                let why = format!(
                    "server answered HTTP {status}: {}",
                    String::from_utf8_lossy(&d.page).trim()
                );
                self.notices.push_back(Notice::DownloadFailed(why));
                // 403: the assignment changed; the next check-in says what to do.
                self.phase = Phase::Idle {
                    at: if status == 403 {
                        now
                    } else {
                        now + u64::from(self.config.poll_ms)
                    },
                };
                return;
            }
        }
        let received = d.rx.as_ref().map_or(0, Receiving::accepted);
        if received >= total {
            self.finish_download(now);
            return;
        }
        // Cut short. What arrived is in flash; the next connection resumes after it.
        d.rx = None;
        if d.attempts >= DOWNLOAD_ATTEMPTS {
            let why = format!(
                "{received} of {total} bytes after {} connections",
                d.attempts
            );
            self.notices.push_back(Notice::DownloadFailed(why));
            self.phase = Phase::Idle {
                at: now + u64::from(self.config.poll_ms),
            };
            return;
        }
        let floor = self.slots.board().download_floor();
        let reason = match d.too_slow.take() {
            Some(rate) => format!(
                "the download came at {rate} bytes/s for {} s, below the board's floor of {} \
                 bytes/s (download.min-rate); dropped to try again",
                floor.window_s, floor.min_bytes_per_s
            ),
            None => transport
                .unwrap_or("the connection closed early")
                .to_string(),
        };
        self.notices.push_back(Notice::Interrupted {
            received,
            total: d.assignment.len,
            reason,
        });
        d.not_before = now + DOWNLOAD_PAUSE_MS * u64::from(d.attempts);
    }

    /// The whole bundle is in the slot: finish (hash, read-back, stage) and check it
    /// is the assigned one.
    fn finish_download(&mut self, now: u64) {
        let Phase::Downloading(d) = &mut self.phase else {
            return;
        };
        let Some(rx) = d.rx.take() else {
            return;
        };
        match rx.finish(&mut self.slots) {
            Ok(info) if info.bundle_sha256 == d.assignment.sha256 => {
                let a = d.assignment.clone();
                self.notices.push_back(Notice::Staged(info.clone()));
                // Committed with the trial's start, the next metadata commit.
                self.queue_only(
                    Report::Installed {
                        component: info.id(),
                    }
                    .to_protocol(a.sha256),
                );
                self.stage();
                self.phase = Phase::Trial(Subject::from(&a), now);
            }
            Ok(_) => {
                // Verified and signed, but not the bundle the server assigned: never
                // run something nobody asked for. The staged slot is overwritten by
                // the next update.
                let _ = self.slots.reject();
                self.refuse(now, AgentError::NotAssigned);
            }
            Err(e) => self.refuse(now, e),
        }
    }

    /// The slot manager refused the download: fetch it once more from the first byte
    /// if transit could be to blame, else report and remember it.
    fn refuse(&mut self, now: u64, e: AgentError) {
        let Phase::Downloading(d) = &mut self.phase else {
            return;
        };
        if !d.refetched && transit_could_cause(&e) {
            d.refetched = true;
            d.fresh = true;
            d.rx = None;
            d.refused = None;
            d.not_before = now;
            self.notices.push_back(Notice::Refetching(e));
            return;
        }
        let a = Subject::from(&d.assignment);
        self.settled(now, &a, Report::Rejected { reason: e });
    }

    /// Queues an outcome (and keeps it in flash), remembers a failure, and checks in
    /// at once to report it.
    fn settled(&mut self, now: u64, a: &Subject, report: Report) {
        self.queue(report.to_protocol(a.sha256));
        self.settled_queued(now, a, report);
    }

    /// [`Self::settled`] for an outcome already queued and committed.
    fn settled_queued(&mut self, now: u64, a: &Subject, report: Report) {
        if !matches!(report, Report::Confirmed { .. }) {
            if self.refused.len() >= REFUSED_LEN {
                self.refused.pop_front();
            }
            self.refused.push_back(a.sha256);
        }
        self.notices.push_back(Notice::Outcome {
            name: a.name.clone(),
            version: a.version,
            report,
        });
        self.phase = Phase::Idle { at: now };
    }

    /// Queues a report and keeps the queue in flash.
    fn queue(&mut self, r: protocol::Report) {
        self.queue_only(r);
        self.persist();
    }

    /// Queues a report in RAM only (the caller commits it).
    fn queue_only(&mut self, r: protocol::Report) {
        if self.reports.push(r) {
            self.notices
                .push_back(Notice::ReportsDropped(self.reports.dropped()));
        }
    }

    /// Runs the trial [`Action::Trial`] asked for, on `engine` over `workload`, and
    /// settles it: confirm or roll back, report, and run what is active after it.
    pub fn run_trial<E: Engine>(&mut self, now: u64, engine: &E, workload: &mut dyn Workload) {
        let Phase::Trial(a, _) = core::mem::replace(&mut self.phase, Phase::Idle { at: now })
        else {
            return;
        };
        let info = match self.slots.start_trial() {
            Ok(i) => i,
            Err(reason) => {
                self.settled(now, &a, Report::Rejected { reason });
                return;
            }
        };
        let policy = TrialPolicy {
            events_required: self.config.trial_events.min(workload.events().len() as u32),
            ..TrialPolicy::default()
        };
        let mut sup = Supervisor::new(info.id(), policy);
        self.notices.push_back(Notice::TrialStarted(info.id()));
        // The payload is read from flash, loaded, and dropped before anything runs:
        // a device's heap holds it or the instance's translated code, not both
        // (a composed app's 48 KB image did not fit beside its running trial).
        let loaded = match self.slots.trial_payload() {
            Ok(wasm) => engine.load(&wasm, &info.grant),
            Err(e) => Err(tern_core::Error::Engine(e.to_string())),
        };
        match loaded {
            Ok(component) => trial(&mut sup, engine, &component, workload),
            Err(e) => {
                sup.loaded(Err(e));
            }
        }
        if matches!(sup.decision(), Decision::Pending) {
            // Out of events: a healthy component with too little traffic is no fault.
            sup.deadline_passed();
        }
        // The outcome goes into the journal of the very commit that confirms or rolls
        // back, so a restart can never lose the report of a settled trial.
        let Some(outcome) = sup.report() else {
            self.settled(
                now,
                &a,
                Report::Rejected {
                    reason: AgentError::UpdateAborted,
                },
            );
            return;
        };
        self.queue_only(outcome.to_protocol(a.sha256));
        self.stage();
        match sup.settle(&mut self.slots) {
            Ok(_) => self.settled_queued(now, &a, outcome),
            Err(reason) => {
                // Not settled: that report is not true.
                self.reports.pop_newest();
                self.settled(now, &a, Report::Rejected { reason });
            }
        }
        self.rerun = true;
    }
}

/// The trial run of a loaded component: instantiate, `init`, `health-check`, then
/// events until the supervisor decides.
fn trial<E: Engine>(
    sup: &mut Supervisor,
    engine: &E,
    component: &E::Component,
    workload: &mut dyn Workload,
) {
    let mut inst = match engine.instantiate(component, workload.platform()) {
        Ok(i) => i,
        Err(e) => {
            sup.loaded(Err(e));
            return;
        }
    };
    sup.loaded(Ok(()));
    let config = workload.config().to_vec();
    sup.init(inst.init(&config));
    sup.health_check(inst.health_check());
    let events = workload.events().to_vec();
    for event in &events {
        if !matches!(sup.decision(), Decision::Pending) {
            break;
        }
        workload.observe(event);
        let r = inst.on_event(event);
        sup.event(&r);
    }
}

/// Whether corruption in transit could be why the slot manager refused a bundle: a
/// format error, a payload longer or different than signed, a signature by a trusted
/// key that does not verify, or verified bytes that are not the assigned bundle.
pub fn transit_could_cause(e: &AgentError) -> bool {
    match e {
        AgentError::Bundle(_) | AgentError::PayloadTooLong { .. } | AgentError::NotAssigned => true,
        AgentError::Rejected(Rejection::NotEnoughSignatures { bad_signature, .. }) => {
            *bad_signature
        }
        AgentError::SlotCorrupt { reason, .. } => matches!(
            reason,
            crate::error::CorruptReason::Bundle(BundleError::PayloadHashMismatch)
        ),
        _ => false,
    }
}

fn keep_page(page: &mut Vec<u8>, chunk: &[u8]) {
    let room = PAGE_LEN.saturating_sub(page.len());
    page.extend_from_slice(&chunk[..chunk.len().min(room)]);
}

#[cfg(test)]
mod tests;
