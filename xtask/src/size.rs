//! `cargo xtask size`: the firmware's flash and RAM against the budgets, and the share of each crate.
//!
//! Flash = `.vector_table` + `.text` + `.rodata` + `.data`'s load image; RAM =
//! `.data` + `.bss` + `.uninit`, where `.bss` holds the heap (shown on its own: it
//! reserves the component's linear memory). The stack is not counted: cortex-m-rt puts
//! it at the top of RAM, below which nothing is linked. Crate shares come from symbol
//! sizes; with LTO, inlined code counts in its caller, so the split is indicative.
//! The budgets are reported, not enforced: the command succeeds either way.

use std::collections::{BTreeMap, HashSet};

use object::{Object, ObjectSection, ObjectSymbol, SectionIndex};

use crate::device::{DEFAULT_BOARD, load_board, parse_flags, shown};

const KIB: u64 = 1024;
/// Code and constants of the firmware.
const FLASH_BUDGET: u64 = 512 * KIB;
/// RAM besides the running component's linear memory.
const RAM_BUDGET_BASE: u64 = 128 * KIB;

const HELP: &str = "\
cargo xtask size [--board BOARD] [--elf ELF] [--linear-memory BYTES]

The firmware's footprint: flash (.vector_table + .text + .rodata + .data's load
image) against 512 KiB, RAM (.data + .bss + .uninit, the heap shown apart) against
128 KiB + the running component's linear memory, and the flash share of each crate
group. Reports, never fails on, an over-budget firmware.

  --board BOARD          default qemu-mps2-an386; builds its firmware first
  --elf ELF              measure this ELF instead of building
  --linear-memory BYTES  default the board's limits.memory-bytes
";

/// `cargo xtask size`.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some(parsed) = parse_flags(args, &["board", "elf", "linear-memory"], HELP)? else {
        return Ok(());
    };
    if let Some(extra) = parsed.positional.first() {
        return Err(format!("unexpected argument `{extra}`\n\n{HELP}"));
    }
    let name = parsed.flag("board").unwrap_or(DEFAULT_BOARD);
    let board = load_board(name)?;
    let linear = match parsed.flag("linear-memory") {
        Some(n) => n
            .parse::<u64>()
            .map_err(|e| format!("--linear-memory {n}: {e}"))?,
        None => board.limits.memory_bytes.into(),
    };
    let elf = parsed.elf_or_build(name)?;
    let bytes = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let footprint = Footprint::of(&bytes)?;
    print!("{}", footprint.report(&shown(&elf), name, linear));
    Ok(())
}

/// What the ELF occupies.
#[derive(Debug)]
struct Footprint {
    /// Section sizes by name.
    sections: BTreeMap<String, u64>,
    /// The heap: the largest `.bss`/`.uninit` symbol named like one (name, bytes).
    heap: Option<(String, u64)>,
    /// Flash bytes per crate group, from symbol sizes in `.vector_table`, `.text`
    /// and `.rodata`.
    groups: BTreeMap<Group, u64>,
    /// Bytes per crate within [`Group::Other`].
    other: BTreeMap<String, u64>,
}

/// Where a symbol's bytes are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Wasmi,
    Smoltcp,
    Crypto,
    /// The component model on the device: `tern-cabi`, `tern-wasmi`'s ABI glue and
    /// plan executor, `tern-core`'s world description and `tern:edge` mapping.
    ComponentModel,
    Tern,
    CoreAlloc,
    Other,
    /// Code the machine outliner shared between functions (`OUTLINED_FUNCTION_n`).
    Outlined,
}

impl Group {
    fn label(self) -> &'static str {
        match self {
            Group::Wasmi => "wasmi + wasmparser",
            Group::Smoltcp => "smoltcp",
            Group::Crypto => "crypto (ed25519, curve25519, sha2)",
            Group::ComponentModel => "component model (tern-cabi, ABI glue, plan executor)",
            Group::Tern => "other tern-* (core, wasmi, agent, net, device, firmware)",
            Group::CoreAlloc => "core + alloc + compiler-builtins",
            Group::Other => "other crates",
            Group::Outlined => "outlined code (shared, no owner)",
        }
    }
}

