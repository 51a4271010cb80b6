//! Differential proof of the canonical ABI: random WIT types, random values, through
//! Tern's wasmi path (`tern-cabi` over wasmi, as the device runs it) and through
//! Wasmtime's own component model, must come back identical.
//!
//! One generic guest serves every type. The export is
//! `echo: func(x: T, pad: tuple<u64 x 16>) -> tuple<T, u64>`: its parameters take more
//! than 16 core values, so they are passed in memory as `tuple<T, tuple<u64 x 16>>`,
//! and its result is returned through a pointer to a `tuple<T, u64>`, which has the
//! same layout as the start of the parameters (both align to at least 8, `T` at 0, the
//! `u64` where `pad` starts). So the guest returns the pointer it was given, and the
//! host reads back `T` as it wrote it and `pad.0`: the engine's lowering and lifting
//! meet in the guest's memory, with no guest code per type. The type descriptions on
//! Tern's side come from the WIT through `tern-wit`, the component on Wasmtime's from
//! the same WIT through wit-component.
//!
//! Faults: the same guest returning a misaligned or out-of-bounds result pointer, or
//! breaking the value it returns (a string that is not UTF-8, a list length past
//! memory, a surrogate char, a discriminant out of range, ahead of a random type),
//! gives the same typed `Error::Abi` on both engines (Wasmtime's fault mapped onto
//! Tern's summary by `tern_wasmtime::abi_fault`), never a panic.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use std::fmt::Write as _;

use tern_cabi::Val;
use tern_core::{Error, Limits};
use wasmtime::component::{Component, Linker, Val as WVal};

/// A random WIT type, names given by position.
#[derive(Clone, Debug)]
enum Ty {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Ty>),
    /// Named `r<n>`, fields `f0..`.
    Record(usize, Vec<Ty>),
    Tuple(Vec<Ty>),
    /// Named `v<n>`, cases `c0..`.
    Variant(usize, Vec<Option<Ty>>),
    /// Named `e<n>`, cases `e0..`.
    Enum(usize, u32),
    Option(Box<Ty>),
    Result(Option<Box<Ty>>, Option<Box<Ty>>),
    /// Named `g<n>`, flags `g0..`.
    Flags(usize, u32),
}

/// xorshift64*: deterministic, so a failing seed is a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Types and the WIT definitions of the named ones, children first.
struct Gen {
    rng: Rng,
    defs: String,
    named: usize,
}

