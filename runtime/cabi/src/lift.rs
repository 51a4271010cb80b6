//! Lifting: core values and linear memory to `Val` (the spec's `lift_flat` and `load`).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::memory::{STACK_BUF, check_pointer, le, sub, zeroed};
use crate::scalar::{Scalar, as_i32};
use crate::types::{align_to, discriminant_size, flags_mask, flags_size};
use crate::{
    AbiError, FlatType, FlatVal, MAX_LIST_BYTE_LENGTH, MAX_STRING_BYTE_LENGTH, Memory, TypeId,
    TypeNode, Types, Val,
};

/// Reads core values in order (the spec's `CoreValueIter`).
///
/// The function's core values are checked against its core signature before reading
/// ([`check_flat`]), so a value of another type than asked for can only be a variant
/// payload carried in the variant's joined type; [`Scalar::lift`] and
/// [`FlatReader::u32`] undo the join (the spec's `CoerceValueIter`): an `i64` wraps
/// to `i32`, an `i32` or `i64` holds an `f32`'s bits, an `i64` an `f64`'s.
pub(crate) struct FlatReader<'a> {
    vals: &'a [FlatVal],
    pos: usize,
}

impl<'a> FlatReader<'a> {
    pub(crate) fn new(vals: &'a [FlatVal]) -> FlatReader<'a> {
        FlatReader { vals, pos: 0 }
    }

    #[inline]
    fn next(&mut self) -> Result<FlatVal, AbiError> {
        let v = self.vals.get(self.pos).copied();
        self.pos += 1;
        v.ok_or(AbiError::FlatCount {
            expected: self.pos,
            found: self.vals.len(),
        })
    }

    /// The next value as an `i32` (a pointer, a length, a discriminant).
    fn u32(&mut self) -> Result<u32, AbiError> {
        let index = self.pos;
        as_i32(self.next()?)
            .map(|v| v as u32)
            .map_err(|found| AbiError::FlatType {
                index,
                expected: FlatType::I32,
                found: found.ty(),
            })
    }
}

/// Checks that `got` has exactly the types `expected`, then a trailing `i32` if
/// `retptr`: the engine's core values against the function's core signature.
#[inline]
pub(crate) fn check_flat(
    expected: &[FlatType],
    retptr: bool,
    got: &[FlatVal],
) -> Result<(), AbiError> {
    let count = expected.len() + usize::from(retptr);
    if got.len() != count {
        return Err(AbiError::FlatCount {
            expected: count,
            found: got.len(),
        });
    }
    for (index, (want, v)) in expected.iter().zip(got).enumerate() {
        if v.ty() != *want {
            return Err(AbiError::FlatType {
                index,
                expected: *want,
                found: v.ty(),
            });
        }
    }
    match got.last() {
        Some(v) if retptr && v.ty() != FlatType::I32 => Err(AbiError::FlatType {
            index: count - 1,
            expected: FlatType::I32,
            found: v.ty(),
        }),
        _ => Ok(()),
    }
}

fn char_from(value: u32) -> Result<char, AbiError> {
    char::from_u32(value).ok_or(AbiError::InvalidChar { value })
}

/// The value of a variant-like `node` for `case` with `payload`.
fn variant_val(node: &TypeNode, case: u32, payload: Option<Val>) -> Val {
    let payload = payload.map(Box::new);
    match node {
        TypeNode::Enum(_) => Val::Enum(case),
        TypeNode::Option(_) => Val::Option(payload),
        TypeNode::Result { .. } if case == 0 => Val::Result(Ok(payload)),
        TypeNode::Result { .. } => Val::Result(Err(payload)),
        _ => Val::Variant { case, payload },
    }
}

impl Types {
    /// The spec's `lift_flat`: one value of type `id` from the core values in `src`.
    pub(crate) fn lift_flat<M: Memory>(
        &self,
        id: TypeId,
        src: &mut FlatReader<'_>,
        mem: &mut M,
    ) -> Result<Val, M::Error> {
        let (node, layout) = self.entry(id)?;
        Ok(match node {
            TypeNode::String => {
                let (ptr, len) = (src.u32()?, src.u32()?);
                Val::String(self.load_string(ptr, len, mem)?)
            }
            TypeNode::List(elem) => {
                let (ptr, len) = (src.u32()?, src.u32()?);
                self.load_list(*elem, ptr, len, mem)?
            }
            TypeNode::Record(fields) => Val::Record(self.lift_flat_fields(fields, src, mem)?),
            TypeNode::Tuple(fields) => Val::Tuple(self.lift_flat_fields(fields, src, mem)?),
            TypeNode::Variant(_) | TypeNode::Option(_) | TypeNode::Result { .. } => {
                let cases = node.cases().ok_or(AbiError::TypesMismatch)?;
                let joined = layout
                    .flat_len()
                    .ok_or(AbiError::TypesMismatch)?
                    .saturating_sub(1);
                let case = src.u32()?;
                if case >= cases.count() {
                    Err(AbiError::InvalidDiscriminant {
                        value: case,
                        cases: cases.count(),
                    })?;
                }
                let start = src.pos;
                let payload = match cases.payload(case) {
                    Some(t) => Some(self.lift_flat(t, src, mem)?),
                    None => None,
                };
                // Every case takes the same flat values; skip those this one left.
                src.pos = start + joined;
                variant_val(node, case, payload)
            }
            // Numbers, bool, char, enum, flags, handles: one core value each.
            _ => {
                let scalar = Scalar::of(node).ok_or(AbiError::TypesMismatch)?;
                let index = src.pos;
                scalar.lift(src.next()?, index, mem)?
            }
        })
    }

