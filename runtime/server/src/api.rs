//! The HTTP API: routing, authentication, and one handler per endpoint. Admin
//! endpoints speak JSON; device endpoints speak postcard (`tern_core::protocol`).
//! Every endpoint is described in `docs/protocol.md`.

use std::convert::Infallible;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tern_core::Grant;
use tern_core::bundle::{self, MAX_HEADER_LEN, MAX_PAYLOAD_LEN, Target};
use tern_core::protocol::{self, CheckIn, CheckInReply, PROTOCOL_VERSION};
use tern_core::wit::hex_bytes;

use crate::error::ApiError;
use crate::fleet::{
    AssignTarget, AssignmentRecord, BundleInfo, BundleRecord, Device, Fleet, History, OfferState,
    Refusal,
};
use crate::range::{self, RangeSpec};
use crate::store::committed;
use crate::{Shared, now_ms};

/// Largest request body on a bundle upload: the largest header and payload.
pub const MAX_BUNDLE_LEN: usize = MAX_HEADER_LEN + MAX_PAYLOAD_LEN as usize;
/// Largest JSON request body on the admin API.
pub const MAX_JSON_LEN: usize = 4096;
/// Shortest accepted token (admin or device).
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest accepted token.
pub const MAX_TOKEN_LEN: usize = 256;
/// How long a small request body may take to arrive.
const SMALL_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a bundle upload may take to arrive.
const BUNDLE_BODY_TIMEOUT: Duration = Duration::from_secs(600);

/// The response type of every handler.
pub(crate) type Resp = Response<Full<Bytes>>;

/// Entry point for every request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = route(&shared, req)
        .await
        .unwrap_or_else(|e| error_response(&e));
    let status = response.status();
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), "request failed");
    } else {
        tracing::trace!(%method, %path, status = status.as_u16(), "request");
    }
    Ok(response)
}

fn method_not_allowed(allow: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed here; use {allow}"),
    )
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let m = req.method().clone();
    match segments.as_slice() {
        ["healthz"] => Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))),
        ["device", "v1", "check-in"] => match m {
            Method::POST => check_in(shared, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["device", "v1", "bundles", id] => match m {
            Method::GET => download(shared, req, id).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["api", "v1", rest @ ..] => {
            admin(shared, &req)?;
            match (rest, m) {
                (["bundles"], Method::POST) => publish(shared, req).await,
                (["bundles"], Method::GET) => Ok(list_bundles(shared)),
                (["bundles"], _) => Err(method_not_allowed("GET, POST")),
                (["bundles", id], Method::GET) => get_bundle(shared, id),
                (["bundles", _], _) => Err(method_not_allowed("GET")),
                (["assignments"], Method::GET) => Ok(list_assignments(shared)),
                (["assignments"], _) => Err(method_not_allowed("GET")),
                (["assignments", t], Method::PUT) => assign(shared, req, t).await,
                (["assignments", t], Method::GET) => get_assignment(shared, t),
                (["assignments", t], Method::DELETE) => unassign(shared, t).await,
                (["assignments", _], _) => Err(method_not_allowed("GET, PUT, DELETE")),
                (["devices"], Method::GET) => Ok(list_devices(shared)),
                (["devices"], _) => Err(method_not_allowed("GET")),
                (["devices", id], Method::GET) => get_device(shared, id),
                (["devices", id], Method::PUT) => put_device(shared, req, id).await,
                (["devices", _], _) => Err(method_not_allowed("GET, PUT")),
                _ => Err(ApiError::not_found(format!("no endpoint {path}"))),
            }
        }
        _ => Err(ApiError::not_found(format!(
            "no endpoint {path}; see docs/protocol.md"
        ))),
    }
}

// ---------------------------------------------------------------------------
// Plumbing: responses, bodies, authentication.

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, value: &impl Serialize) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    respond(status, "application/json", Bytes::from(body))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    details: &'a [String],
}

