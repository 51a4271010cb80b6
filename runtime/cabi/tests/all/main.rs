//! tern-cabi's tests: layouts, the spec's own test vectors, round trips, every
//! rejection, and random types with random values.
//!
//! One test binary (Wasmtime's `tests/all` layout), so the suite links once.

mod layout;
mod props;
mod reject;
mod roundtrip;
mod spec_vectors;
mod tern_edge;

use tern_cabi::{
    AbiError, FlatVal, FuncAbi, FuncType, Memory, ResultAbi, TypeId, Types, TypesBuilder, Val,
    check_range,
};

/// A linear memory in a `Vec<u8>` with a bump `cabi_realloc` that records its calls.
pub struct TestMem {
    /// The memory.
    pub bytes: Vec<u8>,
    /// Where the next allocation starts.
    pub next: u32,
    /// Every `realloc` call: `[old_ptr, old_size, align, new_size]`.
    pub reallocs: Vec<[u32; 4]>,
    /// Make `realloc` return a pointer one byte past an aligned one.
    pub misalign: bool,
}

impl TestMem {
    /// `size` bytes of memory; allocations start at `start`.
    pub fn new(size: usize, start: u32) -> TestMem {
        TestMem {
            bytes: vec![0; size],
            next: start,
            reallocs: Vec::new(),
            misalign: false,
        }
    }

    /// Memory holding `bytes` from address 0, allocations after them.
    pub fn with_bytes(bytes: &[u8]) -> TestMem {
        let mut mem = TestMem::new(bytes.len() + 4096, bytes.len() as u32);
        mem.bytes[..bytes.len()].copy_from_slice(bytes);
        mem
    }

    /// Writes `bytes` at `at`.
    pub fn put(&mut self, at: u32, bytes: &[u8]) {
        self.bytes[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    }
}

impl Memory for TestMem {
    type Error = AbiError;

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&self, offset: u32, buf: &mut [u8]) -> Result<(), AbiError> {
        let range = check_range(offset, buf.len(), self.bytes.len())?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), AbiError> {
        let range = check_range(offset, bytes.len(), self.bytes.len())?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }

    fn realloc(
        &mut self,
        old_ptr: u32,
        old_size: u32,
        align: u32,
        new_size: u32,
    ) -> Result<u32, AbiError> {
        self.reallocs.push([old_ptr, old_size, align, new_size]);
        let ptr = self.next.next_multiple_of(align) + u32::from(self.misalign);
        let range = check_range(ptr, new_size as usize, self.bytes.len())?;
        if old_ptr != 0 {
            let keep = old_size.min(new_size) as usize;
            self.bytes
                .copy_within(old_ptr as usize..old_ptr as usize + keep, ptr as usize);
        }
        self.next = range.end as u32;
        Ok(ptr)
    }
}

/// Builds a table with `f`, which returns the type under test.
pub fn build(f: impl FnOnce(&mut TypesBuilder) -> TypeId) -> (Types, TypeId) {
    let mut b = TypesBuilder::new();
    let id = f(&mut b);
    (b.finish().expect("valid types"), id)
}

/// The ABI of an import `func(x: ty)` with no result.
pub fn param_abi(types: &Types, ty: TypeId) -> FuncAbi {
    FuncAbi::new(
        types,
        &FuncType {
            params: vec![ty],
            result: None,
        },
    )
    .expect("valid function")
}

/// Lifts one value of `ty` from the core arguments `flat`, as a host function
/// `func(x: ty)` called by the guest would.
pub fn lift_one(
    types: &Types,
    ty: TypeId,
    flat: &[FlatVal],
    mem: &mut TestMem,
) -> Result<Val, AbiError> {
    let mut out = Vec::new();
    param_abi(types, ty).lift_params(types, flat, mem, &mut out)?;
    assert_eq!(out.len(), 1);
    Ok(out.pop().expect("one value"))
}

/// Core `i32` arguments from unsigned values.
pub fn i32s(vals: &[u32]) -> Vec<FlatVal> {
    vals.iter().map(|v| FlatVal::I32(*v as i32)).collect()
}

