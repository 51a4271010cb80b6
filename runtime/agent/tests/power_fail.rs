//! Power-fail tests: every update scenario is run with a power cut at every flash
//! operation, on several flash geometries and both erased values, and after every
//! cut a fresh boot must find a valid, signed component and a security counter that
//! never went down. Then random double cuts: a second cut during the boot, recovery
//! and update that follow the first, after which a third boot must succeed.
//!
//! MCUboot's simulator (`sim/`) is the model. Run with `--nocapture` to see the count.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

extern crate alloc;

#[path = "../src/testkit.rs"]
#[allow(dead_code, reason = "shared with the unit tests, which use all of it")]
mod testkit;

use std::time::Instant;

use tern_agent::sim::SimFlash;
use tern_agent::{
    AgentError, FlashOp, SlotLayout, SlotManager, SlotState, Supervisor, TrialPolicy,
};
use tern_core::board::BoardTable;
use tern_core::bundle::{self, BundleError, HeaderDecoder};
use testkit::Spec;

/// Largest chunk the simulated download hands the agent. Small chunks mean many
/// flash writes, and every one of them is a cut point.
const MAX_CHUNK: u64 = 10;

/// Every `FOLLOW_UP`-th cut, the recovered device also installs a further update, to
/// show that a cut never leaves it unable to update.
const FOLLOW_UP: u64 = 61;

/// SplitMix64, fixed seeds: every run cuts at the same places.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The bundles every scenario uses; all signed for the test board.
struct Bundles {
    v1: Vec<u8>,
    v2: Vec<u8>,
    v3: Vec<u8>,
    /// v2 with one payload byte changed after signing.
    v2_forged: Vec<u8>,
    /// The update a recovered device installs to show it still can.
    next: Vec<u8>,
}

