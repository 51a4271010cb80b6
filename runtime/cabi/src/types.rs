//! The type description: a table of type nodes, validated once, with every node's layout.
//!
//! A node refers to other nodes by [`TypeId`], and only to nodes before it in the
//! table, so a table has no cycles and each node's size, alignment and flattening can
//! be computed in one pass, in order, when the table is made ([`Types::new`]). The
//! definitions are the canonical ABI's `alignment`, `elem_size` and `flatten_type`
//! (memory32, UTF-8), with `tuple`, `enum`, `option` and `result` despecialized into
//! records and variants exactly as the spec's `despecialize` does.

use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{MAX_FLAT_PARAMS, MAX_LIST_BYTE_LENGTH, MAX_TYPE_DEPTH};

/// The index of a node in a [`Types`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TypeId(pub u32);

/// The index of a resource type in the world's list of resources.
///
/// What a resource is, and which table its handles index, is the engine's business:
/// the ABI only moves the `i32` handle (see [`Memory::lift_own`](crate::Memory::lift_own)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(pub u32);

/// One component-model value type.
///
/// The serialized form is postcard's encoding of this enum: the variant's index, then
/// its fields. New kinds of type are only ever appended, so that a bundle signed
/// today still reads the same tomorrow. Labels (field, case and flag names) are not
/// part of the description: the ABI never needs them, and values refer to fields,
/// cases and flags by position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TypeNode {
    /// `bool`
    Bool,
    /// `s8`
    S8,
    /// `u8`
    U8,
    /// `s16`
    S16,
    /// `u16`
    U16,
    /// `s32`
    S32,
    /// `u32`
    U32,
    /// `s64`
    S64,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`: a Unicode scalar value.
    Char,
    /// `string`, always UTF-8 here.
    String,
    /// `list<T>` (variable length). A `list<u8>` is carried as [`Val::Bytes`](crate::Val::Bytes).
    List(TypeId),
    /// `record { .. }`: the field types in declaration order (at least one).
    Record(Vec<TypeId>),
    /// `tuple<..>`: the element types (at least one).
    Tuple(Vec<TypeId>),
    /// `variant { .. }`: each case's payload type, `None` for a case without one.
    Variant(Vec<Option<TypeId>>),
    /// `enum { .. }`: the number of cases (at least one).
    Enum(u32),
    /// `option<T>`
    Option(TypeId),
    /// `result<T, E>`, `result<T>`, `result<_, E>` or `result`.
    Result {
        /// The `ok` payload, if any.
        ok: Option<TypeId>,
        /// The `error` payload, if any.
        err: Option<TypeId>,
    },
    /// `flags { .. }`: the number of flags, 1 to 32.
    Flags(u32),
    /// `own<R>`: an owned handle to resource `R`.
    Own(ResourceId),
    /// `borrow<R>`: a borrowed handle to resource `R`.
    Borrow(ResourceId),
}

impl TypeNode {
    /// Whether values of this type are one core value that owns nothing: the
    /// integers, floats, `bool`, `char`, enums, flags and handles. Their `Val`s hold
    /// no heap memory.
    pub fn is_scalar(&self) -> bool {
        crate::scalar::Scalar::of(self).is_some()
    }

    /// The type's name in WIT, for messages (`"record"`, `"u32"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            TypeNode::Bool => "bool",
            TypeNode::S8 => "s8",
            TypeNode::U8 => "u8",
            TypeNode::S16 => "s16",
            TypeNode::U16 => "u16",
            TypeNode::S32 => "s32",
            TypeNode::U32 => "u32",
            TypeNode::S64 => "s64",
            TypeNode::U64 => "u64",
            TypeNode::F32 => "f32",
            TypeNode::F64 => "f64",
            TypeNode::Char => "char",
            TypeNode::String => "string",
            TypeNode::List(_) => "list",
            TypeNode::Record(_) => "record",
            TypeNode::Tuple(_) => "tuple",
            TypeNode::Variant(_) => "variant",
            TypeNode::Enum(_) => "enum",
            TypeNode::Option(_) => "option",
            TypeNode::Result { .. } => "result",
            TypeNode::Flags(_) => "flags",
            TypeNode::Own(_) => "own",
            TypeNode::Borrow(_) => "borrow",
        }
    }

    /// Calls `f` with every node this one refers to.
    fn for_each_child(&self, mut f: impl FnMut(TypeId)) {
        match self {
            TypeNode::List(t) | TypeNode::Option(t) => f(*t),
            TypeNode::Record(ts) | TypeNode::Tuple(ts) => ts.iter().copied().for_each(f),
            TypeNode::Variant(cases) => cases.iter().flatten().copied().for_each(f),
            TypeNode::Result { ok, err } => ok.iter().chain(err).copied().for_each(f),
            _ => {}
        }
    }

    /// The cases of a type that despecializes to a variant.
    pub(crate) fn cases(&self) -> Option<Cases<'_>> {
        Some(match self {
            TypeNode::Variant(cases) => Cases::Variant(cases),
            TypeNode::Enum(n) => Cases::Enum(*n),
            TypeNode::Option(t) => Cases::Option(*t),
            TypeNode::Result { ok, err } => Cases::Result(*ok, *err),
            _ => return None,
        })
    }
}

