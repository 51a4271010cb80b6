//! The spec's own test vectors (`design/mvp/canonical-abi/run_tests.py`: `test`,
//! `test_pairs` and `test_heap`, 32-bit memory and UTF-8 only), each lifted from the
//! same core values and memory bytes and, when it lifts, sent round trip.

use tern_cabi::{FlatVal, TypeId, TypeNode, Types, TypesBuilder, Val};

use crate::{TestMem, build, i32s, lift_one, round_trip, same};

/// Lifts `ty` from `args` over `memory`; `expect` is `None` where the spec traps.
#[track_caller]
fn test(types: &Types, ty: TypeId, args: &[FlatVal], memory: &[u8], expect: Option<Val>) {
    let mut mem = TestMem::with_bytes(memory);
    let got = lift_one(types, ty, args, &mut mem);
    match (got, expect) {
        (Ok(got), Some(expect)) => {
            assert!(
                same(&got, &expect),
                "{args:?}: expected {expect:?}, got {got:?}"
            );
            round_trip(types, &[ty], &[expect]).expect("round trip");
        }
        (Err(_), None) => {}
        (got, expect) => panic!("{args:?}: expected {expect:?}, got {got:?}"),
    }
}

fn one(node: TypeNode) -> (Types, TypeId) {
    build(|b| b.add(node))
}

fn boxed(v: Val) -> Option<Box<Val>> {
    Some(Box::new(v))
}

#[test]
fn records_tuples_and_flags() {
    let (types, t) = build(|b| {
        let fields = vec![
            b.add(TypeNode::U8),
            b.add(TypeNode::U16),
            b.add(TypeNode::U32),
        ];
        b.add(TypeNode::Record(fields))
    });
    test(
        &types,
        t,
        &i32s(&[1, 2, 3]),
        &[],
        Some(Val::Record(vec![Val::U8(1), Val::U16(2), Val::U32(3)])),
    );

    let (types, t) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        let inner = b.add(TypeNode::Tuple(vec![u8, u8]));
        b.add(TypeNode::Tuple(vec![inner, u8]))
    });
    let expect = Val::Tuple(vec![Val::Tuple(vec![Val::U8(1), Val::U8(2)]), Val::U8(3)]);
    test(&types, t, &i32s(&[1, 2, 3]), &[], Some(expect));

    // Bits past the last flag are ignored.
    let (types, t) = one(TypeNode::Flags(2));
    for (arg, bits) in [(0, 0), (2, 2), (3, 3), (4, 0)] {
        test(&types, t, &i32s(&[arg]), &[], Some(Val::Flags(bits)));
    }
    let (types, t) = one(TypeNode::Flags(32));
    test(
        &types,
        t,
        &i32s(&[0xffff_ffff]),
        &[],
        Some(Val::Flags(0xffff_ffff)),
    );
}

#[test]
fn variants() {
    // variant { x(u8), y(f32), z }
    let (types, t) = build(|b| {
        let cases = vec![Some(b.add(TypeNode::U8)), Some(b.add(TypeNode::F32)), None];
        b.add(TypeNode::Variant(cases))
    });
    let case = |case, payload| Some(Val::Variant { case, payload });
    test(&types, t, &i32s(&[0, 42]), &[], case(0, boxed(Val::U8(42))));
    test(&types, t, &i32s(&[0, 256]), &[], case(0, boxed(Val::U8(0))));
    test(
        &types,
        t,
        &i32s(&[1, 0x4048_f5c3]),
        &[],
        case(1, boxed(Val::F32(f32::from_bits(0x4048_f5c3)))),
    );
    test(&types, t, &i32s(&[2, 0xffff_ffff]), &[], case(2, None));
    test(&types, t, &i32s(&[3, 0]), &[], None);

    let (types, t) = build(|b| {
        let f32 = b.add(TypeNode::F32);
        b.add(TypeNode::Option(f32))
    });
    let args = |case| [FlatVal::I32(case), FlatVal::F32(2.5)];
    test(&types, t, &args(0), &[], Some(Val::Option(None)));
    test(
        &types,
        t,
        &args(1),
        &[],
        Some(Val::Option(boxed(Val::F32(2.5)))),
    );

    let (types, t) = build(|b| {
        let ok = b.add(TypeNode::U8);
        let err = b.add(TypeNode::U32);
        b.add(TypeNode::Result {
            ok: Some(ok),
            err: Some(err),
        })
    });
    test(
        &types,
        t,
        &i32s(&[0, 42]),
        &[],
        Some(Val::Result(Ok(boxed(Val::U8(42))))),
    );
    test(
        &types,
        t,
        &i32s(&[1, 1000]),
        &[],
        Some(Val::Result(Err(boxed(Val::U32(1000))))),
    );

    let (types, t) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::Variant(vec![Some(u8), Some(u8)]))
    });
    test(&types, t, &i32s(&[0, 42]), &[], case(0, boxed(Val::U8(42))));
    test(&types, t, &i32s(&[1, 42]), &[], case(1, boxed(Val::U8(42))));
}

