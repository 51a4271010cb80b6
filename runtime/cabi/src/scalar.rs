//! Scalars: the types that are one core value, lifted and lowered without walking the
//! type table. This is the fast path of host calls such as `clock.now-ms`.

use crate::types::flags_mask;
use crate::{AbiError, FlatType, FlatVal, Memory, ResourceId, TypeNode, Val};

/// A type that flattens to one core value and needs no memory: numbers, `bool`,
/// `char`, `enum`, `flags` and handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    /// The number of cases.
    Enum(u32),
    /// The number of flags.
    Flags(u32),
    Own(ResourceId),
    Borrow(ResourceId),
}

/// The `i32` in `v`: an `i64` is wrapped, as when a variant carries an `i32` payload
/// in a joined `i64` (the spec's `CoerceValueIter`).
#[inline]
pub(crate) fn as_i32(v: FlatVal) -> Result<i32, FlatVal> {
    match v {
        FlatVal::I32(v) => Ok(v),
        FlatVal::I64(v) => Ok(v as i32),
        other => Err(other),
    }
}

#[inline]
pub(crate) fn as_i64(v: FlatVal) -> Result<i64, FlatVal> {
    match v {
        FlatVal::I64(v) => Ok(v),
        other => Err(other),
    }
}

/// The `f32` in `v`: from its bits in an `i32` or (wrapped) `i64` when a variant
/// joined it with an integer.
#[inline]
pub(crate) fn as_f32(v: FlatVal) -> Result<f32, FlatVal> {
    match v {
        FlatVal::F32(v) => Ok(v),
        FlatVal::I32(v) => Ok(f32::from_bits(v as u32)),
        FlatVal::I64(v) => Ok(f32::from_bits(v as u32)),
        other => Err(other),
    }
}

/// The `f64` in `v`: from its bits in an `i64` when a variant joined it.
#[inline]
pub(crate) fn as_f64(v: FlatVal) -> Result<f64, FlatVal> {
    match v {
        FlatVal::F64(v) => Ok(v),
        FlatVal::I64(v) => Ok(f64::from_bits(v as u64)),
        other => Err(other),
    }
}

impl Scalar {
    /// The scalar `node` is, if it is one.
    pub(crate) fn of(node: &TypeNode) -> Option<Scalar> {
        Some(match node {
            TypeNode::Bool => Scalar::Bool,
            TypeNode::S8 => Scalar::S8,
            TypeNode::U8 => Scalar::U8,
            TypeNode::S16 => Scalar::S16,
            TypeNode::U16 => Scalar::U16,
            TypeNode::S32 => Scalar::S32,
            TypeNode::U32 => Scalar::U32,
            TypeNode::S64 => Scalar::S64,
            TypeNode::U64 => Scalar::U64,
            TypeNode::F32 => Scalar::F32,
            TypeNode::F64 => Scalar::F64,
            TypeNode::Char => Scalar::Char,
            TypeNode::Enum(n) => Scalar::Enum(*n),
            TypeNode::Flags(n) => Scalar::Flags(*n),
            TypeNode::Own(r) => Scalar::Own(*r),
            TypeNode::Borrow(r) => Scalar::Borrow(*r),
            _ => return None,
        })
    }

    fn flat_type(self) -> FlatType {
        match self {
            Scalar::S64 | Scalar::U64 => FlatType::I64,
            Scalar::F32 => FlatType::F32,
            Scalar::F64 => FlatType::F64,
            _ => FlatType::I32,
        }
    }