/// The cases of `variant`, `enum`, `option` or `result`, as the spec's
/// `despecialize` sees them.
#[derive(Clone, Copy)]
pub(crate) enum Cases<'a> {
    Variant(&'a [Option<TypeId>]),
    Enum(u32),
    Option(TypeId),
    Result(Option<TypeId>, Option<TypeId>),
}

impl Cases<'_> {
    pub(crate) fn count(self) -> u32 {
        match self {
            // Validation bounds a variant's cases by `u32::MAX`.
            Cases::Variant(cases) => u32::try_from(cases.len()).unwrap_or(u32::MAX),
            Cases::Enum(n) => n,
            Cases::Option(_) | Cases::Result(..) => 2,
        }
    }

    /// The payload type of case `case` (`None` for a case without payload or past the end).
    pub(crate) fn payload(self, case: u32) -> Option<TypeId> {
        match self {
            Cases::Variant(cases) => cases.get(case as usize).copied().flatten(),
            Cases::Enum(_) => None,
            Cases::Option(t) => (case == 1).then_some(t),
            Cases::Result(ok, err) => match case {
                0 => ok,
                1 => err,
                _ => None,
            },
        }
    }

    fn payloads(self, mut f: impl FnMut(TypeId)) {
        match self {
            Cases::Variant(cases) => cases.iter().flatten().copied().for_each(f),
            Cases::Enum(_) => {}
            Cases::Option(t) => f(t),
            Cases::Result(ok, err) => ok.iter().chain(&err).copied().for_each(f),
        }
    }
}

/// The byte size of a variant's discriminant: the smallest of 1, 2 or 4 bytes that
/// numbers `cases` cases (the spec's `discriminant_type`).
pub(crate) fn discriminant_size(cases: u32) -> u32 {
    match cases {
        0..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        _ => 4,
    }
}

/// The byte size (and alignment) of `flags` with `count` members, at most 32.
pub(crate) fn flags_size(count: u32) -> u32 {
    match count {
        0..=8 => 1,
        9..=16 => 2,
        _ => 4,
    }
}

/// The mask of the bits `flags` with `count` members (1 to 32) uses.
pub(crate) fn flags_mask(count: u32) -> u32 {
    u32::MAX.checked_shr(32 - count.min(32)).unwrap_or(0)
}

pub(crate) fn align_to(offset: u64, align: u32) -> u64 {
    offset.next_multiple_of(u64::from(align.max(1)))
}

/// A core WebAssembly value type: what a component value flattens to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlatType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl FlatType {
    /// The spec's `join`: the core type both `self` and `other` can be carried in.
    pub fn join(self, other: FlatType) -> FlatType {
        match (self, other) {
            (a, b) if a == b => a,
            (FlatType::I32, FlatType::F32) | (FlatType::F32, FlatType::I32) => FlatType::I32,
            _ => FlatType::I64,
        }
    }
}

impl fmt::Display for FlatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlatType::I32 => "i32",
            FlatType::I64 => "i64",
            FlatType::F32 => "f32",
            FlatType::F64 => "f64",
        })
    }
}

