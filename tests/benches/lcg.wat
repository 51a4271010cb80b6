;; The interpreter benchmark's compute loop (`cargo xtask bench --interp`): a 64-bit
;; LCG whose state picks cells of an 8 KiB table in linear memory, one load, one store
;; and one more load per iteration, folded into a checksum. No imports, no floats:
;; every engine can run it and must return the same checksum, which
;; `tests/benches/interp.rs` also computes natively (`reference`); keep the two equal.
(module
  (memory (export "memory") 1)

  ;; run(iterations) -> checksum
  (func (export "run") (param $n i32) (result i64)
    (local $i i32)
    (local $slot i32)
    (local $state i64)
    (local $sum i64)
    (local $v i64)

    ;; Zero the table first, so that the checksum depends on $n alone and repeated
    ;; calls on one instance all return the same value.
    (block $cleared
      (loop $clear
        (br_if $cleared (i32.ge_u (local.get $i) (i32.const 8192)))
        (i64.store (local.get $i) (i64.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $clear)))

    (local.set $state (i64.const 0x853c49e6748fea9b))
    (local.set $i (i32.const 0))
    (block $done
      (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
      (loop $step
        ;; state = state * 6364136223846793005 + 1442695040888963407 (Knuth's MMIX LCG)
        (local.set $state
          (i64.add
            (i64.mul (local.get $state) (i64.const 6364136223846793005))
            (i64.const 1442695040888963407)))
        ;; table[a] ^= state, where a = bits 33..42 of the state; v = the old value
        (local.set $slot
          (i32.shl
            (i32.and (i32.wrap_i64 (i64.shr_u (local.get $state) (i64.const 33)))
                     (i32.const 1023))
            (i32.const 3)))
        (local.set $v (i64.load (local.get $slot)))
        (i64.store (local.get $slot) (i64.xor (local.get $v) (local.get $state)))
        ;; sum = rotl(sum, 5) + v + table[b], where b = bits 54..63 of the state
        (local.set $sum
          (i64.add
            (i64.add (i64.rotl (local.get $sum) (i64.const 5)) (local.get $v))
            (i64.load
              (i32.shl
                (i32.wrap_i64 (i64.shr_u (local.get $state) (i64.const 54)))
                (i32.const 3)))))
        (br_if $step
          (i32.lt_u
            (local.tee $i (i32.add (local.get $i) (i32.const 1)))
            (local.get $n)))))

    (i64.xor (local.get $sum) (local.get $state))))
