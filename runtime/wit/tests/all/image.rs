//! `device_image`: the example guests componentized as the Wasmtime engine does it
//! and taken apart, a composition of nested components flattened, and every refusal.

use std::path::PathBuf;

use tern_core::image::{
    CoreFunc, CoreInstance, CoreItem, DeviceImage, Func, IMAGE_VERSION, Step, tern_edge,
};
use tern_wit::{ImageBuildError, Unsupported, device_image};
use wasmparser::{Parser, Payload, TypeRef};

use crate::describe::render_func;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bytes of `target/components/<name>.wasm`, the guest as `cargo xtask
/// components` builds it for wasm32.
pub fn guest(name: &str) -> Vec<u8> {
    let path = root().join(format!("target/components/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the components first with `cargo xtask components` (cargo xtask \
             test does)",
            path.display()
        )
    })
}

/// `wasm` made a component exactly as the Wasmtime engine makes it.
pub fn componentize(wasm: &[u8]) -> Vec<u8> {
    tern_wasmtime::WasmtimeEngine::componentize(wasm).unwrap()
}

/// Core module `module` (written with the names `describe_world` gives) made a
/// component of `resolve`'s `world` by wit-component.
pub fn component_of(
    mut module: Vec<u8>,
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> Vec<u8> {
    wit_component::embed_component_metadata(
        &mut module,
        resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// A core module's imports (module, name, is a table) and export names.
#[derive(Debug, Default)]
struct ModuleInfo {
    imports: Vec<(String, String, bool)>,
    exports: Vec<String>,
    start: bool,
}

fn module_info(wasm: &[u8]) -> ModuleInfo {
    let mut info = ModuleInfo::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            Payload::ImportSection(r) => {
                for i in r.into_imports() {
                    let i = i.unwrap();
                    let table = matches!(i.ty, TypeRef::Table(_));
                    info.imports
                        .push((i.module.to_string(), i.name.to_string(), table));
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    info.exports.push(e.unwrap().name.to_string());
                }
            }
            Payload::StartSection { .. } => info.start = true,
            _ => {}
        }
    }
    info
}

/// Each index space's items, as the step that made them.
#[derive(Default)]
struct Spaces<'a> {
    funcs: Vec<&'a Step>,
    core_funcs: Vec<&'a Step>,
    memories: Vec<&'a Step>,
    instances: Vec<&'a Step>,
}

fn spaces(image: &DeviceImage) -> Spaces<'_> {
    let mut s = Spaces::default();
    for step in &image.steps {
        match step {
            Step::Func(_) => s.funcs.push(step),
            Step::CoreFunc(_) => s.core_funcs.push(step),
            Step::Memory(_) => s.memories.push(step),
            Step::Instance(_) => s.instances.push(step),
            Step::Table(_) | Step::Global(_) => {}
        }
    }
    s
}

/// The instance a module was instantiated as (its first instantiation).
fn instance_of(s: &Spaces<'_>, module: usize) -> u32 {
    s.instances
        .iter()
        .position(|i| {
            matches!(i, Step::Instance(CoreInstance::Instantiate { module: m, .. }) if *m as usize == module)
        })
        .unwrap() as u32
}

/// Whether core function `f` is `instance`'s export `name`.
fn is_export(s: &Spaces<'_>, f: u32, instance: u32, name: &str) -> bool {
    matches!(s.core_funcs[f as usize], Step::CoreFunc(CoreFunc::Export(e)) if e.instance == instance && e.name == name)
}