impl Footprint {
    fn of(elf: &[u8]) -> Result<Footprint, String> {
        let file = object::File::parse(elf).map_err(|e| format!("ELF: {e}"))?;
        let mut sections = BTreeMap::new();
        let mut flash_sections = HashSet::<SectionIndex>::new();
        let mut ram_sections = HashSet::<SectionIndex>::new();
        for section in file.sections() {
            let Ok(name) = section.name() else { continue };
            *sections.entry(name.to_string()).or_insert(0) += section.size();
            match name {
                ".vector_table" | ".text" | ".rodata" => {
                    flash_sections.insert(section.index());
                }
                ".bss" | ".uninit" => {
                    ram_sections.insert(section.index());
                }
                _ => {}
            }
        }
        let mut groups = BTreeMap::new();
        let mut other = BTreeMap::new();
        let mut heap: Option<(String, u64)> = None;
        // Aliases (`memcpy` and `__aeabi_memcpy` at one address) count once.
        let mut seen = HashSet::new();
        for symbol in file.symbols() {
            let (Some(index), Ok(raw)) = (symbol.section_index(), symbol.name()) else {
                continue;
            };
            if symbol.size() == 0 || !seen.insert((symbol.address(), symbol.size())) {
                continue;
            }
            let name = demangle(raw);
            // Unnamed constants (`.Lanon.*`) stay in the unnamed remainder.
            if flash_sections.contains(&index) && !name.starts_with(".L") {
                let (group, krate) = group_of(&name);
                *groups.entry(group).or_insert(0) += symbol.size();
                if group == Group::Other {
                    *other.entry(krate).or_insert(0) += symbol.size();
                }
            } else if ram_sections.contains(&index)
                && name.to_lowercase().contains("heap")
                && heap.as_ref().is_none_or(|(_, n)| symbol.size() > *n)
            {
                heap = Some((name, symbol.size()));
            }
        }
        Ok(Footprint {
            sections,
            heap,
            groups,
            other,
        })
    }

    fn section(&self, name: &str) -> u64 {
        self.sections.get(name).copied().unwrap_or(0)
    }

    fn report(&self, elf: &str, board: &str, linear: u64) -> String {
        use std::fmt::Write;
        let kib = |n: u64| n as f64 / KIB as f64;
        let verdict = |used: u64, budget: u64| {
            if used > budget {
                format!("over budget by {:.1} KiB", kib(used - budget))
            } else {
                format!("OK, {:.1} KiB to spare", kib(budget - used))
            }
        };
        let (vectors, text, rodata) = (
            self.section(".vector_table"),
            self.section(".text"),
            self.section(".rodata"),
        );
        let (data, bss, uninit) = (
            self.section(".data"),
            self.section(".bss"),
            self.section(".uninit"),
        );
        let flash = vectors + text + rodata + data;
        let ram = data + bss + uninit;
        let ram_budget = RAM_BUDGET_BASE + linear;
        let mut out = String::new();
        let _ = writeln!(out, "firmware  {elf} (board {board})");
        let _ = writeln!(
            out,
            "flash     {:>7.1} KiB = .vector_table {:.1} + .text {:.1} + .rodata {:.1} + .data {:.1}",
            kib(flash),
            kib(vectors),
            kib(text),
            kib(rodata),
            kib(data)
        );
        let _ = writeln!(
            out,
            "          budget {} KiB: {}",
            FLASH_BUDGET / KIB,
            verdict(flash, FLASH_BUDGET)
        );
        let _ = writeln!(
            out,
            "RAM       {:>7.1} KiB = .data {:.1} + .bss {:.1} + .uninit {:.1} (stack not counted)",
            kib(ram),
            kib(data),
            kib(bss),
            kib(uninit)
        );
        match &self.heap {
            Some((name, heap)) => {
                let _ = writeln!(
                    out,
                    "          of which heap {:.1} KiB ({name}), everything else {:.1} KiB",
                    kib(*heap),
                    kib(ram.saturating_sub(*heap))
                );
            }
            None => {
                let _ = writeln!(out, "          (no heap symbol found)");
            }
        }
        let _ = writeln!(
            out,
            "          budget {} KiB + linear memory {:.0} KiB = {:.0} KiB: {}",
            RAM_BUDGET_BASE / KIB,
            kib(linear),
            kib(ram_budget),
            verdict(ram, ram_budget)
        );
        let counted = vectors + text + rodata;
        let named: u64 = self.groups.values().sum();
        let _ = writeln!(
            out,
            "flash by crate (symbol sizes in .vector_table/.text/.rodata; with LTO inlined code counts in its caller):"
        );
        let mut rows: Vec<(String, u64)> = self
            .groups
            .iter()
            .map(|(g, n)| (g.label().to_string(), *n))
            .collect();
        rows.push((
            "unnamed (strings, constant tables, padding)".into(),
            counted.saturating_sub(named),
        ));
        rows.sort_by_key(|row| std::cmp::Reverse(row.1));
        for (label, n) in rows {
            let _ = writeln!(
                out,
                "  {label:<56} {:>7.1} KiB {:>5.1} %",
                kib(n),
                100.0 * n as f64 / counted.max(1) as f64
            );
        }
        let mut other: Vec<(&String, &u64)> = self.other.iter().collect();
        other.sort_by_key(|row| std::cmp::Reverse(*row.1));
        if !other.is_empty() {
            let top: Vec<String> = other
                .iter()
                .take(8)
                .map(|(k, n)| format!("{k} {:.1}", kib(**n)))
                .collect();
            let _ = writeln!(
                out,
                "  other crates, largest first (KiB): {}",
                top.join(", ")
            );
        }
        out
    }
}

