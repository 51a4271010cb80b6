//! Functions: the calling convention of a function type, decided once, and the four
//! crossings of a call (import: lift parameters, lower the result; export: lower
//! parameters, lift the result).

use alloc::vec;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::lift::{FlatReader, check_flat};
use crate::memory::{check_pointer, zeroed};
use crate::scalar::Scalar;
use crate::val::FlatWriter;
use crate::{
    AbiError, Flat, FlatType, FlatVal, FlatVals, MAX_FLAT_PARAMS, Memory, TypeError, TypeId, Types,
    Val,
};

/// A component-model function type: parameter types and the result type, if any.
///
/// Names are not needed by the ABI: parameters are passed by position, and the
/// function is found by its core import or export name, which the engine knows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FuncType {
    /// The parameter types, in order.
    pub params: Vec<TypeId>,
    /// The result type (a WIT function has at most one).
    pub result: Option<TypeId>,
}

/// Where a function's result travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultAbi {
    /// The function has no result.
    None,
    /// One core value, the core function's result.
    Flat(FlatType),
    /// More than [`MAX_FLAT_RESULTS`](crate::MAX_FLAT_RESULTS) core values: in linear memory. For an import
    /// the guest passes a pointer to a return area it allocated as the core function's
    /// last parameter (the "retptr") and the host stores the result there; for an
    /// export the guest returns a pointer to the result as its one `i32` result.
    Memory,
}

/// A core function signature: what the engine declares for an import (a host
/// function) or expects of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreSignature {
    /// The core parameter types.
    pub params: Vec<FlatType>,
    /// The core result types (none or one).
    pub results: Vec<FlatType>,
}

/// The calling convention of one function type (the spec's `flatten_functype`),
/// decided once when a component is loaded, and the lifting and lowering of its calls.
///
/// Parameters are passed flat if they flatten to at most [`MAX_FLAT_PARAMS`] core
/// values, else as one `i32` pointer to them stored as a tuple in linear memory; the
/// result is passed as in [`ResultAbi`].
///
/// A call from the guest to the host (an import, the spec's `canon lower`):
/// [`lift_params`](FuncAbi::lift_params), run the host function,
/// [`lower_result`](FuncAbi::lower_result). A call from the host into the guest (an
/// export, the spec's `canon lift`): [`lower_params`](FuncAbi::lower_params), call,
/// [`lift_result`](FuncAbi::lift_result), then the export's post-return function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncAbi {
    params: Vec<TypeId>,
    result: Option<TypeId>,
    /// The flattened parameters, or one `i32` when they are in memory.
    param_flats: Vec<FlatType>,
    /// The size and alignment of the parameters' tuple when they are in memory.
    params_area: Option<(u32, u32)>,
    result_abi: ResultAbi,
    /// Each parameter's scalar when they all are: the fast path.
    scalar_params: Option<Vec<Scalar>>,
    /// The result's scalar when it is one.
    scalar_result: Option<Scalar>,
}

impl FuncAbi {
    /// Decides how `ty`, whose types are in `types`, is called.
    pub fn new(types: &Types, ty: &FuncType) -> Result<FuncAbi, TypeError> {
        for id in ty.params.iter().chain(&ty.result) {
            types.node(*id).ok_or(TypeError::UnknownType { id: id.0 })?;
        }
        let mut param_flats = Vec::new();
        let mut in_memory = false;
        for param in &ty.params {
            match types.flatten(*param) {
                Some(Flat::Values(ts)) if param_flats.len() + ts.len() <= MAX_FLAT_PARAMS => {
                    param_flats.extend_from_slice(ts);
                }
                _ => in_memory = true,
            }
        }
        let params_area = if in_memory {
            let (size, align) = types.tuple_layout(&ty.params)?;
            param_flats = vec![FlatType::I32];
            Some((
                u32::try_from(size).map_err(|_| TypeError::ParamsTooLarge { size })?,
                align,
            ))
        } else {
            None
        };
        let result_abi = match ty.result.map(|t| types.flatten(t)) {
            None => ResultAbi::None,
            // MAX_FLAT_RESULTS is 1.
            Some(Some(Flat::Values(&[one]))) => ResultAbi::Flat(one),
            Some(_) => ResultAbi::Memory,
        };
        let scalar = |t: &TypeId| types.node(*t).and_then(Scalar::of);
        let scalar_params = ty.params.iter().map(scalar).collect::<Option<Vec<_>>>();
        Ok(FuncAbi {
            params: ty.params.clone(),
            result: ty.result,
            param_flats,
            params_area,
            result_abi,
            scalar_params: scalar_params.filter(|_| params_area.is_none()),
            scalar_result: ty.result.as_ref().and_then(scalar),
        })
    }