impl Gen {
    fn ty(&mut self, depth: u32) -> Ty {
        let leaf = depth == 0 || self.rng.below(3) == 0;
        if leaf {
            return match self.rng.below(13) {
                0 => Ty::Bool,
                1 => Ty::S8,
                2 => Ty::U8,
                3 => Ty::S16,
                4 => Ty::U16,
                5 => Ty::S32,
                6 => Ty::U32,
                7 => Ty::S64,
                8 => Ty::U64,
                9 => Ty::F32,
                10 => Ty::F64,
                11 => Ty::Char,
                _ => Ty::String,
            };
        }
        let d = depth - 1;
        let n = 1 + self.rng.below(3) as usize;
        match self.rng.below(8) {
            0 => Ty::List(Box::new(self.ty(d))),
            1 => {
                let fields: Vec<Ty> = (0..n).map(|_| self.ty(d)).collect();
                let id = self.name();
                let body: Vec<String> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| format!("f{i}: {}", wit(f)))
                    .collect();
                writeln!(self.defs, "  record r{id} {{ {} }}", body.join(", ")).unwrap();
                Ty::Record(id, fields)
            }
            2 => Ty::Tuple((0..n).map(|_| self.ty(d)).collect()),
            3 => {
                let cases: Vec<Option<Ty>> = (0..n + 1)
                    .map(|_| (self.rng.below(3) != 0).then(|| self.ty(d)))
                    .collect();
                let id = self.name();
                let body: Vec<String> = cases
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c {
                        Some(t) => format!("c{i}({})", wit(t)),
                        None => format!("c{i}"),
                    })
                    .collect();
                writeln!(self.defs, "  variant v{id} {{ {} }}", body.join(", ")).unwrap();
                Ty::Variant(id, cases)
            }
            4 => {
                let id = self.name();
                let cases = 1 + self.rng.below(300) as u32;
                let body: Vec<String> = (0..cases).map(|i| format!("e{i}")).collect();
                writeln!(self.defs, "  enum e{id} {{ {} }}", body.join(", ")).unwrap();
                Ty::Enum(id, cases)
            }
            5 => Ty::Option(Box::new(self.ty(d))),
            6 => {
                let mut side = || (self.rng.below(3) != 0).then(|| Box::new(self.ty(d)));
                let ok = side();
                let err = side();
                Ty::Result(ok, err)
            }
            _ => {
                let id = self.name();
                let n = 1 + self.rng.below(32) as u32;
                let body: Vec<String> = (0..n).map(|i| format!("g{i}")).collect();
                writeln!(self.defs, "  flags g{id} {{ {} }}", body.join(", ")).unwrap();
                Ty::Flags(id, n)
            }
        }
    }

    fn name(&mut self) -> usize {
        self.named += 1;
        self.named
    }

    fn val(&mut self, t: &Ty) -> Val {
        let r = &mut self.rng;
        match t {
            Ty::Bool => Val::Bool(r.below(2) == 1),
            Ty::S8 => Val::S8(r.next() as i8),
            Ty::U8 => Val::U8(r.next() as u8),
            Ty::S16 => Val::S16(r.next() as i16),
            Ty::U16 => Val::U16(r.next() as u16),
            Ty::S32 => Val::S32(r.next() as i32),
            Ty::U32 => Val::U32(r.next() as u32),
            Ty::S64 => Val::S64(r.next() as i64),
            Ty::U64 => Val::U64(r.next()),
            // Finite floats: NaN is its own question (bits kept on both engines).
            Ty::F32 => Val::F32((r.next() as i32) as f32 / 7.0),
            Ty::F64 => Val::F64((r.next() as i64) as f64 / 7.0),
            Ty::Char => Val::Char(char::from_u32(r.below(0xD7FF) as u32).unwrap_or('x')),
            Ty::String => {
                let n = r.below(12);
                Val::String(
                    (0..n)
                        .map(|_| ['a', 'é', '€', '𝄞', 'z', ' '][r.below(6) as usize])
                        .collect(),
                )
            }
            Ty::List(e) => {
                let n = self.rng.below(5);
                if matches!(**e, Ty::U8) {
                    return Val::Bytes((0..n).map(|_| self.rng.next() as u8).collect());
                }
                Val::List((0..n).map(|_| self.val(e)).collect())
            }
            Ty::Record(_, fs) => Val::Record(fs.iter().map(|f| self.val(f)).collect()),
            Ty::Tuple(fs) => Val::Tuple(fs.iter().map(|f| self.val(f)).collect()),
            Ty::Variant(_, cs) => {
                let case = self.rng.below(cs.len() as u64) as usize;
                Val::Variant {
                    case: case as u32,
                    payload: cs[case].as_ref().map(|t| Box::new(self.val(t))),
                }
            }
            Ty::Enum(_, n) => Val::Enum(self.rng.below(u64::from(*n)) as u32),
            Ty::Option(t) => Val::Option((self.rng.below(2) == 1).then(|| Box::new(self.val(t)))),
            Ty::Result(ok, err) => {
                if self.rng.below(2) == 0 {
                    Val::Result(Ok(ok.as_ref().map(|t| Box::new(self.val(t)))))
                } else {
                    Val::Result(Err(err.as_ref().map(|t| Box::new(self.val(t)))))
                }
            }
            Ty::Flags(_, n) => {
                let mask = if *n == 32 { u32::MAX } else { (1 << n) - 1 };
                Val::Flags(self.rng.next() as u32 & mask)
            }
        }
    }
}

