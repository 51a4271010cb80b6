//! Linear memory in a buffer the board sets aside, instead of on the heap.
//!
//! wasmi keeps a module's own linear memory in a `Vec` that doubles and moves as it
//! grows, so on a device the heap must hold about twice the memory limit (the old and
//! new blocks at once, and the freed ones below: measured by the QEMU test's `fill`
//! fixture). A board that gives the engine a [`StaticMemory`] instead gets the memory
//! limit once, in one place: before loading, [`import_defined_memory`] rewrites the
//! module so that its one defined memory becomes an import of [`MODULE`]`.`[`NAME`]
//! with the same type (same index, so every instruction, data segment and export
//! still names it), and each instance is given a memory over the board's buffer. The
//! rewritten module is validated like any other.

use alloc::vec::Vec;

use tern_core::Error;
use wasmi::MemoryType;

/// A wasm page (the custom-page-sizes proposal is not among the board's features).
const PAGE: usize = 65_536;

/// The import module of the memory a board provides (never offered to components:
/// only the rewrite adds it).
pub const MODULE: &str = "tern:internal";
/// The import name of that memory.
pub const NAME: &str = "linear-memory";

/// One buffer for the linear memory of one instance at a time.
///
/// A board implements it over memory it sets aside at start-up. The engine takes the
/// buffer when it instantiates and gives it back once the instance, and with it
/// every reference into the buffer, is gone.
pub trait StaticMemory: Sync {
    /// The buffer, or `None` while an instance holds it.
    fn take(&self) -> Option<&'static mut [u8]>;
    /// The instance that took the buffer has been dropped.
    fn give_back(&self);
}