/// The structure wit-component gives a `tern:edge` guest, taken apart: the main
/// module, the shim and fixup modules, every host import the module uses with the
/// world's type, each export lifted from the main module with its post-return.
fn check_tern_edge_image(image: &DeviceImage, wasm: &[u8], what: &str) {
    image.check().unwrap();
    assert_eq!(image.version, IMAGE_VERSION);
    let world = tern_edge();
    let infos: Vec<ModuleInfo> = image.modules.iter().map(|m| module_info(m)).collect();
    let guest = module_info(wasm);

    // The main module first, with the guest's imports and exports.
    let main = infos
        .iter()
        .position(|m| m.exports.iter().any(|e| e == "on-event"))
        .unwrap_or_else(|| panic!("{what}: no main module"));
    assert_eq!(main, 0, "{what}: the main module is defined first");
    assert_eq!(infos[main].imports, guest.imports, "{what}");
    for export in ["memory", "cabi_realloc", "init", "on-event", "health-check"] {
        assert!(
            infos[main].exports.iter().any(|e| e == export),
            "{what}: {export}"
        );
    }
    // wit-component's shim: a table of the lowered imports and a trampoline per
    // import, no imports of its own; and the fixup module that fills the table once
    // the main module's memory and realloc exist to lower the imports with.
    let shim = infos
        .iter()
        .position(|m| m.imports.is_empty() && m.exports.iter().any(|e| e == "$imports"))
        .unwrap_or_else(|| panic!("{what}: no shim module"));
    let fixup = infos
        .iter()
        .position(|m| {
            m.imports
                .iter()
                .any(|(m, n, t)| m.is_empty() && n == "$imports" && *t)
        })
        .unwrap_or_else(|| panic!("{what}: no fixup module"));
    let s = spaces(image);
    let main_instance = instance_of(&s, main);
    let shim_instance = instance_of(&s, shim);
    assert!(
        shim_instance < main_instance,
        "{what}: the shim is instantiated first"
    );
    assert!(
        instance_of(&s, fixup) > main_instance,
        "{what}: the fixup last"
    );
    let memory = s
        .memories
        .iter()
        .position(
            |m| matches!(m, Step::Memory(e) if e.instance == main_instance && e.name == "memory"),
        )
        .unwrap() as u32;

    // Every host function the module imports, with the world's type, once.
    let mut imports: Vec<(String, String, String)> = image
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Func(Func::Import(h)) => Some((
                h.interface.clone(),
                h.name.clone(),
                render_func(&image.types, &h.ty),
            )),
            _ => None,
        })
        .collect();
    imports.sort();
    let mut expected: Vec<(String, String, String)> = guest
        .imports
        .iter()
        .map(|(m, n, _)| {
            let h = world.import(m, n).unwrap();
            (m.clone(), n.clone(), render_func(&world.types, &h.ty))
        })
        .collect();
    expected.sort();
    assert_eq!(imports, expected, "{what}");
    // Each is lowered once. Those whose lowering needs the main module's memory or
    // realloc are lowered after it is instantiated, and the main module calls them
    // through the shim's trampolines (`call_indirect` into the table the fixup
    // module fills); those of scalars only (`clock.now-ms`) are lowered before it,
    // without a memory, and passed to it directly.
    let main_step = image
        .steps
        .iter()
        .position(|st| matches!(st, Step::Instance(CoreInstance::Instantiate { module, .. }) if *module as usize == main))
        .unwrap();
    let mut lowered = 0;
    let mut through_shim = 0;
    for (i, st) in image.steps.iter().enumerate() {
        if let Step::CoreFunc(CoreFunc::Lower { func, options, .. }) = st {
            assert!(matches!(
                s.funcs[*func as usize],
                Step::Func(Func::Import(_))
            ));
            assert_eq!(options.post_return, None);
            lowered += 1;
            match options.memory {
                Some(m) => {
                    assert_eq!(m, memory, "{what}");
                    assert!(i > main_step, "{what}");
                    through_shim += 1;
                }
                None => {
                    assert!(i < main_step, "{what}");
                    assert_eq!(options.realloc, None, "{what}");
                }
            }
        }
    }
    assert_eq!(lowered, guest.imports.len(), "{what}");
    assert_eq!(
        infos[shim].exports.len(),
        through_shim + 1,
        "{what}: one trampoline each"
    );
    assert_eq!(infos[fixup].imports.len(), through_shim + 1, "{what}");

    // The world's exports, lifted from the main module's.
    let names: Vec<&str> = image.exports.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["init", "on-event", "health-check"], "{what}");
    for e in &image.exports {
        let Step::Func(Func::Lift {
            core_func,
            ty,
            options,
        }) = s.funcs[e.func as usize]
        else {
            panic!("{what}: {} is not lifted", e.name);
        };
        assert!(
            is_export(&s, *core_func, main_instance, &e.name),
            "{what}: {}",
            e.name
        );
        assert_eq!(
            render_func(&image.types, ty),
            render_func(&world.types, &world.export(&e.name).unwrap().ty),
            "{what}: {}",
            e.name
        );
        assert_eq!(options.memory, Some(memory), "{what}");
        let post = format!("cabi_post_{}", e.name);
        match options.post_return {
            Some(f) => assert!(is_export(&s, f, main_instance, &post), "{what}: {post}"),
            None => assert!(!guest.exports.contains(&post), "{what}: {post} unused"),
        }
        if let Some(f) = options.realloc {
            assert!(is_export(&s, f, main_instance, "cabi_realloc"), "{what}");
        }
    }
}