/// How a type flattens ([`Types::flatten`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flat<'a> {
    /// These core values, at most [`MAX_FLAT_PARAMS`] of them.
    Values(&'a [FlatType]),
    /// More than [`MAX_FLAT_PARAMS`] core values: a type this large always travels in
    /// linear memory, so its exact flattening is never needed and not kept.
    TooMany,
}

/// A flat-length marker for "more than [`MAX_FLAT_PARAMS`]".
const FLAT_TOO_MANY: u8 = u8::MAX;

/// What validation works out for each node, kept so that lifting and lowering never
/// compute a layout again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// `elem_size`, below [`MAX_LIST_BYTE_LENGTH`] + 1.
    pub(crate) size: u32,
    /// `alignment`: 1, 2, 4 or 8.
    pub(crate) align: u32,
    /// For variants, the offset of the payload after the discriminant; else 0.
    pub(crate) payload_offset: u32,
    /// Where the node's flat types start in [`Types::flat`].
    flat_start: u32,
    /// How many flat types, or [`FLAT_TOO_MANY`].
    flat_len: u8,
}

impl Layout {
    /// The flat length when the node flattens to at most [`MAX_FLAT_PARAMS`] values.
    pub(crate) fn flat_len(&self) -> Option<usize> {
        (self.flat_len != FLAT_TOO_MANY).then_some(usize::from(self.flat_len))
    }
}

/// Why a type description or function type was refused.
///
/// These are checked when a description is made or deserialized, so that the signing
/// tool refuses a world the device could not run, and a device never lifts against a
/// description it has not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeError {
    /// More nodes than a `u32` can number.
    TooManyTypes {
        /// The number of nodes given.
        count: usize,
    },
    /// A node refers to itself or to a node after it.
    ForwardReference {
        /// The node.
        node: u32,
        /// The node it refers to.
        child: u32,
    },
    /// A record or tuple without fields, or a variant, enum or flags without cases.
    Empty {
        /// The node.
        node: u32,
        /// What kind of type it is.
        kind: &'static str,
    },
    /// A variant with more cases than a `u32` discriminant numbers.
    TooManyCases {
        /// The node.
        node: u32,
        /// The number of cases.
        count: usize,
    },
    /// `flags` with more than 32 members.
    TooManyFlags {
        /// The node.
        node: u32,
        /// The number of members.
        count: u32,
    },
    /// Nesting deeper than [`MAX_TYPE_DEPTH`].
    TooDeep {
        /// The node.
        node: u32,
    },
    /// A type whose `elem_size` is 2^28 bytes or more.
    TooLarge {
        /// The node.
        node: u32,
        /// Its size in bytes.
        size: u64,
    },
    /// A function type names a type the table does not have.
    UnknownType {
        /// The missing index.
        id: u32,
    },
    /// A function's parameters, stored as a tuple, take 4 GiB or more.
    ParamsTooLarge {
        /// Their size in bytes.
        size: u64,
    },
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeError::TooManyTypes { count } => write!(
                f,
                "the type table has {count} types; at most {} can be numbered",
                u32::MAX
            ),
            TypeError::ForwardReference { node, child } => write!(
                f,
                "type {node} refers to type {child}; a type may only refer to types listed \
                 before it (write the table children first)"
            ),
            TypeError::Empty { node, kind } => write!(
                f,
                "type {node} is an empty {kind}; the component model has no empty types"
            ),
            TypeError::TooManyCases { node, count } => write!(
                f,
                "type {node} is a variant of {count} cases; at most {} fit a discriminant",
                u32::MAX
            ),
            TypeError::TooManyFlags { node, count } => write!(
                f,
                "type {node} is flags with {count} members; the canonical ABI allows at most 32 \
                 (split them into several flags types)"
            ),
            TypeError::TooDeep { node } => write!(
                f,
                "type {node} nests more than {MAX_TYPE_DEPTH} types deep, the most a device \
                 lifts (flatten the WIT type, for instance with a record of lists)"
            ),
            TypeError::TooLarge { node, size } => write!(
                f,
                "type {node} is {size} bytes; the component model bounds a type's size by \
                 {MAX_LIST_BYTE_LENGTH} bytes"
            ),
            TypeError::UnknownType { id } => {
                write!(
                    f,
                    "the function type names type {id}, which the table does not have"
                )
            }
            TypeError::ParamsTooLarge { size } => write!(
                f,
                "the function's parameters take {size} bytes in memory, more than a 32-bit \
                 address space holds"
            ),
        }
    }
}

