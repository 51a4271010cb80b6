//! Building and checking bundles on a host: what `tern sign`, `tern verify`,
//! `tern inspect` and `tern run` share. Every decision about a bundle is here (which
//! name and capabilities it gets, which board would refuse it and what to do about
//! it, whether each board's engine can run its payload, which signatures verify); the
//! commands only print.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use tern_core::board::{BoardTable, Offer, StaticScope, TrustKey};
use tern_core::bundle::{self, BundleError, EngineKind, Header, KeyId, Manifest, Target, Version};
use tern_core::features::ValidationError;
use tern_core::grant::Scope;
use tern_core::policy::{Rejection, check_install, grant_within};
use tern_core::{Grant, Granted, Interface};

use crate::keys::KeyFile;

/// What a payload is: what `tern sign` was given, and what a bundle carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// A component's core module (built with wit-bindgen against `tern:edge`): runs
    /// on every board, componentized against the runtime's world on Wasmtime.
    Module,
    /// A component (`wasm-tools component new`, cargo-component, ...): Wasmtime
    /// boards run it as it is; for wasmi boards `tern sign` makes a device image of it.
    Component,
    /// A device image (`tern_core::image`): a component taken apart for wasmi boards.
    DeviceImage,
}

impl PayloadKind {
    /// The kind of `bytes`, by their first bytes: the device-image magic, a
    /// component's or else (a core module's, or bytes no engine will load) a module.
    pub fn of(bytes: &[u8]) -> PayloadKind {
        if tern_core::image::is_image(bytes) {
            PayloadKind::DeviceImage
        } else if wasmparser::Parser::is_component(bytes) {
            PayloadKind::Component
        } else {
            PayloadKind::Module
        }
    }

    /// `core module`, `component` or `device image`.
    pub const fn name(self) -> &'static str {
        match self {
            PayloadKind::Module => "core module",
            PayloadKind::Component => "component",
            PayloadKind::DeviceImage => "device image",
        }
    }
}

