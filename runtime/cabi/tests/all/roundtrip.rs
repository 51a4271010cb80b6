//! Nested values sent round trip, the bytes they take in memory, the order of
//! `cabi_realloc` calls, and the flat fast path allocating nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tern_cabi::{
    FlatVal, FuncAbi, FuncType, ResultAbi, TypeId, TypeNode, Types, TypesBuilder, Val,
};

use crate::{TestMem, build, i32s, round_trip};

fn boxed(v: Val) -> Option<Box<Val>> {
    Some(Box::new(v))
}

/// `record reading { sensor: string, milli: s64, note: option<string>, tags: list<u8> }`
/// and a list of them.
fn readings(b: &mut TypesBuilder) -> (TypeId, TypeId) {
    let string = b.add(TypeNode::String);
    let s64 = b.add(TypeNode::S64);
    let note = b.add(TypeNode::Option(string));
    let u8 = b.add(TypeNode::U8);
    let tags = b.add(TypeNode::List(u8));
    let reading = b.add(TypeNode::Record(vec![string, s64, note, tags]));
    (reading, b.add(TypeNode::List(reading)))
}

fn reading(sensor: &str, milli: i64, note: Option<&str>, tags: &[u8]) -> Val {
    Val::Record(vec![
        Val::String(sensor.into()),
        Val::S64(milli),
        Val::Option(note.map(|n| Box::new(Val::String(n.into())))),
        Val::Bytes(tags.to_vec()),
    ])
}

#[test]
fn list_of_records_with_strings_and_options() {
    let (types, (_, list)) = build_pair(readings);
    let val = Val::List(vec![
        reading("t0", -21_500, None, &[]),
        reading("humidity", 48_250, Some("calibrated 2026-03"), &[1, 2, 3]),
        reading("", i64::MIN, Some(""), &[0xff; 9]),
        reading("ünïcødé ✓", i64::MAX, None, &[7]),
    ]);
    round_trip(&types, &[list], &[val]).expect("round trip");
    round_trip(&types, &[list], &[Val::List(vec![])]).expect("empty list");
}

fn build_pair(f: impl FnOnce(&mut TypesBuilder) -> (TypeId, TypeId)) -> (Types, (TypeId, TypeId)) {
    let mut b = TypesBuilder::new();
    let ids = f(&mut b);
    (b.finish().expect("valid"), ids)
}

#[test]
fn variants_with_differently_sized_payloads() {
    // variant { empty, byte(u8), wide(u64), real(f32), double(f64), text(string),
    //           pair(tuple<f32, u16>) }: flat [i32, i64, i32], 16 bytes aligned 8.
    let (types, t) = build(|b| {
        let (f32, u16) = (b.add(TypeNode::F32), b.add(TypeNode::U16));
        let pair = b.add(TypeNode::Tuple(vec![f32, u16]));
        let cases = vec![
            None,
            Some(b.add(TypeNode::U8)),
            Some(b.add(TypeNode::U64)),
            Some(f32),
            Some(b.add(TypeNode::F64)),
            Some(b.add(TypeNode::String)),
            Some(pair),
        ];
        b.add(TypeNode::Variant(cases))
    });
    let case = |case, payload| Val::Variant { case, payload };
    let vals = [
        case(0, None),
        case(1, boxed(Val::U8(200))),
        case(2, boxed(Val::U64(u64::MAX - 1))),
        case(3, boxed(Val::F32(-0.0))),
        case(3, boxed(Val::F32(f32::from_bits(0x7fc0_0001)))),
        case(4, boxed(Val::F64(f64::from_bits(0xfff8_0000_0000_0042)))),
        case(5, boxed(Val::String("payload".into()))),
        case(6, boxed(Val::Tuple(vec![Val::F32(1.5), Val::U16(65535)]))),
    ];
    for val in vals {
        round_trip(&types, &[t], &[val]).expect("round trip");
    }

    // The core values of `double(f64)` carry the f64's bits in the joined i64, then a
    // zero for the pair's u16.
    let func = crate::param_abi(&types, t);
    let mut mem = TestMem::new(64, 8);
    let flat = func
        .lower_params(&types, &[case(4, boxed(Val::F64(1.0)))], &mut mem)
        .expect("lower");
    assert_eq!(
        *flat,
        [
            FlatVal::I32(4),
            FlatVal::I64(1.0f64.to_bits() as i64),
            FlatVal::I32(0)
        ]
    );
    // `pair` puts the f32's bits zero-extended in the i64.
    let flat = func.lower_params(
        &types,
        &[case(
            6,
            boxed(Val::Tuple(vec![Val::F32(-1.0), Val::U16(3)])),
        )],
        &mut mem,
    );
    let flat = flat.expect("lower");
    assert_eq!(
        *flat,
        [
            FlatVal::I32(6),
            FlatVal::I64(i64::from((-1.0f32).to_bits())),
            FlatVal::I32(3)
        ]
    );
}