fn error_response(e: &ApiError) -> Resp {
    let mut r = json(
        e.status,
        &ErrorBody {
            error: &e.message,
            details: &e.details,
        },
    );
    if e.status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tern\""),
        );
    }
    r
}

/// Reads a whole body of at most `limit` bytes within `timeout`.
async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the {limit}-byte limit"),
        )
    };
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body did not arrive within {} s", timeout.as_secs()),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "request body could not be read: {e}"
        ))),
    }
}

/// Rejects a body whose declared length is over `limit` before reading it.
fn check_length(req: &Request<Incoming>, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {n} bytes is larger than the {limit}-byte limit"),
        )),
        _ => Ok(()),
    }
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        format!("missing or wrong {what} token: send `Authorization: Bearer <token>`"),
    )
}

/// Compares two digests without an early exit.
fn digest_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn admin(shared: &Shared, req: &Request<Incoming>) -> Result<(), ApiError> {
    let ok = bearer(req)
        .is_some_and(|t| digest_eq(&bundle::sha256(t.as_bytes()), &shared.admin_token_sha256));
    if ok {
        Ok(())
    } else {
        tracing::warn!(
            path = req.uri().path(),
            "admin request with a missing or wrong token"
        );
        Err(unauthorized("admin"))
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Fleet> {
    // A panic while holding the lock leaves plain data behind; carry on with it.
    shared
        .fleet
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The device whose token the request carries.
fn device(shared: &Shared, req: &Request<Incoming>) -> Result<String, ApiError> {
    let token = bearer(req).ok_or_else(|| unauthorized("device"))?;
    let sha = bundle::sha256(token.as_bytes());
    let id = lock(shared).tokens.get(&sha).cloned();
    id.ok_or_else(|| {
        tracing::warn!(
            path = req.uri().path(),
            "device request with an unknown token"
        );
        unauthorized("device")
    })
}

fn check_store(shared: &Shared) -> Result<(), ApiError> {
    if shared.store.failed() {
        Err(ApiError::store_failed(
            "an earlier write to the store failed",
        ))
    } else {
        Ok(())
    }
}

fn valid_id(kind: &str, id: &str) -> Result<(), ApiError> {
    if protocol::valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "`{id}` is not a valid {kind}: use 1 to 64 letters, digits, '-', '_' and '.'"
        )))
    }
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not the expected JSON: {e}")))
}

// ---------------------------------------------------------------------------
// Views: the JSON the admin API returns.

#[derive(Serialize)]
struct ManifestView<'a> {
    name: &'a str,
    version: String,
    security_counter: u64,
    targets: &'a [Target],
    capabilities: &'a Grant,
    payload_len: u32,
    payload_sha256: String,
    wit: &'a str,
}

#[derive(Serialize)]
struct BoardView {
    board: &'static str,
    trusted: bool,
    installable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct BundleView<'a> {
    id: &'a str,
    len: u32,
    uploaded_at_ms: u64,
    manifest: ManifestView<'a>,
    signatures: Vec<String>,
    trusted_by: Vec<&'static str>,
    boards: Vec<BoardView>,
}

