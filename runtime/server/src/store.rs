//! The durable store: the fleet's records in one redb file, written by one thread that
//! commits whatever has queued up in one transaction (group commit).
//!
//! The in-memory [`crate::fleet::Fleet`] is the source of truth while the server runs;
//! every change to it is queued here, in the order it was made, as whole records
//! (JSON). A request whose change must survive a crash waits for the commit that
//! contains it, so one fsync serves every request that arrived meanwhile. If a commit
//! fails the store refuses every later write: memory may then be ahead of the disk,
//! and a restart reloads the last committed state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::error::Error;

/// The store's file name inside the data dir.
pub(crate) const STORE_FILE: &str = "tern.redb";
/// The record layout this build reads and writes.
const SCHEMA_VERSION: u64 = 1;
/// Most queued messages folded into one commit.
const MAX_BATCH: usize = 8192;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// A table of records, each a JSON value under a string key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    /// Bundle id → `fleet::BundleRecord`.
    Bundles,
    /// Device id → `fleet::DeviceRecord` (provisioning: token hash, group).
    Devices,
    /// Device id → `fleet::Status` (what the device last said).
    Status,
    /// Device id → `fleet::History` (its reports).
    History,
    /// Target (`device:<id>` or `group:<name>`) → `fleet::AssignmentRecord`.
    Assignments,
}

impl Table {
    const ALL: [Table; 5] = [
        Table::Bundles,
        Table::Devices,
        Table::Status,
        Table::History,
        Table::Assignments,
    ];

    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Table::Bundles => "bundles",
            Table::Devices => "devices",
            Table::Status => "status",
            Table::History => "history",
            Table::Assignments => "assignments",
        })
    }
}

/// One record to write (`Some`) or delete (`None`).
#[derive(Debug)]
pub(crate) struct Put {
    /// The table.
    pub table: Table,
    /// The key.
    pub key: String,
    /// The JSON record, or `None` to delete it.
    pub value: Option<Vec<u8>>,
}

impl Put {
    /// A record to write.
    pub fn set(table: Table, key: &str, value: &impl serde::Serialize) -> Put {
        Put {
            table,
            key: key.to_string(),
            // The records are plain derived structs with string keys, which
            // serde_json always serializes.
            value: Some(serde_json::to_vec(value).unwrap_or_default()),
        }
    }

    /// A record to delete.
    pub fn delete(table: Table, key: &str) -> Put {
        Put {
            table,
            key: key.to_string(),
            value: None,
        }
    }
}

/// The outcome of the commit a write was part of.
pub(crate) type Ack = oneshot::Receiver<Result<(), String>>;

enum Msg {
    Write {
        puts: Vec<Put>,
        ack: Option<oneshot::Sender<Result<(), String>>>,
    },
    Close,
}

/// Every record in the store, read at open: table → (key, JSON) pairs.
pub(crate) type Loaded = HashMap<Table, Vec<(String, Vec<u8>)>>;