impl core::error::Error for TypeError {}

/// A validated table of type nodes with the layout of each.
///
/// Made by [`Types::new`] (or [`TypesBuilder`], or deserializing), which refuses any
/// table the canonical ABI does not define; after that, every `TypeId` below
/// [`Types::nodes`]`.len()` has a size, an alignment and a flattening.
#[derive(Clone, Debug)]
pub struct Types {
    nodes: Vec<TypeNode>,
    layouts: Vec<Layout>,
    /// Every node's flat types (those with at most `MAX_FLAT_PARAMS`), back to back.
    flat: Vec<FlatType>,
}

// Layouts and flat types are derived from the nodes, so comparing nodes suffices.
impl PartialEq for Types {
    fn eq(&self, other: &Types) -> bool {
        self.nodes == other.nodes
    }
}

impl Eq for Types {}

/// Flat types being gathered for one node, capped at [`MAX_FLAT_PARAMS`].
struct FlatAcc {
    buf: [FlatType; MAX_FLAT_PARAMS],
    len: usize,
    too_many: bool,
}

impl FlatAcc {
    fn new() -> FlatAcc {
        FlatAcc {
            buf: [FlatType::I32; MAX_FLAT_PARAMS],
            len: 0,
            too_many: false,
        }
    }

    fn push(&mut self, t: FlatType) {
        match self.buf.get_mut(self.len) {
            Some(slot) if !self.too_many => {
                *slot = t;
                self.len += 1;
            }
            _ => self.too_many = true,
        }
    }

    fn extend(&mut self, ts: Option<&[FlatType]>) {
        match ts {
            Some(ts) => ts.iter().for_each(|t| self.push(*t)),
            None => self.too_many = true,
        }
    }
}

impl Types {
    /// Validates `nodes` and works out each node's layout.
    ///
    /// Refused: references to the node itself or later ones, empty records, tuples,
    /// variants, enums and flags, flags of more than 32 members, nesting deeper than
    /// [`MAX_TYPE_DEPTH`], and types of 2^28 bytes or more (the spec's bound on
    /// `elem_size`).
    pub fn new(nodes: Vec<TypeNode>) -> Result<Types, TypeError> {
        if u32::try_from(nodes.len()).is_err() {
            return Err(TypeError::TooManyTypes { count: nodes.len() });
        }
        let mut types = Types {
            layouts: Vec::with_capacity(nodes.len()),
            flat: Vec::new(),
            nodes: Vec::new(),
        };
        let mut depths: Vec<u8> = Vec::with_capacity(nodes.len());
        for (index, node) in nodes.iter().enumerate() {
            // Fits: the table's length was checked above.
            let index = index as u32;
            let mut depth = 1u8;
            let mut forward = None;
            node.for_each_child(|child| match depths.get(child.0 as usize) {
                Some(d) => depth = depth.max(d.saturating_add(1)),
                None => forward = Some(child.0),
            });
            if let Some(child) = forward {
                return Err(TypeError::ForwardReference { node: index, child });
            }
            if usize::from(depth) > MAX_TYPE_DEPTH {
                return Err(TypeError::TooDeep { node: index });
            }
            let layout = types.layout_of(index, node)?;
            depths.push(depth);
            types.layouts.push(layout);
        }
        types.nodes = nodes;
        Ok(types)
    }

