//! The fleet in memory: bundles, devices, assignments, and the decisions made on them
//! (who is offered what at check-in, who may download what).
//!
//! Every method that changes state returns the records to persist ([`Put`]s); the
//! caller queues them while it still holds the lock, so the store sees changes in
//! the order they were made.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use tern_core::board::BoardTable;
use tern_core::bundle::{Header, Target, Version};
use tern_core::policy::{check_install, verify_signatures};
use tern_core::protocol::{self, CheckIn, Report};
use tern_core::wit::hex_bytes;

use crate::store::{Loaded, Put, Table};

/// A bundle as stored: its bytes are in `bundles/<id>.tern`; this is the rest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BundleRecord {
    /// Bundle length in bytes.
    pub len: u32,
    /// When it was published (Unix ms).
    pub uploaded_at_ms: u64,
}

/// What one known board makes of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Verdict {
    /// The board.
    pub board: &'static str,
    /// Whether its trust keys accept the signatures (`None`) or why not.
    pub signatures: Option<String>,
    /// Whether it would install the bundle on a device with nothing installed
    /// (`None`) or why not ([`check_install`]'s reason).
    pub install: Option<String>,
}

/// A published bundle, with its parsed header and what each targeted board says.
#[derive(Clone, Debug)]
pub(crate) struct BundleInfo {
    /// Lowercase hex SHA-256 of the bundle bytes.
    pub id: String,
    /// SHA-256 of the bundle bytes.
    pub sha256: [u8; 32],
    /// Persisted fields.
    pub record: BundleRecord,
    /// The parsed header (signatures verified against `verdicts`).
    pub header: Header,
    /// One per known board the manifest targets (by name or by engine).
    pub verdicts: Vec<Verdict>,
}

impl BundleInfo {
    /// Judges `header` against every known board it targets.
    pub fn new(
        sha256: [u8; 32],
        record: BundleRecord,
        header: Header,
        boards: &[&'static BoardTable],
    ) -> BundleInfo {
        let verdicts = boards
            .iter()
            .filter(|b| targets(&header, b))
            .map(|b| Verdict {
                board: b.name(),
                signatures: verify_signatures(&header, b).err().map(|r| r.to_string()),
                install: check_install(&header, b, None).err().map(|r| r.to_string()),
            })
            .collect();
        BundleInfo {
            id: protocol::bundle_id(&sha256),
            sha256,
            record,
            header,
            verdicts,
        }
    }

    /// Boards whose trust keys accept the signatures.
    pub fn trusted_by(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.verdicts
            .iter()
            .filter(|v| v.signatures.is_none())
            .map(|v| v.board)
    }

    /// Why the server refuses to publish this bundle, if it does: no targeted board
    /// that the server knows trusts its signatures.
    pub fn refusal(&self, boards: &[&'static BoardTable]) -> Option<(String, Vec<String>)> {
        if self.trusted_by().next().is_some() {
            return None;
        }
        if self.verdicts.is_empty() {
            let targets: Vec<String> = self
                .header
                .manifest
                .targets
                .iter()
                .map(|t| match t {
                    Target::Board(b) => format!("board `{b}`"),
                    Target::Engine(e) => format!("engine `{}`", e.name()),
                })
                .collect();
            let known: Vec<&str> = boards.iter().map(|b| b.name()).collect();
            return Some((
                format!(
                    "bundle rejected: it targets {}, and no board this server knows matches (known boards: {})",
                    targets.join(", "),
                    known.join(", ")
                ),
                Vec::new(),
            ));
        }
        let details = self
            .verdicts
            .iter()
            .filter_map(|v| {
                v.signatures
                    .as_ref()
                    .map(|reason| format!("{}: {reason}", v.board))
            })
            .collect::<Vec<_>>();
        let first = details.first().cloned().unwrap_or_default();
        Some((
            format!("bundle rejected: no targeted board trusts its signatures ({first})"),
            details,
        ))
    }
}

fn targets(header: &Header, board: &BoardTable) -> bool {
    header.manifest.targets.iter().any(|t| match t {
        Target::Board(name) => name == board.name(),
        Target::Engine(e) => *e == board.engine(),
    })
}

/// A device as provisioned.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    /// Hex SHA-256 of the device's token.
    pub token_sha256: String,
    /// The group it belongs to, if any.
    pub group: Option<String>,
    /// When it was (last) provisioned (Unix ms).
    pub provisioned_at_ms: u64,
}

/// The component a device reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InstalledRecord {
    /// Component name.
    pub name: String,
    /// Component version.
    pub version: Version,
    /// Security counter.
    pub security_counter: u64,
    /// Bundle id.
    pub bundle: String,
}

