//! The slot manager: two component slots on NOR flash, updated so that a power cut
//! at any instant leaves a device that boots a valid, signed component.
//!
//! # What a slot holds
//!
//! A slot holds a whole signed bundle, header and payload, exactly as it travelled.
//! At every boot the manager re-verifies the active slot from flash (signatures
//! against the board's trust keys, the board's policy, the payload's SHA-256) before
//! it hands the component out; a slot that fails is never run.
//!
//! # The update, step by step
//!
//! 1. [`SlotManager::begin_update`] runs [`check_install`] on the header against the
//!    board and the persisted security counter. A refusal writes nothing.
//! 2. It erases only the inactive slot (only the sectors the bundle needs) and writes
//!    the header; [`Update::write`] streams the payload in, hashing as it goes.
//! 3. [`Update::finish`] checks the payload's length and hash, reads the whole slot
//!    back and checks it hashes to exactly the bytes verified on the way in, and
//!    records the slot as *staged*.
//! 4. [`SlotManager::start_trial`] checks the staged slot again (after a reboot, in
//!    full, signatures included) and records it as *trial*: the agent now runs it. A
//!    restart before the next step rolls it back.
//! 5. [`SlotManager::confirm`] records the trial slot as *active* and the security
//!    counter as the new component's, in one metadata commit; or
//!    [`SlotManager::reject`] records it as *rejected* and the old component stays.
//!
//! The active slot is never erased or written: updates go to the other slot, and it
//! becomes active only in the commit that confirms it. Each step is one atomic
//! metadata commit (see [`crate::meta`]), so a cut leaves either the state before it
//! or the state after it. A staged slot about to be overwritten is first recorded as
//! empty, so the metadata never names a slot that is being erased.
//!
//! # Wear
//!
//! A commit erases one metadata sector; a whole update makes three or four commits, so
//! each of the two metadata sectors is erased up to twice per update: some 5,000
//! updates on a part rated for 10,000 erase cycles, 50,000 on one rated for 100,000.
//! Slot sectors are erased once per update that lands in them.
//!
//! # Not (yet) here
//!
//! - A download interrupted by a reboot starts again from the first byte: progress
//!   is not persisted, so resuming needs the transport's range requests and a new
//!   update.
//! - No factory image: a blank device has nothing to run until its first update
//!   is confirmed.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use embedded_storage::nor_flash::{NorFlash, NorFlashError};
use sha2::{Digest, Sha256};
use tern_core::Granted;
use tern_core::board::BoardTable;
use tern_core::bundle::{
    BundleError, DOMAIN, Header, HeaderDecoder, Manifest, PayloadChecker, Version, sha256,
};
use tern_core::policy::check_install;

use crate::error::{AgentError, CorruptReason, FlashOp};
use crate::layout::SlotLayout;
use crate::meta::{RECORD_LEN, Record, SlotState};
use crate::supervisor::{ComponentId, Report, RollbackReason};

/// Bytes read from flash at a time while verifying a slot.
const READ_CHUNK: usize = 256;

/// One of the two component slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotId {
    /// 0 for slot A, 1 for slot B.
    pub index: usize,
    /// The board's name for it (`a`, `b`).
    pub name: &'static str,
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A verified component in a slot: what its signed manifest says, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The slot.
    pub slot: SlotId,
    /// Component name.
    pub name: String,
    /// Component version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u64,
    /// Bytes of the stored bundle, header and payload.
    pub bundle_len: u32,
    /// Where the payload starts in the bundle (the header's length).
    pub payload_offset: u32,
    /// Payload (core wasm) bytes.
    pub payload_len: u32,
    /// SHA-256 of the payload, as signed.
    pub payload_sha256: [u8; 32],
    /// SHA-256 of the whole bundle: its id on the fleet server.
    pub bundle_sha256: [u8; 32],
    /// What the component runs with: exactly what its manifest requests, as the
    /// board's policy granted it.
    pub grant: Granted,
}

impl ComponentInfo {
    fn new(
        slot: SlotId,
        m: Manifest,
        payload_offset: u32,
        grant: Granted,
        bundle_sha256: [u8; 32],
    ) -> Self {
        ComponentInfo {
            slot,
            name: m.name,
            version: m.version,
            security_counter: m.security_counter,
            bundle_len: payload_offset + m.payload_len,
            payload_offset,
            payload_len: m.payload_len,
            payload_sha256: m.payload_sha256,
            bundle_sha256,
            grant,
        }
    }

    /// Name, version and counter, as reports carry them.
    pub fn id(&self) -> ComponentId {
        ComponentId {
            name: self.name.clone(),
            version: self.version,
            security_counter: self.security_counter,
            bundle_sha256: self.bundle_sha256,
        }
    }

    /// What a check-in says the device runs, when this is the active component.
    pub fn installed(&self) -> tern_core::protocol::Installed {
        tern_core::protocol::Installed {
            name: self.name.clone(),
            version: self.version,
            security_counter: self.security_counter,
            bundle_sha256: self.bundle_sha256,
        }
    }
}

/// The bundle header's bytes, exactly as they were received and signed.
fn header_bytes(header: &Header) -> Vec<u8> {
    let mut bytes = header.signed_message();
    bytes.drain(..DOMAIN.len());
    bytes.push(header.signatures.len() as u8);
    for r in &header.signatures {
        bytes.extend_from_slice(&r.key_id);
        bytes.extend_from_slice(&r.signature);
    }
    bytes
}

fn flash_err<E: NorFlashError>(op: FlashOp, offset: u32) -> impl FnOnce(E) -> AgentError {
    move |e| AgentError::Flash {
        op,
        offset,
        kind: e.kind(),
    }
}