#[test]
fn the_examples_take_apart_into_their_modules_and_the_worlds_functions() {
    for name in ["smoother", "alarm", "ruuvi"] {
        let wasm = guest(name);
        let image = device_image(&componentize(&wasm)).unwrap();
        check_tern_edge_image(&image, &wasm, name);
        // The guests free what they return: every export has a post-return.
        assert!(image.steps.iter().all(|s| match s {
            Step::Func(Func::Lift { options, .. }) => options.post_return.is_some(),
            _ => true,
        }));
        // Three modules: main, shim, fixup.
        assert_eq!(image.modules.len(), 3, "{name}");
    }
}

/// Every host function of the world, imported with its core type, as a module
/// built without wit-bindgen imports them (`tests/hostile.rs` has the same).
const IMPORTS: &str = r#"
  (import "tern:edge/log@0.1.0" "log" (func $log (param i32 i32 i32)))
  (import "tern:edge/clock@0.1.0" "now-ms" (func (result i64)))
  (import "tern:edge/sensors@0.1.0" "read" (func (param i32 i32 i32)))
  (import "tern:edge/gpio@0.1.0" "set" (func (param i32 i32 i32)))
  (import "tern:edge/gpio@0.1.0" "get" (func (param i32 i32)))
  (import "tern:edge/kv@0.1.0" "get" (func (param i32 i32 i32)))
  (import "tern:edge/kv@0.1.0" "set" (func (param i32 i32 i32 i32 i32)))
  (import "tern:edge/publish@0.1.0" "publish" (func (param i32 i32 i32 i32 i32)))
"#;

/// The world's exports by hand, without post-return functions, and a reactor's
/// `_initialize`.
const EXPORTS: &str = r#"
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    global.get $heap)
  (func (export "init") (param i32 i32) (result i32) i32.const 16)
  (func (export "on-event") (param i32 i64 i32 i64 i64) (result i32) i32.const 16)
  (func (export "health-check") (result i32) i32.const 16)
  (func (export "_initialize") i32.const 2 i32.const 64 i32.const 11 call $log)
"#;

#[test]
fn a_reactor_imports_every_function_and_initializes_through_a_start_module() {
    let wasm = wat::parse_str(format!("(module {IMPORTS} {EXPORTS})")).unwrap();
    let image = device_image(&componentize(&wasm)).unwrap();
    check_tern_edge_image(&image, &wasm, "reactor");
    // No post-return functions: none lifted with one.
    assert!(image.steps.iter().all(|s| match s {
        Step::Func(Func::Lift { options, .. }) => options.post_return.is_none(),
        _ => true,
    }));
    // wit-component runs `_initialize` from the start section of a fourth module,
    // instantiated with the main instance's `_initialize` once everything else is
    // hooked up.
    let infos: Vec<ModuleInfo> = image.modules.iter().map(|m| module_info(m)).collect();
    let start = infos.iter().position(|m| m.start).unwrap();
    assert_eq!(
        infos[start].imports,
        [(String::new(), String::new(), false)]
    );
    let s = spaces(&image);
    let main = instance_of(&s, 0);
    let Some(Step::Instance(CoreInstance::Instantiate { args, .. })) = image
        .steps
        .iter()
        .rev()
        .find(|s| matches!(s, Step::Instance(CoreInstance::Instantiate { .. })))
    else {
        unreachable!()
    };
    let [(name, args_instance)] = &args[..] else {
        panic!("{args:?}")
    };
    assert!(name.is_empty());
    let Step::Instance(CoreInstance::Exports(items)) = s.instances[*args_instance as usize] else {
        panic!("not an instance of exports")
    };
    let [(_, CoreItem::Func(f))] = &items[..] else {
        panic!("{items:?}")
    };
    assert!(is_export(&s, *f, main, "_initialize"));
}