/// The `tern:edge` interfaces a payload imports, in WIT order: a core module's and
/// a device image's by their imported functions' modules, a component's by its
/// instance imports ([`tern_wasmtime::component::check_imports`]). An import outside
/// `tern:edge` is an error naming it.
pub fn imported_interfaces(wasm: &[u8]) -> Result<Vec<Interface>, String> {
    let dev = Grant::development();
    let mut out = Vec::new();
    match PayloadKind::of(wasm) {
        PayloadKind::Module => {
            for payload in wasmparser::Parser::new(0).parse_all(wasm) {
                let payload = payload.map_err(|e| format!("not a wasm module: {e}"))?;
                if let wasmparser::Payload::ImportSection(reader) = payload {
                    for import in reader.into_imports() {
                        let import = import.map_err(|e| format!("not a wasm module: {e}"))?;
                        let iface = tern_core::abi::check_import(import.module, import.name, &dev)
                            .map_err(|e| e.to_string())?;
                        if !out.contains(&iface) {
                            out.push(iface);
                        }
                    }
                }
            }
        }
        PayloadKind::Component => {
            // Read under every feature a component may use on some engine: what an
            // engine cannot run is refused when the payload is made and checked.
            out = tern_wasmtime::component::check_imports(
                wasm,
                tern_wit::features::component(),
                &dev,
            )
            .map_err(|e| e.to_string())?;
        }
        PayloadKind::DeviceImage => {
            let image = tern_core::image::decode(wasm).map_err(|e| e.to_string())?;
            for step in &image.steps {
                if let tern_core::image::Step::Func(tern_core::image::Func::Import(f)) = step {
                    let iface = tern_core::abi::check_import(&f.interface, &f.name, &dev)
                        .map_err(|e| e.to_string())?;
                    if !out.contains(&iface) {
                        out.push(iface);
                    }
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A component made a device image for wasmi ([`tern_wit::device_image`]), encoded
/// as a bundle carries it ([`tern_core::image::encode`]). What wasmi cannot run
/// (async, resources, a feature wasmi lacks, ...) is refused, naming the item.
pub fn device_image(component: &[u8]) -> Result<Vec<u8>, tern_wit::ImageBuildError> {
    Ok(tern_core::image::encode(&tern_wit::device_image(
        component,
    )?))
}

/// Why `tern sign` cannot make a component's payload for its targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadRefusal {
    /// The targets run both engines: Wasmtime runs the component as it is, wasmi a
    /// device image of it, and a bundle carries one payload.
    MixedEngines {
        /// The Wasmtime targets, as flags (`--board server`, `--engine wasmtime`).
        wasmtime: Vec<String>,
        /// The wasmi targets, likewise.
        wasmi: Vec<String>,
    },
    /// Every target runs wasmi and the component cannot be made a device image.
    Image {
        /// The wasmi targets, as flags.
        targets: Vec<String>,
        /// Why, naming the item.
        error: tern_wit::ImageBuildError,
    },
}

impl fmt::Display for PayloadRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadRefusal::MixedEngines { wasmtime, wasmi } => write!(
                f,
                "a component is signed once per engine: Wasmtime boards run it as it is, wasmi boards a device image made from it, and a bundle carries one payload; wasmtime runs on {} and wasmi on {}: sign it once with {} and once with {}",
                wasmtime.join(", "),
                wasmi.join(", "),
                wasmtime.join(" "),
                wasmi.join(" ")
            ),
            PayloadRefusal::Image { targets, error } => write!(
                f,
                "the component cannot run on wasmi ({}): {error}",
                targets.join(", ")
            ),
        }
    }
}

impl std::error::Error for PayloadRefusal {}

/// The payload a bundle for these targets carries, made from what `tern sign` was
/// given: a core module or a device image as it is (each target's engine checks it
/// later, [`check_targets`]); a component as it is if every target runs Wasmtime, as
/// a [`device_image`] if every target runs wasmi, refused if they mix engines. With
/// no target the input is returned ([`build`] refuses it).
pub fn payload_for_targets(
    input: &[u8],
    boards: &[&'static BoardTable],
    engines: &[EngineKind],
) -> Result<Vec<u8>, PayloadRefusal> {
    if PayloadKind::of(input) != PayloadKind::Component {
        return Ok(input.to_vec());
    }
    let targets: Vec<(String, EngineKind)> = boards
        .iter()
        .map(|b| (format!("--board {}", b.name()), b.engine()))
        .chain(
            engines
                .iter()
                .map(|e| (format!("--engine {}", e.name()), *e)),
        )
        .collect();
    let on = |engine: EngineKind| -> Vec<String> {
        targets
            .iter()
            .filter(|(_, e)| *e == engine)
            .map(|(t, _)| t.clone())
            .collect()
    };
    let (wasmtime, wasmi) = (on(EngineKind::Wasmtime), on(EngineKind::Wasmi));
    match (wasmtime.is_empty(), wasmi.is_empty()) {
        (_, true) => Ok(input.to_vec()),
        (true, false) => device_image(input).map_err(|error| PayloadRefusal::Image {
            targets: wasmi,
            error,
        }),
        (false, false) => Err(PayloadRefusal::MixedEngines { wasmtime, wasmi }),
    }
}

/// The capabilities requested when neither flags nor component.toml give scopes:
/// every imported interface's capability, unscoped, kv with a 4 KiB quota.
pub fn default_capabilities(imports: &[Interface]) -> Grant {
    let mut g = Grant::default();
    for i in imports {
        match i.capability() {
            Interface::Log => g.log = true,
            Interface::Clock => g.clock = true,
            Interface::Sensors => g.sensors = Some(Scope::Any),
            Interface::Gpio => g.gpio = Some(Scope::Any),
            Interface::Kv => g.kv = Some(4096),
            Interface::Publish => g.publish = Some(String::new()),
            // `capability` gives tern:edge's interfaces only.
            Interface::WasiLogging
            | Interface::WasiMonotonicClock
            | Interface::WasiKeyvalueStore => {}
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
    /// The board's engine cannot run the payload ([`check_payload`]).
    Payload(EngineRefusal),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Io(e) => f.write_str(e),
            Refusal::Format(e) => write!(f, "malformed bundle: {e}"),
            Refusal::Policy(e) => write!(f, "rejected: {e}"),
            Refusal::Payload(e) => write!(f, "rejected: {e}"),
        }
    }
}

/// A target of a bundle (a board, or any board running an engine) whose engine
/// cannot run its payload: it uses a wasm feature the engine lacks, or is no valid
/// module at all. Engines validate at load, so such a bundle would install and then
/// never run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineRefusal {
    /// The board, or `None` for an `--engine` target.
    pub board: Option<&'static str>,
    /// The engine that refuses.
    pub engine: EngineKind,
    /// Why.
    pub error: ValidationError,
}

impl fmt::Display for EngineRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = self.engine.name();
        match self.board {
            Some(b) => write!(f, "board `{b}` runs {engine}, which ")?,
            None => write!(f, "engine `{engine}` (--engine): {engine} ")?,
        }
        match &self.error {
            ValidationError::Unsupported(u) => write!(f, "{}; {}", u.lacks(), u.fix()),
            ValidationError::Invalid(e) => write!(f, "cannot load the payload: {e}"),
        }
    }
}

impl std::error::Error for EngineRefusal {}

/// Whether `board`'s engine can run `wasm`, by its [`PayloadKind`]
/// ([`tern_wasmtime::features::validate`]): a core module must validate under the
/// engine's wasm features ([`EngineKind::supports`]); a component runs on Wasmtime
/// only, under Wasmtime's; a device image on wasmi only, each of its modules under
/// wasmi's. The
/// host's side of the install decision that needs the payload: `tern sign` runs it
/// for every target, [`verify_stream`] (so `tern verify` and `tern run`) after the
/// payload's hash.
pub fn check_payload(wasm: &[u8], board: &BoardTable) -> Result<(), EngineRefusal> {
    check_engine(wasm, Some(board.name()), board.engine())
}

fn check_engine(
    wasm: &[u8],
    board: Option<&'static str>,
    engine: EngineKind,
) -> Result<(), EngineRefusal> {
    tern_wasmtime::features::validate(wasm, engine).map_err(|error| EngineRefusal {
        board,
        engine,
        error,
    })
}

/// [`check_payload`] for every board and engine a bundle targets, in that order;
/// each engine's verdict is computed once.
pub fn check_targets(
    wasm: &[u8],
    boards: &[&'static BoardTable],
    engines: &[EngineKind],
) -> Vec<EngineRefusal> {
    let mut verdicts: Vec<(EngineKind, Result<(), ValidationError>)> = Vec::new();
    let mut verdict = |engine: EngineKind| {
        if let Some((_, v)) = verdicts.iter().find(|(e, _)| *e == engine) {
            return v.clone();
        }
        let v = tern_wasmtime::features::validate(wasm, engine);
        verdicts.push((engine, v.clone()));
        v
    };
    let targets = boards
        .iter()
        .map(|b| (Some(b.name()), b.engine()))
        .chain(engines.iter().map(|e| (None, *e)));
    let mut out = Vec::new();
    for (board, engine) in targets {
        if let Err(error) = verdict(engine) {
            out.push(EngineRefusal {
                board,
                engine,
                error,
            });
        }
    }
    out
}

/// Verifies a bundle as a device does: header first (and the install policy on it)
/// before any payload byte is used, then the payload hashed in 4 KiB chunks, then
/// validated for the board's engine ([`check_payload`]; a device's engine validates it
/// at load). Returns the header, the grant and the payload.
pub fn verify_stream(
    mut reader: impl Read,
    board: &BoardTable,
    installed_counter: Option<u64>,
) -> Result<(Header, Granted, Vec<u8>), Refusal> {
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
    check_payload(&payload, board).map_err(Refusal::Payload)?;
    Ok((header, grant, payload))
}

/// Whether bytes look like a bundle (rather than bare wasm).
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(&bundle::MAGIC)
}

