//! The table of open connections: at most [`Config::max_connections`] in all and
//! [`Config::max_connections_per_peer`] from one address, so that one client cannot
//! take the fleet offline by holding connections open (measured before this table:
//! 4,200 connections from one loopback address that each sent half a request head
//! made the server refuse every new connection, `/healthz` included, until the 30 s
//! header timeout freed them).
//!
//! A connection is *busy* from the moment hyper hands it a whole request head until
//! the response's body has been written (or dropped), and *idle* otherwise: before its
//! first request is complete (a half-open connection) and between keep-alive requests.
//! A new connection that would go over a limit takes the place of an idle one: over
//! the per-address limit, the idlest (idle the longest) of that address; over the
//! table's, the idlest of the address that holds the most idle connections, so that
//! a client holding many never pushes out a device holding one. The evicted
//! connection's task is aborted, which closes its socket. If no connection under the
//! limit is idle, the new one is refused. So a client that holds idle connections,
//! however fast it reconnects, evicts only its own once it reaches its limit, and
//! only the heaviest holders' when the table is full: everyone else gets in. Devices
//! behind the same address as such a client share its limit (nothing tells their
//! connections apart before a request head arrives).
//!
//! [`Config::max_connections`]: crate::Config::max_connections
//! [`Config::max_connections_per_peer`]: crate::Config::max_connections_per_peer

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body, Frame, SizeHint};
use tokio::task::AbortHandle;

/// What [`Conns::admit`] decided.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Admitted as `id`; `evicted` is the task of the connection whose place it took,
    /// to abort.
    Admitted {
        id: u64,
        evicted: Option<AbortHandle>,
    },
    /// Refused: every connection under the limit that was reached is busy.
    Refused(&'static str),
}

/// One open connection.
struct Entry {
    peer: IpAddr,
    /// Requests in progress (a keep-alive connection has at most one at a time).
    busy: usize,
    /// When it last became idle (accepted, or its last response finished).
    idle_since: Instant,
    /// Its task; `None` for the moment between admission and spawning.
    task: Option<AbortHandle>,
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Table {
    /// The idlest evictable connection among those `filter` picks.
    fn idlest(&self, filter: impl Fn(&Entry) -> bool) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, e)| e.busy == 0 && e.task.is_some() && filter(e))
            .min_by_key(|(_, e)| e.idle_since)
            .map(|(id, _)| *id)
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&entry.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }
}

/// The connection table, shared by the accept loop and every connection's service.
pub(crate) struct Conns {
    table: Mutex<Table>,
    max: usize,
    max_per_peer: usize,
}

impl Conns {
    pub(crate) fn new(max: usize, max_per_peer: usize) -> Arc<Conns> {
        Arc::new(Conns {
            table: Mutex::new(Table::default()),
            max,
            max_per_peer,
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `peer`, evicting the idlest idle one if a limit is
    /// reached (see the module docs).
    pub(crate) fn admit(&self, peer: IpAddr) -> Admission {
        let mut t = self.table();
        let mut evicted = None;
        if t.per_peer.get(&peer).copied().unwrap_or(0) >= self.max_per_peer {
            let Some(id) = t.idlest(|e| e.peer == peer) else {
                return Admission::Refused("too many busy connections from this address");
            };
            evicted = t.remove(id).and_then(|e| e.task);
        } else if t.open.len() >= self.max {
            // The address holding the most idle connections gives one up.
            let mut idle: HashMap<IpAddr, usize> = HashMap::new();
            for e in t.open.values().filter(|e| e.busy == 0 && e.task.is_some()) {
                *idle.entry(e.peer).or_insert(0) += 1;
            }
            let heaviest = idle
                .into_iter()
                .max_by_key(|(ip, n)| (*n, *ip))
                .map(|(ip, _)| ip);
            let Some(id) = heaviest.and_then(|h| t.idlest(|e| e.peer == h)) else {
                return Admission::Refused("every connection is busy");
            };
            evicted = t.remove(id).and_then(|e| e.task);
        }
        let id = t.next;
        t.next += 1;
        t.open.insert(
            id,
            Entry {
                peer,
                busy: 0,
                idle_since: Instant::now(),
                task: None,
            },
        );
        *t.per_peer.entry(peer).or_insert(0) += 1;
        Admission::Admitted { id, evicted }
    }

    /// Records the task serving connection `id` (it may be evicted from now on).
    pub(crate) fn spawned(&self, id: u64, task: AbortHandle) {
        if let Some(e) = self.table().open.get_mut(&id) {
            e.task = Some(task);
        }
    }

    /// Connection `id` is closed (its task ended or was aborted).
    pub(crate) fn closed(&self, id: u64) {
        self.table().remove(id);
    }

    /// A request of connection `id` begins: busy until the guard is dropped.
    pub(crate) fn busy(self: &Arc<Self>, id: u64) -> BusyGuard {
        if let Some(e) = self.table().open.get_mut(&id) {
            e.busy += 1;
        }
        BusyGuard {
            conns: self.clone(),
            id,
        }
    }

    /// Open connections: in all, and from `peer`.
    #[cfg(test)]
    fn counts(&self, peer: IpAddr) -> (usize, usize) {
        let t = self.table();
        (t.open.len(), t.per_peer.get(&peer).copied().unwrap_or(0))
    }
}

/// Holds connection `id` busy; dropped when the response body is done.
pub(crate) struct BusyGuard {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(e) = self.conns.table().open.get_mut(&self.id) {
            e.busy = e.busy.saturating_sub(1);
            if e.busy == 0 {
                e.idle_since = Instant::now();
            }
        }
    }
}

/// Closes connection `id` in the table when dropped: when its task ends, however it
/// ends (aborted included).
pub(crate) struct OpenGuard {
    pub(crate) conns: Arc<Conns>,
    pub(crate) id: u64,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.conns.closed(self.id);
    }
}

/// A response body that keeps its connection busy until it is written or dropped.
pub(crate) struct Tracked<B> {
    pub(crate) inner: B,
    pub(crate) _busy: BusyGuard,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is how a test fails")]

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// Admits a connection with a task that never ends; returns its id and task.
    async fn open(conns: &Arc<Conns>, peer: IpAddr) -> Result<(u64, AbortHandle), &'static str> {
        match conns.admit(peer) {
            Admission::Admitted { id, evicted } => {
                if let Some(e) = evicted {
                    e.abort();
                }
                let task = tokio::spawn(std::future::pending::<()>()).abort_handle();
                conns.spawned(id, task.clone());
                Ok((id, task))
            }
            Admission::Refused(why) => Err(why),
        }
    }