/// The latest bundle a device refused or rolled back, so it is not offered again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Refusal {
    /// Bundle id.
    pub bundle: String,
    /// `rejected` or `rolled-back`.
    pub outcome: String,
    /// The device's reason.
    pub reason: String,
    /// When the server received the report (Unix ms).
    pub at_ms: u64,
}

/// What a device said at its last check-in.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Status {
    /// Its board.
    pub board: Option<String>,
    /// Its active component.
    pub installed: Option<InstalledRecord>,
    /// When it last checked in (Unix ms).
    pub last_check_in_ms: Option<u64>,
    /// Check-ins since it was provisioned. Persisted at least with every change
    /// of state; a crash may lose the count of the last plain polls.
    pub check_ins: u64,
    /// The latest bundle it refused or rolled back.
    pub refused: Option<Refusal>,
}

/// One report, as the server keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HistoryEntry {
    /// When the server received it (Unix ms).
    pub at_ms: u64,
    /// Bundle id.
    pub bundle: String,
    /// `installed`, `confirmed`, `rolled-back` or `rejected`.
    pub outcome: String,
    /// The device's reason, for `rolled-back` and `rejected`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

/// A device's recent reports, oldest first.
pub(crate) type History = VecDeque<HistoryEntry>;

/// A provisioned device.
#[derive(Clone, Debug)]
pub(crate) struct Device {
    /// Provisioning.
    pub record: DeviceRecord,
    /// Last check-in.
    pub status: Status,
    /// Reports.
    pub history: History,
}

/// An assignment: which bundle a device or group should run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AssignmentRecord {
    /// Bundle id.
    pub bundle: String,
    /// When it was made (Unix ms); a device's refusal of the bundle older than this
    /// is forgotten, so assigning again retries.
    pub assigned_at_ms: u64,
}

/// Who an assignment is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum AssignTarget {
    /// One device.
    Device(String),
    /// Every device provisioned into the group.
    Group(String),
}

impl AssignTarget {
    /// Parses `device:<id>` or `group:<name>`.
    pub fn parse(s: &str) -> Result<AssignTarget, String> {
        let (kind, name) = s.split_once(':').ok_or_else(|| {
            format!("assignment target `{s}` must be `device:<id>` or `group:<name>`")
        })?;
        if !protocol::valid_id(name) {
            return Err(format!(
                "`{name}` is not a valid {kind} name: use 1 to 64 letters, digits, '-', '_' and '.'"
            ));
        }
        match kind {
            "device" => Ok(AssignTarget::Device(name.to_string())),
            "group" => Ok(AssignTarget::Group(name.to_string())),
            _ => Err(format!(
                "assignment target `{s}` must start with `device:` or `group:`"
            )),
        }
    }

    /// `device:<id>` or `group:<name>`: the store key and the API's name.
    pub fn key(&self) -> String {
        match self {
            AssignTarget::Device(d) => format!("device:{d}"),
            AssignTarget::Group(g) => format!("group:{g}"),
        }
    }
}

/// What a device should do about its assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OfferState {
    /// It runs the assigned bundle.
    UpToDate,
    /// It should download and install it.
    Offered,
    /// It would not or could not install it; it is not offered.
    Blocked(String),
    /// The assigned bundle's file is missing from the data dir.
    Missing,
}

/// A device's effective assignment and what it means for the device.
pub(crate) struct Offer<'a> {
    /// Whom the assignment names (the device or its group).
    pub target: AssignTarget,
    /// The assignment.
    pub assignment: &'a AssignmentRecord,
    /// The bundle, if it is present.
    pub bundle: Option<&'a BundleInfo>,
    /// The decision.
    pub state: OfferState,
}

/// The whole fleet.
#[derive(Default)]
pub(crate) struct Fleet {
    /// Bundles by id.
    pub bundles: HashMap<String, BundleInfo>,
    /// Devices by id.
    pub devices: HashMap<String, Device>,
    /// Device id by token SHA-256.
    pub tokens: HashMap<[u8; 32], String>,
    /// Assignments.
    pub assignments: HashMap<AssignTarget, AssignmentRecord>,
}

/// Why a stored record could not be used.
fn bad_record(table: &str, key: &str, e: impl std::fmt::Display) -> String {
    format!("{table} record `{key}` does not decode: {e}")
}