/// The WIT spelling of `t`.
fn wit(t: &Ty) -> String {
    match t {
        Ty::Bool => "bool".into(),
        Ty::S8 => "s8".into(),
        Ty::U8 => "u8".into(),
        Ty::S16 => "s16".into(),
        Ty::U16 => "u16".into(),
        Ty::S32 => "s32".into(),
        Ty::U32 => "u32".into(),
        Ty::S64 => "s64".into(),
        Ty::U64 => "u64".into(),
        Ty::F32 => "f32".into(),
        Ty::F64 => "f64".into(),
        Ty::Char => "char".into(),
        Ty::String => "string".into(),
        Ty::List(e) => format!("list<{}>", wit(e)),
        Ty::Record(id, _) => format!("r{id}"),
        Ty::Tuple(fs) => format!(
            "tuple<{}>",
            fs.iter().map(wit).collect::<Vec<_>>().join(", ")
        ),
        Ty::Variant(id, _) => format!("v{id}"),
        Ty::Enum(id, _) => format!("e{id}"),
        Ty::Option(t) => format!("option<{}>", wit(t)),
        Ty::Result(None, None) => "result".into(),
        Ty::Result(Some(o), None) => format!("result<{}>", wit(o)),
        Ty::Result(None, Some(e)) => format!("result<_, {}>", wit(e)),
        Ty::Result(Some(o), Some(e)) => format!("result<{}, {}>", wit(o), wit(e)),
        Ty::Flags(id, _) => format!("g{id}"),
    }
}

/// A tern value as Wasmtime's, by the names [`Gen`] gives.
fn to_wasmtime(v: &Val, t: &Ty) -> WVal {
    match (v, t) {
        (Val::Bool(x), _) => WVal::Bool(*x),
        (Val::S8(x), _) => WVal::S8(*x),
        (Val::U8(x), _) => WVal::U8(*x),
        (Val::S16(x), _) => WVal::S16(*x),
        (Val::U16(x), _) => WVal::U16(*x),
        (Val::S32(x), _) => WVal::S32(*x),
        (Val::U32(x), _) => WVal::U32(*x),
        (Val::S64(x), _) => WVal::S64(*x),
        (Val::U64(x), _) => WVal::U64(*x),
        (Val::F32(x), _) => WVal::Float32(*x),
        (Val::F64(x), _) => WVal::Float64(*x),
        (Val::Char(x), _) => WVal::Char(*x),
        (Val::String(x), _) => WVal::String(x.clone()),
        (Val::Bytes(b), _) => WVal::List(b.iter().map(|x| WVal::U8(*x)).collect()),
        (Val::List(xs), Ty::List(e)) => {
            WVal::List(xs.iter().map(|x| to_wasmtime(x, e.as_ref())).collect())
        }
        (Val::Record(xs), Ty::Record(_, fs)) => WVal::Record(
            xs.iter()
                .zip(fs)
                .enumerate()
                .map(|(i, (x, f))| (format!("f{i}"), to_wasmtime(x, f)))
                .collect(),
        ),
        (Val::Tuple(xs), Ty::Tuple(fs)) => {
            WVal::Tuple(xs.iter().zip(fs).map(|(x, f)| to_wasmtime(x, f)).collect())
        }
        (Val::Variant { case, payload }, Ty::Variant(_, cs)) => WVal::Variant(
            format!("c{case}"),
            payload
                .as_ref()
                .zip(cs[*case as usize].as_ref())
                .map(|(p, t)| Box::new(to_wasmtime(p, t))),
        ),
        (Val::Enum(i), _) => WVal::Enum(format!("e{i}")),
        (Val::Option(x), Ty::Option(t)) => {
            WVal::Option(x.as_ref().map(|x| Box::new(to_wasmtime(x, t.as_ref()))))
        }
        (Val::Result(r), Ty::Result(ok, err)) => WVal::Result(match r {
            Ok(x) => Ok(x
                .as_ref()
                .zip(ok.as_ref())
                .map(|(x, t)| Box::new(to_wasmtime(x, t)))),
            Err(x) => Err(x
                .as_ref()
                .zip(err.as_ref())
                .map(|(x, t)| Box::new(to_wasmtime(x, t)))),
        }),
        (Val::Flags(bits), _) => WVal::Flags(
            (0..32)
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| format!("g{i}"))
                .collect(),
        ),
        (v, t) => panic!("{v:?} is not a {t:?}"),
    }
}

