//! The canonical ABI on wasmi, driven by a world's description.
//!
//! `tern-cabi` does the lifting and lowering; this module gives it wasmi's linear
//! memory and `cabi_realloc` ([`GuestMemory`]), turns the description of each
//! imported function into one wasmi host function ([`host_func`]) and calls
//! exports through their canonical calling convention ([`Export::call`]). Nothing
//! here knows a WIT type: the world's description says what crosses.

use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use tern_cabi::{FlatType, FlatVal, FuncAbi, Types, Val};
use tern_core::edge::EdgeFn;
use wasmi::{AsContextMut, Caller, Func, FuncType, StoreContextMut, TypedFunc};
use wasmi_core::{F32, F64};

use crate::StoreData;

/// The guest broke the canonical ABI (a bad pointer, invalid UTF-8, a bad
/// discriminant), or a value did not have its world's shape.
#[derive(Debug, Clone)]
pub struct AbiError(pub tern_cabi::AbiError);

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl wasmi::errors::HostError for AbiError {}

/// A host call's value did not have the world's shape (see `tern_core::edge`).
#[derive(Debug, Clone)]
pub struct ShapeError(pub tern_core::edge::ShapeError);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl wasmi::errors::HostError for ShapeError {}

/// A wasmi error that `tern-cabi` can raise.
pub(crate) struct Trap(pub wasmi::Error);

impl From<tern_cabi::AbiError> for Trap {
    fn from(e: tern_cabi::AbiError) -> Trap {
        Trap(wasmi::Error::host(AbiError(e)))
    }
}

impl From<wasmi::Error> for Trap {
    fn from(e: wasmi::Error) -> Trap {
        Trap(e)
    }
}

impl From<Trap> for wasmi::Error {
    fn from(t: Trap) -> wasmi::Error {
        t.0
    }
}

/// `cabi_realloc`'s core type.
pub(crate) type Realloc = TypedFunc<(i32, i32, i32, i32), i32>;

/// A linear memory and its allocator, as `tern-cabi` reads and writes them: the
/// canonical options `memory` and `realloc` of one lift or lower. One concrete type
/// for host calls and export calls alike, so `tern-cabi`'s code is in the firmware
/// once.
pub(crate) struct GuestMemory<'a> {
    ctx: StoreContextMut<'a, StoreData>,
    memory: Option<wasmi::Memory>,
    realloc: Option<Realloc>,
    /// The instance's handle table (an index into the store's).
    table: u32,
}

impl<'a> GuestMemory<'a> {
    /// `memory` and `realloc` in `ctx`'s store, handles in the store's `table`.
    pub(crate) fn new(
        ctx: StoreContextMut<'a, StoreData>,
        memory: Option<wasmi::Memory>,
        realloc: Option<Realloc>,
        table: u32,
    ) -> GuestMemory<'a> {
        GuestMemory {
            ctx,
            memory,
            realloc,
            table,
        }
    }

    /// The memory and allocator a core module's component exports (`memory`,
    /// `cabi_realloc`), kept in the store's data once instantiated; the store's one
    /// handle table.
    fn of_store(ctx: StoreContextMut<'a, StoreData>) -> GuestMemory<'a> {
        let (memory, realloc) = (ctx.data().memory, ctx.data().realloc);
        GuestMemory::new(ctx, memory, realloc, 0)
    }

    fn handles(&mut self) -> Result<&mut crate::handles::HandleTable, Trap> {
        self.ctx
            .data_mut()
            .handles
            .get_mut(self.table as usize)
            .ok_or_else(|| Trap(wasmi::Error::new("the instance has no handle table")))
    }

    fn memory(&self) -> Result<wasmi::Memory, Trap> {
        self.memory.ok_or_else(|| {
            Trap(wasmi::Error::new(
                "the component has no memory for this call: it cannot pass strings or lists",
            ))
        })
    }
}