/// A/B component slots on a NOR flash, with power-fail-safe updates.
///
/// `F` is the board's component-flash partition; every offset in the
/// [`SlotLayout`] is relative to it.
pub struct SlotManager<F: NorFlash> {
    flash: F,
    layout: SlotLayout,
    board: BoardTable,
    record: Record,
    /// The metadata sector that holds `record`; `None` on blank flash.
    current: Option<usize>,
    active: Option<ComponentInfo>,
    trial: Option<ComponentInfo>,
    /// The component this boot staged (so its trial need not check signatures again).
    staged: Option<ComponentInfo>,
    boot_fault: Option<AgentError>,
    boot_report: Option<Report>,
    /// What an erased byte reads as.
    erased: u8,
    /// The agent's journal, as committed with the current record (or staged for the
    /// next commit).
    journal: Vec<u8>,
    /// Whether `journal` was staged and not yet committed.
    journal_staged: bool,
    /// A trial this boot found interrupted by a restart and staged again, with the
    /// restarts so far.
    interrupted: Option<(ComponentId, u8)>,
}

/// The bundle a resumed transfer must be, as the fleet's assignment names it.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// Whole bundle length (header and payload).
    pub bundle_len: u32,
    /// Component name.
    pub name: &'a str,
    /// Component version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u64,
}

/// How much of a stored bundle [`SlotManager::verify_slot`] checks.
#[derive(Clone, Copy)]
enum Check {
    /// Everything a boot checks: the board's policy, with this installed counter, and
    /// the payload's length and hash.
    Policy(Option<u64>),
    /// Only that it parses and its payload matches: enough to name it in a report.
    Identify,
}

impl<F: NorFlash> fmt::Debug for SlotManager<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotManager")
            .field("board", &self.board.name())
            .field("states", &self.record.states)
            .field("installed_counter", &self.record.counter)
            .field("active", &self.active)
            .field("trial", &self.trial)
            .finish_non_exhaustive()
    }
}

/// What [`SlotManager::prepare_update`] decided: the slot is erased and ready.
struct Prepared {
    manifest: Manifest,
    header_len: u32,
    grant: Granted,
    slot: usize,
    bundle_len: u32,
    declared: u32,
    checker: PayloadChecker,
    header_bytes: Vec<u8>,
}

impl<F: NorFlash> SlotManager<F> {
    /// Opens the slots after a boot: reads the metadata, rolls back a trial that was
    /// never confirmed (the device restarted during it), and verifies the active
    /// slot.
    ///
    /// Fails only if the layout does not fit the flash, the metadata cannot be read,
    /// or a rollback cannot be recorded. An active slot that fails verification (or
    /// cannot be read) is not an error here: [`Self::active`] is then `None`,
    /// [`Self::boot_fault`] says why, and an update can still be installed.
    pub fn open(flash: F, layout: SlotLayout, board: &BoardTable) -> Result<Self, AgentError> {
        layout.validate(flash.capacity(), F::ERASE_SIZE, F::WRITE_SIZE)?;
        let mut mgr = SlotManager {
            flash,
            layout,
            board: *board,
            record: Record::BLANK,
            current: None,
            active: None,
            trial: None,
            staged: None,
            boot_fault: None,
            boot_report: None,
            erased: 0xFF,
            journal: Vec::new(),
            journal_staged: false,
            interrupted: None,
        };
        mgr.load_metadata()?;
        if let Some(t) = mgr.record.slot_in(SlotState::Trial) {
            // The trial was never confirmed. A restart proves nothing either way, so up
            // to the board's `trial_restarts` it is inconclusive: the bundle is staged
            // again and its trial runs again. Past that it is rolled back. The name is
            // only for the report; failing to read it must not stop the rollback.
            let component = mgr.verify_slot(t, Check::Identify).ok().map(|i| i.id());
            let restarts = mgr.record.trial_restarts.saturating_add(1);
            let mut r = mgr.record;
            if restarts <= mgr.board.trial_restarts() {
                r.states[t] = SlotState::Staged;
                r.trial_restarts = restarts;
                mgr.commit(r)?;
                mgr.interrupted = component.map(|c| (c, restarts));
            } else {
                r.states[t] = SlotState::Rejected;
                r.trial_restarts = 0;
                mgr.commit(r)?;
                mgr.boot_report = Some(Report::RolledBack {
                    component,
                    reason: RollbackReason::RestartedDuringTrial { restarts },
                });
            }
        }
        if let Some(a) = mgr.record.slot_in(SlotState::Active) {
            // A slot that does not verify, or does not even read, is not run; but the
            // agent still opens, so that an update can replace it.
            match mgr.verify_slot(a, Check::Policy(None)) {
                Ok(info) => mgr.active = Some(info),
                Err(e) => mgr.boot_fault = Some(e),
            }
        }
        Ok(mgr)
    }

    /// The confirmed, verified component to run, if any.
    pub fn active(&self) -> Option<&ComponentInfo> {
        self.active.as_ref()
    }

    /// The component on trial, if a trial is running.
    pub fn trial(&self) -> Option<&ComponentInfo> {
        self.trial.as_ref()
    }

    /// The component staged by this boot and not yet on trial, if any. (A bundle
    /// staged before a reboot is verified, and named, when its trial starts.)
    pub fn staged(&self) -> Option<&ComponentInfo> {
        self.staged.as_ref()
    }

    /// The security counter of the last confirmed component (`None`: never any).
    /// It never goes down.
    pub fn installed_counter(&self) -> Option<u64> {
        self.record.counter
    }