impl Fleet {
    /// Rebuilds the fleet from stored records. `bundle` turns a bundle record into
    /// its info (reading the bundle's header from its file); bundles it cannot read
    /// are skipped with a logged error.
    pub fn load(
        loaded: &Loaded,
        mut bundle: impl FnMut(&str, BundleRecord) -> Result<BundleInfo, String>,
    ) -> Result<Fleet, String> {
        let rows = |t: Table| loaded.get(&t).map(Vec::as_slice).unwrap_or(&[]);
        let mut fleet = Fleet::default();
        for (id, v) in rows(Table::Bundles) {
            let record: BundleRecord =
                serde_json::from_slice(v).map_err(|e| bad_record("bundle", id, e))?;
            match bundle(id, record) {
                Ok(info) => {
                    fleet.bundles.insert(id.clone(), info);
                }
                Err(e) => tracing::error!(bundle = %id, error = %e, "bundle not loaded"),
            }
        }
        for (id, v) in rows(Table::Devices) {
            let record: DeviceRecord =
                serde_json::from_slice(v).map_err(|e| bad_record("device", id, e))?;
            let token: [u8; 32] = hex_bytes::decode(&record.token_sha256)
                .and_then(|t| t.try_into().ok())
                .ok_or_else(|| bad_record("device", id, "bad token hash"))?;
            fleet.tokens.insert(token, id.clone());
            fleet.devices.insert(
                id.clone(),
                Device {
                    record,
                    status: Status::default(),
                    history: History::new(),
                },
            );
        }
        for (id, v) in rows(Table::Status) {
            let status: Status =
                serde_json::from_slice(v).map_err(|e| bad_record("status", id, e))?;
            if let Some(d) = fleet.devices.get_mut(id) {
                d.status = status;
            }
        }
        for (id, v) in rows(Table::History) {
            let history: History =
                serde_json::from_slice(v).map_err(|e| bad_record("history", id, e))?;
            if let Some(d) = fleet.devices.get_mut(id) {
                d.history = history;
            }
        }
        for (key, v) in rows(Table::Assignments) {
            let a: AssignmentRecord =
                serde_json::from_slice(v).map_err(|e| bad_record("assignment", key, e))?;
            let target = AssignTarget::parse(key).map_err(|e| bad_record("assignment", key, e))?;
            fleet.assignments.insert(target, a);
        }
        Ok(fleet)
    }

    /// Adds a published bundle.
    pub fn add_bundle(&mut self, info: BundleInfo) -> Vec<Put> {
        let put = Put::set(Table::Bundles, &info.id, &info.record);
        self.bundles.insert(info.id.clone(), info);
        vec![put]
    }

    /// Provisions (or re-provisions) a device. Returns whether it is new, or an error
    /// if another device has the same token.
    pub fn provision(
        &mut self,
        id: &str,
        token_sha256: [u8; 32],
        group: Option<String>,
        now: u64,
    ) -> Result<(bool, Vec<Put>), String> {
        if let Some(other) = self.tokens.get(&token_sha256)
            && other != id
        {
            return Err(format!(
                "another device already uses this token; give device `{id}` a token of its own"
            ));
        }
        let record = DeviceRecord {
            token_sha256: hex_bytes::encode(&token_sha256),
            group,
            provisioned_at_ms: now,
        };
        let put = Put::set(Table::Devices, id, &record);
        let created = match self.devices.get_mut(id) {
            Some(d) => {
                if let Some(old) = hex_bytes::decode(&d.record.token_sha256)
                    .and_then(|t| <[u8; 32]>::try_from(t).ok())
                {
                    self.tokens.remove(&old);
                }
                d.record = record;
                false
            }
            None => {
                self.devices.insert(
                    id.to_string(),
                    Device {
                        record,
                        status: Status::default(),
                        history: History::new(),
                    },
                );
                true
            }
        };
        self.tokens.insert(token_sha256, id.to_string());
        Ok((created, vec![put]))
    }

    /// Sets an assignment.
    pub fn assign(&mut self, target: AssignTarget, record: AssignmentRecord) -> Vec<Put> {
        let put = Put::set(Table::Assignments, &target.key(), &record);
        self.assignments.insert(target, record);
        vec![put]
    }

    /// Removes an assignment; `None` if there was none.
    pub fn unassign(&mut self, target: &AssignTarget) -> Option<Vec<Put>> {
        self.assignments
            .remove(target)
            .map(|_| vec![Put::delete(Table::Assignments, &target.key())])
    }