impl tern_cabi::Memory for GuestMemory<'_> {
    type Error = Trap;

    fn size(&self) -> u64 {
        match self.memory {
            Some(m) => m.data_size(&self.ctx) as u64,
            None => 0,
        }
    }

    fn read(&self, offset: u32, buf: &mut [u8]) -> Result<(), Trap> {
        self.memory()?
            .read(&self.ctx, offset as usize, buf)
            .map_err(|e| Trap(e.into()))
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Trap> {
        self.memory()?
            .write(&mut self.ctx, offset as usize, bytes)
            .map_err(|e| Trap(e.into()))
    }

    fn realloc(
        &mut self,
        old_ptr: u32,
        old_size: u32,
        align: u32,
        new_size: u32,
    ) -> Result<u32, Trap> {
        let realloc = self.realloc.ok_or_else(|| {
            Trap(wasmi::Error::new(
                "the component has no cabi_realloc for this call: it cannot receive strings or lists",
            ))
        })?;
        let args = (
            old_ptr as i32,
            old_size as i32,
            align as i32,
            new_size as i32,
        );
        Ok(realloc.call(&mut self.ctx, args)? as u32)
    }

    fn lift_own(&mut self, resource: tern_cabi::ResourceId, index: u32) -> Result<u32, Trap> {
        Ok(self.handles()?.remove_own(resource, index)?)
    }

    fn lift_borrow(&mut self, resource: tern_cabi::ResourceId, index: u32) -> Result<u32, Trap> {
        Ok(self.handles()?.rep(resource, index)?)
    }

    fn lower_own(&mut self, resource: tern_cabi::ResourceId, rep: u32) -> Result<u32, Trap> {
        Ok(self.handles()?.insert_own(resource, rep)?)
    }

    fn lower_borrow(&mut self, _resource: tern_cabi::ResourceId, _rep: u32) -> Result<u32, Trap> {
        // A host passes no borrowed handles to a component: a world or image whose
        // exports take handles is refused before it runs.
        Err(Trap(wasmi::Error::new(
            "a borrowed handle cannot be passed to a component",
        )))
    }
}

fn flat_of(v: &wasmi::Val) -> FlatVal {
    match v {
        wasmi::Val::I32(x) => FlatVal::I32(*x),
        wasmi::Val::I64(x) => FlatVal::I64(*x),
        wasmi::Val::F32(x) => FlatVal::F32(f32::from_bits(x.to_bits())),
        wasmi::Val::F64(x) => FlatVal::F64(f64::from_bits(x.to_bits())),
        // The core signature has no reference or vector types (checked at load), so
        // wasmi never passes one; an i32 of 0 keeps the types honest if it did.
        _ => FlatVal::I32(0),
    }
}

fn wasmi_of(v: FlatVal) -> wasmi::Val {
    match v {
        FlatVal::I32(x) => wasmi::Val::I32(x),
        FlatVal::I64(x) => wasmi::Val::I64(x),
        FlatVal::F32(x) => wasmi::Val::F32(F32::from_bits(x.to_bits())),
        FlatVal::F64(x) => wasmi::Val::F64(F64::from_bits(x.to_bits())),
    }
}

fn val_type(t: FlatType) -> wasmi::ValType {
    match t {
        FlatType::I32 => wasmi::ValType::I32,
        FlatType::I64 => wasmi::ValType::I64,
        FlatType::F32 => wasmi::ValType::F32,
        FlatType::F64 => wasmi::ValType::F64,
    }
}

/// The wasmi type of a core signature.
pub(crate) fn func_type(sig: &tern_cabi::CoreSignature) -> FuncType {
    FuncType::new(
        sig.params.iter().copied().map(val_type),
        sig.results.iter().copied().map(val_type),
    )
}

/// At most `MAX_FLAT_PARAMS` flat parameters, plus a return pointer.
const MAX_FLAT_ARGS: usize = tern_cabi::MAX_FLAT_PARAMS + 1;

