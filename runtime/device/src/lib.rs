//! Tern's device runtime for Cortex-M boards: everything a device firmware does that is
//! not specific to one board. A board crate calls [`boot`] with its [`Board`] (the
//! static table and constants generated from its board.toml) and its heap memory, then
//! [`Device::run`] with its component flash (any NOR flash), its [`Source`] of events
//! and sensors, and a way to start its network driver; the rest is here.
//!
//! Boot: heap and clock ([`boot`]); then the slot manager on the board's flash, which
//! rolls back a trial that a restart interrupted and re-verifies the active component,
//! and [`agent`] drives the one update agent (`tern_agent::Agent`) forever. Everything
//! a component may touch is decided by the board's static table; everything the device
//! says is a defmt log line, carried however the board's firmware chooses (semihosting
//! under QEMU, RTT on a real board).
//!
//! What only a QEMU board has (the component flash in RAM written through to a host
//! file, the sensor feed read from one, and exiting QEMU after a fatal error) is
//! `tern_device::qemu`, behind the `qemu` feature: semihosting hangs a real chip that
//! has no debugger attached.
#![no_std]

extern crate alloc;

pub mod agent;
pub mod clock;
pub mod heap;
pub mod linear;
pub mod native;
pub mod platform;
#[cfg(feature = "qemu")]
pub mod qemu;

use core::fmt;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use defmt::{Display2Format, error, info};
use embedded_storage::nor_flash::NorFlash;
use tern_core::Event;
use tern_core::board::BoardTable;
use tern_net::{NetConfig, Nic};

use crate::platform::Peripherals;

/// The agent's view of what feeds components, which every [`Source`] is; re-exported so
/// that a board crate needs no direct dependency on `tern-agent`.
pub use tern_agent::agent::Workload;
pub use tern_net::Ipv4Mode;

/// A board crate's [`Board`], from the constants `tern_board::firmware::build`
/// generates (the module `$generated` that `include!`s them), the board's static table
/// `$table` in it, and the processor clock in Hz, which no board.toml key holds:
///
/// ```text
/// static BOARD: tern_device::Board = tern_device::board!(board, QEMU_MPS2_AN386, core_hz: 25_000_000);
/// ```
#[macro_export]
macro_rules! board {
    ($generated:ident, $table:ident, core_hz: $hz:expr) => {
        $crate::Board {
            table: &$generated::$table,
            device_id: $generated::DEVICE_ID,
            device_token: $generated::DEVICE_TOKEN,
            network: $crate::Network {
                mac: $generated::net::MAC,
                ipv4: if $generated::net::DHCP {
                    $crate::Ipv4Mode::Dhcp
                } else {
                    $crate::Ipv4Mode::Static {
                        address: $generated::net::ADDRESS,
                        prefix_len: $generated::net::PREFIX_LEN,
                        gateway: $generated::net::GATEWAY,
                    }
                },
                server: $generated::net::SERVER,
            },
            flash_origin: $generated::FLASH_ORIGIN,
            flash_bytes: $generated::FLASH_BYTES,
            core_hz: $hz,
            peripherals: $crate::platform::Peripherals {
                sensors: $generated::SENSORS,
                gpio: $generated::GPIO,
            },
        }
    };
}

/// What the runtime needs to know of a board: generated from its board.toml by
/// `tern-board` (the board crate fills this in from the generated constants).
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// The board's static table: trust, offers, limits, slots.
    pub table: &'static BoardTable,
    /// This device's id on the fleet server (`TERN_DEVICE_ID` at build time).
    pub device_id: &'static str,
    /// This device's bearer token (`TERN_DEVICE_TOKEN` at build time).
    pub device_token: &'static str,
    /// The network (board.toml `[network]`); its clock is set by [`boot`].
    pub network: Network,
    /// The component flash: where it is in the address space and how big.
    pub flash_origin: usize,
    /// Its size in bytes.
    pub flash_bytes: usize,
    /// The processor clock in Hz (SysTick counts it).
    pub core_hz: u32,
    /// What the board has (board.toml `[peripherals]`).
    pub peripherals: Peripherals,
}

/// board.toml `[network]`.
#[derive(Clone, Copy, Debug)]
pub struct Network {
    /// The Ethernet address (on an IP link such as SLIP only a seed, see
    /// [`tern_net::NetConfig::mac`]).
    pub mac: [u8; 6],
    /// A static address, or DHCP.
    pub ipv4: tern_net::Ipv4Mode,
    /// Where the fleet server is.
    pub server: ([u8; 4], u16),
}

impl Network {
    fn config(&self) -> NetConfig {
        NetConfig {
            now_ms: clock::now_ms,
            mac: self.mac,
            ipv4: self.ipv4,
            server: self.server,
        }
    }
}