    /// The state of each slot, A then B.
    pub fn slot_states(&self) -> [SlotState; 2] {
        self.record.states
    }

    /// Slot `index` (0 or 1).
    pub fn slot_id(&self, index: usize) -> SlotId {
        SlotId {
            index,
            name: self.layout.slots[index].name,
        }
    }

    /// Why the active slot failed verification at boot, if it did.
    pub fn boot_fault(&self) -> Option<&AgentError> {
        self.boot_fault.as_ref()
    }

    /// A trial that a restart interrupted and that this boot staged again (within the
    /// board's `trial_restarts`), with the restarts so far: its trial should run
    /// again. `None` once that trial has started.
    pub fn interrupted_trial(&self) -> Option<&(ComponentId, u8)> {
        self.interrupted.as_ref()
    }

    /// What happened at boot that the server should hear about (a trial rolled back
    /// because the device restarted during it too often); returned once.
    pub fn take_boot_report(&mut self) -> Option<Report> {
        self.boot_report.take()
    }

    /// The board this manager installs for.
    pub fn board(&self) -> &BoardTable {
        &self.board
    }

    /// The slot layout.
    pub fn layout(&self) -> &SlotLayout {
        &self.layout
    }

    /// Gives the flash back.
    pub fn release(self) -> F {
        self.flash
    }

    /// The active component's payload (core wasm), read from flash and checked
    /// against its signed SHA-256 again, so only verified bytes reach an engine.
    pub fn active_payload(&mut self) -> Result<Vec<u8>, AgentError> {
        let info = self.active.clone().ok_or(AgentError::NothingInstalled {
            action: "read the active payload",
        })?;
        self.load(&info, false)
    }

    /// The active component's whole bundle (header and payload), payload hash checked.
    pub fn active_bundle(&mut self) -> Result<Vec<u8>, AgentError> {
        let info = self.active.clone().ok_or(AgentError::NothingInstalled {
            action: "read the active bundle",
        })?;
        self.load(&info, true)
    }

    /// The trial component's payload, hash checked like [`Self::active_payload`].
    pub fn trial_payload(&mut self) -> Result<Vec<u8>, AgentError> {
        let info = self.trial.clone().ok_or(AgentError::NoTrial {
            action: "read the trial payload",
        })?;
        self.load(&info, false)
    }

    /// Reads active payload bytes from `offset` into `buf`, for loaders that stream
    /// the module; returns how many bytes were read (0 at the end). The slot was
    /// verified at boot; these reads are not hashed again.
    pub fn read_active_payload(
        &mut self,
        offset: u32,
        buf: &mut [u8],
    ) -> Result<usize, AgentError> {
        let info = self.active.as_ref().ok_or(AgentError::NothingInstalled {
            action: "read the active payload",
        })?;
        let n = (info.payload_len.saturating_sub(offset) as usize).min(buf.len());
        let at = self.layout.slots[info.slot.index].offset + info.payload_offset + offset;
        self.read(at, &mut buf[..n])?;
        Ok(n)
    }