/// Wasmtime's value as a tern value.
fn from_wasmtime(v: &WVal, t: &Ty) -> Val {
    let index = |name: &str| name[1..].parse::<u32>().unwrap();
    match (v, t) {
        (WVal::Bool(x), _) => Val::Bool(*x),
        (WVal::S8(x), _) => Val::S8(*x),
        (WVal::U8(x), _) => Val::U8(*x),
        (WVal::S16(x), _) => Val::S16(*x),
        (WVal::U16(x), _) => Val::U16(*x),
        (WVal::S32(x), _) => Val::S32(*x),
        (WVal::U32(x), _) => Val::U32(*x),
        (WVal::S64(x), _) => Val::S64(*x),
        (WVal::U64(x), _) => Val::U64(*x),
        (WVal::Float32(x), _) => Val::F32(*x),
        (WVal::Float64(x), _) => Val::F64(*x),
        (WVal::Char(x), _) => Val::Char(*x),
        (WVal::String(x), _) => Val::String(x.clone()),
        (WVal::List(xs), Ty::List(e)) if matches!(**e, Ty::U8) => Val::Bytes(
            xs.iter()
                .map(|x| match x {
                    WVal::U8(b) => *b,
                    other => panic!("{other:?} in a list<u8>"),
                })
                .collect(),
        ),
        (WVal::List(xs), Ty::List(e)) => {
            Val::List(xs.iter().map(|x| from_wasmtime(x, e)).collect())
        }
        (WVal::Record(xs), Ty::Record(_, fs)) => Val::Record(
            xs.iter()
                .zip(fs)
                .map(|((_, x), f)| from_wasmtime(x, f))
                .collect(),
        ),
        (WVal::Tuple(xs), Ty::Tuple(fs)) => Val::Tuple(
            xs.iter()
                .zip(fs)
                .map(|(x, f)| from_wasmtime(x, f))
                .collect(),
        ),
        (WVal::Variant(name, payload), Ty::Variant(_, cs)) => {
            let case = index(name);
            Val::Variant {
                case,
                payload: payload
                    .as_ref()
                    .zip(cs[case as usize].as_ref())
                    .map(|(p, t)| Box::new(from_wasmtime(p, t))),
            }
        }
        (WVal::Enum(name), _) => Val::Enum(index(name)),
        (WVal::Option(x), Ty::Option(t)) => {
            Val::Option(x.as_ref().map(|x| Box::new(from_wasmtime(x, t))))
        }
        (WVal::Result(r), Ty::Result(ok, err)) => Val::Result(match r {
            Ok(x) => Ok(x
                .as_ref()
                .zip(ok.as_ref())
                .map(|(x, t)| Box::new(from_wasmtime(x, t)))),
            Err(x) => Err(x
                .as_ref()
                .zip(err.as_ref())
                .map(|(x, t)| Box::new(from_wasmtime(x, t)))),
        }),
        (WVal::Flags(names), _) => Val::Flags(names.iter().fold(0, |b, n| b | 1 << index(n))),
        (v, t) => panic!("{v:?} is not a {t:?}"),
    }
}

const PAD: usize = 16;

/// The guest: a bump allocator that grows memory, and `echo` returning its argument
/// pointer plus `offset` (0 for the real echo; a fault otherwise).
fn guest(ret: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32) (local $end i32)
    global.get $heap local.get 2 i32.add i32.const 1 i32.sub
    i32.const 0 local.get 2 i32.sub i32.and local.tee $p
    local.get 3 i32.add local.tee $end global.set $heap
    (block $ok
      (loop $grow
        local.get $end memory.size i32.const 16 i32.shl i32.le_u br_if $ok
        i32.const 1 memory.grow i32.const -1 i32.eq if unreachable end
        br $grow))
    local.get $p)
  (func (export "test:diff/api#echo") (param i32) (result i32) {ret})
)"#
    ))
    .unwrap()
}

struct Case {
    ty: Ty,
    wit: String,
}

fn case(seed: u64) -> Case {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        defs: String::new(),
        named: 0,
    };
    let ty = g.ty(3);
    case_of(&g.defs, ty)
}

/// The echo world for `ty`, with the named types `defs` it uses.
fn case_of(defs: &str, ty: Ty) -> Case {
    let pad = vec!["u64"; PAD].join(", ");
    let wit = format!(
        "package test:diff;\ninterface api {{\n{defs}  echo: func(x: {t}, pad: tuple<{pad}>) -> tuple<{t}, u64>;\n}}\nworld w {{ export api; }}\n",
        t = wit(&ty)
    );
    Case { ty, wit }
}

