//! Types written as WIT text, for messages: once for wit-parser's types (a WIT
//! world's, [`wit_type`]) and once for `wasmparser`'s (a component's,
//! [`component_val`], [`component_func`]), in the same words.
//!
//! `tern-wasmtime` writes the world's type and a component's side by side when they
//! differ (both spelled out, so that they compare as text); this crate names the type
//! it refuses when it describes a world or takes a component apart.

use wasmparser::PrimitiveValType;
use wasmparser::component_types::{ComponentDefinedType, ComponentFuncTypeId, ComponentValType};
use wasmparser::types::TypesRef;
use wit_parser::{Handle, Resolve, Type, TypeDefKind};

/// How [`wit_type`] writes a type that has a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// By its name (`sample`, `own<sensor>`), as the WIT source writes it.
    Kept,
    /// Spelled out (`record { name: string, value: s64, ts: u64 }`, `own<resource>`),
    /// as a component's types are ([`component_val`]), which carry no names.
    SpelledOut,
}

/// `func(a: T, ...) -> R`: a function type, its parameters (`name: type`) and result
/// already written.
pub fn func(params: &[String], result: Option<String>) -> String {
    let params = params.join(", ");
    match result {
        Some(r) => format!("func({params}) -> {r}"),
        None => format!("func({params})"),
    }
}

/// `result`, `result<T>`, `result<_, E>` or `result<T, E>`.
fn result(ok: Option<String>, err: Option<String>) -> String {
    match (ok, err) {
        (None, None) => "result".into(),
        (Some(ok), None) => format!("result<{ok}>"),
        (None, Some(err)) => format!("result<_, {err}>"),
        (Some(ok), Some(err)) => format!("result<{ok}, {err}>"),
    }
}

/// `future`/`future<T>`, `stream`/`stream<T>`.
fn with_optional(name: &str, t: Option<String>) -> String {
    match t {
        Some(t) => format!("{name}<{t}>"),
        None => name.into(),
    }
}

/// `record { a: T, ... }`, `variant { a(T), b, ... }`, `enum { a, ... }`,
/// `flags { a, ... }`: a type's constructor with its members.
fn members(constructor: &str, members: impl Iterator<Item = String>) -> String {
    format!(
        "{constructor} {{ {} }}",
        members.collect::<Vec<_>>().join(", ")
    )
}

/// `tuple<T, ...>`.
fn tuple(types: impl Iterator<Item = String>) -> String {
    format!("tuple<{}>", types.collect::<Vec<_>>().join(", "))
}

/// A variant's case: `name(T)` or `name`.
fn case(name: &str, ty: Option<String>) -> String {
    match ty {
        Some(t) => format!("{name}({t})"),
        None => name.to_string(),
    }
}