/// The handle the server writes through.
pub(crate) struct Store {
    path: PathBuf,
    tx: mpsc::Sender<Msg>,
    failed: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, reads every record, and starts the
    /// writer thread. Blocking.
    pub fn open(dir: &Path) -> Result<(Store, Loaded), Error> {
        let path = dir.join(STORE_FILE);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::InUse { path: path.clone() },
            e => store_error(&path, e),
        })?;
        let err = |e: redb::Error| store_error(&path, e);
        // Create the tables and check the schema in one transaction.
        let txn = db.begin_write().map_err(|e| err(e.into()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
            let schema = meta
                .get("schema")
                .map_err(|e| err(e.into()))?
                .map(|v| v.value());
            match schema {
                None => {
                    meta.insert("schema", SCHEMA_VERSION)
                        .map_err(|e| err(e.into()))?;
                }
                Some(SCHEMA_VERSION) => {}
                Some(other) => {
                    return Err(store_error(
                        &path,
                        format!(
                            "it holds records of schema version {other}, this build reads version {SCHEMA_VERSION}; use a matching tern-server"
                        ),
                    ));
                }
            }
            for t in Table::ALL {
                txn.open_table(t.definition()).map_err(|e| err(e.into()))?;
            }
        }
        txn.commit().map_err(|e| err(e.into()))?;

        let mut loaded = Loaded::new();
        let read = db.begin_read().map_err(|e| err(e.into()))?;
        for t in Table::ALL {
            let table = read.open_table(t.definition()).map_err(|e| err(e.into()))?;
            let mut rows = Vec::new();
            for row in table.iter().map_err(|e| err(e.into()))? {
                let (k, v) = row.map_err(|e| err(e.into()))?;
                rows.push((k.value().to_string(), v.value().to_vec()));
            }
            loaded.insert(t, rows);
        }
        drop(read);

        let (tx, rx) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let thread = {
            let failed = failed.clone();
            let path = path.clone();
            std::thread::Builder::new()
                .name("tern-store".into())
                .spawn(move || writer(db, rx, failed, path))
                .map_err(|e| Error::Io {
                    path: PathBuf::from("tern-store thread"),
                    action: "start",
                    source: e,
                })?
        };
        Ok((
            Store {
                path,
                tx,
                failed,
                thread: Mutex::new(Some(thread)),
            },
            loaded,
        ))
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an earlier commit failed (every write is then refused).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Queues `puts` for the next commit without waiting for it.
    pub fn write(&self, puts: Vec<Put>) {
        if !puts.is_empty() {
            let _ = self.tx.send(Msg::Write { puts, ack: None });
        }
    }

    /// Queues `puts` for the next commit; the returned receiver resolves once it is
    /// on disk (or failed).
    pub fn write_acked(&self, puts: Vec<Put>) -> Ack {
        let (ack, rx) = oneshot::channel();
        // If the writer has stopped, the message (and its sender) is dropped, and
        // `committed` reads that as "the store is closed".
        let _ = self.tx.send(Msg::Write {
            puts,
            ack: Some(ack),
        });
        rx
    }

    /// Commits what is queued, stops the writer and closes the file. Blocking.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// Awaits an [`Ack`]: `Err` with the reason if the commit failed or the store closed.
pub(crate) async fn committed(ack: Ack) -> Result<(), String> {
    ack.await
        .unwrap_or_else(|_| Err("the store is closed".to_string()))
}

fn writer(db: Database, rx: mpsc::Receiver<Msg>, failed: Arc<AtomicBool>, path: PathBuf) {
    let mut closing = false;
    while !closing {
        let Ok(first) = rx.recv() else {
            return;
        };
        let mut puts = Vec::new();
        let mut acks = Vec::new();
        let mut absorb = |m: Msg, closing: &mut bool| match m {
            Msg::Write { puts: p, ack } => {
                puts.extend(p);
                acks.extend(ack);
            }
            Msg::Close => *closing = true,
        };
        absorb(first, &mut closing);
        let mut n = 1;
        while !closing && n < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => absorb(m, &mut closing),
                Err(_) => break,
            }
            n += 1;
        }
        let result = if failed.load(Ordering::Acquire) {
            Err("an earlier write failed".to_string())
        } else if puts.is_empty() {
            Ok(())
        } else {
            let count = puts.len();
            let r = commit(&db, puts).map_err(|e| e.to_string());
            match &r {
                Ok(()) => tracing::trace!(records = count, "store commit"),
                Err(e) => {
                    failed.store(true, Ordering::Release);
                    tracing::error!(
                        store = %path.display(),
                        error = %e,
                        "store commit failed; refusing further changes until restart"
                    );
                }
            }
            r
        };
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }
}

fn commit(db: &Database, puts: Vec<Put>) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut tables = HashMap::new();
        for put in puts {
            let table = match tables.entry(put.table) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(txn.open_table(put.table.definition())?)
                }
            };
            match &put.value {
                Some(v) => {
                    table.insert(put.key.as_str(), v.as_slice())?;
                }
                None => {
                    table.remove(put.key.as_str())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tern-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn writes_survive_a_reopen_and_a_second_open_is_refused() {
        let dir = temp_dir("reopen");
        let (store, loaded) = Store::open(&dir).unwrap();
        assert!(loaded.values().all(|rows| rows.is_empty()));
        assert!(matches!(Store::open(&dir), Err(Error::InUse { .. })));
        store.write(vec![Put::set(Table::Devices, "a", &1u32)]);
        let ack = store.write_acked(vec![
            Put::set(Table::Devices, "b", &2u32),
            Put::set(Table::Status, "b", &"x"),
            Put::delete(Table::Devices, "a"),
        ]);
        committed(ack).await.unwrap();
        store.close();
        drop(store);
        let (store, loaded) = Store::open(&dir).unwrap();
        assert_eq!(
            loaded[&Table::Devices],
            vec![("b".to_string(), b"2".to_vec())]
        );
        assert_eq!(
            loaded[&Table::Status],
            vec![("b".to_string(), b"\"x\"".to_vec())]
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