/// Gives the buffer back when dropped: declared after the store that uses the buffer,
/// so that the store is dropped first.
pub(crate) struct Lease(pub(crate) &'static dyn StaticMemory);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

/// Splits the board's buffer between the linear memories of one instance: a composed
/// app has one per component, each of which must stay its own (a component reaches
/// another's data only through the canonical ABI's copy). Each memory gets its
/// minimum, then the pages left are shared out equally (the first ones get one more
/// while some remain), never past a memory's declared maximum; the shares follow
/// each other in `types`' order, each on a page boundary. A single memory gets the
/// whole buffer, as before composition.
///
/// # Errors
/// [`Error::MemoryLimit`] when the minimums together do not fit in the buffer: the
/// board's `limits.memory-bytes` is too small for this app.
pub(crate) fn split(
    buffer: &'static mut [u8],
    types: &[MemoryType],
) -> Result<Vec<&'static mut [u8]>, Error> {
    let too_small = Error::MemoryLimit {
        limit_bytes: u32::try_from(buffer.len()).unwrap_or(u32::MAX),
    };
    if let [_] = types {
        return Ok(alloc::vec![buffer]);
    }
    let total = buffer.len() / PAGE;
    let pages = |p: u64| usize::try_from(p).unwrap_or(usize::MAX);
    let mut shares: Vec<usize> = types.iter().map(|t| pages(t.minimum())).collect();
    let needed = shares.iter().try_fold(0usize, |a, &b| a.checked_add(b));
    let mut left = match needed {
        Some(n) if n <= total => total - n,
        _ => return Err(too_small),
    };
    // One page at a time, round robin, to every memory still below its maximum.
    while left > 0 {
        let mut gave = false;
        for (share, ty) in shares.iter_mut().zip(types) {
            if left > 0 && ty.maximum().is_none_or(|m| (*share as u64) < m) {
                *share += 1;
                left -= 1;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    let mut out = Vec::with_capacity(types.len());
    let mut rest = buffer;
    for share in shares {
        let (mine, after) = rest.split_at_mut(share * PAGE);
        out.push(mine);
        rest = after;
    }
    Ok(out)
}

/// Where a section may appear, in the order the binary format requires (custom
/// sections anywhere).
fn rank(id: u8) -> u8 {
    match id {
        1..=5 => id,
        13 => 6, // tag, between memory and global
        6..=9 => id + 1,
        12 => 11, // data count, before code
        10 | 11 => id + 2,
        _ => 0,
    }
}

/// A LEB128 `u32` at `*pos`.
fn leb(bytes: &[u8], pos: &mut usize) -> Option<u32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn push_leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    push_leb(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

fn push_section(out: &mut Vec<u8>, id: u8, payload: &[u8]) {
    out.push(id);
    push_leb(out, payload.len() as u32);
    out.extend_from_slice(payload);
}

/// `wasm` with its one defined memory turned into an import of [`MODULE`]`.`[`NAME`],
/// or `None` if there is nothing to rewrite: no memory section, more than one defined
/// memory, or bytes this walk cannot follow (wasmi's validation of the original then
/// says what is wrong with them).
pub fn import_defined_memory(wasm: &[u8]) -> Option<Vec<u8>> {
    if wasm.get(..4)? != b"\0asm" || wasm.len() < 8 {
        return None;
    }
    // (id, payload) of every section, in order.
    let mut sections = Vec::new();
    let mut pos = 8;
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let len = leb(wasm, &mut pos)? as usize;
        let payload = wasm.get(pos..pos.checked_add(len)?)?;
        pos += len;
        sections.push((id, payload));
    }
    let memtype = {
        let (_, payload) = sections.iter().find(|(id, _)| *id == 5)?;
        let mut p = 0;
        if leb(payload, &mut p)? != 1 {
            return None;
        }
        &payload[p..]
    };
    let mut entry = Vec::new();
    push_name(&mut entry, MODULE);
    push_name(&mut entry, NAME);
    entry.push(0x02);
    entry.extend_from_slice(memtype);

    let mut out = Vec::with_capacity(wasm.len() + entry.len() + 8);
    out.extend_from_slice(&wasm[..8]);
    let mut imported = false;
    for &(id, payload) in &sections {
        if !imported && id != 0 && rank(id) > rank(2) {
            // No import section: a new one goes before the first section after it.
            let mut imports = Vec::new();
            push_leb(&mut imports, 1);
            imports.extend_from_slice(&entry);
            push_section(&mut out, 2, &imports);
            imported = true;
        }
        match id {
            2 => {
                let mut p = 0;
                let count = leb(payload, &mut p)?;
                let mut imports = Vec::with_capacity(payload.len() + entry.len() + 5);
                // Appended last: imported memories are numbered before defined ones
                // and in import order, so the memory keeps its index.
                push_leb(&mut imports, count.checked_add(1)?);
                imports.extend_from_slice(&payload[p..]);
                imports.extend_from_slice(&entry);
                push_section(&mut out, 2, &imports);
                imported = true;
            }
            5 => {}
            _ => push_section(&mut out, id, payload),
        }
    }
    Some(out)
}

/// How many tables and memories `wasm` defines (its table and memory sections'
/// counts), or `None` for bytes this walk cannot follow. A store holding instances of
/// several modules (a device image) allows exactly as many.
pub(crate) fn defined_tables_and_memories(wasm: &[u8]) -> Option<(usize, usize)> {
    if wasm.get(..4)? != b"\0asm" || wasm.len() < 8 {
        return None;
    }
    let (mut tables, mut memories) = (0, 0);
    let mut pos = 8;
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let len = leb(wasm, &mut pos)? as usize;
        let payload = wasm.get(pos..pos.checked_add(len)?)?;
        pos += len;
        let mut p = 0;
        match id {
            4 => tables += leb(payload, &mut p)? as usize,
            5 => memories += leb(payload, &mut p)? as usize,
            _ => {}
        }
    }
    Some((tables, memories))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer of `pages` that lives as long as the test binary.
    fn buffer(pages: usize) -> &'static mut [u8] {
        alloc::boxed::Box::leak(alloc::vec![0u8; pages * PAGE].into_boxed_slice())
    }

    fn ty(min: u32, max: Option<u32>) -> MemoryType {
        MemoryType::new(min, max)
    }

    fn pages(shares: &[&'static mut [u8]]) -> Vec<usize> {
        shares.iter().map(|s| s.len() / PAGE).collect()
    }

    #[test]
    fn one_memory_gets_the_whole_buffer() {
        let shares = split(buffer(4), &[ty(1, None)]).unwrap();
        assert_eq!(pages(&shares), [4]);
    }

    #[test]
    fn memories_get_their_minimums_then_equal_shares_of_the_rest() {
        assert_eq!(
            pages(&split(buffer(4), &[ty(1, None), ty(1, None)]).unwrap()),
            [2, 2]
        );
        assert_eq!(
            pages(&split(buffer(5), &[ty(1, None), ty(2, None)]).unwrap()),
            [2, 3]
        );
        assert_eq!(
            pages(&split(buffer(6), &[ty(3, None), ty(1, None)]).unwrap()),
            [4, 2]
        );
        // A declared maximum is kept: its pages go to the others.
        assert_eq!(
            pages(&split(buffer(6), &[ty(1, Some(1)), ty(1, None)]).unwrap()),
            [1, 5]
        );
    }

    #[test]
    fn the_shares_are_consecutive_and_do_not_overlap() {
        let whole = buffer(5);
        let (start, end) = (
            whole.as_ptr() as usize,
            whole.as_ptr() as usize + whole.len(),
        );
        let shares = split(whole, &[ty(1, None), ty(1, None), ty(1, None)]).unwrap();
        let mut at = start;
        for share in &shares {
            assert_eq!(share.as_ptr() as usize, at);
            at += share.len();
        }
        assert!(at <= end);
    }

    #[test]
    fn minimums_beyond_the_buffer_are_a_memory_limit() {
        let err = split(buffer(2), &[ty(2, None), ty(1, None)]).unwrap_err();
        assert_eq!(
            err,
            Error::MemoryLimit {
                limit_bytes: 2 * PAGE as u32
            }
        );
    }

    /// A module: type section, memory section (one memory, min 1 page), export of it.
    fn module(imports: bool) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // type section: one type () -> ()
        push_section(&mut m, 1, &[1, 0x60, 0, 0]);
        if imports {
            // import section: one function import "a"."b" of type 0
            push_section(&mut m, 2, &[1, 1, b'a', 1, b'b', 0x00, 0]);
        }
        // memory section: one memory, flags 1 (has max), min 1, max 4
        push_section(&mut m, 5, &[1, 0x01, 1, 4]);
        // export section: "memory" -> memory 0
        let mut e = alloc::vec![1];
        push_name(&mut e, "memory");
        e.extend_from_slice(&[0x02, 0]);
        push_section(&mut m, 7, &e);
        m
    }

    fn expected_entry() -> Vec<u8> {
        let mut entry = Vec::new();
        push_name(&mut entry, MODULE);
        push_name(&mut entry, NAME);
        entry.extend_from_slice(&[0x02, 0x01, 1, 4]);
        entry
    }

    #[test]
    fn a_new_import_section_goes_after_the_types() {
        let out = import_defined_memory(&module(false)).unwrap();
        let mut want = b"\0asm\x01\0\0\0".to_vec();
        push_section(&mut want, 1, &[1, 0x60, 0, 0]);
        let mut imports = alloc::vec![1];
        imports.extend_from_slice(&expected_entry());
        push_section(&mut want, 2, &imports);
        let mut e = alloc::vec![1];
        push_name(&mut e, "memory");
        e.extend_from_slice(&[0x02, 0]);
        push_section(&mut want, 7, &e);
        assert_eq!(out, want);
    }

    #[test]
    fn the_memory_is_appended_to_existing_imports() {
        let out = import_defined_memory(&module(true)).unwrap();
        let mut imports = alloc::vec![2, 1, b'a', 1, b'b', 0x00, 0];
        imports.extend_from_slice(&expected_entry());
        let mut section = Vec::new();
        push_section(&mut section, 2, &imports);
        assert!(out.windows(section.len()).any(|w| w == section.as_slice()));
        assert!(
            !out.windows(5).any(|w| w == [5, 4, 1, 0x01, 1]),
            "no memory section"
        );
    }

    #[test]
    fn nothing_to_rewrite_is_said_so() {
        // No memory section.
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        push_section(&mut m, 1, &[1, 0x60, 0, 0]);
        assert_eq!(import_defined_memory(&m), None);
        // Two memories.
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        push_section(&mut m, 5, &[2, 0, 1, 0, 1]);
        assert_eq!(import_defined_memory(&m), None);
        // Not wasm, truncated, a section running past the end.
        assert_eq!(import_defined_memory(b"\x7fELF\x01\0\0\0"), None);
        assert_eq!(import_defined_memory(b"\0as"), None);
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend_from_slice(&[5, 9, 1, 0]);
        assert_eq!(import_defined_memory(&m), None);
    }

    #[test]
    fn leb_round_trips_and_refuses_overlong() {
        for v in [0u32, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut b = Vec::new();
            push_leb(&mut b, v);
            let mut p = 0;
            assert_eq!(leb(&b, &mut p), Some(v));
            assert_eq!(p, b.len());
        }
        let mut p = 0;
        assert_eq!(leb(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut p), None);
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic; a rewrite keeps the header and grows
        /// by no more than the new import (plus a new section header and counts).
        #[test]
        fn any_bytes_are_rewritten_or_left_alone(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..256), with_memory in proptest::bool::ANY) {
            let mut wasm = b"\0asm\x01\0\0\0".to_vec();
            if with_memory {
                push_section(&mut wasm, 5, &[1, 0, 1]);
            }
            wasm.extend_from_slice(&tail);
            if let Some(out) = import_defined_memory(&wasm) {
                proptest::prop_assert_eq!(&out[..8], &wasm[..8]);
                proptest::prop_assert!(out.len() <= wasm.len() + expected_entry().len() + 16);
            }
        }
    }
}
