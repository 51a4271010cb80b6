//! The ABI's own cost per call of the `tern:edge` host functions, over a memory in a
//! `Vec<u8>`: what `tern-cabi` adds on top of the engine's host-call machinery.
//!
//! `cargo bench -p tern-cabi`. Each call has a `hand-written` twin doing what
//! tern-wasmi's shims do for that function over the same memory (the checks
//! included), so the ratio is the price of the generic ABI. For scale: a wasmi host
//! call of `clock.now-ms` through today's shim costs 68 ns, engine included.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tern_cabi::{
    AbiError, FlatVal, FuncAbi, FuncType, Memory, TypeNode, TypesBuilder, Val, check_range,
};

/// Linear memory with a bump `cabi_realloc` that starts over at every call.
struct Mem {
    bytes: Vec<u8>,
    next: u32,
}

impl Memory for Mem {
    type Error = AbiError;

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&self, offset: u32, buf: &mut [u8]) -> Result<(), AbiError> {
        let range = check_range(offset, buf.len(), self.bytes.len())?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), AbiError> {
        let range = check_range(offset, bytes.len(), self.bytes.len())?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }

    fn realloc(&mut self, _: u32, _: u32, align: u32, size: u32) -> Result<u32, AbiError> {
        let ptr = self.next.next_multiple_of(align);
        self.next = ptr + size;
        Ok(ptr)
    }
}

fn bench(c: &mut Criterion) {
    let mut b = TypesBuilder::new();
    let u64 = b.add(TypeNode::U64);
    let u32 = b.add(TypeNode::U32);
    let bool = b.add(TypeNode::Bool);
    let string = b.add(TypeNode::String);
    let s64 = b.add(TypeNode::S64);
    let u8 = b.add(TypeNode::U8);
    let bytes = b.add(TypeNode::List(u8));
    let unit_or_err = b.add(TypeNode::Result {
        ok: None,
        err: Some(string),
    });
    let maybe_bytes = b.add(TypeNode::Option(bytes));
    let sample = b.add(TypeNode::Record(vec![string, s64, u64]));
    let event = b.add(TypeNode::Variant(vec![
        Some(sample),
        Some(bytes),
        Some(u64),
    ]));
    let types = b.finish().expect("valid");
    let abi =
        |params: Vec<_>, result| FuncAbi::new(&types, &FuncType { params, result }).expect("valid");
    let now_ms = abi(vec![], Some(u64));
    let gpio_set = abi(vec![u32, bool], Some(unit_or_err));
    let kv_get = abi(vec![string], Some(maybe_bytes));
    let on_event = abi(vec![event], None);

    let mut mem = Mem {
        bytes: vec![0; 4096],
        next: 1024,
    };
    mem.bytes[64..69].copy_from_slice(b"count");
    let mut params = Vec::with_capacity(4);

    c.bench_function("hand-written: clock.now-ms", |b| {
        b.iter(|| Some(FlatVal::I64(black_box(7))))
    });
    c.bench_function("clock.now-ms: lift params, lower u64", |b| {
        b.iter(|| {
            now_ms
                .lift_params(&types, black_box(&[]), &mut mem, &mut params)
                .expect("lift");
            now_ms
                .lower_result(&types, Some(&Val::U64(black_box(7))), &[], &mut mem)
                .expect("lower")
        })
    });
    let args = [FlatVal::I32(5), FlatVal::I32(1), FlatVal::I32(16)];
    let ok = Val::Result(Ok(None));
    c.bench_function("hand-written: gpio.set", |b| {
        b.iter(|| {
            let [FlatVal::I32(pin), FlatVal::I32(high), FlatVal::I32(ret)] = black_box(args) else {
                unreachable!()
            };
            black_box((pin as u32, high != 0));
            let ret = ret as u32;
            assert!(ret.is_multiple_of(4));
            check_range(ret, 12, mem.bytes.len()).expect("in bounds");
            mem.write(ret, &[0]).expect("write");
        })
    });
    c.bench_function(
        "gpio.set: lift (u32, bool), lower ok into the return area",
        |b| {
            b.iter(|| {
                gpio_set
                    .lift_params(&types, black_box(&args), &mut mem, &mut params)
                    .expect("lift");
                gpio_set
                    .lower_result(&types, Some(&ok), &args, &mut mem)
                    .expect("lower")
            })
        },
    );
    let args = [FlatVal::I32(64), FlatVal::I32(5), FlatVal::I32(16)];
    let found = Val::Option(Some(Box::new(Val::Bytes(vec![1, 2, 3, 4, 5, 6, 7, 8]))));
    let value = [1u8, 2, 3, 4, 5, 6, 7, 8];
    c.bench_function("hand-written: kv.get", |b| {
        b.iter(|| {
            mem.next = 1024;
            let [FlatVal::I32(ptr), FlatVal::I32(len), FlatVal::I32(ret)] = black_box(args) else {
                unreachable!()
            };
            let mut key = vec![0; len as usize];
            mem.read(ptr as u32, &mut key).expect("read");
            black_box(String::from_utf8(key).expect("UTF-8"));
            let ret = ret as u32;
            assert!(ret.is_multiple_of(4));
            check_range(ret, 12, mem.bytes.len()).expect("in bounds");
            let at = mem.realloc(0, 0, 1, 8).expect("realloc");
            mem.write(at, &value).expect("write");
            mem.write(ret, &[1]).expect("write");
            mem.write(ret + 4, &at.to_le_bytes()).expect("write");
            mem.write(ret + 8, &8u32.to_le_bytes()).expect("write");
        })
    });
    c.bench_function(
        "kv.get: lift a string, lower some(list<u8>) with cabi_realloc",
        |b| {
            b.iter(|| {
                mem.next = 1024;
                kv_get
                    .lift_params(&types, black_box(&args), &mut mem, &mut params)
                    .expect("lift");
                kv_get
                    .lower_result(&types, Some(&found), &args, &mut mem)
                    .expect("lower")
            })
        },
    );
    let sample = Val::Variant {
        case: 0,
        payload: Some(Box::new(Val::Record(vec![
            Val::String("temp-0".into()),
            Val::S64(-21_500),
            Val::U64(1_000),
        ]))),
    };
    c.bench_function("on-event: lower a sample event", |b| {
        b.iter(|| {
            mem.next = 1024;
            on_event
                .lower_params(&types, black_box(std::slice::from_ref(&sample)), &mut mem)
                .expect("lower")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
