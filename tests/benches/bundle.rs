//! Benchmark: verifying a signed bundle as a device does (header, signature, install
//! policy, then the payload hashed in 4 KiB chunks), reported as throughput.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark setup: a panic is a failed run"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tern_core::bundle::{self, HeaderDecoder, Manifest, Target, Version};
use tern_core::policy::check_install;
use tern_core::{Grant, wit::WIT_PACKAGE};
use tern_host::keys::KeyFile;
use tern_tests::root;

/// Payload size: large enough that hashing dominates, like a real component.
const PAYLOAD: usize = 1024 * 1024;

fn benches(c: &mut Criterion) {
    let key = KeyFile::read(&root().join("boards/keys/tern-dev-2026.key")).unwrap();
    let board = tern_host::boards::by_name("server").unwrap();
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i * 31 % 251) as u8).collect();
    let manifest = Manifest {
        name: "bench".into(),
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        security_counter: 1,
        targets: vec![Target::Board("server".into())],
        capabilities: Grant::parse(["log"]).unwrap(),
        payload_len: PAYLOAD as u32,
        payload_sha256: bundle::sha256(&payload),
        wit: WIT_PACKAGE.into(),
    };
    let bytes = bundle::encode(&manifest, &payload, |m| vec![key.sign(m)]).unwrap();

    let mut g = c.benchmark_group("bundle");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("verify-1MiB", |b| {
        b.iter(|| {
            let mut dec = HeaderDecoder::new();
            let mut chunks = bytes.chunks(4096);
            let (header, first) = loop {
                if let Some((h, rest)) = dec.feed(chunks.next().unwrap()).unwrap() {
                    break (h, rest);
                }
            };
            check_install(&header, board, None).unwrap();
            let mut check = header.payload_checker();
            check.update(first).unwrap();
            for chunk in chunks {
                check.update(chunk).unwrap();
            }
            check.finish().unwrap();
        })
    });
    g.finish();
}

criterion_group! {
    name = bundle_benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(bundle_benches);
