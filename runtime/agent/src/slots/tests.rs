//! Unit tests of the slot manager: the happy path, and every way an update is refused
//! or abandoned without touching the active component.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use embedded_svc::io::Write as _;
use embedded_svc::ota::{Ota, OtaUpdate, OtaUpdateFinished, SlotState as SvcState};
use tern_core::board::{BoardFields, BoardTable, Slot};
use tern_core::bundle::{self, BundleError, Target};
use tern_core::policy::Rejection;

use super::*;
use crate::error::LayoutError;
use crate::sim::SimFlash;
use crate::supervisor::{Supervisor, TrialPolicy};
use crate::testkit::{Spec, board, untrusted_key};

type Flash = SimFlash<1024, 8>;
const SLOT: u32 = 8192;
const PAYLOAD: usize = 3000;

fn setup() -> (Flash, &'static BoardTable, SlotLayout) {
    let board = board(1024, SLOT);
    let layout = SlotLayout::from_board(board).unwrap();
    (Flash::new(layout.end() as usize, 0xFF), board, layout)
}

fn open<'f>(
    flash: &'f mut Flash,
    board: &BoardTable,
    layout: SlotLayout,
) -> SlotManager<&'f mut Flash> {
    SlotManager::open(flash, layout, board).unwrap()
}

/// Streams `bytes` (a whole bundle) through `begin_update` in 100-byte chunks.
fn stage(mgr: &mut SlotManager<&mut Flash>, bytes: &[u8]) -> Result<ComponentInfo, AgentError> {
    let (header, payload) = bundle::parse(bytes).unwrap();
    let mut update = mgr.begin_update(&header)?;
    for chunk in payload.chunks(100) {
        update.write(chunk)?;
    }
    update.finish()
}

fn install(mgr: &mut SlotManager<&mut Flash>, spec: &Spec) -> ComponentInfo {
    stage(mgr, &spec.build()).unwrap();
    mgr.start_trial().unwrap();
    mgr.confirm().unwrap()
}

/// A flash with `spec` installed and confirmed.
fn with_installed(spec: &Spec) -> (Flash, &'static BoardTable, SlotLayout) {
    let (mut flash, board, layout) = setup();
    install(&mut open(&mut flash, board, layout), spec);
    (flash.reboot(), board, layout)
}

#[test]
fn blank_flash_opens_empty_without_writing() {
    let (mut flash, board, layout) = setup();
    let mgr = open(&mut flash, board, layout);
    assert!(mgr.active().is_none());
    assert_eq!(mgr.installed_counter(), None);
    assert_eq!(mgr.slot_states(), [SlotState::Empty; 2]);
    assert!(mgr.boot_fault().is_none());
    drop(mgr);
    assert_eq!(flash.stats().ops(), 0);
}

#[test]
fn install_trial_confirm_and_reboot() {
    let (mut flash, board, layout) = setup();
    let spec = Spec::new(1, PAYLOAD);
    let bytes = spec.build();
    let mut mgr = open(&mut flash, board, layout);
    let staged = stage(&mut mgr, &bytes).unwrap();
    assert_eq!(staged.slot.name, "a");
    assert_eq!(mgr.slot_states(), [SlotState::Staged, SlotState::Empty]);
    assert!(mgr.active().is_none());
    let trial = mgr.start_trial().unwrap();
    assert_eq!(trial, staged);
    assert_eq!(mgr.trial_payload().unwrap(), spec.payload);
    assert_eq!(
        mgr.installed_counter(),
        None,
        "a trial does not raise the counter"
    );
    let active = mgr.confirm().unwrap();
    assert_eq!(active.security_counter, 1);
    assert_eq!(active.bundle_sha256, bundle::sha256(&bytes));
    assert_eq!(*active.grant, spec.grant);
    assert_eq!(mgr.installed_counter(), Some(1));

    let mut flash = flash.reboot();
    let mut mgr = open(&mut flash, board, layout);
    assert_eq!(mgr.active(), Some(&active));
    assert_eq!(mgr.active_payload().unwrap(), spec.payload);
    assert_eq!(mgr.active_bundle().unwrap(), bytes);
    let mut buf = [0u8; 64];
    assert_eq!(mgr.read_active_payload(10, &mut buf).unwrap(), 64);
    assert_eq!(&buf[..], &spec.payload[10..74]);
    let end = spec.payload.len() as u32 - 5;
    assert_eq!(mgr.read_active_payload(end, &mut buf).unwrap(), 5);
}

