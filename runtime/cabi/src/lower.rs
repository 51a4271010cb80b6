//! Lowering: `Val` to core values and linear memory (the spec's `lower_flat` and `store`).

use crate::memory::{STACK_BUF, check_pointer, sub_mut, zeroed};
use crate::scalar::Scalar;
use crate::types::{align_to, discriminant_size, flags_mask, flags_size};
use crate::val::FlatWriter;
use crate::{
    AbiError, FlatVal, MAX_LIST_BYTE_LENGTH, MAX_STRING_BYTE_LENGTH, Memory, TypeId, TypeNode,
    Types, Val,
};

/// A variant's case and, if it has one, its payload's type and value.
type Case<'v> = (u32, Option<(TypeId, &'v Val)>);

/// Splits `val` into the case and payload of the variant-like `node`, checking the
/// value against the type.
fn variant_parts<'v>(node: &TypeNode, val: &'v Val) -> Result<Case<'v>, AbiError> {
    let mismatch = || AbiError::ValueMismatch {
        expected: node.kind(),
        found: val.kind(),
    };
    let cases = node.cases().ok_or_else(mismatch)?;
    let (case, payload) = match (node, val) {
        (TypeNode::Variant(_), Val::Variant { case, payload }) => (*case, payload.as_deref()),
        (TypeNode::Enum(_), Val::Enum(case)) => (*case, None),
        (TypeNode::Option(_), Val::Option(None)) => (0, None),
        (TypeNode::Option(_), Val::Option(Some(v))) => (1, Some(&**v)),
        (TypeNode::Result { .. }, Val::Result(Ok(v))) => (0, v.as_deref()),
        (TypeNode::Result { .. }, Val::Result(Err(v))) => (1, v.as_deref()),
        _ => return Err(mismatch()),
    };
    if case >= cases.count() {
        return Err(AbiError::InvalidDiscriminant {
            value: case,
            cases: cases.count(),
        });
    }
    match (cases.payload(case), payload) {
        (Some(t), Some(v)) => Ok((case, Some((t, v)))),
        (None, None) => Ok((case, None)),
        (t, _) => Err(AbiError::PayloadMismatch {
            case,
            expected: t.is_some(),
        }),
    }
}

fn check_flags(count: u32, bits: u32) -> Result<u32, AbiError> {
    if bits & !flags_mask(count) != 0 {
        return Err(AbiError::UnknownFlags { bits, count });
    }
    Ok(bits)
}

/// Copies `src` to the start of `out`.
#[inline]
fn put(out: &mut [u8], src: &[u8]) -> Result<(), AbiError> {
    out.get_mut(..src.len())
        .ok_or(AbiError::TypesMismatch)?
        .copy_from_slice(src);
    Ok(())
}

fn put_ptr_len(out: &mut [u8], (ptr, len): (u32, u32)) -> Result<(), AbiError> {
    put(out, &ptr.to_le_bytes())?;
    put(out.get_mut(4..).unwrap_or_default(), &len.to_le_bytes())
}

impl Types {
    /// The spec's `lower_flat`: appends the core values of `val`, of type `id`, to `out`.
    pub(crate) fn lower_flat<M: Memory>(
        &self,
        id: TypeId,
        val: &Val,
        out: &mut FlatWriter<'_>,
        mem: &mut M,
    ) -> Result<(), M::Error> {
        let (node, _) = self.entry(id)?;
        if let Some(scalar) = Scalar::of(node) {
            return Ok(out.push(scalar.lower(val, mem)?)?);
        }
        let flat = match (node, val) {
            (TypeNode::String, Val::String(s)) => {
                let (ptr, len) = self.store_string(s, mem)?;
                out.push(FlatVal::I32(ptr as i32))?;
                FlatVal::I32(len as i32)
            }
            (TypeNode::List(elem), _) => {
                let (ptr, len) = self.store_list(*elem, val, mem)?;
                out.push(FlatVal::I32(ptr as i32))?;
                FlatVal::I32(len as i32)
            }
            (TypeNode::Record(fields), Val::Record(vals))
            | (TypeNode::Tuple(fields), Val::Tuple(vals)) => {
                check_len(node.kind(), fields.len(), vals.len())?;
                for (field, v) in fields.iter().zip(vals) {
                    self.lower_flat(*field, v, out, mem)?;
                }
                return Ok(());
            }
            (TypeNode::Variant(_) | TypeNode::Option(_) | TypeNode::Result { .. }, _) => {
                return self.lower_flat_variant(id, node, val, out, mem);
            }
            _ => Err(AbiError::ValueMismatch {
                expected: node.kind(),
                found: val.kind(),
            })?,
        };
        Ok(out.push(flat)?)
    }

