//! Random types (bounded depth) with random values of them, sent round trip; and
//! random core values and memory lifted against random types, which may fail but
//! never panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::Union;
use tern_cabi::{
    FlatType, FlatVal, FuncAbi, FuncType, ResourceId, TypeId, TypeNode, TypesBuilder, Val,
};

use crate::{TestMem, round_trip};

/// A type as a tree, turned into a table by [`add`].
#[derive(Clone, Debug)]
enum Ty {
    Leaf(TypeNode),
    List(Box<Ty>),
    Record(Vec<Ty>),
    Tuple(Vec<Ty>),
    Variant(Vec<Option<Ty>>),
    Option(Box<Ty>),
    Result(Option<Box<Ty>>, Option<Box<Ty>>),
}

fn leaf() -> impl Strategy<Value = Ty> {
    prop_oneof![
        Just(TypeNode::Bool),
        Just(TypeNode::S8),
        Just(TypeNode::U8),
        Just(TypeNode::S16),
        Just(TypeNode::U16),
        Just(TypeNode::S32),
        Just(TypeNode::U32),
        Just(TypeNode::S64),
        Just(TypeNode::U64),
        Just(TypeNode::F32),
        Just(TypeNode::F64),
        Just(TypeNode::Char),
        Just(TypeNode::String),
        // Past 256 cases the discriminant takes two bytes.
        prop_oneof![1u32..6, 250u32..300].prop_map(TypeNode::Enum),
        (1u32..=32).prop_map(TypeNode::Flags),
        Just(TypeNode::Own(ResourceId(0))),
        Just(TypeNode::Borrow(ResourceId(1))),
    ]
    .prop_map(Ty::Leaf)
}

/// Types nested at most 4 constructors deep.
fn ty() -> impl Strategy<Value = Ty> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Ty::List(Box::new(t))),
            vec(inner.clone(), 1..4).prop_map(Ty::Record),
            vec(inner.clone(), 1..4).prop_map(Ty::Tuple),
            vec(option::of(inner.clone()), 1..5).prop_map(Ty::Variant),
            inner.clone().prop_map(|t| Ty::Option(Box::new(t))),
            (option::of(inner.clone()), option::of(inner))
                .prop_map(|(ok, err)| Ty::Result(ok.map(Box::new), err.map(Box::new))),
        ]
    })
}

/// Adds `t` and its children to `b`, children first.
fn add(b: &mut TypesBuilder, t: &Ty) -> TypeId {
    let node = match t {
        Ty::Leaf(node) => node.clone(),
        Ty::List(e) => TypeNode::List(add(b, e)),
        Ty::Record(fs) => TypeNode::Record(fs.iter().map(|f| add(b, f)).collect()),
        Ty::Tuple(fs) => TypeNode::Tuple(fs.iter().map(|f| add(b, f)).collect()),
        Ty::Variant(cs) => {
            TypeNode::Variant(cs.iter().map(|c| c.as_ref().map(|c| add(b, c))).collect())
        }
        Ty::Option(t) => TypeNode::Option(add(b, t)),
        Ty::Result(ok, err) => TypeNode::Result {
            ok: ok.as_ref().map(|t| add(b, t)),
            err: err.as_ref().map(|t| add(b, t)),
        },
    };
    b.add(node)
}