/// The component Wasmtime runs and the description Tern's path runs by, both from
/// `wit`.
fn build(wit_text: &str, guest: &[u8]) -> (Vec<u8>, tern_core::image::World) {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("diff.wit", wit_text).unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
    let described = tern_wit::describe_world(&resolve, world).unwrap();
    let mut module = guest.to_vec();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    // What `wasm-tools component new` makes of it, from the world embedded above.
    let component = tern_host::compose::componentize(&module).unwrap();
    (component, described)
}

fn on_wasmtime(component: &[u8], args: &[WVal]) -> Result<WVal, wasmtime::Error> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = Component::new(&engine, component).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &component)
        .unwrap();
    let api = instance
        .get_export_index(&mut store, None, "test:diff/api")
        .unwrap();
    let echo = instance
        .get_export_index(&mut store, Some(&api), "echo")
        .unwrap();
    let func = instance.get_func(&mut store, echo).unwrap();
    let mut results = [WVal::Bool(false)];
    func.call(&mut store, args, &mut results)?;
    let [r] = results;
    Ok(r)
}

fn on_wasmi(guest: &[u8], world: &tern_core::image::World, args: &[Val]) -> Result<Val, Error> {
    let engine = tern_wasmi::WasmiEngine::new(Limits::HOST);
    let f = world.export("test:diff/api#echo").unwrap();
    engine
        .call_once(guest, &world.types, "test:diff/api#echo", &f.ty, args)
        .map(|v| v.unwrap())
}

/// Random types, four values each, echoed through both engines.
#[test]
fn random_types_and_values_cross_both_engines_identically() {
    let echo = guest("local.get 0");
    for seed in 0..300 {
        let c = case(seed);
        let (component, world) = build(&c.wit, &echo);
        let mut g = Gen {
            rng: Rng(seed ^ 0xdead_beef_0000_0001),
            defs: String::new(),
            named: 0,
        };
        for _ in 0..4 {
            let x = g.val(&c.ty);
            let pad: Vec<u64> = (0..PAD as u64).map(|i| seed * 1000 + i).collect();
            let pad_ty = Ty::Tuple(vec![Ty::U64; PAD]);
            let pad_val = Val::Tuple(pad.iter().map(|p| Val::U64(*p)).collect());
            let out_ty = Ty::Tuple(vec![c.ty.clone(), Ty::U64]);
            let tern = on_wasmi(&echo, &world, &[x.clone(), pad_val.clone()])
                .unwrap_or_else(|e| panic!("seed {seed}: wasmi: {e}\n{}", c.wit));
            let wt = on_wasmtime(
                &component,
                &[to_wasmtime(&x, &c.ty), to_wasmtime(&pad_val, &pad_ty)],
            )
            .unwrap_or_else(|e| panic!("seed {seed}: Wasmtime: {e}\n{}", c.wit));
            let wt = from_wasmtime(&wt, &out_ty);
            assert_eq!(tern, wt, "seed {seed}: the engines differ\n{}", c.wit);
            assert_eq!(
                tern,
                Val::Tuple(vec![x, Val::U64(pad[0])]),
                "seed {seed}: not an echo\n{}",
                c.wit
            );
        }
    }
}

/// `x` echoed by the faulty guest `bad` (as `component` on Wasmtime, as the module
/// under `world` on wasmi) fails on both engines with the ABI fault `summary`:
/// Wasmtime's error mapped onto it by `tern_wasmtime::abi_fault`, wasmi's `Error::Abi`.
fn same_fault_on_both(
    c: &Case,
    (component, world, bad): (&[u8], &tern_core::image::World, &[u8]),
    x: Val,
    summary: &str,
    seed: u64,
) {
    let pad = Val::Tuple(vec![Val::U64(0); PAD]);
    let wasmtime = on_wasmtime(
        component,
        &[
            to_wasmtime(&x, &c.ty),
            to_wasmtime(&pad, &Ty::Tuple(vec![Ty::U64; PAD])),
        ],
    )
    .unwrap_err();
    let wasmtime = tern_wasmtime::abi_fault(&wasmtime)
        .unwrap_or_else(|| panic!("seed {seed}: not an ABI fault: {wasmtime:#}\n{}", c.wit));
    assert_eq!(
        wasmtime.summary(),
        summary,
        "seed {seed} on Wasmtime\n{}",
        c.wit
    );
    let err = on_wasmi(bad, world, &[x, pad]).unwrap_err();
    assert_eq!(
        err,
        Error::Abi(summary.into()),
        "seed {seed} on wasmi\n{}",
        c.wit
    );
}

