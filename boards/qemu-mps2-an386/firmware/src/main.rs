//! Tern firmware for QEMU mps2-an386: a device agent that fetches signed components from
//! `tern serve` over smoltcp, keeps them in A/B flash slots, and runs them on wasmi.
//!
//! Boot: heap and clock, the component flash (restored from the host file, see
//! [`flash`]), the sensor feed ([`feed`]), then the slot manager, which rolls back a
//! trial that a restart interrupted and re-verifies the active component. Then the
//! [`agent`] checks in forever. Everything a component may touch is decided by the
//! board's static table, generated from board.toml at build time; everything the
//! device says is a defmt log line over semihosting, decoded on the host.
#![no_std]
#![no_main]

extern crate alloc;

mod agent;
mod clock;
mod feed;
mod flash;
mod heap;
mod net;
mod platform;
mod semihost;

/// The board table and the device constants generated from
/// `boards/qemu-mps2-an386/board.toml` by `tern-board`.
mod board {
    #![allow(
        dead_code,
        reason = "the generated `ALL` list is for multi-board hosts"
    )]
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt::{Display2Format, error, info, warn};
use defmt_semihosting as _;

use crate::board::{DEVICE_ID, HEAP_BYTES, QEMU_MPS2_AN386 as BOARD};
use crate::feed::{Feed, FeedError};
use crate::flash::{Boot, DeviceFlash};

#[entry]
fn main() -> ! {
    heap::init();
    if let Some(cp) = cortex_m::Peripherals::take() {
        clock::init(cp.SYST);
    }
    info!(
        "tern firmware: board {=str}, device {=str}, engine wasmi, heap {=usize} bytes",
        BOARD.name, DEVICE_ID, HEAP_BYTES
    );
    // SAFETY: called once, before anything else could touch the component flash.
    let (flash, boot) = unsafe { DeviceFlash::take() };
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
            found,
            board::FLASH_BYTES
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
    match agent::Agent::new(flash, feed) {
        Ok(mut agent) => agent.run(),
        Err(e) => {
            // Only a board table whose slots do not fit its flash gets here, and
            // tern-board refuses those at build time.
            error!("cannot open the component flash: {}", Display2Format(&e));
            debug::exit(debug::EXIT_FAILURE);
            loop {
                cortex_m::asm::wfi();
            }
        }
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