    /// The spec's `lower_flat_variant`: the discriminant, then the payload's values
    /// widened to the variant's joined types, then zeros for the rest.
    fn lower_flat_variant<M: Memory>(
        &self,
        id: TypeId,
        node: &TypeNode,
        val: &Val,
        out: &mut FlatWriter<'_>,
        mem: &mut M,
    ) -> Result<(), M::Error> {
        let (case, payload) = variant_parts(node, val)?;
        let joined = self
            .flat_types(id)
            .ok_or(AbiError::TypesMismatch)?
            .get(1..)
            .unwrap_or_default();
        out.push(FlatVal::I32(case as i32))?;
        let start = *out.len;
        if let Some((t, v)) = payload {
            self.lower_flat(t, v, out, mem)?;
        }
        for (i, want) in joined.iter().enumerate() {
            if start + i < *out.len {
                let slot = out.buf.get_mut(start + i).ok_or(AbiError::TypesMismatch)?;
                *slot = slot.widen(*want).ok_or(AbiError::TypesMismatch)?;
            } else {
                out.push(FlatVal::zero(*want))?;
            }
        }
        Ok(())
    }

    /// The spec's `store`: writes `val`, of type `id`, at `ptr` in linear memory,
    /// after checking `ptr`'s alignment; its strings and lists are allocated with
    /// `cabi_realloc`.
    pub fn store<M: Memory>(
        &self,
        id: TypeId,
        val: &Val,
        ptr: u32,
        mem: &mut M,
    ) -> Result<(), M::Error> {
        self.store_as("value", id, val, ptr, mem)
    }

    /// [`Types::store`], naming the pointer `what` in errors.
    pub(crate) fn store_as<M: Memory>(
        &self,
        what: &'static str,
        id: TypeId,
        val: &Val,
        ptr: u32,
        mem: &mut M,
    ) -> Result<(), M::Error> {
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
        self.encode(id, val, bytes, mem)?;
        mem.write(ptr, bytes)
    }

