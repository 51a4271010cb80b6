//! RuuviTag data format 5 (RAWv2): finding the manufacturer data in a BLE
//! advertisement and decoding it, with no host interface and no allocation but the
//! MAC's text and kv key. Shared by the `ruuvi` example (which reports it as outputs)
//! and the `ruuvi-decoder` component (which exports it as `tern:ruuvi/decode`); the
//! `environment` example, which leaves decoding to `ruuvi-decoder`, takes the MAC's
//! text and kv key and the [`REFERENCE_FRAME`] from here too.
//!
//! With the feature `test-vectors` (a dev-dependency feature of those components),
//! `ruuvi_format::vectors` gives the specification's test vectors to their unit tests.
//!
//! A frame is either the bare manufacturer-specific data (`99 04` = company id 0x0499
//! little-endian, then `05` and 23 bytes of format 5) or a whole advertising payload
//! made of AD structures (`02 01 06 1B FF 99 04 05 ...`), in which case the first
//! manufacturer-specific structure (type `0xFF`) is decoded. A field holding the
//! format's "not available" value (largest unsigned / smallest signed value, all-ones
//! MAC) is `None`. A frame with the wrong company id, another data format or the wrong
//! length is an error.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use core::fmt;

/// Ruuvi Innovations' Bluetooth SIG company identifier.
pub const COMPANY_ID: u16 = 0x0499;

/// Length of a format 5 payload, counting its format byte.
pub const RAWV2_LEN: usize = 24;

/// The format's reference frame: the specification's "valid data" test vector as bare
/// manufacturer data (company id, then the format 5 payload). It decodes to 24.3 °C,
/// 53.49 %, 100,044 Pa, acceleration (4, -4, 1036) mG, 2977 mV, 4 dBm, movement 66,
/// sequence 205 and MAC `cb:b8:33:4c:88:4f`.
pub const REFERENCE_FRAME: [u8; 2 + RAWV2_LEN] = [
    0x99, 0x04, 0x05, 0x12, 0xFC, 0x53, 0x94, 0xC3, 0x7C, 0x00, 0x04, 0xFF, 0xFC, 0x04, 0x0C, 0xAC,
    0x36, 0x42, 0x00, 0xCD, 0xCB, 0xB8, 0x33, 0x4C, 0x88, 0x4F,
];

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a company id and a data format byte.
    TooShort(usize),
    /// The manufacturer data belongs to another company.
    CompanyId(u16),
    /// A Ruuvi data format other than 5.
    UnsupportedFormat(u8),
    /// A format 5 payload (from the format byte on) that is not [`RAWV2_LEN`] bytes long.
    Length(usize),
    /// Well-formed AD structures without any manufacturer-specific data.
    NoManufacturerData,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort(n) => {
                write!(f, "frame too short for manufacturer data: {n} bytes")
            }
            DecodeError::CompanyId(id) => {
                write!(
                    f,
                    "not a Ruuvi frame: company id {id:#06x}, expected {COMPANY_ID:#06x}"
                )
            }
            DecodeError::UnsupportedFormat(v) => {
                write!(f, "unsupported Ruuvi data format {v} (only 5, RAWv2)")
            }
            DecodeError::Length(n) => {
                write!(
                    f,
                    "Ruuvi format 5 payload must be {RAWV2_LEN} bytes, got {n}"
                )
            }
            DecodeError::NoManufacturerData => {
                write!(f, "advertisement has no manufacturer-specific data")
            }
        }
    }
}

/// One decoded format 5 advertisement; `None` where the tag sent "not available".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading {
    /// Temperature in m°C.
    pub temperature_mdeg: Option<i64>,
    /// Relative humidity in milli-percent (rounded half up).
    pub humidity_mpct: Option<i64>,
    /// Pressure in Pa.
    pub pressure_pa: Option<i64>,
    /// Acceleration x, y, z in mG.
    pub accel_mg: [Option<i64>; 3],
    /// Battery voltage in mV.
    pub battery_mv: Option<i64>,
    /// Transmit power in dBm.
    pub tx_dbm: Option<i64>,
    /// Movement counter.
    pub movement: Option<u8>,
    /// Measurement sequence number.
    pub sequence: Option<u16>,
    /// The tag's MAC address.
    pub mac: Option<[u8; 6]>,
}