/// Equality with floats compared by bits (NaNs included).
pub fn same(a: &Val, b: &Val) -> bool {
    fn all(a: &[Val], b: &[Val]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
    }
    fn boxed(a: &Option<Box<Val>>, b: &Option<Box<Val>>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        }
    }
    match (a, b) {
        (Val::F32(a), Val::F32(b)) => a.to_bits() == b.to_bits(),
        (Val::F64(a), Val::F64(b)) => a.to_bits() == b.to_bits(),
        (Val::List(a), Val::List(b))
        | (Val::Record(a), Val::Record(b))
        | (Val::Tuple(a), Val::Tuple(b)) => all(a, b),
        (
            Val::Variant {
                case: c,
                payload: p,
            },
            Val::Variant {
                case: d,
                payload: q,
            },
        ) => c == d && boxed(p, q),
        (Val::Option(a), Val::Option(b)) => boxed(a, b),
        (Val::Result(Ok(a)), Val::Result(Ok(b))) | (Val::Result(Err(a)), Val::Result(Err(b))) => {
            boxed(a, b)
        }
        _ => a == b,
    }
}

/// Sends `vals` of `params` through every path a call takes, and checks each comes
/// back the same:
///
/// 1. export `lower_params`, then import `lift_params` of those core values (flat, or
///    through the parameter area in memory);
/// 2. for each value as a result: import `lower_result` (flat, or into a return area),
///    then export `lift_result` of what the guest would return;
/// 3. `store` then `load` at an aligned address.
pub fn round_trip(types: &Types, params: &[TypeId], vals: &[Val]) -> Result<(), String> {
    let mut mem = TestMem::new(1 << 20, 16);
    let func = FuncAbi::new(
        types,
        &FuncType {
            params: params.to_vec(),
            result: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let flat = func
        .lower_params(types, vals, &mut mem)
        .map_err(|e| format!("lower_params: {e}"))?;
    let mut lifted = Vec::new();
    func.lift_params(types, &flat, &mut mem, &mut lifted)
        .map_err(|e| format!("lift_params: {e}"))?;
    if !all_same(&lifted, vals) {
        return Err(format!("parameters: {vals:?} came back as {lifted:?}"));
    }

    for (ty, val) in params.iter().zip(vals) {
        let func = FuncAbi::new(
            types,
            &FuncType {
                params: vec![],
                result: Some(*ty),
            },
        )
        .map_err(|e| e.to_string())?;
        let retptr = mem.next.next_multiple_of(8);
        mem.next = retptr + types.size(*ty).expect("size");
        let args = [FlatVal::I32(retptr as i32)];
        let import_args: &[FlatVal] = if func.result_abi() == ResultAbi::Memory {
            &args
        } else {
            &[]
        };
        let flat = func
            .lower_result(types, Some(val), import_args, &mut mem)
            .map_err(|e| format!("lower_result: {e}"))?;
        let results: Vec<FlatVal> = match (func.result_abi(), flat) {
            (ResultAbi::Flat(_), Some(flat)) => vec![flat],
            (ResultAbi::Memory, None) => args.to_vec(),
            other => return Err(format!("lower_result gave {other:?}")),
        };
        let back = func
            .lift_result(types, &results, &mut mem)
            .map_err(|e| format!("lift_result: {e}"))?;
        match back {
            Some(back) if same(&back, val) => {}
            other => return Err(format!("result: {val:?} came back as {other:?}")),
        }

        let at = mem.next.next_multiple_of(8);
        mem.next = at + types.size(*ty).expect("size");
        types
            .store(*ty, val, at, &mut mem)
            .map_err(|e| format!("store: {e}"))?;
        let back = types
            .load(*ty, at, &mut mem)
            .map_err(|e| format!("load: {e}"))?;
        if !same(&back, val) {
            return Err(format!("memory: {val:?} came back as {back:?}"));
        }
    }
    Ok(())
}

fn all_same(a: &[Val], b: &[Val]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
}