    /// Checks `header` against the board and the installed counter, then erases the
    /// inactive slot and writes the header: the start of an update. Nothing is erased
    /// or written if the bundle is refused.
    pub fn begin_update(&mut self, header: &Header) -> Result<Update<'_, F>, AgentError> {
        let mut prepared = self.prepare_update(header)?;
        let bytes = core::mem::take(&mut prepared.header_bytes);
        let mut state = UpdateState::new(prepared);
        state.program(self, &bytes)?;
        Ok(Update { mgr: self, state })
    }

    /// Starts an update from the whole bundle as a byte stream (header first), for
    /// transports that do not parse the header themselves, and for the embedded-svc
    /// OTA API.
    pub fn begin_bundle(&mut self) -> Result<BundleWriter<'_, F>, AgentError> {
        let rx = self.start_receiving()?;
        Ok(BundleWriter { mgr: self, rx })
    }

    /// [`Self::begin_bundle`] as an owned [`Receiving`], for callers that keep the
    /// manager and the update side by side.
    pub fn start_receiving(&mut self) -> Result<Receiving, AgentError> {
        if let Some(t) = self.record.slot_in(SlotState::Trial) {
            return Err(AgentError::TrialInProgress {
                slot: self.layout.slots[t].name,
            });
        }
        Ok(Receiving {
            stage: RxStage::Header(HeaderDecoder::new()),
            accepted: 0,
        })
    }

    /// Picks up a bundle transfer that an earlier attempt, or an earlier boot, left
    /// part-written in the inactive slot, so only the rest has to be fetched.
    ///
    /// The slot's content counts only if its header is complete, names exactly the
    /// `expected` bundle (name, version, counter, total length) and passes the board's
    /// policy again; the bytes written so far are re-hashed from flash, and the write
    /// position is the end of the last write unit holding a programmed byte. Nothing
    /// is erased or written here. `Ok(None)`: nothing to resume, start from the first
    /// byte. Whatever was resumed is still checked whole at [`Receiving::finish`]
    /// (signed payload hash, read-back), so a stale or torn prefix can only cost a
    /// re-fetch, never install anything.
    pub fn resume_receiving(
        &mut self,
        expected: &Expected<'_>,
    ) -> Result<Option<Receiving>, AgentError> {
        if let Some(t) = self.record.slot_in(SlotState::Trial) {
            return Err(AgentError::TrialInProgress {
                slot: self.layout.slots[t].name,
            });
        }
        let target = self.record.slot_in(SlotState::Active).map_or(0, |a| 1 - a);
        let slot = self.layout.slots[target];
        let len = expected.bundle_len;
        if len == 0 || len > slot.size {
            return Ok(None);
        }
        // The header, read back through the same decoder a transfer uses.
        let mut decoder = HeaderDecoder::new();
        let mut buf = [0u8; READ_CHUNK];
        let mut pos = 0u32;
        let header = loop {
            if pos >= len {
                return Ok(None);
            }
            let n = (len - pos).min(READ_CHUNK as u32) as usize;
            // A unit that does not read (ECC over a torn write) means: start again.
            if self.read(slot.offset + pos, &mut buf[..n]).is_err() {
                return Ok(None);
            }
            pos += n as u32;
            match decoder.feed(&buf[..n]) {
                Err(_) => return Ok(None),
                Ok(None) => {}
                Ok(Some((header, _))) => break header,
            }
        };
        let m = &header.manifest;
        if m.name != expected.name
            || m.version != expected.version
            || m.security_counter != expected.security_counter
            || header.len() as u64 + u64::from(m.payload_len) != u64::from(len)
        {
            return Ok(None);
        }
        // How far the slot is written: scan back from the end for a programmed byte.
        let unit = F::WRITE_SIZE.max(1) as u32;
        let mut end = len;
        let mut last = None;
        while end > 0 && last.is_none() {
            let n = end.min(READ_CHUNK as u32);
            let from = end - n;
            if self
                .read(slot.offset + from, &mut buf[..n as usize])
                .is_err()
            {
                return Ok(None);
            }
            last = buf[..n as usize]
                .iter()
                .rposition(|b| *b != self.erased)
                .map(|i| from + i as u32);
            end = from;
        }
        let Some(last) = last else {
            return Ok(None);
        };
        let written = ((last + 1).div_ceil(unit) * unit).min(len);
        let header_len = header.len() as u32;
        if written <= header_len {
            return Ok(None);
        }
        let Ok(prepared) = self.plan_update(&header) else {
            // Refused now: a fresh transfer gets the refusal with its reason.
            return Ok(None);
        };
        if prepared.slot != target {
            return Ok(None);
        }
        self.forget_staged(target)?;
        let mut state = UpdateState::new(prepared);
        let mut at = 0u32;
        while at < written {
            let n = (written - at).min(READ_CHUNK as u32) as usize;
            if self.read(slot.offset + at, &mut buf[..n]).is_err() {
                return Ok(None);
            }
            let chunk = &buf[..n];
            state.whole.update(chunk);
            let payload_from = (header_len.saturating_sub(at) as usize).min(n);
            if let Some(checker) = state.checker.as_mut()
                && checker.update(&chunk[payload_from..]).is_err()
            {
                return Ok(None);
            }
            at += n as u32;
        }
        state.received = u64::from(written - header_len);
        state.written = written;
        Ok(Some(Receiving {
            stage: RxStage::Payload(Box::new(state)),
            accepted: u64::from(written),
        }))
    }

    /// The agent's journal (its undelivered reports), as last committed with the slot
    /// metadata; empty on blank flash.
    pub fn journal(&self) -> &[u8] {
        &self.journal
    }

    /// The most journal bytes a record can carry: a metadata sector less the record's
    /// head.
    pub fn journal_capacity(&self) -> usize {
        (self.layout.sector_size as usize)
            .saturating_sub(RECORD_LEN)
            .min(usize::from(u16::MAX))
    }

    /// Sets the journal the next metadata commit carries, without committing: a
    /// report staged here lands in the same atomic commit as the slot change it
    /// reports. Fails, changing nothing, if it is longer than
    /// [`Self::journal_capacity`].
    pub fn stage_journal(&mut self, journal: Vec<u8>) -> Result<(), AgentError> {
        if journal.len() > self.journal_capacity() {
            return Err(AgentError::JournalTooLong {
                len: journal.len(),
                capacity: self.journal_capacity(),
            });
        }
        self.journal = journal;
        self.journal_staged = true;
        Ok(())
    }

    /// Commits `journal` with the current slot metadata (nothing is written if it is
    /// the journal already committed).
    pub fn save_journal(&mut self, journal: Vec<u8>) -> Result<(), AgentError> {
        if journal == self.journal && !self.journal_staged && self.current.is_some() {
            return Ok(());
        }
        let old = core::mem::take(&mut self.journal);
        if let Err(e) = self.stage_journal(journal) {
            self.journal = old;
            return Err(e);
        }
        match self.commit(self.record) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.journal = old;
                Err(e)
            }
        }
    }

    /// The value an erased flash byte reads as (`0xFF` unless
    /// [`Self::set_erased_value`] said otherwise); [`Self::resume_receiving`] needs it
    /// to tell written bytes from erased ones.
    pub fn erased_value(&self) -> u8 {
        self.erased
    }

    /// Sets [`Self::erased_value`], for flash that erases to `0x00`.
    pub fn set_erased_value(&mut self, erased: u8) {
        self.erased = erased;
    }

    /// Starts the trial of the staged component: checks it again from flash (if this
    /// boot staged it, that its bytes still hash to what was verified; otherwise
    /// everything, signatures included) and records it as on trial. It is rolled back at the next boot unless
    /// [`Self::confirm`]ed first.
    pub fn start_trial(&mut self) -> Result<ComponentInfo, AgentError> {
        if let Some(t) = self.record.slot_in(SlotState::Trial) {
            return Err(AgentError::TrialInProgress {
                slot: self.layout.slots[t].name,
            });
        }
        let s = self
            .record
            .slot_in(SlotState::Staged)
            .ok_or(AgentError::NothingStaged)?;
        let checked = match self.staged.take().filter(|i| i.slot.index == s) {
            Some(info) => {
                let slot = self.layout.slots[s];
                if self.hash_slot(s, info.bundle_len)? == info.bundle_sha256 {
                    Ok(info)
                } else {
                    Err(AgentError::SlotCorrupt {
                        slot: slot.name,
                        reason: CorruptReason::ReadBack,
                    })
                }
            }
            None => self.verify_slot(s, Check::Policy(self.record.counter)),
        };
        let info = match checked {
            Ok(info) => info,
            Err(e @ AgentError::SlotCorrupt { .. }) => {
                let mut r = self.record;
                r.states[s] = SlotState::Rejected;
                self.commit(r)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let mut r = self.record;
        r.states[s] = SlotState::Trial;
        self.commit(r)?;
        self.trial = Some(info.clone());
        self.interrupted = None;
        Ok(info)
    }

    /// Confirms the trial: its slot becomes active, the old active slot is released,
    /// and the security counter rises to the new component's (never down), all in one
    /// metadata commit.
    pub fn confirm(&mut self) -> Result<ComponentInfo, AgentError> {
        let t = self
            .record
            .slot_in(SlotState::Trial)
            .ok_or(AgentError::NoTrial { action: "confirm" })?;
        let info = match &self.trial {
            Some(info) => info.clone(),
            None => self.verify_slot(t, Check::Policy(self.record.counter))?,
        };
        let mut r = self.record;
        r.states[t] = SlotState::Active;
        r.trial_restarts = 0;
        let old = 1 - t;
        if r.states[old] == SlotState::Active {
            r.states[old] = SlotState::Empty;
            r.lens[old] = 0;
        }
        r.counter = Some(
            r.counter
                .map_or(info.security_counter, |c| c.max(info.security_counter)),
        );
        self.commit(r)?;
        self.trial = None;
        self.active = Some(info.clone());
        Ok(info)
    }

    /// Rolls back the trial (or discards a staged update): its slot is recorded as
    /// rejected and the active component stays. Returns the slot.
    pub fn reject(&mut self) -> Result<SlotId, AgentError> {
        let s = self
            .record
            .slot_in(SlotState::Trial)
            .or_else(|| self.record.slot_in(SlotState::Staged))
            .ok_or(AgentError::NoTrial { action: "reject" })?;
        let mut r = self.record;
        r.states[s] = SlotState::Rejected;
        r.trial_restarts = 0;
        self.commit(r)?;
        self.trial = None;
        self.staged = None;
        self.interrupted = None;
        Ok(self.slot_id(s))
    }

    /// The policy check, the slot choice and the erase of [`Self::begin_update`].
    fn prepare_update(&mut self, header: &Header) -> Result<Prepared, AgentError> {
        let prepared = self.plan_update(header)?;
        self.forget_staged(prepared.slot)?;
        let slot = self.layout.slots[prepared.slot];
        let sector = u64::from(self.layout.sector_size);
        let erase_len = u64::from(prepared.bundle_len).div_ceil(sector) * sector;
        let end = slot.offset + erase_len as u32;
        self.flash
            .erase(slot.offset, end)
            .map_err(flash_err(FlashOp::Erase, slot.offset))?;
        Ok(prepared)
    }

    /// A staged bundle in `target` could still be started; forget it before its slot
    /// is written, so the metadata never names a slot being changed.
    fn forget_staged(&mut self, target: usize) -> Result<(), AgentError> {
        if self.record.states[target] == SlotState::Staged {
            let mut r = self.record;
            r.states[target] = SlotState::Empty;
            r.lens[target] = 0;
            r.trial_restarts = 0;
            self.commit(r)?;
            self.interrupted = None;
        }
        self.staged = None;
        Ok(())
    }

    /// The policy check and the slot choice of an update, changing nothing.
    fn plan_update(&mut self, header: &Header) -> Result<Prepared, AgentError> {
        if let Some(t) = self.record.slot_in(SlotState::Trial) {
            return Err(AgentError::TrialInProgress {
                slot: self.layout.slots[t].name,
            });
        }
        let grant = check_install(header, &self.board, self.record.counter)?;
        // Never the active slot, even when it failed verification at this boot: it may
        // be the only copy of something, and it is not ours to destroy.
        let target = self.record.slot_in(SlotState::Active).map_or(0, |a| 1 - a);
        let slot = self.layout.slots[target];
        let declared = header.manifest.payload_len;
        let bundle_len = header.len() as u64 + u64::from(declared);
        if bundle_len > u64::from(slot.size) {
            return Err(AgentError::TooLargeForSlot {
                bundle_len,
                slot_size: slot.size,
            });
        }
        let header_bytes = header_bytes(header);
        Ok(Prepared {
            manifest: header.manifest.clone(),
            header_len: header.len() as u32,
            grant,
            slot: target,
            bundle_len: bundle_len as u32,
            declared,
            checker: header.payload_checker(),
            header_bytes,
        })
    }

    /// Reads `buf.len()` bytes at `offset`, honouring the driver's read unit.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), AgentError> {
        let unit = F::READ_SIZE.max(1);
        let start = offset as usize;
        if unit == 1 || (start.is_multiple_of(unit) && buf.len().is_multiple_of(unit)) {
            return self
                .flash
                .read(offset, buf)
                .map_err(flash_err(FlashOp::Read, offset));
        }
        let aligned = start / unit * unit;
        let end = (start + buf.len()).div_ceil(unit) * unit;
        let mut tmp = vec![0u8; end - aligned];
        self.flash
            .read(aligned as u32, &mut tmp)
            .map_err(flash_err(FlashOp::Read, aligned as u32))?;
        buf.copy_from_slice(&tmp[start - aligned..start - aligned + buf.len()]);
        Ok(())
    }

    /// Reads the newest valid metadata record.
    ///
    /// A sector that does not read (flash with ECC reports an error for a record torn
    /// by a power cut) holds no record; the commit protocol never tears the current
    /// record, so the other sector has it. Only if neither sector reads is it an error.
    fn load_metadata(&mut self) -> Result<(), AgentError> {
        let mut best: Option<(usize, Record, Vec<u8>)> = None;
        let mut unreadable = None;
        for i in 0..2 {
            let at = self.layout.metadata_sector(i);
            let mut b = [0u8; RECORD_LEN];
            let mut read = self.read(at, &mut b);
            let mut journal = Vec::new();
            if read.is_ok()
                && let Some(len) = Record::journal_len(&b)
                && len <= self.journal_capacity()
            {
                journal.resize(len, 0);
                read = self.read(at + RECORD_LEN as u32, &mut journal);
            }
            if let Err(e) = read {
                if unreadable.is_some() {
                    return Err(e);
                }
                unreadable = Some(e);
                continue;
            }
            if let Some(r) = Record::decode(&b, &journal)
                && best.as_ref().is_none_or(|(_, cur, _)| r.seq > cur.seq)
            {
                best = Some((i, r, journal));
            }
        }
        if let Some((i, r, journal)) = best {
            self.current = Some(i);
            self.record = r;
            self.journal = journal;
        }
        Ok(())
    }

    /// Makes `new` the current record, with the current journal: erases the sector
    /// that does not hold the current one, writes `new` there with the next sequence
    /// number, reads it back.
    fn commit(&mut self, mut new: Record) -> Result<(), AgentError> {
        new.seq = self.record.seq.wrapping_add(1);
        let target = self.current.map_or(0, |i| 1 - i);
        let offset = self.layout.metadata_sector(target);
        self.flash
            .erase(offset, offset + self.layout.sector_size)
            .map_err(flash_err(FlashOp::Erase, offset))?;
        let unit = F::WRITE_SIZE.max(1);
        let mut bytes = new.encode(&self.journal);
        bytes.resize(bytes.len().div_ceil(unit) * unit, 0xFF);
        self.flash
            .write(offset, &bytes)
            .map_err(flash_err(FlashOp::Write, offset))?;
        let mut back = [0u8; RECORD_LEN];
        self.read(offset, &mut back)?;
        let mut journal = vec![0u8; self.journal.len()];
        self.read(offset + RECORD_LEN as u32, &mut journal)?;
        if Record::decode(&back, &journal) != Some(new) {
            return Err(AgentError::MetadataVerify { offset });
        }
        self.record = new;
        self.current = Some(target);
        self.journal_staged = false;
        Ok(())
    }

    /// Verifies the bundle recorded in slot `i` from flash as a boot does: it parses,
    /// the board's policy accepts it (with `installed` as the installed counter), and
    /// the payload matches its signed length and hash.
    fn verify_slot(&mut self, i: usize, check: Check) -> Result<ComponentInfo, AgentError> {
        let len = self.record.lens[i];
        let slot = self.layout.slots[i];
        let corrupt = |reason| AgentError::SlotCorrupt {
            slot: slot.name,
            reason,
        };
        if len == 0 || len > slot.size {
            return Err(corrupt(CorruptReason::Length { recorded: len }));
        }
        let mut decoder = HeaderDecoder::new();
        let mut whole = Sha256::new();
        let mut parsed: Option<(Header, Granted, PayloadChecker)> = None;
        let mut buf = [0u8; READ_CHUNK];
        let mut pos = 0u32;
        while pos < len {
            let n = (len - pos).min(READ_CHUNK as u32) as usize;
            self.read(slot.offset + pos, &mut buf[..n])?;
            pos += n as u32;
            let chunk = &buf[..n];
            whole.update(chunk);
            match &mut parsed {
                Some((_, _, checker)) => checker
                    .update(chunk)
                    .map_err(|e| corrupt(CorruptReason::Bundle(e)))?,
                None => match decoder.feed(chunk) {
                    Err(e) => return Err(corrupt(CorruptReason::Bundle(e))),
                    Ok(None) => {}
                    Ok(Some((header, rest))) => {
                        let grant = match check {
                            Check::Policy(installed) => {
                                check_install(&header, &self.board, installed)
                                    .map_err(|r| corrupt(CorruptReason::Rejected(r)))?
                            }
                            // Named in a report, never run: nothing is granted.
                            Check::Identify => Granted::nothing(),
                        };
                        let mut checker = header.payload_checker();
                        checker
                            .update(rest)
                            .map_err(|e| corrupt(CorruptReason::Bundle(e)))?;
                        parsed = Some((header, grant, checker));
                    }
                },
            }
        }
        let Some((header, grant, checker)) = parsed else {
            return Err(corrupt(CorruptReason::Bundle(decoder.truncated())));
        };
        checker
            .finish()
            .map_err(|e| corrupt(CorruptReason::Bundle(e)))?;
        Ok(ComponentInfo::new(
            self.slot_id(i),
            header.manifest.clone(),
            header.len() as u32,
            grant,
            whole.finalize().into(),
        ))
    }

    /// SHA-256 of the first `len` bytes of slot `i`, read from flash.
    fn hash_slot(&mut self, i: usize, len: u32) -> Result<[u8; 32], AgentError> {
        let offset = self.layout.slots[i].offset;
        let mut sha = Sha256::new();
        let mut buf = [0u8; READ_CHUNK];
        let mut pos = 0u32;
        while pos < len {
            let n = (len - pos).min(READ_CHUNK as u32) as usize;
            self.read(offset + pos, &mut buf[..n])?;
            sha.update(&buf[..n]);
            pos += n as u32;
        }
        Ok(sha.finalize().into())
    }

    /// Reads a verified component's payload (or whole bundle) and checks the hash.
    fn load(&mut self, info: &ComponentInfo, whole: bool) -> Result<Vec<u8>, AgentError> {
        let slot = self.layout.slots[info.slot.index];
        let mut bytes = vec![0u8; info.bundle_len as usize];
        self.read(slot.offset, &mut bytes)?;
        let payload = &bytes[info.payload_offset as usize..];
        if sha256(payload) != info.payload_sha256 {
            return Err(AgentError::SlotCorrupt {
                slot: slot.name,
                reason: CorruptReason::Bundle(BundleError::PayloadHashMismatch),
            });
        }
        if !whole {
            bytes.drain(..info.payload_offset as usize);
        }
        Ok(bytes)
    }
}

