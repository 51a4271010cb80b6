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
    /// The guest passed a resource handle its instance's table does not hold (never
    /// given, already dropped, or 0).
    UnknownHandle {
        /// The handle index.
        index: u32,
    },
    /// The guest passed a handle to a resource of another type than the function
    /// takes.
    HandleType {
        /// The handle index.
        index: u32,
    },
    /// The instance's handle table is full: the guest keeps too many resources open.
    HandleTableFull {
        /// The table's capacity.
        capacity: u32,
    },
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
            AbiError::UnknownHandle { index } => write!(
                f,
                "resource handle {index} is not in the instance's table (never given, or \
                 already dropped)"
            ),
            AbiError::HandleType { index } => write!(
                f,
                "resource handle {index} is a handle to a resource of another type"
            ),
            AbiError::HandleTableFull { capacity } => write!(
                f,
                "the instance already holds {capacity} resource handles, the most it may \
                 (drop the ones it no longer uses)"
            ),
        }
    }
}

impl core::error::Error for AbiError {}

/// The kind of an ABI fault, as every engine can tell it: what an engine reports to
/// the embedder, in [`AbiFault::summary`]'s fixed wording.
///
/// [`AbiError`]'s `Display` says exactly what went wrong, with the pointers and
/// lengths (for debug logs); a summary is short, fixed and free of addresses, so that
/// two engines that found the same fault report it with the same text. The
/// categories are the ones an engine with its own component runtime (Wasmtime)
/// tells apart too: which pointer was misaligned, but not which range ran past the end
/// of memory or whether a list or string was over the ABI's length limit (in a linear
/// memory under 256 MiB such a list or string cannot fit, so it is out of bounds
/// there as well).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbiFault {
    /// The return-area pointer the guest passed to an imported function is not
    /// aligned to the result.
    ReturnAreaMisaligned,
    /// The pointer to an imported function's parameters in memory is not aligned.
    ParamsMisaligned,
    /// The pointer to its result an export returned is not aligned.
    ResultMisaligned,
    /// A list's pointer is not aligned to its elements.
    ListMisaligned,
    /// A string's pointer is not aligned to its code units.
    StringMisaligned,
    /// `cabi_realloc` returned a pointer that is not aligned as asked.
    ReallocMisaligned,
    /// Any other pointer is not aligned (a value loaded or stored directly).
    PointerMisaligned,
    /// A pointer and length run past the end of linear memory or of the 32-bit
    /// address space, or a list or string is longer than the ABI allows.
    OutOfBounds,
    /// A string's bytes are not UTF-8.
    InvalidUtf8,
    /// A `char` is a surrogate or past U+10FFFF.
    InvalidChar,
    /// A variant, enum, option or result discriminant names no case.
    InvalidDiscriminant,
    /// The host handed over a value that is not of its type (a bug in the host).
    HostValue,
    /// The engine passed core values that do not match the function's core
    /// signature, or used a function's ABI with another type table (a bug in the
    /// engine).
    CoreSignature,
    /// The host could not allocate room for a lifted value.
    HostOutOfMemory,
    /// A resource handle the instance's table does not hold.
    UnknownHandle,
    /// A resource handle of another resource type than the function takes.
    HandleType,
    /// The instance's handle table is full.
    HandleTableFull,
    /// A fault the engine reported that is none of the above.
    Other,
}

impl AbiFault {
    /// Every kind, in declaration order.
    pub const ALL: [AbiFault; 18] = [
        AbiFault::ReturnAreaMisaligned,
        AbiFault::ParamsMisaligned,
        AbiFault::ResultMisaligned,
        AbiFault::ListMisaligned,
        AbiFault::StringMisaligned,
        AbiFault::ReallocMisaligned,
        AbiFault::PointerMisaligned,
        AbiFault::OutOfBounds,
        AbiFault::InvalidUtf8,
        AbiFault::InvalidChar,
        AbiFault::InvalidDiscriminant,
        AbiFault::HostValue,
        AbiFault::CoreSignature,
        AbiFault::HostOutOfMemory,
        AbiFault::UnknownHandle,
        AbiFault::HandleType,
        AbiFault::HandleTableFull,
        AbiFault::Other,
    ];