#[test]
fn an_update_goes_to_the_other_slot_and_never_touches_the_active_one() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let slot_a = flash.contents()[..SLOT as usize].to_vec();
    let mut mgr = open(&mut flash, board, layout);
    let v2 = Spec::new(2, PAYLOAD + 500);
    let staged = stage(&mut mgr, &v2.build()).unwrap();
    assert_eq!(staged.slot.name, "b");
    mgr.start_trial().unwrap();
    let active = mgr.confirm().unwrap();
    assert_eq!(active.slot.name, "b");
    assert_eq!(mgr.slot_states(), [SlotState::Empty, SlotState::Active]);
    assert_eq!(mgr.installed_counter(), Some(2));
    drop(mgr);
    assert_eq!(flash.contents()[..SLOT as usize], slot_a[..]);

    // And the next one goes back to A.
    let mut flash = flash.reboot();
    let mut mgr = open(&mut flash, board, layout);
    assert_eq!(install(&mut mgr, &Spec::new(3, 100)).slot.name, "a");
    assert_eq!(mgr.installed_counter(), Some(3));
}

/// Asserts that `f` fails with `want` and did not erase or write anything.
fn refused_untouched(
    flash: &mut Flash,
    board: &BoardTable,
    layout: SlotLayout,
    bytes: &[u8],
    want: AgentError,
) {
    let before = flash.contents().to_vec();
    let mut mgr = open(flash, board, layout);
    let (header, _) = bundle::parse(bytes).unwrap();
    assert_eq!(mgr.begin_update(&header).err(), Some(want.clone()));
    // The whole-bundle stream refuses it the same way, as soon as the header is in.
    let mut writer = mgr.begin_bundle().unwrap();
    assert_eq!(writer.write(bytes).err(), Some(want));
    assert_eq!(writer.write(b"more").err(), Some(AgentError::UpdateAborted));
    drop(mgr);
    assert_eq!(
        flash.stats().ops(),
        0,
        "a refused bundle must not erase or write"
    );
    assert_eq!(flash.contents(), &before[..]);
}

#[test]
fn a_downgrade_is_refused_before_anything_is_erased() {
    let (mut flash, board, layout) = with_installed(&Spec::new(5, PAYLOAD));
    for counter in [5, 4, 0] {
        refused_untouched(
            &mut flash,
            board,
            layout,
            &Spec::new(counter, PAYLOAD).build(),
            AgentError::Rejected(Rejection::Downgrade {
                offered: counter,
                installed: 5,
            }),
        );
    }
}

#[test]
fn a_bundle_for_another_board_is_refused_before_anything_is_erased() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut spec = Spec::new(2, PAYLOAD);
    spec.targets = vec![Target::Board("some-other-board".into())];
    refused_untouched(
        &mut flash,
        board,
        layout,
        &spec.build(),
        AgentError::Rejected(Rejection::WrongTarget {
            board: board.name(),
        }),
    );
}

#[test]
fn unsigned_and_untrusted_bundles_are_refused_before_anything_is_erased() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut spec = Spec::new(2, PAYLOAD);
    spec.keys = vec![];
    refused_untouched(
        &mut flash,
        board,
        layout,
        &spec.build(),
        AgentError::Rejected(Rejection::Unsigned),
    );
    spec.keys = vec![untrusted_key()];
    let bytes = spec.build();
    let (header, _) = bundle::parse(&bytes).unwrap();
    refused_untouched(
        &mut flash,
        board,
        layout,
        &bytes,
        AgentError::Rejected(Rejection::NotEnoughSignatures {
            valid: 0,
            required: 1,
            untrusted: Some(header.signatures[0].key_id),
            bad_signature: false,
        }),
    );
}

