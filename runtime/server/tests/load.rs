//! Load: 500 simulated devices check in, download a 100 KiB bundle with a resumed
//! range request, verify it and report, all at once against one server on loopback,
//! with no failure.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

mod common;

use std::time::Instant;

use common::*;
use hyper::StatusCode;
use tern_core::bundle;
use tern_core::protocol::Report;
use tokio::task::JoinSet;

const DEVICES: usize = 500;

/// One device's update: check in, download in two halves, verify, report. Each device
/// connects from a loopback address of its own (127.0.2.1, 127.0.2.2, ...), as
/// devices on a network have theirs: the server limits connections per address.
async fn device(addr: std::net::SocketAddr, i: usize, bundle: &[u8]) -> Result<(), String> {
    let from = std::net::Ipv4Addr::new(127, 0, 2 + (i / 250) as u8, 1 + (i % 250) as u8);
    let mut c = Conn::connect_from(addr, from).await;
    let id = format!("dev-{i}");
    let token = token(i);
    let reply = c.check_in(&token, &check_in_msg(&id, None, vec![])).await;
    let a = reply.assignment.ok_or("no assignment")?;
    let half = a.len / 2;
    let first = c
        .download(&token, &a.bundle_id, Some(&format!("bytes=0-{}", half - 1)))
        .await;
    let rest = c
        .download(&token, &a.bundle_id, Some(&format!("bytes={half}-")))
        .await;
    if first.status != StatusCode::PARTIAL_CONTENT || rest.status != StatusCode::PARTIAL_CONTENT {
        return Err(format!("download: {} / {}", first.status, rest.status));
    }
    let got = [first.body.as_ref(), rest.body.as_ref()].concat();
    if bundle::sha256(&got) != a.sha256 || got != bundle {
        return Err("downloaded bytes differ".into());
    }
    let reports = vec![
        Report::Installed {
            bundle_sha256: a.sha256,
        },
        Report::Confirmed {
            bundle_sha256: a.sha256,
        },
    ];
    let reply = c
        .check_in(&token, &check_in_msg(&id, Some(&got), reports))
        .await;
    if reply.assignment.is_some() {
        return Err("still offered after installing".into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_devices_update_at_once_without_a_failure() {
    let dir = data_dir("load");
    let server = TestServer::start(&dir).await;
    let b = device_bundle(1, 100 * 1024);
    let mut admin = server.conn().await;
    assert_eq!(admin.publish(&b).await.status, StatusCode::CREATED);
    assert_eq!(
        admin.assign("group:fleet", &bundle_id(&b)).await.status,
        StatusCode::OK
    );
    // Provision over 16 admin connections at once (their commits are grouped).
    let mut setup = JoinSet::new();
    for k in 0..16 {
        let addr = server.addr;
        setup.spawn(async move {
            let mut c = Conn::connect(addr).await;
            for i in (k..DEVICES).step_by(16) {
                let r = c
                    .provision(&format!("dev-{i}"), &token(i), Some("fleet"))
                    .await;
                assert_eq!(r.status, StatusCode::CREATED);
            }
        });
    }
    while let Some(r) = setup.join_next().await {
        r.unwrap();
    }

    let start = Instant::now();
    let mut devices = JoinSet::new();
    let b = std::sync::Arc::new(b);
    for i in 0..DEVICES {
        let (addr, b) = (server.addr, b.clone());
        devices.spawn(async move {
            device(addr, i, &b)
                .await
                .map_err(|e| format!("dev-{i}: {e}"))
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = devices.join_next().await {
        if let Err(e) = r.unwrap() {
            failures.push(e);
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{DEVICES} devices: check-in, 2 ranged downloads of {} bytes, report: {elapsed:?}",
        b.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let devices = admin
        .admin(hyper::Method::GET, "/api/v1/devices", bytes::Bytes::new())
        .await
        .json();
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), DEVICES);
    assert!(
        devices
            .iter()
            .all(|d| d["assignment"]["state"] == "up-to-date")
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