/// An update being written into the inactive slot: feed it the payload with
/// [`Update::write`], then [`Update::finish`]. Dropping it abandons the update; the
/// slot stays empty and the active component is untouched.
pub struct Update<'a, F: NorFlash> {
    mgr: &'a mut SlotManager<F>,
    state: UpdateState,
}

/// The progress of an update, owned: it borrows nothing, so a state machine (the
/// [`crate::agent::Agent`]) can keep it between calls while it holds the manager too.
/// Every method takes the manager the update was begun on.
struct UpdateState {
    manifest: Manifest,
    header_len: u32,
    grant: Granted,
    /// SHA-256 of every bundle byte programmed, to compare with the read-back.
    whole: Sha256,
    slot: usize,
    /// `None` once finished.
    checker: Option<PayloadChecker>,
    /// Payload bytes accepted so far.
    received: u64,
    /// Bytes not yet written because they do not fill a write unit.
    pending: Vec<u8>,
    /// Bytes written to the slot so far (a multiple of the write unit).
    written: u32,
    declared: u32,
    bundle_len: u32,
    failed: bool,
}

impl<F: NorFlash> fmt::Debug for Update<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("slot", &self.mgr.layout.slots[self.state.slot].name)
            .field("received", &self.state.received)
            .field("declared", &self.state.declared)
            .field("failed", &self.state.failed)
            .finish()
    }
}