/// Finds the manufacturer-specific data in `frame`.
///
/// An empty frame, or one that starts with the Ruuvi company id, is the data itself. Otherwise, if
/// the frame is a well-formed run of AD structures (zero padding allowed), the first
/// one of type `0xFF` whose data is Ruuvi's, else the first of type `0xFF`, is
/// returned. Anything else is taken to be manufacturer data of some other company,
/// which [`decode`] then rejects by its company id.
pub fn manufacturer_data(frame: &[u8]) -> Result<&[u8], DecodeError> {
    let ruuvi = COMPANY_ID.to_le_bytes();
    if frame.is_empty() || frame.starts_with(&ruuvi) {
        return Ok(frame);
    }
    let mut first = None;
    let mut rest = frame;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if len == 0 {
            // Early end of significant data: only zero padding may follow.
            if tail.iter().any(|&b| b != 0) {
                return Ok(frame);
            }
            break;
        }
        if len > tail.len() {
            return Ok(frame);
        }
        let (ad, next) = tail.split_at(len);
        if ad[0] == 0xFF {
            let data = &ad[1..];
            if data.starts_with(&ruuvi) {
                return Ok(data);
            }
            first.get_or_insert(data);
        }
        rest = next;
    }
    first.ok_or(DecodeError::NoManufacturerData)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn signed(b: &[u8], at: usize) -> Option<i64> {
    let v = be16(b, at) as i16;
    (v != i16::MIN).then_some(i64::from(v))
}

fn unsigned(b: &[u8], at: usize) -> Option<i64> {
    let v = be16(b, at);
    (v != u16::MAX).then_some(i64::from(v))
}

/// Decodes a format 5 payload: the format byte `05` and the 23 bytes after it.
pub fn decode_rawv2(p: &[u8]) -> Result<Reading, DecodeError> {
    match p.first() {
        None => return Err(DecodeError::Length(0)),
        Some(&5) => {}
        Some(&v) => return Err(DecodeError::UnsupportedFormat(v)),
    }
    if p.len() != RAWV2_LEN {
        return Err(DecodeError::Length(p.len()));
    }
    let power = be16(p, 13);
    let battery = power >> 5;
    let tx = power & 0x1F;
    let mut mac = [0; 6];
    mac.copy_from_slice(&p[18..24]);
    Ok(Reading {
        temperature_mdeg: signed(p, 1).map(|t| t * 5),
        humidity_mpct: unsigned(p, 3).map(|h| (h * 5 + 1) / 2),
        pressure_pa: unsigned(p, 5).map(|pa| pa + 50_000),
        accel_mg: [signed(p, 7), signed(p, 9), signed(p, 11)],
        battery_mv: (battery != 0x7FF).then_some(i64::from(battery) + 1600),
        tx_dbm: (tx != 0x1F).then_some(i64::from(tx) * 2 - 40),
        movement: (p[15] != u8::MAX).then_some(p[15]),
        sequence: Some(be16(p, 16)).filter(|&s| s != u16::MAX),
        mac: Some(mac).filter(|m| m != &[0xFF; 6]),
    })
}

/// Decodes a frame: bare manufacturer data or AD structures, see [`manufacturer_data`].
pub fn decode(frame: &[u8]) -> Result<Reading, DecodeError> {
    let data = manufacturer_data(frame)?;
    if data.len() < 3 {
        return Err(DecodeError::TooShort(data.len()));
    }
    let company = u16::from_le_bytes([data[0], data[1]]);
    if company != COMPANY_ID {
        return Err(DecodeError::CompanyId(company));
    }
    decode_rawv2(&data[2..])
}

/// Formats a MAC address as lowercase colon-separated hex, `cb:b8:33:4c:88:4f`.
pub fn fmt_mac(mac: &[u8]) -> String {
    let mut s = String::with_capacity(17);
    for b in mac {
        if !s.is_empty() {
            s.push(':');
        }
        push_hex(&mut s, *b);
    }
    s
}