/// A WIT type of `resolve` as WIT writes it, its named types as `names` says.
pub fn wit_type(resolve: &Resolve, ty: &Type, names: Names) -> String {
    let id = match ty {
        Type::Bool => return "bool".into(),
        Type::U8 => return "u8".into(),
        Type::U16 => return "u16".into(),
        Type::U32 => return "u32".into(),
        Type::U64 => return "u64".into(),
        Type::S8 => return "s8".into(),
        Type::S16 => return "s16".into(),
        Type::S32 => return "s32".into(),
        Type::S64 => return "s64".into(),
        Type::F32 => return "f32".into(),
        Type::F64 => return "f64".into(),
        Type::Char => return "char".into(),
        Type::String => return "string".into(),
        Type::ErrorContext => return "error-context".into(),
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    if let (Names::Kept, Some(name)) = (names, &def.name) {
        return name.clone();
    }
    let r = |t: &Type| wit_type(resolve, t, names);
    let opt = |t: &Option<Type>| t.as_ref().map(r);
    match &def.kind {
        TypeDefKind::Type(t) => r(t),
        TypeDefKind::Record(rec) => members(
            "record",
            rec.fields
                .iter()
                .map(|f| format!("{}: {}", f.name, r(&f.ty))),
        ),
        TypeDefKind::Variant(v) => {
            members("variant", v.cases.iter().map(|c| case(&c.name, opt(&c.ty))))
        }
        TypeDefKind::Enum(e) => members("enum", e.cases.iter().map(|c| c.name.clone())),
        TypeDefKind::Flags(f) => members("flags", f.flags.iter().map(|c| c.name.clone())),
        TypeDefKind::Tuple(t) => tuple(t.types.iter().map(r)),
        TypeDefKind::List(t) => format!("list<{}>", r(t)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", r(t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", r(k), r(v)),
        TypeDefKind::Option(t) => format!("option<{}>", r(t)),
        TypeDefKind::Result(res) => result(opt(&res.ok), opt(&res.err)),
        TypeDefKind::Handle(Handle::Own(res)) => format!("own<{}>", r(&Type::Id(*res))),
        TypeDefKind::Handle(Handle::Borrow(res)) => format!("borrow<{}>", r(&Type::Id(*res))),
        TypeDefKind::Future(t) => with_optional("future", opt(t)),
        TypeDefKind::Stream(t) => with_optional("stream", opt(t)),
        other @ (TypeDefKind::Resource | TypeDefKind::Unknown) => other.as_str().into(),
    }
}

/// A component function's type with every type spelled out
/// (`func(pin: u32, high: bool) -> result<_, string>`; `async func(...)` for an
/// async one).
pub fn component_func(types: TypesRef<'_>, id: ComponentFuncTypeId) -> String {
    let f = &types[id];
    let params: Vec<String> = f
        .params
        .iter()
        .map(|(name, t)| format!("{}: {}", name.as_str(), component_val(types, *t)))
        .collect();
    let text = func(&params, f.result.map(|t| component_val(types, t)));
    if f.async_ {
        format!("async {text}")
    } else {
        text
    }
}

/// A component value type as WIT would write it, every type spelled out (a
/// component's types carry no names): [`wit_type`] with [`Names::SpelledOut`] in the
/// same words.
pub fn component_val(types: TypesRef<'_>, t: ComponentValType) -> String {
    let id = match t {
        ComponentValType::Primitive(p) => return primitive(p).into(),
        ComponentValType::Type(id) => id,
    };
    let r = |t: &ComponentValType| component_val(types, *t);
    let opt = |t: &Option<ComponentValType>| t.as_ref().map(r);
    match &types[id] {
        ComponentDefinedType::Primitive(p) => primitive(*p).into(),
        ComponentDefinedType::Record(rec) => members(
            "record",
            rec.fields
                .iter()
                .map(|(n, t)| format!("{}: {}", n.as_str(), r(t))),
        ),
        ComponentDefinedType::Variant(var) => members(
            "variant",
            var.cases.iter().map(|(n, c)| case(n.as_str(), opt(&c.ty))),
        ),
        ComponentDefinedType::Enum(cases) => {
            members("enum", cases.iter().map(|c| c.as_str().to_string()))
        }
        ComponentDefinedType::Flags(flags) => {
            members("flags", flags.iter().map(|c| c.as_str().to_string()))
        }
        ComponentDefinedType::Tuple(t) => tuple(t.types.iter().map(r)),
        ComponentDefinedType::List { element, .. } => format!("list<{}>", r(element)),
        ComponentDefinedType::FixedLengthList {
            element, length, ..
        } => format!("list<{}, {length}>", r(element)),
        ComponentDefinedType::Map { key, value, .. } => format!("map<{}, {}>", r(key), r(value)),
        ComponentDefinedType::Option { ty, .. } => format!("option<{}>", r(ty)),
        ComponentDefinedType::Result { ok, err, .. } => result(opt(ok), opt(err)),
        ComponentDefinedType::Own(_) => "own<resource>".into(),
        ComponentDefinedType::Borrow(_) => "borrow<resource>".into(),
        ComponentDefinedType::Future { ty, .. } => with_optional("future", opt(ty)),
        ComponentDefinedType::Stream { ty, .. } => with_optional("stream", opt(ty)),
    }
}

/// A primitive component type's name.
fn primitive(p: PrimitiveValType) -> &'static str {
    match p {
        PrimitiveValType::Bool => "bool",
        PrimitiveValType::S8 => "s8",
        PrimitiveValType::U8 => "u8",
        PrimitiveValType::S16 => "s16",
        PrimitiveValType::U16 => "u16",
        PrimitiveValType::S32 => "s32",
        PrimitiveValType::U32 => "u32",
        PrimitiveValType::S64 => "s64",
        PrimitiveValType::U64 => "u64",
        PrimitiveValType::F32 => "f32",
        PrimitiveValType::F64 => "f64",
        PrimitiveValType::Char => "char",
        PrimitiveValType::String => "string",
        PrimitiveValType::ErrorContext => "error-context",
    }
}