#[test]
fn scalars() {
    let pairs = |node: TypeNode, pairs: &[(u64, Option<Val>)]| {
        let (types, t) = one(node);
        let wide = matches!(types.node(t), Some(TypeNode::S64 | TypeNode::U64));
        for (arg, expect) in pairs {
            let arg = if wide {
                FlatVal::I64(*arg as i64)
            } else {
                FlatVal::I32(*arg as u32 as i32)
            };
            test(&types, t, &[arg], &[], expect.clone());
        }
    };
    let max = u64::from(u32::MAX);
    pairs(
        TypeNode::Bool,
        &[
            (0, Some(Val::Bool(false))),
            (1, Some(Val::Bool(true))),
            (2, Some(Val::Bool(true))),
            (max, Some(Val::Bool(true))),
        ],
    );
    pairs(
        TypeNode::U8,
        &[
            (127, Some(Val::U8(127))),
            (128, Some(Val::U8(128))),
            (255, Some(Val::U8(255))),
            (256, Some(Val::U8(0))),
            (max, Some(Val::U8(255))),
            (4294967168, Some(Val::U8(128))),
            (4294967167, Some(Val::U8(127))),
        ],
    );
    pairs(
        TypeNode::S8,
        &[
            (127, Some(Val::S8(127))),
            (128, Some(Val::S8(-128))),
            (255, Some(Val::S8(-1))),
            (256, Some(Val::S8(0))),
            (max, Some(Val::S8(-1))),
            (4294967168, Some(Val::S8(-128))),
            (4294967167, Some(Val::S8(127))),
        ],
    );
    pairs(
        TypeNode::U16,
        &[
            (32767, Some(Val::U16(32767))),
            (32768, Some(Val::U16(32768))),
            (65535, Some(Val::U16(65535))),
            (65536, Some(Val::U16(0))),
            (max, Some(Val::U16(65535))),
            (max + 1 - 32768, Some(Val::U16(32768))),
            (max + 1 - 32769, Some(Val::U16(32767))),
        ],
    );
    pairs(
        TypeNode::S16,
        &[
            (32767, Some(Val::S16(32767))),
            (32768, Some(Val::S16(-32768))),
            (65535, Some(Val::S16(-1))),
            (65536, Some(Val::S16(0))),
            (max, Some(Val::S16(-1))),
            (max + 1 - 32768, Some(Val::S16(-32768))),
            (max + 1 - 32769, Some(Val::S16(32767))),
        ],
    );
    pairs(
        TypeNode::U32,
        &[
            (0x7fff_ffff, Some(Val::U32(0x7fff_ffff))),
            (0x8000_0000, Some(Val::U32(0x8000_0000))),
            (max, Some(Val::U32(u32::MAX))),
        ],
    );
    pairs(
        TypeNode::S32,
        &[
            (0x7fff_ffff, Some(Val::S32(i32::MAX))),
            (0x8000_0000, Some(Val::S32(i32::MIN))),
            (max, Some(Val::S32(-1))),
        ],
    );
    pairs(
        TypeNode::U64,
        &[
            (i64::MAX as u64, Some(Val::U64(i64::MAX as u64))),
            (1 << 63, Some(Val::U64(1 << 63))),
            (u64::MAX, Some(Val::U64(u64::MAX))),
        ],
    );
    pairs(
        TypeNode::S64,
        &[
            (i64::MAX as u64, Some(Val::S64(i64::MAX))),
            (1 << 63, Some(Val::S64(i64::MIN))),
            (u64::MAX, Some(Val::S64(-1))),
        ],
    );
    pairs(
        TypeNode::Char,
        &[
            (0, Some(Val::Char('\0'))),
            (65, Some(Val::Char('A'))),
            (0xd7ff, Some(Val::Char('\u{d7ff}'))),
            (0xd800, None),
            (0xdfff, None),
            (0xe000, Some(Val::Char('\u{e000}'))),
            (0x10ffff, Some(Val::Char('\u{10ffff}'))),
            (0x110000, None),
            (max, None),
        ],
    );
    pairs(
        TypeNode::Enum(2),
        &[(0, Some(Val::Enum(0))), (1, Some(Val::Enum(1))), (2, None)],
    );

    let (types, t) = one(TypeNode::F32);
    test(&types, t, &[FlatVal::F32(2.5)], &[], Some(Val::F32(2.5)));
    let (types, t) = one(TypeNode::F64);
    test(&types, t, &[FlatVal::F64(2.5)], &[], Some(Val::F64(2.5)));
}

