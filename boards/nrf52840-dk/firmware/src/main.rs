//! Tern firmware for the Nordic nRF52840 DK (Cortex-M4F): the board's entry point, memory map and peripherals (NVMC component flash, SLIP on the UARTE, TEMP, LEDs, RNG), logs over RTT. Everything else, the device agent included, is `tern-device`.
#![no_std]
#![no_main]

extern crate alloc;

mod io;

use core::fmt;
use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use defmt_rtt as _;
use nrf52840_hal::gpio::{Level, p0};
use nrf52840_hal::nvmc::Nvmc;
use nrf52840_hal::pac;
use nrf52840_hal::rng::Rng;
use nrf52840_hal::uarte::{self, Baudrate, Parity, Uarte};
use nrf52840_hal::{Clocks, Temp};
use tern_device::Board;
use tern_slip::Slip;

/// The board table and the device constants generated from
/// `boards/nrf52840-dk/board.toml` by `tern-board`.
mod board {
    #![allow(
        dead_code,
        reason = "the generated `ALL` list is for multi-board hosts"
    )]
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}

/// SysTick's clock: the nRF52840's CPU runs at 64 MHz (datasheet, CLOCK: HCLK64M).
const CORE_HZ: u32 = 64_000_000;

/// Whether two pin lists are equal, in a `const` (slices have no `const` `==`).
const fn same_pins(a: &[u32], b: &[u32]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether two strings are equal, in a `const`.
const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// The pins board.toml says the board has are the ones this crate drives: a component
// granted a pin must reach an LED, so a mismatch fails the build.
const _: () = assert!(
    same_pins(board::GPIO, &io::LED_PINS),
    "boards/nrf52840-dk/board.toml: peripherals.gpio must be [13, 14, 15, 16], the DK's LEDs (src/io.rs LED_PINS)"
);
const _: () = assert!(
    board::SENSORS.len() == 1 && same_str(board::SENSORS[0], io::TEMP_SENSOR),
    "boards/nrf52840-dk/board.toml: peripherals.sensors must be [\"temp-0\"], the die temperature (src/io.rs TEMP_SENSOR)"
);

static BOARD: Board = tern_device::board!(board, NRF52840_DK, core_hz: CORE_HZ);

/// Why the network could not be started again: the SLIP link owns the UARTE, and the
/// first network took it.
struct LinkGone;

impl fmt::Display for LinkGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the SLIP link went to a network that failed to start (see the line before); reset the board",
        )
    }
}

#[entry]
fn main() -> ! {
    static mut HEAP: [MaybeUninit<u8>; board::HEAP_BYTES] =
        [MaybeUninit::uninit(); board::HEAP_BYTES];
    // EasyDMA moves UARTE bytes from and to RAM: these are its buffers. Frames go out in
    // pieces of up to 256 bytes; bytes come in one at a time (nrf-hal's `UarteRx`).
    static mut UARTE_TX: [u8; 256] = [0; 256];
    static mut UARTE_RX: [u8; 1] = [0; 1];
    // cortex-m-rt's `#[entry]` hands these `static mut`s over as the one `&'static mut`.
    let heap: &'static mut [MaybeUninit<u8>] = HEAP;
    let device = tern_device::boot(&BOARD, heap);

    let p = pac::Peripherals::take().expect("the peripherals are taken only here");
    // The crystal: the UART's baud rate is only as exact as the 64 MHz clock.
    let _clocks = Clocks::new(p.CLOCK).enable_ext_hfosc();
    let port0 = p0::Parts::new(p.P0);

    // LED1-LED4 on P0.13-P0.16, lit when low: start them high (off).
    io::init_leds([
        port0.p0_13.into_push_pull_output(Level::High).degrade(),
        port0.p0_14.into_push_pull_output(Level::High).degrade(),
        port0.p0_15.into_push_pull_output(Level::High).degrade(),
        port0.p0_16.into_push_pull_output(Level::High).degrade(),
    ]);

    // The DK's USB serial port (the on-board J-Link's VCOM): TXD P0.06, RXD P0.08, with
    // hardware flow control (RTS P0.05, CTS P0.07), so that the J-Link holds bytes while
    // the CPU is stalled by a flash erase instead of overrunning the UARTE.
    let pins = uarte::Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        cts: Some(port0.p0_07.into_floating_input().degrade()),
        rts: Some(port0.p0_05.into_push_pull_output(Level::High).degrade()),
    };
    let uarte = Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
    let (tx, rx) = uarte
        .split(UARTE_TX, UARTE_RX)
        .expect("both UARTE buffers are in RAM and within EasyDMA's limit");
    // TCP's first sequence number and port from the hardware RNG: different at every boot.
    let entropy = Rng::new(p.RNG).random_u32();
    let mut link = Some(Slip::new(rx, tx).with_entropy(entropy));

    // SAFETY: board.toml puts the component flash [FLASH_ORIGIN, +FLASH_BYTES) inside
    // the nRF52840's 1 MiB of internal flash and outside `memory.flash`, so nothing is
    // linked there (tern-board checks it); flash reads as memory; and this is the only
    // reference to it, handed to the NVMC driver, which writes it only through the NVMC.
    let storage = unsafe {
        core::slice::from_raw_parts_mut(BOARD.flash_origin as *mut u8, BOARD.flash_bytes)
    };
    let flash = Nvmc::new(p.NVMC, storage);

    let source = io::DieTemp::new(Temp::new(p.TEMP), BOARD.peripherals);
    device.run(flash, source, move |_| link.take().ok_or(LinkGone))
}