fn bundle_view(b: &BundleInfo) -> BundleView<'_> {
    let m = &b.header.manifest;
    BundleView {
        id: &b.id,
        len: b.record.len,
        uploaded_at_ms: b.record.uploaded_at_ms,
        manifest: ManifestView {
            name: &m.name,
            version: m.version.to_string(),
            security_counter: m.security_counter,
            targets: &m.targets,
            capabilities: &m.capabilities,
            payload_len: m.payload_len,
            payload_sha256: hex_bytes::encode(&m.payload_sha256),
            wit: &m.wit,
        },
        signatures: b
            .header
            .signatures
            .iter()
            .map(|s| hex_bytes::encode(&s.key_id))
            .collect(),
        trusted_by: b.trusted_by().collect(),
        boards: b
            .verdicts
            .iter()
            .map(|v| BoardView {
                board: v.board,
                trusted: v.signatures.is_none(),
                installable: v.install.is_none(),
                reason: v.signatures.clone().or_else(|| v.install.clone()),
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct InstalledView<'a> {
    name: &'a str,
    version: String,
    security_counter: u64,
    bundle: &'a str,
}

#[derive(Serialize)]
struct AssignmentView<'a> {
    target: String,
    bundle: &'a str,
    assigned_at_ms: u64,
}

#[derive(Serialize)]
struct DeviceAssignmentView<'a> {
    target: String,
    bundle: &'a str,
    assigned_at_ms: u64,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct DeviceView<'a> {
    id: &'a str,
    group: Option<&'a str>,
    provisioned_at_ms: u64,
    board: Option<&'a str>,
    installed: Option<InstalledView<'a>>,
    last_check_in_ms: Option<u64>,
    check_ins: u64,
    assignment: Option<DeviceAssignmentView<'a>>,
    refused: Option<&'a Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<&'a History>,
}

fn device_view<'a>(
    shared: &Shared,
    fleet: &'a Fleet,
    id: &'a str,
    d: &'a Device,
    with_history: bool,
) -> DeviceView<'a> {
    let s = &d.status;
    let assignment = fleet.offer(id, shared.config.boards).map(|o| {
        let (state, reason) = match o.state {
            OfferState::UpToDate => ("up-to-date", None),
            OfferState::Offered => ("offered", None),
            OfferState::Blocked(r) => ("blocked", Some(r)),
            OfferState::Missing => (
                "missing",
                Some("the bundle's file is missing from the data dir".to_string()),
            ),
        };
        DeviceAssignmentView {
            target: o.target.key(),
            bundle: &o.assignment.bundle,
            assigned_at_ms: o.assignment.assigned_at_ms,
            state,
            reason,
        }
    });
    DeviceView {
        id,
        group: d.record.group.as_deref(),
        provisioned_at_ms: d.record.provisioned_at_ms,
        board: s.board.as_deref(),
        installed: s.installed.as_ref().map(|i| InstalledView {
            name: &i.name,
            version: i.version.to_string(),
            security_counter: i.security_counter,
            bundle: &i.bundle,
        }),
        last_check_in_ms: s.last_check_in_ms,
        check_ins: s.check_ins,
        assignment,
        refused: s.refused.as_ref(),
        history: with_history.then_some(&d.history),
    }
}

// ---------------------------------------------------------------------------
// Admin handlers.

async fn publish(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    check_length(&req, MAX_BUNDLE_LEN)?;
    let body = read_body(req.into_body(), MAX_BUNDLE_LEN, BUNDLE_BODY_TIMEOUT).await?;
    let boards = shared.config.boards;
    let parsed = body.clone();
    let info = tokio::task::spawn_blocking(move || {
        let (header, _) = bundle::parse(&parsed)
            .map_err(|e| ApiError::bad_request(format!("not a valid bundle: {e}")))?;
        let len = u32::try_from(parsed.len())
            .map_err(|_| ApiError::bad_request("bundle larger than 4 GiB"))?;
        let record = BundleRecord {
            len,
            uploaded_at_ms: now_ms(),
        };
        Ok::<_, ApiError>(BundleInfo::new(
            bundle::sha256(&parsed),
            record,
            header,
            boards,
        ))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;

    if let Some(existing) = lock(shared).bundles.get(&info.id) {
        return Ok(json(StatusCode::OK, &bundle_view(existing)));
    }
    if let Some((message, details)) = info.refusal(boards) {
        tracing::warn!(bundle = %info.id, reason = %message, "bundle refused");
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message,
            details,
        });
    }
    check_store(shared)?;
    let id = info.id.clone();
    {
        let shared = shared.clone();
        let id = id.clone();
        let bytes = body.clone();
        tokio::task::spawn_blocking(move || shared.files.write(&id, &bytes))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| {
                tracing::error!(error = %e, "bundle file not written");
                ApiError::store_failed(&e.to_string())
            })?;
    }
    shared.files.cache(&id, body);
    let (name, version) = (
        info.header.manifest.name.clone(),
        info.header.manifest.version,
    );
    let ack = {
        let mut fleet = lock(shared);
        if fleet.bundles.contains_key(&id) {
            // Published concurrently by another request: same bytes, same file.
            None
        } else {
            Some(shared.store.write_acked(fleet.add_bundle(info)))
        }
    };
    if let Some(ack) = ack {
        committed(ack)
            .await
            .map_err(|e| ApiError::store_failed(&e))?;
        tracing::info!(bundle = %id, %name, %version, "bundle published");
    }
    let fleet = lock(shared);
    let b = fleet
        .bundles
        .get(&id)
        .ok_or_else(|| ApiError::not_found("bundle vanished"))?;
    let mut r = json(StatusCode::CREATED, &bundle_view(b));
    r.headers_mut().insert(
        header::LOCATION,
        header_value(&format!("/api/v1/bundles/{id}")),
    );
    Ok(r)
}