    /// The fault's summary: short, fixed, without addresses or lengths; the same
    /// text on every engine.
    pub const fn summary(self) -> &'static str {
        match self {
            AbiFault::ReturnAreaMisaligned => "return area pointer not aligned",
            AbiFault::ParamsMisaligned => "parameter area pointer not aligned",
            AbiFault::ResultMisaligned => "result pointer not aligned",
            AbiFault::ListMisaligned => "list pointer not aligned",
            AbiFault::StringMisaligned => "string pointer not aligned",
            AbiFault::ReallocMisaligned => "cabi_realloc result not aligned",
            AbiFault::PointerMisaligned => "pointer not aligned",
            AbiFault::OutOfBounds => "pointer/length out of bounds of memory",
            AbiFault::InvalidUtf8 => "string is not valid UTF-8",
            AbiFault::InvalidChar => "char is not a Unicode scalar value",
            AbiFault::InvalidDiscriminant => "invalid discriminant",
            AbiFault::HostValue => "host value does not match its type",
            AbiFault::CoreSignature => "core values do not match the core signature",
            AbiFault::HostOutOfMemory => "host out of memory for a lifted value",
            AbiFault::UnknownHandle => "unknown resource handle",
            AbiFault::HandleType => "resource handle of another type",
            AbiFault::HandleTableFull => "resource handle table full",
            AbiFault::Other => "canonical ABI violation",
        }
    }
}

impl fmt::Display for AbiFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.summary())
    }
}

impl AbiError {
    /// The kind of fault, as every engine can tell it (see [`AbiFault`]).
    pub fn fault(&self) -> AbiFault {
        match self {
            AbiError::Misaligned { what, .. } => match *what {
                "return area" => AbiFault::ReturnAreaMisaligned,
                "parameters" => AbiFault::ParamsMisaligned,
                "result" => AbiFault::ResultMisaligned,
                "list" => AbiFault::ListMisaligned,
                "string" => AbiFault::StringMisaligned,
                "cabi_realloc result" => AbiFault::ReallocMisaligned,
                _ => AbiFault::PointerMisaligned,
            },
            AbiError::OutOfBounds { .. }
            | AbiError::AddressOverflow { .. }
            | AbiError::ListTooLong { .. }
            | AbiError::StringTooLong { .. } => AbiFault::OutOfBounds,
            AbiError::InvalidUtf8 { .. } => AbiFault::InvalidUtf8,
            AbiError::InvalidChar { .. } => AbiFault::InvalidChar,
            AbiError::InvalidDiscriminant { .. } => AbiFault::InvalidDiscriminant,
            AbiError::ValueMismatch { .. }
            | AbiError::LengthMismatch { .. }
            | AbiError::PayloadMismatch { .. }
            | AbiError::UnknownFlags { .. } => AbiFault::HostValue,
            AbiError::FlatCount { .. }
            | AbiError::FlatType { .. }
            | AbiError::UnknownType { .. }
            | AbiError::TypesMismatch => AbiFault::CoreSignature,
            AbiError::OutOfHostMemory { .. } => AbiFault::HostOutOfMemory,
            AbiError::UnknownHandle { .. } => AbiFault::UnknownHandle,
            AbiError::HandleType { .. } => AbiFault::HandleType,
            AbiError::HandleTableFull { .. } => AbiFault::HandleTableFull,
        }
    }