/// Values of type `t`.
fn value(t: &Ty) -> BoxedStrategy<Val> {
    match t {
        Ty::Leaf(node) => match node {
            TypeNode::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
            TypeNode::S8 => any::<i8>().prop_map(Val::S8).boxed(),
            TypeNode::U8 => any::<u8>().prop_map(Val::U8).boxed(),
            TypeNode::S16 => any::<i16>().prop_map(Val::S16).boxed(),
            TypeNode::U16 => any::<u16>().prop_map(Val::U16).boxed(),
            TypeNode::S32 => any::<i32>().prop_map(Val::S32).boxed(),
            TypeNode::U32 => any::<u32>().prop_map(Val::U32).boxed(),
            TypeNode::S64 => any::<i64>().prop_map(Val::S64).boxed(),
            TypeNode::U64 => any::<u64>().prop_map(Val::U64).boxed(),
            // Any bits, NaN payloads included: they must survive.
            TypeNode::F32 => any::<u32>()
                .prop_map(|b| Val::F32(f32::from_bits(b)))
                .boxed(),
            TypeNode::F64 => any::<u64>()
                .prop_map(|b| Val::F64(f64::from_bits(b)))
                .boxed(),
            TypeNode::Char => any::<char>().prop_map(Val::Char).boxed(),
            TypeNode::String => vec(any::<char>(), 0..6)
                .prop_map(|cs| Val::String(cs.into_iter().collect()))
                .boxed(),
            TypeNode::Enum(n) => (0..*n).prop_map(Val::Enum).boxed(),
            TypeNode::Flags(n) => {
                let mask = u32::MAX >> (32 - n);
                any::<u32>()
                    .prop_map(move |bits| Val::Flags(bits & mask))
                    .boxed()
            }
            TypeNode::Own(_) => any::<u32>().prop_map(Val::Own).boxed(),
            TypeNode::Borrow(_) => any::<u32>().prop_map(Val::Borrow).boxed(),
            other => unreachable!("not a leaf: {other:?}"),
        },
        Ty::List(e) if matches!(**e, Ty::Leaf(TypeNode::U8)) => {
            vec(any::<u8>(), 0..8).prop_map(Val::Bytes).boxed()
        }
        Ty::List(e) => vec(value(e), 0..4).prop_map(Val::List).boxed(),
        Ty::Record(fs) => fs
            .iter()
            .map(value)
            .collect::<Vec<_>>()
            .prop_map(Val::Record)
            .boxed(),
        Ty::Tuple(fs) => fs
            .iter()
            .map(value)
            .collect::<Vec<_>>()
            .prop_map(Val::Tuple)
            .boxed(),
        Ty::Variant(cases) => {
            let cases = cases
                .iter()
                .zip(0u32..)
                .map(|(payload, case)| match payload {
                    Some(t) => value(t)
                        .prop_map(move |v| Val::Variant {
                            case,
                            payload: Some(Box::new(v)),
                        })
                        .boxed(),
                    None => Just(Val::Variant {
                        case,
                        payload: None,
                    })
                    .boxed(),
                });
            Union::new(cases).boxed()
        }
        Ty::Option(t) => option::of(value(t))
            .prop_map(|v| Val::Option(v.map(Box::new)))
            .boxed(),
        Ty::Result(ok, err) => {
            let payload = |t: &Option<Box<Ty>>| match t {
                Some(t) => value(t).prop_map(|v| Some(Box::new(v))).boxed(),
                None => Just(None).boxed(),
            };
            prop_oneof![
                payload(ok).prop_map(|p| Val::Result(Ok(p))),
                payload(err).prop_map(|p| Val::Result(Err(p)))
            ]
            .boxed()
        }
    }
}

/// One to five parameter types and a value of each.
fn params() -> impl Strategy<Value = (Vec<Ty>, Vec<Val>)> {
    vec(ty(), 1..6).prop_flat_map(|tys| {
        let vals: Vec<_> = tys.iter().map(value).collect();
        (Just(tys), vals)
    })
}

/// A core value of type `ty`, mostly small so that pointers and lengths land in memory.
fn flat(ty: FlatType, bits: u64) -> FlatVal {
    match ty {
        FlatType::I32 => FlatVal::I32(bits as i32),
        FlatType::I64 => FlatVal::I64(bits as i64),
        FlatType::F32 => FlatVal::F32(f32::from_bits(bits as u32)),
        FlatType::F64 => FlatVal::F64(f64::from_bits(bits)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Lowered then lifted, as parameters, as a result and through memory, every
    /// value comes back bit for bit.
    #[test]
    fn random_values_round_trip((tys, vals) in params()) {
        let mut b = TypesBuilder::new();
        let ids: Vec<TypeId> = tys.iter().map(|t| add(&mut b, t)).collect();
        let types = b.finish().map_err(|e| TestCaseError::fail(e.to_string()))?;
        round_trip(&types, &ids, &vals).map_err(TestCaseError::fail)?;
    }

    /// Whatever the guest passes (core values, memory contents), lifting returns a
    /// value or an error; it never panics.
    #[test]
    fn garbage_never_panics(
        tys in vec(ty(), 1..4),
        result in ty(),
        memory in vec(any::<u8>(), 0..512),
        words in vec(prop_oneof![0u64..600, any::<u64>()], 0..40),
    ) {
        let mut b = TypesBuilder::new();
        let params: Vec<TypeId> = tys.iter().map(|t| add(&mut b, t)).collect();
        let result = add(&mut b, &result);
        let types = b.finish().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let func = FuncAbi::new(&types, &FuncType { params: params.clone(), result: Some(result) })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut mem = TestMem::with_bytes(&memory);
        let word = |i: usize| words.get(i).copied().unwrap_or(0);

        let sig = func.import_signature();
        let args: Vec<FlatVal> = sig.params.iter().enumerate().map(|(i, t)| flat(*t, word(i))).collect();
        let mut out = Vec::new();
        let _ = func.lift_params(&types, &args, &mut mem, &mut out);

        let sig = func.export_signature();
        let results: Vec<FlatVal> = sig.results.iter().map(|t| flat(*t, word(39))).collect();
        let _ = func.lift_result(&types, &results, &mut mem);

        for (i, ty) in params.iter().chain([&result]).enumerate() {
            let _ = types.load(*ty, word(i) as u32, &mut mem);
        }
    }
}
