//! Typed errors of loading and running components, shared by both engines.

use alloc::string::String;
use core::fmt;

use crate::wit::Interface;

/// The kinds of canonical-ABI fault, whose summaries are [`Error::Abi`]'s messages on
/// both engines (`tern_cabi`'s, re-exported for engines that do not lift through it).
pub use tern_cabi::AbiFault;

/// Why a component could not be loaded or a call did not complete.
///
/// A component returning `Err(string)` from a handler is not an `Error`: that is the
/// component's own answer. These are failures of the component or its packaging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a valid wasm module for this engine.
    InvalidModule(String),
    /// The component imports a `tern:edge` interface its grant does not include.
    ImportNotGranted {
        /// The interface, such as `tern:edge/gpio@0.1.0`.
        interface: Interface,
    },
    /// The component imports something outside the `tern:edge` world.
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// The component lacks an export the world requires.
    MissingExport(&'static str),
    /// An import or export of the world has another core type in the component (it
    /// was built against another world, or by hand).
    TypeMismatch {
        /// The import (`tern:edge/log@0.1.0#log`) or export (`on-event`).
        item: String,
        /// The world's core type, such as `func (i32, i32) -> (i32)`.
        expected: String,
        /// The component's.
        found: String,
    },
    /// The call used up its fuel budget.
    FuelExhausted {
        /// The per-call budget.
        budget: u64,
    },
    /// The component tried to grow memory or a table past its limit.
    MemoryLimit {
        /// The linear-memory limit in bytes.
        limit_bytes: u32,
    },
    /// The call stack overflowed (runaway recursion).
    StackOverflow,
    /// The component trapped (`unreachable`, out-of-bounds access, division by zero,
    /// ...): the message is a [`TrapKind`]'s, the same on both engines.
    Trap(String),
    /// The component broke the canonical ABI (bad pointer, invalid UTF-8, bad
    /// discriminant): the message is an [`AbiFault`]'s summary, the same on both
    /// engines, without addresses or engine text.
    Abi(String),
    /// An earlier call failed fatally; instantiate the component again.
    Poisoned,
    /// Anything else the engine reported.
    Engine(String),
}

/// The class of an [`Error`], for comparing outcomes across engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// [`Error::InvalidModule`]
    InvalidModule,
    /// [`Error::ImportNotGranted`]
    ImportNotGranted,
    /// [`Error::UnknownImport`]
    UnknownImport,
    /// [`Error::MissingExport`]
    MissingExport,
    /// [`Error::TypeMismatch`]
    TypeMismatch,
    /// [`Error::FuelExhausted`]
    FuelExhausted,
    /// [`Error::MemoryLimit`]
    MemoryLimit,
    /// [`Error::StackOverflow`]
    StackOverflow,
    /// [`Error::Trap`]
    Trap,
    /// [`Error::Abi`]
    Abi,
    /// [`Error::Poisoned`]
    Poisoned,
    /// [`Error::Engine`]
    Engine,
}

impl Error {
    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidModule(_) => ErrorClass::InvalidModule,
            Error::ImportNotGranted { .. } => ErrorClass::ImportNotGranted,
            Error::UnknownImport { .. } => ErrorClass::UnknownImport,
            Error::MissingExport(_) => ErrorClass::MissingExport,
            Error::TypeMismatch { .. } => ErrorClass::TypeMismatch,
            Error::FuelExhausted { .. } => ErrorClass::FuelExhausted,
            Error::MemoryLimit { .. } => ErrorClass::MemoryLimit,
            Error::StackOverflow => ErrorClass::StackOverflow,
            Error::Trap(_) => ErrorClass::Trap,
            Error::Abi(_) => ErrorClass::Abi,
            Error::Poisoned => ErrorClass::Poisoned,
            Error::Engine(_) => ErrorClass::Engine,
        }
    }

    /// Whether the instance must not be entered again after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::FuelExhausted
                | ErrorClass::MemoryLimit
                | ErrorClass::StackOverflow
                | ErrorClass::Trap
                | ErrorClass::Abi
                | ErrorClass::Poisoned
                | ErrorClass::Engine
        )
    }
}