fn list_bundles(shared: &Shared) -> Resp {
    let fleet = lock(shared);
    let mut all: Vec<&BundleInfo> = fleet.bundles.values().collect();
    all.sort_by(|a, b| (a.record.uploaded_at_ms, &a.id).cmp(&(b.record.uploaded_at_ms, &b.id)));
    let views: Vec<BundleView<'_>> = all.into_iter().map(bundle_view).collect();
    json(StatusCode::OK, &views)
}

fn get_bundle(shared: &Shared, id: &str) -> Result<Resp, ApiError> {
    let fleet = lock(shared);
    let b = fleet
        .bundles
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no bundle `{id}`")))?;
    Ok(json(StatusCode::OK, &bundle_view(b)))
}

fn parse_target(t: &str) -> Result<AssignTarget, ApiError> {
    AssignTarget::parse(t).map_err(ApiError::bad_request)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    bundle: String,
}

async fn assign(shared: &Shared, req: Request<Incoming>, t: &str) -> Result<Resp, ApiError> {
    let target = parse_target(t)?;
    check_length(&req, MAX_JSON_LEN)?;
    let body = read_body(req.into_body(), MAX_JSON_LEN, SMALL_BODY_TIMEOUT).await?;
    let AssignBody { bundle } = parse_json(&body)?;
    check_store(shared)?;
    let record = AssignmentRecord {
        bundle,
        assigned_at_ms: now_ms(),
    };
    let ack = {
        let mut fleet = lock(shared);
        if !fleet.bundles.contains_key(&record.bundle) {
            return Err(ApiError::not_found(format!(
                "no bundle `{}`; publish it first (POST /api/v1/bundles)",
                record.bundle
            )));
        }
        if let AssignTarget::Device(d) = &target
            && !fleet.devices.contains_key(d)
        {
            return Err(ApiError::not_found(format!(
                "no device `{d}`; provision it first (PUT /api/v1/devices/{d})"
            )));
        }
        shared
            .store
            .write_acked(fleet.assign(target.clone(), record.clone()))
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::store_failed(&e))?;
    tracing::info!(target = %target.key(), bundle = %record.bundle, "assignment set");
    Ok(json(
        StatusCode::OK,
        &AssignmentView {
            target: target.key(),
            bundle: &record.bundle,
            assigned_at_ms: record.assigned_at_ms,
        },
    ))
}

fn get_assignment(shared: &Shared, t: &str) -> Result<Resp, ApiError> {
    let target = parse_target(t)?;
    let fleet = lock(shared);
    let a = fleet
        .assignments
        .get(&target)
        .ok_or_else(|| ApiError::not_found(format!("no assignment for `{t}`")))?;
    Ok(json(
        StatusCode::OK,
        &AssignmentView {
            target: target.key(),
            bundle: &a.bundle,
            assigned_at_ms: a.assigned_at_ms,
        },
    ))
}