    /// The size, alignment and flattening of `node`, whose children are all laid out.
    fn layout_of(&mut self, index: u32, node: &TypeNode) -> Result<Layout, TypeError> {
        let empty = |kind| Err(TypeError::Empty { node: index, kind });
        let mut flat = FlatAcc::new();
        let (size, align, payload_offset): (u64, u32, u32) = match node {
            TypeNode::Bool | TypeNode::S8 | TypeNode::U8 => {
                flat.push(FlatType::I32);
                (1, 1, 0)
            }
            TypeNode::S16 | TypeNode::U16 => {
                flat.push(FlatType::I32);
                (2, 2, 0)
            }
            TypeNode::S32 | TypeNode::U32 | TypeNode::Char => {
                flat.push(FlatType::I32);
                (4, 4, 0)
            }
            TypeNode::Own(_) | TypeNode::Borrow(_) => {
                flat.push(FlatType::I32);
                (4, 4, 0)
            }
            TypeNode::S64 | TypeNode::U64 => {
                flat.push(FlatType::I64);
                (8, 8, 0)
            }
            TypeNode::F32 => {
                flat.push(FlatType::F32);
                (4, 4, 0)
            }
            TypeNode::F64 => {
                flat.push(FlatType::F64);
                (8, 8, 0)
            }
            TypeNode::String | TypeNode::List(_) => {
                flat.push(FlatType::I32);
                flat.push(FlatType::I32);
                (8, 4, 0)
            }
            TypeNode::Record(fields) | TypeNode::Tuple(fields) => {
                if fields.is_empty() {
                    return empty(node.kind());
                }
                let (size, align) = self.record_layout(fields, |t| flat.extend(t))?;
                (size, align, 0)
            }
            TypeNode::Flags(count) => {
                if *count == 0 {
                    return empty("flags");
                }
                if *count > 32 {
                    return Err(TypeError::TooManyFlags {
                        node: index,
                        count: *count,
                    });
                }
                flat.push(FlatType::I32);
                let size = flags_size(*count);
                (u64::from(size), size, 0)
            }
            TypeNode::Variant(_)
            | TypeNode::Enum(_)
            | TypeNode::Option(_)
            | TypeNode::Result { .. } => {
                if let TypeNode::Variant(cases) = node {
                    if cases.is_empty() {
                        return empty("variant");
                    }
                    if u32::try_from(cases.len()).is_err() {
                        return Err(TypeError::TooManyCases {
                            node: index,
                            count: cases.len(),
                        });
                    }
                }
                if let TypeNode::Enum(0) = node {
                    return empty("enum");
                }
                let Some(cases) = node.cases() else {
                    return empty(node.kind());
                };
                self.variant_layout(cases, &mut flat)
            }
        };
        if size > u64::from(MAX_LIST_BYTE_LENGTH) {
            return Err(TypeError::TooLarge { node: index, size });
        }
        let flat_start = u32::try_from(self.flat.len()).unwrap_or(u32::MAX);
        let flat_len = if flat.too_many {
            FLAT_TOO_MANY
        } else {
            self.flat
                .extend_from_slice(flat.buf.get(..flat.len).unwrap_or_default());
            // At most MAX_FLAT_PARAMS (16).
            flat.len as u8
        };
        // Sizes are bounded just above; offsets by the 8-byte maximum alignment.
        Ok(Layout {
            size: size as u32,
            align,
            payload_offset,
            flat_start,
            flat_len,
        })
    }

    /// The spec's `elem_size_record` and `alignment_record` over laid-out `fields`.
    fn record_layout(
        &self,
        fields: &[TypeId],
        mut each_flat: impl FnMut(Option<&[FlatType]>),
    ) -> Result<(u64, u32), TypeError> {
        let mut size = 0u64;
        let mut align = 1u32;
        for field in fields {
            let layout = self
                .layouts
                .get(field.0 as usize)
                .ok_or(TypeError::UnknownType { id: field.0 })?;
            size = align_to(size, layout.align) + u64::from(layout.size);
            align = align.max(layout.align);
            each_flat(self.flat_of(layout));
        }
        Ok((align_to(size, align), align))
    }