    fn lift_flat_fields<M: Memory>(
        &self,
        fields: &[TypeId],
        src: &mut FlatReader<'_>,
        mem: &mut M,
    ) -> Result<Vec<Val>, M::Error> {
        let mut vals = Vec::with_capacity(fields.len());
        for field in fields {
            vals.push(self.lift_flat(*field, src, mem)?);
        }
        Ok(vals)
    }

    /// The spec's `load`: reads a value of type `id` at `ptr` in linear memory, after
    /// checking `ptr`'s alignment, and the strings and lists it points to.
    pub fn load<M: Memory>(&self, id: TypeId, ptr: u32, mem: &mut M) -> Result<Val, M::Error> {
        self.load_as("value", id, ptr, mem)
    }

    /// [`Types::load`], naming the pointer `what` in errors.
    pub(crate) fn load_as<M: Memory>(
        &self,
        what: &'static str,
        id: TypeId,
        ptr: u32,
        mem: &mut M,
    ) -> Result<Val, M::Error> {
        let (_, layout) = self.entry(id)?;
        check_pointer(mem, what, ptr, layout.align, u64::from(layout.size))?;
        let mut stack = [0u8; STACK_BUF];
        let mut heap;
        let bytes = match stack.get_mut(..layout.size as usize) {
            Some(bytes) => bytes,
            None => {
                heap = zeroed(u64::from(layout.size))?;
                &mut heap[..]
            }
        };
        mem.read(ptr, bytes)?;
        self.decode(id, bytes, mem)
    }

    /// A value of type `id` from its bytes (`elem_size` of them), loading what its
    /// strings and lists point to.
    fn decode<M: Memory>(&self, id: TypeId, bytes: &[u8], mem: &mut M) -> Result<Val, M::Error> {
        let (node, layout) = self.entry(id)?;
        Ok(match node {
            TypeNode::Bool => Val::Bool(u8::from_le_bytes(le(bytes)?) != 0),
            TypeNode::S8 => Val::S8(i8::from_le_bytes(le(bytes)?)),
            TypeNode::U8 => Val::U8(u8::from_le_bytes(le(bytes)?)),
            TypeNode::S16 => Val::S16(i16::from_le_bytes(le(bytes)?)),
            TypeNode::U16 => Val::U16(u16::from_le_bytes(le(bytes)?)),
            TypeNode::S32 => Val::S32(i32::from_le_bytes(le(bytes)?)),
            TypeNode::U32 => Val::U32(u32::from_le_bytes(le(bytes)?)),
            TypeNode::S64 => Val::S64(i64::from_le_bytes(le(bytes)?)),
            TypeNode::U64 => Val::U64(u64::from_le_bytes(le(bytes)?)),
            TypeNode::F32 => Val::F32(f32::from_le_bytes(le(bytes)?)),
            TypeNode::F64 => Val::F64(f64::from_le_bytes(le(bytes)?)),
            TypeNode::Char => Val::Char(char_from(u32::from_le_bytes(le(bytes)?))?),
            TypeNode::String => {
                let (ptr, len) = ptr_len(bytes)?;
                Val::String(self.load_string(ptr, len, mem)?)
            }
            TypeNode::List(elem) => {
                let (ptr, len) = ptr_len(bytes)?;
                self.load_list(*elem, ptr, len, mem)?
            }
            TypeNode::Record(fields) => {
                let mut vals = Vec::with_capacity(fields.len());
                self.decode_fields(fields, bytes, mem, &mut vals)?;
                Val::Record(vals)
            }
            TypeNode::Tuple(fields) => {
                let mut vals = Vec::with_capacity(fields.len());
                self.decode_fields(fields, bytes, mem, &mut vals)?;
                Val::Tuple(vals)
            }
            TypeNode::Flags(count) => {
                Val::Flags(read_uint(bytes, flags_size(*count))? & flags_mask(*count))
            }
            TypeNode::Own(resource) => Val::Own(mem.lift_own(*resource, read_uint(bytes, 4)?)?),
            TypeNode::Borrow(resource) => {
                Val::Borrow(mem.lift_borrow(*resource, read_uint(bytes, 4)?)?)
            }
            TypeNode::Variant(_)
            | TypeNode::Enum(_)
            | TypeNode::Option(_)
            | TypeNode::Result { .. } => {
                let cases = node.cases().ok_or(AbiError::TypesMismatch)?;
                let case = read_uint(bytes, discriminant_size(cases.count()))?;
                if case >= cases.count() {
                    Err(AbiError::InvalidDiscriminant {
                        value: case,
                        cases: cases.count(),
                    })?;
                }
                let payload = match cases.payload(case) {
                    Some(t) => {
                        let (_, payload) = self.entry(t)?;
                        let bytes = sub(bytes, u64::from(layout.payload_offset), payload.size)?;
                        Some(self.decode(t, bytes, mem)?)
                    }
                    None => None,
                };
                variant_val(node, case, payload)
            }
        })
    }

