//! Tern firmware for QEMU mps2-an505 (Cortex-M33, ARMv8-M): the board's entry point,
//! memory map and Ethernet driver. Everything else, the device agent included, is `tern-device`.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tern_device::platform::Peripherals;
use tern_device::{Board, Network};
use tern_lan9118::{Lan9118, MPS2_AN505_SECURE_BASE};
use tern_net::Ipv4Mode;

/// The board table and the device constants generated from
/// `boards/qemu-mps2-an505/board.toml` by `tern-board`.
mod board {
    #![allow(
        dead_code,
        reason = "the generated `ALL` list is for multi-board hosts"
    )]
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}

use board::net;

/// SysTick's clock: the AN505 system clock (QEMU `hw/arm/mps2-tz.c` `SYSCLK_FRQ`).
const CORE_HZ: u32 = 20_000_000;

static BOARD: Board = Board {
    table: &board::QEMU_MPS2_AN505,
    device_id: board::DEVICE_ID,
    device_token: board::DEVICE_TOKEN,
    network: Network {
        mac: net::MAC,
        ipv4: if net::DHCP {
            Ipv4Mode::Dhcp
        } else {
            Ipv4Mode::Static {
                address: net::ADDRESS,
                prefix_len: net::PREFIX_LEN,
                gateway: net::GATEWAY,
            }
        },
        server: net::SERVER,
    },
    flash_origin: board::FLASH_ORIGIN,
    flash_bytes: board::FLASH_BYTES,
    core_hz: CORE_HZ,
    peripherals: Peripherals {
        sensors: board::SENSORS,
        gpio: board::GPIO,
    },
};

#[entry]
fn main() -> ! {
    static mut HEAP: [MaybeUninit<u8>; board::HEAP_BYTES] =
        [MaybeUninit::uninit(); board::HEAP_BYTES];
    // cortex-m-rt's `#[entry]` hands this `static mut` over as the one `&'static mut`.
    let heap: &'static mut [MaybeUninit<u8>] = HEAP;
    tern_device::start::<{ board::SECTOR_SIZE }, _, _>(&BOARD, heap, |n| {
        // SAFETY: QEMU mps2-an505 maps a LAN9118 here (the Secure alias of its `eth`
        // port; this firmware runs Secure), and nothing but the network `tern-device`
        // starts with it touches it (one at a time).
        unsafe { Lan9118::new(MPS2_AN505_SECURE_BASE, n.mac) }
    })
}
