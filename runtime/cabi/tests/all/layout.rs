//! Size, alignment and flattening of every type constructor, worked out by hand from
//! the spec's `alignment`, `elem_size` and `flatten_type`; and function signatures.

use tern_cabi::FlatType::{F32, F64, I32, I64};
use tern_cabi::{
    Flat, FlatType, FuncAbi, FuncType, ResourceId, ResultAbi, TypeError, TypeId, TypeNode, Types,
    TypesBuilder,
};

use crate::build;

#[track_caller]
fn check(types: &Types, id: TypeId, size: u32, align: u32, flat: Option<&[FlatType]>) {
    assert_eq!(types.size(id), Some(size), "size of {:?}", types.node(id));
    assert_eq!(
        types.align(id),
        Some(align),
        "align of {:?}",
        types.node(id)
    );
    let expected = match flat {
        Some(ts) => Flat::Values(ts),
        None => Flat::TooMany,
    };
    assert_eq!(
        types.flatten(id),
        Some(expected),
        "flatten of {:?}",
        types.node(id)
    );
}

#[test]
fn primitives() {
    let cases: &[(TypeNode, u32, u32, &[FlatType])] = &[
        (TypeNode::Bool, 1, 1, &[I32]),
        (TypeNode::S8, 1, 1, &[I32]),
        (TypeNode::U8, 1, 1, &[I32]),
        (TypeNode::S16, 2, 2, &[I32]),
        (TypeNode::U16, 2, 2, &[I32]),
        (TypeNode::S32, 4, 4, &[I32]),
        (TypeNode::U32, 4, 4, &[I32]),
        (TypeNode::S64, 8, 8, &[I64]),
        (TypeNode::U64, 8, 8, &[I64]),
        (TypeNode::F32, 4, 4, &[F32]),
        (TypeNode::F64, 8, 8, &[F64]),
        (TypeNode::Char, 4, 4, &[I32]),
        (TypeNode::String, 8, 4, &[I32, I32]),
        (TypeNode::Own(ResourceId(0)), 4, 4, &[I32]),
        (TypeNode::Borrow(ResourceId(3)), 4, 4, &[I32]),
    ];
    for (node, size, align, flat) in cases {
        let (types, id) = build(|b| b.add(node.clone()));
        check(&types, id, *size, *align, Some(flat));
    }
}

#[test]
fn lists_are_a_pointer_and_a_length() {
    for elem in [TypeNode::U8, TypeNode::U64, TypeNode::String] {
        let (types, id) = build(|b| {
            let e = b.add(elem.clone());
            b.add(TypeNode::List(e))
        });
        check(&types, id, 8, 4, Some(&[I32, I32]));
    }
}

#[test]
fn records_and_tuples_pad_each_field_to_its_alignment() {
    // record { a: u8, b: u32, c: u16 }: a at 0, b at 4, c at 8; 10 rounds up to 12.
    let (types, id) = build(|b| {
        let fields = vec![
            b.add(TypeNode::U8),
            b.add(TypeNode::U32),
            b.add(TypeNode::U16),
        ];
        b.add(TypeNode::Record(fields))
    });
    check(&types, id, 12, 4, Some(&[I32, I32, I32]));

    // record { a: u8, b: u64 }: b at 8.
    let (types, id) = build(|b| {
        let fields = vec![b.add(TypeNode::U8), b.add(TypeNode::U64)];
        b.add(TypeNode::Record(fields))
    });
    check(&types, id, 16, 8, Some(&[I32, I64]));

    // tuple<u8, u16, u8>: 0, 2, 4; 5 rounds up to 6.
    let (types, id) = build(|b| {
        let fields = vec![
            b.add(TypeNode::U8),
            b.add(TypeNode::U16),
            b.add(TypeNode::U8),
        ];
        b.add(TypeNode::Tuple(fields))
    });
    check(&types, id, 6, 2, Some(&[I32, I32, I32]));

    // tuple<f32, string, f64>: 0, 4, 16; 24.
    let (types, id) = build(|b| {
        let fields = vec![
            b.add(TypeNode::F32),
            b.add(TypeNode::String),
            b.add(TypeNode::F64),
        ];
        b.add(TypeNode::Tuple(fields))
    });
    check(&types, id, 24, 8, Some(&[F32, I32, I32, F64]));

    // A record of 16 bytes still flattens; 17 do not.
    let (types, id) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::Record(vec![u8; 16]))
    });
    check(&types, id, 16, 1, Some(&[I32; 16]));
    let (types, id) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::Record(vec![u8; 17]))
    });
    check(&types, id, 17, 1, None);
}

