//! Every rejection: what the guest gets wrong (the spec's traps), what the host or the
//! engine gets wrong, and descriptions the table refuses; each with its error and,
//! where a person reads it, its message.

use tern_cabi::{
    AbiError, FlatType, FlatVal, FuncAbi, FuncType, MAX_LIST_BYTE_LENGTH, MAX_STRING_BYTE_LENGTH,
    MAX_TYPE_DEPTH, TypeError, TypeId, TypeNode, Types, TypesBuilder, Val,
};

use crate::{TestMem, build, i32s, lift_one, param_abi};

fn list_of(node: TypeNode) -> (Types, TypeId) {
    build(|b| {
        let e = b.add(node);
        b.add(TypeNode::List(e))
    })
}

#[test]
fn misaligned_pointers() {
    let (types, t) = list_of(TypeNode::U32);
    let mut mem = TestMem::new(64, 32);
    assert_eq!(
        lift_one(&types, t, &i32s(&[2, 1]), &mut mem),
        Err(AbiError::Misaligned {
            what: "list",
            ptr: 2,
            align: 4
        })
    );
    assert_eq!(
        AbiError::Misaligned {
            what: "list",
            ptr: 2,
            align: 4
        }
        .to_string(),
        "list pointer 0x2 is not aligned to 4 bytes"
    );

    // A string in memory is a (ptr, len) pair aligned to 4, wherever it is loaded from.
    let (types, string) = build(|b| b.add(TypeNode::String));
    assert_eq!(
        types.load(string, 6, &mut mem),
        Err(AbiError::Misaligned {
            what: "value",
            ptr: 6,
            align: 4
        })
    );

    // The return area the guest passes.
    let func = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![],
            result: Some(string),
        },
    )
    .expect("valid");
    let hi = Val::String("hi".into());
    assert_eq!(
        func.lower_result(&types, Some(&hi), &i32s(&[6]), &mut mem),
        Err(AbiError::Misaligned {
            what: "return area",
            ptr: 6,
            align: 4
        })
    );
    // The pointer an export returns.
    assert_eq!(
        func.lift_result(&types, &i32s(&[6]), &mut mem),
        Err(AbiError::Misaligned {
            what: "result",
            ptr: 6,
            align: 4
        })
    );

    // The parameter area of an import with too many flat parameters.
    let (types, u64) = build(|b| b.add(TypeNode::U64));
    let func = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![u64; 17],
            result: None,
        },
    )
    .expect("valid");
    let mut out = Vec::new();
    assert_eq!(
        func.lift_params(&types, &i32s(&[4]), &mut mem, &mut out),
        Err(AbiError::Misaligned {
            what: "parameters",
            ptr: 4,
            align: 8
        })
    );

    // What cabi_realloc returns.
    let mut mem = TestMem::new(512, 32);
    mem.misalign = true;
    assert_eq!(
        func.lower_params(&types, &vec![Val::U64(0); 17], &mut mem),
        Err(AbiError::Misaligned {
            what: "cabi_realloc result",
            ptr: 33,
            align: 8
        })
    );
}

#[test]
fn out_of_bounds() {
    let (types, string) = build(|b| b.add(TypeNode::String));
    let mut mem = TestMem::new(64, 32);
    assert_eq!(
        lift_one(&types, string, &i32s(&[60, 5]), &mut mem),
        Err(AbiError::OutOfBounds {
            ptr: 60,
            len: 5,
            memory_len: 64
        })
    );
    assert_eq!(
        AbiError::OutOfBounds {
            ptr: 60,
            len: 5,
            memory_len: 64
        }
        .to_string(),
        "5 bytes at 0x3c run past the end of linear memory (64 bytes)"
    );
    // An empty string still needs its pointer inside memory, as the spec says.
    assert_eq!(
        lift_one(&types, string, &i32s(&[65, 0]), &mut mem),
        Err(AbiError::OutOfBounds {
            ptr: 65,
            len: 0,
            memory_len: 64
        })
    );
    assert_eq!(
        lift_one(&types, string, &i32s(&[64, 0]), &mut mem),
        Ok(Val::String(String::new()))
    );
    // Past the end of the address space.
    assert_eq!(
        lift_one(&types, string, &i32s(&[0xffff_fff0, 0x20]), &mut mem),
        Err(AbiError::AddressOverflow {
            ptr: 0xffff_fff0,
            len: 0x20
        })
    );
    assert_eq!(
        AbiError::AddressOverflow {
            ptr: 0xffff_fff0,
            len: 0x20
        }
        .to_string(),
        "32 bytes at 0xfffffff0 overflow the 32-bit address space"
    );
    let (types, list) = list_of(TypeNode::U32);
    assert_eq!(
        lift_one(&types, list, &i32s(&[0xffff_fff0, 8]), &mut mem),
        Err(AbiError::AddressOverflow {
            ptr: 0xffff_fff0,
            len: 32
        })
    );
    // A return area past the end of memory.
    let func = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![],
            result: Some(list),
        },
    )
    .expect("valid");
    assert_eq!(
        func.lower_result(&types, Some(&Val::List(vec![])), &i32s(&[60]), &mut mem),
        Err(AbiError::OutOfBounds {
            ptr: 60,
            len: 8,
            memory_len: 64
        })
    );
}

