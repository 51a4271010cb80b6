//! Signed bundles: the byte format that carries a component over the air, parsed and
//! verified as a stream so a device never holds the whole bundle in RAM.
//!
//! Layout (integers little-endian; see `docs/bundle-format.md`):
//!
//! ```text
//! 0      4   magic "TERN"
//! 4      2   format version (1)
//! 6      2   flags (0; anything else is rejected)
//! 8      4   manifest length M (1..=4096)
//! 12     M   manifest, postcard-encoded `Manifest`
//! 12+M   1   signature count S (0..=8)
//! 13+M   72S S × (key id: 8 bytes, Ed25519 signature: 64 bytes)
//! ...    P   payload: the component's core wasm, P = manifest.payload_len
//! ```
//!
//! Each signature signs `DOMAIN || bytes[0..12+M]`: the fixed header and the
//! manifest, which holds the payload's length and SHA-256.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::grant::Grant;

/// The first four bytes of every bundle.
pub const MAGIC: [u8; 4] = *b"TERN";
/// The only format version this build reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes before the manifest: magic, version, flags, manifest length.
pub const FIXED_HEADER_LEN: usize = 12;
/// Largest manifest accepted.
pub const MAX_MANIFEST_LEN: u32 = 4096;
/// Most signatures a bundle may carry.
pub const MAX_SIGNATURES: usize = 8;
/// Bytes of one signature record: key id and signature.
pub const SIGNATURE_RECORD_LEN: usize = 8 + 64;
/// Largest header: fixed part, largest manifest, count byte, most signatures.
pub const MAX_HEADER_LEN: usize =
    FIXED_HEADER_LEN + MAX_MANIFEST_LEN as usize + 1 + MAX_SIGNATURES * SIGNATURE_RECORD_LEN;
/// Largest payload any board could accept (boards set their own, smaller, slot size).
pub const MAX_PAYLOAD_LEN: u32 = 16 * 1024 * 1024;
/// Domain separation prefix of the signed message.
pub const DOMAIN: &[u8] = b"tern-bundle-v1 signed header\0";
/// Longest component name.
pub const MAX_NAME_LEN: usize = 64;

/// Identifies a public key: the first 8 bytes of its SHA-256.
pub type KeyId = [u8; 8];

/// The key id of an Ed25519 public key.
pub fn key_id(public_key: &[u8; 32]) -> KeyId {
    let digest = Sha256::digest(public_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Which engine a bundle or board names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// The wasmi interpreter.
    Wasmi,
    /// Wasmtime.
    Wasmtime,
}

impl EngineKind {
    /// Every engine.
    pub const ALL: [EngineKind; 2] = [EngineKind::Wasmi, EngineKind::Wasmtime];

    /// The engine's name (`wasmi`, `wasmtime`).
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Wasmi => "wasmi",
            EngineKind::Wasmtime => "wasmtime",
        }
    }

    /// The engine with this [`Self::name`].
    pub fn from_name(name: &str) -> Option<EngineKind> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// Where a bundle may be installed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A board by name.
    Board(String),
    /// Any board running this engine.
    Engine(EngineKind),
}

/// A semantic version (major.minor.patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// Parses `1.2.3`.
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.split('.').map(|p| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u32>().ok())
                .flatten()
        });
        let v = Version {
            major: it.next()??,
            minor: it.next()??,
            patch: it.next()??,
        };
        it.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What a bundle says about its payload; signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Component name (`[a-z0-9-]`, 1..=64 bytes).
    pub name: String,
    /// Component version.
    pub version: Version,
    /// Monotonic anti-rollback counter: a board installs only a higher one.
    pub security_counter: u64,
    /// Boards or engines the bundle is for (at least one).
    pub targets: Vec<Target>,
    /// Capabilities the component requests, with scopes.
    pub capabilities: Grant,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// SHA-256 of the payload.
    pub payload_sha256: [u8; 32],
    /// The WIT package the component was built against (`tern:edge@0.1.0`).
    pub wit: String,
}

/// One signature: which key, and the signature bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureRecord {
    /// Key id of the signing key.
    pub key_id: KeyId,
    /// Ed25519 signature over `DOMAIN || signed header`.
    pub signature: [u8; 64],
}

/// A parsed (not yet trusted) bundle header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The manifest.
    pub manifest: Manifest,
    /// The signatures, in bundle order.
    pub signatures: heapless::Vec<SignatureRecord, MAX_SIGNATURES>,
    /// The signed bytes: fixed header and manifest.
    signed: Vec<u8>,
}

