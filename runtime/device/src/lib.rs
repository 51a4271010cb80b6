//! Tern's device runtime for Cortex-M boards: everything a device firmware does that is
//! not specific to one board. A board crate gives [`start`] its [`Board`] (the static
//! table and constants generated from its board.toml), its heap memory, and a way to
//! start its Ethernet driver; the rest is here.
//!
//! Boot: heap and clock, the component flash (restored from the host file, see
//! [`flash`]), the sensor feed ([`feed`]), then the slot manager, which rolls back a
//! trial that a restart interrupted and re-verifies the active component. Then
//! [`agent`] drives the one update agent (`tern_agent::Agent`) forever. Everything a
//! component may touch is decided by the board's static table; everything the device
//! says is a defmt log line over semihosting, decoded on the host.
#![no_std]

extern crate alloc;

pub mod agent;
pub mod clock;
pub mod feed;
pub mod flash;
pub mod heap;
pub mod platform;
pub mod semihost;

use core::fmt;
use core::mem::MaybeUninit;

use cortex_m_semihosting::debug;
use defmt::{Display2Format, error, info, warn};
use tern_core::board::BoardTable;
use tern_net::{NetConfig, Nic};

use crate::feed::{Feed, FeedError};
use crate::flash::{Boot, DeviceFlash};
use crate::platform::Peripherals;

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
    /// The network (board.toml `[network]`); its clock is set by [`start`].
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
    /// The Ethernet address.
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

/// Starts the device: heap (`heap` is all of its memory), clock, component flash
/// (erased in `SECTOR`-byte sectors), sensor feed, then the agent forever. `nic`
/// starts the board's Ethernet driver; it is called when the network is first
/// needed, and again after a failure.
pub fn start<const SECTOR: usize, D: Nic, E: fmt::Display>(
    board: &'static Board,
    heap: &'static mut [MaybeUninit<u8>],
    nic: impl FnMut(&Network) -> Result<D, E>,
) -> ! {
    let heap_bytes = heap.len();
    heap::init(heap);
    if let Some(cp) = cortex_m::Peripherals::take() {
        clock::init(cp.SYST, board.core_hz);
    }
    info!(
        "tern firmware: board {=str}, device {=str}, engine wasmi, heap {=usize} bytes",
        board.table.name, board.device_id, heap_bytes
    );
    // SAFETY: called once, before anything else could touch the component flash;
    // board.toml keeps the region apart from every linked region.
    let (flash, boot) =
        unsafe { DeviceFlash::<SECTOR>::take(board.flash_origin, board.flash_bytes) };
    match boot {
        Boot::Restored => info!(
            "flash: restored from {=str}",
            flash::BACKING_FILE.to_str().unwrap_or("?")
        ),
        Boot::Fresh => info!(
            "flash: erased (first boot); kept in {=str}",
            flash::BACKING_FILE.to_str().unwrap_or("?")
        ),
        Boot::Resized { found } => warn!(
            "flash: the backing file was {=usize} bytes, not this board's {=usize}: erased",
            found, board.flash_bytes
        ),
        Boot::Volatile(e) => warn!(
            "flash: no backing file ({}): slots last until QEMU stops",
            Display2Format(&e)
        ),
    }
    let feed = match Feed::load() {
        Ok(f) => {
            info!("sensor feed: {=usize} events", f.events.len());
            f
        }
        Err(FeedError::Missing) => {
            info!(
                "sensor feed: none ({=str} not found)",
                feed::FEED_FILE.to_str().unwrap_or("?")
            );
            Feed::default()
        }
        Err(e) => {
            warn!(
                "sensor feed unusable ({}): running without events",
                Display2Format(&e)
            );
            Feed::default()
        }
    };
    let e = agent::run(board, flash, feed, nic);
    // Only a board table whose slots do not fit its flash gets here, and tern-board
    // refuses those at build time.
    error!("cannot open the component flash: {}", Display2Format(&e));
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    error!("panic: {}", Display2Format(info));
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