    /// The spec's `lift_flat` for a scalar: `v` is the `index`-th core value (for
    /// errors). Integers narrower than 32 bits keep their low bits, a `bool` is any
    /// non-zero value, `flags` bits past the last flag are dropped, a `char` and an
    /// `enum` case are checked.
    #[inline(always)]
    pub(crate) fn lift<M: Memory>(
        self,
        v: FlatVal,
        index: usize,
        mem: &mut M,
    ) -> Result<Val, M::Error> {
        let wrong = |found: FlatVal| AbiError::FlatType {
            index,
            expected: self.flat_type(),
            found: found.ty(),
        };
        Ok(match self {
            Scalar::Bool => Val::Bool(as_i32(v).map_err(wrong)? != 0),
            Scalar::S8 => Val::S8(as_i32(v).map_err(wrong)? as i8),
            Scalar::U8 => Val::U8(as_i32(v).map_err(wrong)? as u8),
            Scalar::S16 => Val::S16(as_i32(v).map_err(wrong)? as i16),
            Scalar::U16 => Val::U16(as_i32(v).map_err(wrong)? as u16),
            Scalar::S32 => Val::S32(as_i32(v).map_err(wrong)?),
            Scalar::U32 => Val::U32(as_i32(v).map_err(wrong)? as u32),
            Scalar::S64 => Val::S64(as_i64(v).map_err(wrong)?),
            Scalar::U64 => Val::U64(as_i64(v).map_err(wrong)? as u64),
            Scalar::F32 => Val::F32(as_f32(v).map_err(wrong)?),
            Scalar::F64 => Val::F64(as_f64(v).map_err(wrong)?),
            Scalar::Char => {
                let value = as_i32(v).map_err(wrong)? as u32;
                Val::Char(char::from_u32(value).ok_or(AbiError::InvalidChar { value })?)
            }
            Scalar::Enum(cases) => {
                let value = as_i32(v).map_err(wrong)? as u32;
                if value >= cases {
                    Err(AbiError::InvalidDiscriminant { value, cases })?;
                }
                Val::Enum(value)
            }
            Scalar::Flags(count) => {
                Val::Flags(as_i32(v).map_err(wrong)? as u32 & flags_mask(count))
            }
            Scalar::Own(r) => Val::Own(mem.lift_own(r, as_i32(v).map_err(wrong)? as u32)?),
            Scalar::Borrow(r) => Val::Borrow(mem.lift_borrow(r, as_i32(v).map_err(wrong)? as u32)?),
        })
    }

    /// The spec's `lower_flat` for a scalar, checking that `val` is of this type.
    #[inline(always)]
    pub(crate) fn lower<M: Memory>(self, val: &Val, mem: &mut M) -> Result<FlatVal, M::Error> {
        Ok(match (self, val) {
            (Scalar::Bool, Val::Bool(v)) => FlatVal::I32(i32::from(*v)),
            (Scalar::S8, Val::S8(v)) => FlatVal::I32(i32::from(*v)),
            (Scalar::U8, Val::U8(v)) => FlatVal::I32(i32::from(*v)),
            (Scalar::S16, Val::S16(v)) => FlatVal::I32(i32::from(*v)),
            (Scalar::U16, Val::U16(v)) => FlatVal::I32(i32::from(*v)),
            (Scalar::S32, Val::S32(v)) => FlatVal::I32(*v),
            (Scalar::U32, Val::U32(v)) => FlatVal::I32(*v as i32),
            (Scalar::S64, Val::S64(v)) => FlatVal::I64(*v),
            (Scalar::U64, Val::U64(v)) => FlatVal::I64(*v as i64),
            (Scalar::F32, Val::F32(v)) => FlatVal::F32(*v),
            (Scalar::F64, Val::F64(v)) => FlatVal::F64(*v),
            (Scalar::Char, Val::Char(c)) => FlatVal::I32(u32::from(*c) as i32),
            (Scalar::Enum(cases), Val::Enum(value)) => {
                if *value >= cases {
                    Err(AbiError::InvalidDiscriminant {
                        value: *value,
                        cases,
                    })?;
                }
                FlatVal::I32(*value as i32)
            }
            (Scalar::Flags(count), Val::Flags(bits)) => {
                if bits & !flags_mask(count) != 0 {
                    Err(AbiError::UnknownFlags { bits: *bits, count })?;
                }
                FlatVal::I32(*bits as i32)
            }
            (Scalar::Own(r), Val::Own(h)) => FlatVal::I32(mem.lower_own(r, *h)? as i32),
            (Scalar::Borrow(r), Val::Borrow(h)) => FlatVal::I32(mem.lower_borrow(r, *h)? as i32),
            _ => Err(AbiError::ValueMismatch {
                expected: self.kind(),
                found: val.kind(),
            })?,
        })
    }

    fn kind(self) -> &'static str {
        match self {
            Scalar::Bool => "bool",
            Scalar::S8 => "s8",
            Scalar::U8 => "u8",
            Scalar::S16 => "s16",
            Scalar::U16 => "u16",
            Scalar::S32 => "s32",
            Scalar::U32 => "u32",
            Scalar::S64 => "s64",
            Scalar::U64 => "u64",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
            Scalar::Char => "char",
            Scalar::Enum(_) => "enum",
            Scalar::Flags(_) => "flags",
            Scalar::Own(_) => "own",
            Scalar::Borrow(_) => "borrow",
        }
    }
}