impl<'a, F: NorFlash> Update<'a, F> {
    /// The slot being written.
    pub fn slot(&self) -> SlotId {
        self.mgr.slot_id(self.state.slot)
    }

    /// Payload bytes received so far.
    pub fn received(&self) -> u64 {
        self.state.received
    }

    /// Writes the next payload bytes. More bytes than the signed manifest declares
    /// abandon the update with [`AgentError::PayloadTooLong`].
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), AgentError> {
        self.state.write(self.mgr, chunk)
    }

    /// Ends the update: checks the payload's length and hash, pads the last write
    /// unit, reads the whole slot back and checks it hashes to exactly the bytes that
    /// were verified on the way in, and records it as staged.
    pub fn finish(mut self) -> Result<ComponentInfo, AgentError> {
        self.state.finish(self.mgr)
    }
}

impl UpdateState {
    fn new(p: Prepared) -> Self {
        UpdateState {
            manifest: p.manifest,
            header_len: p.header_len,
            grant: p.grant,
            whole: Sha256::new(),
            slot: p.slot,
            checker: Some(p.checker),
            received: 0,
            pending: Vec::new(),
            written: 0,
            declared: p.declared,
            bundle_len: p.bundle_len,
            failed: false,
        }
    }

    fn write<F: NorFlash>(
        &mut self,
        mgr: &mut SlotManager<F>,
        chunk: &[u8],
    ) -> Result<(), AgentError> {
        let Some(checker) = self.checker.as_mut().filter(|_| !self.failed) else {
            return Err(AgentError::UpdateAborted);
        };
        if checker.update(chunk).is_err() {
            self.failed = true;
            return Err(AgentError::PayloadTooLong {
                declared: self.declared,
            });
        }
        self.received += chunk.len() as u64;
        self.program(mgr, chunk)
    }

