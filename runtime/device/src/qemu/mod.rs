//! What only a QEMU board has (the `qemu` feature): the component flash in RAM written through to a host file, the sensor feed from a host file, and [`start`], which boots a QEMU board with both.
//!
//! QEMU's MPS2 boards have no flash controller Tern can program and no sensors, so the
//! component flash is board memory with NOR rules ([`flash`]), kept in `tern-flash.bin`
//! on the host, and the sensors replay `tern-feed.bin` ([`feed`], [`simulated`]); both
//! files are reached through semihosting ([`semihost`]), which a real chip without a
//! debugger attached would hang on.

pub mod feed;
pub mod flash;
pub mod semihost;
pub mod simulated;

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::mem::MaybeUninit;

use defmt::{Display2Format, info, warn};
use tern_core::{Event, Platform};
use tern_net::Nic;

use crate::platform::{DevicePlatform, Peripherals};
use crate::{Board, Network, Source, Workload};
use feed::{Feed, FeedError};
use flash::{Boot, DeviceFlash};
use simulated::Simulated;

/// The sensor feed as the board's [`Source`]: the same events for every trial and
/// every run of the active component, on simulated sensors that follow them.
pub struct FeedSource {
    feed: Feed,
    board: Peripherals,
}

impl Workload for FeedSource {
    fn config(&self) -> &[(String, String)] {
        &self.feed.config
    }

    fn events(&self) -> &[Event] {
        &self.feed.events
    }

    fn platform(&mut self) -> Box<dyn Platform + Send> {
        simulated::reset();
        Box::new(DevicePlatform::new(self.board, Simulated::default()))
    }

    fn observe(&mut self, event: &Event) {
        simulated::observe(&self.board, event);
    }
}

/// A recorded feed has no live input.
impl Source for FeedSource {}

/// Boots a QEMU board: heap and clock ([`crate::boot`]), the component flash
/// (`board.flash_origin`, erased in `SECTOR`-byte sectors, restored from the host file),
/// the sensor feed, then the agent forever. `nic` starts the board's Ethernet driver.
pub fn start<const SECTOR: usize, D: Nic, E: fmt::Display>(
    board: &'static Board,
    heap: &'static mut [MaybeUninit<u8>],
    nic: impl FnMut(&Network) -> Result<D, E>,
) -> ! {
    let device = crate::boot(board, heap);
    // SAFETY: called once (`boot` above refuses a second start), before anything else
    // could touch the component flash; board.toml keeps the region apart from every
    // linked region.
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
    let source = FeedSource {
        feed,
        board: board.peripherals,
    };
    device.run(flash, source, nic)
}
