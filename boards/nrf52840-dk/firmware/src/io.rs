//! The DK's inputs and outputs as components see them: the nRF52840's die temperature, sampled every 10 s, as the board's live [`Source`], and LED1-LED4 as gpio pins 13-16.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use critical_section::Mutex;
use embedded_hal::digital::{OutputPin, StatefulOutputPin};
use nrf52840_hal::Temp;
use nrf52840_hal::gpio::{Output, Pin, PushPull};
use tern_core::{Event, Platform, Sample};
use tern_device::platform::{DevicePlatform, Io, Peripherals};
use tern_device::{Live, Source, Workload, clock};

/// The sensor id of the die temperature (board.toml `[peripherals] sensors`).
pub const TEMP_SENSOR: &str = "temp-0";
/// The LEDs' pins, LED1 to LED4 (P0.13-P0.16; board.toml `[peripherals] gpio`).
pub const LED_PINS: [u32; 4] = [13, 14, 15, 16];
/// How often the die temperature is sampled. The TEMP peripheral takes 36 us per
/// measurement; the period is about what a component's result line is worth.
const SAMPLE_MS: u64 = 10_000;
/// Samples kept for the next trial and each fresh run of the active component: a new
/// component starts on the same recent history the old one saw.
const RECENT: usize = 8;

/// LED1 to LED4, as push-pull outputs.
pub type Leds = [Pin<Output<PushPull>>; 4];

/// The LEDs, once `main` has configured them. Shared by every component instance's
/// [`Dk`], and so behind a critical section.
static LEDS: Mutex<RefCell<Option<Leds>>> = Mutex::new(RefCell::new(None));

/// The sample being delivered (the latest one taken, or the one replayed), which
/// `sensors.read` answers with.
static LATEST: Mutex<RefCell<Option<Sample>>> = Mutex::new(RefCell::new(None));

/// Hands the LEDs (LED1 to LED4, configured as outputs, off) to the components' pins.
pub fn init_leds(leds: Leds) {
    critical_section::with(|cs| *LEDS.borrow_ref_mut(cs) = Some(leds));
}

/// The die temperature as the board's live source: a sample every [`SAMPLE_MS`], the
/// last [`RECENT`] kept for trials. Components get no `init` config: a real board has
/// no feed file to carry one, so they run on their defaults.
pub struct DieTemp {
    temp: Temp,
    board: Peripherals,
    next_at: u64,
    recent: Vec<Event>,
}

impl DieTemp {
    /// Samples `temp` for the components on `board`, the first time at once.
    pub fn new(temp: Temp, board: Peripherals) -> Self {
        DieTemp {
            temp,
            board,
            next_at: 0,
            recent: Vec::with_capacity(RECENT),
        }
    }
}

impl Workload for DieTemp {
    fn config(&self) -> &[(String, String)] {
        &[]
    }

    fn events(&self) -> &[Event] {
        &self.recent
    }

    fn platform(&mut self) -> Box<dyn Platform + Send> {
        Box::new(DevicePlatform::new(self.board, Dk))
    }

    fn observe(&mut self, event: &Event) {
        if let Event::Sample(s) = event {
            critical_section::with(|cs| *LATEST.borrow_ref_mut(cs) = Some(s.clone()));
        }
    }
}

impl Source for DieTemp {
    fn is_live(&self) -> bool {
        true
    }

    fn poll_live(&mut self, now_ms: u64) -> Live {
        if now_ms < self.next_at {
            return Live::At(self.next_at);
        }
        self.next_at = now_ms + SAMPLE_MS;
        // TEMP counts quarter degrees Celsius; components get milli-degrees.
        let milli = i64::from(self.temp.measure().to_bits()) * 250;
        let event = Event::Sample(Sample {
            sensor: TEMP_SENSOR.to_string(),
            milli,
            at_ms: now_ms,
        });
        if self.recent.len() == RECENT {
            self.recent.remove(0);
        }
        self.recent.push(event.clone());
        Live::Due(event)
    }
}

/// One component instance's view of the DK: the clock since boot, the sample being
/// delivered, and the LEDs. A pin here is one of [`LED_PINS`]: `DevicePlatform`
/// checked it against the board's list, which `main` holds equal to them.
pub struct Dk;

/// Runs `f` on LED `pin`'s output.
fn with_led<T>(pin: u32, f: impl FnOnce(&mut Pin<Output<PushPull>>) -> T) -> Result<T, String> {
    let index = LED_PINS
        .iter()
        .position(|p| *p == pin)
        .ok_or_else(|| format!("gpio pin {pin} is not one of the DK's LEDs"))?;
    critical_section::with(|cs| {
        let mut leds = LEDS.borrow_ref_mut(cs);
        let leds = leds
            .as_mut()
            .ok_or_else(|| "the LEDs are not configured yet".to_string())?;
        Ok(f(&mut leds[index]))
    })
}

impl Io for Dk {
    fn now_ms(&mut self) -> u64 {
        clock::now_ms()
    }

    fn read_sensor(&mut self, sensor: &str) -> Result<Sample, String> {
        critical_section::with(|cs| LATEST.borrow_ref(cs).clone())
            .filter(|s| s.sensor == sensor)
            .ok_or_else(|| format!("sensor `{sensor}` has no sample yet"))
    }

    fn set_pin(&mut self, pin: u32, high: bool) -> Result<(), String> {
        // The DK's LEDs are lit when their pin is low: "high" means lit.
        with_led(pin, |led| if high { led.set_low() } else { led.set_high() })?
            .map_err(|e| match e {})
    }

    fn pin(&mut self, pin: u32) -> Result<bool, String> {
        with_led(pin, |led| led.is_set_low())?.map_err(|e| match e {})
    }
}
