//! Tern firmware for QEMU mps2-an386 (Cortex-M4F): the board's entry point, memory map
//! and Ethernet driver. Everything else, the device agent included, is `tern-device`.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tern_device::Board;
use tern_lan9118::{Lan9118, MPS2_AN386_BASE};

/// The board table and the device constants generated from
/// `boards/qemu-mps2-an386/board.toml` by `tern-board`.
mod board {
    #![allow(
        dead_code,
        reason = "the generated `ALL` list is for multi-board hosts"
    )]
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}

/// SysTick's clock: the mps2-an386 system clock (QEMU `hw/arm/mps2.c` `SYSCLK_FRQ`).
const CORE_HZ: u32 = 25_000_000;

static BOARD: Board = tern_device::board!(board, QEMU_MPS2_AN386, core_hz: CORE_HZ);

#[entry]
fn main() -> ! {
    static mut HEAP: [MaybeUninit<u8>; board::HEAP_BYTES] =
        [MaybeUninit::uninit(); board::HEAP_BYTES];
    // cortex-m-rt's `#[entry]` hands this `static mut` over as the one `&'static mut`.
    let heap: &'static mut [MaybeUninit<u8>] = HEAP;
    tern_device::qemu::start::<{ board::SECTOR_SIZE }, _, _>(&BOARD, heap, |n| {
        // SAFETY: QEMU mps2-an386 maps a LAN9118 here, and nothing but the network
        // `tern-device` starts with it touches it (one at a time).
        unsafe { Lan9118::new(MPS2_AN386_BASE, n.mac) }
    })
}