#[test]
fn a_capability_the_board_does_not_offer_is_refused() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut spec = Spec::new(2, PAYLOAD);
    spec.grant = tern_core::Grant::parse(["gpio=4"]).unwrap();
    refused_untouched(
        &mut flash,
        board,
        layout,
        &spec.build(),
        AgentError::Rejected(Rejection::CapabilityNotOffered {
            interface: tern_core::Interface::Gpio,
        }),
    );
}

#[test]
fn a_bundle_larger_than_the_slot_is_refused_before_anything_is_erased() {
    let (mut flash, board, layout) = setup();
    // The payload alone fits the slot (the policy's check), header and payload do not.
    let bytes = Spec::new(1, SLOT as usize - 10).build();
    let bundle_len = bytes.len() as u64;
    refused_untouched(
        &mut flash,
        board,
        layout,
        &bytes,
        AgentError::TooLargeForSlot {
            bundle_len,
            slot_size: SLOT,
        },
    );
    let bytes = Spec::new(1, SLOT as usize + 1).build();
    refused_untouched(
        &mut flash,
        board,
        layout,
        &bytes,
        AgentError::Rejected(Rejection::TooLargeForSlot {
            len: SLOT + 1,
            slot: SLOT,
        }),
    );
}

#[test]
fn a_hash_mismatch_activates_nothing_and_leaves_the_active_component() {
    let v1 = Spec::new(1, PAYLOAD);
    let (mut flash, board, layout) = with_installed(&v1);
    let mut mgr = open(&mut flash, board, layout);
    let active = mgr.active().cloned();
    let bytes = Spec::new(2, PAYLOAD).build();
    let (header, payload) = bundle::parse(&bytes).unwrap();
    let mut update = mgr.begin_update(&header).unwrap();
    let mut forged = payload.to_vec();
    forged[1234] ^= 1;
    update.write(&forged).unwrap();
    assert_eq!(
        update.finish().err(),
        Some(AgentError::Bundle(BundleError::PayloadHashMismatch))
    );
    assert_eq!(mgr.active().cloned(), active);
    assert_eq!(mgr.slot_states(), [SlotState::Active, SlotState::Empty]);
    assert_eq!(mgr.start_trial().err(), Some(AgentError::NothingStaged));
    drop(mgr);
    let mut flash = flash.reboot();
    let mut mgr = open(&mut flash, board, layout);
    assert_eq!(mgr.active().cloned(), active);
    assert_eq!(mgr.active_payload().unwrap(), v1.payload);
}

#[test]
fn bytes_past_the_declared_length_abandon_the_update() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut mgr = open(&mut flash, board, layout);
    let bytes = Spec::new(2, PAYLOAD).build();
    let (header, payload) = bundle::parse(&bytes).unwrap();
    let mut update = mgr.begin_update(&header).unwrap();
    update.write(&payload[..PAYLOAD - 1]).unwrap();
    assert_eq!(
        update.write(&[0, 0]).err(),
        Some(AgentError::PayloadTooLong {
            declared: PAYLOAD as u32
        })
    );
    assert_eq!(update.received(), PAYLOAD as u64 - 1);
    assert_eq!(update.write(&[0]).err(), Some(AgentError::UpdateAborted));
    assert_eq!(update.finish().err(), Some(AgentError::UpdateAborted));
    assert_eq!(mgr.slot_states(), [SlotState::Active, SlotState::Empty]);

    // The whole-bundle stream: trailing bytes after the payload.
    let mut writer = mgr.begin_bundle().unwrap();
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        writer.write(&long).err(),
        Some(AgentError::PayloadTooLong {
            declared: PAYLOAD as u32
        })
    );
    assert_eq!(writer.finish().err(), Some(AgentError::UpdateAborted));
    assert_eq!(mgr.active().unwrap().security_counter, 1);
}