    /// The spec's `elem_size_variant`, `alignment_variant` and `flatten_variant`.
    fn variant_layout(&self, cases: Cases<'_>, flat: &mut FlatAcc) -> (u64, u32, u32) {
        let disc = discriminant_size(cases.count());
        let mut case_align = 1u32;
        let mut case_size = 0u32;
        let mut joined = FlatAcc::new();
        cases.payloads(|t| {
            // Children were checked to exist before this node is laid out.
            let Some(layout) = self.layouts.get(t.0 as usize) else {
                return;
            };
            case_align = case_align.max(layout.align);
            case_size = case_size.max(layout.size);
            match self.flat_of(layout) {
                Some(ts) => {
                    for (i, t) in ts.iter().enumerate() {
                        match joined.buf.get_mut(i) {
                            Some(slot) if i < joined.len => *slot = slot.join(*t),
                            _ => joined.push(*t),
                        }
                    }
                }
                None => joined.too_many = true,
            }
        });
        flat.push(FlatType::I32);
        flat.extend((!joined.too_many).then(|| joined.buf.get(..joined.len).unwrap_or_default()));
        let align = disc.max(case_align);
        let payload_offset = align_to(u64::from(disc), case_align);
        let size = align_to(payload_offset + u64::from(case_size), align);
        // The payload offset is at most 8: a discriminant of 4 bytes aligned to 8.
        (size, align, payload_offset as u32)
    }

    fn flat_of(&self, layout: &Layout) -> Option<&[FlatType]> {
        let len = layout.flat_len()?;
        let start = layout.flat_start as usize;
        self.flat.get(start..start + len)
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> &[TypeNode] {
        &self.nodes
    }

    /// The node `id` refers to, if the table has it.
    pub fn node(&self, id: TypeId) -> Option<&TypeNode> {
        self.nodes.get(id.0 as usize)
    }

    /// Whether type `a` of this table and type `b` of `other` are the same type,
    /// node by node (tables number their nodes independently). Two descriptions of
    /// one WIT function agree exactly when their parameter and result types do.
    /// Handles agree when they name the same [`ResourceId`]; where the two tables
    /// number resources differently, use [`Types::same_with`].
    pub fn same(&self, a: TypeId, other: &Types, b: TypeId) -> bool {
        self.same_with(a, other, b, &|x, y| x == y)
    }

    /// [`Types::same`], with `resources(x, y)` deciding whether resource `x` of this
    /// table's handles is resource `y` of `other`'s (each table's user numbers its
    /// resources in its own list).
    pub fn same_with(
        &self,
        a: TypeId,
        other: &Types,
        b: TypeId,
        resources: &dyn Fn(ResourceId, ResourceId) -> bool,
    ) -> bool {
        let (Some(x), Some(y)) = (self.node(a), other.node(b)) else {
            return false;
        };
        let same = |x: TypeId, y: TypeId| self.same_with(x, other, y, resources);
        let ids = |xs: &[TypeId], ys: &[TypeId]| {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(*x, *y))
        };
        let opt = |x: &Option<TypeId>, y: &Option<TypeId>| match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => same(*x, *y),
            _ => false,
        };
        // Node ids only point backwards (checked by `Types::new`), so this ends.
        match (x, y) {
            (TypeNode::List(x), TypeNode::List(y)) | (TypeNode::Option(x), TypeNode::Option(y)) => {
                same(*x, *y)
            }
            (TypeNode::Record(xs), TypeNode::Record(ys))
            | (TypeNode::Tuple(xs), TypeNode::Tuple(ys)) => ids(xs, ys),
            (TypeNode::Variant(xs), TypeNode::Variant(ys)) => {
                xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| opt(x, y))
            }
            (TypeNode::Result { ok: xo, err: xe }, TypeNode::Result { ok: yo, err: ye }) => {
                opt(xo, yo) && opt(xe, ye)
            }
            (TypeNode::Own(x), TypeNode::Own(y)) | (TypeNode::Borrow(x), TypeNode::Borrow(y)) => {
                resources(*x, *y)
            }
            (x, y) => x == y,
        }
    }

    /// The spec's `elem_size`: the bytes a value of this type takes in memory.
    pub fn size(&self, id: TypeId) -> Option<u32> {
        self.layouts.get(id.0 as usize).map(|l| l.size)
    }

    /// The spec's `alignment`: 1, 2, 4 or 8.
    pub fn align(&self, id: TypeId) -> Option<u32> {
        self.layouts.get(id.0 as usize).map(|l| l.align)
    }

    /// The spec's `flatten_type`: the core values a value of this type is passed as
    /// when it is passed flat.
    pub fn flatten(&self, id: TypeId) -> Option<Flat<'_>> {
        let layout = self.layouts.get(id.0 as usize)?;
        Some(match self.flat_of(layout) {
            Some(ts) => Flat::Values(ts),
            None => Flat::TooMany,
        })
    }

    /// The node and layout of `id`, for lifting and lowering.
    pub(crate) fn entry(&self, id: TypeId) -> Result<(&TypeNode, &Layout), crate::AbiError> {
        match (
            self.nodes.get(id.0 as usize),
            self.layouts.get(id.0 as usize),
        ) {
            (Some(node), Some(layout)) => Ok((node, layout)),
            _ => Err(crate::AbiError::UnknownType { id: id.0 }),
        }
    }

    /// The flat types of `id` when it has at most [`MAX_FLAT_PARAMS`].
    pub(crate) fn flat_types(&self, id: TypeId) -> Option<&[FlatType]> {
        self.flat_of(self.layouts.get(id.0 as usize)?)
    }

    /// The layout of `fields` stored one after another as a record: the spec's tuple of
    /// parameters or results.
    pub(crate) fn tuple_layout(&self, fields: &[TypeId]) -> Result<(u64, u32), TypeError> {
        self.record_layout(fields, |_| {})
    }
}

