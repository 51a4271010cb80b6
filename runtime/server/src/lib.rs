//! Tern's fleet server: stores signed bundles, assigns them to devices and groups,
//! serves resumable downloads and collects what devices report.
//!
//! ```no_run
//! # async fn run() -> Result<(), tern_server::Error> {
//! # static BOARDS: &[&tern_core::board::BoardTable] = &[];
//! let config = tern_server::Config::new("an admin token of 16+ chars", BOARDS);
//! let server = tern_server::Server::open("/var/lib/tern", config)?;
//! server.provision_device("gw-1", "a device token of 16+", Some("site-a")).await?;
//! let listener = tern_server::bind("127.0.0.1:7878".parse().unwrap()).await?;
//! // Serve until the shutdown future resolves (a signal, in the CLI).
//! server.serve(listener, std::future::pending()).await
//! # }
//! ```
//!
//! The HTTP API and the device protocol are specified in `docs/protocol.md`; the
//! device messages are `tern_core::protocol`. State lives in the data dir: one redb
//! file (`tern.redb`: bundle records, devices, status, history, assignments) and the
//! bundles themselves (`bundles/<id>.tern`). The server logs through `tracing`; the
//! caller installs a subscriber.
#![forbid(unsafe_code)]

mod api;
mod conns;
mod error;
mod files;
mod fleet;
mod range;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tern_core::board::BoardTable;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use api::{MAX_BUNDLE_LEN, MAX_JSON_LEN, MAX_TOKEN_LEN, MIN_TOKEN_LEN};
pub use error::{ApiError, Error};

use crate::files::Files;
use crate::fleet::{BundleInfo, Fleet};
use crate::store::Store;

/// How the server runs. Build it with [`Config::new`] and adjust the fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The token admin requests must carry (`Authorization: Bearer <token>`), at
    /// least [`MIN_TOKEN_LEN`] printable ASCII characters. Only its SHA-256 is kept.
    pub admin_token: String,
    /// The boards the server knows: their trust keys decide which bundles it accepts,
    /// and their policies which devices are offered what. The `tern` CLI passes
    /// `tern_host::boards::ALL`.
    pub boards: &'static [&'static BoardTable],
    /// What check-in replies tell devices to wait before the next check-in.
    /// Default: 60 s.
    pub poll_after_ms: u32,
    /// Reports kept per device, newest last. Default: 32.
    pub history_len: usize,
    /// Bundle bytes kept in memory for downloads. Default: 64 MiB.
    pub cache_bytes: usize,
    /// Open connections at most. A new one beyond it takes the place of the
    /// connection idle the longest (one with no request in progress: half-open, or
    /// between keep-alive requests), or is closed at once if every one is busy.
    /// Default: 4096.
    pub max_connections: usize,
    /// Open connections from one IP address at most, with the same rule among that
    /// address's connections, so that one client cannot fill the table. Devices
    /// behind one NAT share an address: give at least as many as check in at once.
    /// Default: 256.
    pub max_connections_per_peer: usize,
    /// How long shutdown waits for open requests to finish. Default: 10 s.
    pub shutdown_grace: Duration,
}

impl Config {
    /// [`Config::max_connections`]'s default.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
    /// [`Config::max_connections_per_peer`]'s default.
    pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 256;