    /// A short, fixed, address-free summary of the fault: [`AbiFault::summary`] of
    /// [`AbiError::fault`]. What an engine reports; `Display` has the details.
    pub fn summary(&self) -> &'static str {
        self.fault().summary()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every summary is its own, and none carries a number (an address, a length,
    /// a discriminant) or a line break.
    #[test]
    fn summaries_are_distinct_and_address_free() {
        for (i, a) in AbiFault::ALL.iter().enumerate() {
            let s = a.summary();
            assert!(!s.is_empty());
            let words = s.replace("UTF-8", "UTF");
            assert!(
                !words.contains(|c: char| c.is_ascii_digit() || c == '\n'),
                "{s}"
            );
            assert_eq!(alloc::format!("{a}"), s);
            for b in &AbiFault::ALL[i + 1..] {
                assert_ne!(s, b.summary(), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn each_error_has_its_fault() {
        let misaligned = |what| AbiError::Misaligned {
            what,
            ptr: 6,
            align: 4,
        };
        let cases = [
            (misaligned("return area"), AbiFault::ReturnAreaMisaligned),
            (misaligned("parameters"), AbiFault::ParamsMisaligned),
            (misaligned("result"), AbiFault::ResultMisaligned),
            (misaligned("list"), AbiFault::ListMisaligned),
            (misaligned("string"), AbiFault::StringMisaligned),
            (
                misaligned("cabi_realloc result"),
                AbiFault::ReallocMisaligned,
            ),
            (misaligned("value"), AbiFault::PointerMisaligned),
            (
                AbiError::OutOfBounds {
                    ptr: 0xffff_0000,
                    len: 10,
                    memory_len: 65536,
                },
                AbiFault::OutOfBounds,
            ),
            (
                AbiError::AddressOverflow {
                    ptr: 0xffff_fff0,
                    len: 32,
                },
                AbiFault::OutOfBounds,
            ),
            (
                AbiError::ListTooLong {
                    len: 1 << 28,
                    elem_size: 40,
                },
                AbiFault::OutOfBounds,
            ),
            (
                AbiError::StringTooLong { len: 1 << 28 },
                AbiFault::OutOfBounds,
            ),
            (
                AbiError::InvalidUtf8 {
                    ptr: 300,
                    len: 2,
                    valid_up_to: 0,
                },
                AbiFault::InvalidUtf8,
            ),
            (
                AbiError::InvalidChar { value: 0xd800 },
                AbiFault::InvalidChar,
            ),
            (
                AbiError::InvalidDiscriminant { value: 2, cases: 2 },
                AbiFault::InvalidDiscriminant,
            ),
            (
                AbiError::ValueMismatch {
                    expected: "u32",
                    found: "string",
                },
                AbiFault::HostValue,
            ),
            (
                AbiError::LengthMismatch {
                    what: "record",
                    expected: 2,
                    found: 3,
                },
                AbiFault::HostValue,
            ),
            (
                AbiError::PayloadMismatch {
                    case: 1,
                    expected: true,
                },
                AbiFault::HostValue,
            ),
            (
                AbiError::UnknownFlags { bits: 8, count: 3 },
                AbiFault::HostValue,
            ),
            (
                AbiError::FlatCount {
                    expected: 2,
                    found: 1,
                },
                AbiFault::CoreSignature,
            ),
            (
                AbiError::FlatType {
                    index: 0,
                    expected: FlatType::I32,
                    found: FlatType::I64,
                },
                AbiFault::CoreSignature,
            ),
            (AbiError::UnknownType { id: 9 }, AbiFault::CoreSignature),
            (AbiError::TypesMismatch, AbiFault::CoreSignature),
            (
                AbiError::OutOfHostMemory { bytes: 1 << 40 },
                AbiFault::HostOutOfMemory,
            ),
            (
                AbiError::UnknownHandle { index: 3 },
                AbiFault::UnknownHandle,
            ),
            (AbiError::HandleType { index: 1 }, AbiFault::HandleType),
            (
                AbiError::HandleTableFull { capacity: 64 },
                AbiFault::HandleTableFull,
            ),
        ];
        for (e, fault) in cases {
            assert_eq!(e.fault(), fault, "{e}");
            assert_eq!(e.summary(), fault.summary());
        }
    }
}