/// A component name `tern sign` cannot use, with a valid one to suggest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidName {
    /// The name as given or derived.
    pub name: String,
    /// The file it was derived from, or `None` if it came from `--name`.
    pub from_file: Option<PathBuf>,
    /// A valid name close to it, for `--name`.
    pub suggestion: String,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from_file {
            Some(file) => write!(
                f,
                "`{}` (from the file name {}) is not a valid component name: {}; pass --name {}",
                self.name,
                file.display(),
                bundle::BundleError::InvalidName,
                self.suggestion
            ),
            None => write!(
                f,
                "--name `{}` is not a valid component name: {}; try --name {}",
                self.name,
                bundle::BundleError::InvalidName,
                self.suggestion
            ),
        }
    }
}

impl std::error::Error for InvalidName {}

/// Checks a component name against the bundle format's rule
/// ([`bundle::is_valid_name`]); `from_file` is the file it was derived from, if any.
pub fn check_name(name: &str, from_file: Option<PathBuf>) -> Result<(), InvalidName> {
    if bundle::is_valid_name(name) {
        return Ok(());
    }
    Err(InvalidName {
        name: name.to_string(),
        from_file,
        suggestion: suggest_name(name),
    })
}

/// A valid component name close to `name` (`name` itself if it is valid): lower
/// case, every run of other characters (`_`, `.`, spaces, ...) turned into one `-`,
/// no `-` at either end, at most [`bundle::MAX_NAME_LEN`] bytes; `component` if
/// nothing is left.
pub fn suggest_name(name: &str) -> String {
    if bundle::is_valid_name(name) {
        return name.to_string();
    }
    let mut out = String::new();
    for c in name.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if out.len() == bundle::MAX_NAME_LEN {
                break;
            }
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') && out.len() < bundle::MAX_NAME_LEN {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "component".to_string()
    } else {
        out.to_string()
    }
}

/// A grant written as the `--grant` items that parse back to it
/// ([`Grant::parse`]), in WIT order: `log`, `sensors=temp-0,temp-1`, `kv=4096`,
/// `publish=site/`. An unscoped interface is its bare name (`sensors`, `publish`).
pub fn grant_items(grant: &Grant) -> Vec<String> {
    fn list<T: ToString>(name: &str, scope: &Scope<T>) -> String {
        match scope {
            Scope::Any => name.to_string(),
            Scope::Only(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                format!("{name}={}", items.join(","))
            }
        }
    }
    let mut out = Vec::new();
    if grant.log {
        out.push("log".to_string());
    }
    if grant.clock {
        out.push("clock".to_string());
    }
    if let Some(s) = &grant.sensors {
        out.push(list("sensors", s));
    }
    if let Some(s) = &grant.gpio {
        out.push(list("gpio", s));
    }
    if let Some(q) = grant.kv {
        out.push(format!("kv={q}"));
    }
    match grant.publish.as_deref() {
        None => {}
        Some("") => out.push("publish".to_string()),
        Some(p) => out.push(format!("publish={p}")),
    }
    out
}

