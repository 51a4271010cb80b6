//! The smoother's logic compiled into the firmware: the physical limit that
//! `cargo xtask bench --device` sets the component on wasmi against.
//!
//! It does per event what `components/smoother` does (the same key, the same kv
//! reads and writes through the board's [`Platform`], the same integer arithmetic,
//! the same debug log line and output), as native Thumb code with nothing between
//! it and the platform: no interpreter, no canonical-ABI copies, no grant checks.
//! Only built into a firmware when `TERN_NATIVE_BENCH` is set at build time
//! (`xtask bench --device` does); otherwise the compiler drops it.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use tern_core::host::Platform;
use tern_core::wit::{Event, Level, Output, Sample, Value};

/// Whether this firmware carries the native smoother (`TERN_NATIVE_BENCH` set when
/// it was built).
pub const ENABLED: bool = option_env!("TERN_NATIVE_BENCH").is_some();

/// The smoother's configuration (its defaults: the bench's feed sets none).
pub struct Smoother {
    alpha_milli: i64,
    sensor: String,
    unit: String,
    platform: Box<dyn Platform + Send>,
}

impl Smoother {
    /// A smoother with the component's defaults, calling `platform`.
    pub fn new(platform: Box<dyn Platform + Send>, config: &[(String, String)]) -> Smoother {
        let mut s = Smoother {
            alpha_milli: 250,
            sensor: String::from("temp-0"),
            unit: String::from("degC"),
            platform,
        };
        for (k, v) in config {
            match k.as_str() {
                "sensor" => s.sensor = v.clone(),
                "unit" => s.unit = v.clone(),
                "alpha" => {
                    if let Some(a) = parse_milli(v) {
                        s.alpha_milli = a;
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// One event, as the component's `on-event`.
    pub fn on_event(&mut self, event: &Event) -> Result<Vec<Output>, String> {
        match event {
            Event::Sample(s) => self.smooth(s),
            Event::Tick(_) => match self.platform.read_sensor(&self.sensor) {
                Ok(s) => self.smooth(&s),
                Err(e) => {
                    self.platform.log(Level::Warn, &e);
                    Ok(Vec::new())
                }
            },
            Event::Frame(_) => Err(String::from(
                "the smoother takes samples and ticks, not frames",
            )),
        }
    }

    fn smooth(&mut self, s: &Sample) -> Result<Vec<Output>, String> {
        // A different key from the component's, so the two never share state.
        let key = ["native-ema/", &s.sensor].concat();
        let ema = match self.platform.kv_get(&key) {
            Some(bytes) => {
                let prev = i64::from_le_bytes(
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| String::from("corrupt state"))?,
                );
                prev + (s.milli - prev) * self.alpha_milli / 1000
            }
            None => s.milli,
        };
        self.platform.kv_set(&key, &ema.to_le_bytes())?;
        let mut line = String::with_capacity(s.sensor.len() + 32);
        line.push_str(&s.sensor);
        line.push_str(": ");
        push_milli(&mut line, s.milli);
        line.push_str(" -> ");
        push_milli(&mut line, ema);
        self.platform.log(Level::Debug, &line);
        Ok(alloc::vec![Output {
            name: [&s.sensor, ".ema"].concat(),
            value: Value::Milli(ema),
            unit: Some(self.unit.clone()),
        }])
    }
}

/// `v` in milli-units as a decimal (`-500` → `-0.500`), digit by digit as the guest
/// SDK's `push_milli` writes it.
fn push_milli(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let a = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let (mut n, mut i) = (a / 1000, digits.len());
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[i..].iter().for_each(|&d| out.push(char::from(d)));
    out.push('.');
    let frac = a % 1000;
    for d in [frac / 100, frac / 10 % 10, frac % 10] {
        out.push(char::from(b'0' + d as u8));
    }
}

/// `"0.25"` → 250.
fn parse_milli(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..3 {
        f *= 10;
    }
    int.parse::<i64>().ok()?.checked_mul(1000)?.checked_add(f)
}
