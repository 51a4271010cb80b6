//! RuuviTag BLE advertisement decoder for data format 5 (RAWv2), de-duplicating by sequence number.
//!
//! A `frame` event carries either the bare manufacturer-specific data
//! (`99 04` = company id 0x0499 little-endian, then `05` and 23 bytes of format 5)
//! or a whole advertising payload made of AD structures (`02 01 06 1B FF 99 04 05 ...`),
//! in which case the first manufacturer-specific structure (type `0xFF`) is decoded.
//! The decoding is `ruuvi-format`'s (re-exported here), shared with the
//! `ruuvi-decoder` component of the composition example.
//!
//! Outputs, all fixed-point milli-units of the stated unit:
//!
//! | name | unit | value |
//! |------|------|-------|
//! | `mac` | — | text, `cb:b8:33:4c:88:4f` |
//! | `duplicate` | — | flag: the tag's sequence number equals the last one seen (kv) |
//! | `temperature` | `degC` | raw × 5 m°C (exact) |
//! | `humidity` | `%` | raw × 2.5 milli-%, rounded half up to a whole milli-% |
//! | `pressure` | `Pa` | (raw + 50000) × 1000 milli-Pa (exact) |
//! | `accel-x`, `accel-y`, `accel-z` | `g` | milli-g, that is mG as sent |
//! | `battery` | `V` | millivolts |
//! | `tx-power` | `dBm` | dBm × 1000 |
//! | `movement` | `count` | counter × 1000 |
//! | `sequence` | `count` | sequence number × 1000 |
//!
//! A field holding the format's "not available" value (largest unsigned / smallest
//! signed value, all-ones MAC) is left out; `duplicate` needs both MAC and sequence.
//! A frame with the wrong company id, another data format or the wrong length is an
//! error. Samples and ticks are ignored. No config keys are accepted.
//!
//! The last sequence number of each tag is kept in kv under `seq/<mac as 12 hex digits>`;
//! a failing `kv::set` is logged and reported as a `kv-error` text output.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use tern_guest::{Event, Guest, Output, flag, format, kv, log, milli, text};

pub use ruuvi_format::{
    COMPANY_ID, DecodeError, RAWV2_LEN, Reading, decode, decode_rawv2, fmt_mac, is_duplicate,
    manufacturer_data, seq_key,
};

/// The outputs for `r`, without `duplicate` (see the crate docs for names and units).
pub fn outputs(r: &Reading) -> Vec<Output> {
    let mut out = Vec::new();
    if let Some(mac) = &r.mac {
        out.push(text("mac", &fmt_mac(mac)));
    }
    let mut put = |name: &str, v: Option<i64>, unit: &str| {
        if let Some(v) = v {
            out.push(milli(name, v, unit));
        }
    };
    put("temperature", r.temperature_mdeg, "degC");
    put("humidity", r.humidity_mpct, "%");
    put("pressure", r.pressure_pa.map(|pa| pa * 1000), "Pa");
    put("accel-x", r.accel_mg[0], "g");
    put("accel-y", r.accel_mg[1], "g");
    put("accel-z", r.accel_mg[2], "g");
    put("battery", r.battery_mv, "V");
    put("tx-power", r.tx_dbm.map(|d| d * 1000), "dBm");
    put("movement", r.movement.map(|m| i64::from(m) * 1000), "count");
    put("sequence", r.sequence.map(|s| i64::from(s) * 1000), "count");
    out
}

struct Ruuvi;

impl Ruuvi {
    fn on_frame(frame: &[u8]) -> Result<Vec<Output>, String> {
        let reading = decode(frame).map_err(|e| format!("{e}"))?;
        let mut out = outputs(&reading);
        if let (Some(mac), Some(seq)) = (&reading.mac, reading.sequence) {
            let key = seq_key(mac);
            let dup = is_duplicate(kv::get(&key).as_deref(), seq);
            out.insert(1, flag("duplicate", dup));
            if !dup && let Err(e) = kv::set(&key, &seq.to_be_bytes()) {
                log::log(log::Level::Warn, &format!("kv set {key}: {e}"));
                out.push(text("kv-error", &e));
            }
        }
        Ok(out)
    }
}

impl Guest for Ruuvi {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        match config.first() {
            Some((k, _)) => Err(format!("unknown config key `{k}`")),
            None => Ok(()),
        }
    }

    fn on_event(event: Event) -> Result<Vec<Output>, String> {
        match event {
            Event::Frame(frame) => Self::on_frame(&frame),
            Event::Sample(_) | Event::Tick(_) => Ok(Vec::new()),
        }
    }

    fn health_check() -> Result<(), String> {
        Ok(())
    }
}

tern_guest::export!(Ruuvi);

#[cfg(test)]
mod tests {
    use super::*;
    // The decoding itself is tested in `ruuvi-format`.
    use ruuvi_format::REFERENCE_FRAME;
    use ruuvi_format::vectors::{INVALID, frame};

    #[test]
    fn not_available_fields_are_no_outputs() {
        assert!(outputs(&decode(&frame(INVALID)).unwrap()).is_empty());
    }

    #[test]
    fn outputs_in_milli_units() {
        let out = outputs(&decode(&REFERENCE_FRAME).unwrap());
        let names: Vec<&str> = out.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mac",
                "temperature",
                "humidity",
                "pressure",
                "accel-x",
                "accel-y",
                "accel-z",
                "battery",
                "tx-power",
                "movement",
                "sequence"
            ]
        );
        let get = |n: &str| out.iter().find(|o| o.name == n).unwrap();
        assert!(
            matches!(get("mac").value, tern_guest::Value::Text(ref m) if m == "cb:b8:33:4c:88:4f")
        );
        assert!(matches!(
            get("pressure").value,
            tern_guest::Value::Milli(100_044_000)
        ));
        assert!(matches!(
            get("tx-power").value,
            tern_guest::Value::Milli(4000)
        ));
        assert!(matches!(
            get("battery").value,
            tern_guest::Value::Milli(2977)
        ));
        assert_eq!(get("battery").unit.as_deref(), Some("V"));
    }
}