#[test]
fn an_image_round_trips_through_postcard() {
    let image = device_image(&componentize(&guest("smoother"))).unwrap();
    let bytes = postcard::to_allocvec(&image).unwrap();
    let back: DeviceImage = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, image);
    back.check().unwrap();
    // The loader's decode borrows the modules from the same bytes: one encoding.
    let encoded = tern_core::image::encode(&image);
    let borrowed = tern_core::image::decode(&encoded).unwrap();
    assert_eq!(borrowed.modules, image.modules);
    assert_eq!(
        (&borrowed.steps, &borrowed.exports),
        (&image.steps, &image.exports)
    );
    // Cut short anywhere, it fails to decode (and never panics).
    for len in (0..bytes.len()).step_by(97) {
        assert!(postcard::from_bytes::<DeviceImage>(&bytes[..len]).is_err());
    }
}

/// A composition as `wac` or `wasm-tools compose` makes one: component `a` imports
/// the clock and exports `get`; component `b` imports a `get` function, which the
/// outer component binds to `a`'s export; `a` is instantiated twice from one
/// definition, and `b`'s module is defined in the outer component and aliased in.
pub const COMPOSITION: &str = r#"
(component
  (import "tern:edge/clock@0.1.0" (instance $clock (export "now-ms" (func (result u64)))))
  (core module $shared
    (import "a" "get" (func $g (result i64)))
    (func (export "run") (result i64) call $g))
  (component $a
    (import "clock" (instance $c (export "now-ms" (func (result u64)))))
    (core module $m
      (import "clock" "now-ms" (func $now (result i64)))
      (func (export "get") (result i64) call $now))
    (alias export $c "now-ms" (func $now))
    (core func $now-lowered (canon lower (func $now)))
    (core instance $clock-core (export "now-ms" (func $now-lowered)))
    (core instance $i (instantiate $m (with "clock" (instance $clock-core))))
    (alias core export $i "get" (core func $get))
    (func $get-lifted (result u64) (canon lift (core func $get)))
    (export "get" (func $get-lifted))
  )
  (component $b
    (import "get" (func $get (result u64)))
    (alias outer 1 $shared (core module $n))
    (core func $g (canon lower (func $get)))
    (core instance $args (export "get" (func $g)))
    (core instance $i (instantiate $n (with "a" (instance $args))))
    (alias core export $i "run" (core func $run-core))
    (func $run (result u64) (canon lift (core func $run-core)))
    (export "run" (func $run))
  )
  (instance $ia (instantiate $a (with "clock" (instance $clock))))
  (instance $ia2 (instantiate $a (with "clock" (instance $clock))))
  (alias export $ia "get" (func $get))
  (instance $ib (instantiate $b (with "get" (func $get))))
  (alias export $ib "run" (func $run))
  (export "run" (func $run))
  (alias export $ia2 "get" (func $get2))
  (instance $api (export "get" (func $get2)))
  (export "tern:test/api@0.1.0" (instance $api))
)
"#;

#[test]
fn a_composition_is_flattened_with_imports_bound_to_lifted_exports() {
    let component = wat::parse_str(COMPOSITION).unwrap();
    let image = device_image(&component).unwrap();
    image.check().unwrap();
    let s = spaces(&image);
    // One host function: the clock's, imported by name.
    let Step::Func(Func::Import(h)) = s.funcs[0] else {
        panic!("{:?}", s.funcs[0])
    };
    assert_eq!(
        (h.interface.as_str(), h.name.as_str()),
        ("tern:edge/clock@0.1.0", "now-ms")
    );
    assert_eq!(render_func(&image.types, &h.ty), "() -> u64");
    assert_eq!(
        s.funcs
            .iter()
            .filter(|f| matches!(f, Step::Func(Func::Import(_))))
            .count(),
        1
    );
    // Both modules once: `a`'s (instantiated twice) and the outer one `b` aliases,
    // in the order they are defined.
    assert_eq!(image.modules.len(), 2);
    assert!(
        module_info(&image.modules[0])
            .exports
            .contains(&"run".to_string())
    );
    assert!(
        module_info(&image.modules[1])
            .exports
            .contains(&"get".to_string())
    );
    let instantiations: Vec<u32> = image
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Instance(CoreInstance::Instantiate { module, .. }) => Some(*module),
            _ => None,
        })
        .collect();
    assert_eq!(instantiations, [1, 1, 0]);
    // `b`'s import of `get` is lowered from the first `a`'s lifted export.
    let lifts: Vec<u32> = (0..s.funcs.len() as u32)
        .filter(|f| matches!(s.funcs[*f as usize], Step::Func(Func::Lift { .. })))
        .collect();
    let [a1, a2, b] = lifts[..] else {
        panic!("{lifts:?}")
    };
    let lowered: Vec<u32> = image
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::CoreFunc(CoreFunc::Lower { func, .. }) => Some(*func),
            _ => None,
        })
        .collect();
    assert_eq!(lowered, [0, 0, a1]);
    // Exports: `run` is `b`'s lift; the exported instance's function is the second
    // `a`'s, as `interface#function`.
    let exports: Vec<(&str, u32)> = image
        .exports
        .iter()
        .map(|e| (e.name.as_str(), e.func))
        .collect();
    assert_eq!(exports, [("run", b), ("tern:test/api@0.1.0#get", a2)]);
    // Lifted without memory: scalars only.
    let Step::Func(Func::Lift { ty, options, .. }) = s.funcs[b as usize] else {
        unreachable!()
    };
    assert_eq!(render_func(&image.types, ty), "() -> u64");
    assert_eq!(options.memory, None);
}