fn push_hex(s: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    s.push(char::from(HEX[usize::from(b >> 4)]));
    s.push(char::from(HEX[usize::from(b & 0xF)]));
}

/// A kv key of the tag with `mac`: `prefix`, then the MAC as lowercase hex without
/// separators (`seq/cbb8334c884f`).
// `#[inline]`: each caller's `prefix` is a constant; inlined, `seq_key` costs the
// `ruuvi` wasm no more than when it was written out (a call made it 69 bytes larger).
#[inline]
pub fn mac_key(prefix: &str, mac: &[u8]) -> String {
    let mut key = String::from(prefix);
    for b in mac {
        push_hex(&mut key, *b);
    }
    key
}

/// The kv key holding the last sequence number of the tag with `mac`.
pub fn seq_key(mac: &[u8; 6]) -> String {
    mac_key("seq/", mac)
}

/// Whether `seq` repeats the stored last sequence number `stored` (2 bytes, big-endian).
pub fn is_duplicate(stored: Option<&[u8]>, seq: u16) -> bool {
    stored == Some(&seq.to_be_bytes()[..])
}

#[cfg(any(test, feature = "test-vectors"))]
pub mod vectors {
    //! The specification's test vectors (besides [`REFERENCE_FRAME`](crate::REFERENCE_FRAME))
    //! and frames written in hex, for the unit tests of this crate and of the components
    //! that use it (feature `test-vectors`).

    use alloc::vec::Vec;

    /// The "maximum values" vector's format 5 payload, in hex.
    pub const MAX: &str = "057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F";
    /// The "minimum values" vector's format 5 payload, in hex.
    pub const MIN: &str = "058001000000008001800180010000000000CBB8334C884F";
    /// The "invalid values" vector's format 5 payload (every field "not available"), in hex.
    pub const INVALID: &str = "058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF";
    /// The MAC of the valid, maximum and minimum vectors.
    pub const MAC: [u8; 6] = [0xCB, 0xB8, 0x33, 0x4C, 0x88, 0x4F];
    /// Another company's manufacturer data: an Apple iBeacon, in hex.
    pub const IBEACON: &str = "4C000215FDA50693A4E24FB1AFCFC6EB07647825";