    fn finish<F: NorFlash>(
        &mut self,
        mgr: &mut SlotManager<F>,
    ) -> Result<ComponentInfo, AgentError> {
        let Some(checker) = self.checker.take().filter(|_| !self.failed) else {
            return Err(AgentError::UpdateAborted);
        };
        checker.finish().map_err(AgentError::Bundle)?;
        if !self.pending.is_empty() {
            // Any value can be programmed onto erased cells; the padding is never read.
            let mut unit = core::mem::take(&mut self.pending);
            unit.resize(F::WRITE_SIZE, 0xFF);
            self.write_flash(mgr, &unit)?;
        }
        let written: [u8; 32] = core::mem::replace(&mut self.whole, Sha256::new())
            .finalize()
            .into();
        if mgr.hash_slot(self.slot, self.bundle_len)? != written {
            return Err(AgentError::SlotCorrupt {
                slot: mgr.layout.slots[self.slot].name,
                reason: CorruptReason::ReadBack,
            });
        }
        let info = ComponentInfo::new(
            mgr.slot_id(self.slot),
            self.manifest.clone(),
            self.header_len,
            self.grant.clone(),
            written,
        );
        let mut r = mgr.record;
        r.states[self.slot] = SlotState::Staged;
        r.lens[self.slot] = self.bundle_len;
        r.trial_restarts = 0;
        mgr.commit(r)?;
        mgr.interrupted = None;
        mgr.staged = Some(info.clone());
        Ok(info)
    }

