//! Threshold alarm with hysteresis: raises a GPIO pin and publishes an alert when a sensor runs hot.
//!
//! Config (all optional): `sensor` (default `temp-0`), `high` (raise threshold,
//! decimal, default `30.0`), `low` (clear threshold, default `high` − 2.0, must be
//! below `high`), `pin` (GPIO pin driven high while alarmed, default `4`), `topic`
//! (default `alerts/<sensor>`), `unit` (unit of the reported value, default `degC`).
//!
//! A `sample` of the configured sensor at or above `high` raises the alarm: the pin
//! goes high, `ALARM <sensor> <value>` is published and a warning logged. While
//! alarmed, a sample at or below `low` clears it: the pin goes low and
//! `CLEAR <sensor> <value>` is published. Each such sample reports `alarm` (flag) and
//! `value`. A `tick` reports `alarm` and `active` (seconds the alarm has been raised,
//! by the host clock; 0 when clear). Samples of other sensors are ignored; frames are
//! an error.
//!
//! A failing `gpio::set` or `publish` never aborts the call: it is logged and reported
//! as a `gpio-error` / `publish-error` text output, and the pin is driven again on the
//! next event until it succeeds. The state lives in memory, so after a restart the
//! first sample drives the pin to the state that sample implies.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use tern_guest::{
    Event, Guest, Output, Sample, State, clock, flag, fmt_milli, format, gpio, log, milli,
    parse_milli, publish, text,
};

struct Config {
    sensor: String,
    high: i64,
    low: i64,
    pin: u32,
    topic: String,
    unit: String,
}

/// What the alarm remembers between events.
struct Alarm {
    /// Whether the alarm is raised.
    raised: bool,
    /// Host time (ms) at which it was raised.
    since_ms: u64,
    /// Whether the pin is known to reflect `raised`.
    pin_synced: bool,
}

struct Component {
    cfg: Config,
    alarm: Alarm,
}

static STATE: State<Option<Component>> = State::new(None);

impl Component {
    /// Drives the pin to the alarm state if it may not be there yet, reporting a failure.
    fn sync_pin(&mut self, out: &mut Vec<Output>) {
        if self.alarm.pin_synced {
            return;
        }
        match gpio::set(self.cfg.pin, self.alarm.raised) {
            Ok(()) => self.alarm.pin_synced = true,
            Err(e) => {
                log::log(
                    log::Level::Error,
                    &format!("gpio {} <- {}: {e}", self.cfg.pin, self.alarm.raised),
                );
                out.push(text("gpio-error", &e));
            }
        }
    }

    fn on_sample(&mut self, s: &Sample) -> Vec<Output> {
        let mut out = Vec::new();
        let verb = if !self.alarm.raised && s.milli >= self.cfg.high {
            self.alarm.raised = true;
            self.alarm.since_ms = s.at_ms;
            Some("ALARM")
        } else if self.alarm.raised && s.milli <= self.cfg.low {
            self.alarm.raised = false;
            Some("CLEAR")
        } else {
            None
        };
        if verb.is_some() {
            self.alarm.pin_synced = false;
        }
        self.sync_pin(&mut out);
        if let Some(verb) = verb {
            let msg = format!("{verb} {} {}", s.sensor, fmt_milli(s.milli));
            let level = if self.alarm.raised {
                log::Level::Warn
            } else {
                log::Level::Info
            };
            log::log(level, &msg);
            if let Err(e) = publish::publish(&self.cfg.topic, msg.as_bytes()) {
                log::log(
                    log::Level::Error,
                    &format!("publish to {}: {e}", self.cfg.topic),
                );
                out.push(text("publish-error", &e));
            }
        }
        out.insert(0, flag("alarm", self.alarm.raised));
        out.insert(1, milli("value", s.milli, &self.cfg.unit));
        out
    }

    fn on_tick(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.sync_pin(&mut out);
        let active_ms = if self.alarm.raised {
            clock::now_ms().saturating_sub(self.alarm.since_ms)
        } else {
            0
        };
        out.insert(0, flag("alarm", self.alarm.raised));
        out.insert(
            1,
            milli("active", i64::try_from(active_ms).unwrap_or(i64::MAX), "s"),
        );
        out
    }
}

fn threshold(key: &str, v: &str) -> Result<i64, String> {
    parse_milli(v).ok_or_else(|| format!("{key} must be a decimal number, got `{v}`"))
}

struct AlarmComponent;

impl Guest for AlarmComponent {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut sensor = "temp-0".to_string();
        let mut high = 30_000;
        let mut low = None;
        let mut pin = 4;
        let mut topic = None;
        let mut unit = "degC".to_string();
        for (k, v) in config {
            match k.as_str() {
                "sensor" => sensor = v,
                "high" => high = threshold("high", &v)?,
                "low" => low = Some(threshold("low", &v)?),
                "pin" => {
                    pin = v
                        .parse()
                        .map_err(|_| format!("pin must be a pin number, got `{v}`"))?;
                }
                "topic" => topic = Some(v),
                "unit" => unit = v,
                other => return Err(format!("unknown config key `{other}`")),
            }
        }
        let low = low.unwrap_or(high.saturating_sub(2_000));
        if low >= high {
            return Err(format!(
                "low ({}) must be below high ({})",
                fmt_milli(low),
                fmt_milli(high)
            ));
        }
        let topic = topic.unwrap_or_else(|| format!("alerts/{sensor}"));
        let cfg = Config {
            sensor,
            high,
            low,
            pin,
            topic,
            unit,
        };
        let alarm = Alarm {
            raised: false,
            since_ms: 0,
            pin_synced: false,
        };
        STATE.with(|s| *s = Some(Component { cfg, alarm }));
        Ok(())
    }

    fn on_event(event: Event) -> Result<Vec<Output>, String> {
        STATE.with(|s| {
            let c = s.as_mut().ok_or("on-event before init")?;
            match event {
                Event::Sample(s) if s.sensor == c.cfg.sensor => Ok(c.on_sample(&s)),
                Event::Sample(_) => Ok(Vec::new()),
                Event::Tick(_) => Ok(c.on_tick()),
                Event::Frame(_) => Err("the alarm takes samples and ticks, not frames".to_string()),
            }
        })
    }

    fn health_check() -> Result<(), String> {
        let pin = STATE
            .with(|s| s.as_ref().map(|c| c.cfg.pin))
            .ok_or("not initialised")?;
        gpio::get(pin)
            .map(|_| ())
            .map_err(|e| format!("gpio pin {pin}: {e}"))
    }
}

tern_guest::export!(AlarmComponent);