/// A symbol's name without the hash, demangled if it is a Rust name.
pub(crate) fn demangle(raw: &str) -> String {
    match rustc_demangle::try_demangle(raw) {
        Ok(name) => format!("{name:#}"),
        Err(_) => raw.to_string(),
    }
}

/// The group and crate a demangled symbol belongs to.
fn group_of(name: &str) -> (Group, String) {
    if name.starts_with("OUTLINED_FUNCTION") {
        return (Group::Outlined, String::new());
    }
    let krate = crate_of(name);
    /// Modules of other tern crates that are the component model's.
    const COMPONENT_MODEL: [&str; 4] = [
        "tern_wasmi::cabi::",
        "tern_wasmi::image::",
        "tern_core::edge::",
        "tern_core::image::",
    ];
    if krate == "tern_cabi" || COMPONENT_MODEL.iter().any(|m| name.contains(m)) {
        return (Group::ComponentModel, krate);
    }
    let group = match krate.as_str() {
        k if k.starts_with("wasmi") || k.starts_with("wasmparser") => Group::Wasmi,
        "smoltcp" => Group::Smoltcp,
        "ed25519" | "ed25519_dalek" | "curve25519_dalek" | "sha2" | "digest" | "block_buffer"
        | "crypto_common" | "generic_array" | "subtle" | "signature" | "zeroize" => Group::Crypto,
        k if k.starts_with("tern_") => Group::Tern,
        "core" | "alloc" | "compiler_builtins" | "__rustc" | "(C runtime)" => Group::CoreAlloc,
        _ => Group::Other,
    };
    (group, krate)
}

/// The crate of a demangled name: `wasmi::Engine::new` → `wasmi`; for trait
/// impls, the type's crate, or the trait's when the type is generic or a primitive
/// (`<&T as core::fmt::Debug>::fmt` → `core`); drop glue goes to the dropped type.
pub(crate) fn crate_of(name: &str) -> String {
    if let Some(inner) = name
        .strip_prefix("core::ptr::drop_in_place<")
        .and_then(|s| s.strip_suffix('>'))
    {
        return crate_of(inner);
    }
    if let Some(rest) = name.strip_prefix('<') {
        let close = matching_close(rest);
        let inside = &rest[..close];
        let (ty, tr) = match split_as(inside) {
            Some((ty, tr)) => (ty, Some(tr)),
            None => (inside, None),
        };
        if let Some(k) = leading_crate(ty) {
            return k;
        }
        if let Some(k) = tr.and_then(leading_crate) {
            return k;
        }
        // An inherent impl on a primitive (`<char>::escape_debug_ext`).
        return "core".into();
    }
    if let Some(k) = leading_crate(name) {
        return k;
    }
    if is_c_runtime(name) {
        return "(C runtime)".into();
    }
    match name {
        n if n.starts_with("_defmt") || n.starts_with("__defmt") => "defmt".into(),
        "Reset"
        | "__INTERRUPTS"
        | "__EXCEPTIONS"
        | "__RESET_VECTOR"
        | "DefaultHandler"
        | "HardFault"
        | "HardFaultTrampoline"
        | "DefaultPreInit" => "cortex_m_rt".into(),
        n => format!("({n})"),
    }
}

/// The index of the `>` that closes an opening `<` already consumed.
fn matching_close(s: &str) -> usize {
    let mut depth = 1usize;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// `Type as Trait` split at the top-level ` as `.
fn split_as(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let bytes = s.as_bytes();
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ' ' if depth == 0 && bytes[i..].starts_with(b" as ") => {
                return Some((&s[..i], &s[i + 4..]));
            }
            _ => {}
        }
    }
    None
}

