//! Values: `Val`, a component-model value of any type, and `FlatVal`, a core value.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::FlatType;

/// A component-model value, whose type is a [`TypeNode`](crate::TypeNode).
///
/// Fields, cases and flags are numbered in declaration order, as in the type; the
/// type description carries no names. Floats keep their bits across the ABI (NaN
/// payloads included; the spec lets an implementation skip both the canonicalization
/// on lift and the scrambling on lower, and Wasmtime does the same), so `==` on a NaN
/// is false as for `f32` itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// `bool`
    Bool(bool),
    /// `s8`
    S8(i8),
    /// `u8`
    U8(u8),
    /// `s16`
    S16(i16),
    /// `u16`
    U16(u16),
    /// `s32`
    S32(i32),
    /// `u32`
    U32(u32),
    /// `s64`
    S64(i64),
    /// `u64`
    U64(u64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// `char`
    Char(char),
    /// `string`
    String(String),
    /// `list<T>` for any `T` but `u8`.
    List(Vec<Val>),
    /// `list<u8>`, copied as bytes rather than one `Val` per byte.
    Bytes(Vec<u8>),
    /// `record`: the fields in declaration order.
    Record(Vec<Val>),
    /// `tuple`: the elements.
    Tuple(Vec<Val>),
    /// `variant`: the case's index and its payload, if the case has one.
    Variant {
        /// The case, from 0.
        case: u32,
        /// The payload.
        payload: Option<Box<Val>>,
    },
    /// `enum`: the case's index.
    Enum(u32),
    /// `option<T>`
    Option(Option<Box<Val>>),
    /// `result<T, E>`: a missing payload type gives `None`.
    Result(Result<Option<Box<Val>>, Option<Box<Val>>>),
    /// `flags`: bit `i` is flag `i`.
    Flags(u32),
    /// `own<R>`: the handle (see [`Memory::lift_own`](crate::Memory::lift_own)).
    Own(u32),
    /// `borrow<R>`: the handle (see [`Memory::lift_borrow`](crate::Memory::lift_borrow)).
    Borrow(u32),
}

impl Val {
    /// The value's kind as a WIT type name, for messages (`"list<u8>"` for bytes).
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Bool(_) => "bool",
            Val::S8(_) => "s8",
            Val::U8(_) => "u8",
            Val::S16(_) => "s16",
            Val::U16(_) => "u16",
            Val::S32(_) => "s32",
            Val::U32(_) => "u32",
            Val::S64(_) => "s64",
            Val::U64(_) => "u64",
            Val::F32(_) => "f32",
            Val::F64(_) => "f64",
            Val::Char(_) => "char",
            Val::String(_) => "string",
            Val::List(_) => "list",
            Val::Bytes(_) => "list<u8>",
            Val::Record(_) => "record",
            Val::Tuple(_) => "tuple",
            Val::Variant { .. } => "variant",
            Val::Enum(_) => "enum",
            Val::Option(_) => "option",
            Val::Result(_) => "result",
            Val::Flags(_) => "flags",
            Val::Own(_) => "own",
            Val::Borrow(_) => "borrow",
        }
    }
}

/// A core WebAssembly value: a function's parameter or result as the engine passes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlatVal {
    /// `i32` (unsigned component values are passed by their bits).
    I32(i32),
    /// `i64`
    I64(i64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
}

impl FlatVal {
    /// The value's core type.
    pub fn ty(self) -> FlatType {
        match self {
            FlatVal::I32(_) => FlatType::I32,
            FlatVal::I64(_) => FlatType::I64,
            FlatVal::F32(_) => FlatType::F32,
            FlatVal::F64(_) => FlatType::F64,
        }
    }

    /// The zero of a core type: what pads a variant's unused flat values.
    pub fn zero(ty: FlatType) -> FlatVal {
        match ty {
            FlatType::I32 => FlatVal::I32(0),
            FlatType::I64 => FlatVal::I64(0),
            FlatType::F32 => FlatVal::F32(0.0),
            FlatType::F64 => FlatVal::F64(0.0),
        }
    }

    /// This value reinterpreted as `ty`, as `lower_flat_variant` does when a case's
    /// payload is carried in the variant's joined types: `f32` bits in an `i32`, an
    /// `i32` zero-extended (or `f32`/`f64` bits) in an `i64`. `None` when `join` never
    /// asks for that conversion.
    pub(crate) fn widen(self, ty: FlatType) -> Option<FlatVal> {
        Some(match (self, ty) {
            (v, t) if v.ty() == t => v,
            (FlatVal::F32(f), FlatType::I32) => FlatVal::I32(f.to_bits() as i32),
            (FlatVal::I32(i), FlatType::I64) => FlatVal::I64(i64::from(i as u32)),
            (FlatVal::F32(f), FlatType::I64) => FlatVal::I64(i64::from(f.to_bits())),
            (FlatVal::F64(f), FlatType::I64) => FlatVal::I64(f.to_bits() as i64),
            _ => return None,
        })
    }
}

/// The flat parameters of one export call: at most [`MAX_FLAT_PARAMS`] core values,
/// kept inline so that lowering flat parameters allocates nothing.
///
/// [`MAX_FLAT_PARAMS`]: crate::MAX_FLAT_PARAMS
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlatVals {
    vals: [FlatVal; crate::MAX_FLAT_PARAMS],
    len: usize,
}

impl Default for FlatVals {
    fn default() -> FlatVals {
        FlatVals {
            vals: [FlatVal::I32(0); crate::MAX_FLAT_PARAMS],
            len: 0,
        }
    }
}

impl FlatVals {
    /// The values.
    pub fn as_slice(&self) -> &[FlatVal] {
        self.vals.get(..self.len).unwrap_or_default()
    }

    pub(crate) fn writer(&mut self) -> FlatWriter<'_> {
        FlatWriter {
            buf: &mut self.vals,
            len: &mut self.len,
        }
    }
}

impl core::ops::Deref for FlatVals {
    type Target = [FlatVal];

    fn deref(&self) -> &[FlatVal] {
        self.as_slice()
    }
}

/// Appends flat values to a fixed buffer.
pub(crate) struct FlatWriter<'a> {
    pub(crate) buf: &'a mut [FlatVal],
    pub(crate) len: &'a mut usize,
}

impl FlatWriter<'_> {
    pub(crate) fn push(&mut self, v: FlatVal) -> Result<(), crate::AbiError> {
        let slot = self
            .buf
            .get_mut(*self.len)
            .ok_or(crate::AbiError::TypesMismatch)?;
        *slot = v;
        *self.len += 1;
        Ok(())
    }
}
