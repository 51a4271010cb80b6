//! `AbiError`: every way a value can fail to cross the canonical ABI.

use core::fmt;
use core::ops::Range;

use crate::{FlatType, MAX_LIST_BYTE_LENGTH, MAX_STRING_BYTE_LENGTH};

/// A value could not be lifted or lowered.
///
/// Most variants are the guest breaking the ABI (the spec's `trap_if`): the engine
/// should treat them as a trap of the instance. [`AbiError::ValueMismatch`],
/// [`AbiError::LengthMismatch`], [`AbiError::PayloadMismatch`] and
/// [`AbiError::UnknownFlags`] when lowering are the host handing over a value that is
/// not of the type; [`AbiError::FlatCount`] and [`AbiError::FlatType`] are the
/// engine passing core values that do not match the core signature.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbiError {
    /// A pointer is not aligned to what it points at.
    Misaligned {
        /// What the pointer is for: `"list"`, `"parameters"`, `"return area"`, ...
        what: &'static str,
        /// The pointer.
        ptr: u32,
        /// The alignment it needs, in bytes.
        align: u32,
    },
    /// A range of memory runs past the end of linear memory.
    OutOfBounds {
        /// Where the range starts.
        ptr: u32,
        /// Its length in bytes.
        len: u64,
        /// The size of linear memory in bytes.
        memory_len: u64,
    },
    /// A range of memory runs past 4 GiB, the end of any 32-bit memory.
    AddressOverflow {
        /// Where the range starts.
        ptr: u32,
        /// Its length in bytes.
        len: u64,
    },
    /// A list's byte length is over [`MAX_LIST_BYTE_LENGTH`].
    ListTooLong {
        /// The number of elements.
        len: u64,
        /// The size of one element in bytes.
        elem_size: u32,
    },
    /// A string's byte length is over [`MAX_STRING_BYTE_LENGTH`].
    StringTooLong {
        /// Its length in bytes.
        len: u64,
    },
    /// A string's bytes are not UTF-8.
    InvalidUtf8 {
        /// Where the string starts.
        ptr: u32,
        /// Its length in bytes.
        len: u32,
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: u32,
    },
    /// A `char` is a surrogate or past U+10FFFF.
    InvalidChar {
        /// The value.
        value: u32,
    },
    /// A variant, enum, option or result discriminant names no case.
    InvalidDiscriminant {
        /// The discriminant.
        value: u32,
        /// How many cases the type has.
        cases: u32,
    },
    /// The engine passed a different number of core values than the core signature has.
    FlatCount {
        /// What the signature has.
        expected: usize,
        /// What was passed.
        found: usize,
    },
    /// The engine passed a core value of another type than the core signature's.
    FlatType {
        /// The position of the value.
        index: usize,
        /// The signature's type.
        expected: FlatType,
        /// The value's type.
        found: FlatType,
    },
    /// The host gave a value of another kind than the type (`"string"` for `"u32"`).
    ValueMismatch {
        /// The type's kind.
        expected: &'static str,
        /// The value's kind.
        found: &'static str,
    },
    /// The host gave a record, tuple or argument list with the wrong number of values.
    LengthMismatch {
        /// `"record"`, `"tuple"` or `"parameters"`.
        what: &'static str,
        /// What the type has.
        expected: usize,
        /// What the value has.
        found: usize,
    },
    /// The host gave a payload for a case without one, or none for a case with one.
    PayloadMismatch {
        /// The case.
        case: u32,
        /// Whether the case has a payload.
        expected: bool,
    },
    /// The host set flags past the type's number of members.
    UnknownFlags {
        /// The bits given.
        bits: u32,
        /// How many flags the type has.
        count: u32,
    },
    /// A type id names no type of the table.
    UnknownType {
        /// The id.
        id: u32,
    },
    /// The host could not allocate room for a lifted value.
    OutOfHostMemory {
        /// The bytes asked for.
        bytes: u64,
    },
    /// A [`FuncAbi`](crate::FuncAbi) was used with another [`Types`](crate::Types)
    /// table than the one it was made from.
    TypesMismatch,
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiError::Misaligned { what, ptr, align } => {
                write!(f, "{what} pointer {ptr:#x} is not aligned to {align} bytes")
            }
            AbiError::OutOfBounds {
                ptr,
                len,
                memory_len,
            } => write!(
                f,
                "{len} bytes at {ptr:#x} run past the end of linear memory ({memory_len} bytes)"
            ),
            AbiError::AddressOverflow { ptr, len } => {
                write!(
                    f,
                    "{len} bytes at {ptr:#x} overflow the 32-bit address space"
                )
            }
            AbiError::ListTooLong { len, elem_size } => {
                let bytes = u128::from(*len) * u128::from(*elem_size);
                if bytes > u128::from(u32::MAX) {
                    write!(
                        f,
                        "list of {len} elements of {elem_size} bytes overflows the 32-bit \
                         address space"
                    )
                } else {
                    write!(
                        f,
                        "list of {len} elements of {elem_size} bytes is {bytes} bytes, over the \
                         canonical ABI's limit of {MAX_LIST_BYTE_LENGTH} bytes"
                    )
                }
            }
            AbiError::StringTooLong { len } => write!(
                f,
                "string of {len} bytes is over the canonical ABI's limit of \
                 {MAX_STRING_BYTE_LENGTH} bytes"
            ),
            AbiError::InvalidUtf8 {
                ptr,
                len,
                valid_up_to,
            } => write!(
                f,
                "string of {len} bytes at {ptr:#x} is not UTF-8: the byte at {:#x} starts an \
                 invalid sequence (strings cross the ABI as UTF-8 only)",
                u64::from(*ptr) + u64::from(*valid_up_to)
            ),
            AbiError::InvalidChar { value } => write!(
                f,
                "char {value:#x} is not a Unicode scalar value (surrogates and values past \
                 0x10ffff are not chars)"
            ),
            AbiError::InvalidDiscriminant { value, cases } => {
                write!(
                    f,
                    "discriminant {value} names no case of a type with {cases} cases"
                )
            }
            AbiError::FlatCount { expected, found } => write!(
                f,
                "{found} core values passed where the core signature has {expected} (the \
                 engine's function type differs from the FuncAbi's)"
            ),
            AbiError::FlatType {
                index,
                expected,
                found,
            } => write!(
                f,
                "core value {index} is an {found} where the core signature has an {expected}"
            ),
            AbiError::ValueMismatch { expected, found } => {
                write!(f, "a {found} value was given for a {expected} type")
            }
            AbiError::LengthMismatch {
                what,
                expected,
                found,
            } => {
                write!(f, "{found} values were given for a {what} of {expected}")
            }
            AbiError::PayloadMismatch {
                case,
                expected: true,
            } => {
                write!(f, "case {case} carries a payload, but none was given")
            }
            AbiError::PayloadMismatch {
                case,
                expected: false,
            } => {
                write!(f, "case {case} carries no payload, but one was given")
            }
            AbiError::UnknownFlags { bits, count } => {
                write!(f, "flags {bits:#x} set bits past the type's {count} flags")
            }
            AbiError::UnknownType { id } => {
                write!(
                    f,
                    "type {id} is not in the type table (a FuncAbi used with another table?)"
                )
            }
            AbiError::OutOfHostMemory { bytes } => {
                write!(
                    f,
                    "the host could not allocate {bytes} bytes for a lifted value"
                )
            }
            AbiError::TypesMismatch => f.write_str(
                "the value's layout does not match its type: a FuncAbi was used with another \
                 type table than the one it was made from",
            ),
        }
    }
}

impl core::error::Error for AbiError {}

/// The range of `len` bytes at `ptr` in a linear memory of `memory_len` bytes, or
/// [`AbiError::OutOfBounds`]: the one bounds check a [`Memory`](crate::Memory)
/// implementation needs.
pub fn check_range(ptr: u32, len: usize, memory_len: usize) -> Result<Range<usize>, AbiError> {
    let start = ptr as usize;
    match start.checked_add(len) {
        Some(end) if end <= memory_len => Ok(start..end),
        _ => Err(AbiError::OutOfBounds {
            ptr,
            len: len as u64,
            memory_len: memory_len as u64,
        }),
    }
}