    /// Decodes `fields` laid out as a record in `bytes` (the spec's `load_record`),
    /// appending to `out`.
    pub(crate) fn decode_fields<M: Memory>(
        &self,
        fields: &[TypeId],
        bytes: &[u8],
        mem: &mut M,
        out: &mut Vec<Val>,
    ) -> Result<(), M::Error> {
        let mut offset = 0u64;
        for field in fields {
            let (_, layout) = self.entry(*field)?;
            offset = align_to(offset, layout.align);
            out.push(self.decode(*field, sub(bytes, offset, layout.size)?, mem)?);
            offset += u64::from(layout.size);
        }
        Ok(())
    }

    /// The spec's `load_string_from_range` for UTF-8.
    fn load_string<M: Memory>(&self, ptr: u32, len: u32, mem: &mut M) -> Result<String, M::Error> {
        if len > MAX_STRING_BYTE_LENGTH {
            Err(AbiError::StringTooLong {
                len: u64::from(len),
            })?;
        }
        check_pointer(mem, "string", ptr, 1, u64::from(len))?;
        let mut buf = zeroed(u64::from(len))?;
        mem.read(ptr, &mut buf)?;
        let invalid = |e: alloc::string::FromUtf8Error| AbiError::InvalidUtf8 {
            ptr,
            len,
            // At most `len`, a u32.
            valid_up_to: e.utf8_error().valid_up_to() as u32,
        };
        Ok(String::from_utf8(buf).map_err(invalid)?)
    }

    /// The spec's `load_list_from_range`; a `list<u8>` becomes [`Val::Bytes`].
    fn load_list<M: Memory>(
        &self,
        elem: TypeId,
        ptr: u32,
        len: u32,
        mem: &mut M,
    ) -> Result<Val, M::Error> {
        let (node, layout) = self.entry(elem)?;
        let byte_len = u64::from(len) * u64::from(layout.size);
        if byte_len > u64::from(MAX_LIST_BYTE_LENGTH) {
            Err(AbiError::ListTooLong {
                len: u64::from(len),
                elem_size: layout.size,
            })?;
        }
        check_pointer(mem, "list", ptr, layout.align, byte_len)?;
        let mut buf = zeroed(byte_len)?;
        mem.read(ptr, &mut buf)?;
        if *node == TypeNode::U8 {
            return Ok(Val::Bytes(buf));
        }
        if layout.size == 0 {
            Err(AbiError::TypesMismatch)?;
        }
        let mut vals = Vec::new();
        let oom = AbiError::OutOfHostMemory {
            bytes: u64::from(len).saturating_mul(core::mem::size_of::<Val>() as u64),
        };
        vals.try_reserve_exact(len as usize).map_err(|_| oom)?;
        for bytes in buf.chunks_exact(layout.size as usize) {
            vals.push(self.decode(elem, bytes, mem)?);
        }
        Ok(Val::List(vals))
    }
}

/// A little-endian unsigned integer of `size` bytes (1, 2 or 4).
fn read_uint(bytes: &[u8], size: u32) -> Result<u32, AbiError> {
    Ok(match size {
        1 => u32::from(u8::from_le_bytes(le(bytes)?)),
        2 => u32::from(u16::from_le_bytes(le(bytes)?)),
        _ => u32::from_le_bytes(le(bytes)?),
    })
}

/// The `(ptr, len)` pair of a string or list in memory.
fn ptr_len(bytes: &[u8]) -> Result<(u32, u32), AbiError> {
    let [p0, p1, p2, p3, l0, l1, l2, l3] = le::<8>(bytes)?;
    Ok((
        u32::from_le_bytes([p0, p1, p2, p3]),
        u32::from_le_bytes([l0, l1, l2, l3]),
    ))
}
