//! Fleet server throughput on loopback: check-ins per second (plain polls, and
//! polls carrying a report, which wait for their group commit) and download MB/s,
//! with the clients on the same machine as the server.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark code: a panic is how it fails"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hyper::StatusCode;
use tern_core::protocol::Report;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// Concurrent keep-alive connections, one device each.
const CONNS: usize = 64;
/// Check-ins per measured batch.
const CHECK_INS: usize = 2048;
/// Downloads per measured batch.
const DOWNLOADS: usize = 128;

struct Fleet {
    server: Option<TestServer>,
    dir: std::path::PathBuf,
    conns: Vec<Conn>,
    bundles: Vec<(String, usize)>,
}

fn setup(rt: &Runtime) -> Fleet {
    rt.block_on(async {
        let dir = data_dir("bench");
        let server = TestServer::start(&dir).await;
        let mut admin = server.conn().await;
        let mut bundles = Vec::new();
        for (counter, len) in [(1, 100 * 1024), (2, 1024 * 1024)] {
            let b = device_bundle(counter, len);
            assert_eq!(admin.publish(&b).await.status, StatusCode::CREATED);
            bundles.push((bundle_id(&b), b.len()));
        }
        let mut conns = Vec::new();
        for i in 0..CONNS {
            admin
                .provision(&format!("dev-{i}"), &token(i), Some("fleet"))
                .await;
            let mut c = server.conn().await;
            // First check-in: the device's status now exists.
            c.check_in(&token(i), &check_in_msg(&format!("dev-{i}"), None, vec![]))
                .await;
            conns.push(c);
        }
        Fleet {
            server: Some(server),
            dir,
            conns,
            bundles,
        }
    })
}

/// Runs `per_conn` requests on every connection at once; returns the elapsed time.
fn run<F, Fut>(rt: &Runtime, fleet: &mut Fleet, per_conn: usize, f: F) -> Duration
where
    F: Fn(usize, Conn) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Conn> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        let mut set = JoinSet::new();
        for (i, mut c) in fleet.conns.drain(..).enumerate() {
            let f = f.clone();
            set.spawn(async move {
                for _ in 0..per_conn {
                    c = f(i, c).await;
                }
                (i, c)
            });
        }
        let mut back = Vec::new();
        while let Some(c) = set.join_next().await {
            back.push(c.unwrap());
        }
        let elapsed = start.elapsed();
        // Connection i stays device i's.
        back.sort_by_key(|(i, _)| *i);
        fleet.conns = back.into_iter().map(|(_, c)| c).collect();
        elapsed
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut fleet = setup(&rt);
    let mut g = c.benchmark_group("server");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    g.throughput(Throughput::Elements(CHECK_INS as u64));
    g.bench_function("check-in (poll)", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run(&rt, &mut fleet, CHECK_INS / CONNS, |i, mut c| async move {
                        let msg = check_in_msg(&format!("dev-{i}"), None, vec![]);
                        c.check_in(&token(i), &msg).await;
                        c
                    })
                })
                .sum()
        })
    });
    g.bench_function("check-in (with a report)", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run(&rt, &mut fleet, CHECK_INS / CONNS, |i, mut c| async move {
                        let report = Report::Installed {
                            bundle_sha256: [i as u8; 32],
                        };
                        let msg = check_in_msg(&format!("dev-{i}"), None, vec![report]);
                        c.check_in(&token(i), &msg).await;
                        c
                    })
                })
                .sum()
        })
    });

    for (id, len) in fleet.bundles.clone() {
        rt.block_on(async {
            let mut admin = fleet.server.as_ref().unwrap().conn().await;
            assert_eq!(
                admin.assign("group:fleet", &id).await.status,
                StatusCode::OK
            );
        });
        let per_conn = (DOWNLOADS / CONNS).max(1);
        g.throughput(Throughput::Bytes((per_conn * CONNS * len) as u64));
        let name = format!("download {} KiB", len / 1024);
        g.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let id = id.clone();
                        run(&rt, &mut fleet, per_conn, move |i, mut c| {
                            let id = id.clone();
                            async move {
                                let r = c.download(&token(i), &id, None).await;
                                assert_eq!(r.body.len(), len);
                                c
                            }
                        })
                    })
                    .sum()
            })
        });
    }
    g.finish();

    rt.block_on(fleet.server.take().unwrap().stop());
    let _ = std::fs::remove_dir_all(&fleet.dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