/// What a board feeds its components: tern-agent's [`Workload`] (the `init` config, the
/// events a trial runs on and a fresh run of the active component starts with, and a
/// platform per instance, see [`platform::DevicePlatform`]), and on a board with real
/// sensors, new events as they happen.
pub trait Source: Workload {
    /// Whether the board has live input ([`Source::poll_live`]). Then the active
    /// component keeps running after [`Workload::events`] and gets each new event as it
    /// comes. `false` (the default, a QEMU board's recorded feed): the active component
    /// runs over the events once after every change, and is dropped.
    fn is_live(&self) -> bool {
        false
    }

    /// The next live event, if one is due at `now_ms` (milliseconds since boot), else
    /// when one will be. Called whenever the agent is between steps, also while no
    /// component runs, so that the source can keep recent events for the next trial.
    fn poll_live(&mut self, now_ms: u64) -> Live {
        let _ = now_ms;
        Live::At(u64::MAX)
    }
}

/// What [`Source::poll_live`] has.
#[derive(Debug)]
pub enum Live {
    /// This event, for the running component.
    Due(Event),
    /// Nothing before this time (milliseconds since boot).
    At(u64),
}

/// The device once [`boot`] has run: heap and clock work. Only [`boot`] makes one, so
/// holding it proves that allocating and reading the time are safe.
pub struct Device {
    board: &'static Board,
}

/// The device's engine: wasmi under `limits`, linear memory in [`linear::LINEAR`].
pub fn engine(limits: tern_core::Limits) -> tern_wasmi::WasmiEngine {
    tern_wasmi::WasmiEngine::with_static_memory(limits, &linear::LINEAR)
}

/// Whether [`boot`] has run: the heap can be handed its memory only once.
static BOOTED: AtomicBool = AtomicBool::new(false);

/// Starts the component's linear memory, the heap and the SysTick clock, and logs
/// who this device is. `memory` (the generated `HEAP_BYTES`) is split: its first
/// `limits.memory-bytes` become the linear memory ([`linear::LINEAR`]), the rest the
/// heap. Call once, first thing in `main`: nothing may allocate before.
///
/// # Panics
/// On a second call, or if `memory` cannot hold the linear memory.
pub fn boot(board: &'static Board, memory: &'static mut [MaybeUninit<u8>]) -> Device {
    assert!(
        !BOOTED.swap(true, Ordering::AcqRel),
        "tern_device::boot runs once: call it only at the top of main"
    );
    let linear_bytes = board.table.limits().memory_bytes as usize;
    assert!(
        memory.len() > linear_bytes,
        "the board's memory does not hold its linear memory: build with its generated HEAP_BYTES"
    );
    let (linear, heap) = memory.split_at_mut(linear_bytes);
    let heap_bytes = heap.len();
    heap::init(heap);
    linear::LINEAR.init(linear);
    if let Some(cp) = cortex_m::Peripherals::take() {
        clock::init(cp.SYST, board.core_hz);
    }
    info!(
        "tern firmware: board {=str}, device {=str}, engine wasmi, heap {=usize} bytes, linear memory {=usize}",
        board.table.name(),
        board.device_id,
        heap_bytes,
        linear_bytes
    );
    Device { board }
}

impl Device {
    /// The board this device is.
    pub fn board(&self) -> &'static Board {
        self.board
    }

    /// Runs the agent forever on the board's component `flash` (the slots and the two
    /// metadata sectors of its board.toml, from offset 0), feeding components from
    /// `source`. `nic` starts the board's network driver; it is called when the network
    /// is first needed, and again after a failure.
    pub fn run<F: NorFlash, S: Source, D: Nic, E: fmt::Display>(
        self,
        flash: F,
        source: S,
        nic: impl FnMut(&Network) -> Result<D, E>,
    ) -> ! {
        let e = agent::run(self.board, flash, source, nic);
        // Only a board table whose slots do not fit its flash (tern-board refuses
        // those at build time) or a flash that cannot be read gets here.
        error!("cannot open the component flash: {}", Display2Format(&e));
        fatal()
    }
}

/// Ends the firmware after a panic or a fatal error, once the log has it. Under QEMU
/// (`qemu` feature): exit with status 1, which the tests and `cargo xtask run` see.
/// On a real board: reset, so that a device in the field comes back by itself (the
/// slot manager rolls back a trial that the panic interrupted).
fn fatal() -> ! {
    #[cfg(feature = "qemu")]
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    // With a probe attached, let it read the last lines before they are lost.
    defmt::flush();
    cortex_m::peripheral::SCB::sys_reset()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    error!("panic: {}", Display2Format(info));
    fatal()
}