/// The error a component written as `wat` gets, and its message.
fn refused(wat: &str) -> (ImageBuildError, String) {
    let component = wat::parse_str(wat).unwrap_or_else(|e| panic!("{e}\n{wat}"));
    let e = device_image(&component).unwrap_err();
    let message = e.to_string();
    (e, message)
}

/// A core module with a memory and `cabi_realloc`, instantiated as `$i`, and its
/// memory and realloc aliased as `$mem` and `$realloc`; `body` follows.
fn with_module(funcs: &str, body: &str) -> String {
    format!(
        r#"(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)
    {funcs})
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $mem))
  (alias core export $i "cabi_realloc" (core func $realloc))
  {body})"#
    )
}

#[test]
fn async_lifts_lowers_and_function_types_are_refused() {
    let (e, message) = refused(&with_module(
        r#"(func (export "f") (result i32) i32.const 0)
           (func (export "cb") (param i32 i32 i32) (result i32) i32.const 0)"#,
        r#"(alias core export $i "f" (core func $f))
           (alias core export $i "cb" (core func $cb))
           (func (export "f") async (canon lift (core func $f) async (callback $cb)))"#,
    ));
    assert_eq!(
        e,
        ImageBuildError::Async {
            item: "the function lifted from core export `f`".into()
        }
    );
    assert_eq!(
        message,
        "the function lifted from core export `f` is async: Tern runs the synchronous \
         canonical ABI only"
    );
    // A lowering with `async` (inside a nested component, whose imports take the
    // types of its arguments).
    let (e, _) = refused(
        r#"(component (component
             (import "g" (func $g async))
             (core func (canon lower (func $g) async))))"#,
    );
    assert_eq!(
        e,
        ImageBuildError::Async {
            item: "the lowering of import `g`".into()
        }
    );
    let (e, message) = refused(r#"(component (import "g" (func async)))"#);
    assert_eq!(
        e,
        ImageBuildError::Async {
            item: "imported function `g`".into()
        }
    );
    assert!(message.starts_with("imported function `g` is async"));
}

#[test]
fn string_encodings_other_than_utf8_are_refused() {
    for (option, encoding) in [("utf16", "utf16"), ("latin1+utf16", "latin1+utf16")] {
        let (e, message) = refused(&with_module(
            r#"(func (export "f") (param i32 i32))"#,
            &format!(
                r#"(alias core export $i "f" (core func $f))
                   (func (export "f") (param "s" string)
                     (canon lift (core func $f) (memory $mem) (realloc $realloc)
                       string-encoding={option}))"#
            ),
        ));
        assert_eq!(
            e,
            ImageBuildError::StringEncoding {
                item: "the function lifted from core export `f`".into(),
                encoding,
            }
        );
        assert_eq!(
            message,
            format!(
                "the function lifted from core export `f` uses the {encoding} string encoding: \
                 Tern moves UTF-8 strings only (build the guest with UTF-8 strings)"
            )
        );
    }
}