/// A trap of the component's own code, worded once for both engines: its
/// [`message`](TrapKind::message) is [`Error::Trap`]'s. Running out of fuel or stack
/// and hitting a limit are errors of their own ([`Error::FuelExhausted`],
/// [`Error::StackOverflow`], [`Error::MemoryLimit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// An `unreachable` instruction.
    Unreachable,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// A table access outside the table.
    TableOutOfBounds,
    /// An indirect call through a null table entry.
    IndirectCallToNull,
    /// An indirect call to a function of another type.
    BadSignature,
    /// An integer division or remainder by zero.
    IntegerDivisionByZero,
    /// An integer overflow (`i32.div_s` of the minimum by -1).
    IntegerOverflow,
    /// A float that does not convert to the integer type.
    BadConversionToInteger,
    /// A trap the other engine does not have.
    Other,
}

impl TrapKind {
    /// The trap's description (Wasmtime's wording, without its `wasm trap: ` prefix).
    pub const fn message(self) -> &'static str {
        match self {
            TrapKind::Unreachable => "wasm `unreachable` instruction executed",
            TrapKind::MemoryOutOfBounds => "out of bounds memory access",
            TrapKind::TableOutOfBounds => "undefined element: out of bounds table access",
            TrapKind::IndirectCallToNull => "uninitialized element",
            TrapKind::BadSignature => "indirect call type mismatch",
            TrapKind::IntegerDivisionByZero => "integer divide by zero",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::BadConversionToInteger => "invalid conversion to integer",
            TrapKind::Other => "unclassified trap",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidModule(e) => write!(f, "invalid wasm module: {e}"),
            Error::ImportNotGranted { interface } if interface.capability() != *interface => {
                write!(
                    f,
                    "import not granted: the component imports `{interface}`, which its grant does not include; grant `{}` or remove the import",
                    interface.capability().name()
                )
            }
            Error::ImportNotGranted { interface } => write!(
                f,
                "import not granted: the component imports `{interface}`, which its grant does not include; grant it or remove the import"
            ),
            Error::UnknownImport { module, name } => {
                write!(
                    f,
                    "unknown import `{module}#{name}`: components may import only the tern:edge@0.1.0 interfaces"
                )?;
                // And the WASI interfaces of world `runtime`, with the functions offered.
                for i in Interface::ALL.iter().filter(|i| i.capability() != **i) {
                    write!(f, ", {} (", i.import_module())?;
                    for (k, func) in crate::abi::functions(*i).iter().enumerate() {
                        f.write_str(if k == 0 { "" } else { ", " })?;
                        f.write_str(func)?;
                    }
                    f.write_str(")")?;
                }
                Ok(())
            }
            Error::MissingExport(name) => write!(
                f,
                "missing export `{name}`: the component does not implement the tern:edge world"
            ),
            Error::TypeMismatch {
                item,
                expected,
                found,
            } => write!(
                f,
                "type mismatch: the component's `{item}` is {found}, but the tern:edge@0.1.0 world's is {expected}; rebuild it against runtime/wit"
            ),
            Error::FuelExhausted { budget } => write!(
                f,
                "fuel exhausted: the call ran past its budget of {budget} instructions (runaway loop?)"
            ),
            Error::MemoryLimit { limit_bytes } => write!(
                f,
                "memory limit: the component tried to grow past {limit_bytes} bytes of linear memory"
            ),
            Error::StackOverflow => {
                f.write_str("stack overflow: the call nested too deeply (runaway recursion?)")
            }
            Error::Trap(e) => write!(f, "trap: {e}"),
            Error::Abi(e) => write!(f, "canonical ABI violation by the component: {e}"),
            Error::Poisoned => f.write_str(
                "instance poisoned by an earlier fatal error; instantiate the component again",
            ),
            Error::Engine(e) => write!(f, "engine error: {e}"),
        }
    }
}

impl core::error::Error for Error {}
