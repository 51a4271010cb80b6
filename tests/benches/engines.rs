//! Benchmarks: Tern's engines next to the bare engines doing the same work.
//!
//! Every Tern figure has a baseline measured in the same run: plain Wasmtime
//! (`bindgen!` + `Linker` + `InstancePre`, trivial host functions) and plain wasmi
//! (`Linker` + hand-lowered arguments). `cargo xtask bench` prints the ratios.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

use criterion::{Criterion, criterion_group, criterion_main};
use tern_core::host::SimPlatform;
use tern_core::{Engine, Event, Grant, Instance, Limits, Sample};
use tern_tests::wasm;

mod bare_wasmtime {
    //! Plain Wasmtime: the same component through its own `bindgen!`.
    use std::collections::HashMap;

    wasmtime::component::bindgen!({ path: "../runtime/wit", world: "tern:edge/component" });
    use self::tern::edge as w;

    /// Host state with just enough behaviour to run the components.
    #[derive(Default)]
    pub struct Bare {
        pub kv: HashMap<String, Vec<u8>>,
    }

    impl w::types::Host for Bare {}
    impl w::log::Host for Bare {
        fn log(&mut self, _: w::log::Level, _: String) {}
    }
    impl w::clock::Host for Bare {
        fn now_ms(&mut self) -> u64 {
            7
        }
    }
    impl w::sensors::Host for Bare {
        fn read(&mut self, _: String) -> Result<w::types::Sample, String> {
            Err(String::new())
        }
    }
    impl w::gpio::Host for Bare {
        fn set(&mut self, _: u32, _: bool) -> Result<(), String> {
            Ok(())
        }
        fn get(&mut self, _: u32) -> Result<bool, String> {
            Ok(false)
        }
    }
    impl w::kv::Host for Bare {
        fn get(&mut self, key: String) -> Option<Vec<u8>> {
            self.kv.get(&key).cloned()
        }
        fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
            self.kv.insert(key, value);
            Ok(())
        }
    }
    impl w::publish::Host for Bare {
        fn publish(&mut self, _: String, _: Vec<u8>) -> Result<(), String> {
            Ok(())
        }
    }

    pub struct Setup {
        pub engine: wasmtime::Engine,
        pub pre: ComponentPre<Bare>,
    }

    /// The same engine configuration Tern uses (pooling, fuel), without Tern.
    pub fn setup(core_wasm: &[u8]) -> Setup {
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(64)
            .total_core_instances(64)
            .total_memories(64)
            .total_tables(64)
            .max_memory_size(4 << 20);
        let mut config = wasmtime::Config::new();
        config
            .consume_fuel(true)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&config).unwrap();
        let bytes = tern_wasmtime::WasmtimeEngine::componentize(core_wasm).unwrap();
        let component = wasmtime::component::Component::from_binary(&engine, &bytes).unwrap();
        let mut linker = wasmtime::component::Linker::new(&engine);
        Component::add_to_linker::<Bare, wasmtime::component::HasSelf<Bare>>(&mut linker, |b| b)
            .unwrap();
        let pre = ComponentPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Setup { engine, pre }
    }

    pub fn instantiate(s: &Setup) -> (wasmtime::Store<Bare>, Component) {
        let mut store = wasmtime::Store::new(&s.engine, Bare::default());
        store.set_fuel(u64::MAX).unwrap();
        let c = s.pre.instantiate(&mut store).unwrap();
        (store, c)
    }

    pub fn sample(milli: i64) -> self::tern::edge::types::Event {
        self::tern::edge::types::Event::Sample(self::tern::edge::types::Sample {
            sensor: "temp-0".into(),
            milli,
            at_ms: 1,
        })
    }
}

mod bare_wasmi {
    //! Plain wasmi: the same core module, arguments lowered by hand, trivial host
    //! functions.
    use std::collections::HashMap;

    use wasmi::{Caller, Linker, Memory, Module, Store, TypedFunc};

    #[derive(Default)]
    pub struct Bare {
        kv: HashMap<Vec<u8>, Vec<u8>>,
        memory: Option<Memory>,
        realloc: Option<TypedFunc<(i32, i32, i32, i32), i32>>,
    }

