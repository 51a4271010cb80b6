//! Bundle files: `bundles/<id>.tern` in the data dir, written once by atomic rename,
//! checked against their id when read, and kept in a bounded memory cache for
//! downloads.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tern_core::bundle::{self, Header, HeaderDecoder, MAX_HEADER_LEN};

use crate::error::Error;

/// The folder of bundle files inside the data dir.
pub(crate) const BUNDLE_DIR: &str = "bundles";
const TMP_PREFIX: &str = ".tmp-";

/// The bundle store on disk and its cache.
pub(crate) struct Files {
    dir: PathBuf,
    cache: Mutex<Cache>,
    /// Serializes cache misses, so a crowd asking for one bundle reads it once.
    loading: tokio::sync::Mutex<()>,
    tmp_counter: AtomicU64,
}

#[derive(Default)]
struct Cache {
    map: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
    max: usize,
}

impl Cache {
    fn get(&self, id: &str) -> Option<Bytes> {
        self.map.get(id).cloned()
    }

    fn insert(&mut self, id: &str, bytes: Bytes) {
        if bytes.len() > self.max || self.map.contains_key(id) {
            return;
        }
        while self.bytes + bytes.len() > self.max {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.map.remove(&old) {
                self.bytes -= b.len();
            }
        }
        self.bytes += bytes.len();
        self.order.push_back(id.to_string());
        self.map.insert(id.to_string(), bytes);
    }
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

impl Files {
    /// Opens `<data_dir>/bundles`, creating it and removing temporary files left by
    /// an interrupted publish. Blocking.
    pub fn open(data_dir: &Path, cache_bytes: usize) -> Result<Files, Error> {
        let dir = data_dir.join(BUNDLE_DIR);
        fs::create_dir_all(&dir).map_err(io(&dir, "create"))?;
        for entry in fs::read_dir(&dir).map_err(io(&dir, "read"))? {
            let entry = entry.map_err(io(&dir, "read"))?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let p = entry.path();
                fs::remove_file(&p).map_err(io(&p, "remove"))?;
            }
        }
        Ok(Files {
            dir,
            cache: Mutex::new(Cache {
                max: cache_bytes,
                ..Cache::default()
            }),
            loading: tokio::sync::Mutex::new(()),
            tmp_counter: AtomicU64::new(0),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.tern"))
    }

    /// Writes a bundle durably: temporary file, fsync, rename, fsync of the folder.
    /// Blocking.
    pub fn write(&self, id: &str, bytes: &[u8]) -> Result<(), Error> {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{id}-{n}"));
        let result = (|| {
            let mut f = fs::File::create(&tmp).map_err(io(&tmp, "create"))?;
            f.write_all(bytes).map_err(io(&tmp, "write"))?;
            f.sync_all().map_err(io(&tmp, "sync"))?;
            let path = self.path(id);
            fs::rename(&tmp, &path).map_err(io(&path, "rename into place"))?;
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir, "sync"))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Reads and parses the header of stored bundle `id`, checking the file's length.
    /// Blocking.
    pub fn read_header(&self, id: &str, len: u32) -> Result<Header, String> {
        let path = self.path(id);
        let mut f = fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let actual = f
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        if actual != u64::from(len) {
            return Err(format!(
                "{} is {actual} bytes, the store says {len}; the file was changed or truncated",
                path.display()
            ));
        }
        let mut buf = Vec::with_capacity(MAX_HEADER_LEN);
        Read::by_ref(&mut f)
            .take(MAX_HEADER_LEN as u64)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut dec = HeaderDecoder::new();
        match dec.feed(&buf) {
            Ok(Some((header, _))) => Ok(header),
            Ok(None) => Err(format!("{}: {}", path.display(), dec.truncated())),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Puts freshly published bytes in the cache.
    pub fn cache(&self, id: &str, bytes: Bytes) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id, bytes);
        }
    }

    /// The bytes of bundle `id`, from the cache or from its file (whose SHA-256 must
    /// still be `sha256`).
    pub async fn get(&self, id: &str, sha256: [u8; 32]) -> Result<Bytes, String> {
        let cached = |files: &Files| files.cache.lock().ok().and_then(|c| c.get(id));
        if let Some(b) = cached(self) {
            return Ok(b);
        }
        let _loading = self.loading.lock().await;
        if let Some(b) = cached(self) {
            return Ok(b);
        }
        let path = self.path(id);
        let bytes = tokio::task::spawn_blocking(move || {
            let b = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if bundle::sha256(&b) != sha256 {
                return Err(format!(
                    "{} no longer matches its SHA-256; restore it from a backup or publish the bundle again",
                    path.display()
                ));
            }
            Ok(Bytes::from(b))
        })
        .await
        .map_err(|e| format!("bundle read task failed: {e}"))??;
        self.cache(id, bytes.clone());
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_evicts_oldest_first_and_skips_what_cannot_fit() {
        let mut c = Cache {
            max: 10,
            ..Cache::default()
        };
        c.insert("a", Bytes::from_static(b"aaaa"));
        c.insert("b", Bytes::from_static(b"bbbb"));
        c.insert("c", Bytes::from_static(b"cccc"));
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some() && c.get("c").is_some());
        assert_eq!(c.bytes, 8);
        c.insert("big", Bytes::from_static(b"0123456789x"));
        assert!(c.get("big").is_none());
        assert_eq!(c.bytes, 8);
    }
}