    /// The assignment that applies to device `id`: its own, else its group's.
    pub fn effective(&self, id: &str) -> Option<(AssignTarget, &AssignmentRecord)> {
        let device = AssignTarget::Device(id.to_string());
        if let Some(a) = self.assignments.get(&device) {
            return Some((device, a));
        }
        let group = AssignTarget::Group(self.devices.get(id)?.record.group.clone()?);
        let a = self.assignments.get(&group)?;
        Some((group, a))
    }

    /// What device `id` should do about its assignment, given what it last said.
    pub fn offer(&self, id: &str, boards: &[&'static BoardTable]) -> Option<Offer<'_>> {
        let device = self.devices.get(id)?;
        let (target, assignment) = self.effective(id)?;
        let Some(bundle) = self.bundles.get(&assignment.bundle) else {
            return Some(Offer {
                target,
                assignment,
                bundle: None,
                state: OfferState::Missing,
            });
        };
        let state = decide(device, assignment, bundle, boards);
        Some(Offer {
            target,
            assignment,
            bundle: Some(bundle),
            state,
        })
    }

    /// Records a check-in from device `id` (already authenticated as the sender of
    /// `msg`). Returns the records to persist and whether they must be on disk
    /// before the device is answered (anything but a plain poll).
    pub fn check_in(
        &mut self,
        id: &str,
        msg: &CheckIn,
        now: u64,
        history_len: usize,
    ) -> Option<(Vec<Put>, bool)> {
        let device = self.devices.get_mut(id)?;
        let s = &mut device.status;
        let installed = msg.installed.as_ref().map(|i| InstalledRecord {
            name: i.name.clone(),
            version: i.version,
            security_counter: i.security_counter,
            bundle: protocol::bundle_id(&i.bundle_sha256),
        });
        let changed = s.last_check_in_ms.is_none()
            || s.board.as_deref() != Some(msg.board.as_str())
            || s.installed != installed
            || !msg.reports.is_empty();
        s.board = Some(msg.board.clone());
        s.installed = installed;
        s.last_check_in_ms = Some(now);
        s.check_ins += 1;
        for r in &msg.reports {
            let bundle = r
                .bundle_sha256()
                .map(protocol::bundle_id)
                .unwrap_or_default();
            if let Report::Rejected { reason, .. } | Report::RolledBack { reason, .. } = r {
                s.refused = Some(Refusal {
                    bundle: bundle.clone(),
                    outcome: r.outcome().to_string(),
                    reason: reason.clone(),
                    at_ms: now,
                });
            }
            device.history.push_back(HistoryEntry {
                at_ms: now,
                bundle,
                outcome: r.outcome().to_string(),
                reason: match r {
                    Report::Dropped { count } => Some(format!(
                        "the device's report queue overflowed: {count} older report(s) were lost"
                    )),
                    _ => r.reason().map(str::to_string),
                },
            });
            while device.history.len() > history_len {
                device.history.pop_front();
            }
        }
        let mut puts = vec![Put::set(Table::Status, id, &device.status)];
        if !msg.reports.is_empty() {
            puts.push(Put::set(Table::History, id, &device.history));
        }
        Some((puts, changed))
    }
}

/// The offer decision for one device and its assigned bundle.
fn decide(
    device: &Device,
    assignment: &AssignmentRecord,
    bundle: &BundleInfo,
    boards: &[&'static BoardTable],
) -> OfferState {
    let s = &device.status;
    if s.installed.as_ref().map(|i| &i.bundle) == Some(&bundle.id) {
        return OfferState::UpToDate;
    }
    if let Some(r) = &s.refused
        && r.bundle == bundle.id
        && r.at_ms >= assignment.assigned_at_ms
    {
        return OfferState::Blocked(format!(
            "the device reported it {}: {}; assign it again to retry",
            r.outcome, r.reason
        ));
    }
    let counter = bundle.header.manifest.security_counter;
    if let Some(i) = s
        .installed
        .as_ref()
        .filter(|i| counter <= i.security_counter)
    {
        return OfferState::Blocked(format!(
            "downgrade: security counter {counter} is not above the installed {}",
            i.security_counter
        ));
    }
    if let Some(board) = s.board.as_deref() {
        if let Some(v) = bundle.verdicts.iter().find(|v| v.board == board) {
            if let Some(reason) = &v.install {
                return OfferState::Blocked(format!("board `{board}` would refuse it: {reason}"));
            }
        } else if boards.iter().any(|b| b.name() == board) {
            return OfferState::Blocked(format!(
                "the bundle does not target board `{board}` or its engine"
            ));
        }
    }
    if bundle.trusted_by().next().is_none() {
        return OfferState::Blocked(
            "no board this server knows trusts its signatures any more".to_string(),
        );
    }
    OfferState::Offered
}
