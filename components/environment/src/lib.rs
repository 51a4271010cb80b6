//! Example of composition: room conditions from RuuviTag advertisements, decoded by
//! another component. World `tern:ruuvi/environment`: `tern:edge/component` plus an
//! import of `tern:ruuvi/decode`, which `tern_host::compose` satisfies with the
//! `ruuvi-decoder` component (or, in the tests, `decoder-mock`). The composition is
//! a `tern:edge` component like any other; this module's bytes are the same
//! whichever decoder it is composed with.
//!
//! Config (optional): `too-warm`, a temperature in °C (`"24.5"`); with it, each
//! reading with a temperature reports the flag `too-warm`.
//!
//! For each `frame` event, the decoder's reading becomes, in this order (each only
//! when the tag sent the value):
//!
//! | name | unit | value |
//! |------|------|-------|
//! | `tag` | — | text, the MAC `cb:b8:33:4c:88:4f` |
//! | `temperature` | `degC` | m°C |
//! | `humidity` | `%` | milli-% |
//! | `pressure` | `Pa` | milli-Pa |
//! | `too-warm` | — | flag: temperature above the configured limit |
//! | `readings` | `count` | readings of this tag so far (kv) × 1000 |
//! | `temperature-max` | `degC` | highest temperature of this tag so far (kv) |
//!
//! and one `info` log line (`cb:b8:33:4c:88:4f 24.300 degC 53.490 % 100044 Pa`).
//! A frame the decoder refuses is logged (`warn`) and answered with the decoder's
//! error. Samples and ticks are ignored. `health-check` decodes the format's
//! reference frame (`ruuvi_format::REFERENCE_FRAME`): a decoder that cannot is a
//! failed trial. The MAC's text and kv key are `ruuvi-format`'s, as in the `ruuvi`
//! example; the decoding is the decoder's.
//!
//! Per tag, kv holds `env/<mac as 12 hex digits>` (`env/unknown` without a MAC):
//! 4 bytes of count and 8 of maximum temperature (`i64::MIN`: none yet), big-endian.
//! A failing `kv::set` is logged and reported as a `kv-error` text output.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use ruuvi_format::{REFERENCE_FRAME, fmt_mac, mac_key};
use tern_guest::{Event, Output, State, flag, format, kv, log, milli, push_milli, push_u64, text};

/// Bindings generated from `runtime/wit/ruuvi` for the `tern:ruuvi/environment` world:
/// what this module is built against (its `component-type` section, which composition
/// reads). The `tern:edge` interfaces and types are the SDK's own, and so are the
/// exports: `tern_guest::export!` below gives the world's three functions (the same
/// as `tern:edge/component`'s) from outside this crate, whose components forbid the
/// `unsafe` glue. Only the `decode` import is new here.
#[allow(missing_docs, dead_code)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../runtime/wit", "../../runtime/wit/ruuvi"],
        world: "tern:ruuvi/environment",
        with: {
            "tern:edge/types@0.1.0": tern_guest::bindings::tern::edge::types,
            "tern:edge/log@0.1.0": tern_guest::log,
            "tern:edge/clock@0.1.0": tern_guest::clock,
            "tern:edge/sensors@0.1.0": tern_guest::sensors,
            "tern:edge/gpio@0.1.0": tern_guest::gpio,
            "tern:edge/kv@0.1.0": tern_guest::kv,
            "tern:edge/publish@0.1.0": tern_guest::publish,
        },
        std_feature,
    });
}

use bindings::tern::ruuvi::decode::{Reading, decode};

/// What one tag's statistics are in kv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Readings so far.
    pub count: u32,
    /// Highest temperature so far, m°C.
    pub max_milli: Option<i64>,
}

impl Stats {
    /// Reads the kv value; anything not 12 bytes long is no statistics yet.
    pub fn from_bytes(b: Option<&[u8]>) -> Stats {
        match b {
            Some(b) if b.len() == 12 => {
                let mut count = [0; 4];
                let mut max = [0; 8];
                count.copy_from_slice(&b[..4]);
                max.copy_from_slice(&b[4..]);
                let max = i64::from_be_bytes(max);
                Stats {
                    count: u32::from_be_bytes(count),
                    max_milli: (max != i64::MIN).then_some(max),
                }
            }
            _ => Stats {
                count: 0,
                max_milli: None,
            },
        }
    }