impl Serialize for Types {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.nodes.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Types {
    /// Reads the nodes and validates them: a description that fails [`Types::new`]
    /// fails to deserialize.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Types, D::Error> {
        let nodes = Vec::<TypeNode>::deserialize(deserializer)?;
        Types::new(nodes).map_err(serde::de::Error::custom)
    }
}

/// Builds a [`Types`] table node by node, children first.
///
/// `add` returns the id of an equal node already added instead of adding it again, so
/// a producer can add `u32` wherever it meets one and still get a compact table.
#[derive(Clone, Debug, Default)]
pub struct TypesBuilder {
    nodes: Vec<TypeNode>,
}

impl TypesBuilder {
    /// An empty builder.
    pub fn new() -> TypesBuilder {
        TypesBuilder::default()
    }

    /// Adds `node` (or finds an equal one) and returns its id.
    pub fn add(&mut self, node: TypeNode) -> TypeId {
        if let Some(i) = self.nodes.iter().position(|n| *n == node) {
            return TypeId(i as u32);
        }
        // A table past u32::MAX nodes is refused by `finish`.
        let id = TypeId(self.nodes.len() as u32);
        self.nodes.push(node);
        id
    }

    /// The node `id` refers to, if added.
    pub fn node(&self, id: TypeId) -> Option<&TypeNode> {
        self.nodes.get(id.0 as usize)
    }

    /// Validates the table ([`Types::new`]).
    pub fn finish(self) -> Result<Types, TypeError> {
        Types::new(self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_is_the_spec_table() {
        use FlatType::{F32, F64, I32, I64};
        let cases = [
            (I32, I32, I32),
            (I32, F32, I32),
            (F32, I32, I32),
            (F32, F32, F32),
            (I32, I64, I64),
            (F32, F64, I64),
            (F64, F64, F64),
            (I64, F64, I64),
            (I32, F64, I64),
        ];
        for (a, b, joined) in cases {
            assert_eq!(a.join(b), joined, "join({a}, {b})");
            assert_eq!(b.join(a), joined, "join({b}, {a})");
        }
    }

    #[test]
    fn discriminants_and_flags_take_the_smallest_integer() {
        let sizes: [(u32, u32); 6] = [
            (1, 1),
            (256, 1),
            (257, 2),
            (65536, 2),
            (65537, 4),
            (u32::MAX, 4),
        ];
        for (cases, size) in sizes {
            assert_eq!(discriminant_size(cases), size, "{cases} cases");
        }
        assert_eq!(flags_mask(1), 1);
        assert_eq!(flags_mask(9), 0x1ff);
        assert_eq!(flags_mask(32), u32::MAX);
        assert_eq!(flags_mask(0), 0);
    }
}