    fn bytes(c: &Caller<'_, Bare>, p: i32, l: i32) -> Vec<u8> {
        let m = c.data().memory.unwrap();
        m.data(c)[p as usize..(p + l) as usize].to_vec()
    }

    fn put(c: &mut Caller<'_, Bare>, at: i32, b: &[u8]) {
        let m = c.data().memory.unwrap();
        m.data_mut(&mut *c)[at as usize..at as usize + b.len()].copy_from_slice(b);
    }

    pub struct Setup {
        pub engine: wasmi::Engine,
        pub module: Module,
        pub linker: Linker<Bare>,
    }

    pub fn setup(core_wasm: &[u8]) -> Setup {
        let mut config = wasmi::Config::default();
        config.consume_fuel(true);
        let engine = wasmi::Engine::new(&config);
        let module = Module::new(&engine, core_wasm).unwrap();
        let mut linker = Linker::<Bare>::new(&engine);
        linker
            .func_wrap(
                "tern:edge/log@0.1.0",
                "log",
                |_: Caller<'_, Bare>, _: i32, _: i32, _: i32| {},
            )
            .unwrap();
        linker
            .func_wrap(
                "tern:edge/clock@0.1.0",
                "now-ms",
                |_: Caller<'_, Bare>| -> i64 { 7 },
            )
            .unwrap();
        linker
            .func_wrap(
                "tern:edge/sensors@0.1.0",
                "read",
                |mut c: Caller<'_, Bare>, _: i32, _: i32, ret: i32| {
                    put(
                        &mut c,
                        ret,
                        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    );
                },
            )
            .unwrap();
        linker
            .func_wrap(
                "tern:edge/kv@0.1.0",
                "get",
                |mut c: Caller<'_, Bare>, p: i32, l: i32, ret: i32| {
                    let key = bytes(&c, p, l);
                    match c.data().kv.get(&key).cloned() {
                        None => put(&mut c, ret, &[0]),
                        Some(v) => {
                            let realloc = c.data().realloc.unwrap();
                            let at = realloc.call(&mut c, (0, 0, 1, v.len() as i32)).unwrap();
                            put(&mut c, at, &v);
                            put(&mut c, ret, &[1, 0, 0, 0]);
                            put(&mut c, ret + 4, &at.to_le_bytes());
                            put(&mut c, ret + 8, &(v.len() as i32).to_le_bytes());
                        }
                    }
                },
            )
            .unwrap();
        linker
            .func_wrap(
                "tern:edge/kv@0.1.0",
                "set",
                |mut c: Caller<'_, Bare>, kp: i32, kl: i32, vp: i32, vl: i32, ret: i32| {
                    let k = bytes(&c, kp, kl);
                    let v = bytes(&c, vp, vl);
                    c.data_mut().kv.insert(k, v);
                    put(&mut c, ret, &[0]);
                },
            )
            .unwrap();
        Setup {
            engine,
            module,
            linker,
        }
    }

    pub struct Inst {
        pub store: Store<Bare>,
        pub init: TypedFunc<(i32, i32), i32>,
        pub on_event: TypedFunc<(i32, i64, i32, i64, i64), i32>,
        pub post: TypedFunc<i32, ()>,
    }

    pub fn instantiate(s: &Setup) -> Inst {
        let mut store = Store::new(&s.engine, Bare::default());
        store.set_fuel(u64::MAX).unwrap();
        let instance = s
            .linker
            .instantiate_and_start(&mut store, &s.module)
            .unwrap();
        let memory = instance.get_memory(&store, "memory").unwrap();
        let realloc = instance.get_typed_func(&store, "cabi_realloc").unwrap();
        let init = instance.get_typed_func(&store, "init").unwrap();
        let on_event = instance.get_typed_func(&store, "on-event").unwrap();
        let post = instance
            .get_typed_func(&store, "cabi_post_on-event")
            .unwrap();
        store.data_mut().memory = Some(memory);
        store.data_mut().realloc = Some(realloc);
        Inst {
            store,
            init,
            on_event,
            post,
        }
    }

    /// `init([])`, lowered as the canonical ABI does: an empty list from `cabi_realloc`.
    pub fn init(i: &mut Inst) {
        let realloc = i.store.data().realloc.unwrap();
        let p = realloc.call(&mut i.store, (0, 0, 4, 0)).unwrap();
        let ret = i.init.call(&mut i.store, (p, 0)).unwrap();
        let m = i.store.data().memory.unwrap();
        assert_eq!(m.data(&i.store)[ret as usize], 0, "init succeeds");
    }

    /// `on-event(sample("temp-0", milli))`; returns the number of outputs.
    pub fn sample(i: &mut Inst, milli: i64) -> u32 {
        let realloc = i.store.data().realloc.unwrap();
        let p = realloc.call(&mut i.store, (0, 0, 1, 6)).unwrap();
        let m = i.store.data().memory.unwrap();
        m.data_mut(&mut i.store)[p as usize..p as usize + 6].copy_from_slice(b"temp-0");
        let ret = i
            .on_event
            .call(&mut i.store, (0, i64::from(p), 6, milli, 1))
            .unwrap();
        let data = m.data(&i.store);
        assert_eq!(data[ret as usize], 0);
        let n = u32::from_le_bytes(
            data[ret as usize + 8..ret as usize + 12]
                .try_into()
                .unwrap(),
        );
        i.post.call(&mut i.store, ret).unwrap();
        n
    }

    /// `on-event(tick(n))`.
    pub fn tick(i: &mut Inst, n: u64) {
        let ret = i
            .on_event
            .call(&mut i.store, (2, n as i64, 0, 0, 0))
            .unwrap();
        i.post.call(&mut i.store, ret).unwrap();
    }
}