    /// The kv value.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..4].copy_from_slice(&self.count.to_be_bytes());
        out[4..].copy_from_slice(&self.max_milli.unwrap_or(i64::MIN).to_be_bytes());
        out
    }

    /// These statistics after one more reading of `temperature`.
    pub fn with_reading(self, temperature: Option<i64>) -> Stats {
        Stats {
            count: self.count.saturating_add(1),
            max_milli: match (self.max_milli, temperature) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// The kv key of the tag with `mac`.
pub fn stats_key(mac: Option<&[u8]>) -> String {
    match mac {
        Some(mac) => mac_key("env/", mac),
        None => String::from("env/unknown"),
    }
}

/// The outputs of a reading, before the kv statistics (see the crate docs).
pub fn reading_outputs(r: &Reading, too_warm: Option<i64>) -> Vec<Output> {
    let mut out = Vec::new();
    if let Some(mac) = &r.mac {
        out.push(text("tag", &fmt_mac(mac)));
    }
    if let Some(t) = r.temperature_milli {
        out.push(milli("temperature", t, "degC"));
    }
    if let Some(h) = r.humidity_milli {
        out.push(milli("humidity", h, "%"));
    }
    if let Some(p) = r.pressure_pa {
        out.push(milli("pressure", i64::from(p) * 1000, "Pa"));
    }
    if let (Some(limit), Some(t)) = (too_warm, r.temperature_milli) {
        out.push(flag("too-warm", t > limit));
    }
    out
}

/// The log line of a reading.
pub fn log_line(r: &Reading) -> String {
    let mut line = match &r.mac {
        Some(mac) => fmt_mac(mac),
        None => String::from("unknown tag"),
    };
    if let Some(t) = r.temperature_milli {
        line.push(' ');
        push_milli(&mut line, t);
        line.push_str(" degC");
    }
    if let Some(h) = r.humidity_milli {
        line.push(' ');
        push_milli(&mut line, h);
        line.push_str(" %");
    }
    if let Some(p) = r.pressure_pa {
        line.push(' ');
        push_u64(&mut line, u64::from(p));
        line.push_str(" Pa");
    }
    line
}

/// The configured `too-warm` limit, m°C.
static TOO_WARM: State<Option<i64>> = State::new(None);

struct Environment;

impl Environment {
    fn on_frame(frame: &[u8]) -> Result<Vec<Output>, String> {
        let r = match decode(frame) {
            Ok(r) => r,
            Err(e) => {
                log::log(log::Level::Warn, &format!("decode: {e}"));
                return Err(e);
            }
        };
        log::log(log::Level::Info, &log_line(&r));
        let mut out = reading_outputs(&r, TOO_WARM.with(|t| *t));
        let key = stats_key(r.mac.as_deref());
        let stats = Stats::from_bytes(kv::get(&key).as_deref()).with_reading(r.temperature_milli);
        out.push(milli("readings", i64::from(stats.count) * 1000, "count"));
        if let Some(max) = stats.max_milli {
            out.push(milli("temperature-max", max, "degC"));
        }
        if let Err(e) = kv::set(&key, &stats.to_bytes()) {
            log::log(log::Level::Warn, &format!("kv set {key}: {e}"));
            out.push(text("kv-error", &e));
        }
        Ok(out)
    }
}

impl tern_guest::Guest for Environment {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut too_warm = None;
        for (k, v) in &config {
            match k.as_str() {
                "too-warm" => {
                    too_warm = Some(
                        tern_guest::parse_milli(v)
                            .ok_or_else(|| format!("too-warm: `{v}` is not a temperature"))?,
                    );
                }
                _ => return Err(format!("unknown config key `{k}`")),
            }
        }
        TOO_WARM.with(|t| *t = too_warm);
        Ok(())
    }

    fn on_event(event: Event) -> Result<Vec<Output>, String> {
        match event {
            Event::Frame(frame) => Self::on_frame(&frame),
            Event::Sample(_) | Event::Tick(_) => Ok(Vec::new()),
        }
    }

    fn health_check() -> Result<(), String> {
        decode(&REFERENCE_FRAME)
            .map(|_| ())
            .map_err(|e| format!("the decoder refuses the reference frame: {e}"))
    }
}

tern_guest::export!(Environment);

#[cfg(test)]
mod tests {
    use super::*;
    use ruuvi_format::vectors::MAC;

    #[test]
    fn stats_round_trip() {
        let none = Stats::from_bytes(None);
        assert_eq!(
            none,
            Stats {
                count: 0,
                max_milli: None
            }
        );
        let one = none.with_reading(Some(24_300));
        assert_eq!(Stats::from_bytes(Some(&one.to_bytes())), one);
        let two = one.with_reading(Some(-1_000)).with_reading(None);
        assert_eq!(
            two,
            Stats {
                count: 3,
                max_milli: Some(24_300)
            }
        );
        let no_temp = none.with_reading(None);
        assert_eq!(Stats::from_bytes(Some(&no_temp.to_bytes())), no_temp);
        assert_eq!(Stats::from_bytes(Some(&[1, 2, 3])), none);
    }

    #[test]
    fn names_and_keys() {
        assert_eq!(fmt_mac(&MAC), "cb:b8:33:4c:88:4f");
        assert_eq!(stats_key(Some(&MAC)), "env/cbb8334c884f");
        assert_eq!(stats_key(None), "env/unknown");
    }

    #[test]
    fn outputs_and_log_line() {
        let r = Reading {
            temperature_milli: Some(24_300),
            humidity_milli: Some(53_490),
            pressure_pa: Some(100_044),
            accel_milli_g: (None, None, None),
            battery_mv: None,
            tx_power_dbm: None,
            movement: None,
            sequence: None,
            mac: Some(MAC.to_vec()),
        };
        let names: Vec<String> = reading_outputs(&r, Some(24_000))
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(
            names,
            ["tag", "temperature", "humidity", "pressure", "too-warm"]
        );
        assert_eq!(
            log_line(&r),
            "cb:b8:33:4c:88:4f 24.300 degC 53.490 % 100044 Pa"
        );
    }
}
