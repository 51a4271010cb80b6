//! `cargo xtask bench --device --profile`: where the device's instructions go.
//!
//! QEMU logs the address of every guest instruction it executes (`-singlestep -d
//! exec,nochain`, see `tern_qemu::QemuOptions::exec_trace`) into a FIFO; this module
//! reads it as it is written, keeps only the instructions between the entry of the
//! engine's `on_event` and the entry of the agent's `result_line` (the window the
//! `-icount` figure times), and counts them by the ELF function they fall in.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use object::{Object, ObjectSymbol, SymbolKind};

use crate::size::{crate_of, demangle};

/// The function a window opens at: the engine's `on_event`, called once per event.
const OPEN: &str = "as tern_core::engine::Instance>::on_event";
/// The function a window closes at: the agent logs the result right after the call.
const CLOSE: &str = "tern_device::agent::result_line";

/// The firmware's functions, sorted by address.
struct Symbols {
    /// (start, end, demangled name), Thumb bit cleared.
    funcs: Vec<(u32, u32, String)>,
}

impl Symbols {
    fn of(elf: &[u8]) -> Result<Symbols, String> {
        let file = object::File::parse(elf).map_err(|e| format!("ELF: {e}"))?;
        let mut funcs: Vec<(u32, u32, String)> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
            .filter_map(|s| {
                let start = u32::try_from(s.address()).ok()? & !1;
                let end = start.checked_add(u32::try_from(s.size()).ok()?)?;
                Some((start, end, demangle(s.name().ok()?)))
            })
            .collect();
        funcs.sort_by_key(|f| f.0);
        funcs.dedup_by_key(|f| f.0);
        Ok(Symbols { funcs })
    }

    /// The index of the function holding `pc`.
    fn at(&self, pc: u32) -> Option<usize> {
        let i = self.funcs.partition_point(|f| f.0 <= pc).checked_sub(1)?;
        (pc < self.funcs[i].1).then_some(i)
    }

    /// The start address of the one function whose name contains `part`.
    fn start_of(&self, part: &str) -> Result<u32, String> {
        let found: Vec<_> = self.funcs.iter().filter(|f| f.2.contains(part)).collect();
        match found[..] {
            [one] => Ok(one.0),
            [] => Err(format!(
                "no function named like `{part}` in the firmware (inlined or renamed?)"
            )),
            _ => Err(format!("{} functions are named like `{part}`", found.len())),
        }
    }
}

/// Instructions executed inside the windows, by function.
pub struct Profile {
    symbols: Symbols,
    /// Counts by index into `symbols.funcs`; `usize::MAX` for addresses outside them.
    counts: HashMap<usize, u64>,
    /// Windows seen (events).
    pub windows: u64,
    /// Instructions inside windows after the first.
    pub inside: u64,
    /// Instructions logged in all.
    pub total: u64,
    /// Instructions in each window, in order.
    pub per_window: Vec<u64>,
}

/// Reads QEMU's exec log (`Trace 0: 0x… [cs_base/pc/flags/cflags] symbol`) from
/// `trace` to its end.
pub fn collect(elf: &Path, trace: impl std::io::Read) -> Result<Profile, String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let symbols = Symbols::of(&bytes)?;
    let open = symbols.start_of(OPEN)?;
    let close = symbols.start_of(CLOSE)?;
    let mut counts: HashMap<usize, u64> = HashMap::new();
    let (mut windows, mut inside, mut total) = (0u64, 0u64, 0u64);
    let mut in_window = false;
    let mut per_window = Vec::new();
    let mut line = String::new();
    let mut reader = BufReader::with_capacity(1 << 20, trace);
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading QEMU's exec trace: {e}")),
        }
        let Some(pc) = pc_of(&line) else { continue };
        total += 1;
        if pc == open && !in_window {
            in_window = true;
            windows += 1;
            per_window.push(0);
        } else if pc == close {
            in_window = false;
        }
        if in_window {
            if let Some(w) = per_window.last_mut() {
                *w += 1;
            }
            // The first event also translates the functions it reaches (wasmi
            // translates lazily): counted above, split below only for the rest.
            if windows == 1 {
                continue;
            }
            inside += 1;
            *counts
                .entry(symbols.at(pc).unwrap_or(usize::MAX))
                .or_default() += 1;
        }
    }
    Ok(Profile {
        symbols,
        counts,
        windows,
        inside,
        total,
        per_window,
    })
}