    /// Programs `bytes` after what is already written, a whole write unit at a time.
    fn program<F: NorFlash>(
        &mut self,
        mgr: &mut SlotManager<F>,
        mut bytes: &[u8],
    ) -> Result<(), AgentError> {
        self.whole.update(bytes);
        let unit = F::WRITE_SIZE.max(1);
        if !self.pending.is_empty() {
            let take = (unit - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < unit {
                return Ok(());
            }
            let full = core::mem::take(&mut self.pending);
            self.write_flash(mgr, &full)?;
            self.pending = full;
            self.pending.clear();
        }
        let aligned = bytes.len() / unit * unit;
        if aligned > 0 {
            self.write_flash(mgr, &bytes[..aligned])?;
        }
        self.pending.extend_from_slice(&bytes[aligned..]);
        Ok(())
    }

    fn write_flash<F: NorFlash>(
        &mut self,
        mgr: &mut SlotManager<F>,
        bytes: &[u8],
    ) -> Result<(), AgentError> {
        let offset = mgr.layout.slots[self.slot].offset + self.written;
        if let Err(e) = mgr.flash.write(offset, bytes) {
            self.failed = true;
            return Err(flash_err(FlashOp::Write, offset)(e));
        }
        self.written += bytes.len() as u32;
        Ok(())
    }
}

/// A whole bundle (header, then payload) being received into the inactive slot,
/// owned like the update it becomes: made by [`SlotManager::start_receiving`] or
/// [`SlotManager::resume_receiving`], fed with [`Receiving::write`] and ended with
/// [`Receiving::finish`], each given the same manager. Dropping it abandons the
/// update.
pub struct Receiving {
    stage: RxStage,
    /// Bundle bytes accepted so far, header included.
    accepted: u64,
}

enum RxStage {
    Header(HeaderDecoder),
    /// Boxed: an update carries its hashers and manifest, the other stages little.
    Payload(Box<UpdateState>),
    Failed,
}

impl fmt::Debug for Receiving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            RxStage::Header(..) => "header",
            RxStage::Payload(_) => "payload",
            RxStage::Failed => "failed",
        };
        f.debug_struct("Receiving")
            .field("stage", &stage)
            .field("accepted", &self.accepted)
            .finish()
    }
}

impl Receiving {
    /// Bundle bytes accepted so far, header included: where a resumed transfer
    /// continues (an HTTP `Range` from here).
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Writes the next bundle bytes. Once the header is complete it is checked against
    /// the board (nothing is erased before that), then the inactive slot is erased and
    /// the rest streams in. After an error every later write fails.
    pub fn write<F: NorFlash>(
        &mut self,
        mgr: &mut SlotManager<F>,
        chunk: &[u8],
    ) -> Result<(), AgentError> {
        let stage = core::mem::replace(&mut self.stage, RxStage::Failed);
        let (next, result) = match stage {
            RxStage::Header(mut decoder) => match decoder.feed(chunk) {
                Err(e) => (RxStage::Failed, Err(AgentError::Bundle(e))),
                Ok(None) => (RxStage::Header(decoder), Ok(())),
                Ok(Some((header, rest))) => match mgr.prepare_update(&header) {
                    Err(e) => (RxStage::Failed, Err(e)),
                    Ok(mut prepared) => {
                        let bytes = core::mem::take(&mut prepared.header_bytes);
                        let mut update = Box::new(UpdateState::new(prepared));
                        let result = update
                            .program(mgr, &bytes)
                            .and_then(|()| update.write(mgr, rest));
                        (RxStage::Payload(update), result)
                    }
                },
            },
            RxStage::Payload(mut update) => {
                let result = update.write(mgr, chunk);
                (RxStage::Payload(update), result)
            }
            RxStage::Failed => (RxStage::Failed, Err(AgentError::UpdateAborted)),
        };
        self.stage = if result.is_ok() {
            next
        } else {
            RxStage::Failed
        };
        if result.is_ok() {
            self.accepted += chunk.len() as u64;
        }
        result
    }

    /// Ends the bundle: like [`Update::finish`]; a bundle that ended inside its header
    /// is [`BundleError::Truncated`].
    pub fn finish<F: NorFlash>(
        self,
        mgr: &mut SlotManager<F>,
    ) -> Result<ComponentInfo, AgentError> {
        match self.stage {
            RxStage::Header(decoder) => Err(AgentError::Bundle(decoder.truncated())),
            RxStage::Payload(mut update) => update.finish(mgr),
            RxStage::Failed => Err(AgentError::UpdateAborted),
        }
    }
}

/// Feeds a whole bundle (header, then payload) into the inactive slot, parsing the
/// header as it streams in. Made by [`SlotManager::begin_bundle`].
pub struct BundleWriter<'a, F: NorFlash> {
    mgr: &'a mut SlotManager<F>,
    rx: Receiving,
}

impl<F: NorFlash> fmt::Debug for BundleWriter<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleWriter")
            .field("rx", &self.rx)
            .finish()
    }
}

impl<'a, F: NorFlash> BundleWriter<'a, F> {
    /// Writes the next bundle bytes: [`Receiving::write`].
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), AgentError> {
        self.rx.write(self.mgr, chunk)
    }

    /// Ends the bundle: [`Receiving::finish`].
    pub fn finish(self) -> Result<ComponentInfo, AgentError> {
        self.finish_returning().1
    }

    /// [`Self::finish`], handing back the manager.
    pub(crate) fn finish_returning(
        self,
    ) -> (&'a mut SlotManager<F>, Result<ComponentInfo, AgentError>) {
        let result = self.rx.finish(self.mgr);
        (self.mgr, result)
    }
}

#[cfg(test)]
mod tests;