#[test]
fn resources_and_their_builtins_are_refused() {
    let (e, message) = refused(
        r#"(component
             (type $r (resource (rep i32)))
             (core func (canon resource.new $r)))"#,
    );
    assert_eq!(
        e,
        ImageBuildError::Builtin {
            name: "resource.new".into()
        }
    );
    assert_eq!(
        message,
        "the component uses `canon resource.new`: Tern implements `canon lift`, `canon \
         lower` and the host's resources' `canon resource.drop` only (resources the component \
         defines are not supported)"
    );
    let (e, _) = refused(
        r#"(component
             (type $r (resource (rep i32)))
             (core func (canon resource.drop $r)))"#,
    );
    assert_eq!(
        e,
        ImageBuildError::Builtin {
            name: "resource.drop".into()
        }
    );
    // A handle to a resource no imported instance defines.
    let (e, message) = refused(
        r#"(component
             (import "r" (type $r (sub resource)))
             (import "take" (func (param "x" (own $r)))))"#,
    );
    assert_eq!(
        e,
        ImageBuildError::Type {
            item: "imported function `take`".into(),
            ty: "own<resource>".into(),
            what: Unsupported::HostResource,
        }
    );
    assert_eq!(
        message,
        "imported function `take` has type `own<resource>`: it is a resource no imported \
         interface defines: Tern's hosts define resources in interfaces only"
    );
    // A handle in a lifted function: a host passes none to an export.
    let (e, _) = refused(
        r#"(component
             (import "t:r/s" (instance $i (export "r" (type (sub resource)))))
             (alias export $i "r" (type $r))
             (core module $m (func (export "f") (param i32)))
             (core instance $c (instantiate $m))
             (func (export "f") (param "x" (own $r)) (canon lift (core func $c "f"))))"#,
    );
    assert!(
        matches!(
            &e,
            ImageBuildError::Type {
                what: Unsupported::Resource,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn streams_futures_and_error_contexts_are_refused() {
    for (ty, shown, what) in [
        ("(stream u8)", "stream<u8>", Unsupported::Stream),
        ("(future string)", "future<string>", Unsupported::Future),
        ("error-context", "error-context", Unsupported::ErrorContext),
        ("(list (stream u8))", "stream<u8>", Unsupported::Stream),
    ] {
        let (e, message) = refused(&format!(
            r#"(component (import "tern:x/y@1.0.0" (instance (export "f" (func (param "x" {ty}))))))"#
        ));
        assert_eq!(
            e,
            ImageBuildError::Type {
                item: "imported function `f` of `tern:x/y@1.0.0`".into(),
                ty: shown.into(),
                what,
            },
            "{ty}"
        );
        assert!(message.contains("async ABI"), "{message}");
    }
    for (builtin, name) in [
        (
            "(type $s (stream u8)) (core func (canon stream.new $s))",
            "stream.new",
        ),
        (
            "(type $f (future)) (core func (canon future.new $f))",
            "future.new",
        ),
        ("(core func (canon task.cancel))", "task.cancel"),
        ("(core func (canon thread.yield))", "thread.yield"),
        ("(core func (canon backpressure.inc))", "backpressure.inc"),
    ] {
        let (e, message) = refused(&format!("(component {builtin})"));
        assert_eq!(
            e,
            ImageBuildError::Builtin { name: name.into() },
            "{builtin}"
        );
        assert!(
            message.ends_with("(no async tasks, streams, futures, threads or contexts)"),
            "{message}"
        );
    }
    let (e, _) = refused(&with_module(
        "",
        "(core func (canon error-context.debug-message (memory $mem) (realloc $realloc)))",
    ));
    assert_eq!(
        e,
        ImageBuildError::Builtin {
            name: "error-context.debug-message".into()
        }
    );
}

#[test]
fn fixed_length_lists_and_maps_are_refused() {
    for (ty, shown, what) in [
        ("(list u8 4)", "list<u8, 4>", Unsupported::FixedSizeList),
        ("(map string u32)", "map<string, u32>", Unsupported::Map),
    ] {
        let (e, _) = refused(&format!(r#"(component (import "f" (func (result {ty}))))"#));
        assert_eq!(
            e,
            ImageBuildError::Type {
                item: "imported function `f`".into(),
                ty: shown.into(),
                what,
            }
        );
    }
}

#[test]
fn memories_tern_cannot_lift_through_are_refused_naming_them() {
    // A 64-bit memory in a lift's options.
    let (e, message) = refused(
        r#"(component
             (core module $m
               (memory (export "memory") i64 1)
               (func (export "f") (result i64) i64.const 0))
             (core instance $i (instantiate $m))
             (alias core export $i "memory" (core memory $mem))
             (alias core export $i "f" (core func $f))
             (func (export "f") (result string) (canon lift (core func $f) (memory $mem))))"#,
    );
    assert_eq!(
        e,
        ImageBuildError::Memory64 {
            item: "the function lifted from core export `f`".into()
        }
    );
    assert_eq!(
        message,
        "the function lifted from core export `f` uses a 64-bit memory: Tern's canonical ABI is \
         32-bit"
    );
    // A module with a 64-bit or a shared memory: wasmi lacks the feature.
    for (memory, feature) in [("i64 1", "memory64"), ("1 1 shared", "threads")] {
        let (e, message) = refused(&format!(
            r#"(component (core module $m (memory {memory})) (core instance (instantiate $m)))"#
        ));
        let ImageBuildError::Feature { module: 0, error } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(error.feature.name(), feature);
        assert!(
            message.starts_with(&format!(
                "core module 0: wasmi does not support the `{feature}` proposal"
            )),
            "{message}"
        );
    }
}

#[test]
fn modules_wasmi_cannot_run_are_refused_with_the_feature_and_the_fix() {
    let (e, message) = refused(
        r#"(component
             (core module $m
               (func (result i32) v128.const i32x4 0 0 0 0 i32x4.extract_lane 0))
             (core instance (instantiate $m)))"#,
    );
    let ImageBuildError::Feature { module: 0, error } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((error.feature.name(), error.function), ("simd", Some(0)));
    assert!(
        message.ends_with("; build without `simd` or target only wasmtime boards"),
        "{message}"
    );
    // A module that is defined but never instantiated is not in the image, and not
    // checked.
    let image = device_image(
        &wat::parse_str(
            r#"(component (core module $m (func (result v128) v128.const i32x4 0 0 0 0)))"#,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(image.modules.is_empty());
}

#[test]
fn starts_values_and_what_is_not_a_function_are_refused() {
    let (e, message) = refused(
        r#"(component
             (core module $m (func (export "f")))
             (core instance $i (instantiate $m))
             (alias core export $i "f" (core func $f))
             (func $g (canon lift (core func $f)))
             (start $g))"#,
    );
    assert_eq!(e, ImageBuildError::Start);
    assert!(message.starts_with("the component has a start function"));
    let (e, message) = refused(r#"(component (import "v" (value string)))"#);
    assert_eq!(
        e,
        ImageBuildError::Value {
            item: "import `v`".into()
        }
    );
    assert_eq!(
        message,
        "import `v` is a component-model value: Tern passes values only through functions"
    );
    let (e, message) = refused(r#"(component (core module $m) (export "m" (core module $m)))"#);
    assert_eq!(
        e,
        ImageBuildError::Export {
            name: "m".into(),
            kind: "core module"
        }
    );
    assert_eq!(
        message,
        "the component exports `m`, a core module: a device calls functions only"
    );
    let (e, _) = refused(r#"(component (component $c) (export "c" (component $c)))"#);
    assert_eq!(
        e,
        ImageBuildError::Export {
            name: "c".into(),
            kind: "component"
        }
    );
    let (e, message) = refused(r#"(component (import "m" (core module)))"#);
    assert_eq!(
        e,
        ImageBuildError::Import {
            name: "m".into(),
            kind: "core module"
        }
    );
    assert_eq!(
        message,
        "the component imports `m`, a core module: a device provides functions only"
    );
    // An exported interface inside an exported instance.
    let (e, _) = refused(
        r#"(component
             (import "f" (func $f))
             (instance $inner (export "f" (func $f)))
             (instance $outer (export "inner" (instance $inner)))
             (export "tern:x/y@1.0.0" (instance $outer)))"#,
    );
    assert_eq!(
        e,
        ImageBuildError::Export {
            name: "tern:x/y@1.0.0#inner".into(),
            kind: "instance"
        }
    );
}

#[test]
fn what_is_not_a_component_is_refused() {
    let module = wat::parse_str("(module)").unwrap();
    assert_eq!(device_image(&module), Err(ImageBuildError::NotAComponent));
    assert_eq!(
        device_image(b"garbage"),
        Err(ImageBuildError::NotAComponent)
    );
    let e = device_image(b"\0asm\x0d\0\x01\0garbage").unwrap_err();
    assert!(matches!(e, ImageBuildError::Invalid(_)), "{e:?}");
    // Flags past 32: the validator refuses them already.
    let flags: Vec<String> = (0..33).map(|i| format!("\"f{i}\"")).collect();
    let (e, _) = refused(&format!(
        r#"(component (import "f" (func (param "x" (flags {})))))"#,
        flags.join(" ")
    ));
    assert!(matches!(e, ImageBuildError::Invalid(_)), "{e:?}");
}

#[test]
fn components_that_multiply_or_nest_too_deep_are_refused() {
    // Each level instantiates the one inside it twice: 2^17 core instances.
    let mut body = "(core module $m) (core instance (instantiate $m))".to_string();
    for _ in 0..17 {
        body = format!(
            "(component $c {body}) (instance (instantiate $c)) (instance (instantiate $c))"
        );
    }
    let wat = format!("(component {body})");
    let component = wat::parse_str(&wat).unwrap();
    assert_eq!(device_image(&component), Err(ImageBuildError::TooLarge));
    // And nesting past the limit is refused before anything recurses that deep
    // (written in binary: `wat` stops at about 100 levels itself).
    let nested = |levels: usize| {
        let header = b"\0asm\x0d\0\x01\0";
        (1..levels).fold(header.to_vec(), |inner, _| {
            let mut out = header.to_vec();
            out.push(4); // a nested component section
            let mut len = inner.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                out.push(if len == 0 { byte } else { byte | 0x80 });
                if len == 0 {
                    break;
                }
            }
            out.extend(inner);
            out
        })
    };
    let e = device_image(&nested(tern_wit::MAX_NESTING + 1)).unwrap_err();
    assert_eq!(e, ImageBuildError::TooDeep);
    assert_eq!(
        e.to_string(),
        "the component nests components more than 100 deep"
    );
    // At the limit, it is taken apart (into nothing).
    let image = device_image(&nested(tern_wit::MAX_NESTING)).unwrap();
    assert!(image.steps.is_empty() && image.modules.is_empty());
}

/// A world with a world-level import, an exported interface and a world-level
/// export, componentized by wit-component from a module using the names
/// `describe_world` gives: the image's imports and exports are the description's,
/// name for name and type for type.
#[test]
fn an_image_has_the_names_and_types_describe_world_gives() {
    let wit = r#"
        package tern:test@0.1.0;
        interface clock { now: func() -> u64; }
        interface api {
            record entry { key: string, hits: u32 }
            get: func(key: string) -> option<entry>;
        }
        world w {
            import clock;
            import ping: func(x: u32);
            export api;
            export run: func();
        }
    "#;
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_source("test.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
    let described = tern_wit::describe_world(&resolve, world).unwrap();
    let module = wat::parse_str(
        r#"(module
             (import "$root" "ping" (func (param i32)))
             (import "tern:test/clock@0.1.0" "now" (func (result i64)))
             (memory (export "memory") 1)
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
             (func (export "tern:test/api@0.1.0#get") (param i32 i32) (result i32) i32.const 0)
             (func (export "run")))"#,
    )
    .unwrap();
    let image = device_image(&component_of(module, &resolve, world)).unwrap();

    let mut imports: Vec<(String, String, String)> = image
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Func(Func::Import(h)) => Some((
                h.interface.clone(),
                h.name.clone(),
                render_func(&image.types, &h.ty),
            )),
            _ => None,
        })
        .collect();
    imports.sort();
    let mut expected: Vec<(String, String, String)> = described
        .imports
        .iter()
        .map(|h| {
            (
                h.interface.clone(),
                h.name.clone(),
                render_func(&described.types, &h.ty),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(imports, expected);
    assert_eq!(
        imports
            .iter()
            .map(|(i, n, _)| (i.as_str(), n.as_str()))
            .collect::<Vec<_>>(),
        [("$root", "ping"), ("tern:test/clock@0.1.0", "now")]
    );

    // wit-component exports the world's functions before its interfaces: the same
    // exports in another order than the WIT's.
    let s = spaces(&image);
    let mut exports: Vec<(String, String)> = image
        .exports
        .iter()
        .map(|e| {
            let Step::Func(Func::Lift { ty, .. }) = s.funcs[e.func as usize] else {
                panic!("{} is not lifted", e.name)
            };
            (e.name.clone(), render_func(&image.types, ty))
        })
        .collect();
    let mut expected: Vec<(String, String)> = described
        .exports
        .iter()
        .map(|e| (e.name.clone(), render_func(&described.types, &e.ty)))
        .collect();
    assert_eq!(
        image
            .exports
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["run", "tern:test/api@0.1.0#get"]
    );
    exports.sort();
    expected.sort();
    assert_eq!(exports, expected);
}
