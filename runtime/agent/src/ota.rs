//! embedded-svc's OTA traits (`Ota`, `OtaUpdate`, `OtaUpdateFinished`) on the slot
//! manager, so code written against the ESP-IDF-style API drives Tern's slots.
//!
//! | embedded-svc | Tern |
//! |---|---|
//! | `initiate_update` | [`SlotManager::begin_bundle`]: the update is written the whole signed bundle, header first |
//! | `OtaUpdate::write` | [`BundleWriter::write`]: the header is checked against the board before anything is erased |
//! | `OtaUpdate::finish` → `activate` | [`BundleWriter::finish`] (staged) → [`SlotManager::start_trial`] |
//! | `OtaUpdate::complete` | finish, then start the trial |
//! | `OtaUpdate::abort` | drop the update: the slot stays empty |
//! | `mark_running_slot_valid` | [`SlotManager::confirm`] (no-op when nothing is on trial and a component is active) |
//! | `mark_running_slot_invalid_and_reboot` | [`SlotManager::reject`], then returns [`AgentError::RestartRequired`] |
//! | `get_boot_slot` | the active slot (a trial never survives a restart) |
//! | `get_running_slot` | the trial slot during a trial, else the active one |
//! | `get_update_slot` | the slot the next update will be written to |
//!
//! Gaps, honestly:
//! - Tern runs a component, not a firmware image: "activate" starts a trial run of the
//!   component in place, nothing reboots. `mark_running_slot_invalid_and_reboot`
//!   therefore rolls back and returns [`AgentError::RestartRequired`] for the caller
//!   to restart the component from the active slot; it never reboots the MCU.
//! - There is no factory partition: `is_factory_reset_supported` is `false` and
//!   `factory_reset` fails with [`AgentError::Unsupported`].
//! - `FirmwareInfo.version` is the component's semver (cut at 24 characters),
//!   `description` its name, `signature` the payload's SHA-256; bundles carry no
//!   release date, so `released` is empty, and `download_id` is `None`.
//! - Slot states map as: active → `Valid`, trial and staged → `Unverified`, rejected
//!   → `Invalid`, empty → `Unknown` (with no firmware info).
//! - Only the blocking traits are implemented, not `embedded_svc::ota::asynch`.

use core::fmt::Write as _;

use embedded_storage::nor_flash::NorFlash;
use embedded_svc::io::{ErrorType, Write};
use embedded_svc::ota::{
    FirmwareInfo, Ota, OtaUpdate, OtaUpdateFinished, Slot, SlotState as SvcState,
};

use crate::error::AgentError;
use crate::meta::SlotState;
use crate::slots::{BundleWriter, ComponentInfo, SlotManager};

impl<F: NorFlash> SlotManager<F> {
    /// Slot `index` as embedded-svc describes slots.
    fn svc_slot(&self, index: usize) -> Slot {
        let state = self.slot_states()[index];
        let info = [self.active(), self.trial(), self.staged()]
            .into_iter()
            .flatten()
            .find(|i| i.slot.index == index);
        let mut label = heapless::String::new();
        let _ = label.push_str(self.layout().slots[index].name);
        Slot {
            label,
            state: match state {
                SlotState::Active => SvcState::Valid,
                SlotState::Trial | SlotState::Staged => SvcState::Unverified,
                SlotState::Rejected => SvcState::Invalid,
                SlotState::Empty => SvcState::Unknown,
            },
            firmware: info.map(firmware_info),
        }
    }

    /// The slot the next update goes to.
    fn update_index(&self) -> usize {
        self.slot_states()
            .iter()
            .position(|s| *s == SlotState::Active)
            .map_or(0, |a| 1 - a)
    }
}

fn firmware_info(info: &ComponentInfo) -> FirmwareInfo {
    let mut version = heapless::String::new();
    // Truncation of an absurdly long version is harmless here: this is a description.
    let _ = write!(version, "{}", info.version);
    let mut description = heapless::String::new();
    let _ = description.push_str(&info.name);
    let mut signature = heapless::Vec::new();
    let _ = signature.extend_from_slice(&info.payload_sha256);
    FirmwareInfo {
        version,
        released: heapless::String::new(),
        description: Some(description),
        signature: Some(signature),
        download_id: None,
    }
}