    #[tokio::test]
    async fn one_address_at_its_limit_evicts_its_own_idlest_connection() {
        let conns = Conns::new(100, 3);
        let mut first = Vec::new();
        for _ in 0..3 {
            first.push(open(&conns, ip(1)).await.unwrap());
        }
        // A fourth from the same address takes the place of the idlest: the first.
        let (_, _) = open(&conns, ip(1)).await.unwrap();
        tokio::task::yield_now().await;
        assert!(first[0].1.is_finished(), "the idlest was aborted");
        assert!(!first[1].1.is_finished() && !first[2].1.is_finished());
        conns.closed(first[0].0);
        assert_eq!(conns.counts(ip(1)), (3, 3));
        // Another address is not touched by it.
        open(&conns, ip(2)).await.unwrap();
        assert_eq!(conns.counts(ip(2)), (4, 1));
    }

    #[tokio::test]
    async fn busy_connections_are_never_evicted() {
        let conns = Conns::new(100, 2);
        let (a, _) = open(&conns, ip(1)).await.unwrap();
        let (b, _) = open(&conns, ip(1)).await.unwrap();
        let _busy_a = conns.busy(a);
        let busy_b = conns.busy(b);
        assert_eq!(
            open(&conns, ip(1)).await.unwrap_err(),
            "too many busy connections from this address"
        );
        // Once b's response is done, b is idle and gives way.
        drop(busy_b);
        open(&conns, ip(1)).await.unwrap();
    }

    #[tokio::test]
    async fn a_full_table_evicts_from_the_address_holding_the_most_idle_connections() {
        let conns = Conns::new(5, 5);
        // A device, first and so idle the longest, then three from one client.
        let device = open(&conns, ip(2)).await.unwrap();
        let mut client = Vec::new();
        for _ in 0..3 {
            client.push(open(&conns, ip(1)).await.unwrap());
        }
        let other = open(&conns, ip(3)).await.unwrap();
        let _busy = conns.busy(client[0].0);
        // Full: the client holds the most idle connections (two; one is busy), so
        // its idlest idle one makes room, not the device's, idle longer.
        open(&conns, ip(9)).await.unwrap();
        tokio::task::yield_now().await;
        assert!(!device.1.is_finished() && !other.1.is_finished());
        assert!(!client[0].1.is_finished(), "busy: never evicted");
        assert!(client[1].1.is_finished() && !client[2].1.is_finished());
        assert_eq!(conns.counts(ip(1)), (5, 2));
    }

    #[tokio::test]
    async fn with_every_connection_busy_a_new_one_is_refused() {
        let conns = Conns::new(2, 2);
        let (a, _) = open(&conns, ip(1)).await.unwrap();
        let (b, _) = open(&conns, ip(2)).await.unwrap();
        let _x = conns.busy(a);
        let _y = conns.busy(b);
        assert_eq!(
            open(&conns, ip(3)).await.unwrap_err(),
            "every connection is busy"
        );
    }
}
