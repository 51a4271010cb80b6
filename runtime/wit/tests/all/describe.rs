//! `describe_world`: the tern:edge world equal to the one written out by hand here
//! (the only copy; tern-cabi's tests read the generated one that `tern-core` compiles
//! in, and check its core signatures against `tern_core::abi`), the layouts of every
//! type constructor, and every refusal with its message.

use tern_cabi::{Flat, FlatType, FuncType, TypeId, TypeNode, Types, TypesBuilder};
use tern_core::Interface;
use tern_core::image::World;
use tern_wit::{DescribeError, Direction, Place, Unsupported, describe_world, tern_edge};
use wit_parser::Resolve;

/// `wit`'s world `w`, every feature gate open.
pub fn describe(wit: &str) -> Result<World, DescribeError> {
    let mut resolve = Resolve {
        all_features: true,
        ..Resolve::default()
    };
    let pkg = resolve.push_source("test.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
    describe_world(&resolve, world)
}

/// A type written out as a tree, so that descriptions whose tables number types in
/// another order compare equal.
pub fn render(types: &Types, id: TypeId) -> String {
    let r = |id: &TypeId| render(types, *id);
    let list = |ids: &[TypeId]| ids.iter().map(r).collect::<Vec<_>>().join(", ");
    let opt = |id: &Option<TypeId>| id.as_ref().map_or("_".to_string(), r);
    match types.node(id).unwrap() {
        TypeNode::List(t) => format!("list<{}>", r(t)),
        TypeNode::Record(ts) => format!("record{{{}}}", list(ts)),
        TypeNode::Tuple(ts) => format!("tuple<{}>", list(ts)),
        TypeNode::Variant(cases) => format!(
            "variant{{{}}}",
            cases.iter().map(opt).collect::<Vec<_>>().join(", ")
        ),
        TypeNode::Enum(n) => format!("enum{n}"),
        TypeNode::Flags(n) => format!("flags{n}"),
        TypeNode::Option(t) => format!("option<{}>", r(t)),
        TypeNode::Result { ok, err } => format!("result<{}, {}>", opt(ok), opt(err)),
        TypeNode::Own(res) => format!("own<{}>", res.0),
        TypeNode::Borrow(res) => format!("borrow<{}>", res.0),
        scalar => scalar.kind().to_string(),
    }
}

/// A function type written out as trees.
pub fn render_func(types: &Types, ty: &FuncType) -> String {
    let params: Vec<String> = ty.params.iter().map(|p| render(types, *p)).collect();
    let result = ty.result.map_or("()".to_string(), |t| render(types, t));
    format!("({}) -> {result}", params.join(", "))
}

/// The tern:edge world written out by hand, in the WIT's order: (interface,
/// function, type) and (export, type).
#[allow(clippy::type_complexity)]
fn by_hand() -> (
    Types,
    Vec<(Interface, &'static str, FuncType)>,
    Vec<(&'static str, FuncType)>,
) {
    let mut b = TypesBuilder::new();
    let string = b.add(TypeNode::String);
    let s64 = b.add(TypeNode::S64);
    let u64 = b.add(TypeNode::U64);
    let u32 = b.add(TypeNode::U32);
    let bool = b.add(TypeNode::Bool);
    let u8 = b.add(TypeNode::U8);
    let bytes = b.add(TypeNode::List(u8));
    let sample = b.add(TypeNode::Record(vec![string, s64, u64]));
    let event = b.add(TypeNode::Variant(vec![
        Some(sample),
        Some(bytes),
        Some(u64),
    ]));
    let value = b.add(TypeNode::Variant(vec![Some(s64), Some(bool), Some(string)]));
    let unit = b.add(TypeNode::Option(string));
    let output = b.add(TypeNode::Record(vec![string, value, unit]));
    let outputs = b.add(TypeNode::List(output));
    let level = b.add(TypeNode::Enum(5));
    let wasi_level = b.add(TypeNode::Enum(6));
    let err = |b: &mut TypesBuilder, ok| {
        b.add(TypeNode::Result {
            ok,
            err: Some(string),
        })
    };
    let unit_or_err = err(&mut b, None);
    let sample_or_err = err(&mut b, Some(sample));
    let bool_or_err = err(&mut b, Some(bool));
    let outputs_or_err = err(&mut b, Some(outputs));
    let maybe_bytes = b.add(TypeNode::Option(bytes));
    let pair = b.add(TypeNode::Tuple(vec![string, string]));
    let config = b.add(TypeNode::List(pair));
    // wasi:keyvalue/store: its bucket is the world's resource 0.
    let bucket = tern_cabi::ResourceId(0);
    let own = b.add(TypeNode::Own(bucket));
    let this = b.add(TypeNode::Borrow(bucket));
    let kv_error = b.add(TypeNode::Variant(vec![None, None, Some(string)]));
    let kv = |b: &mut TypesBuilder, ok| {
        b.add(TypeNode::Result {
            ok,
            err: Some(kv_error),
        })
    };
    let open = kv(&mut b, Some(own));
    let got = kv(&mut b, Some(maybe_bytes));
    let done = kv(&mut b, None);
    let exists = kv(&mut b, Some(bool));
    let strings = b.add(TypeNode::List(string));
    let cursor = b.add(TypeNode::Option(u64));
    let page = b.add(TypeNode::Record(vec![strings, cursor]));
    let listed = kv(&mut b, Some(page));
    let types = b.finish().unwrap();
    let f = |params: &[TypeId], result| FuncType {
        params: params.to_vec(),
        result,
    };
    // World `runtime`'s own imports first, then those `include component` brings.
    let imports = vec![
        (
            Interface::WasiLogging,
            "log",
            f(&[wasi_level, string, string], None),
        ),
        (Interface::WasiMonotonicClock, "now", f(&[], Some(u64))),
        (
            Interface::WasiMonotonicClock,
            "resolution",
            f(&[], Some(u64)),
        ),
        // The resource's drop, then the interface's functions in the WIT's order.
        (
            Interface::WasiKeyvalueStore,
            "[resource-drop]bucket",
            f(&[own], None),
        ),
        (
            Interface::WasiKeyvalueStore,
            "open",
            f(&[string], Some(open)),
        ),
        (
            Interface::WasiKeyvalueStore,
            "[method]bucket.get",
            f(&[this, string], Some(got)),
        ),
        (
            Interface::WasiKeyvalueStore,
            "[method]bucket.set",
            f(&[this, string, bytes], Some(done)),
        ),
        (
            Interface::WasiKeyvalueStore,
            "[method]bucket.delete",
            f(&[this, string], Some(done)),
        ),
        (
            Interface::WasiKeyvalueStore,
            "[method]bucket.exists",
            f(&[this, string], Some(exists)),
        ),
        (
            Interface::WasiKeyvalueStore,
            "[method]bucket.list-keys",
            f(&[this, cursor], Some(listed)),
        ),
        (Interface::Log, "log", f(&[level, string], None)),
        (Interface::Clock, "now-ms", f(&[], Some(u64))),
        (
            Interface::Sensors,
            "read",
            f(&[string], Some(sample_or_err)),
        ),
        (Interface::Gpio, "set", f(&[u32, bool], Some(unit_or_err))),
        (Interface::Gpio, "get", f(&[u32], Some(bool_or_err))),
        (Interface::Kv, "get", f(&[string], Some(maybe_bytes))),
        (Interface::Kv, "set", f(&[string, bytes], Some(unit_or_err))),
        (
            Interface::Publish,
            "publish",
            f(&[string, bytes], Some(unit_or_err)),
        ),
    ];
    let exports = vec![
        ("init", f(&[config], Some(unit_or_err))),
        ("on-event", f(&[event], Some(outputs_or_err))),
        ("health-check", f(&[], Some(unit_or_err))),
    ];
    (types, imports, exports)
}

#[test]
fn tern_edge_is_the_world_written_by_hand() {
    let w = tern_edge();
    assert_eq!(w.name, "tern:edge/runtime@0.1.0");
    let (types, imports, exports) = by_hand();
    // Function by function, in the WIT's order.
    let found: Vec<(String, String, String)> = w
        .imports
        .iter()
        .map(|h| {
            (
                h.interface.clone(),
                h.name.clone(),
                render_func(&w.types, &h.ty),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = imports
        .iter()
        .map(|(i, n, ty)| {
            (
                i.import_module().to_string(),
                n.to_string(),
                render_func(&types, ty),
            )
        })
        .collect();
    assert_eq!(found, expected);
    let found: Vec<(String, String)> = w
        .exports
        .iter()
        .map(|e| (e.name.clone(), render_func(&w.types, &e.ty)))
        .collect();
    let expected: Vec<(String, String)> = exports
        .iter()
        .map(|(n, ty)| (n.to_string(), render_func(&types, ty)))
        .collect();
    assert_eq!(found, expected);
    // Nothing but what the functions use, each type once.
    assert_eq!(w.types.nodes().len(), types.nodes().len());
    // Every import the engines know is there, at the name `tern_core` gives it.
    for iface in Interface::ALL {
        for name in tern_core::abi::functions(iface) {
            assert!(w.import(iface.import_module(), name).is_some(), "{name}");
        }
    }
}

const EVERY_TYPE: &str = r#"
package test:types@1.0.0;

interface shapes {
    record pair { a: u8, b: u64 }
    record chars { c: char, s: string }
    variant v { none, big(u64), text(string) }
    variant w { small(u8), float(f32) }
    enum color { red, green, blue }
    flags eight { a, b, c, d, e, f, g, h }
    flags nine { a, b, c, d, e, f, g, h, i }
    flags thirty-two {
        f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
        f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31,
    }
    type alias = pair;
    type bytes = list<u8>;

    scalars: func(a: bool, b: s8, c: u8, d: s16, e: u16, f: s32, g: u32, h: s64, i: u64,
        j: f32, k: f64, l: char, m: string);
    pairs: func(p: pair, q: alias) -> alias;
    text: func(c: chars) -> tuple<u8, u16, u32>;
    variants: func(v: v, w: w) -> option<u16>;
    enums: func(c: color, e: eight, n: nine, t: thirty-two) -> result<u8, string>;
    lists: func(l: list<string>, b: bytes) -> result;
    results: func() -> result<_, bytes>;
    okonly: func() -> result<f64>;
}

interface user {
    use shapes.{pair, alias as renamed};
    get: func(p: renamed) -> pair;
}

world w {
    import shapes;
    import user;
    import top: func(x: list<tuple<string, s8>>) -> u32;
    use shapes.{pair};
    export handle: func(p: pair);
    export user;
}
"#;

#[test]
fn every_constructor_has_the_spec_layout() {
    let w = describe(EVERY_TYPE).unwrap();
    let t = &w.types;
    let func = |module: &str, name: &str| &w.import(module, name).unwrap().ty;
    let shapes = "test:types/shapes@1.0.0";
    // Size, alignment and flat types, as CanonicalABI.md's definitions give them.
    let layout = |id: TypeId| {
        let flat = match t.flatten(id).unwrap() {
            Flat::Values(v) => v.to_vec(),
            Flat::TooMany => panic!("too many"),
        };
        (t.size(id).unwrap(), t.align(id).unwrap(), flat)
    };
    use FlatType::{F32, F64, I32, I64};

    let scalars = func(shapes, "scalars");
    let expected = [
        (1, 1, vec![I32]), // bool
        (1, 1, vec![I32]), // s8
        (1, 1, vec![I32]), // u8
        (2, 2, vec![I32]), // s16
        (2, 2, vec![I32]), // u16
        (4, 4, vec![I32]), // s32
        (4, 4, vec![I32]), // u32
        (8, 8, vec![I64]), // s64
        (8, 8, vec![I64]), // u64
        (4, 4, vec![F32]),
        (8, 8, vec![F64]),
        (4, 4, vec![I32]),      // char
        (8, 4, vec![I32, I32]), // string: pointer and length
    ];
    let found: Vec<_> = scalars.params.iter().map(|p| layout(*p)).collect();
    assert_eq!(found, expected);

    // record { a: u8, b: u64 }: b at 8, 16 bytes, aligned as its widest field.
    let pair = func(shapes, "pairs");
    assert_eq!(layout(pair.params[0]), (16, 8, vec![I32, I64]));
    // An alias is its target: the same node.
    assert_eq!(pair.params[0], pair.params[1]);
    assert_eq!(pair.result, Some(pair.params[0]));
    // And so through `use` and a renaming `use` in another interface, and in an
    // export naming the type through its interface.
    let get = func("test:types/user@1.0.0", "get");
    assert_eq!((get.params[0], get.result), (pair.params[0], pair.result));
    assert_eq!(w.export("handle").unwrap().ty.params, [pair.params[0]]);

    let chars = func(shapes, "text");
    // record { c: char, s: string }: 4 + 8.
    assert_eq!(layout(chars.params[0]), (12, 4, vec![I32, I32, I32]));
    // tuple<u8, u16, u32>: u8 at 0, u16 at 2, u32 at 4.
    assert_eq!(layout(chars.result.unwrap()), (8, 4, vec![I32, I32, I32]));

    let variants = func(shapes, "variants");
    // variant { none, big(u64), text(string) }: a 1-byte discriminant, the payload at
    // 8 (the widest case's alignment), 8 bytes of payload; flat: the discriminant, then
    // the cases' flat types joined position by position (i64 with i32 is i64).
    assert_eq!(layout(variants.params[0]), (16, 8, vec![I32, I64, I32]));
    // variant { small(u8), float(f32) }: u8 and f32 join to i32.
    assert_eq!(layout(variants.params[1]), (8, 4, vec![I32, I32]));
    // option<u16>: discriminant, u16 at 2.
    assert_eq!(layout(variants.result.unwrap()), (4, 2, vec![I32, I32]));

    let enums = func(shapes, "enums");
    assert_eq!(layout(enums.params[0]), (1, 1, vec![I32])); // enum of 3
    assert_eq!(layout(enums.params[1]), (1, 1, vec![I32])); // 8 flags: one byte
    assert_eq!(layout(enums.params[2]), (2, 2, vec![I32])); // 9 flags: two
    assert_eq!(layout(enums.params[3]), (4, 4, vec![I32])); // 32 flags: four
    // result<u8, string>: the string's 4-byte alignment puts the payload at 4.
    assert_eq!(layout(enums.result.unwrap()), (12, 4, vec![I32, I32, I32]));
    assert_eq!(
        t.node(enums.params[0]),
        Some(&TypeNode::Enum(3)),
        "cases counted"
    );
    assert_eq!(t.node(enums.params[3]), Some(&TypeNode::Flags(32)));

    let lists = func(shapes, "lists");
    assert_eq!(layout(lists.params[0]), (8, 4, vec![I32, I32]));
    assert_eq!(
        t.node(lists.params[1]),
        Some(&TypeNode::List(scalars.params[2]))
    );
    // result with neither payload: the discriminant alone.
    assert_eq!(layout(lists.result.unwrap()), (1, 1, vec![I32]));
    let results = func(shapes, "results");
    assert_eq!(
        layout(results.result.unwrap()),
        (12, 4, vec![I32, I32, I32])
    );
    let okonly = func(shapes, "okonly");
    assert_eq!(layout(okonly.result.unwrap()), (16, 8, vec![I32, F64]));

    // A world-level import is module `$root`.
    let top = func("$root", "top");
    assert_eq!(render_func(t, top), "(list<tuple<string, s8>>) -> u32");
    // An exported interface's functions are `interface#function`.
    let names: Vec<&str> = w.exports.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["handle", "test:types/user@1.0.0#get"]);

    // Every type once.
    for (i, a) in t.nodes().iter().enumerate() {
        assert!(!t.nodes()[..i].contains(a), "{a:?} twice");
    }
}

/// The error `wit` gets, and its message.
fn refused(wit: &str) -> (DescribeError, String) {
    let e = describe(wit).unwrap_err();
    let message = e.to_string();
    (e, message)
}

fn unsupported(e: &DescribeError) -> Unsupported {
    match e {
        DescribeError::Unsupported { what, .. } => *what,
        other => panic!("not an unsupported type: {other:?}"),
    }
}

#[test]
fn resources_are_refused_saying_whose() {
    // The component's own resource: an exported interface defines it.
    let (e, message) = refused(
        "package t:r;
         interface files { resource file; open: func(name: string) -> own<file>; }
         world w { export files; }",
    );
    assert_eq!(unsupported(&e), Unsupported::ExportedHandle);
    let DescribeError::Unsupported {
        func, place, ty, ..
    } = &e
    else {
        unreachable!()
    };
    assert_eq!(func.direction, Direction::Export);
    assert_eq!((place, ty.as_str()), (&Place::Result, "own<file>"));
    assert_eq!(
        message,
        "exported function `open` of `t:r/files`: the result has type `own<file>`: a Tern host \
         passes no resource handles to a component's exports (pass the resource's data instead)"
    );
    // A method of the component's own resource.
    let (e, message) = refused(
        "package t:r;
         interface files { resource file { size: func() -> u64; } }
         world w { export files; }",
    );
    assert!(
        matches!(&e, DescribeError::ResourceFunction { resource, .. } if resource == "file"),
        "{e:?}"
    );
    assert_eq!(
        message,
        "exported function `[method]file.size` of `t:r/files` belongs to resource `file`, which \
         the component defines: Tern engines keep handle tables for the host's resources only"
    );
    // An imported function that names the component's resource.
    let (e, message) = refused(
        "package t:r;
         interface files { resource file; }
         interface store { use files.{file}; keep: func(f: own<file>); }
         world w { export files; import store; }",
    );
    assert_eq!(unsupported(&e), Unsupported::GuestResource);
    assert!(
        message.contains("handles to resources the component defines are not supported"),
        "{message}"
    );
}

#[test]
fn the_hosts_resources_are_described_with_their_drops() {
    // The host's resource: its drop, its constructor and methods, and handles to it
    // inside other types (through an alias), all numbered as resource 0.
    let w = describe(
        "package t:r;
         interface sockets {
             resource socket { constructor(port: u16); send: func(b: list<u8>) -> u32; }
             type s = socket;
             record conn { s: own<s> }
             dial: func() -> option<conn>;
             close: func(s: borrow<socket>);
         }
         world w { import sockets; }",
    )
    .unwrap();
    assert_eq!(
        w.resources,
        [tern_core::image::Resource {
            interface: "t:r/sockets".into(),
            name: "socket".into()
        }]
    );
    let found: Vec<(String, String)> = w
        .imports
        .iter()
        .map(|h| (h.name.clone(), render_func(&w.types, &h.ty)))
        .collect();
    let expect = |n: &str, t: &str| (n.to_string(), t.to_string());
    assert_eq!(
        found,
        [
            expect("[resource-drop]socket", "(own<0>) -> ()"),
            expect("[constructor]socket", "(u16) -> own<0>"),
            expect("[method]socket.send", "(borrow<0>, list<u8>) -> u32"),
            expect("dial", "() -> option<record{own<0>}>"),
            expect("close", "(borrow<0>) -> ()"),
        ]
    );
    // A host's handle in an export is refused.
    let (e, _) = refused(
        "package t:r;
         interface sockets { resource socket; }
         world w { import sockets; use sockets.{socket}; export take: func(s: own<socket>); }",
    );
    assert_eq!(unsupported(&e), Unsupported::ExportedHandle);
}

#[test]
fn async_functions_and_async_types_are_refused() {
    let (e, message) = refused("package t:a; world w { export run: async func(); }");
    assert!(matches!(e, DescribeError::Async { .. }), "{e:?}");
    assert_eq!(
        message,
        "exported function `run` is async: Tern runs the synchronous canonical ABI only \
         (declare it without `async`)"
    );
    let async_abi = "it belongs to the component model's async ABI, which Tern does not run \
                     (use a synchronous function over lists)";
    for (ty, what) in [
        ("stream<u8>", Unsupported::Stream),
        ("future<string>", Unsupported::Future),
        ("future", Unsupported::Future),
        ("error-context", Unsupported::ErrorContext),
    ] {
        let (e, message) = refused(&format!(
            "package t:a; interface i {{ f: func(x: {ty}); }} world w {{ import i; }}"
        ));
        assert_eq!(unsupported(&e), what, "{ty}");
        assert_eq!(
            message,
            format!("imported function `f` of `t:a/i`: parameter `x` has type `{ty}`: {async_abi}")
        );
    }
}

#[test]
fn fixed_length_lists_maps_and_wide_flags_are_refused() {
    let (e, message) = refused("package t:l; world w { import f: func() -> list<u8, 4>; }");
    assert_eq!(unsupported(&e), Unsupported::FixedSizeList);
    assert_eq!(
        message,
        "imported function `f`: the result has type `list<u8, 4>`: fixed-length lists are not in \
         the canonical ABI Tern implements (use a tuple or a list)"
    );
    let (e, message) = refused("package t:m; world w { export f: func(m: map<string, u32>); }");
    assert_eq!(unsupported(&e), Unsupported::Map);
    assert_eq!(
        message,
        "exported function `f`: parameter `m` has type `map<string, u32>`: maps are not in the \
         canonical ABI Tern implements (use a list of tuples)"
    );
    let flags: Vec<String> = (0..33).map(|i| format!("m{i}")).collect();
    let (e, message) = refused(&format!(
        "package t:f; interface i {{ flags wide {{ {} }} f: func(w: list<wide>); }} \
         world w {{ import i; }}",
        flags.join(", ")
    ));
    assert_eq!(unsupported(&e), Unsupported::TooManyFlags(33));
    assert_eq!(
        message,
        "imported function `f` of `t:f/i`: parameter `w` has type `wide`: it has 33 flags; the \
         canonical ABI allows at most 32 (split it into several flags types)"
    );
}

#[test]
fn types_past_tern_cabis_limits_name_the_function() {
    let deep = (0..17).fold("u8".to_string(), |t, _| format!("list<{t}>"));
    let (e, message) = refused(&format!(
        "package t:d; world w {{ import fine: func(); import deep: func(x: {deep}); }}"
    ));
    assert!(matches!(e, DescribeError::Limit { .. }), "{e:?}");
    assert!(
        message.starts_with("imported function `deep`: type ")
            && message.contains("nests more than 16 types deep"),
        "{message}"
    );
}

#[test]
fn a_world_without_functions_describes_as_nothing() {
    let w = describe("package t:e; interface i { type t = u8; } world w { import i; }").unwrap();
    assert_eq!(w.name, "t:e/w");
    assert!(w.imports.is_empty() && w.exports.is_empty() && w.types.nodes().is_empty());
}