#[test]
fn list_and_string_lengths() {
    let (types, t) = list_of(TypeNode::U64);
    let mut mem = TestMem::new(64, 32);
    let err = lift_one(&types, t, &i32s(&[0, 0x4000_0000]), &mut mem);
    assert_eq!(
        err,
        Err(AbiError::ListTooLong {
            len: 1 << 30,
            elem_size: 8
        })
    );
    assert_eq!(
        err.expect_err("too long").to_string(),
        "list of 1073741824 elements of 8 bytes overflows the 32-bit address space"
    );
    // Under 4 GiB but over the spec's 2^28 - 1 bytes.
    let err = lift_one(&types, t, &i32s(&[0, 1 << 25]), &mut mem).expect_err("too long");
    assert_eq!(
        err,
        AbiError::ListTooLong {
            len: 1 << 25,
            elem_size: 8
        }
    );
    assert_eq!(
        err.to_string(),
        "list of 33554432 elements of 8 bytes is 268435456 bytes, over the canonical ABI's limit \
         of 268435455 bytes"
    );
    // The largest list the limit allows is only refused by bounds.
    let (types, bytes) = list_of(TypeNode::U8);
    assert_eq!(
        lift_one(&types, bytes, &i32s(&[0, MAX_LIST_BYTE_LENGTH]), &mut mem),
        Err(AbiError::OutOfBounds {
            ptr: 0,
            len: u64::from(MAX_LIST_BYTE_LENGTH),
            memory_len: 64
        })
    );

    let (types, string) = build(|b| b.add(TypeNode::String));
    assert_eq!(
        lift_one(
            &types,
            string,
            &i32s(&[0, MAX_STRING_BYTE_LENGTH + 1]),
            &mut mem
        ),
        Err(AbiError::StringTooLong { len: 1 << 28 })
    );
}

#[test]
fn bad_utf8() {
    let (types, string) = build(|b| b.add(TypeNode::String));
    let mut mem = TestMem::new(64, 32);
    mem.put(8, &[b'o', b'k', 0xff, b'!']);
    let err = lift_one(&types, string, &i32s(&[8, 4]), &mut mem).expect_err("not UTF-8");
    assert_eq!(
        err,
        AbiError::InvalidUtf8 {
            ptr: 8,
            len: 4,
            valid_up_to: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "string of 4 bytes at 0x8 is not UTF-8: the byte at 0xa starts an invalid sequence \
         (strings cross the ABI as UTF-8 only)"
    );
    // A sequence cut short by the length.
    mem.put(16, "é".as_bytes());
    assert_eq!(
        lift_one(&types, string, &i32s(&[16, 1]), &mut mem),
        Err(AbiError::InvalidUtf8 {
            ptr: 16,
            len: 1,
            valid_up_to: 0
        })
    );
}

#[test]
fn bad_chars() {
    let (types, c) = build(|b| b.add(TypeNode::Char));
    let mut mem = TestMem::new(64, 32);
    for value in [0xd800, 0xdfff, 0x11_0000, u32::MAX] {
        assert_eq!(
            lift_one(&types, c, &i32s(&[value]), &mut mem),
            Err(AbiError::InvalidChar { value })
        );
    }
    mem.put(4, &0xd800u32.to_le_bytes());
    assert_eq!(
        types.load(c, 4, &mut mem),
        Err(AbiError::InvalidChar { value: 0xd800 })
    );
    assert_eq!(
        AbiError::InvalidChar { value: 0xd800 }.to_string(),
        "char 0xd800 is not a Unicode scalar value (surrogates and values past 0x10ffff are not chars)"
    );
}

#[test]
fn bad_discriminants() {
    let mut mem = TestMem::new(64, 32);
    let (types, t) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::Variant(vec![Some(u8), None, None]))
    });
    assert_eq!(
        lift_one(&types, t, &i32s(&[3, 0]), &mut mem),
        Err(AbiError::InvalidDiscriminant { value: 3, cases: 3 })
    );
    mem.put(0, &[3, 0]);
    assert_eq!(
        types.load(t, 0, &mut mem),
        Err(AbiError::InvalidDiscriminant { value: 3, cases: 3 })
    );

    let (types, t) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::Option(u8))
    });
    assert_eq!(
        lift_one(&types, t, &i32s(&[2, 0]), &mut mem),
        Err(AbiError::InvalidDiscriminant { value: 2, cases: 2 })
    );
    let (types, t) = build(|b| {
        b.add(TypeNode::Result {
            ok: None,
            err: None,
        })
    });
    assert_eq!(
        lift_one(&types, t, &i32s(&[2]), &mut mem),
        Err(AbiError::InvalidDiscriminant { value: 2, cases: 2 })
    );
    // An enum of 300 cases has a 2-byte discriminant.
    let (types, t) = build(|b| b.add(TypeNode::Enum(300)));
    mem.put(8, &300u16.to_le_bytes());
    assert_eq!(
        types.load(t, 8, &mut mem),
        Err(AbiError::InvalidDiscriminant {
            value: 300,
            cases: 300
        })
    );
    assert_eq!(
        AbiError::InvalidDiscriminant {
            value: 300,
            cases: 300
        }
        .to_string(),
        "discriminant 300 names no case of a type with 300 cases"
    );
}