/// A result pointer the guest makes up is the same typed ABI error on both engines
/// (Tern's summary; Wasmtime's fault mapped onto it), never a panic.
#[test]
fn a_bad_result_pointer_is_a_typed_abi_error() {
    for (ret, summary) in [
        (
            "local.get 0 i32.const 4 i32.add",
            "result pointer not aligned",
        ),
        (
            "i32.const 0x7ffffff8",
            "pointer/length out of bounds of memory",
        ),
    ] {
        for seed in 0..20 {
            let c = case(seed);
            let bad = guest(ret);
            let (component, world) = build(&c.wit, &bad);
            let mut g = Gen {
                rng: Rng(seed + 7),
                defs: String::new(),
                named: 0,
            };
            let x = g.val(&c.ty);
            same_fault_on_both(&c, (&component, &world, &bad), x, summary, seed);
        }
    }
}

/// `head` followed by a random type, echoed by a guest that first breaks the head in
/// its memory with `corrupt` (core instructions, the argument pointer in local 0).
fn corrupt_case(seed: u64, head: Ty) -> Case {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1),
        defs: String::new(),
        named: 0,
    };
    let ty = Ty::Tuple(vec![head, g.ty(2)]);
    case_of(&g.defs, ty)
}

/// Values the guest breaks before it returns them, at the head of random types: a
/// string that is not UTF-8, a list whose length runs past memory (and past 4 GiB
/// in bytes), a char that is a surrogate, an option's discriminant out of range.
/// Both engines refuse each with the same typed ABI error (Tern's summary, Wasmtime's
/// fault mapped onto it), whatever follows the head; neither panics.
#[test]
fn corrupt_values_are_the_same_typed_abi_error_on_both_engines() {
    let cases = [
        (
            Ty::String,
            Val::String("héllo".into()),
            // The string's first byte becomes 0xff, never valid in UTF-8.
            "local.get 0 i32.load i32.const 0xff i32.store8",
            "string is not valid UTF-8",
        ),
        (
            Ty::List(Box::new(Ty::U32)),
            Val::List(vec![Val::U32(1), Val::U32(2)]),
            // Length 2^30 elements: 4 GiB of u32s, past any 32-bit memory.
            "local.get 0 i32.const 0x40000000 i32.store offset=4",
            "pointer/length out of bounds of memory",
        ),
        (
            Ty::List(Box::new(Ty::String)),
            Val::List(vec![Val::String("a".into())]),
            // 2^29 strings of 8 bytes each: past the end of the one page.
            "local.get 0 i32.const 0x20000000 i32.store offset=4",
            "pointer/length out of bounds of memory",
        ),
        (
            Ty::Char,
            Val::Char('x'),
            // A UTF-16 surrogate: not a Unicode scalar value.
            "local.get 0 i32.const 0xd800 i32.store",
            "char is not a Unicode scalar value",
        ),
        (
            Ty::Option(Box::new(Ty::U8)),
            Val::Option(Some(Box::new(Val::U8(7)))),
            // Discriminant 2 of an option (0 none, 1 some).
            "local.get 0 i32.const 2 i32.store8",
            "invalid discriminant",
        ),
    ];
    for (head, head_val, corrupt, summary) in cases {
        let bad = guest(&format!("{corrupt} local.get 0"));
        for seed in 0..12 {
            let c = corrupt_case(seed, head.clone());
            let (component, world) = build(&c.wit, &bad);
            let Ty::Tuple(parts) = &c.ty else {
                unreachable!()
            };
            let mut g = Gen {
                rng: Rng(seed + 11),
                defs: String::new(),
                named: 0,
            };
            let x = Val::Tuple(vec![head_val.clone(), g.val(&parts[1])]);
            same_fault_on_both(&c, (&component, &world, &bad), x, summary, seed);
        }
    }
}
