//! The Component Model's canonical ABI over a compact type description, for engines
//! that run core wasm without a component model (wasmi on Cortex-M devices).
//!
//! `no_std` + `alloc`, no `unsafe`. The code follows the spec's own definitions
//! (`design/mvp/CanonicalABI.md` in WebAssembly/component-model): [`Types`] computes
//! `alignment`, `elem_size` and `flatten_type`; [`FuncAbi`] is `flatten_functype`
//! with `lift_flat_values`/`lower_flat_values`; lifting and lowering are `lift_flat`,
//! `load`, `lower_flat` and `store`.
//!
//! # What is implemented
//!
//! Synchronous calls with a 32-bit memory and UTF-8 strings: every value type of the
//! MVP (`bool`, integers, floats, `char`, `string`, `list`, `record`, `tuple`,
//! `variant`, `enum`, `option`, `result`, `flags` of up to 32 members, `own` and
//! `borrow`), flat parameters up to [`MAX_FLAT_PARAMS`] and a flat result up to
//! [`MAX_FLAT_RESULTS`], otherwise parameters and results in memory, with the
//! return-area pointer for imports, `cabi_realloc` for exports, and the post-return
//! contract. Every `trap_if` of the spec is an [`AbiError`]: pointer alignment,
//! bounds, the 32-bit address space, list and string byte lengths
//! ([`MAX_LIST_BYTE_LENGTH`], [`MAX_STRING_BYTE_LENGTH`]), UTF-8, `char` validity and
//! discriminants. No input makes it panic: sizes the guest controls are allocated
//! with `try_reserve`.
//!
//! Where the spec says so, lifting is lenient: a `bool` is true for any non-zero
//! value, and `flags` bits past the last flag are ignored (Wasmtime does the same;
//! refusing them would make a device trap where a server does not). Floats keep
//! their bits, NaNs included.
//!
//! Not implemented: UTF-16 and latin1+UTF-16 strings, 64-bit memories, `async`
//! (`task.return`, callbacks), `stream`, `future`, `error-context`, fixed-length
//! lists and `map`. A world that uses them must be refused when it is signed.
//!
//! # The description
//!
//! A [`Types`] table holds one [`TypeNode`] per type, children before parents, and a
//! [`FuncType`] names its parameter and result types by [`TypeId`]. There are no
//! labels: values number fields, cases and flags by position. The tool that signs a
//! bundle makes the description from `wit-parser`'s `Resolve` (one node per
//! `TypeDefKind`, type aliases resolved to their target, resources numbered by
//! [`ResourceId`]), refuses what is not implemented, and carries it in the bundle as
//! postcard (`Types` and `FuncType` are serde types). Deserializing a `Types`
//! validates it ([`Types::new`]), so a device only lifts against a checked
//! description.
//!
//! # What the engine implements
//!
//! [`Memory`]: the size of linear memory, reading and writing it ([`check_range`]
//! is the bounds check), calling the guest's `cabi_realloc`, and optionally the
//! resource-handle table (the `lift_own`/`lower_own` hooks; by default handles pass
//! through as `i32` indices). For each imported function it declares
//! [`FuncAbi::import_signature`] and, when called, converts its core arguments to
//! [`FlatVal`]s, calls [`FuncAbi::lift_params`], runs the host function and
//! returns what [`FuncAbi::lower_result`] gives. For each export it calls
//! [`FuncAbi::lower_params`], the export, [`FuncAbi::lift_result`], and then the
//! export's `cabi_post_<name>` with the same core results.
//!
//! The flat path is the fast path: when every parameter (or the result) is a scalar
//! (a number, `bool`, `char`, `enum`, `flags` or a handle), [`FuncAbi`] lifts and
//! lowers it without walking the type table, into a reused `Vec<Val>` and inline
//! buffers ([`FlatVals`]), so a call such as `clock.now-ms() -> u64` allocates
//! nothing. `README.md` has the details.
#![forbid(unsafe_code)]
#![no_std]

extern crate alloc;

mod error;
mod func;
mod lift;
mod lower;
mod memory;
mod scalar;
mod types;
mod val;

pub use error::{AbiError, AbiFault, check_range};
pub use func::{CoreSignature, FuncAbi, FuncType, ResultAbi};
pub use memory::Memory;
pub use types::{Flat, FlatType, ResourceId, TypeError, TypeId, TypeNode, Types, TypesBuilder};
pub use val::{FlatVal, FlatVals, Val};

/// The most core values parameters are passed as before they go in memory.
pub const MAX_FLAT_PARAMS: usize = 16;

/// The most core values a result is returned as before it goes in memory.
pub const MAX_FLAT_RESULTS: usize = 1;

/// The longest string, in bytes, the ABI moves: 2^28 - 1.
pub const MAX_STRING_BYTE_LENGTH: u32 = (1 << 28) - 1;

/// The longest list, in bytes, the ABI moves (2^28 - 1); also the bound on a type's
/// size.
pub const MAX_LIST_BYTE_LENGTH: u32 = (1 << 28) - 1;

/// The deepest nesting of types a description may have (`list<u32>` is 2 deep).
///
/// Lifting and lowering recurse once per level, so this bounds their stack use on a
/// device; WIT interfaces rarely go past 6.
pub const MAX_TYPE_DEPTH: usize = 16;