impl<F: NorFlash> ErrorType for SlotManager<F> {
    type Error = AgentError;
}

impl<F: NorFlash> Ota for SlotManager<F> {
    type Update<'a>
        = BundleWriter<'a, F>
    where
        Self: 'a;

    fn get_boot_slot(&self) -> Result<Slot, AgentError> {
        let index = self
            .active()
            .map(|a| a.slot.index)
            .ok_or(AgentError::NothingInstalled {
                action: "name the boot slot",
            })?;
        Ok(self.svc_slot(index))
    }

    fn get_running_slot(&self) -> Result<Slot, AgentError> {
        let index = self.trial().or(self.active()).map(|i| i.slot.index).ok_or(
            AgentError::NothingInstalled {
                action: "name the running slot",
            },
        )?;
        Ok(self.svc_slot(index))
    }

    fn get_update_slot(&self) -> Result<Slot, AgentError> {
        Ok(self.svc_slot(self.update_index()))
    }

    fn is_factory_reset_supported(&self) -> Result<bool, AgentError> {
        Ok(false)
    }

    fn factory_reset(&mut self) -> Result<(), AgentError> {
        Err(AgentError::Unsupported("factory reset"))
    }

    fn initiate_update(&mut self) -> Result<BundleWriter<'_, F>, AgentError> {
        self.begin_bundle()
    }

    fn mark_running_slot_valid(&mut self) -> Result<(), AgentError> {
        if self.trial().is_some() {
            self.confirm().map(drop)
        } else if self.active().is_some() {
            Ok(())
        } else {
            Err(AgentError::NothingInstalled {
                action: "mark the running slot valid",
            })
        }
    }

    fn mark_running_slot_invalid_and_reboot(&mut self) -> AgentError {
        if self.trial().is_none() {
            return AgentError::NoTrial {
                action: "mark the running slot invalid (the active component has no predecessor to return to)",
            };
        }
        match self.reject() {
            Ok(_) => AgentError::RestartRequired,
            Err(e) => e,
        }
    }
}

impl<F: NorFlash> ErrorType for BundleWriter<'_, F> {
    type Error = AgentError;
}

impl<F: NorFlash> Write for BundleWriter<'_, F> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, AgentError> {
        BundleWriter::write(self, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), AgentError> {
        // Bytes short of a whole write unit wait for the next write or `finish`.
        Ok(())
    }
}

/// A finished, staged update whose trial has not started: embedded-svc's
/// `OtaUpdateFinished`.
#[derive(Debug)]
pub struct Staged<'a, F: NorFlash> {
    mgr: &'a mut SlotManager<F>,
    info: ComponentInfo,
}

impl<F: NorFlash> Staged<'_, F> {
    /// The staged component.
    pub fn info(&self) -> &ComponentInfo {
        &self.info
    }

    /// The slot manager, read-only while the update is held.
    pub fn slots(&self) -> &SlotManager<F> {
        self.mgr
    }
}

impl<F: NorFlash> ErrorType for Staged<'_, F> {
    type Error = AgentError;
}

impl<F: NorFlash> OtaUpdateFinished for Staged<'_, F> {
    fn activate(self) -> Result<(), AgentError> {
        self.mgr.start_trial().map(drop)
    }
}

impl<'a, F: NorFlash> OtaUpdate for BundleWriter<'a, F> {
    type OtaUpdateFinished = Staged<'a, F>;

    fn finish(self) -> Result<Staged<'a, F>, AgentError> {
        match self.finish_returning() {
            (mgr, Ok(info)) => Ok(Staged { mgr, info }),
            (_, Err(e)) => Err(e),
        }
    }

    fn complete(self) -> Result<(), AgentError> {
        OtaUpdate::finish(self)?.activate()
    }

    fn abort(self) -> Result<(), AgentError> {
        Ok(())
    }
}