/// One imported function: its calling convention and what serves it.
pub(crate) struct HostImport {
    types: Arc<Types>,
    abi: FuncAbi,
    f: EdgeFn,
    /// Whether the result is a scalar (see [`HostImport::new`]).
    scalar_result: bool,
}

/// Where a host call's strings and lists live: the canonical options `memory` and
/// `realloc` of its lowering.
#[derive(Clone, Copy)]
pub(crate) enum MemSource {
    /// A core module's own `memory` and `cabi_realloc`, kept in the store's data
    /// once it is instantiated (the module imports the function before they exist).
    Store,
    /// Given by a device image's `canon lower`, with the lowering instance's handle
    /// table.
    Fixed(Option<wasmi::Memory>, Option<Realloc>, u32),
}

impl MemSource {
    fn of<'a>(self, ctx: StoreContextMut<'a, StoreData>) -> GuestMemory<'a> {
        match self {
            MemSource::Store => GuestMemory::of_store(ctx),
            MemSource::Fixed(memory, realloc, table) => {
                GuestMemory::new(ctx, memory, realloc, table)
            }
        }
    }
}

impl HostImport {
    /// `f`, called by `abi` over `types`.
    pub(crate) fn new(types: Arc<Types>, abi: FuncAbi, f: EdgeFn) -> HostImport {
        let scalar_result = matches!(abi.result_abi(), tern_cabi::ResultAbi::Flat(_))
            && abi
                .result()
                .and_then(|t| types.node(t))
                .is_some_and(|n| n.is_scalar());
        HostImport {
            types,
            abi,
            f,
            scalar_result,
        }
    }

    /// Lifts `flat` by the function's description, calls the host, lowers its result.
    /// One copy, shared by every signature's wrapper (flash on a device).
    #[inline(never)]
    fn invoke(
        &self,
        caller: &mut Caller<'_, StoreData>,
        mem: MemSource,
        flat: &[FlatVal],
    ) -> Result<Option<FlatVal>, wasmi::Error> {
        let shape = |e| wasmi::Error::host(ShapeError(e));
        // A function without parameters has nothing to lift (its core signature,
        // which wasmi checked, says so).
        let result = if self.abi.params().is_empty() {
            caller
                .data_mut()
                .host
                .call(self.f, &mut [])
                .map_err(shape)?
        } else {
            let mut args = Vec::new();
            let mut guest = mem.of(caller.as_context_mut());
            self.abi
                .lift_params(&self.types, flat, &mut guest, &mut args)?;
            caller
                .data_mut()
                .host
                .call(self.f, &mut args)
                .map_err(shape)?
        };
        let mut guest = mem.of(caller.as_context_mut());
        let lowered = self
            .abi
            .lower_result(&self.types, result.as_ref(), flat, &mut guest)?;
        if self.scalar_result {
            // Lowered as a scalar, so it is one: a scalar owns nothing, and
            // forgetting it spares the drop glue's dispatch over every `Val` kind.
            core::mem::forget(result);
        }
        Ok(lowered)
    }
}

fn result_i32(r: Option<FlatVal>) -> Result<i32, wasmi::Error> {
    match r {
        Some(FlatVal::I32(v)) => Ok(v),
        _ => Err(wasmi::Error::new("host result does not have its core type")),
    }
}

fn result_i64(r: Option<FlatVal>) -> Result<i64, wasmi::Error> {
    match r {
        Some(FlatVal::I64(v)) => Ok(v),
        _ => Err(wasmi::Error::new("host result does not have its core type")),
    }
}