fn sample(milli: i64) -> Event {
    Event::Sample(Sample {
        sensor: "temp-0".into(),
        milli,
        at_ms: 1,
    })
}

fn limits() -> Limits {
    Limits {
        fuel_per_call: u64::MAX / 2,
        ..Limits::HOST
    }
}

fn benches(c: &mut Criterion) {
    let smoother = wasm("smoother");
    let hostcall = wasm("hostcall");
    let grant = Grant::development();

    let tw = tern_wasmtime::WasmtimeEngine::new(limits()).unwrap();
    let ti = tern_wasmi::WasmiEngine::new(limits());
    let tw_smoother = tw.load(&smoother, &dev(&grant)).unwrap();
    let ti_smoother = ti.load(&smoother, &dev(&grant)).unwrap();
    let bw_smoother = bare_wasmtime::setup(&smoother);
    let bi_smoother = bare_wasmi::setup(&smoother);

    let mut g = c.benchmark_group("instantiate");
    g.bench_function("tern-wasmtime", |b| {
        b.iter(|| {
            tw.instantiate(&tw_smoother, Box::new(SimPlatform::default()))
                .unwrap()
        })
    });
    g.bench_function("bare-wasmtime", |b| {
        b.iter(|| bare_wasmtime::instantiate(&bw_smoother))
    });
    g.bench_function("tern-wasmi", |b| {
        b.iter(|| {
            ti.instantiate(&ti_smoother, Box::new(SimPlatform::default()))
                .unwrap()
        })
    });
    g.bench_function("bare-wasmi", |b| {
        b.iter(|| bare_wasmi::instantiate(&bi_smoother))
    });
    // The smoother as a component, taken apart into a device image (its module,
    // wit-component's shim and fixup modules, the plan) as `tern sign` does for wasmi
    // boards: the plan executor's instantiation.
    let smoother_image = tern_core::image::encode(
        &tern_wit::device_image(&tern_wasmtime::WasmtimeEngine::componentize(&smoother).unwrap())
            .unwrap(),
    );
    let ti_image = ti.load(&smoother_image, &dev(&grant)).unwrap();
    g.bench_function("tern-wasmi-image", |b| {
        b.iter(|| {
            ti.instantiate(&ti_image, Box::new(SimPlatform::default()))
                .unwrap()
        })
    });
    // A two-component app: the environment component composed with the Ruuvi decoder
    // it imports (tern_host::compose), as a device image: two components, each with its
    // own memory, linked by the plan.
    let composed = tern_host::compose::compose(
        &tern_host::compose::componentize(&tern_tests::wasm("environment")).unwrap(),
        &[(
            "tern:ruuvi/decode@0.1.0",
            &tern_host::compose::componentize(&tern_tests::wasm("ruuvi-decoder")).unwrap(),
        )],
    )
    .unwrap();
    let app_image = tern_core::image::encode(&tern_wit::device_image(&composed).unwrap());
    let ti_app = ti.load(&app_image, &dev(&grant)).unwrap();
    g.bench_function("tern-wasmi-app", |b| {
        b.iter(|| {
            ti.instantiate(&ti_app, Box::new(SimPlatform::default()))
                .unwrap()
        })
    });
    g.finish();

    // One on-event call of the smoother: a sample in, kv get + set + log, one output.
    let mut g = c.benchmark_group("on-event");
    {
        let mut inst = tw
            .instantiate(&tw_smoother, Box::new(SimPlatform::default()))
            .unwrap();
        inst.host().set_tracing(false);
        inst.init(&[]).unwrap().unwrap();
        g.bench_function("tern-wasmtime", |b| {
            b.iter(|| inst.on_event(&sample(21_500)).unwrap().unwrap())
        });
    }
    {
        let (mut store, comp) = bare_wasmtime::instantiate(&bw_smoother);
        comp.call_init(&mut store, &[]).unwrap().unwrap();
        let ev = bare_wasmtime::sample(21_500);
        g.bench_function("bare-wasmtime", |b| {
            b.iter(|| comp.call_on_event(&mut store, &ev).unwrap().unwrap())
        });
    }
    {
        let mut inst = ti
            .instantiate(&ti_smoother, Box::new(SimPlatform::default()))
            .unwrap();
        inst.host().set_tracing(false);
        inst.init(&[]).unwrap().unwrap();
        g.bench_function("tern-wasmi", |b| {
            b.iter(|| inst.on_event(&sample(21_500)).unwrap().unwrap())
        });
    }
    {
        let mut inst = bare_wasmi::instantiate(&bi_smoother);
        bare_wasmi::init(&mut inst);
        g.bench_function("bare-wasmi", |b| {
            b.iter(|| bare_wasmi::sample(&mut inst, 21_500))
        });
    }
    g.finish();

    // Host-call round trip: tick(1000) makes 1000 clock calls, tick(0) none.
    let tw_h = tw.load(&hostcall, &dev(&grant)).unwrap();
    let ti_h = ti.load(&hostcall, &dev(&grant)).unwrap();
    let bw_h = bare_wasmtime::setup(&hostcall);
    let bi_h = bare_wasmi::setup(&hostcall);
    let mut g = c.benchmark_group("hostcall");
    for n in [0u64, 1000] {
        let mut inst = tw
            .instantiate(&tw_h, Box::new(SimPlatform::default()))
            .unwrap();
        inst.host().set_tracing(false);
        g.bench_function(format!("tern-wasmtime/{n}"), |b| {
            b.iter(|| inst.on_event(&Event::Tick(n)).unwrap().unwrap())
        });
        let (mut store, comp) = bare_wasmtime::instantiate(&bw_h);
        comp.call_init(&mut store, &[]).unwrap().unwrap();
        let ev = bare_wasmtime::tern::edge::types::Event::Tick(n);
        g.bench_function(format!("bare-wasmtime/{n}"), |b| {
            b.iter(|| comp.call_on_event(&mut store, &ev).unwrap().unwrap())
        });
        let mut inst = ti
            .instantiate(&ti_h, Box::new(SimPlatform::default()))
            .unwrap();
        inst.host().set_tracing(false);
        g.bench_function(format!("tern-wasmi/{n}"), |b| {
            b.iter(|| inst.on_event(&Event::Tick(n)).unwrap().unwrap())
        });
        let mut bi = bare_wasmi::instantiate(&bi_h);
        bare_wasmi::init(&mut bi);
        g.bench_function(format!("bare-wasmi/{n}"), |b| {
            b.iter(|| bare_wasmi::tick(&mut bi, n))
        });
    }
    g.finish();
}

criterion_group! {
    name = engines;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(engines);

/// Test components run unsigned: their grant is given by name, not by a board's policy.
fn dev(grant: &tern_core::Grant) -> tern_core::Granted {
    tern_core::Granted::for_development(grant.clone())
}
