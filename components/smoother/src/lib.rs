//! Sensor smoothing filter: an exponential moving average per sensor, its state kept in kv.
//!
//! Config: `alpha` (weight of a new sample, 0.001..=1, default 0.25), `sensor`
//! (read on each tick, default `temp-0`), `unit` (reported unit, default `degC`).
//! A `sample` event smooths that sample; a `tick` reads the configured sensor and
//! smooths what it gets. The averages live in kv, so they survive a restart or an
//! update of the component.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use tern_guest::{
    Event, Guest, Output, Sample, State, format, kv, log, milli, parse_milli, sensors,
};

struct Config {
    alpha_milli: i64,
    sensor: String,
    unit: String,
}

static CONFIG: State<Option<Config>> = State::new(None);

struct Smoother;

impl Smoother {
    fn smooth(cfg: &Config, s: &Sample) -> Result<Vec<Output>, String> {
        // Strings are put together by hand, not with `format!`: under an interpreter
        // `core::fmt` costs more than everything else an event does.
        let key = ["ema/", &s.sensor].concat();
        let ema = match kv::get(&key) {
            Some(bytes) => {
                let prev = i64::from_le_bytes(
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| format!("corrupt state under `{key}`"))?,
                );
                prev + (s.milli - prev) * cfg.alpha_milli / 1000
            }
            None => s.milli,
        };
        kv::set(&key, &ema.to_le_bytes())?;
        let mut line = String::with_capacity(s.sensor.len() + 32);
        line.push_str(&s.sensor);
        line.push_str(": ");
        tern_guest::push_milli(&mut line, s.milli);
        line.push_str(" -> ");
        tern_guest::push_milli(&mut line, ema);
        log::log(log::Level::Debug, &line);
        Ok(alloc::vec![milli(
            &[&s.sensor, ".ema"].concat(),
            ema,
            &cfg.unit
        )])
    }
}

impl Guest for Smoother {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut cfg = Config {
            alpha_milli: 250,
            sensor: "temp-0".to_string(),
            unit: "degC".to_string(),
        };
        for (k, v) in config {
            match k.as_str() {
                "alpha" => {
                    cfg.alpha_milli = parse_milli(&v)
                        .filter(|a| (1..=1000).contains(a))
                        .ok_or_else(|| format!("alpha must be a number in 0.001..=1, got `{v}`"))?;
                }
                "sensor" => cfg.sensor = v,
                "unit" => cfg.unit = v,
                other => return Err(format!("unknown config key `{other}`")),
            }
        }
        CONFIG.with(|c| *c = Some(cfg));
        Ok(())
    }

    fn on_event(event: Event) -> Result<Vec<Output>, String> {
        CONFIG.with(|c| {
            let cfg = c.as_ref().ok_or("on-event before init")?;
            match event {
                Event::Sample(s) => Self::smooth(cfg, &s),
                Event::Tick(_) => match sensors::read(&cfg.sensor) {
                    Ok(s) => Self::smooth(cfg, &s),
                    Err(e) => {
                        log::log(log::Level::Warn, &e);
                        Ok(Vec::new())
                    }
                },
                Event::Frame(_) => {
                    Err("the smoother takes samples and ticks, not frames".to_string())
                }
            }
        })
    }

    fn health_check() -> Result<(), String> {
        CONFIG.with(|c| {
            c.as_ref()
                .map(|_| ())
                .ok_or_else(|| "not initialised".to_string())
        })
    }
}

tern_guest::export!(Smoother);