#[test]
fn flags_enums_and_handles() {
    let (types, ids) = build_pair(|b| {
        let f = b.add(TypeNode::Flags(32));
        let f9 = b.add(TypeNode::Flags(9));
        let e = b.add(TypeNode::Enum(300));
        let own = b.add(TypeNode::Own(tern_cabi::ResourceId(0)));
        let borrow = b.add(TypeNode::Borrow(tern_cabi::ResourceId(0)));
        (b.add(TypeNode::Tuple(vec![f, f9, e, own, borrow])), f)
    });
    let val = Val::Tuple(vec![
        Val::Flags(0x8000_0001),
        Val::Flags(0x1ff),
        Val::Enum(299),
        Val::Own(7),
        Val::Borrow(3),
    ]);
    round_trip(&types, &[ids.0, ids.1], &[val, Val::Flags(u32::MAX)]).expect("round trip");
}

#[test]
fn results_with_and_without_payloads() {
    let (types, ids) = build_pair(|b| {
        let string = b.add(TypeNode::String);
        let u32 = b.add(TypeNode::U32);
        let both = b.add(TypeNode::Result {
            ok: Some(u32),
            err: Some(string),
        });
        let none = b.add(TypeNode::Result {
            ok: None,
            err: None,
        });
        let err_only = b.add(TypeNode::Result {
            ok: None,
            err: Some(string),
        });
        let ok_only = b.add(TypeNode::Result {
            ok: Some(string),
            err: None,
        });
        (
            b.add(TypeNode::Tuple(vec![both, none, err_only, ok_only])),
            both,
        )
    });
    let str = |s: &str| boxed(Val::String(s.into()));
    for val in [
        Val::Tuple(vec![
            Val::Result(Ok(boxed(Val::U32(7)))),
            Val::Result(Ok(None)),
            Val::Result(Ok(None)),
            Val::Result(Ok(str("fine"))),
        ]),
        Val::Tuple(vec![
            Val::Result(Err(str("no such sensor"))),
            Val::Result(Err(None)),
            Val::Result(Err(str("quota"))),
            Val::Result(Err(None)),
        ]),
    ] {
        round_trip(&types, &[ids.0], &[val]).expect("round trip");
    }
    round_trip(&types, &[ids.1], &[Val::Result(Err(str("x")))]).expect("round trip");
}

/// `kv.get: func(key: string) -> result<option<list<u8>>, string>` as the guest calls
/// it: the key flat, the result in the return area the guest passes last.
#[test]
fn import_with_a_return_area() {
    let mut b = TypesBuilder::new();
    let string = b.add(TypeNode::String);
    let u8 = b.add(TypeNode::U8);
    let bytes = b.add(TypeNode::List(u8));
    let ok = b.add(TypeNode::Option(bytes));
    let result = b.add(TypeNode::Result {
        ok: Some(ok),
        err: Some(string),
    });
    let types = b.finish().expect("valid");
    let func = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![string],
            result: Some(result),
        },
    )
    .expect("valid");
    assert_eq!(func.result_abi(), ResultAbi::Memory);

    let mut mem = TestMem::new(256, 128);
    mem.put(16, b"count");
    let args = i32s(&[16, 5, 64]);
    let mut params = Vec::new();
    func.lift_params(&types, &args, &mut mem, &mut params)
        .expect("lift");
    assert_eq!(params, [Val::String("count".into())]);

    let value = Val::Result(Ok(boxed(Val::Option(boxed(Val::Bytes(vec![1, 2, 3]))))));
    assert_eq!(
        func.lower_result(&types, Some(&value), &args, &mut mem)
            .expect("lower"),
        None
    );
    assert_eq!(mem.reallocs, [[0, 0, 1, 3]]);
    // result: discriminant 0 at 0, payload at 4: option discriminant 1 at 4, the list's
    // (ptr, len) at 8.
    assert_eq!(
        mem.bytes[64..80],
        [0, 0, 0, 0, 1, 0, 0, 0, 128, 0, 0, 0, 3, 0, 0, 0]
    );
    assert_eq!(mem.bytes[128..131], [1, 2, 3]);

    let value = Val::Result(Err(boxed(Val::String("no".into()))));
    func.lower_result(&types, Some(&value), &args, &mut mem)
        .expect("lower");
    assert_eq!(mem.bytes[64..76], [1, 0, 0, 0, 131, 0, 0, 0, 2, 0, 0, 0]);
}