impl Header {
    /// The message every signature signs: `DOMAIN || fixed header || manifest`.
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(&self.signed)
    }

    /// Bytes of the header, signatures included: where the payload starts.
    pub fn len(&self) -> usize {
        self.signed.len() + 1 + self.signatures.len() * SIGNATURE_RECORD_LEN
    }

    /// Always false: a header has at least its fixed part.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// A hasher that checks the payload against this header as it streams in.
    pub fn payload_checker(&self) -> PayloadChecker {
        PayloadChecker {
            expected_len: self.manifest.payload_len,
            expected_sha256: self.manifest.payload_sha256,
            seen: 0,
            sha: Sha256::new(),
        }
    }
}

/// `DOMAIN || signed`.
fn signed_message(signed: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + signed.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(signed);
    m
}

/// Why bundle bytes are not a well-formed bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// The first four bytes are not `TERN`.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u16),
    /// Reserved flags are set.
    ReservedFlags(u16),
    /// The manifest length is 0 or above the limit.
    ManifestLength {
        /// Declared length.
        len: u32,
    },
    /// More signatures than allowed.
    TooManySignatures {
        /// Declared count.
        count: u8,
    },
    /// The manifest does not decode.
    Manifest(&'static str),
    /// The manifest decodes but leaves bytes over.
    ManifestTrailingBytes,
    /// The component name is empty, too long or has characters outside `[a-z0-9-]`.
    InvalidName,
    /// The manifest names no target.
    NoTargets,
    /// The payload is declared larger than any bundle may be.
    PayloadTooLarge {
        /// Declared length.
        len: u32,
    },
    /// The bundle ended early.
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes needed at least.
        need: u64,
    },
    /// Bytes after the declared payload.
    TrailingBytes,
    /// The payload's SHA-256 is not the manifest's.
    PayloadHashMismatch,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::BadMagic => {
                f.write_str("not a Tern bundle (bad magic; expected \"TERN\")")
            }
            BundleError::UnsupportedVersion(v) => write!(
                f,
                "unsupported bundle format version {v}; this build reads version {FORMAT_VERSION}"
            ),
            BundleError::ReservedFlags(x) => write!(f, "reserved header flags set ({x:#06x})"),
            BundleError::ManifestLength { len } => {
                write!(f, "manifest length {len} is outside 1..={MAX_MANIFEST_LEN}")
            }
            BundleError::TooManySignatures { count } => write!(
                f,
                "{count} signatures; at most {MAX_SIGNATURES} are allowed"
            ),
            BundleError::Manifest(e) => write!(f, "manifest does not decode: {e}"),
            BundleError::ManifestTrailingBytes => f.write_str("manifest has trailing bytes"),
            BundleError::InvalidName => write!(
                f,
                "component name must be 1..={MAX_NAME_LEN} characters of a-z, 0-9 and -"
            ),
            BundleError::NoTargets => f.write_str("manifest names no target board or engine"),
            BundleError::PayloadTooLarge { len } => write!(
                f,
                "payload of {len} bytes is larger than the {MAX_PAYLOAD_LEN}-byte maximum"
            ),
            BundleError::Truncated { got, need } => {
                write!(f, "bundle truncated: {got} bytes, at least {need} needed")
            }
            BundleError::TrailingBytes => f.write_str("bytes after the declared payload"),
            BundleError::PayloadHashMismatch => {
                f.write_str("payload SHA-256 does not match the signed manifest")
            }
        }
    }
}

impl core::error::Error for BundleError {}

/// Whether `name` is a valid component name: 1..=[`MAX_NAME_LEN`] bytes of `a-z`,
/// `0-9` and `-` (the rule [`BundleError::InvalidName`] states).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks the manifest's own rules (not the board's).
fn validate(m: &Manifest) -> Result<(), BundleError> {
    if !is_valid_name(&m.name) {
        return Err(BundleError::InvalidName);
    }
    if m.targets.is_empty() {
        return Err(BundleError::NoTargets);
    }
    if m.payload_len > MAX_PAYLOAD_LEN {
        return Err(BundleError::PayloadTooLarge { len: m.payload_len });
    }
    Ok(())
}

/// Collects header bytes from a stream until the header is complete. Buffers at
/// most [`MAX_HEADER_LEN`] bytes, checking every length before it is used.
#[derive(Default)]
pub struct HeaderDecoder {
    buf: Vec<u8>,
    total: u64,
}