/// A typed host function (wasmi's fast path: no per-call allocation) for a core
/// signature of `i32` parameters and no, an `i32` or an `i64` result.
macro_rules! typed_host_func {
    ($store:expr, $imp:expr, $mem:expr, $sig:expr, [$($a:ident),*]) => {{
        let (imp, mem) = ($imp, $mem);
        match $sig.results.as_slice() {
            [] => Func::wrap($store,
                move |mut c: Caller<'_, StoreData>, $($a: i32),*| -> Result<(), wasmi::Error> {
                    imp.invoke(&mut c, mem, &[$(FlatVal::I32($a)),*]).map(|_| ())
                }),
            [FlatType::I32] => Func::wrap($store,
                move |mut c: Caller<'_, StoreData>, $($a: i32),*| -> Result<i32, wasmi::Error> {
                    result_i32(imp.invoke(&mut c, mem, &[$(FlatVal::I32($a)),*])?)
                }),
            _ => Func::wrap($store,
                move |mut c: Caller<'_, StoreData>, $($a: i32),*| -> Result<i64, wasmi::Error> {
                    result_i64(imp.invoke(&mut c, mem, &[$(FlatVal::I32($a)),*])?)
                }),
        }
    }};
}

/// The host function `imp` in `store`, its strings and lists in `mem`.
///
/// wasmi calls a host function defined by its core type (`Func::new`) through a
/// buffer it allocates on every call; one defined by a Rust signature (`Func::wrap`)
/// does not. Signatures of up to six `i32` parameters and no, an `i32` or an `i64`
/// result (every `tern:edge` function, and most of any world's: strings and lists
/// pass as `i32` pairs) get a Rust signature; any other goes the general way.
pub(crate) fn host_func(
    store: &mut wasmi::Store<StoreData>,
    imp: Arc<HostImport>,
    mem: MemSource,
) -> Func {
    let sig = imp.abi.import_signature();
    let all_i32 = sig.params.iter().all(|t| *t == FlatType::I32);
    let typed_result = matches!(
        sig.results.as_slice(),
        [] | [FlatType::I32] | [FlatType::I64]
    );
    if !(all_i32 && typed_result) {
        return general_host_func(store, imp, mem, &sig);
    }
    match sig.params.len() {
        0 => typed_host_func!(store, imp, mem, sig, []),
        1 => typed_host_func!(store, imp, mem, sig, [a0]),
        2 => typed_host_func!(store, imp, mem, sig, [a0, a1]),
        3 => typed_host_func!(store, imp, mem, sig, [a0, a1, a2]),
        4 => typed_host_func!(store, imp, mem, sig, [a0, a1, a2, a3]),
        5 => typed_host_func!(store, imp, mem, sig, [a0, a1, a2, a3, a4]),
        6 => typed_host_func!(store, imp, mem, sig, [a0, a1, a2, a3, a4, a5]),
        _ => general_host_func(store, imp, mem, &sig),
    }
}

/// Copies wasmi's values into flat values; at most [`MAX_FLAT_ARGS`].
fn flats(params: &[wasmi::Val]) -> ([FlatVal; MAX_FLAT_ARGS], usize) {
    let mut flat = [FlatVal::I32(0); MAX_FLAT_ARGS];
    let n = params.len().min(MAX_FLAT_ARGS);
    for (slot, p) in flat.iter_mut().zip(params) {
        *slot = flat_of(p);
    }
    (flat, n)
}

/// Any core signature, through wasmi's `Func::new`.
fn general_host_func(
    store: &mut wasmi::Store<StoreData>,
    imp: Arc<HostImport>,
    mem: MemSource,
    sig: &tern_cabi::CoreSignature,
) -> Func {
    Func::new(
        store,
        func_type(sig),
        move |mut caller: Caller<'_, StoreData>,
              params: &[wasmi::Val],
              results: &mut [wasmi::Val]| {
            let (flat, n) = flats(params);
            let lowered = imp.invoke(&mut caller, mem, &flat[..n])?;
            if let (Some(v), Some(slot)) = (lowered, results.first_mut()) {
                *slot = wasmi_of(v);
            }
            Ok(())
        },
    )
}