/// The spec reads a `bool` as `i != 0`, and Wasmtime agrees: 2 is `true`, not a trap.
/// Refusing it would make a device trap where the same component runs on a server.
#[test]
fn bools_and_flags_are_lenient_as_the_spec_says() {
    let (types, t) = build(|b| b.add(TypeNode::Bool));
    let mut mem = TestMem::new(64, 32);
    assert_eq!(
        lift_one(&types, t, &i32s(&[2]), &mut mem),
        Ok(Val::Bool(true))
    );
    mem.put(0, &[0x80]);
    assert_eq!(types.load(t, 0, &mut mem), Ok(Val::Bool(true)));
    let (types, t) = build(|b| b.add(TypeNode::Flags(3)));
    assert_eq!(
        lift_one(&types, t, &i32s(&[0xff]), &mut mem),
        Ok(Val::Flags(0b111))
    );
}

#[test]
fn host_values_that_do_not_match_the_type() {
    let mut mem = TestMem::new(256, 32);
    let mut b = TypesBuilder::new();
    let u32 = b.add(TypeNode::U32);
    let u8 = b.add(TypeNode::U8);
    let bytes = b.add(TypeNode::List(u8));
    let record = b.add(TypeNode::Record(vec![u32, u32]));
    let variant = b.add(TypeNode::Variant(vec![Some(u32), None]));
    let flags = b.add(TypeNode::Flags(4));
    let types = b.finish().expect("valid");
    let lower = |ty, val: Val, mem: &mut TestMem| {
        param_abi(&types, ty)
            .lower_params(&types, &[val], mem)
            .map(|_| ())
    };

    assert_eq!(
        lower(u32, Val::String("7".into()), &mut mem),
        Err(AbiError::ValueMismatch {
            expected: "u32",
            found: "string"
        })
    );
    assert_eq!(
        AbiError::ValueMismatch {
            expected: "u32",
            found: "string"
        }
        .to_string(),
        "a string value was given for a u32 type"
    );
    assert_eq!(
        lower(bytes, Val::List(vec![Val::U8(1)]), &mut mem),
        Err(AbiError::ValueMismatch {
            expected: "list<u8>",
            found: "list"
        })
    );
    assert_eq!(
        lower(record, Val::Record(vec![Val::U32(1)]), &mut mem),
        Err(AbiError::LengthMismatch {
            what: "record",
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        lower(record, Val::Tuple(vec![Val::U32(1), Val::U32(2)]), &mut mem),
        Err(AbiError::ValueMismatch {
            expected: "record",
            found: "tuple"
        })
    );
    assert_eq!(
        lower(
            variant,
            Val::Variant {
                case: 2,
                payload: None
            },
            &mut mem
        ),
        Err(AbiError::InvalidDiscriminant { value: 2, cases: 2 })
    );
    assert_eq!(
        lower(
            variant,
            Val::Variant {
                case: 0,
                payload: None
            },
            &mut mem
        ),
        Err(AbiError::PayloadMismatch {
            case: 0,
            expected: true
        })
    );
    assert_eq!(
        lower(
            variant,
            Val::Variant {
                case: 1,
                payload: Some(Box::new(Val::U32(1)))
            },
            &mut mem
        ),
        Err(AbiError::PayloadMismatch {
            case: 1,
            expected: false
        })
    );
    assert_eq!(
        lower(flags, Val::Flags(0x10), &mut mem),
        Err(AbiError::UnknownFlags {
            bits: 0x10,
            count: 4
        })
    );
    // The same checks when storing to memory.
    assert_eq!(
        types.store(
            record,
            &Val::Record(vec![Val::U32(1), Val::Bool(true)]),
            0,
            &mut mem
        ),
        Err(AbiError::ValueMismatch {
            expected: "u32",
            found: "bool"
        })
    );
    assert_eq!(
        types.store(flags, &Val::Flags(0x10), 0, &mut mem),
        Err(AbiError::UnknownFlags {
            bits: 0x10,
            count: 4
        })
    );

    let func = param_abi(&types, u32);
    assert_eq!(
        func.lower_params(&types, &[], &mut mem),
        Err(AbiError::LengthMismatch {
            what: "parameters",
            expected: 1,
            found: 0
        })
    );
    assert_eq!(
        func.lower_result(&types, Some(&Val::U32(1)), &[], &mut mem),
        Err(AbiError::ValueMismatch {
            expected: "no result",
            found: "u32"
        })
    );
}

#[test]
fn core_values_that_do_not_match_the_signature() {
    let (types, t) = build(|b| b.add(TypeNode::U64));
    let mut mem = TestMem::new(64, 32);
    let func = param_abi(&types, t);
    let mut out = Vec::new();
    assert_eq!(
        func.lift_params(&types, &[FlatVal::I32(1)], &mut mem, &mut out),
        Err(AbiError::FlatType {
            index: 0,
            expected: FlatType::I64,
            found: FlatType::I32
        })
    );
    assert_eq!(
        func.lift_params(&types, &[], &mut mem, &mut out),
        Err(AbiError::FlatCount {
            expected: 1,
            found: 0
        })
    );
    let func = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![],
            result: Some(t),
        },
    )
    .expect("valid");
    assert_eq!(
        func.lift_result(&types, &[FlatVal::F64(1.0)], &mut mem),
        Err(AbiError::FlatType {
            index: 0,
            expected: FlatType::I64,
            found: FlatType::F64
        })
    );
}

