//! The `tern:edge@0.1.0` world as a description: every core signature equals the one
//! `tern_core::abi` writes out by hand (what the guests built by wit-bindgen import
//! and export), and `on-event` crosses with the byte layout tern-wasmi's shims use.

use tern_cabi::{FlatType, FlatVal, FuncAbi, FuncType, TypeId, TypeNode, Types, TypesBuilder, Val};
use tern_core::Interface;
use tern_core::abi::{Expected, ValType, export_type, import_type};

use crate::{TestMem, i32s};

struct World {
    types: Types,
    imports: Vec<(Interface, &'static str, FuncType)>,
    exports: Vec<(&'static str, FuncType)>,
    event: TypeId,
    output: TypeId,
}

/// The world, as the signing tool would describe it from wit-parser.
fn world() -> World {
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
    let types = b.finish().expect("valid");

    let f = |params: &[TypeId], result| FuncType {
        params: params.to_vec(),
        result,
    };
    World {
        imports: vec![
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
        ],
        exports: vec![
            ("init", f(&[config], Some(unit_or_err))),
            ("on-event", f(&[event], Some(outputs_or_err))),
            ("health-check", f(&[], Some(unit_or_err))),
        ],
        types,
        event,
        output,
    }
}

fn core(types: &[FlatType]) -> Vec<ValType> {
    types
        .iter()
        .map(|t| match t {
            FlatType::I32 => ValType::I32,
            FlatType::I64 => ValType::I64,
            FlatType::F32 => ValType::F32,
            FlatType::F64 => ValType::F64,
        })
        .collect()
}

#[test]
fn core_signatures_match_the_hand_written_ones() {
    let w = world();
    for iface in Interface::ALL {
        for name in tern_core::abi::functions(iface) {
            let (_, _, ty) = w
                .imports
                .iter()
                .find(|(i, n, _)| *i == iface && n == name)
                .expect("described");
            let sig = FuncAbi::new(&w.types, ty)
                .expect("valid")
                .import_signature();
            let Some(Expected::Func(params, results)) = import_type(iface, name) else {
                panic!("{name} is not a function");
            };
            assert_eq!(
                (core(&sig.params), core(&sig.results)),
                (params.to_vec(), results.to_vec()),
                "{name}"
            );
        }
    }
    for (name, ty) in &w.exports {
        let sig = FuncAbi::new(&w.types, ty)
            .expect("valid")
            .export_signature();
        let Some(Expected::Func(params, results)) = export_type(name) else {
            panic!("{name} is not a function");
        };
        assert_eq!(
            (core(&sig.params), core(&sig.results)),
            (params.to_vec(), results.to_vec()),
            "{name}"
        );
        // Each post-return function takes the export's results.
        let post = format!("cabi_post_{name}");
        let Some(Expected::Func(params, _)) = export_type(&post) else {
            panic!("{post} is not a function");
        };
        assert_eq!(core(&sig.results), params.to_vec(), "{post}");
    }
}

#[test]
fn on_event_crosses_as_the_shims_lay_it_out() {
    let w = world();
    let types = &w.types;
    // tern-wasmi: "name@0, value@8 (case u8, payload@+8), unit@24 (case u8,
    // string@+4); 40 bytes, align 8".
    assert_eq!(
        (types.size(w.output), types.align(w.output)),
        (Some(40), Some(8))
    );
    // "[i32 case, i64, i32, i64, i64] (the cases' flat types joined)".
    use FlatType::{I32, I64};
    assert_eq!(
        types.flatten(w.event),
        Some(tern_cabi::Flat::Values(&[I32, I64, I32, I64, I64]))
    );

    let (_, on_event) = w
        .exports
        .iter()
        .find(|(n, _)| *n == "on-event")
        .expect("export");
    let func = FuncAbi::new(types, on_event).expect("valid");
    let mut mem = TestMem::new(512, 64);
    let sample = Val::Record(vec![
        Val::String("temp-0".into()),
        Val::S64(-21_500),
        Val::U64(1_000),
    ]);
    let event = Val::Variant {
        case: 0,
        payload: Some(Box::new(sample)),
    };
    let flat = func.lower_params(types, &[event], &mut mem).expect("lower");
    assert_eq!(
        *flat,
        [
            FlatVal::I32(0),
            FlatVal::I64(64),
            FlatVal::I32(6),
            FlatVal::I64(-21_500),
            FlatVal::I64(1_000)
        ]
    );
    assert_eq!(&mem.bytes[64..70], b"temp-0");
    let tick = Val::Variant {
        case: 2,
        payload: Some(Box::new(Val::U64(u64::MAX))),
    };
    let flat = func.lower_params(types, &[tick], &mut mem).expect("lower");
    assert_eq!(
        *flat,
        [
            FlatVal::I32(2),
            FlatVal::I64(-1),
            FlatVal::I32(0),
            FlatVal::I64(0),
            FlatVal::I64(0)
        ]
    );

    // The guest answers ok([{ name: "t", value: milli(21500), unit: some("degC") },
    // { name: "on", value: flag(true), unit: none }]) in a return area at 8.
    mem.put(8, &[0, 0, 0, 0]);
    mem.put(12, &[128, 0, 0, 0, 2, 0, 0, 0]);
    mem.put(100, b"tondegC");
    let mut first = [0u8; 40];
    first[0..8].copy_from_slice(&[100, 0, 0, 0, 1, 0, 0, 0]);
    first[8] = 0;
    first[16..24].copy_from_slice(&21_500i64.to_le_bytes());
    first[24] = 1;
    first[28..36].copy_from_slice(&[103, 0, 0, 0, 4, 0, 0, 0]);
    let mut second = [0u8; 40];
    second[0..8].copy_from_slice(&[101, 0, 0, 0, 2, 0, 0, 0]);
    second[8] = 1;
    second[16] = 1;
    mem.put(128, &first);
    mem.put(168, &second);
    let result = func
        .lift_result(types, &i32s(&[8]), &mut mem)
        .expect("lift");
    let output = |name: &str, case, value, unit: Option<&str>| {
        Val::Record(vec![
            Val::String(name.into()),
            Val::Variant {
                case,
                payload: Some(Box::new(value)),
            },
            Val::Option(unit.map(|u| Box::new(Val::String(u.into())))),
        ])
    };
    let expected = Val::Result(Ok(Some(Box::new(Val::List(vec![
        output("t", 0, Val::S64(21_500), Some("degC")),
        output("on", 1, Val::Bool(true), None),
    ])))));
    assert_eq!(result, Some(expected));
}
