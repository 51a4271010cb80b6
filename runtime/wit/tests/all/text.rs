//! `tern_wit::text`: a WIT type by its name or spelled out, and a component's type
//! in the same words as the spelled-out WIT type (what a type mismatch compares).

use tern_wit::text::{Names, component_func, func, wit_type};
use wasmparser::component_types::ComponentEntityType;
use wit_parser::{Resolve, WorldItem};

use crate::image::component_of;

#[test]
fn a_type_is_written_by_name_or_spelled_out_alike_for_a_component() {
    let wit = r#"
        package t:t@0.1.0;
        interface i {
            record sample { name: string, value: s64 }
            variant v { none, some(sample) }
            f: func(v: v, l: list<tuple<u8, bool>>) -> result<_, string>;
        }
        world w { export i; }
    "#;
    let mut resolve = Resolve::default();
    let pkg = resolve.push_source("t.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
    let Some(WorldItem::Interface { id, .. }) = resolve.worlds[world].exports.values().next()
    else {
        panic!("an interface")
    };
    let f = &resolve.interfaces[*id].functions["f"];
    let written = |names| {
        let params: Vec<String> = f
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, wit_type(&resolve, &p.ty, names)))
            .collect();
        func(
            &params,
            f.result.as_ref().map(|t| wit_type(&resolve, t, names)),
        )
    };
    assert_eq!(
        written(Names::Kept),
        "func(v: v, l: list<tuple<u8, bool>>) -> result<_, string>"
    );
    let spelled = "func(v: variant { none, some(record { name: string, value: s64 }) }, \
                   l: list<tuple<u8, bool>>) -> result<_, string>";
    assert_eq!(written(Names::SpelledOut), spelled);

    // `f`'s parameters flatten to (case, name, name length, value) and (list,
    // length); its result goes through a return area.
    let module = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
             (func (export "t:t/i@0.1.0#f") (param i32 i32 i32 i64 i32 i32) (result i32)
               i32.const 8))"#,
    )
    .unwrap();
    let component = component_of(module, &resolve, world);
    let types = wasmparser::Validator::new_with_features(tern_wit::features::component())
        .validate_all(&component)
        .unwrap();
    let types = types.as_ref();
    let Some(ComponentEntityType::Instance(i)) =
        types.component_item_for_export("t:t/i@0.1.0").map(|i| i.ty)
    else {
        panic!("an instance")
    };
    let ComponentEntityType::Func(f) = types[i].exports["f"].ty else {
        panic!("a function")
    };
    assert_eq!(component_func(types, f), spelled);
}