async fn unassign(shared: &Shared, t: &str) -> Result<Resp, ApiError> {
    let target = parse_target(t)?;
    check_store(shared)?;
    let ack = {
        let mut fleet = lock(shared);
        let puts = fleet
            .unassign(&target)
            .ok_or_else(|| ApiError::not_found(format!("no assignment for `{t}`")))?;
        shared.store.write_acked(puts)
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::store_failed(&e))?;
    tracing::info!(target = %target.key(), "assignment removed");
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

fn list_assignments(shared: &Shared) -> Resp {
    let fleet = lock(shared);
    let mut all: Vec<(&AssignTarget, &AssignmentRecord)> = fleet.assignments.iter().collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    let views: Vec<AssignmentView<'_>> = all
        .into_iter()
        .map(|(t, a)| AssignmentView {
            target: t.key(),
            bundle: &a.bundle,
            assigned_at_ms: a.assigned_at_ms,
        })
        .collect();
    json(StatusCode::OK, &views)
}

fn list_devices(shared: &Shared) -> Resp {
    let fleet = lock(shared);
    let mut ids: Vec<&String> = fleet.devices.keys().collect();
    ids.sort();
    let views: Vec<DeviceView<'_>> = ids
        .into_iter()
        .filter_map(|id| {
            let d = fleet.devices.get(id)?;
            Some(device_view(shared, &fleet, id, d, false))
        })
        .collect();
    json(StatusCode::OK, &views)
}

fn get_device(shared: &Shared, id: &str) -> Result<Resp, ApiError> {
    let fleet = lock(shared);
    let (id, d) = fleet
        .devices
        .get_key_value(id)
        .ok_or_else(|| ApiError::not_found(format!("no device `{id}`")))?;
    Ok(json(
        StatusCode::OK,
        &device_view(shared, &fleet, id, d, true),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionBody {
    token: String,
    #[serde(default)]
    group: Option<String>,
}

/// Checks a token's length and characters.
pub(crate) fn valid_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
        return Err(format!(
            "a token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters (it is {}); generate one with `openssl rand -hex 16`",
            token.len()
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token must be printable ASCII without spaces".to_string());
    }
    Ok(())
}

/// Provisions device `id`; `Ok(true)` if it is new. Shared by the endpoint and
/// [`crate::Server::provision_device`].
pub(crate) async fn provision(
    shared: &Shared,
    id: &str,
    token: &str,
    group: Option<String>,
) -> Result<bool, ApiError> {
    valid_id("device id", id)?;
    valid_token(token).map_err(ApiError::bad_request)?;
    if let Some(g) = &group {
        valid_id("group name", g)?;
    }
    check_store(shared)?;
    let sha = bundle::sha256(token.as_bytes());
    let (created, ack) = {
        let mut fleet = lock(shared);
        let (created, puts) = fleet
            .provision(id, sha, group.clone(), now_ms())
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
        (created, shared.store.write_acked(puts))
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::store_failed(&e))?;
    tracing::info!(device = %id, group = ?group, created, "device provisioned");
    Ok(created)
}

async fn put_device(shared: &Shared, req: Request<Incoming>, id: &str) -> Result<Resp, ApiError> {
    check_length(&req, MAX_JSON_LEN)?;
    let body = read_body(req.into_body(), MAX_JSON_LEN, SMALL_BODY_TIMEOUT).await?;
    let ProvisionBody { token, group } = parse_json(&body)?;
    let created = provision(shared, id, &token, group).await?;
    let fleet = lock(shared);
    let (id, d) = fleet
        .devices
        .get_key_value(id)
        .ok_or_else(|| ApiError::not_found("device vanished"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &device_view(shared, &fleet, id, d, false)))
}

// ---------------------------------------------------------------------------
// Device handlers.

fn postcard(status: StatusCode, body: Vec<u8>) -> Resp {
    respond(status, "application/postcard", Bytes::from(body))
}

async fn check_in(shared: &Shared, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let id = device(shared, &req)?;
    check_length(&req, protocol::MAX_CHECK_IN_LEN)?;
    let body = read_body(
        req.into_body(),
        protocol::MAX_CHECK_IN_LEN,
        SMALL_BODY_TIMEOUT,
    )
    .await?;
    let msg = CheckIn::decode(&body)
        .map_err(|e| ApiError::bad_request(format!("check-in refused: {e}")))?;
    if msg.device != id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the token is device `{id}`'s but the check-in names `{}`",
                msg.device
            ),
        ));
    }
    check_store(shared)?;
    let now = now_ms();
    let (reply, ack) = {
        let mut fleet = lock(shared);
        let (puts, wait) = fleet
            .check_in(&id, &msg, now, shared.config.history_len)
            .ok_or_else(|| unauthorized("device"))?;
        let assignment = fleet
            .offer(&id, shared.config.boards)
            .filter(|o| o.state == OfferState::Offered)
            .and_then(|o| o.bundle)
            .map(|b| protocol::Assignment {
                bundle_id: b.id.clone(),
                len: b.record.len,
                sha256: b.sha256,
                security_counter: b.header.manifest.security_counter,
                name: b.header.manifest.name.clone(),
                version: b.header.manifest.version,
            });
        let ack = if wait {
            Some(shared.store.write_acked(puts))
        } else {
            shared.store.write(puts);
            None
        };
        let reply = CheckInReply {
            version: PROTOCOL_VERSION,
            assignment,
            poll_after_ms: shared.config.poll_after_ms,
        };
        (reply, ack)
    };
    if let Some(ack) = ack {
        committed(ack)
            .await
            .map_err(|e| ApiError::store_failed(&e))?;
    }
    for r in &msg.reports {
        tracing::info!(
            device = %id,
            bundle = %r.bundle_sha256().map(protocol::bundle_id).unwrap_or_default(),
            outcome = r.outcome(),
            reason = r.reason().unwrap_or(""),
            "device report"
        );
    }
    tracing::debug!(
        device = %id,
        offered = reply.assignment.as_ref().map(|a| a.bundle_id.as_str()),
        "check-in"
    );
    let body = reply.encode().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reply does not encode: {e}"),
        )
    })?;
    Ok(postcard(StatusCode::OK, body))
}

