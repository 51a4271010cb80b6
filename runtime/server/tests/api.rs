//! The fleet server over HTTP on loopback: publishing, provisioning, assignments,
//! check-ins, ranged downloads, authentication, and state across a restart.
#![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

mod common;

use bytes::Bytes;
use common::*;
use hyper::{Method, StatusCode};
use tern_core::bundle::{self, EngineKind, Target};
use tern_core::protocol::{self, Report};

#[tokio::test]
async fn key_files_match_the_test_boards() {
    for (name, hex) in [("tern-dev-2026", DEV_PUB), ("tern-dev-ops-2026", OPS_PUB)] {
        let text =
            std::fs::read_to_string(repo_root().join(format!("boards/keys/{name}.pub"))).unwrap();
        assert_eq!(text.trim(), hex);
        assert_eq!(
            tern_core::wit::hex_bytes::encode(&key(name).verifying_key().to_bytes()),
            hex
        );
    }
}

#[tokio::test]
async fn publishing_accepts_trusted_bundles_and_refuses_others_with_a_reason() {
    let dir = data_dir("publish");
    let server = TestServer::start(&dir).await;
    let mut c = server.conn().await;
    let good = device_bundle(1, 1000);

    // Admin authentication comes first.
    for token in [None, Some("wrong-admin-token-0123456789")] {
        let r = c
            .send(Method::POST, "/api/v1/bundles", token, &[], good.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        assert!(r.error().contains("admin token"), "{}", r.error());
    }
    let r = c.admin(Method::GET, "/api/v1/bundles", Bytes::new()).await;
    assert_eq!(r.json(), serde_json::json!([]));

    // A bundle signed by a key its target board trusts.
    let r = c.publish(&good).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = bundle_id(&good);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/bundles/{id}")
    );
    let v = r.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["len"], good.len());
    assert_eq!(v["manifest"]["name"], "smoother");
    assert_eq!(v["manifest"]["version"], "1.0.1");
    assert_eq!(v["trusted_by"], serde_json::json!(["test-device"]));
    // Publishing the same bytes again changes nothing.
    assert_eq!(c.publish(&good).await.status, StatusCode::OK);

    // Engine targets are judged by every board on that engine: the gateway trusts
    // only the ops key, so an ops-signed Wasmtime bundle is accepted...
    let ops = bundle_for(
        vec![Target::Engine(EngineKind::Wasmtime)],
        2,
        &payload(10, 2),
        &[&key("tern-dev-ops-2026")],
    );
    let r = c.publish(&ops).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["trusted_by"], serde_json::json!(["test-gateway"]));
    // ...and a dev-signed one is not.
    let dev_on_gateway = bundle_for(
        vec![Target::Engine(EngineKind::Wasmtime)],
        2,
        &payload(10, 3),
        &[&dev_key()],
    );
    let r = c.publish(&dev_on_gateway).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.error().contains("test-gateway"), "{}", r.error());

    // Unsigned.
    let unsigned = bundle_for(
        vec![Target::Board("test-device".into())],
        1,
        &payload(10, 4),
        &[],
    );
    let r = c.publish(&unsigned).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.error().contains("unsigned"), "{}", r.error());

    // Signed by a key no board trusts: the reason names the key.
    let stranger = stranger_key();
    let unknown = bundle_for(
        vec![Target::Board("test-device".into())],
        1,
        &payload(10, 5),
        &[&stranger],
    );
    let r = c.publish(&unknown).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let stranger_id =
        tern_core::wit::hex_bytes::encode(&bundle::key_id(&stranger.verifying_key().to_bytes()));
    assert!(
        r.error().contains("does not trust") && r.error().contains(&stranger_id),
        "{}",
        r.error()
    );
    assert_eq!(r.json()["details"].as_array().unwrap().len(), 1);

    // For a board the server does not know.
    let elsewhere = bundle_for(
        vec![Target::Board("other-board".into())],
        1,
        &payload(10, 6),
        &[&dev_key()],
    );
    let r = c.publish(&elsewhere).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.error().contains("other-board"), "{}", r.error());

    // Not a bundle, and a tampered one.
    let r = c.publish(b"not a bundle").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("not a valid bundle"), "{}", r.error());
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let r = c.publish(&tampered).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("SHA-256"), "{}", r.error());

    // What was accepted is listed and readable; nothing else.
    let r = c.admin(Method::GET, "/api/v1/bundles", Bytes::new()).await;
    let ids: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id) && ids.contains(&bundle_id(&ops)));
    let r = c
        .admin(Method::GET, &format!("/api/v1/bundles/{id}"), Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifest"]["targets"][0]["board"], "test-device");
    let r = c
        .admin(
            Method::GET,
            &format!("/api/v1/bundles/{}", bundle_id(&unknown)),
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_check_in_gets_the_assignment_and_its_reports_become_the_status() {
    let dir = data_dir("check-in");
    let server = TestServer::start(&dir).await;
    let mut c = server.conn().await;
    let v1 = device_bundle(1, 2000);
    let v2 = device_bundle(2, 2000);
    let (id1, id2) = (bundle_id(&v1), bundle_id(&v2));
    assert_eq!(c.publish(&v1).await.status, StatusCode::CREATED);
    assert_eq!(c.publish(&v2).await.status, StatusCode::CREATED);
    let r = c.provision("dev-1", &token(1), Some("lab")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        c.provision("dev-2", &token(2), Some("lab")).await.status,
        StatusCode::CREATED
    );
    // Tokens are per device.
    assert_eq!(
        c.provision("dev-3", &token(1), None).await.status,
        StatusCode::CONFLICT
    );
    // Assignments name a bundle that exists, and a device that exists.
    assert_eq!(
        c.assign("group:lab", &"0".repeat(64)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.assign("device:nobody", &id1).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(c.assign("lab", &id1).await.status, StatusCode::BAD_REQUEST);

    // No assignment yet: nothing to do.
    let reply = c
        .check_in(&token(1), &check_in_msg("dev-1", None, vec![]))
        .await;
    assert_eq!(reply.assignment, None);
    assert_eq!(reply.poll_after_ms, 5_000);

    // The group's assignment reaches its devices.
    let r = c.assign("group:lab", &id1).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["target"], "group:lab");
    let a = c
        .check_in(&token(1), &check_in_msg("dev-1", None, vec![]))
        .await
        .assignment
        .unwrap();
    assert_eq!(a.bundle_id, id1);
    assert_eq!(a.len as usize, v1.len());
    assert_eq!(a.sha256, bundle::sha256(&v1));
    assert_eq!((a.name.as_str(), a.security_counter), ("smoother", 1));
    assert_eq!(c.device("dev-1").await["assignment"]["state"], "offered");

    // Installed and confirmed: up to date, and the reports are the history.
    let sha1 = bundle::sha256(&v1);
    let reports = vec![
        Report::Installed {
            bundle_sha256: sha1,
        },
        Report::Confirmed {
            bundle_sha256: sha1,
        },
    ];
    let reply = c
        .check_in(&token(1), &check_in_msg("dev-1", Some(&v1), reports))
        .await;
    assert_eq!(reply.assignment, None);
    let d = c.device("dev-1").await;
    assert_eq!(d["installed"]["bundle"], id1.as_str());
    assert_eq!(d["installed"]["version"], "1.0.1");
    assert_eq!(d["board"], "test-device");
    assert_eq!(d["group"], "lab");
    assert_eq!(d["check_ins"], 3);
    assert!(d["last_check_in_ms"].as_u64().unwrap() > 0);
    assert_eq!(d["assignment"]["state"], "up-to-date");
    let outcomes: Vec<&str> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["installed", "confirmed"]);

    // A device's own assignment wins over its group's.
    assert_eq!(c.assign("device:dev-2", &id2).await.status, StatusCode::OK);
    let a = c
        .check_in(&token(2), &check_in_msg("dev-2", None, vec![]))
        .await
        .assignment
        .unwrap();
    assert_eq!(a.bundle_id, id2);

    // A device that rolls a bundle back is not offered it again...
    let reports = vec![Report::RolledBack {
        bundle_sha256: bundle::sha256(&v2),
        reason: "health check failed: trap".into(),
    }];
    let reply = c
        .check_in(&token(2), &check_in_msg("dev-2", None, reports))
        .await;
    assert_eq!(reply.assignment, None);
    let d = c.device("dev-2").await;
    assert_eq!(d["assignment"]["state"], "blocked");
    assert!(
        d["assignment"]["reason"].as_str().unwrap().contains("trap"),
        "{d}"
    );
    // ...until it is assigned again.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    assert_eq!(c.assign("device:dev-2", &id2).await.status, StatusCode::OK);
    let reply = c
        .check_in(&token(2), &check_in_msg("dev-2", None, vec![]))
        .await;
    assert_eq!(reply.assignment.unwrap().bundle_id, id2);

    // A downgrade is not offered: dev-1 now runs v2 (counter 2) and is assigned v1.
    assert_eq!(c.assign("device:dev-1", &id1).await.status, StatusCode::OK);
    let reply = c
        .check_in(&token(1), &check_in_msg("dev-1", Some(&v2), vec![]))
        .await;
    assert_eq!(reply.assignment, None);
    let d = c.device("dev-1").await;
    assert!(
        d["assignment"]["reason"]
            .as_str()
            .unwrap()
            .contains("downgrade"),
        "{d}"
    );

    // Listing.
    let r = c.admin(Method::GET, "/api/v1/devices", Bytes::new()).await;
    let all = r.json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(all[0].get("history").is_none());
    let r = c
        .admin(Method::GET, "/api/v1/assignments", Bytes::new())
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 3);
    let r = c
        .admin(
            Method::DELETE,
            "/api/v1/assignments/device:dev-2",
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // dev-2 falls back to its group's assignment.
    let reply = c
        .check_in(&token(2), &check_in_msg("dev-2", None, vec![]))
        .await;
    assert_eq!(reply.assignment.unwrap().bundle_id, id1);

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_wrong_device_token_is_refused_and_nothing_is_recorded() {
    let dir = data_dir("device-auth");
    let server = TestServer::start(&dir).await;
    let mut c = server.conn().await;
    let b = device_bundle(1, 100);
    c.publish(&b).await;
    c.provision("dev-1", &token(1), None).await;
    c.provision("dev-2", &token(2), None).await;
    c.assign("device:dev-1", &bundle_id(&b)).await;
    let sha = bundle::sha256(&b);
    let msg = check_in_msg(
        "dev-1",
        None,
        vec![Report::Rejected {
            bundle_sha256: sha,
            reason: "forged".into(),
        }],
    );

    for token in [None, Some("not-a-device-token-at-all"), Some(ADMIN_TOKEN)] {
        let body = msg.encode().unwrap();
        let r = c
            .send(Method::POST, "/device/v1/check-in", token, &[], body)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(r.header("www-authenticate").is_some());
        let r = c.download(token.unwrap_or(""), &bundle_id(&b), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Another device's valid token cannot speak for dev-1.
    let r = c.check_in_raw(&token(2), &msg).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error().contains("dev-2"), "{}", r.error());

    // Bad bodies from the right device are refused too, with a reason.
    let r = c
        .send(
            Method::POST,
            "/device/v1/check-in",
            Some(&token(1)),
            &[],
            vec![0u8; protocol::MAX_CHECK_IN_LEN + 1],
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let mut v2 = msg.encode().unwrap();
    v2[0] = 2;
    let r = c
        .send(
            Method::POST,
            "/device/v1/check-in",
            Some(&token(1)),
            &[],
            v2,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("protocol version 2"), "{}", r.error());
    let mut bad = msg.clone();
    bad.reports = vec![Report::Confirmed { bundle_sha256: sha }; protocol::MAX_REPORTS + 1];
    let r = c.check_in_raw(&token(1), &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("reports"), "{}", r.error());

    let d = c.device("dev-1").await;
    assert_eq!(d["last_check_in_ms"], serde_json::Value::Null);
    assert_eq!(d["check_ins"], 0);
    assert_eq!(d["history"], serde_json::json!([]));
    assert_eq!(d["refused"], serde_json::Value::Null);
    assert_eq!(d["assignment"]["state"], "offered");

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_ranged_download_resumes_exactly() {
    let dir = data_dir("range");
    let server = TestServer::start(&dir).await;
    let mut c = server.conn().await;
    let b = device_bundle(1, 100 * 1024);
    let id = bundle_id(&b);
    c.publish(&b).await;
    c.provision("dev-1", &token(1), None).await;
    c.provision("dev-2", &token(2), None).await;

    // Only the device the bundle is assigned to may download it.
    let r = c.download(&token(1), &id, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    c.assign("device:dev-1", &id).await;
    assert_eq!(
        c.download(&token(2), &id, None).await.status,
        StatusCode::FORBIDDEN
    );
    let r = c.download(&token(1), &"a".repeat(64), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let whole = c.download(&token(1), &id, None).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, b);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("etag"), Some(format!("\"{id}\"").as_str()));

    // A download cut after 40,001 bytes, resumed from there.
    let cut = 40_000;
    let first = c
        .download(&token(1), &id, Some(&format!("bytes=0-{cut}")))
        .await;
    assert_eq!(first.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        first.header("content-range"),
        Some(format!("bytes 0-{cut}/{}", b.len()).as_str())
    );
    let rest = c
        .download(&token(1), &id, Some(&format!("bytes={}-", cut + 1)))
        .await;
    assert_eq!(rest.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        rest.header("content-range"),
        Some(format!("bytes {}-{}/{}", cut + 1, b.len() - 1, b.len()).as_str())
    );
    let joined = [first.body.as_ref(), rest.body.as_ref()].concat();
    assert_eq!(joined, b);

    // The header a device verifies first, and the tail.
    let head = c
        .download(
            &token(1),
            &id,
            Some(&format!("bytes=0-{}", bundle::MAX_HEADER_LEN - 1)),
        )
        .await;
    assert_eq!(head.body, b[..bundle::MAX_HEADER_LEN]);
    let tail = c.download(&token(1), &id, Some("bytes=-10")).await;
    assert_eq!(tail.body, b[b.len() - 10..]);

    // Past the end: 416 with the length.
    let r = c
        .download(&token(1), &id, Some(&format!("bytes={}-", b.len())))
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{}", b.len()).as_str())
    );
    // Several ranges are not supported: the whole bundle comes back.
    let r = c.download(&token(1), &id, Some("bytes=0-1,5-6")).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, b.len()));

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn all_state_survives_a_restart() {
    let dir = data_dir("restart");
    let b = device_bundle(3, 50_000);
    let id = bundle_id(&b);
    let sha = bundle::sha256(&b);
    let before = {
        let server = TestServer::start(&dir).await;
        let mut c = server.conn().await;
        c.publish(&b).await;
        c.provision("dev-1", &token(1), Some("lab")).await;
        c.assign("group:lab", &id).await;
        let reports = vec![
            Report::Installed { bundle_sha256: sha },
            Report::Confirmed { bundle_sha256: sha },
        ];
        c.check_in(&token(1), &check_in_msg("dev-1", Some(&b), reports))
            .await;
        // A plain poll is saved too, if not waited for.
        c.check_in(&token(1), &check_in_msg("dev-1", Some(&b), vec![]))
            .await;
        let d = c.device("dev-1").await;
        server.stop().await;
        d
    };
    assert_eq!(before["check_ins"], 2);

    let server = TestServer::start(&dir).await;
    let mut c = server.conn().await;
    assert_eq!(c.device("dev-1").await, before);
    let r = c.admin(Method::GET, "/api/v1/bundles", Bytes::new()).await;
    assert_eq!(r.json()[0]["id"], id.as_str());
    let r = c
        .admin(Method::GET, "/api/v1/assignments/group:lab", Bytes::new())
        .await;
    assert_eq!(r.json()["bundle"], id.as_str());
    // The device's token still works and the bundle is still served, from its file.
    c.provision("dev-2", &token(2), Some("lab")).await;
    let reply = c
        .check_in(&token(2), &check_in_msg("dev-2", None, vec![]))
        .await;
    assert_eq!(reply.assignment.unwrap().bundle_id, id);
    let r = c.download(&token(2), &id, Some("bytes=100-")).await;
    assert_eq!(r.body, b[100..]);
    server.stop().await;

    // A second server on the same data dir is refused while one runs.
    let server = TestServer::start(&dir).await;
    let second = tern_server::Server::open(&dir, config());
    assert!(
        matches!(second, Err(tern_server::Error::InUse { .. })),
        "{second:?}"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_bad_configuration_is_refused_with_the_fix() {
    let dir = data_dir("config");
    let short = tern_server::Config::new("short", BOARDS);
    let e = tern_server::Server::open(&dir, short)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("admin token") && e.contains("openssl rand"),
        "{e}"
    );
    let none = tern_server::Config::new(ADMIN_TOKEN, &[]);
    let e = tern_server::Server::open(&dir, none)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tern_host::boards::ALL"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let dir = data_dir("routes");
    let server = TestServer::start(&dir).await;
    let mut c = server.conn().await;
    let r = c
        .send(Method::GET, "/healthz", None, &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c.send(Method::GET, "/nope", None, &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c
        .admin(Method::DELETE, "/api/v1/bundles", Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = c
        .send(Method::GET, "/device/v1/check-in", None, &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = c
        .admin(
            Method::PUT,
            "/api/v1/devices/bad%20id",
            r#"{"token":"0123456789abcdef"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c
        .admin(Method::PUT, "/api/v1/devices/d", r#"{"token":"short"}"#)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("16"), "{}", r.error());
    let r = c
        .admin(
            Method::PUT,
            "/api/v1/devices/d",
            r#"{"tokn":"0123456789abcdef"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn devices_can_be_provisioned_through_the_library() {
    let dir = data_dir("library");
    {
        let server = tern_server::Server::open(&dir, config()).unwrap();
        assert!(
            server
                .provision_device("gw-1", &token(1), Some("site-a"))
                .await
                .unwrap()
        );
        assert!(
            !server
                .provision_device("gw-1", &token(9), Some("site-b"))
                .await
                .unwrap()
        );
        let e = server
            .provision_device("gw 2", &token(2), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a valid device id"), "{e}");
    }
    let server = TestServer::start(&dir).await;
    let mut c = server.conn().await;
    assert_eq!(c.device("gw-1").await["group"], "site-b");
    // The old token was replaced.
    let msg = check_in_msg("gw-1", None, vec![]);
    assert_eq!(
        c.check_in_raw(&token(1), &msg).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(c.check_in_raw(&token(9), &msg).await.status, StatusCode::OK);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// One client that holds connections half-open (half a request head each, never the
/// rest) and reconnects as soon as one is closed, from 17 addresses, more than the
/// server's table holds, cannot take the fleet offline: a device at another address
/// gets `/healthz` answered and checks in, again and again, while it goes on.
/// Before the connection table, 4,200 such connections from one address made the
/// server refuse every new connection until the 30 s header timeout freed them.
#[tokio::test]
async fn a_client_holding_half_open_connections_does_not_take_the_fleet_offline() {
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = data_dir("half-open");
    let mut config = config();
    config.max_connections = 64;
    config.max_connections_per_peer = 16;
    let server = TestServer::start_with(&dir, config).await;
    let mut admin = server.conn().await;
    assert_eq!(
        admin.provision("dev-1", &token(1), None).await.status,
        StatusCode::CREATED
    );
    drop(admin);

    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    // One address with 40 connections, over its limit of 16, and 16 addresses with 8
    // each, under theirs but together over the server's 64: both limits are reached.
    let crowd = (10..26).map(|last| (last, 8));
    for (last, n) in std::iter::once((1, 40)).chain(crowd) {
        for _ in 0..n {
            let (stop, opened, addr) = (stop.clone(), opened.clone(), server.addr);
            attackers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let socket = tokio::net::TcpSocket::new_v4().unwrap();
                    socket
                        .bind((Ipv4Addr::new(127, 0, 0, last), 0).into())
                        .unwrap();
                    let Ok(mut s) = socket.connect(addr).await else {
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
                    // Held until the server closes it (or the test ends).
                    let mut buf = [0u8; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let read = tokio::time::timeout(
                            std::time::Duration::from_millis(100),
                            s.read(&mut buf),
                        );
                        if let Ok(Ok(0) | Err(_)) = read.await {
                            break;
                        }
                    }
                }
            }));
        }
    }
    // Let the client fill the table.
    while opened.load(Ordering::Relaxed) < 400 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let deadline = std::time::Duration::from_secs(10);
    let from = Ipv4Addr::new(127, 0, 0, 2);
    for _ in 0..5 {
        let reply = tokio::time::timeout(deadline, async {
            let mut c = Conn::connect_from(server.addr, from).await;
            let health = c.send(Method::GET, "/healthz", None, &[], "").await;
            assert_eq!(health.status, StatusCode::OK);
            c.check_in(&token(1), &check_in_msg("dev-1", None, vec![]))
                .await
        })
        .await
        .unwrap_or_else(|_| panic!("no check-in from {from} within {deadline:?}"));
        // Answered (`check_in` asserts 200): nothing assigned, the server's pace.
        assert!(reply.assignment.is_none(), "from {from}: {reply:?}");
        assert_eq!(reply.poll_after_ms, 5_000, "from {from}");
    }
    // It kept reconnecting the whole time: far more connections than the table holds.
    assert!(opened.load(Ordering::Relaxed) > 64 * 2);

    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }
    server.stop().await;
}