#[test]
fn variants_join_their_payloads() {
    // variant { a(u8), b, c(u64) }: 1-byte discriminant, payload at 8; [i32, join(i32, i64)].
    let (types, id) = build(|b| {
        let cases = vec![Some(b.add(TypeNode::U8)), None, Some(b.add(TypeNode::U64))];
        b.add(TypeNode::Variant(cases))
    });
    check(&types, id, 16, 8, Some(&[I32, I64]));

    // variant { a(f32), b(u32) }: join(f32, i32) = i32.
    let (types, id) = build(|b| {
        let cases = vec![Some(b.add(TypeNode::F32)), Some(b.add(TypeNode::U32))];
        b.add(TypeNode::Variant(cases))
    });
    check(&types, id, 8, 4, Some(&[I32, I32]));

    // variant { a(f32) }: a lone f32 stays f32.
    let (types, id) = build(|b| {
        let cases = vec![Some(b.add(TypeNode::F32))];
        b.add(TypeNode::Variant(cases))
    });
    check(&types, id, 8, 4, Some(&[I32, F32]));

    // variant { a(f32), b(f64) }: join(f32, f64) = i64.
    let (types, id) = build(|b| {
        let cases = vec![Some(b.add(TypeNode::F32)), Some(b.add(TypeNode::F64))];
        b.add(TypeNode::Variant(cases))
    });
    check(&types, id, 16, 8, Some(&[I32, I64]));

    // variant { a(tuple<f32, u8>), b(f64) }: position by position, [join(f32, f64), i32].
    let (types, id) = build(|b| {
        let pair = vec![b.add(TypeNode::F32), b.add(TypeNode::U8)];
        let pair = b.add(TypeNode::Tuple(pair));
        let cases = vec![Some(pair), Some(b.add(TypeNode::F64))];
        b.add(TypeNode::Variant(cases))
    });
    check(&types, id, 16, 8, Some(&[I32, I64, I32]));

    // variant { a(string), b(u16), c }: payload at 4, 8 bytes of payload.
    let (types, id) = build(|b| {
        let cases = vec![
            Some(b.add(TypeNode::String)),
            Some(b.add(TypeNode::U16)),
            None,
        ];
        b.add(TypeNode::Variant(cases))
    });
    check(&types, id, 12, 4, Some(&[I32, I32, I32]));
}

#[test]
fn discriminants_grow_with_the_number_of_cases() {
    for (cases, size) in [(1, 1), (2, 1), (256, 1), (257, 2), (65536, 2), (65537, 4)] {
        let (types, id) = build(|b| b.add(TypeNode::Enum(cases)));
        check(&types, id, size, size, Some(&[I32]));
    }
    // 257 cases, the last with a u8: a 2-byte discriminant, the payload at 2, 3 bytes
    // rounded up to 4.
    let (types, id) = build(|b| {
        let mut cases = vec![None; 256];
        cases.push(Some(b.add(TypeNode::U8)));
        b.add(TypeNode::Variant(cases))
    });
    check(&types, id, 4, 2, Some(&[I32, I32]));
}

#[test]
fn options_and_results_are_variants() {
    let (types, id) = build(|b| {
        let t = b.add(TypeNode::U8);
        b.add(TypeNode::Option(t))
    });
    check(&types, id, 2, 1, Some(&[I32, I32]));
    let (types, id) = build(|b| {
        let t = b.add(TypeNode::U64);
        b.add(TypeNode::Option(t))
    });
    check(&types, id, 16, 8, Some(&[I32, I64]));
    let (types, id) = build(|b| {
        let t = b.add(TypeNode::String);
        b.add(TypeNode::Option(t))
    });
    check(&types, id, 12, 4, Some(&[I32, I32, I32]));

    let (types, id) = build(|b| {
        b.add(TypeNode::Result {
            ok: None,
            err: None,
        })
    });
    check(&types, id, 1, 1, Some(&[I32]));
    let (types, id) = build(|b| {
        let ok = b.add(TypeNode::U32);
        let err = b.add(TypeNode::String);
        b.add(TypeNode::Result {
            ok: Some(ok),
            err: Some(err),
        })
    });
    check(&types, id, 12, 4, Some(&[I32, I32, I32]));
    let (types, id) = build(|b| {
        let err = b.add(TypeNode::U64);
        b.add(TypeNode::Result {
            ok: None,
            err: Some(err),
        })
    });
    check(&types, id, 16, 8, Some(&[I32, I64]));
    let (types, id) = build(|b| {
        let ok = b.add(TypeNode::F32);
        let err = b.add(TypeNode::F64);
        b.add(TypeNode::Result {
            ok: Some(ok),
            err: Some(err),
        })
    });
    check(&types, id, 16, 8, Some(&[I32, I64]));
    // result<option<list<u8>>, string>: the option is 12 bytes aligned 4.
    let (types, id) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        let list = b.add(TypeNode::List(u8));
        let ok = b.add(TypeNode::Option(list));
        let err = b.add(TypeNode::String);
        b.add(TypeNode::Result {
            ok: Some(ok),
            err: Some(err),
        })
    });
    check(&types, id, 16, 4, Some(&[I32, I32, I32, I32]));
}