#[test]
fn a_truncated_update_is_not_staged() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut mgr = open(&mut flash, board, layout);
    let bytes = Spec::new(2, PAYLOAD).build();
    let (header, payload) = bundle::parse(&bytes).unwrap();
    let mut update = mgr.begin_update(&header).unwrap();
    update.write(&payload[..100]).unwrap();
    assert_eq!(
        update.finish().err(),
        Some(AgentError::Bundle(BundleError::Truncated {
            got: 100,
            need: PAYLOAD as u64
        }))
    );
    // A bundle stream that ends inside its header.
    let writer = {
        let mut w = mgr.begin_bundle().unwrap();
        w.write(&bytes[..20]).unwrap();
        w
    };
    assert!(matches!(
        writer.finish(),
        Err(AgentError::Bundle(BundleError::Truncated { got: 20, .. }))
    ));
    // Garbage instead of a header is refused before anything is erased.
    let mut w = mgr.begin_bundle().unwrap();
    assert_eq!(
        w.write(b"NOPE, not a bundle").err(),
        Some(AgentError::Bundle(BundleError::BadMagic))
    );
    assert_eq!(mgr.slot_states(), [SlotState::Active, SlotState::Empty]);
}

#[test]
fn steps_out_of_order_are_refused() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut mgr = open(&mut flash, board, layout);
    assert_eq!(
        mgr.confirm().err(),
        Some(AgentError::NoTrial { action: "confirm" })
    );
    assert_eq!(
        mgr.reject().err(),
        Some(AgentError::NoTrial { action: "reject" })
    );
    assert_eq!(mgr.start_trial().err(), Some(AgentError::NothingStaged));
    assert!(mgr.trial_payload().is_err());

    let bytes = Spec::new(2, PAYLOAD).build();
    stage(&mut mgr, &bytes).unwrap();
    mgr.start_trial().unwrap();
    assert_eq!(
        mgr.start_trial().err(),
        Some(AgentError::TrialInProgress { slot: "b" })
    );
    let (header, _) = bundle::parse(&Spec::new(3, 10).build()).unwrap();
    let ops = mgr.flash.stats().ops();
    assert_eq!(
        mgr.begin_update(&header).err(),
        Some(AgentError::TrialInProgress { slot: "b" })
    );
    assert_eq!(
        mgr.begin_bundle().err(),
        Some(AgentError::TrialInProgress { slot: "b" })
    );
    assert_eq!(mgr.flash.stats().ops(), ops);
}

#[test]
fn a_staged_update_is_replaced_by_a_newer_one() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut mgr = open(&mut flash, board, layout);
    stage(&mut mgr, &Spec::new(2, PAYLOAD).build()).unwrap();
    let v3 = stage(&mut mgr, &Spec::new(3, 500).build()).unwrap();
    assert_eq!(mgr.start_trial().unwrap(), v3);
}

#[test]
fn reject_rolls_back_and_keeps_the_counter() {
    let v1 = Spec::new(1, PAYLOAD);
    let (mut flash, board, layout) = with_installed(&v1);
    let mut mgr = open(&mut flash, board, layout);
    stage(&mut mgr, &Spec::new(2, PAYLOAD).build()).unwrap();
    mgr.start_trial().unwrap();
    assert_eq!(mgr.reject().unwrap().name, "b");
    assert!(mgr.trial().is_none());
    assert_eq!(mgr.slot_states(), [SlotState::Active, SlotState::Rejected]);
    assert_eq!(mgr.installed_counter(), Some(1));
    assert_eq!(mgr.active_payload().unwrap(), v1.payload);
    // The rejected bundle cannot be started again, but a new update can be staged.
    assert_eq!(mgr.start_trial().err(), Some(AgentError::NothingStaged));
    assert_eq!(install(&mut mgr, &Spec::new(2, 10)).slot.name, "b");
}

#[test]
fn a_restart_during_the_trial_rolls_back_at_boot() {
    let v1 = Spec::new(1, PAYLOAD);
    let (mut flash, board, layout) = with_installed(&v1);
    let mut mgr = open(&mut flash, board, layout);
    let v2 = stage(&mut mgr, &Spec::new(2, PAYLOAD).build()).unwrap();
    mgr.start_trial().unwrap();
    drop(mgr);
    let mut flash = flash.reboot();
    let mut mgr = open(&mut flash, board, layout);
    assert_eq!(mgr.active().unwrap().security_counter, 1);
    assert!(mgr.trial().is_none());
    assert_eq!(mgr.slot_states(), [SlotState::Active, SlotState::Rejected]);
    assert_eq!(mgr.installed_counter(), Some(1));
    assert_eq!(
        mgr.take_boot_report(),
        Some(Report::RolledBack {
            component: Some(v2.id()),
            reason: RollbackReason::RestartedDuringTrial { restarts: 1 }
        })
    );
    assert_eq!(mgr.take_boot_report(), None);
}

