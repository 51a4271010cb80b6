;; A component whose export is lifted `async`: it needs a component-model proposal
;; Wasmtime is built without, and Tern runs the synchronous canonical ABI only. Shared
;; by the tests that refuse it (tern-wasmtime's features, tests/components.rs and the
;; `tern sign` command test).
(component
  (core module $m
    (func (export "f") (result i32) i32.const 0)
    (func (export "cb") (param i32 i32 i32) (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (alias core export $i "f" (core func $f))
  (alias core export $i "cb" (core func $cb))
  (func (export "f") async (canon lift (core func $f) async (callback $cb))))