    /// The parameter types.
    pub fn params(&self) -> &[TypeId] {
        &self.params
    }

    /// The result type.
    pub fn result(&self) -> Option<TypeId> {
        self.result
    }

    /// Whether the parameters are passed as a pointer to them in linear memory.
    pub fn params_in_memory(&self) -> bool {
        self.params_area.is_some()
    }

    /// Where the result travels.
    pub fn result_abi(&self) -> ResultAbi {
        self.result_abi
    }

    /// The core signature of the guest's import of this function (`canon lower`):
    /// the parameters, then the return-area pointer if the result is in memory.
    pub fn import_signature(&self) -> CoreSignature {
        let mut params = self.param_flats.clone();
        let results = match self.result_abi {
            ResultAbi::None => Vec::new(),
            ResultAbi::Flat(t) => vec![t],
            ResultAbi::Memory => {
                params.push(FlatType::I32);
                Vec::new()
            }
        };
        CoreSignature { params, results }
    }

    /// The core signature of the guest's export of this function (`canon lift`); its
    /// post-return function, if any, takes these results as parameters.
    pub fn export_signature(&self) -> CoreSignature {
        CoreSignature {
            params: self.param_flats.clone(),
            results: self.export_results().to_vec(),
        }
    }

    fn export_results(&self) -> &'static [FlatType] {
        match self.result_abi {
            ResultAbi::None => &[],
            ResultAbi::Flat(FlatType::I32) | ResultAbi::Memory => &[FlatType::I32],
            ResultAbi::Flat(FlatType::I64) => &[FlatType::I64],
            ResultAbi::Flat(FlatType::F32) => &[FlatType::F32],
            ResultAbi::Flat(FlatType::F64) => &[FlatType::F64],
        }
    }

    /// Import, guest to host: lifts the arguments of a call from its core arguments
    /// `args` (all of them, return-area pointer included), into `out` (cleared first;
    /// reuse it across calls and lifting scalars allocates nothing).
    ///
    /// `args` must match [`import_signature`](FuncAbi::import_signature). Parameters
    /// in memory are read from the pointer the guest passed, after checking its
    /// alignment and bounds.
    #[inline]
    pub fn lift_params<M: Memory>(
        &self,
        types: &Types,
        args: &[FlatVal],
        mem: &mut M,
        out: &mut Vec<Val>,
    ) -> Result<(), M::Error> {
        if !out.is_empty() {
            out.clear();
        }
        check_flat(
            &self.param_flats,
            self.result_abi == ResultAbi::Memory,
            args,
        )?;
        let args = args.get(..self.param_flats.len()).unwrap_or_default();
        if let Some(scalars) = &self.scalar_params {
            for (index, (scalar, arg)) in scalars.iter().zip(args).enumerate() {
                out.push(scalar.lift(*arg, index, mem)?);
            }
            return Ok(());
        }
        match self.params_area {
            None => {
                let mut src = FlatReader::new(args);
                for param in &self.params {
                    out.push(types.lift_flat(*param, &mut src, mem)?);
                }
                Ok(())
            }
            Some(area) => self.lift_params_from_memory(types, args, area, mem, out),
        }
    }

    /// [`lift_params`](FuncAbi::lift_params) through the parameter area; kept out of
    /// line so the flat path stays small.
    #[inline(never)]
    fn lift_params_from_memory<M: Memory>(
        &self,
        types: &Types,
        args: &[FlatVal],
        (size, align): (u32, u32),
        mem: &mut M,
        out: &mut Vec<Val>,
    ) -> Result<(), M::Error> {
        let ptr = match args {
            [FlatVal::I32(ptr)] => *ptr as u32,
            _ => Err(AbiError::FlatCount {
                expected: 1,
                found: args.len(),
            })?,
        };
        check_pointer(mem, "parameters", ptr, align, u64::from(size))?;
        let mut bytes = zeroed(u64::from(size))?;
        mem.read(ptr, &mut bytes)?;
        out.reserve(self.params.len());
        types.decode_fields(&self.params, &bytes, mem, out)
    }

    /// Import, guest to host: lowers the host function's `result` (`None` for a
    /// function without one). A flat result is returned as the core function's result;
    /// a result in memory is stored at the return-area pointer, the last of `args`,
    /// after checking its alignment and bounds, and `None` is returned.
    #[inline]
    pub fn lower_result<M: Memory>(
        &self,
        types: &Types,
        result: Option<&Val>,
        args: &[FlatVal],
        mem: &mut M,
    ) -> Result<Option<FlatVal>, M::Error> {
        let (ty, val) = match (self.result, result) {
            (None, None) => return Ok(None),
            (Some(ty), Some(val)) => (ty, val),
            (Some(ty), None) => {
                let expected = types.node(ty).map_or("result", |n| n.kind());
                Err(AbiError::ValueMismatch {
                    expected,
                    found: "no value",
                })?
            }
            (None, Some(val)) => Err(AbiError::ValueMismatch {
                expected: "no result",
                found: val.kind(),
            })?,
        };
        if let Some(scalar) = self.scalar_result {
            return Ok(Some(scalar.lower(val, mem)?));
        }
        if let ResultAbi::Flat(_) = self.result_abi {
            // A variant without payloads (an enum, `result`) is also one value.
            let mut buf = [FlatVal::I32(0)];
            let mut len = 0;
            let mut out = FlatWriter {
                buf: &mut buf,
                len: &mut len,
            };
            types.lower_flat(ty, val, &mut out, mem)?;
            let [flat] = buf;
            return Ok(Some(flat));
        }
        self.lower_result_to_memory(types, ty, val, args, mem)
    }

    /// [`lower_result`](FuncAbi::lower_result) into the return area; kept out of line
    /// so the flat path stays small.
    #[inline(never)]
    fn lower_result_to_memory<M: Memory>(
        &self,
        types: &Types,
        ty: TypeId,
        val: &Val,
        args: &[FlatVal],
        mem: &mut M,
    ) -> Result<Option<FlatVal>, M::Error> {
        let expected = self.param_flats.len() + 1;
        let retptr = match (args.len() == expected, args.last()) {
            (true, Some(FlatVal::I32(ptr))) => *ptr as u32,
            (true, Some(other)) => Err(AbiError::FlatType {
                index: expected - 1,
                expected: FlatType::I32,
                found: other.ty(),
            })?,
            _ => Err(AbiError::FlatCount {
                expected,
                found: args.len(),
            })?,
        };
        types.store_as("return area", ty, val, retptr, mem)?;
        Ok(None)
    }

    /// Export, host to guest: lowers the arguments `args` into the core arguments to
    /// call the export with. Strings and lists are allocated with the guest's
    /// `cabi_realloc`, and so are the parameters when they go in memory.
    pub fn lower_params<M: Memory>(
        &self,
        types: &Types,
        args: &[Val],
        mem: &mut M,
    ) -> Result<FlatVals, M::Error> {
        if args.len() != self.params.len() {
            Err(AbiError::LengthMismatch {
                what: "parameters",
                expected: self.params.len(),
                found: args.len(),
            })?;
        }
        let mut flat = FlatVals::default();
        match self.params_area {
            None => {
                let mut out = flat.writer();
                if let Some(scalars) = &self.scalar_params {
                    for (scalar, arg) in scalars.iter().zip(args) {
                        out.push(scalar.lower(arg, mem)?)?;
                    }
                } else {
                    for (param, arg) in self.params.iter().zip(args) {
                        types.lower_flat(*param, arg, &mut out, mem)?;
                    }
                }
            }
            Some((size, align)) => {
                let ptr = mem.realloc(0, 0, align, size)?;
                check_pointer(mem, "cabi_realloc result", ptr, align, u64::from(size))?;
                let mut bytes = zeroed(u64::from(size))?;
                types.encode_fields(&self.params, args, &mut bytes, mem)?;
                mem.write(ptr, &bytes)?;
                flat.writer().push(FlatVal::I32(ptr as i32))?;
            }
        }
        Ok(flat)
    }

    /// Export, host to guest: lifts the export's result from its core `results`.
    ///
    /// Afterwards the engine calls the export's post-return function
    /// (`cabi_post_<export>`), if the guest has one, with these same `results`, so the
    /// guest can free what it returned; not when lifting failed (the instance has
    /// trapped).
    pub fn lift_result<M: Memory>(
        &self,
        types: &Types,
        results: &[FlatVal],
        mem: &mut M,
    ) -> Result<Option<Val>, M::Error> {
        check_flat(self.export_results(), false, results)?;
        let Some(ty) = self.result else {
            return Ok(None);
        };
        let val = match (self.result_abi, self.scalar_result, results) {
            (_, Some(scalar), [result]) => scalar.lift(*result, 0, mem)?,
            (ResultAbi::Memory, _, [FlatVal::I32(ptr)]) => {
                types.load_as("result", ty, *ptr as u32, mem)?
            }
            _ => types.lift_flat(ty, &mut FlatReader::new(results), mem)?,
        };
        Ok(Some(val))
    }
}