/// An export with 17 flat parameters and a string result: the parameters go in an area
/// `cabi_realloc` gives, strings after it in order, the result comes back by pointer.
#[test]
fn export_with_parameters_and_result_in_memory() {
    let mut b = TypesBuilder::new();
    let u8 = b.add(TypeNode::U8);
    let string = b.add(TypeNode::String);
    let mut params = vec![u8; 15];
    params.extend([string, string]);
    let types = b.finish().expect("valid");
    let func = FuncAbi::new(
        &types,
        &FuncType {
            params,
            result: Some(string),
        },
    )
    .expect("valid");
    assert!(func.params_in_memory());
    assert_eq!(func.result_abi(), ResultAbi::Memory);

    let mut args: Vec<Val> = (0..15).map(Val::U8).collect();
    args.extend([Val::String("ab".into()), Val::String("cde".into())]);
    let mut mem = TestMem::new(256, 8);
    let flat = func.lower_params(&types, &args, &mut mem).expect("lower");
    // The area first (15 bytes, then two strings aligned 4: 32 bytes), then each string.
    assert_eq!(mem.reallocs, [[0, 0, 4, 32], [0, 0, 1, 2], [0, 0, 1, 3]]);
    assert_eq!(*flat, [FlatVal::I32(8)]);
    assert_eq!(mem.bytes[8..23], (0..15).collect::<Vec<u8>>()[..]);
    assert_eq!(
        mem.bytes[24..40],
        [40, 0, 0, 0, 2, 0, 0, 0, 42, 0, 0, 0, 3, 0, 0, 0]
    );

    // The guest returns a pointer to (ptr, len); the engine then calls
    // cabi_post_<export> with the same results.
    mem.put(48, &[42, 0, 0, 0, 3, 0, 0, 0]);
    let result = func
        .lift_result(&types, &[FlatVal::I32(48)], &mut mem)
        .expect("lift");
    assert_eq!(result, Some(Val::String("cde".into())));
}

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting allocations per thread.
struct Counting;

// SAFETY: forwards every call to `System` unchanged; the count is a thread-local
// `Cell` that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

/// The hot host calls allocate nothing: `clock.now-ms() -> u64`, `gpio.set(pin: u32,
/// high: bool) -> result<_, string>` answered `ok` (through the return area), and
/// lowering an export's scalar parameters.
#[test]
fn the_flat_path_allocates_nothing() {
    let mut b = TypesBuilder::new();
    let u64 = b.add(TypeNode::U64);
    let u32 = b.add(TypeNode::U32);
    let bool = b.add(TypeNode::Bool);
    let string = b.add(TypeNode::String);
    let result = b.add(TypeNode::Result {
        ok: None,
        err: Some(string),
    });
    let s64 = b.add(TypeNode::S64);
    let types = b.finish().expect("valid");
    let now = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![],
            result: Some(u64),
        },
    )
    .expect("valid");
    let set = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![u32, bool],
            result: Some(result),
        },
    )
    .expect("valid");
    let event = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![u64, s64, bool],
            result: None,
        },
    )
    .expect("valid");
    let mut mem = TestMem::new(64, 32);
    let mut params = Vec::with_capacity(8);
    let ok = Val::Result(Ok(None));
    let args = i32s(&[5, 1, 16]);
    let event_args = [Val::U64(1), Val::S64(-2), Val::Bool(true)];

    let (_, n) = allocations(|| {
        for _ in 0..100 {
            now.lift_params(&types, &[], &mut mem, &mut params)
                .expect("lift");
            assert_eq!(
                now.lower_result(&types, Some(&Val::U64(42)), &[], &mut mem),
                Ok(Some(FlatVal::I64(42)))
            );
            set.lift_params(&types, &args, &mut mem, &mut params)
                .expect("lift");
            assert_eq!(params[..], [Val::U32(5), Val::Bool(true)]);
            set.lower_result(&types, Some(&ok), &args, &mut mem)
                .expect("lower");
            let flat = event
                .lower_params(&types, &event_args, &mut mem)
                .expect("lower");
            assert_eq!(flat.len(), 3);
        }
    });
    assert_eq!(n, 0, "allocations on the flat path");
}