    /// The defaults, with the admin token and the known boards.
    pub fn new(admin_token: impl Into<String>, boards: &'static [&'static BoardTable]) -> Config {
        Config {
            admin_token: admin_token.into(),
            boards,
            poll_after_ms: 60_000,
            history_len: 32,
            cache_bytes: 64 * 1024 * 1024,
            max_connections: Config::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: Config::DEFAULT_MAX_CONNECTIONS_PER_PEER,
            shutdown_grace: Duration::from_secs(10),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        api::valid_token(&self.admin_token)
            .map_err(|e| Error::Config(format!("admin token: {e}")))?;
        if self.boards.is_empty() {
            return Err(Error::Config(
                "no boards: the server needs the board tables whose trust keys decide what it accepts (the CLI passes tern_host::boards::ALL)"
                    .into(),
            ));
        }
        if self.poll_after_ms == 0
            || self.history_len == 0
            || self.max_connections == 0
            || self.max_connections_per_peer == 0
        {
            return Err(Error::Config(
                "poll_after_ms, history_len, max_connections and max_connections_per_peer must be above 0"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("admin_token", &"<redacted>")
            .field(
                "boards",
                &self.boards.iter().map(|b| b.name()).collect::<Vec<_>>(),
            )
            .field("poll_after_ms", &self.poll_after_ms)
            .field("history_len", &self.history_len)
            .field("cache_bytes", &self.cache_bytes)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

/// What every request handler shares.
pub(crate) struct Shared {
    config: Config,
    admin_token_sha256: [u8; 32],
    fleet: Mutex<Fleet>,
    store: Store,
    files: Files,
    data_dir: PathBuf,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A fleet server with its state loaded, ready to [`serve`](Server::serve).
pub struct Server {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("data_dir", &self.shared.data_dir)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the data dir (creating it if needed), loads every record and re-judges
    /// every stored bundle against `config.boards`. Blocking: call it before serving,
    /// or from `spawn_blocking`. Fails if another server has the dir open.
    pub fn open(data_dir: impl AsRef<Path>, config: Config) -> Result<Server, Error> {
        config.validate()?;
        let data_dir = data_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&data_dir).map_err(|source| Error::Io {
            path: data_dir.clone(),
            action: "create the data dir",
            source,
        })?;
        let (store, loaded) = Store::open(&data_dir)?;
        let files = Files::open(&data_dir, config.cache_bytes)?;
        let boards = config.boards;
        let fleet = Fleet::load(&loaded, |id, record| {
            let sha = tern_core::protocol::parse_bundle_id(id)
                .ok_or_else(|| format!("`{id}` is not a bundle id"))?;
            let header = files.read_header(id, record.len)?;
            Ok(BundleInfo::new(sha, record, header, boards))
        })
        .map_err(|reason| Error::Store {
            path: store.path().to_path_buf(),
            reason,
        })?;
        tracing::info!(
            data_dir = %data_dir.display(),
            bundles = fleet.bundles.len(),
            devices = fleet.devices.len(),
            assignments = fleet.assignments.len(),
            "fleet state loaded"
        );
        let admin_token_sha256 = tern_core::bundle::sha256(config.admin_token.as_bytes());
        Ok(Server {
            shared: Arc::new(Shared {
                config,
                admin_token_sha256,
                fleet: Mutex::new(fleet),
                store,
                files,
                data_dir,
            }),
        })
    }

    /// Provisions (or re-provisions, replacing its token and group) device `id`, as
    /// `PUT /api/v1/devices/{id}` does. Returns whether the device is new.
    pub async fn provision_device(
        &self,
        id: &str,
        token: &str,
        group: Option<&str>,
    ) -> Result<bool, Error> {
        api::provision(&self.shared, id, token, group.map(str::to_string))
            .await
            .map_err(Error::Rejected)
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` resolves; then stops accepting,
    /// lets open requests finish for up to [`Config::shutdown_grace`], commits what
    /// is queued and closes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let shared = self.shared;
        let addr = listener.local_addr().ok();
        tracing::info!(addr = ?addr, "fleet server listening");
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .keep_alive(true);
        let graceful = GracefulShutdown::new();
        let conns = conns::Conns::new(
            shared.config.max_connections,
            shared.config.max_connections_per_peer,
        );
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let id = match conns.admit(peer.ip()) {
                        conns::Admission::Admitted { id, evicted } => {
                            if let Some(task) = evicted {
                                tracing::debug!(%peer, "connection limit: closing the idlest idle connection");
                                task.abort();
                            }
                            id
                        }
                        conns::Admission::Refused(why) => {
                            tracing::warn!(%peer, why, "connection refused");
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = {
                        let (shared, conns) = (shared.clone(), conns.clone());
                        service_fn(move |req| {
                            // Busy from the whole head to the end of the response body.
                            let busy = conns.busy(id);
                            let shared = shared.clone();
                            async move {
                                let resp = api::handle(shared, req).await?;
                                Ok::<_, std::convert::Infallible>(resp.map(|inner| conns::Tracked {
                                    inner,
                                    _busy: busy,
                                }))
                            }
                        })
                    };
                    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    let open = conns::OpenGuard { conns: conns.clone(), id };
                    let task = connections.spawn(async move {
                        let _open = open;
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                    conns.spawned(id, task);
                }
            }
        }
        drop(listener);
        tracing::info!(
            open = connections.len(),
            "shutting down: no new connections"
        );
        let grace = shared.config.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                open = connections.len(),
                "connections still open after the grace period; closing them"
            );
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        let closing = shared.clone();
        let _ = tokio::task::spawn_blocking(move || closing.store.close()).await;
        tracing::info!("fleet server stopped");
        Ok(())
    }
}

/// Binds a TCP listener on `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// Opens `data_dir` with `config` and serves on `listener` until `shutdown`
/// resolves: [`Server::open`] then [`Server::serve`].
pub async fn serve(
    listener: TcpListener,
    data_dir: impl AsRef<Path>,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let dir = data_dir.as_ref().to_path_buf();
    let server = tokio::task::spawn_blocking(move || Server::open(dir, config))
        .await
        .map_err(|e| Error::Config(format!("startup task failed: {e}")))??;
    server.serve(listener, shutdown).await
}
