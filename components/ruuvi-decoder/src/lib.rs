//! The RuuviTag decoder as a component of its own, world `tern:ruuvi/decoder`: it
//! exports `tern:ruuvi/decode@0.1.0` and imports nothing, so it holds no capability.
//! The decoding is `ruuvi-format`'s, the same the `ruuvi` example runs; this crate
//! only moves its [`ruuvi_format::Reading`] into the WIT record.
//!
//! Not a `tern:edge` component on its own: an app that imports `tern:ruuvi/decode`
//! (the `environment` example) is composed with it by `tern_host::compose`, and the
//! two then run in one process, each in its own linear memory.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

pub use tern_ruuvi_guest::Reading;

/// `r` as the WIT record. Every field fits its WIT type: the format's ranges are
/// far inside them (pressure at most 115,535 Pa, accelerations ±32,767 mG, battery at
/// most 3,646 mV, tx power -40..=22 dBm).
pub fn reading(r: &ruuvi_format::Reading) -> Reading {
    let narrow = |v: Option<i64>| v.and_then(|v| i32::try_from(v).ok());
    let unsigned = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    Reading {
        temperature_milli: r.temperature_mdeg,
        humidity_milli: r.humidity_mpct,
        pressure_pa: unsigned(r.pressure_pa),
        accel_milli_g: (
            narrow(r.accel_mg[0]),
            narrow(r.accel_mg[1]),
            narrow(r.accel_mg[2]),
        ),
        battery_mv: unsigned(r.battery_mv),
        tx_power_dbm: narrow(r.tx_dbm),
        movement: r.movement,
        sequence: r.sequence,
        mac: r.mac.map(|m| m.to_vec()),
    }
}

/// Decodes `frame` ([`ruuvi_format::decode`]); the error is its message.
pub fn decode(frame: &[u8]) -> Result<Reading, String> {
    ruuvi_format::decode(frame)
        .map(|r| reading(&r))
        .map_err(|e| e.to_string())
}

struct Decoder;

impl tern_ruuvi_guest::Guest for Decoder {
    fn decode(frame: Vec<u8>) -> Result<Reading, String> {
        decode(&frame)
    }
}

tern_ruuvi_guest::export!(Decoder);

#[cfg(test)]
mod tests {
    use super::*;
    use ruuvi_format::REFERENCE_FRAME;
    use ruuvi_format::vectors::{IBEACON, MAC, hex};

    #[test]
    fn the_official_vector_as_the_wit_record() {
        let r = decode(&REFERENCE_FRAME).unwrap();
        assert_eq!(r.temperature_milli, Some(24_300));
        assert_eq!(r.humidity_milli, Some(53_490));
        assert_eq!(r.pressure_pa, Some(100_044));
        assert_eq!(r.accel_milli_g, (Some(4), Some(-4), Some(1036)));
        assert_eq!(r.battery_mv, Some(2977));
        assert_eq!(r.tx_power_dbm, Some(4));
        assert_eq!(r.movement, Some(66));
        assert_eq!(r.sequence, Some(205));
        assert_eq!(r.mac.as_deref(), Some(&MAC[..]));
    }

    #[test]
    fn errors_are_the_format_messages() {
        assert_eq!(
            decode(&hex(IBEACON)).unwrap_err(),
            "not a Ruuvi frame: company id 0x004c, expected 0x0499"
        );
    }
}