    /// The bytes written in `s`, two hex digits each.
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Ruuvi manufacturer data (company id `99 04`) around the payload written in `payload`.
    pub fn frame(payload: &str) -> Vec<u8> {
        let mut f = crate::COMPANY_ID.to_le_bytes().to_vec();
        f.extend(hex(payload));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::vectors::*;
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    /// `before`, written in hex, then the reference frame.
    fn after(before: &str) -> Vec<u8> {
        [&hex(before)[..], &REFERENCE_FRAME].concat()
    }

    #[test]
    fn official_valid_vector() {
        let r = decode(&REFERENCE_FRAME).unwrap();
        assert_eq!(
            r,
            Reading {
                temperature_mdeg: Some(24_300),
                humidity_mpct: Some(53_490),
                pressure_pa: Some(100_044),
                accel_mg: [Some(4), Some(-4), Some(1036)],
                battery_mv: Some(2977),
                tx_dbm: Some(4),
                movement: Some(66),
                sequence: Some(205),
                mac: Some(MAC),
            }
        );
        assert_eq!(fmt_mac(&MAC), "cb:b8:33:4c:88:4f");
    }

    #[test]
    fn official_max_and_min_vectors() {
        let max = decode(&frame(MAX)).unwrap();
        assert_eq!(max.temperature_mdeg, Some(163_835));
        assert_eq!(max.humidity_mpct, Some(163_835));
        assert_eq!(max.pressure_pa, Some(115_534));
        assert_eq!(max.accel_mg, [Some(32_767); 3]);
        assert_eq!(max.battery_mv, Some(3646));
        assert_eq!(max.tx_dbm, Some(20));
        assert_eq!(max.movement, Some(254));
        assert_eq!(max.sequence, Some(65_534));
        assert_eq!(max.mac, Some(MAC));

        let min = decode(&frame(MIN)).unwrap();
        assert_eq!(min.temperature_mdeg, Some(-163_835));
        assert_eq!(min.humidity_mpct, Some(0));
        assert_eq!(min.pressure_pa, Some(50_000));
        assert_eq!(min.accel_mg, [Some(-32_767); 3]);
        assert_eq!(min.battery_mv, Some(1600));
        assert_eq!(min.tx_dbm, Some(-40));
        assert_eq!(min.movement, Some(0));
        assert_eq!(min.sequence, Some(0));
        assert_eq!(min.mac, Some(MAC));
    }

    #[test]
    fn not_available_sentinels_are_omitted() {
        let r = decode(&frame(INVALID)).unwrap();
        assert_eq!(r, Reading::default());
        // Battery and tx power are independent halves of one field.
        let mut p = REFERENCE_FRAME[2..].to_vec();
        p[13..15].copy_from_slice(&[0xFF, 0xE0]); // battery n/a, tx 0 → -40 dBm
        let r = decode_rawv2(&p).unwrap();
        assert_eq!((r.battery_mv, r.tx_dbm), (None, Some(-40)));
        p[13..15].copy_from_slice(&[0x00, 0x1F]); // battery 1600 mV, tx n/a
        let r = decode_rawv2(&p).unwrap();
        assert_eq!((r.battery_mv, r.tx_dbm), (Some(1600), None));
    }

    #[test]
    fn humidity_rounds_half_up() {
        let mut p = REFERENCE_FRAME[2..].to_vec();
        p[3..5].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(decode_rawv2(&p).unwrap().humidity_mpct, Some(3)); // 2.5 → 3
        p[3..5].copy_from_slice(&40_000u16.to_be_bytes());
        assert_eq!(decode_rawv2(&p).unwrap().humidity_mpct, Some(100_000));
    }

    #[test]
    fn ad_structure_form() {
        let frame = after("0201061BFF");
        assert_eq!(frame.len(), 31);
        assert_eq!(decode(&frame).unwrap().sequence, Some(205));
        // Zero padding after the structures is fine.
        let mut padded = frame.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(decode(&padded).unwrap().sequence, Some(205));
        // Another company's structure before Ruuvi's is skipped.
        let two = after("05FF4C0001021BFF");
        assert_eq!(decode(&two).unwrap().movement, Some(66));
        // Structures without manufacturer data.
        assert_eq!(decode(&hex("020106")), Err(DecodeError::NoManufacturerData));
    }

    #[test]
    fn errors() {
        assert_eq!(decode(&[]), Err(DecodeError::TooShort(0)));
        assert_eq!(decode(&hex("9904")), Err(DecodeError::TooShort(2)));
        // Apple iBeacon, bare and inside AD structures.
        assert_eq!(decode(&hex(IBEACON)), Err(DecodeError::CompanyId(0x004C)));
        assert_eq!(
            decode(&hex(
                "0201061AFF4C000215FDA50693A4E24FB1AFCFC6EB0764782500010002C5"
            )),
            Err(DecodeError::CompanyId(0x004C))
        );
        assert_eq!(
            decode(&hex("990403291A1ECE1EFC18F94202CA0B53")),
            Err(DecodeError::UnsupportedFormat(3))
        );
        assert_eq!(decode(&REFERENCE_FRAME[..25]), Err(DecodeError::Length(23)));
        assert_eq!(
            decode(&[&REFERENCE_FRAME[..], &[0]].concat()),
            Err(DecodeError::Length(25))
        );
        assert_eq!(
            DecodeError::CompanyId(0x004C).to_string(),
            "not a Ruuvi frame: company id 0x004c, expected 0x0499"
        );
    }

    #[test]
    fn keys_and_duplicates() {
        assert_eq!(seq_key(&MAC), "seq/cbb8334c884f");
        assert_eq!(mac_key("env/", &MAC), "env/cbb8334c884f");
        assert_eq!(fmt_mac(&[]), "");
        assert!(!is_duplicate(None, 205));
        assert!(is_duplicate(Some(&[0, 205]), 205));
        assert!(!is_duplicate(Some(&[0, 204]), 205));
        assert!(!is_duplicate(Some(&[205]), 205));
    }
}