/// The crate a path starts with (`&mut dyn wasmi::X` → `wasmi`), if it starts with
/// `ident::` and the ident is not a lone generic parameter.
fn leading_crate(path: &str) -> Option<String> {
    let mut p = path.trim_start_matches(['&', '*', '<']);
    for prefix in ["mut ", "const ", "dyn "] {
        p = p.strip_prefix(prefix).unwrap_or(p);
    }
    let p = p.trim_start_matches(['&', '<']);
    let end = p.find("::")?;
    let ident = &p[..end];
    let is_ident = !ident.is_empty()
        && ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !ident.starts_with(|c: char| c.is_ascii_digit());
    (is_ident && ident.len() > 1).then(|| ident.to_string())
}

/// Compiler-builtins and libc-style names (`memcpy`, `__aeabi_d2f`, `__divmoddi4`).
fn is_c_runtime(name: &str) -> bool {
    name.starts_with("__aeabi_")
        || ["memcpy", "memmove", "memset", "memcmp", "bcmp", "strlen"].contains(&name)
        || (name.starts_with("__")
            && ["di3", "si3", "ti3", "df2", "sf2", "di4", "si4", "sf", "df"]
                .iter()
                .any(|s| name.ends_with(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root;

    #[test]
    fn symbols_go_to_their_crates() {
        let cases = [
            ("wasmi::engine::Engine::new", Group::Wasmi, "wasmi"),
            (
                "<wasmi_ir::op::Op as wasmi_ir::encode::Encode>::encode",
                Group::Wasmi,
                "wasmi_ir",
            ),
            (
                "wasmparser::binary_reader::BinaryReader::visit_operator",
                Group::Wasmi,
                "wasmparser",
            ),
            ("<&T as core::fmt::Debug>::fmt", Group::CoreAlloc, "core"),
            ("<char>::escape_debug_ext", Group::CoreAlloc, "core"),
            (
                "<F as wasmi::func::into_func::IntoFunc<T,(Caller<T>,),R>>::into_func",
                Group::Wasmi,
                "wasmi",
            ),
            (
                "core::ptr::drop_in_place<smoltcp::iface::Interface>",
                Group::Smoltcp,
                "smoltcp",
            ),
            ("sha2::sha512::compress512", Group::Crypto, "sha2"),
            (
                "tern_fw_mps2_an386::__cortex_m_rt_main",
                Group::Tern,
                "tern_fw_mps2_an386",
            ),
            ("__aeabi_memcpy4", Group::CoreAlloc, "(C runtime)"),
            ("__divmoddi4", Group::CoreAlloc, "(C runtime)"),
            ("memcmp", Group::CoreAlloc, "(C runtime)"),
            (
                "<embedded_alloc::llff::Heap as core::alloc::global::GlobalAlloc>::alloc",
                Group::Other,
                "embedded_alloc",
            ),
            ("_defmt_write", Group::Other, "defmt"),
            ("__INTERRUPTS", Group::Other, "cortex_m_rt"),
            ("OUTLINED_FUNCTION_3", Group::Outlined, ""),
        ];
        for (name, group, krate) in cases {
            assert_eq!(group_of(name), (group, krate.to_string()), "{name}");
        }
    }

    #[test]
    fn names_are_demangled_without_hashes() {
        assert_eq!(
            demangle("_ZN5wasmi6engine6Engine3new17h0123456789abcdefE"),
            "wasmi::engine::Engine::new"
        );
        assert_eq!(demangle("memcpy"), "memcpy");
    }

    /// On a real firmware build, when there is one: the sections add up and the heap
    /// is found; the flash image starts at the vector table.
    #[test]
    fn the_firmware_footprint_adds_up() {
        let elf = root().join("target/firmware/thumbv7em-none-eabihf/release/tern-fw-mps2-an386");
        let Ok(bytes) = std::fs::read(&elf) else {
            eprintln!("SKIPPED: no firmware build at {}", elf.display());
            return;
        };
        let footprint = Footprint::of(&bytes).expect("parsed");
        assert!(footprint.section(".text") > 0);
        assert!(footprint.heap.is_some(), "{footprint:?}");
        let report = footprint.report("fw", "qemu-mps2-an386", 262_144);
        assert!(report.contains("budget 512 KiB"), "{report}");
        let (base, image) = crate::device::flash_image(&bytes, 0, 0x0030_0000).expect("image");
        assert_eq!(base, 0);
        let flash = footprint.section(".vector_table")
            + footprint.section(".text")
            + footprint.section(".rodata")
            + footprint.section(".data");
        assert!(image.len() as u64 >= flash, "{} < {flash}", image.len());
        // The reset vector points into the image.
        let reset = u32::from_le_bytes(image[4..8].try_into().expect("4 bytes"));
        assert!((reset as usize) < image.len());
    }
}
