//! The `tern:edge@0.1.0` world as a description: every core signature equals the one
//! `tern_core::abi` writes out by hand (what the guests built by wit-bindgen import
//! and export), and `on-event` crosses with the byte layout tern-wasmi's shims use.
//!
//! The description is the one compiled into `tern-core`
//! ([`tern_core::image::tern_edge`]), generated from the WIT by `tern-wit`, whose
//! tests hold it equal to the world written out by hand.

use tern_cabi::{FlatType, FlatVal, FuncAbi, TypeNode, Val};
use tern_core::Interface;
use tern_core::abi::{Expected, ValType, export_type, import_type};
use tern_core::image::tern_edge;

use crate::{TestMem, i32s};

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
    let w = tern_edge();
    for iface in Interface::ALL {
        for name in tern_core::abi::functions(iface) {
            let h = w
                .import(iface.import_module(), name)
                .unwrap_or_else(|| panic!("{name} is not described"));
            let sig = FuncAbi::new(&w.types, &h.ty)
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
    for e in &w.exports {
        let sig = FuncAbi::new(&w.types, &e.ty)
            .expect("valid")
            .export_signature();
        let Some(Expected::Func(params, results)) = export_type(&e.name) else {
            panic!("{} is not a function", e.name);
        };
        assert_eq!(
            (core(&sig.params), core(&sig.results)),
            (params.to_vec(), results.to_vec()),
            "{}",
            e.name
        );
        // Each post-return function takes the export's results.
        let post = format!("cabi_post_{}", e.name);
        let Some(Expected::Func(params, _)) = export_type(&post) else {
            panic!("{post} is not a function");
        };
        assert_eq!(core(&sig.results), params.to_vec(), "{post}");
    }
}

#[test]
fn on_event_crosses_as_the_shims_lay_it_out() {
    let w = tern_edge();
    let types = &w.types;
    let on_event = &w.export("on-event").expect("export").ty;
    // `on-event: func(event: event) -> result<list<output>, string>`.
    let event = on_event.params[0];
    let outputs = match on_event.result.and_then(|r| types.node(r)) {
        Some(TypeNode::Result { ok: Some(ok), .. }) => *ok,
        other => panic!("on-event returns {other:?}"),
    };
    let output = match types.node(outputs) {
        Some(TypeNode::List(output)) => *output,
        other => panic!("on-event's ok is {other:?}"),
    };
    // tern-wasmi: "name@0, value@8 (case u8, payload@+8), unit@24 (case u8,
    // string@+4); 40 bytes, align 8".
    assert_eq!(
        (types.size(output), types.align(output)),
        (Some(40), Some(8))
    );
    // "[i32 case, i64, i32, i64, i64] (the cases' flat types joined)".
    use FlatType::{I32, I64};
    assert_eq!(
        types.flatten(event),
        Some(tern_cabi::Flat::Values(&[I32, I64, I32, I64, I64]))
    );

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