/// `grant` as command-line flags: `--grant log --grant sensors=temp-0 ...`.
pub fn grant_flags(grant: &Grant) -> String {
    grant_items(grant)
        .iter()
        .map(|i| format!("--grant {i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Narrows `requested` to what every one of `offers` allows: an unscoped or
/// too-wide scope becomes the offered one (items outside an offered list are
/// dropped), a kv quota the smallest offered, a topic prefix outside the offered one
/// that prefix, and an interface a board does not offer is dropped. The result may
/// still fail [`grant_within`] for several boards with disjoint offers, and may drop
/// an interface the component imports; [`suggest_grant`] checks both.
pub fn narrow_grant(requested: &Grant, offers: &[&Offer]) -> Grant {
    /// One scoped interface: `None` if not offered (or not requested).
    fn narrow<T: PartialEq, U>(
        requested: Option<Scope<T>>,
        offered: Option<StaticScope<U>>,
        own: impl Fn(&U) -> T,
    ) -> Option<Scope<T>> {
        let allowed: Vec<T> = match offered? {
            StaticScope::Any => return requested,
            StaticScope::Only(items) => items.iter().map(own).collect(),
        };
        match requested? {
            Scope::Any => Some(Scope::Only(allowed)),
            Scope::Only(items) => {
                let kept: Vec<T> = items.into_iter().filter(|i| allowed.contains(i)).collect();
                Some(Scope::Only(if kept.is_empty() { allowed } else { kept }))
            }
        }
    }
    let mut g = requested.clone();
    for o in offers {
        g.log &= o.log;
        g.clock &= o.clock;
        g.sensors = narrow(g.sensors.take(), o.sensors, |id: &&str| id.to_string());
        g.gpio = narrow(g.gpio.take(), o.gpio, |pin: &u32| *pin);
        g.kv = match (g.kv, o.kv) {
            (Some(q), Some(max)) => Some(q.min(max)),
            _ => None,
        };
        g.publish = match (g.publish.take(), o.publish) {
            (Some(p), Some(base)) if p.starts_with(base) => Some(p),
            (Some(_), Some(base)) => Some(base.to_string()),
            _ => None,
        };
    }
    g
}

/// A grant every board in `boards` accepts ([`grant_within`], the install policy's
/// capability check) that still covers every interface in `imports` (so the
/// component can load), narrowed from `requested`; `None` if there is none.
pub fn suggest_grant(
    requested: &Grant,
    imports: &[Interface],
    boards: &[&BoardTable],
) -> Option<Grant> {
    let offers: Vec<&Offer> = boards.iter().map(|b| b.offers()).collect();
    let g = narrow_grant(requested, &offers);
    let loads = imports.iter().all(|i| g.allows_interface(*i));
    let accepted = boards.iter().all(|b| grant_within(&g, b.offers()).is_ok());
    (loads && accepted).then_some(g)
}

/// Where the capabilities `tern sign` requests came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantSource {
    /// `--grant` flags.
    Flags,
    /// A component.toml's `[capabilities]`.
    ComponentToml(PathBuf),
    /// No flags and no component.toml: every imported interface, unscoped
    /// ([`default_capabilities`]).
    Imports,
}

/// One board named with `--board` that would refuse a bundle, as its install policy
/// ([`check_install`]) answers.
#[derive(Clone, Debug)]
pub struct BoardRefusal {
    /// The board.
    pub board: &'static BoardTable,
    /// Its policy's answer.
    pub rejection: Rejection,
    /// When `rejection` is about something else (the signatures, the slot), the
    /// requested capabilities' own refusal by the same board, if they have one.
    pub capabilities: Option<Rejection>,
}

impl BoardRefusal {
    fn grant_related(r: &Rejection) -> bool {
        matches!(
            r,
            Rejection::ScopeEscalation { .. } | Rejection::CapabilityNotOffered { .. }
        )
    }

    /// Whether a different requested grant would help with this board.
    pub fn is_about_capabilities(&self) -> bool {
        Self::grant_related(&self.rejection) || self.capabilities.is_some()
    }
}

/// `tern sign` is asked for a bundle that some of the boards named with `--board`
/// would refuse, or whose payload some targeted engine cannot run. Displays, per
/// board, the refusal and what to do about it.
#[derive(Clone, Debug)]
pub struct BoardsWouldRefuse {
    /// Every named board that refuses, in `--board` order.
    pub refusals: Vec<BoardRefusal>,
    /// Every board named with `--board`.
    pub boards: Vec<&'static BoardTable>,
    /// What was requested.
    pub requested: Grant,
    /// Where that came from.
    pub source: GrantSource,
    /// The interfaces the component imports.
    pub imports: Vec<Interface>,
    /// Every target (`--board` or `--engine`) whose engine cannot run the payload
    /// ([`check_targets`]), in that order.
    pub engines: Vec<EngineRefusal>,
}

impl BoardsWouldRefuse {
    /// The report, one line each (no trailing newline).
    fn lines(&self) -> Vec<String> {
        let mut refusing: Vec<&str> = self.refusals.iter().map(|r| r.board.name()).collect();
        for b in self.engines.iter().filter_map(|e| e.board) {
            if !refusing.contains(&b) {
                refusing.push(b);
            }
        }
        let mut out = vec![match (self.boards.as_slice(), refusing.len()) {
            (_, 0) => "the bundle's --engine targets cannot run it:".to_string(),
            ([b], _) => format!("board `{}` would refuse this bundle:", b.name()),
            (_, n) => format!(
                "{n} of the {} boards named with --board would refuse this bundle:",
                self.boards.len()
            ),
        }];
        for e in &self.engines {
            out.push(format!("  {e}"));
        }
        for r in &self.refusals {
            let b = r.board;
            out.push(format!("  board `{}`: {}", b.name(), r.rejection));
            match &r.rejection {
                Rejection::NotEnoughSignatures { required, .. } => {
                    let keys: Vec<&str> = b.trust_keys().iter().map(|k| k.name).collect();
                    out.push(format!(
                        "    it trusts {} ({required} needed): sign with --key for one of those, or add your key's .pub to boards/{}/board.toml [trust] keys and rebuild tern",
                        keys.join(", "),
                        b.name()
                    ));
                }
                Rejection::TooLargeForSlot { .. } => out.push(format!(
                    "    make the component smaller, or drop --board {}",
                    b.name()
                )),
                _ => {}
            }
            if let Some(c) = &r.capabilities {
                out.push(format!("  board `{}` (also): {c}", b.name()));
            }
            if r.is_about_capabilities() {
                let offer = b.offers().to_grant();
                out.push(format!("    it offers: {}", grant_items(&offer).join(" ")));
                for i in self.imports.iter().filter(|i| !offer.allows_interface(**i)) {
                    out.push(format!(
                        "    the component imports `{i}`, which board `{}` does not offer: no grant fixes that; drop --board {}",
                        b.name(), b.name()
                    ));
                }
            }
        }
        if !self
            .refusals
            .iter()
            .any(BoardRefusal::is_about_capabilities)
        {
            return out;
        }
        let requested = grant_flags(&self.requested);
        out.push(match &self.source {
            GrantSource::Flags => format!("the capabilities came from --grant: {requested}"),
            GrantSource::ComponentToml(p) => {
                format!("the capabilities came from {}: {requested}", p.display())
            }
            GrantSource::Imports => format!(
                "the capabilities were inferred from the component's imports, unscoped (no component.toml was found): {requested}"
            ),
        });
        match suggest_grant(&self.requested, &self.imports, &self.boards) {
            Some(g) => {
                out.push(
                    "to fix the capabilities, request only what the board(s) offer; this is within every board's offer:"
                        .to_string(),
                );
                out.push(format!("    {}", grant_flags(&g)));
                out.push(match &self.source {
                    GrantSource::ComponentToml(p) => format!(
                        "  or edit [capabilities] in {} to match (or pass --component-toml PATH for another file)",
                        p.display()
                    ),
                    _ => "  or pass --component-toml PATH, a file whose [capabilities] stay within that"
                        .to_string(),
                });
            }
            None => {
                out.push(
                    "no one grant suits every board named and the component's imports: sign one bundle per board (`tern boards` lists what each offers), e.g."
                        .to_string(),
                );
                for r in self.refusals.iter().filter(|r| r.is_about_capabilities()) {
                    if let Some(g) = suggest_grant(&self.requested, &self.imports, &[r.board]) {
                        out.push(format!(
                            "    --board {} {}",
                            r.board.name(),
                            grant_flags(&g)
                        ));
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for BoardsWouldRefuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for BoardsWouldRefuse {}

/// Runs each board's install policy ([`check_install`], nothing installed yet) on the
/// header of a bundle [`build`] made, as `tern verify --board` would. `source` and
/// `imports` describe how it was built, for the report.
pub fn check_boards(
    header: &Header,
    boards: &[&'static BoardTable],
    source: GrantSource,
    imports: &[Interface],
) -> Result<(), Box<BoardsWouldRefuse>> {
    let requested = &header.manifest.capabilities;
    let refusals: Vec<BoardRefusal> = boards
        .iter()
        .filter_map(|board| {
            let rejection = check_install(header, board, None).err()?;
            let capabilities = if BoardRefusal::grant_related(&rejection) {
                None
            } else {
                grant_within(requested, board.offers()).err()
            };
            Some(BoardRefusal {
                board,
                rejection,
                capabilities,
            })
        })
        .collect();
    if refusals.is_empty() {
        return Ok(());
    }
    Err(Box::new(BoardsWouldRefuse {
        refusals,
        boards: boards.to_vec(),
        requested: requested.clone(),
        source,
        imports: imports.to_vec(),
        engines: Vec::new(),
    }))
}

/// The component name for a wasm file: `name` if given (checked), else the file's
/// name without `.wasm` (checked, with a valid name suggested if it is not one).
pub fn component_name(component: &Path, name: Option<&str>) -> Result<String, String> {
    if let Some(n) = name {
        check_name(n, None).map_err(|e| e.to_string())?;
        return Ok(n.to_string());
    }
    let stem = component
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("cannot derive a component name from the file name; pass --name NAME (1 to 64 characters of a-z, 0-9 and -)")?;
    let file = component.file_name().map(PathBuf::from);
    check_name(stem, file).map_err(|e| e.to_string())?;
    Ok(stem.to_string())
}

/// The component.toml of component `name` under `dir`:
/// `components/<name>/component.toml`, else `components/fixtures/<name>/component.toml`,
/// if either exists.
pub fn find_component_toml(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        dir.join("components").join(name).join("component.toml"),
        dir.join("components/fixtures")
            .join(name)
            .join("component.toml"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// The capabilities a bundle requests, and where they came from: the `items`
/// (`--grant` syntax) if any; else `component_toml`'s `[capabilities]`, or the
/// component.toml [`find_component_toml`] finds for `name` under `dir`; else every
/// interface in `imports`, unscoped ([`default_capabilities`]).
pub fn requested_capabilities(
    items: &[String],
    component_toml: Option<PathBuf>,
    name: &str,
    imports: &[Interface],
    dir: &Path,
) -> Result<(Grant, GrantSource), String> {
    if !items.is_empty() {
        let g = Grant::parse(items.iter().map(String::as_str)).map_err(|e| e.to_string())?;
        return Ok((g, GrantSource::Flags));
    }
    if let Some(path) = component_toml.or_else(|| find_component_toml(dir, name)) {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let g = tern_board::component_capabilities(&text, &path).map_err(|e| e.to_string())?;
        return Ok((g, GrantSource::ComponentToml(path)));
    }
    Ok((default_capabilities(imports), GrantSource::Imports))
}

/// What `tern sign` is asked to build.
pub struct BundleRequest<'a> {
    /// What to sign: a component's core module, a component, or a device image
    /// ([`PayloadKind`]; the payload is made for the targets by
    /// [`payload_for_targets`]).
    pub wasm: &'a [u8],
    /// Its name ([`component_name`]).
    pub name: &'a str,
    /// Its version.
    pub version: Version,
    /// Its security counter.
    pub security_counter: u64,
    /// The boards it is for, by name: each one's install policy is checked.
    pub boards: &'a [&'static BoardTable],
    /// The engines it is for (any board running one).
    pub engines: &'a [EngineKind],
    /// The capabilities it requests ([`requested_capabilities`]).
    pub capabilities: Grant,
    /// Where they came from, for the report if a board would refuse.
    pub source: GrantSource,
    /// The signing keys.
    pub keys: &'a [KeyFile],
}

/// A bundle [`sign`] built, and whether a board it is for would refuse it.
#[derive(Debug)]
pub struct Signed {
    /// The bundle's bytes.
    pub bytes: Vec<u8>,
    /// What its payload is ([`payload_for_targets`]): a component given for wasmi
    /// boards is a device image.
    pub payload: PayloadKind,
    /// `None` if every named board's install policy accepts it and every targeted
    /// engine can run it; else who refuses, why, and how to fix it.
    pub refusal: Option<Box<BoardsWouldRefuse>>,
}

/// Makes the payload for the targets ([`payload_for_targets`]: a component is a
/// device image for wasmi boards, and is refused for both engines at once), builds
/// and signs the bundle ([`build`]), then runs each named board's install policy on
/// it ([`check_boards`]) and checks that every targeted board's and engine's engine
/// can run the payload ([`check_targets`]), before anything is written.
pub fn sign(request: BundleRequest<'_>) -> Result<Signed, String> {
    let payload = payload_for_targets(request.wasm, request.boards, request.engines)
        .map_err(|e| e.to_string())?;
    let imports = imported_interfaces(&payload)?;
    let mut targets: Vec<Target> = request
        .boards
        .iter()
        .map(|b| Target::Board(b.name().to_string()))
        .collect();
    targets.extend(request.engines.iter().map(|e| Target::Engine(*e)));
    let bytes = build(
        &payload,
        request.name,
        request.version,
        request.security_counter,
        targets,
        request.capabilities,
        request.keys,
    )?;
    let mut decoder = bundle::HeaderDecoder::new();
    let (header, _) = decoder
        .feed(&bytes)
        .map_err(|e| format!("internal error: the bundle just built does not decode: {e}"))?
        .ok_or("internal error: the bundle just built is truncated")?;
    let engines = check_targets(&payload, request.boards, request.engines);
    let refusal = match check_boards(&header, request.boards, request.source.clone(), &imports) {
        Err(mut r) => {
            r.engines = engines;
            Some(r)
        }
        Ok(()) if engines.is_empty() => None,
        Ok(()) => Some(Box::new(BoardsWouldRefuse {
            refusals: Vec::new(),
            boards: request.boards.to_vec(),
            requested: header.manifest.capabilities.clone(),
            source: request.source,
            imports,
            engines,
        })),
    };
    Ok(Signed {
        bytes,
        payload: PayloadKind::of(&payload),
        refusal,
    })
}

/// A bundle's header, payload check and signatures, as `tern inspect` shows them.
#[derive(Debug)]
pub struct Inspection {
    /// The header (manifest and signatures).
    pub header: Header,
    /// Whether the payload matches the signed length and SHA-256.
    pub payload: Result<(), BundleError>,
    /// One check per signature, in bundle order.
    pub signatures: Vec<SignatureCheck>,
}

/// One signature of an inspected bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The key id the signature names.
    pub key_id: KeyId,
    /// The compiled-in key with that id, if a board here trusts one.
    pub signer: Option<KnownSigner>,
}

/// A signature's key, as the boards compiled into this build know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownSigner {
    /// The key's name (`tern-dev-2026`).
    pub key: &'static str,
    /// Whether the signature verifies with it.
    pub verifies: bool,
    /// Every board that trusts a key with this id, in board order.
    pub trusted_by: Vec<&'static str>,
}

/// Decodes a bundle's header, checks its payload against the signed hash, and checks
/// each signature against the trust keys of every compiled-in board. Unlike
/// [`verify_stream`] this decides nothing: no board's policy is applied.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, BundleError> {
    let mut decoder = bundle::HeaderDecoder::new();
    let (header, payload) = decoder.feed(bytes)?.ok_or_else(|| decoder.truncated())?;
    let mut check = header.payload_checker();
    let payload = check.update(payload).and_then(|()| check.finish());
    let message = header.signed_message();
    let signatures = header
        .signatures
        .iter()
        .map(|rec| {
            let known: Vec<(&'static str, &'static TrustKey)> = crate::boards::ALL
                .iter()
                .flat_map(|b| b.trust_keys().iter().map(move |k| (b.name(), k)))
                .filter(|(_, k)| k.id() == rec.key_id)
                .collect();
            let signer = known.first().map(|(_, key)| KnownSigner {
                key: key.name,
                verifies: ed25519_dalek::VerifyingKey::from_bytes(&key.public_key)
                    .map(|vk| {
                        vk.verify_strict(
                            &message,
                            &ed25519_dalek::Signature::from_bytes(&rec.signature),
                        )
                        .is_ok()
                    })
                    .unwrap_or(false),
                trusted_by: known.iter().map(|(b, _)| *b).collect(),
            });
            SignatureCheck {
                key_id: rec.key_id,
                signer,
            }
        })
        .collect();
    Ok(Inspection {
        header,
        payload,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;
    use crate::boards::{LINUX_GATEWAY, QEMU_MPS2_AN386, SERVER};
    use tern_core::features::WasmFeature;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn names_come_from_the_flag_or_the_file() {
        assert_eq!(
            component_name(Path::new("x/alarm.wasm"), None).unwrap(),
            "alarm"
        );
        assert_eq!(
            component_name(Path::new("x/alarm.wasm"), Some("siren")).unwrap(),
            "siren"
        );
        let e = component_name(Path::new("x/smoother_c.wasm"), None).unwrap_err();
        assert!(e.contains("--name smoother-c"), "{e}");
    }

    #[test]
    fn capabilities_come_from_items_then_component_toml_then_imports() {
        let imports = [Interface::Log, Interface::Gpio];
        let items = ["log".to_string(), "gpio=4".to_string()];
        let (g, source) = requested_capabilities(&items, None, "alarm", &imports, &repo()).unwrap();
        assert_eq!((g.log, source), (true, GrantSource::Flags));
        let (_, source) = requested_capabilities(&[], None, "alarm", &imports, &repo()).unwrap();
        assert_eq!(
            source,
            GrantSource::ComponentToml(repo().join("components/alarm/component.toml"))
        );
        assert!(find_component_toml(&repo(), "no-such-component").is_none());
        let (g, source) =
            requested_capabilities(&[], None, "no-such-component", &imports, &repo()).unwrap();
        assert_eq!(
            (g, source),
            (default_capabilities(&imports), GrantSource::Imports)
        );
    }

    #[test]
    fn signed_bundles_are_checked_against_the_boards_and_inspected() {
        let key = KeyFile::read(&repo().join("boards/keys/tern-dev-2026.key")).unwrap();
        // The smallest module: no imports, so any capabilities load.
        let wasm = b"\0asm\x01\0\0\0";
        let request = |boards| BundleRequest {
            wasm,
            name: "empty",
            version: Version::parse("1.0.0").unwrap(),
            security_counter: 1,
            boards,
            engines: &[],
            capabilities: Grant::parse(["gpio=999"]).unwrap(),
            source: GrantSource::Flags,
            keys: std::slice::from_ref(&key),
        };
        let server: &[&'static BoardTable] = &[&SERVER];
        let gateway: &[&'static BoardTable] = &[&LINUX_GATEWAY];
        let signed = sign(request(server)).unwrap();
        assert!(signed.refusal.is_none(), "{:?}", signed.refusal);
        let refused = sign(request(gateway)).unwrap().refusal.unwrap();
        assert_eq!(refused.refusals.len(), 1);
        assert!(refused.to_string().contains("--grant"), "{refused}");

        let seen = inspect(&signed.bytes).unwrap();
        assert_eq!(seen.header.manifest.name, "empty");
        assert!(seen.payload.is_ok());
        let [check] = seen.signatures.as_slice() else {
            panic!("one signature: {:?}", seen.signatures)
        };
        let signer = check.signer.as_ref().unwrap();
        assert_eq!(signer.key, "tern-dev-2026");
        assert!(signer.verifies && signer.trusted_by.contains(&"server"));
        let mut tampered = signed.bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(inspect(&tampered).unwrap().payload.is_err());
        assert!(inspect(&signed.bytes[..10]).is_err());
    }

    /// Imports `log` (function 0) and uses SIMD first in function 3.
    const SIMD_WAT: &str = r#"(module
        (import "tern:edge/log@0.1.0" "log" (func (param i32 i32 i32)))
        (func)
        (func)
        (func (result i32) v128.const i32x4 1 2 3 4 i32x4.extract_lane 0))"#;
    /// The same module without its SIMD function.
    const PLAIN_WAT: &str = r#"(module
        (import "tern:edge/log@0.1.0" "log" (func (param i32 i32 i32)))
        (func)
        (func))"#;

    fn dev_key() -> KeyFile {
        KeyFile::read(&repo().join("boards/keys/tern-dev-2026.key")).unwrap()
    }

    fn sign_for(
        wasm: &[u8],
        boards: &[&'static BoardTable],
        engines: &[EngineKind],
    ) -> Option<Box<BoardsWouldRefuse>> {
        let key = dev_key();
        sign(BundleRequest {
            wasm,
            name: "features",
            version: Version::parse("1.0.0").unwrap(),
            security_counter: 1,
            boards,
            engines,
            capabilities: Grant::parse(["log"]).unwrap(),
            source: GrantSource::Flags,
            keys: std::slice::from_ref(&key),
        })
        .unwrap()
        .refusal
    }

    #[test]
    fn a_simd_payload_signs_for_wasmtime_boards_only_and_names_board_engine_and_feature() {
        let simd = wat::parse_str(SIMD_WAT).unwrap();
        let refusal = sign_for(&simd, &[&QEMU_MPS2_AN386], &[]).expect("refused for wasmi");
        let [e] = refusal.engines.as_slice() else {
            panic!("one engine refusal: {refusal:?}")
        };
        assert_eq!(
            (e.board, e.engine),
            (Some("qemu-mps2-an386"), EngineKind::Wasmi)
        );
        let ValidationError::Unsupported(u) = &e.error else {
            panic!("an unsupported feature: {e:?}")
        };
        assert_eq!((u.feature, u.function), (WasmFeature::Simd, Some(3)));
        let text = refusal.to_string();
        assert!(
            text.contains(&format!(
                "board `qemu-mps2-an386` runs wasmi, which does not support the `simd` proposal (SIMD support is not enabled, at function 3, offset {:#x}); build without `simd` or target only wasmtime boards",
                u.offset
            )),
            "{text}"
        );
        // Any board running wasmi, too; a Wasmtime board signs.
        let refusal = sign_for(&simd, &[], &[EngineKind::Wasmi]).expect("refused for wasmi");
        assert_eq!(refusal.engines[0].board, None);
        assert!(
            refusal
                .to_string()
                .contains("engine `wasmi` (--engine): wasmi does not support the `simd` proposal")
        );
        assert!(sign_for(&simd, &[&SERVER], &[EngineKind::Wasmtime]).is_none());
        // Refused for the wasmi board only, when both kinds are named.
        let refusal = sign_for(&simd, &[&SERVER, &QEMU_MPS2_AN386], &[]).unwrap();
        assert!(
            refusal
                .to_string()
                .starts_with("1 of the 2 boards named with --board would refuse this bundle:"),
            "{refusal}"
        );
    }

    #[test]
    fn a_payload_without_simd_signs_for_both_kinds_of_board() {
        let plain = wat::parse_str(PLAIN_WAT).unwrap();
        let boards: &[&'static BoardTable] = &[&SERVER, &QEMU_MPS2_AN386];
        let refusal = sign_for(&plain, boards, &EngineKind::ALL);
        assert!(refusal.is_none(), "{refusal:?}");
    }

    #[test]
    fn the_host_install_check_refuses_a_payload_the_boards_engine_cannot_run() {
        let simd = wat::parse_str(SIMD_WAT).unwrap();
        // Signed without `tern sign`'s checks, as an older tern would have.
        let bundle = build(
            &simd,
            "features",
            Version::parse("1.0.0").unwrap(),
            1,
            vec![
                Target::Board("qemu-mps2-an386".into()),
                Target::Board("server".into()),
            ],
            Grant::parse(["log"]).unwrap(),
            &[dev_key()],
        )
        .unwrap();
        let Err(Refusal::Payload(e)) = verify_stream(&bundle[..], &QEMU_MPS2_AN386, None) else {
            panic!("the wasmi board refuses the payload")
        };
        assert_eq!(e.board, Some("qemu-mps2-an386"));
        assert!(
            matches!(&e.error, ValidationError::Unsupported(u) if u.feature == WasmFeature::Simd)
        );
        assert!(
            e.to_string()
                .contains("runs wasmi, which does not support the `simd` proposal")
        );
        let (_, _, payload) =
            verify_stream(&bundle[..], &SERVER, None).expect("the server runs it");
        assert_eq!(payload, simd);
        // `tern run --board` goes through the same check.
        assert!(matches!(
            crate::run::prepare(bundle.clone(), Some(&QEMU_MPS2_AN386), &[]),
            Err(crate::run::NotRunnable::Refused(Refusal::Payload(_)))
        ));
        assert!(crate::run::prepare(bundle, Some(&SERVER), &[]).is_ok());
    }

    #[test]
    fn suggested_names_are_valid_and_close() {
        for (bad, good) in [
            ("smoother_c", "smoother-c"),
            ("Smoother_C", "smoother-c"),
            ("my component.v2", "my-component-v2"),
            ("__x__", "x"),
            ("a--b", "a--b"),
            ("a__b", "a-b"),
            ("___", "component"),
            ("", "component"),
            ("ünïcode", "n-code"),
        ] {
            assert_eq!(suggest_name(bad), good, "{bad:?}");
        }
        let long = "ab_".repeat(40);
        for name in [long.as_str(), "x", "Ünï", "-a-", "0_0"] {
            let s = suggest_name(name);
            assert!(bundle::is_valid_name(&s), "{name:?} -> {s:?}");
        }
        assert_eq!(suggest_name(&long).len(), bundle::MAX_NAME_LEN);
    }

    #[test]
    fn check_name_accepts_valid_names_and_explains_invalid_ones() {
        assert!(check_name("smoother-2", None).is_ok());
        let e = check_name("smoother_c", Some("smoother_c.wasm".into())).unwrap_err();
        assert_eq!(e.suggestion, "smoother-c");
        let text = e.to_string();
        assert!(text.contains("smoother_c.wasm") && text.contains("--name smoother-c"));
        let e = check_name(&"a".repeat(65), None).unwrap_err();
        assert!(e.to_string().starts_with("--name"));
    }

    #[test]
    fn grant_items_parse_back_to_the_grant() {
        for g in [
            Grant::default(),
            Grant::development(),
            LINUX_GATEWAY.offers().to_grant(),
            QEMU_MPS2_AN386.offers().to_grant(),
            SERVER.offers().to_grant(),
            Grant::parse(["log", "gpio=4,5", "publish=a/b", "kv=1"]).unwrap(),
        ] {
            let items = grant_items(&g);
            assert_eq!(Grant::parse(items.iter().map(String::as_str)).unwrap(), g);
        }
    }

    #[test]
    fn suggested_grants_fit_the_boards_and_keep_what_already_fits() {
        let imports = [Interface::Log, Interface::Sensors, Interface::Kv];
        let wide = default_capabilities(&imports);
        assert!(grant_within(&wide, LINUX_GATEWAY.offers()).is_err());
        let g = suggest_grant(&wide, &imports, &[&LINUX_GATEWAY]).unwrap();
        assert!(grant_within(&g, LINUX_GATEWAY.offers()).is_ok());
        assert_eq!(
            g.sensors,
            Some(Scope::Only(vec![
                "temp-0".to_string(),
                "temp-1".to_string(),
                "hum-0".to_string()
            ]))
        );
        assert_eq!(g.kv, wide.kv, "a quota within the offer is kept");
        // Items the board offers are kept, the rest dropped; the quota is capped.
        let asked = Grant::parse(["gpio=4,9", "kv=100000", "publish=site/a/"]).unwrap();
        let g = narrow_grant(&asked, &[LINUX_GATEWAY.offers()]);
        assert_eq!(g.gpio, Some(Scope::Only(vec![4])));
        assert_eq!(g.kv, Some(16_384));
        assert_eq!(g.publish.as_deref(), Some("site/a/"));
        // Two boards with unrelated topic prefixes: no one grant fits both.
        let alarm = Grant::parse(["log", "clock", "gpio=4", "publish=alerts/"]).unwrap();
        let imports = [
            Interface::Log,
            Interface::Clock,
            Interface::Gpio,
            Interface::Publish,
        ];
        assert!(suggest_grant(&alarm, &imports, &[&QEMU_MPS2_AN386, &LINUX_GATEWAY]).is_none());
        assert!(suggest_grant(&alarm, &imports, &[&QEMU_MPS2_AN386, &SERVER]).is_some());
    }
}