#[test]
fn a_func_abi_used_with_another_table() {
    let (types, t) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::List(u8))
    });
    let func = param_abi(&types, t);
    let (other, _) = build(|b| b.add(TypeNode::U8));
    let mut mem = TestMem::new(64, 32);
    let mut out = Vec::new();
    assert_eq!(
        func.lift_params(&other, &i32s(&[0, 0]), &mut mem, &mut out),
        Err(AbiError::UnknownType { id: 1 })
    );
}

#[test]
fn descriptions_the_table_refuses() {
    let err = |nodes: Vec<TypeNode>| Types::new(nodes).expect_err("refused");
    assert_eq!(
        err(vec![TypeNode::List(TypeId(0))]),
        TypeError::ForwardReference { node: 0, child: 0 }
    );
    assert_eq!(
        err(vec![
            TypeNode::U8,
            TypeNode::Option(TypeId(2)),
            TypeNode::U8
        ]),
        TypeError::ForwardReference { node: 1, child: 2 }
    );
    assert_eq!(
        err(vec![TypeNode::Record(vec![])]),
        TypeError::Empty {
            node: 0,
            kind: "record"
        }
    );
    assert_eq!(
        err(vec![TypeNode::Tuple(vec![])]),
        TypeError::Empty {
            node: 0,
            kind: "tuple"
        }
    );
    assert_eq!(
        err(vec![TypeNode::Variant(vec![])]),
        TypeError::Empty {
            node: 0,
            kind: "variant"
        }
    );
    assert_eq!(
        err(vec![TypeNode::Enum(0)]),
        TypeError::Empty {
            node: 0,
            kind: "enum"
        }
    );
    assert_eq!(
        err(vec![TypeNode::Flags(0)]),
        TypeError::Empty {
            node: 0,
            kind: "flags"
        }
    );
    assert_eq!(
        err(vec![TypeNode::Flags(33)]).to_string(),
        "type 0 is flags with 33 members; the canonical ABI allows at most 32 (split them into \
         several flags types)"
    );

    // option<option<...<u8>>>: MAX_TYPE_DEPTH levels are fine, one more is not.
    let mut nodes = vec![TypeNode::U8];
    for i in 0..MAX_TYPE_DEPTH as u32 - 1 {
        nodes.push(TypeNode::Option(TypeId(i)));
    }
    Types::new(nodes.clone()).expect("deep but allowed");
    nodes.push(TypeNode::Option(TypeId(MAX_TYPE_DEPTH as u32 - 1)));
    assert_eq!(
        err(nodes),
        TypeError::TooDeep {
            node: MAX_TYPE_DEPTH as u32
        }
    );

    // A record of 16 records of 16 ... of u64: 8 * 16^7 = 2^31 bytes.
    let mut nodes = vec![TypeNode::U64];
    for i in 0..7 {
        nodes.push(TypeNode::Record(vec![TypeId(i); 16]));
    }
    assert_eq!(
        err(nodes),
        TypeError::TooLarge {
            node: 7,
            size: 1 << 31
        }
    );
}

