//! A millisecond clock from SysTick: the counter runs free over its full 24 bits and an exception counts its wraps.
//!
//! SysTick counts the processor clock, whose rate the board gives [`init`] (QEMU
//! mps2-an386: 25 MHz; mps2-an505: 20 MHz; SysTick's external reference clock is not
//! used here). A full-range reload wraps every 2^24 cycles (0.67 s at 25 MHz), so the
//! time is `wraps * 2^24 + elapsed cycles`, exact to one cycle, and it stays right
//! while the interrupt is held off (in a critical section, or with QEMU blocked in a
//! semihosting call): only a stall of more than one period, two wraps for one pending
//! interrupt, loses time. QEMU's SysTick follows host time, so these are wall-clock
//! milliseconds (measured: a 10 s `delay_ms` took 10.0 s on the host).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

/// The largest SysTick reload: the counter counts down from here, then wraps.
const RELOAD: u32 = 0x00ff_ffff;

/// Cycles per millisecond: the board's core clock / 1000 (set by [`init`]).
static CYCLES_PER_MS: AtomicU32 = AtomicU32::new(1);

fn cycles_per_ms() -> u64 {
    u64::from(CYCLES_PER_MS.load(Ordering::Relaxed).max(1))
}

/// One counter period (2^24 cycles), in milliseconds, rounded up.
fn period_ms() -> u64 {
    (1 << 24) / cycles_per_ms() + 1
}

/// How many times the counter has wrapped since [`init`].
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Starts the clock. Call once, early in `main`, before anything reads the time
/// (the network stack's timers and timeouts do); before this the time is meaningless.
/// Taking `SYST` by value keeps anyone else from reprogramming the counter.
/// `core_hz` is the processor clock.
pub fn init(mut syst: SYST, core_hz: u32) {
    CYCLES_PER_MS.store(core_hz / 1000, Ordering::Relaxed);
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // Cleared, the counter reads 0 until it first loads RELOAD, which `cycles`
    // would take for the end of a period (QEMU was seen to show that 0 for a
    // while). Wait for the load, then start counting periods from here.
    for _ in 0..1_000_000 {
        if SYST::get_current() != 0 {
            break;
        }
    }
    critical_section::with(|_| {
        SCB::clear_pendst();
        WRAPS.store(0, Ordering::Relaxed);
    });
}

/// Milliseconds since [`init`].
pub fn now_ms() -> u64 {
    cycles() / cycles_per_ms()
}

/// Waits `ms` milliseconds: asleep (`wfi`) through whole counter periods, which
/// each end with the wrap interrupt, then busy for the last one. Asleep, QEMU uses
/// no host CPU.
pub fn delay_ms(ms: u64) {
    let until = now_ms().saturating_add(ms);
    loop {
        let now = now_ms();
        if now >= until {
            return;
        }
        if until - now > period_ms() {
            cortex_m::asm::wfi();
        } else {
            core::hint::spin_loop();
        }
    }
}

/// Processor cycles since [`init`]: the finest time the board has, for measuring
/// work. Under `qemu-system-arm -icount shift=0` the guest runs one instruction per
/// virtual nanosecond, so at 25 MHz a cycle is 40 guest instructions and a difference
/// of two readings counts the instructions in between (`cargo xtask bench` uses
/// this); without `-icount` it is host wall-clock time.
pub fn cycles() -> u64 {
    critical_section::with(|_| {
        // With interrupts off the handler cannot run, so a wrap that happens now
        // shows as a pending SysTick instead: count it, and read the counter again
        // so that the value belongs to the new period.
        let mut wraps = WRAPS.load(Ordering::Relaxed);
        let mut current = SYST::get_current();
        if SCB::is_pendst_pending() {
            wraps = wraps.wrapping_add(1);
            current = SYST::get_current();
        }
        (u64::from(wraps) << 24) + u64::from(RELOAD - current.min(RELOAD))
    })
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}