#[test]
fn a_corrupt_active_slot_is_not_run_and_not_erased() {
    let (flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut flash = flash.reboot();
    flash.contents_mut()[2000] ^= 0x10;
    let slot_a = flash.contents()[..SLOT as usize].to_vec();
    let mut mgr = open(&mut flash, board, layout);
    assert!(mgr.active().is_none());
    assert!(matches!(
        mgr.boot_fault(),
        Some(AgentError::SlotCorrupt {
            slot: "a",
            reason: CorruptReason::Bundle(BundleError::PayloadHashMismatch)
        })
    ));
    assert!(mgr.active_payload().is_err());
    // The counter still holds, and an update goes to B.
    assert_eq!(mgr.installed_counter(), Some(1));
    assert_eq!(install(&mut mgr, &Spec::new(2, 100)).slot.name, "b");
    drop(mgr);
    assert_eq!(flash.contents()[..SLOT as usize], slot_a[..]);
}

#[test]
fn a_forged_signature_in_the_active_slot_is_caught_at_boot() {
    let (flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut flash = flash.reboot();
    // The last byte of the one signature record sits just before the payload.
    let header_len = Spec::new(1, PAYLOAD).build().len() - PAYLOAD;
    flash.contents_mut()[header_len - 1] ^= 1;
    let mgr = open(&mut flash, board, layout);
    assert!(mgr.active().is_none());
    assert!(matches!(
        mgr.boot_fault(),
        Some(AgentError::SlotCorrupt {
            reason: CorruptReason::Rejected(Rejection::NotEnoughSignatures { .. }),
            ..
        })
    ));
}

#[test]
fn a_staged_slot_damaged_before_its_trial_is_rejected() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    {
        let mut mgr = open(&mut flash, board, layout);
        stage(&mut mgr, &Spec::new(2, PAYLOAD).build()).unwrap();
    }
    let mut flash = flash.reboot();
    flash.contents_mut()[SLOT as usize + 2500] ^= 0x80;
    let mut mgr = open(&mut flash, board, layout);
    assert!(matches!(
        mgr.start_trial(),
        Err(AgentError::SlotCorrupt {
            slot: "b",
            reason: CorruptReason::Bundle(BundleError::PayloadHashMismatch)
        })
    ));
    assert_eq!(mgr.slot_states(), [SlotState::Active, SlotState::Rejected]);

    // Damaged after staging in this same boot: caught by the hash of the bytes.
    stage(&mut mgr, &Spec::new(3, PAYLOAD).build()).unwrap();
    mgr.flash.contents_mut()[SLOT as usize + 10] ^= 0x01;
    assert_eq!(
        mgr.start_trial().err(),
        Some(AgentError::SlotCorrupt {
            slot: "b",
            reason: CorruptReason::ReadBack
        })
    );
    assert_eq!(mgr.slot_states(), [SlotState::Active, SlotState::Rejected]);
}

#[test]
fn the_newest_valid_metadata_record_wins() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let meta = [
        layout.metadata_sector(0) as usize,
        layout.metadata_sector(1) as usize,
    ];
    let records: Vec<_> = meta
        .iter()
        .map(|&m| {
            let mut b = [0u8; RECORD_LEN];
            b.copy_from_slice(&flash.contents()[m..m + RECORD_LEN]);
            let len = Record::journal_len(&b).unwrap();
            let journal = &flash.contents()[m + RECORD_LEN..m + RECORD_LEN + len];
            Record::decode(&b, journal).unwrap()
        })
        .collect();
    let (newest, older) = if records[0].seq > records[1].seq {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(records[newest].seq, records[older].seq + 1);
    assert_eq!(records[newest].counter, Some(1));
    // Damage the newest: the older one (the trial, before the confirm) wins, and a
    // trial at boot is rolled back, so nothing is active and the counter is unset.
    flash.contents_mut()[meta[newest] + 20] ^= 1;
    let mgr = open(&mut flash, board, layout);
    assert_eq!(records[older].states[0], SlotState::Trial);
    assert!(mgr.active().is_none());
    assert_eq!(mgr.slot_states()[0], SlotState::Rejected);
}

#[test]
fn flash_with_ecc_works() {
    let board = board(1024, SLOT);
    let layout = SlotLayout::from_board(board).unwrap();
    let mut flash = SimFlash::<1024, 16>::new(layout.end() as usize, 0x00).ecc();
    let mut mgr = SlotManager::open(&mut flash, layout, board).unwrap();
    for counter in 1..=3 {
        let bytes = Spec::new(counter, 777 * counter as usize).build();
        let mut w = mgr.begin_bundle().unwrap();
        for chunk in bytes.chunks(33) {
            w.write(chunk).unwrap();
        }
        w.finish().unwrap();
        mgr.start_trial().unwrap();
        mgr.confirm().unwrap();
    }
    assert_eq!(mgr.installed_counter(), Some(3));
}

#[test]
fn layouts_that_do_not_fit_are_refused_at_open() {
    let (mut flash, board, layout) = setup();
    let small = Flash::new(4096, 0xFF);
    assert!(matches!(
        SlotManager::open(small, layout, board).err(),
        Some(AgentError::Layout(LayoutError::OutOfFlash { .. }))
    ));
    let three = BoardTable::new(BoardFields {
        slots: &[
            Slot {
                name: "a",
                offset: 0,
                size: 1024,
            },
            Slot {
                name: "b",
                offset: 1024,
                size: 1024,
            },
            Slot {
                name: "c",
                offset: 2048,
                size: 1024,
            },
        ],
        ..crate::testkit::fields(board.sector_size(), SLOT)
    });
    assert_eq!(
        SlotLayout::from_board(&three),
        Err(LayoutError::SlotCount { found: 3 })
    );
    let mut odd = layout;
    odd.sector_size = 512;
    assert!(matches!(
        SlotManager::open(&mut flash, odd, board).err(),
        Some(AgentError::Layout(LayoutError::SectorSize { .. }))
    ));
}

#[test]
fn the_supervisor_settles_a_trial() {
    let (mut flash, board, layout) = with_installed(&Spec::new(1, PAYLOAD));
    let mut mgr = open(&mut flash, board, layout);
    stage(&mut mgr, &Spec::new(2, PAYLOAD).build()).unwrap();
    let trial = mgr.start_trial().unwrap();
    let mut sup = Supervisor::new(trial.id(), TrialPolicy::default());
    assert_eq!(sup.settle(&mut mgr).unwrap(), None);
    sup.health_check(Err(tern_core::Error::FuelExhausted { budget: 10 }));
    let report = sup.settle(&mut mgr).unwrap().unwrap();
    assert!(matches!(report, Report::RolledBack { .. }));
    assert_eq!(mgr.active().unwrap().security_counter, 1);

    stage(&mut mgr, &Spec::new(3, PAYLOAD).build()).unwrap();
    let trial = mgr.start_trial().unwrap();
    let mut sup = Supervisor::new(
        trial.id(),
        TrialPolicy {
            events_required: 0,
            ..TrialPolicy::default()
        },
    );
    sup.health_check(Ok(Ok(())));
    assert_eq!(
        sup.settle(&mut mgr).unwrap(),
        Some(Report::Confirmed {
            component: trial.id()
        })
    );
    assert_eq!(mgr.installed_counter(), Some(3));
}

#[test]
fn the_embedded_svc_ota_api_drives_an_update() {
    let v1 = Spec::new(1, PAYLOAD);
    let (mut flash, board, layout) = with_installed(&v1);
    let mut mgr = open(&mut flash, board, layout);
    assert_eq!(mgr.get_boot_slot().unwrap().state, SvcState::Valid);
    let update_slot = mgr.get_update_slot().unwrap();
    assert_eq!(update_slot.label.as_str(), "b");
    assert_eq!(update_slot.state, SvcState::Unknown);
    assert!(!mgr.is_factory_reset_supported().unwrap());
    assert_eq!(
        mgr.factory_reset().err(),
        Some(AgentError::Unsupported("factory reset"))
    );

    let v2 = Spec::new(2, PAYLOAD);
    let mut update = mgr.initiate_update().unwrap();
    for chunk in v2.build().chunks(61) {
        update.write_all(chunk).unwrap();
    }
    update.flush().unwrap();
    update.complete().unwrap();
    let running = mgr.get_running_slot().unwrap();
    assert_eq!(running.label.as_str(), "b");
    assert_eq!(running.state, SvcState::Unverified);
    let fw = running.firmware.unwrap();
    assert_eq!(fw.version.as_str(), "1.0.2");
    assert_eq!(fw.description.unwrap().as_str(), "sensor-filter");
    assert_eq!(mgr.get_boot_slot().unwrap().label.as_str(), "a");
    mgr.mark_running_slot_valid().unwrap();
    assert_eq!(mgr.get_boot_slot().unwrap().label.as_str(), "b");
    assert_eq!(mgr.installed_counter(), Some(2));
    mgr.mark_running_slot_valid().unwrap();

    // finish + activate, then a rollback through the OTA API.
    let mut update = mgr.initiate_update().unwrap();
    update.write_all(&Spec::new(3, 100).build()).unwrap();
    let staged = OtaUpdate::finish(update).unwrap();
    assert_eq!(staged.info().security_counter, 3);
    let update_slot = staged.slots().get_update_slot().unwrap();
    assert_eq!(update_slot.state, SvcState::Unverified);
    assert_eq!(update_slot.firmware.unwrap().version.as_str(), "1.0.3");
    staged.activate().unwrap();
    assert_eq!(
        mgr.mark_running_slot_invalid_and_reboot(),
        AgentError::RestartRequired
    );
    assert_eq!(mgr.get_running_slot().unwrap().label.as_str(), "b");
    assert_eq!(mgr.installed_counter(), Some(2));
    assert!(matches!(
        mgr.mark_running_slot_invalid_and_reboot(),
        AgentError::NoTrial { .. }
    ));

    // A refused bundle through the OTA API: nothing changes.
    let mut update = mgr.initiate_update().unwrap();
    assert!(matches!(
        update.write_all(&Spec::new(1, 100).build()),
        Err(AgentError::Rejected(Rejection::Downgrade { .. }))
    ));
    update.abort().unwrap();
    assert_eq!(mgr.active_payload().unwrap(), v2.payload);
}

#[test]
fn every_error_says_what_to_do() {
    let errors = [
        AgentError::Flash {
            op: FlashOp::Erase,
            offset: 0x2000,
            kind: embedded_storage::nor_flash::NorFlashErrorKind::Other,
        },
        AgentError::Rejected(Rejection::Downgrade {
            offered: 1,
            installed: 2,
        }),
        AgentError::Bundle(BundleError::PayloadHashMismatch),
        AgentError::PayloadTooLong { declared: 10 },
        AgentError::TooLargeForSlot {
            bundle_len: 10,
            slot_size: 5,
        },
        AgentError::TrialInProgress { slot: "b" },
        AgentError::NothingStaged,
        AgentError::NoTrial { action: "confirm" },
        AgentError::NothingInstalled {
            action: "read the active payload",
        },
        AgentError::UpdateAborted,
        AgentError::SlotCorrupt {
            slot: "a",
            reason: CorruptReason::Length { recorded: 0 },
        },
        AgentError::MetadataVerify { offset: 0 },
        AgentError::Unsupported("factory reset"),
        AgentError::RestartRequired,
        AgentError::Layout(LayoutError::SlotCount { found: 1 }),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.len() > 20, "{text}");
    }
    assert_eq!(
        AgentError::Rejected(Rejection::Downgrade {
            offered: 1,
            installed: 2
        })
        .to_string(),
        "bundle refused, nothing written: downgrade: security counter 1 is not above the installed 2"
    );
}