/// Each fault the guest causes, provoked through the calls an engine makes, has the
/// summary an engine reports for it: fixed, without the addresses `Display` gives.
#[test]
fn faults_have_fixed_summaries() {
    fn summary<T>(r: Result<T, AbiError>) -> Option<&'static str> {
        r.err().map(|e| e.summary())
    }
    let (types, string) = build(|b| b.add(TypeNode::String));
    let mut mem = TestMem::with_bytes(b"\xff\xfe");
    let result_fn = FuncAbi::new(
        &types,
        &FuncType {
            params: vec![],
            result: Some(string),
        },
    )
    .expect("valid");
    let hi = Val::String("hi".into());
    assert_eq!(
        summary(result_fn.lower_result(&types, Some(&hi), &i32s(&[6]), &mut mem)),
        Some("return area pointer not aligned")
    );
    assert_eq!(
        summary(result_fn.lift_result(&types, &i32s(&[6]), &mut mem)),
        Some("result pointer not aligned")
    );
    assert_eq!(
        summary(result_fn.lift_result(&types, &i32s(&[0xffff_fff8]), &mut mem)),
        Some("pointer/length out of bounds of memory")
    );
    for (flat, expected) in [
        ([0xffff_0000, 10], "pointer/length out of bounds of memory"),
        (
            [0, MAX_STRING_BYTE_LENGTH + 1],
            "pointer/length out of bounds of memory",
        ),
        ([0, 2], "string is not valid UTF-8"),
    ] {
        assert_eq!(
            summary(lift_one(&types, string, &i32s(&flat), &mut mem)),
            Some(expected)
        );
    }

    let (types, list) = list_of(TypeNode::U64);
    for (flat, expected) in [
        ([4, 1], "list pointer not aligned"),
        ([0xffff_0000, 1], "pointer/length out of bounds of memory"),
        (
            [0, MAX_LIST_BYTE_LENGTH],
            "pointer/length out of bounds of memory",
        ),
    ] {
        assert_eq!(
            summary(lift_one(&types, list, &i32s(&flat), &mut mem)),
            Some(expected)
        );
    }

    let (types, option) = build(|b| {
        let u8 = b.add(TypeNode::U8);
        b.add(TypeNode::Option(u8))
    });
    assert_eq!(
        summary(lift_one(&types, option, &i32s(&[2, 0]), &mut mem)),
        Some("invalid discriminant")
    );

    let mut mem = TestMem::new(512, 32);
    mem.misalign = true;
    let (types, list) = list_of(TypeNode::U32);
    let func = param_abi(&types, list);
    assert_eq!(
        summary(func.lower_params(&types, &[Val::List(vec![Val::U32(1)])], &mut mem)),
        Some("cabi_realloc result not aligned")
    );
    for e in [
        AbiError::InvalidUtf8 {
            ptr: 0x1234,
            len: 2,
            valid_up_to: 0,
        },
        AbiError::Misaligned {
            what: "list",
            ptr: 0x1234,
            align: 8,
        },
    ] {
        assert!(e.to_string().contains("0x1234"), "{e}");
        assert!(!e.summary().contains("0x1234"));
    }
}