impl Bundles {
    fn new() -> Bundles {
        let v2 = Spec::new(2, 6000).build();
        let mut v2_forged = v2.clone();
        let last = v2_forged.len() - 100;
        v2_forged[last] ^= 0x20;
        Bundles {
            v1: Spec::new(1, 5000).build(),
            v2,
            v3: Spec::new(3, 4500).build(),
            v2_forged,
            next: Spec::new(50, 700).build(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Blank flash: install v1 (stage, trial, confirm).
    FirstInstall,
    /// v1 active: update to v2 and confirm.
    Update,
    /// v1 active: stage v2, its health check fails, roll back.
    Rollback,
    /// v1 active: v2's payload does not match its signed hash.
    BadHash,
    /// v2 active in slot B: update to v3 over v1's old slot A, through the
    /// whole-bundle stream.
    UpdateAgain,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario::FirstInstall,
    Scenario::Update,
    Scenario::Rollback,
    Scenario::BadHash,
    Scenario::UpdateAgain,
];

impl Scenario {
    /// Bundles installed (without cuts) before the scenario starts.
    fn before(self, b: &Bundles) -> Vec<&[u8]> {
        match self {
            Scenario::FirstInstall => vec![],
            Scenario::Update | Scenario::Rollback | Scenario::BadHash => vec![&b.v1],
            Scenario::UpdateAgain => vec![&b.v1, &b.v2],
        }
    }

    /// The components a boot after a cut may find active (`None`: nothing).
    fn allowed(self, b: &Bundles) -> Vec<Option<&[u8]>> {
        match self {
            Scenario::FirstInstall => vec![None, Some(&b.v1)],
            Scenario::Update => vec![Some(&b.v1), Some(&b.v2)],
            Scenario::Rollback | Scenario::BadHash => vec![Some(&b.v1)],
            Scenario::UpdateAgain => vec![Some(&b.v2), Some(&b.v3)],
        }
    }

    /// Runs the scenario from a fresh boot. Returns the flash error of the cut, if
    /// power was cut; any other outcome than the scenario's expected one panics.
    fn run<const E: usize, const W: usize>(
        self,
        flash: &mut SimFlash<E, W>,
        fx: &Fixture,
        seed: u64,
    ) -> Result<(), AgentError> {
        let b = &fx.bundles;
        let mut mgr = SlotManager::open(flash, fx.layout, fx.board)?;
        let mut rng = Rng(seed);
        let bytes: &[u8] = match self {
            Scenario::FirstInstall => &b.v1,
            Scenario::Update | Scenario::Rollback => &b.v2,
            Scenario::BadHash => &b.v2_forged,
            Scenario::UpdateAgain => &b.v3,
        };
        if self == Scenario::UpdateAgain {
            // The whole bundle as a byte stream, header included.
            let mut writer = mgr.begin_bundle()?;
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = (1 + rng.below(MAX_CHUNK) as usize).min(rest.len());
                writer.write(&rest[..n])?;
                rest = &rest[n..];
            }
            writer.finish()?;
        } else {
            let (header, mut rest) = HeaderDecoder::new().feed(bytes).unwrap().unwrap();
            let mut update = mgr.begin_update(&header)?;
            while !rest.is_empty() {
                let n = (1 + rng.below(MAX_CHUNK) as usize).min(rest.len());
                update.write(&rest[..n])?;
                rest = &rest[n..];
            }
            match (self, update.finish()) {
                (Scenario::BadHash, Err(AgentError::Bundle(BundleError::PayloadHashMismatch))) => {
                    return Ok(());
                }
                (Scenario::BadHash, other) => panic!("forged payload: {other:?}"),
                (_, result) => {
                    result?;
                }
            }
        }
        let trial = mgr.start_trial()?;
        // The engine would load exactly these verified bytes.
        let payload = mgr.trial_payload()?;
        assert_eq!(bundle::sha256(&payload), trial.payload_sha256);
        let mut sup = Supervisor::new(
            trial.id(),
            TrialPolicy {
                events_required: 0,
                ..TrialPolicy::default()
            },
        );
        if self == Scenario::Rollback {
            sup.health_check(Ok(Err("sensor temp-0 missing".into())));
        } else {
            sup.health_check(Ok(Ok(())));
        }
        sup.settle(&mut mgr)?;
        Ok(())
    }
}

/// One geometry's board, layout and bundles.
struct Fixture {
    board: &'static BoardTable,
    layout: SlotLayout,
    bundles: Bundles,
    /// Flash with ECC: one write per write unit between erases.
    ecc: bool,
}

impl Fixture {
    fn new(sector: u32, ecc: bool) -> Fixture {
        let board = testkit::board(sector, sector.max(8192));
        Fixture {
            board,
            layout: SlotLayout::from_board(board).unwrap(),
            bundles: Bundles::new(),
            ecc,
        }
    }

    /// A flash with `installed` bundles installed and confirmed, in order.
    fn flash_with<const E: usize, const W: usize>(
        &self,
        erased: u8,
        installed: &[&[u8]],
    ) -> SimFlash<E, W> {
        let mut flash = SimFlash::<E, W>::new(self.layout.end() as usize, erased)
            .with_seed(0x5eed ^ u64::from(erased));
        if self.ecc {
            flash = flash.ecc();
        }
        {
            let mut mgr = SlotManager::open(&mut flash, self.layout, self.board).unwrap();
            for bytes in installed {
                let mut w = mgr.begin_bundle().unwrap();
                w.write(bytes).unwrap();
                w.finish().unwrap();
                mgr.start_trial().unwrap();
                mgr.confirm().unwrap();
            }
        }
        flash.reboot()
    }
}

/// What a boot after a cut found.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    cuts: u64,
    old: u64,
    new: u64,
    none: u64,
    follow_ups: u64,
}

/// Boots `flash` and checks the invariants: it opens, no trial survives, the active
/// component (if any) is one of `allowed`, verifies as a boot would, and the counter
/// is at least `floor` and is the active component's. Returns the counter. With
/// `follow_up`, also installs one more update.
fn check_boot<const E: usize, const W: usize>(
    flash: &mut SimFlash<E, W>,
    fx: &Fixture,
    allowed: &[Option<&[u8]>],
    floor: Option<u64>,
    follow_up: bool,
    tally: &mut Tally,
    what: &dyn Fn() -> String,
) -> Option<u64> {
    let mut mgr = SlotManager::open(&mut *flash, fx.layout, fx.board)
        .unwrap_or_else(|e| panic!("{}: boot failed: {e}", what()));
    assert!(
        mgr.boot_fault().is_none(),
        "{}: {:?}",
        what(),
        mgr.boot_fault()
    );
    assert!(
        mgr.trial().is_none(),
        "{}: a trial survived a restart",
        what()
    );
    assert!(!mgr.slot_states().contains(&SlotState::Trial), "{}", what());
    let counter = mgr.installed_counter();
    assert!(
        counter >= floor,
        "{}: security counter went down: {counter:?} < {floor:?}",
        what()
    );
    let position = match mgr.active() {
        None => {
            assert!(allowed.contains(&None), "{}: no active component", what());
            assert_eq!(
                counter,
                None,
                "{}: a counter with nothing installed",
                what()
            );
            tally.none += 1;
            None
        }
        Some(info) => {
            let counter_of_active = info.security_counter;
            let stored = mgr.active_bundle().unwrap();
            let (header, payload) = bundle::parse(&stored)
                .unwrap_or_else(|e| panic!("{}: stored bundle does not parse: {e}", what()));
            // `open` verified signatures and policy; the bytes must also be exactly one
            // of the bundles this test signed.
            assert_eq!(
                header.manifest.security_counter,
                counter_of_active,
                "{}",
                what()
            );
            assert_eq!(mgr.active_payload().unwrap(), payload, "{}", what());
            assert_eq!(counter, Some(counter_of_active), "{}", what());
            let position = allowed
                .iter()
                .position(|a| *a == Some(&stored[..]))
                .unwrap_or_else(|| panic!("{}: an unexpected component is active", what()));
            Some(position)
        }
    };
    // The last allowed component is the new one, unless there is only one.
    match position {
        Some(p) if allowed.len() > 1 && p == allowed.len() - 1 => tally.new += 1,
        Some(_) => tally.old += 1,
        None => {}
    }
    if follow_up {
        let mut w = mgr.begin_bundle().unwrap();
        w.write(&fx.bundles.next).unwrap();
        w.finish()
            .unwrap_or_else(|e| panic!("{}: follow-up update: {e}", what()));
        mgr.start_trial().unwrap();
        mgr.confirm().unwrap();
        assert_eq!(mgr.installed_counter(), Some(50));
        tally.follow_ups += 1;
    }
    counter
}

/// Runs every scenario on one geometry with a cut at every flash operation.
fn cut_everywhere<const E: usize, const W: usize>(erased: u8, ecc: bool) -> Tally {
    let fx = Fixture::new(E as u32, ecc);
    let mut tally = Tally::default();
    for (s, scenario) in SCENARIOS.into_iter().enumerate() {
        let base: SimFlash<E, W> = fx.flash_with(erased, &scenario.before(&fx.bundles));
        let floor = SlotManager::open(base.clone().reboot(), fx.layout, fx.board)
            .unwrap()
            .installed_counter();
        let seed = (E * 31 + W) as u64 ^ s as u64;
        let allowed = scenario.allowed(&fx.bundles);

        // The uncut run: how many operations there are to cut, and where it ends.
        let mut probe = base.clone().reboot();
        scenario.run(&mut probe, &fx, seed).unwrap();
        let ops = probe.stats().ops();
        assert!(ops > 10, "{scenario:?}: only {ops} flash operations");
        let mut end = probe.reboot();
        let mut final_tally = Tally::default();
        let final_counter = check_boot(
            &mut end,
            &fx,
            &allowed,
            floor,
            false,
            &mut final_tally,
            &|| format!("{scenario:?} uncut"),
        );
        let expected_final = match scenario {
            Scenario::Rollback | Scenario::BadHash => floor,
            _ => Some(floor.map_or(1, |f| f + 1)),
        };
        assert_eq!(final_counter, expected_final, "{scenario:?}");
        // The boot after the uncut run counts too: it is the "cut after the last
        // operation" case, the only one where the new component must be found.
        tally.old += final_tally.old;
        tally.new += final_tally.new;
        tally.none += final_tally.none;

        for n in 0..ops {
            let what = || {
                format!(
                    "{scenario:?}, page {E}, write {W}, erased {erased:#04x}, cut at op {n} of {ops}"
                )
            };
            let mut flash = base.clone().reboot();
            flash.cut_power_at(n);
            match scenario.run(&mut flash, &fx, seed) {
                Err(AgentError::Flash { op, .. }) => {
                    assert!(matches!(op, FlashOp::Write | FlashOp::Erase), "{}", what());
                }
                other => panic!("{}: expected a power cut, got {other:?}", what()),
            }
            assert!(!flash.is_powered(), "{}", what());
            let mut booted = flash.reboot();
            check_boot(
                &mut booted,
                &fx,
                &allowed,
                floor,
                n % FOLLOW_UP == 0,
                &mut tally,
                &what,
            );
            tally.cuts += 1;
        }
    }
    tally
}

/// `(name, run)` for each `page / write` geometry; `ecc` marks flash that allows one
/// write per write unit between erases.
macro_rules! geometries {
    ($($page:literal / $write:literal $(, $ecc:ident)?);* $(;)?) => {
        vec![$(
            (
                concat!("page ", $page, " B, write ", $write, " B" $(, ", ", stringify!($ecc))?),
                (|erased| cut_everywhere::<$page, $write>(erased, false $(|| stringify!($ecc) == "ecc")?))
                    as fn(u8) -> Tally,
            )
        ),*]
    };
}

#[test]
fn a_power_cut_at_every_flash_operation_leaves_a_bootable_signed_component() {
    let started = Instant::now();
    let geometries = geometries![
        4096 / 4;          // SPI NOR, nRF52 internal flash
        1024 / 8;
        16384 / 1;         // large sectors, byte writes
        256 / 1;           // small pages: many erases per slot
        512 / 2;
        2048 / 8, ecc;     // STM32L4/G4: 2 KiB pages, 64-bit double-words with ECC
        2048 / 32, ecc;    // STM32H7-like 256-bit flash words with ECC
        8192 / 16, ecc;
    ];
    let runs: Vec<(&str, u8, Tally)> = std::thread::scope(|scope| {
        let handles: Vec<_> = geometries
            .iter()
            .flat_map(|&(name, run)| {
                [0xFF, 0x00].map(|erased| (name, erased, scope.spawn(move || run(erased))))
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, erased, h)| (name, erased, h.join().unwrap()))
            .collect()
    });
    let mut total = Tally::default();
    for (name, erased, t) in &runs {
        println!(
            "{name}, erased {erased:#04x}: {} cuts; after the cut: old component {}, new {}, none {}; {} follow-up updates",
            t.cuts, t.old, t.new, t.none, t.follow_ups
        );
        total.cuts += t.cuts;
        total.old += t.old;
        total.new += t.new;
        total.none += t.none;
        total.follow_ups += t.follow_ups;
    }
    println!(
        "power-fail suite: {} power cuts over {} scenarios × {} geometries × 2 erased values, every one recovered \
         (old {}, new {}, none {}; {} follow-up updates) in {:.1?}",
        total.cuts,
        SCENARIOS.len(),
        geometries.len(),
        total.old,
        total.new,
        total.none,
        total.follow_ups,
        started.elapsed()
    );
    assert!(
        total.cuts >= 50_000,
        "only {} power cuts; the suite promises at least 50,000",
        total.cuts
    );
    assert!(total.old > 0 && total.new > 0 && total.none > 0);
}

/// A cut, then a cut during the boot and update that follow, then a boot that must
/// succeed.
fn double_cuts<const E: usize, const W: usize>(erased: u8, rounds: u64, seed: u64) -> Tally {
    let fx = Fixture::new(E as u32, false);
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let bases: Vec<SimFlash<E, W>> = SCENARIOS
        .iter()
        .map(|s| fx.flash_with(erased, &s.before(&fx.bundles)))
        .collect();
    for round in 0..rounds {
        let s = rng.below(SCENARIOS.len() as u64) as usize;
        let scenario = SCENARIOS[s];
        let base = &bases[s];
        let floor = SlotManager::open(base.clone().reboot(), fx.layout, fx.board)
            .unwrap()
            .installed_counter();
        let mut probe = base.clone().reboot();
        scenario.run(&mut probe, &fx, round).unwrap();
        let first = rng.below(probe.stats().ops());
        let mut flash = base.clone().reboot();
        flash.cut_power_at(first);
        assert!(scenario.run(&mut flash, &fx, round).is_err());

        // The second life: boot (recovery) and an update, measured uncut first.
        let second_life = |flash: &mut SimFlash<E, W>| -> Result<Option<u64>, AgentError> {
            let mut mgr = SlotManager::open(&mut *flash, fx.layout, fx.board)?;
            let counter = mgr.installed_counter();
            let mut w = mgr.begin_bundle()?;
            for chunk in fx.bundles.next.chunks(97) {
                w.write(chunk)?;
            }
            w.finish()?;
            mgr.start_trial()?;
            mgr.confirm()?;
            Ok(counter)
        };
        let mut probe = flash.clone().reboot();
        let counter_at_second_boot = second_life(&mut probe).unwrap();
        let ops = probe.stats().ops();
        // Half the time, cut within the boot's own recovery (if it has any).
        let second = if rng.below(2) == 0 {
            rng.below(ops.min(3))
        } else {
            rng.below(ops)
        };
        let mut flash = flash.reboot();
        flash.cut_power_at(second);
        assert!(second_life(&mut flash).is_err());

        let mut allowed = scenario.allowed(&fx.bundles);
        allowed.push(Some(&fx.bundles.next));
        let what = || {
            format!(
                "double cut round {round}: {scenario:?}, page {E}, write {W}, erased {erased:#04x}, cuts at {first} then {second}"
            )
        };
        let mut booted = flash.reboot();
        check_boot(
            &mut booted,
            &fx,
            &allowed,
            counter_at_second_boot.max(floor),
            false,
            &mut tally,
            &what,
        );
        tally.cuts += 2;
    }
    tally
}

#[test]
fn random_double_cuts_during_recovery_still_boot() {
    let started = Instant::now();
    let (a, b, c) = std::thread::scope(|scope| {
        let a = scope.spawn(|| double_cuts::<4096, 4>(0xFF, 150, 1));
        let b = scope.spawn(|| double_cuts::<1024, 8>(0x00, 150, 2));
        let c = double_cuts::<16384, 1>(0xFF, 150, 3);
        (a.join().unwrap(), b.join().unwrap(), c)
    });
    let cuts = a.cuts + b.cuts + c.cuts;
    println!(
        "double cuts: {} rounds, {cuts} power cuts, every third boot succeeded, in {:.1?}",
        cuts / 2,
        started.elapsed()
    );
    assert_eq!(cuts, 900);
}