/// A call from one component into another's lifted export (`canon lower` of a
/// `canon lift`): the arguments are lifted from the caller's memory and lowered into
/// the callee's, the result the other way, each side with its own canonical options.
/// The two never share memory; only values cross.
pub(crate) fn adapter(
    store: &mut wasmi::Store<StoreData>,
    types: Arc<Types>,
    abi: FuncAbi,
    caller_mem: MemSource,
    callee: Export,
) -> Func {
    let sig = abi.import_signature();
    Func::new(
        store,
        func_type(&sig),
        move |mut caller: Caller<'_, StoreData>,
              params: &[wasmi::Val],
              results: &mut [wasmi::Val]| {
            let (flat, n) = flats(params);
            let flat = &flat[..n];
            let mut args = Vec::new();
            abi.lift_params(
                &types,
                flat,
                &mut caller_mem.of(caller.as_context_mut()),
                &mut args,
            )?;
            let result = callee.call(caller.as_context_mut(), &types, &args)?;
            let lowered = abi.lower_result(
                &types,
                result.as_ref(),
                flat,
                &mut caller_mem.of(caller.as_context_mut()),
            )?;
            if let (Some(v), Some(slot)) = (lowered, results.first_mut()) {
                *slot = wasmi_of(v);
            }
            Ok(())
        },
    )
}

/// An export called through its canonical calling convention.
#[derive(Clone)]
pub(crate) struct Export {
    func: Func,
    abi: FuncAbi,
    /// The canonical options: `memory`, `realloc`, `post-return`.
    memory: Option<wasmi::Memory>,
    realloc: Option<Realloc>,
    post_return: Option<Func>,
}

impl Export {
    /// `func`, called by `abi` with its canonical options.
    pub(crate) fn new(
        func: Func,
        abi: FuncAbi,
        memory: Option<wasmi::Memory>,
        realloc: Option<Realloc>,
        post_return: Option<Func>,
    ) -> Export {
        Export {
            func,
            abi,
            memory,
            realloc,
            post_return,
        }
    }

    /// The export's calling convention.
    pub(crate) fn abi(&self) -> &FuncAbi {
        &self.abi
    }

    /// Lowers `args` into the guest, calls the export, lifts its result and runs
    /// post-return.
    pub(crate) fn call(
        &self,
        mut store: StoreContextMut<'_, StoreData>,
        types: &Types,
        args: &[Val],
    ) -> Result<Option<Val>, wasmi::Error> {
        let (memory, realloc) = (self.memory, self.realloc);
        let flat = self.abi.lower_params(
            types,
            args,
            &mut GuestMemory::new(store.as_context_mut(), memory, realloc, 0),
        )?;
        let mut params: [wasmi::Val; tern_cabi::MAX_FLAT_PARAMS] =
            core::array::from_fn(|_| wasmi::Val::I32(0));
        for (slot, v) in params.iter_mut().zip(flat.iter()) {
            *slot = wasmi_of(*v);
        }
        let params = &params[..flat.len()];
        let mut results = [wasmi::Val::I32(0)];
        let n = usize::from(self.abi.result().is_some());
        self.func.call(&mut store, params, &mut results[..n])?;
        let flat_results = [flat_of(&results[0])];
        let val = self.abi.lift_result(
            types,
            &flat_results[..n],
            &mut GuestMemory::new(store.as_context_mut(), memory, realloc, 0),
        )?;
        if let Some(post) = self.post_return {
            post.call(&mut store, &results[..n], &mut [])?;
        }
        Ok(val)
    }
}

/// A wasmi error's ABI cause, worded for `Error::Abi`: the fault's fixed summary
/// (`tern_cabi::AbiFault`), the one Wasmtime's mapping gives for the same fault; the
/// detailed `AbiError` (addresses, lengths) stays in the error for debug logs.
pub(crate) fn abi_message(e: &wasmi::Error) -> Option<alloc::string::String> {
    if let Some(abi) = e.downcast_ref::<AbiError>() {
        return Some(abi.0.summary().into());
    }
    e.downcast_ref::<ShapeError>().map(|s| s.to_string())
}