impl HeaderDecoder {
    /// A decoder at the start of a bundle.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many header bytes are needed in all, as far as is known yet.
    fn needed(&self) -> Result<usize, BundleError> {
        if self.buf.len() < FIXED_HEADER_LEN {
            return Ok(FIXED_HEADER_LEN);
        }
        let b = &self.buf;
        if b[0..4] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedVersion(version));
        }
        let flags = u16::from_le_bytes([b[6], b[7]]);
        if flags != 0 {
            return Err(BundleError::ReservedFlags(flags));
        }
        let m = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        if m == 0 || m > MAX_MANIFEST_LEN {
            return Err(BundleError::ManifestLength { len: m });
        }
        let count_at = FIXED_HEADER_LEN + m as usize;
        if b.len() <= count_at {
            return Ok(count_at + 1);
        }
        let count = b[count_at];
        if usize::from(count) > MAX_SIGNATURES {
            return Err(BundleError::TooManySignatures { count });
        }
        Ok(count_at + 1 + usize::from(count) * SIGNATURE_RECORD_LEN)
    }

    /// Feeds the next chunk. Returns the header and the rest of `chunk` (the start of
    /// the payload) once the header is complete; `None` while more bytes are needed.
    pub fn feed<'a>(&mut self, chunk: &'a [u8]) -> Result<Option<(Header, &'a [u8])>, BundleError> {
        let mut rest = chunk;
        loop {
            let need = self.needed()?;
            if self.buf.len() == need && need > FIXED_HEADER_LEN + 1 && self.has_signatures(need) {
                let header = self.finish()?;
                return Ok(Some((header, rest)));
            }
            if rest.is_empty() {
                return Ok(None);
            }
            let take = (need - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            self.total += take as u64;
            rest = &rest[take..];
        }
    }

    /// Whether `need` is the full header length (the count byte has been read).
    fn has_signatures(&self, need: usize) -> bool {
        let m = u32::from_le_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        need > FIXED_HEADER_LEN + m as usize
    }

    /// Bytes received so far, for truncation reports.
    pub fn received(&self) -> u64 {
        self.total
    }

    /// Reports truncation at end of stream: the header was not complete.
    pub fn truncated(&self) -> BundleError {
        let need = self.needed().unwrap_or(FIXED_HEADER_LEN) as u64;
        BundleError::Truncated {
            got: self.total,
            need,
        }
    }

    fn finish(&mut self) -> Result<Header, BundleError> {
        let b = core::mem::take(&mut self.buf);
        let m = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        let manifest_bytes = &b[FIXED_HEADER_LEN..FIXED_HEADER_LEN + m];
        let (manifest, left): (Manifest, &[u8]) = postcard::take_from_bytes(manifest_bytes)
            .map_err(|e| BundleError::Manifest(postcard_reason(&e)))?;
        if !left.is_empty() {
            return Err(BundleError::ManifestTrailingBytes);
        }
        validate(&manifest)?;
        let count = usize::from(b[FIXED_HEADER_LEN + m]);
        let mut signatures = heapless::Vec::new();
        let records = &b[FIXED_HEADER_LEN + m + 1..];
        for rec in records.chunks_exact(SIGNATURE_RECORD_LEN).take(count) {
            let mut key_id = [0u8; 8];
            key_id.copy_from_slice(&rec[..8]);
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&rec[8..]);
            // Cannot overflow: `needed` bounded count by MAX_SIGNATURES.
            let _ = signatures.push(SignatureRecord { key_id, signature });
        }
        let mut signed = b;
        signed.truncate(FIXED_HEADER_LEN + m);
        Ok(Header {
            manifest,
            signatures,
            signed,
        })
    }
}

/// A short reason for a postcard decoding error (bundle manifests and protocol messages).
pub(crate) fn postcard_reason(e: &postcard::Error) -> &'static str {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => "unexpected end",
        postcard::Error::DeserializeBadVarint => "bad varint",
        postcard::Error::DeserializeBadBool => "bad bool",
        postcard::Error::DeserializeBadUtf8 => "bad UTF-8",
        postcard::Error::DeserializeBadOption => "bad option tag",
        postcard::Error::DeserializeBadEnum => "bad enum tag",
        postcard::Error::DeserializeBadEncoding => "bad encoding",
        _ => "malformed",
    }
}

/// Hashes the payload as it streams in and checks it against the signed manifest.
pub struct PayloadChecker {
    expected_len: u32,
    expected_sha256: [u8; 32],
    seen: u64,
    sha: Sha256,
}

impl PayloadChecker {
    /// Feeds payload bytes; fails as soon as more than the declared length arrives.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), BundleError> {
        self.seen += chunk.len() as u64;
        if self.seen > u64::from(self.expected_len) {
            return Err(BundleError::TrailingBytes);
        }
        self.sha.update(chunk);
        Ok(())
    }

    /// Bytes seen so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Checks the length and hash at the end of the stream.
    pub fn finish(self) -> Result<(), BundleError> {
        if self.seen < u64::from(self.expected_len) {
            return Err(BundleError::Truncated {
                got: self.seen,
                need: u64::from(self.expected_len),
            });
        }
        let digest: [u8; 32] = self.sha.finalize().into();
        if digest != self.expected_sha256 {
            return Err(BundleError::PayloadHashMismatch);
        }
        Ok(())
    }
}