/// The guest PC of one `-d exec` line: the second field between the brackets.
fn pc_of(line: &str) -> Option<u32> {
    let fields = &line[line.find('[')? + 1..];
    let pc = fields.split('/').nth(1)?;
    u32::from_str_radix(pc, 16).ok()
}

/// What a function's instructions are spent on, as the report groups them.
fn category(name: &str) -> &'static str {
    let krate = crate_of(name);
    match krate.as_str() {
        _ if name.contains("engine::executor") => "wasmi: interpreting the guest",
        k if k.starts_with("wasmi") || k == "wasmparser" => "wasmi: calls, memory, fuel",
        "tern_wasmi" => "tern-wasmi: host-call shims, canonical ABI",
        "tern_core" => "tern-core: host functions, kv",
        "tern_device" if name.contains("heap") => "allocator",
        "linked_list_allocator" | "embedded_alloc" | "talc" => "allocator",
        "alloc" => "alloc (Vec, String, BTreeMap)",
        "(C runtime)" => "memcpy, memset, compiler builtins",
        "core" if name.contains("fmt") => "core::fmt",
        "core" => "core (other)",
        _ if name.starts_with("OUTLINED_FUNCTION") => "outlined code (shared, no owner)",
        _ => "other",
    }
}

impl Profile {
    /// The report: instructions per event by category, then the top functions.
    pub fn report(&self, top: usize) -> String {
        let steady = self.windows.saturating_sub(1).max(1);
        let per = |n: u64| n as f64 / steady as f64;
        let name = |i: usize| -> &str {
            self.symbols
                .funcs
                .get(i)
                .map_or("(outside any function)", |f| f.2.as_str())
        };
        let mut out = format!(
            "{} events; after the first, {:.1} k instructions per event in on-event, split \
             below ({} instructions traced in all)\n",
            self.windows,
            per(self.inside) / 1e3,
            self.total
        );
        out += &format!(
            "  per event (k): {}\n",
            self.per_window
                .iter()
                .map(|n| format!("{:.1}", *n as f64 / 1e3))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut by_category: HashMap<&str, u64> = HashMap::new();
        for (&i, &n) in &self.counts {
            *by_category.entry(category(name(i))).or_default() += n;
        }
        let mut cats: Vec<_> = by_category.into_iter().collect();
        cats.sort_by_key(|c| std::cmp::Reverse(c.1));
        for (cat, n) in cats {
            out += &format!(
                "  {:<46} {:>9.1} k  {:>5.1} %\n",
                cat,
                per(n) / 1e3,
                100.0 * n as f64 / self.inside.max(1) as f64
            );
        }
        out += &format!("  top {top} functions (instructions per event):\n");
        let mut funcs: Vec<_> = self.counts.iter().collect();
        funcs.sort_by_key(|f| std::cmp::Reverse(*f.1));
        for (&i, &n) in funcs.into_iter().take(top) {
            let mut shown = name(i).to_string();
            if shown.len() > 110 {
                shown.truncate(110);
                shown += "…";
            }
            out += &format!("  {:>9.1} k  {shown}\n", per(n) / 1e3);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pc_is_the_second_bracketed_field() {
        let line = "Trace 0: 0x7faab0000240 [00800408/00013856/00000110/ff000201] DefaultPreInit\n";
        assert_eq!(pc_of(line), Some(0x13856));
        assert_eq!(
            pc_of("Linking TBs 0x1 [00000400] index 0 -> 0x2 [00000402]"),
            None
        );
        assert_eq!(pc_of("no brackets"), None);
    }
}