/// `test_heap`: a list at `args` over `memory`.
#[track_caller]
fn heap(
    elem: impl FnOnce(&mut TypesBuilder) -> TypeId,
    expect: Option<Val>,
    args: [u32; 2],
    memory: &[u8],
) {
    let (types, t) = build(|b| {
        let e = elem(b);
        b.add(TypeNode::List(e))
    });
    test(&types, t, &i32s(&args), memory, expect);
}

fn list(vals: impl IntoIterator<Item = Val>) -> Option<Val> {
    Some(Val::List(vals.into_iter().collect()))
}

fn s(v: &str) -> Val {
    Val::String(v.into())
}

#[test]
fn heap_lists_of_scalars() {
    let bools = || list([Val::Bool(true), Val::Bool(false), Val::Bool(true)]);
    heap(|b| b.add(TypeNode::Bool), bools(), [0, 3], &[1, 0, 1]);
    heap(|b| b.add(TypeNode::Bool), bools(), [0, 3], &[1, 0, 2]);
    heap(
        |b| b.add(TypeNode::Bool),
        bools(),
        [3, 3],
        &[0xff, 0xff, 0xff, 1, 0, 1],
    );
    heap(
        |b| b.add(TypeNode::U8),
        Some(Val::Bytes(vec![1, 2, 3])),
        [0, 3],
        &[1, 2, 3],
    );
    heap(
        |b| b.add(TypeNode::U16),
        list([1, 2, 3].map(Val::U16)),
        [0, 3],
        &[1, 0, 2, 0, 3, 0],
    );
    heap(
        |b| b.add(TypeNode::U16),
        None,
        [1, 3],
        &[0, 1, 0, 2, 0, 3, 0],
    );
    heap(
        |b| b.add(TypeNode::U32),
        list([1, 2, 3].map(Val::U32)),
        [0, 3],
        &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0],
    );
    heap(
        |b| b.add(TypeNode::U64),
        list([1, 2].map(Val::U64)),
        [0, 2],
        &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
    );
    heap(
        |b| b.add(TypeNode::S8),
        list([-1, -2, -3].map(Val::S8)),
        [0, 3],
        &[0xff, 0xfe, 0xfd],
    );
    heap(
        |b| b.add(TypeNode::S16),
        list([-1, -2, -3].map(Val::S16)),
        [0, 3],
        &[0xff, 0xff, 0xfe, 0xff, 0xfd, 0xff],
    );
    heap(
        |b| b.add(TypeNode::S32),
        list([-1, -2, -3].map(Val::S32)),
        [0, 3],
        &[
            0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfd, 0xff, 0xff, 0xff,
        ],
    );
    heap(
        |b| b.add(TypeNode::S64),
        list([-1, -2].map(Val::S64)),
        [0, 2],
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff,
        ],
    );
    heap(
        |b| b.add(TypeNode::Char),
        list(['A', 'B', 'c'].map(Val::Char)),
        [0, 3],
        &[65, 0, 0, 0, 66, 0, 0, 0, 99, 0, 0, 0],
    );
}

#[test]
fn heap_lists_of_strings_and_lists() {
    let (h, i, w, a, t) = (b'h', b'i', b'w', b'a', b't');
    heap(
        |b| b.add(TypeNode::String),
        list([s("hi"), s("wat")]),
        [0, 2],
        &[
            16, 0, 0, 0, 2, 0, 0, 0, 21, 0, 0, 0, 3, 0, 0, 0, h, i, 0xf, 0xf, 0xf, w, a, t,
        ],
    );
    let bytes = |b: &mut TypesBuilder| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::List(u8))
    };
    heap(
        bytes,
        list([
            Val::Bytes(vec![3, 4, 5]),
            Val::Bytes(vec![]),
            Val::Bytes(vec![6, 7]),
        ]),
        [0, 3],
        &[
            24, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 0, 0, 0, 2, 0, 0, 0, 3, 4, 5, 6, 7,
        ],
    );
    let u16s = |b: &mut TypesBuilder| {
        let u16 = b.add(TypeNode::U16);
        b.add(TypeNode::List(u16))
    };
    heap(
        u16s,
        list([Val::List(vec![Val::U16(5), Val::U16(6)])]),
        [0, 1],
        &[8, 0, 0, 0, 2, 0, 0, 0, 5, 0, 6, 0],
    );
    heap(u16s, None, [0, 1], &[9, 0, 0, 0, 2, 0, 0, 0, 0, 5, 0, 6, 0]);
}