/// Parses a whole bundle held in memory: the header, and the payload checked against
/// the manifest. Signatures are *not* checked here; see [`crate::policy`].
pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), BundleError> {
    let mut dec = HeaderDecoder::new();
    let (header, payload) = dec.feed(bytes)?.ok_or_else(|| dec.truncated())?;
    let mut check = header.payload_checker();
    check.update(payload)?;
    check.finish()?;
    Ok((header, payload))
}

/// Builds bundle bytes from a manifest, signatures made by `sign`, and the payload.
///
/// `sign` receives the message to sign and returns `(key id, signature)` records.
pub fn encode(
    manifest: &Manifest,
    payload: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<SignatureRecord>,
) -> Result<Vec<u8>, BundleError> {
    validate(manifest)?;
    let manifest_bytes =
        postcard::to_allocvec(manifest).map_err(|_| BundleError::Manifest("does not encode"))?;
    let m = u32::try_from(manifest_bytes.len())
        .ok()
        .filter(|m| *m <= MAX_MANIFEST_LEN)
        .ok_or(BundleError::ManifestLength {
            len: manifest_bytes.len() as u32,
        })?;
    let mut out = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&m.to_le_bytes());
    out.extend_from_slice(&manifest_bytes);
    let records = sign(&signed_message(&out));
    if records.len() > MAX_SIGNATURES {
        return Err(BundleError::TooManySignatures {
            count: records.len().min(255) as u8,
        });
    }
    out.push(records.len() as u8);
    for r in &records {
        out.extend_from_slice(&r.key_id);
        out.extend_from_slice(&r.signature);
    }
    out.extend_from_slice(payload);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn manifest(payload: &[u8]) -> Manifest {
        Manifest {
            name: "demo-1".into(),
            version: Version {
                major: 1,
                minor: 2,
                patch: 3,
            },
            security_counter: 7,
            targets: vec![Target::Engine(EngineKind::Wasmi)],
            capabilities: Grant::parse(["log", "gpio=4"]).unwrap(),
            payload_len: payload.len() as u32,
            payload_sha256: sha256(payload),
            wit: crate::wit::WIT_PACKAGE.into(),
        }
    }

    fn record(byte: u8) -> SignatureRecord {
        SignatureRecord {
            key_id: [byte; 8],
            signature: [byte; 64],
        }
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(
            Version::parse("1.20.3"),
            Some(Version {
                major: 1,
                minor: 20,
                patch: 3
            })
        );
        for bad in ["1.2", "1.2.3.4", "1..3", "a.b.c", "-1.0.0", "1.0.0-rc1", ""] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn encode_then_parse_round_trips_and_signs_the_header() {
        let payload = b"\0asm payload";
        let mut signed = Vec::new();
        let bytes = encode(&manifest(payload), payload, |msg| {
            signed = msg.to_vec();
            vec![record(1), record(2)]
        })
        .unwrap();
        let (header, body) = parse(&bytes).unwrap();
        assert_eq!(body, payload);
        assert_eq!(header.manifest, manifest(payload));
        assert_eq!(header.signatures.as_slice(), &[record(1), record(2)]);
        assert_eq!(header.signed_message(), signed);
        assert!(signed.starts_with(DOMAIN));
        assert_eq!(header.len(), bytes.len() - payload.len());
    }

    #[test]
    fn manifests_that_break_their_own_rules_do_not_encode() {
        let p = b"x";
        let mut m = manifest(p);
        m.name = "Bad Name".into();
        assert_eq!(encode(&m, p, |_| vec![]), Err(BundleError::InvalidName));
        let mut m = manifest(p);
        m.targets.clear();
        assert_eq!(encode(&m, p, |_| vec![]), Err(BundleError::NoTargets));
        let m = manifest(p);
        assert_eq!(
            encode(&m, p, |_| vec![record(0); MAX_SIGNATURES + 1]),
            Err(BundleError::TooManySignatures { count: 9 })
        );
    }

    #[test]
    fn lengths_are_checked_before_they_are_used() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(MAX_MANIFEST_LEN + 1).to_le_bytes());
        assert_eq!(
            HeaderDecoder::new().feed(&b).err(),
            Some(BundleError::ManifestLength {
                len: MAX_MANIFEST_LEN + 1
            })
        );
        b[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            HeaderDecoder::new().feed(&b).err(),
            Some(BundleError::ManifestLength { len: 0 })
        );
    }
}