    /// Writes `val`'s bytes into `out` (`elem_size` of them, zeroed: padding stays 0),
    /// storing its strings and lists in guest memory.
    fn encode<M: Memory>(
        &self,
        id: TypeId,
        val: &Val,
        out: &mut [u8],
        mem: &mut M,
    ) -> Result<(), M::Error> {
        let (node, layout) = self.entry(id)?;
        match (node, val) {
            (TypeNode::Bool, Val::Bool(v)) => put(out, &[u8::from(*v)])?,
            (TypeNode::S8, Val::S8(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::U8, Val::U8(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::S16, Val::S16(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::U16, Val::U16(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::S32, Val::S32(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::U32, Val::U32(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::S64, Val::S64(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::U64, Val::U64(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::F32, Val::F32(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::F64, Val::F64(v)) => put(out, &v.to_le_bytes())?,
            (TypeNode::Char, Val::Char(c)) => put(out, &u32::from(*c).to_le_bytes())?,
            (TypeNode::Flags(count), Val::Flags(bits)) => {
                let bytes = check_flags(*count, *bits)?.to_le_bytes();
                put(
                    out,
                    bytes.get(..flags_size(*count) as usize).unwrap_or_default(),
                )?;
            }
            (TypeNode::Own(r), Val::Own(h)) => put(out, &mem.lower_own(*r, *h)?.to_le_bytes())?,
            (TypeNode::Borrow(r), Val::Borrow(h)) => {
                put(out, &mem.lower_borrow(*r, *h)?.to_le_bytes())?
            }
            (TypeNode::String, Val::String(s)) => put_ptr_len(out, self.store_string(s, mem)?)?,
            (TypeNode::List(elem), _) => put_ptr_len(out, self.store_list(*elem, val, mem)?)?,
            (TypeNode::Record(fields), Val::Record(vals))
            | (TypeNode::Tuple(fields), Val::Tuple(vals)) => {
                check_len(node.kind(), fields.len(), vals.len())?;
                self.encode_fields(fields, vals, out, mem)?;
            }
            (
                TypeNode::Variant(_)
                | TypeNode::Enum(_)
                | TypeNode::Option(_)
                | TypeNode::Result { .. },
                _,
            ) => {
                let (case, payload) = variant_parts(node, val)?;
                let disc = case.to_le_bytes();
                let cases = node.cases().ok_or(AbiError::TypesMismatch)?;
                put(
                    out,
                    disc.get(..discriminant_size(cases.count()) as usize)
                        .unwrap_or_default(),
                )?;
                if let Some((t, v)) = payload {
                    let (_, payload) = self.entry(t)?;
                    let bytes = sub_mut(out, u64::from(layout.payload_offset), payload.size)?;
                    self.encode(t, v, bytes, mem)?;
                }
            }
            _ => Err(AbiError::ValueMismatch {
                expected: node.kind(),
                found: val.kind(),
            })?,
        }
        Ok(())
    }

    /// Encodes `vals` of types `fields` laid out as a record (the spec's `store_record`).
    pub(crate) fn encode_fields<M: Memory>(
        &self,
        fields: &[TypeId],
        vals: &[Val],
        out: &mut [u8],
        mem: &mut M,
    ) -> Result<(), M::Error> {
        let mut offset = 0u64;
        for (field, v) in fields.iter().zip(vals) {
            let (_, layout) = self.entry(*field)?;
            offset = align_to(offset, layout.align);
            self.encode(*field, v, sub_mut(out, offset, layout.size)?, mem)?;
            offset += u64::from(layout.size);
        }
        Ok(())
    }

    /// The spec's `store_string_copy` for UTF-8 to UTF-8: `(ptr, len)`.
    fn store_string<M: Memory>(&self, s: &str, mem: &mut M) -> Result<(u32, u32), M::Error> {
        let len = match u32::try_from(s.len()) {
            Ok(len) if len <= MAX_STRING_BYTE_LENGTH => len,
            _ => Err(AbiError::StringTooLong {
                len: s.len() as u64,
            })?,
        };
        let ptr = mem.realloc(0, 0, 1, len)?;
        check_pointer(mem, "cabi_realloc result", ptr, 1, u64::from(len))?;
        mem.write(ptr, s.as_bytes())?;
        Ok((ptr, len))
    }

    /// The spec's `store_list_into_range`: `(ptr, len)`. A `list<u8>` is [`Val::Bytes`].
    fn store_list<M: Memory>(
        &self,
        elem: TypeId,
        val: &Val,
        mem: &mut M,
    ) -> Result<(u32, u32), M::Error> {
        let (node, layout) = self.entry(elem)?;
        let len = match (node, val) {
            (TypeNode::U8, Val::Bytes(bytes)) => bytes.len(),
            (TypeNode::U8, _) => Err(AbiError::ValueMismatch {
                expected: "list<u8>",
                found: val.kind(),
            })?,
            (_, Val::List(vals)) => vals.len(),
            _ => Err(AbiError::ValueMismatch {
                expected: "list",
                found: val.kind(),
            })?,
        };
        let too_long = AbiError::ListTooLong {
            len: len as u64,
            elem_size: layout.size,
        };
        let byte_len = match u32::try_from(len)
            .ok()
            .and_then(|n| n.checked_mul(layout.size))
        {
            Some(b) if b <= MAX_LIST_BYTE_LENGTH => b,
            _ => Err(too_long)?,
        };
        let ptr = mem.realloc(0, 0, layout.align, byte_len)?;
        check_pointer(
            mem,
            "cabi_realloc result",
            ptr,
            layout.align,
            u64::from(byte_len),
        )?;
        match val {
            Val::Bytes(bytes) => mem.write(ptr, bytes)?,
            Val::List(vals) if layout.size > 0 => {
                let mut buf = zeroed(u64::from(byte_len))?;
                for (bytes, v) in buf.chunks_exact_mut(layout.size as usize).zip(vals) {
                    self.encode(elem, v, bytes, mem)?;
                }
                mem.write(ptr, &buf)?;
            }
            _ => Err(AbiError::TypesMismatch)?,
        }
        // `byte_len` fits a u32 and every element takes at least a byte.
        Ok((ptr, len as u32))
    }
}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), AbiError> {
    if expected != found {
        return Err(AbiError::LengthMismatch {
            what,
            expected,
            found,
        });
    }
    Ok(())
}
