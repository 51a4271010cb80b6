//! Building and checking bundles on a host: what `tern sign`, `tern verify`,
//! `tern inspect` and `tern run` share.

use std::io::Read;

use tern_core::board::BoardTable;
use tern_core::bundle::{self, Header, Manifest, Target, Version};
use tern_core::grant::Scope;
use tern_core::policy::{Rejection, check_install};
use tern_core::{Grant, Interface};

use crate::keys::KeyFile;

/// The `tern:edge` interfaces a core module imports, in WIT order.
pub fn imported_interfaces(wasm: &[u8]) -> Result<Vec<Interface>, String> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| format!("not a wasm module: {e}"))?;
        if let wasmparser::Payload::ImportSection(reader) = payload {
            for import in reader.into_imports() {
                let import = import.map_err(|e| format!("not a wasm module: {e}"))?;
                let iface =
                    tern_core::abi::check_import(import.module, import.name, &Grant::development())
                        .map_err(|e| e.to_string())?;
                if !out.contains(&iface) {
                    out.push(iface);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The capabilities requested when neither flags nor component.toml give scopes:
/// every imported interface, unscoped, kv with a 4 KiB quota.
pub fn default_capabilities(imports: &[Interface]) -> Grant {
    let mut g = Grant::default();
    for i in imports {
        match i {
            Interface::Log => g.log = true,
            Interface::Clock => g.clock = true,
            Interface::Sensors => g.sensors = Some(Scope::Any),
            Interface::Gpio => g.gpio = Some(Scope::Any),
            Interface::Kv => g.kv = Some(4096),
            Interface::Publish => g.publish = Some(String::new()),
        }
    }
    g
}

/// Builds a signed bundle. Fails if the component imports an interface the
/// capabilities do not request (it could never load) or if no key is given.
pub fn build(
    wasm: &[u8],
    name: &str,
    version: Version,
    security_counter: u64,
    targets: Vec<Target>,
    capabilities: Grant,
    keys: &[KeyFile],
) -> Result<Vec<u8>, String> {
    if keys.is_empty() {
        return Err("no signing key: pass --key".into());
    }
    if targets.is_empty() {
        return Err("no target: pass --board and/or --engine".into());
    }
    for i in imported_interfaces(wasm)? {
        if !capabilities.allows_interface(i) {
            return Err(format!(
                "the component imports `{i}` but the requested capabilities do not include `{}`; add it to component.toml or --grant",
                i.name()
            ));
        }
    }
    let payload_len = u32::try_from(wasm.len()).map_err(|_| "component larger than 4 GiB")?;
    let manifest = Manifest {
        name: name.to_string(),
        version,
        security_counter,
        targets,
        capabilities,
        payload_len,
        payload_sha256: bundle::sha256(wasm),
        wit: tern_core::wit::WIT_PACKAGE.to_string(),
    };
    bundle::encode(&manifest, wasm, |msg| {
        keys.iter().map(|k| k.sign(msg)).collect()
    })
    .map_err(|e| e.to_string())
}

/// Why a bundle on disk was refused.
#[derive(Debug)]
pub enum Refusal {
    /// It could not be read.
    Io(String),
    /// It is not a well-formed bundle.
    Format(bundle::BundleError),
    /// The board's policy refused it.
    Policy(Rejection),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Io(e) => f.write_str(e),
            Refusal::Format(e) => write!(f, "malformed bundle: {e}"),
            Refusal::Policy(e) => write!(f, "rejected: {e}"),
        }
    }
}

/// Verifies a bundle as a device does: header first (and the install policy on it)
/// before any payload byte is used, then the payload hashed in 4 KiB chunks. Returns
/// the header, the grant and the payload.
pub fn verify_stream(
    mut reader: impl Read,
    board: &BoardTable,
    installed_counter: Option<u64>,
) -> Result<(Header, Grant, Vec<u8>), Refusal> {
    let mut decoder = bundle::HeaderDecoder::new();
    let mut buf = [0u8; 4096];
    let (header, first) = loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Refusal::Io(e.to_string()))?;
        if n == 0 {
            return Err(Refusal::Format(decoder.truncated()));
        }
        if let Some((h, rest)) = decoder.feed(&buf[..n]).map_err(Refusal::Format)? {
            break (h, rest.to_vec());
        }
    };
    let grant = check_install(&header, board, installed_counter).map_err(Refusal::Policy)?;
    let mut checker = header.payload_checker();
    let mut payload = Vec::with_capacity(header.manifest.payload_len as usize);
    checker.update(&first).map_err(Refusal::Format)?;
    payload.extend_from_slice(&first);
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Refusal::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        checker.update(&buf[..n]).map_err(Refusal::Format)?;
        payload.extend_from_slice(&buf[..n]);
    }
    checker.finish().map_err(Refusal::Format)?;
    Ok((header, grant, payload))
}

/// Whether bytes look like a bundle (rather than bare wasm).
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(&bundle::MAGIC)
}