#[test]
fn flags_take_the_smallest_integer_up_to_32() {
    for (count, size) in [(1, 1), (8, 1), (9, 2), (16, 2), (17, 4), (32, 4)] {
        let (types, id) = build(|b| b.add(TypeNode::Flags(count)));
        check(&types, id, size, size, Some(&[I32]));
    }
    // The spec limits flags to 32 since 2024 (and wasmparser refuses more), so a world
    // with 33 can never run on Wasmtime; the description refuses it too.
    let mut b = TypesBuilder::new();
    b.add(TypeNode::Flags(33));
    assert_eq!(
        b.finish(),
        Err(TypeError::TooManyFlags { node: 0, count: 33 })
    );
}

#[test]
fn builder_reuses_equal_nodes() {
    let mut b = TypesBuilder::new();
    let a = b.add(TypeNode::U32);
    let list = b.add(TypeNode::List(a));
    assert_eq!(b.add(TypeNode::U32), a);
    assert_eq!(b.add(TypeNode::List(a)), list);
    assert_eq!(b.finish().expect("valid").nodes().len(), 2);
}

#[test]
fn the_description_serializes_with_postcard_and_validates_on_the_way_in() {
    let (types, list) = build(|b| {
        let fields = vec![b.add(TypeNode::String), b.add(TypeNode::U64)];
        let record = b.add(TypeNode::Record(fields));
        b.add(TypeNode::List(record))
    });
    let func = FuncType {
        params: vec![list],
        result: Some(TypeId(0)),
    };
    let bytes = postcard::to_allocvec(&(&types, &func)).expect("serialize");
    // Compact: a tag per node, a byte per index and length.
    assert!(bytes.len() < 16, "{} bytes", bytes.len());
    let (back, back_func): (Types, FuncType) = postcard::from_bytes(&bytes).expect("deserialize");
    assert_eq!(back, types);
    assert_eq!(back_func, func);
    assert_eq!(back.size(list), Some(8));

    // A table referring forward does not deserialize.
    let bad =
        postcard::to_allocvec(&vec![TypeNode::List(TypeId(1)), TypeNode::U8]).expect("serialize");
    let err = postcard::from_bytes::<Types>(&bad).expect_err("forward reference");
    assert!(matches!(err, postcard::Error::SerdeDeCustom), "{err:?}");
}

/// The spec's `test_flatten` cases (run_tests.py), with WIT's single result.
#[test]
fn function_signatures() {
    let mut b = TypesBuilder::new();
    let u8 = b.add(TypeNode::U8);
    let f32 = b.add(TypeNode::F32);
    let f64 = b.add(TypeNode::F64);
    let one_f32 = b.add(TypeNode::Tuple(vec![f32]));
    let two_f32 = b.add(TypeNode::Tuple(vec![f32, f32]));
    let u64 = b.add(TypeNode::U64);
    let string = b.add(TypeNode::String);
    let types = b.finish().expect("valid");
    let abi = |params: Vec<TypeId>, result| {
        FuncAbi::new(&types, &FuncType { params, result }).expect("valid")
    };

    let f = abi(vec![u8, f32, f64], None);
    assert_eq!(f.import_signature().params, [I32, F32, F64]);
    assert_eq!(f.import_signature().results, []);
    assert_eq!(f.result_abi(), ResultAbi::None);

    let f = abi(vec![u8, f32, f64], Some(f32));
    assert_eq!(f.export_signature().results, [F32]);
    assert_eq!(f.import_signature().results, [F32]);
    let f = abi(vec![u8, f32, f64], Some(u8));
    assert_eq!(f.import_signature().results, [I32]);
    let f = abi(vec![u8, f32, f64], Some(one_f32));
    assert_eq!(f.import_signature().results, [F32]);

    // Two flat results: a return area. Imports take its pointer as a last parameter;
    // exports return a pointer.
    let f = abi(vec![u8, f32, f64], Some(two_f32));
    assert_eq!(f.result_abi(), ResultAbi::Memory);
    assert_eq!(f.import_signature().params, [I32, F32, F64, I32]);
    assert_eq!(f.import_signature().results, []);
    assert_eq!(f.export_signature().params, [I32, F32, F64]);
    assert_eq!(f.export_signature().results, [I32]);

    // 16 flat parameters are passed flat; 17 as one pointer.
    let f = abi(vec![u8; 16], None);
    assert!(!f.params_in_memory());
    assert_eq!(f.import_signature().params, [I32; 16]);
    let f = abi(vec![u8; 17], Some(two_f32));
    assert!(f.params_in_memory());
    assert_eq!(f.import_signature().params, [I32, I32]);
    assert_eq!(f.export_signature().params, [I32]);
    assert_eq!(f.export_signature().results, [I32]);

    // clock.now-ms: func() -> u64; log: func(level: u8, msg: string).
    let f = abi(vec![], Some(u64));
    assert_eq!(f.import_signature().params, []);
    assert_eq!(f.import_signature().results, [I64]);
    let f = abi(vec![u8, string], None);
    assert_eq!(f.import_signature().params, [I32, I32, I32]);

    assert_eq!(
        FuncAbi::new(
            &types,
            &FuncType {
                params: vec![TypeId(99)],
                result: None
            }
        ),
        Err(TypeError::UnknownType { id: 99 })
    );
}