async fn download(shared: &Shared, req: Request<Incoming>, id: &str) -> Result<Resp, ApiError> {
    let device = device(shared, &req)?;
    let sha = {
        let fleet = lock(shared);
        let b = fleet
            .bundles
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("no bundle `{id}`")))?;
        let assigned = fleet
            .effective(&device)
            .is_some_and(|(_, a)| a.bundle == id);
        if !assigned {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "bundle `{id}` is not assigned to device `{device}`; check in for the current assignment"
                ),
            ));
        }
        b.sha256
    };
    let bytes = shared.files.get(id, sha).await.map_err(|e| {
        tracing::error!(bundle = %id, error = %e, "bundle not readable");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e)
    })?;
    let len = bytes.len() as u64;
    let spec = range::parse(
        req.headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok()),
        len,
    );
    let mut r = match spec {
        RangeSpec::Full => respond(StatusCode::OK, "application/octet-stream", bytes),
        RangeSpec::Partial { start, end } => {
            // `range::parse` keeps start <= end < len, so the casts are in range.
            let part = bytes.slice(start as usize..=end as usize);
            let mut r = respond(
                StatusCode::PARTIAL_CONTENT,
                "application/octet-stream",
                part,
            );
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{len}")),
            );
            r
        }
        RangeSpec::Unsatisfiable => {
            let mut r = error_response(&ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range starts past the end of the {len}-byte bundle"),
            ));
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{len}")),
            );
            r
        }
    };
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, header_value(&format!("\"{id}\"")));
    tracing::debug!(%device, bundle = %id, ?spec, "download");
    Ok(r)
}