#[test]
fn heap_lists_of_tuples_and_flags() {
    let tuple = |nodes: Vec<TypeNode>| {
        move |b: &mut TypesBuilder| {
            let fields = nodes.into_iter().map(|n| b.add(n)).collect();
            b.add(TypeNode::Tuple(fields))
        }
    };
    let tup = |vals: Vec<Val>| Val::Tuple(vals);
    heap(
        tuple(vec![
            TypeNode::U8,
            TypeNode::U8,
            TypeNode::U16,
            TypeNode::U32,
        ]),
        list([
            tup(vec![Val::U8(6), Val::U8(7), Val::U16(8), Val::U32(9)]),
            tup(vec![Val::U8(4), Val::U8(5), Val::U16(6), Val::U32(7)]),
        ]),
        [0, 2],
        &[6, 7, 8, 0, 9, 0, 0, 0, 4, 5, 6, 0, 7, 0, 0, 0],
    );
    heap(
        tuple(vec![
            TypeNode::U8,
            TypeNode::U16,
            TypeNode::U8,
            TypeNode::U32,
        ]),
        list([
            tup(vec![Val::U8(6), Val::U16(7), Val::U8(8), Val::U32(9)]),
            tup(vec![Val::U8(4), Val::U16(5), Val::U8(6), Val::U32(7)]),
        ]),
        [0, 2],
        &[
            6, 0xff, 7, 0, 8, 0xff, 0xff, 0xff, 9, 0, 0, 0, 4, 0xff, 5, 0, 6, 0xff, 0xff, 0xff, 7,
            0, 0, 0,
        ],
    );
    heap(
        tuple(vec![TypeNode::U16, TypeNode::U8]),
        list([
            tup(vec![Val::U16(6), Val::U8(7)]),
            tup(vec![Val::U16(8), Val::U8(9)]),
        ]),
        [0, 2],
        &[6, 0, 7, 0xff, 8, 0, 9, 0xff],
    );
    heap(
        |b| {
            let (u16, u8) = (b.add(TypeNode::U16), b.add(TypeNode::U8));
            let inner = b.add(TypeNode::Tuple(vec![u16, u8]));
            b.add(TypeNode::Tuple(vec![inner, u8]))
        },
        list([
            tup(vec![tup(vec![Val::U16(4), Val::U8(5)]), Val::U8(6)]),
            tup(vec![tup(vec![Val::U16(7), Val::U8(8)]), Val::U8(9)]),
        ]),
        [0, 2],
        &[4, 0, 5, 0xff, 6, 0xff, 7, 0, 8, 0xff, 9, 0xff],
    );

    let flags = |count| move |b: &mut TypesBuilder| b.add(TypeNode::Flags(count));
    heap(
        flags(2),
        list([0, 2, 3].map(Val::Flags)),
        [0, 3],
        &[0, 2, 3],
    );
    heap(
        flags(2),
        list([0, 2, 0].map(Val::Flags)),
        [0, 3],
        &[0, 2, 4],
    );
    heap(
        flags(9),
        list([0x1ff, 0].map(Val::Flags)),
        [0, 2],
        &[0xff, 0x1, 0, 0],
    );
    heap(
        flags(9),
        list([0x1ff, 0].map(Val::Flags)),
        [0, 2],
        &[0xff, 0x3, 0, 0],
    );
    heap(
        flags(17),
        list([0x1ffff, 0].map(Val::Flags)),
        [0, 2],
        &[0xff, 0xff, 0x1, 0, 0, 0, 0, 0],
    );
    heap(
        flags(17),
        list([0x1ffff, 0].map(Val::Flags)),
        [0, 2],
        &[0xff, 0xff, 0x3, 0, 0, 0, 0, 0],
    );
    heap(
        flags(32),
        list([u32::MAX, 0].map(Val::Flags)),
        [0, 2],
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
    );
}
