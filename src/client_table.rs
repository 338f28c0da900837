//! The client-handle table: the server's database of connected clients.
//!
//! A `slab` of client handles (`client::Client`). A handle's slab key is its poll token, so an event
//! finds its handle with one index; keys are reused after a client leaves, which is why
//! services address clients by [`ClientId`] instead: ids are never reused, and an id whose
//! client has left finds nothing even when its old slot is taken again.
//!
//! It keeps the sum of the memory its clients' buffers hold, each client recounted when
//! its buffers change (`account`), for `--maxmemory-clients`.
//!
//! Services see the table read-only, through [`Clients`].

use std::collections::HashMap;
use std::os::unix::io::{AsRawFd, RawFd};

use crate::client::{Client, ClientId, ClientInfo};
use crate::codec::Codec;
use crate::pubsub::{Registry, Subscriptions};

/// The table of client handles, keyed by poll token.
pub(crate) struct ClientTable<C: Codec, S> {
    slab: slab::Slab<Client<C, S>>,
    /// Id to slab key, for services that address clients by id.
    keys: HashMap<ClientId, usize>,
    /// The id the next client gets.
    next_id: u64,
    /// Bytes of buffer memory all clients hold, as last counted ([`ClientTable::account`]).
    memory: usize,
}

impl<C: Codec, S> ClientTable<C, S> {
    pub(crate) fn new() -> ClientTable<C, S> {
        ClientTable {
            slab: slab::Slab::new(),
            keys: HashMap::new(),
            next_id: 1,
            memory: 0,
        }
    }

    /// Counts the buffer memory the client at `key` holds now in the table's total.
    #[inline]
    pub(crate) fn account(&mut self, key: usize) {
        if let Some(client) = self.slab.get_mut(key) {
            let (before, now) = client.recount_memory();
            self.memory = self.memory.saturating_sub(before) + now;
        }
    }

    /// Bytes of buffer memory all clients hold.
    pub(crate) fn memory(&self) -> usize {
        self.memory
    }

    /// Inserts the handle `make` builds from its slab key and new id.
    ///
    /// `make` runs before anything is stored (register the socket with the key as its
    /// token there): if it fails, the table is left as it was and no id is used up.
    pub(crate) fn insert_with<E>(
        &mut self,
        make: impl FnOnce(usize, ClientId) -> Result<Client<C, S>, E>,
    ) -> Result<(usize, ClientId), E> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let id = ClientId(self.next_id);
        let client = make(key, id)?;
        entry.insert(client);
        self.next_id += 1;
        self.keys.insert(id, key);
        Ok((key, id))
    }

    /// Removes the handle at `key`.
    pub(crate) fn remove(&mut self, key: usize) -> Option<Client<C, S>> {
        let client = self.slab.try_remove(key)?;
        self.keys.remove(&client.info.id);
        self.memory = self.memory.saturating_sub(client.accounted_memory());
        Some(client)
    }

    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&Client<C, S>> {
        self.slab.get(key)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut Client<C, S>> {
        self.slab.get_mut(key)
    }

    /// The slab key of the client with `id`, if it is still connected.
    pub(crate) fn key_of(&self, id: ClientId) -> Option<usize> {
        self.keys.get(&id).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Client<C, S>)> {
        self.slab.iter()
    }

    pub(crate) fn keys(&self) -> Vec<usize> {
        self.slab.iter().map(|(k, _)| k).collect()
    }
}

/// A read-only view of the client table, for services (`CLIENT LIST`, `INFO clients`).
pub struct Clients<'a, C: Codec, S> {
    table: &'a ClientTable<C, S>,
    /// Where each client's subscriptions are counted.
    registry: &'a Registry,
    /// Bytes of memory the published messages still owed hold.
    shared: usize,
}

impl<'a, C: Codec, S> Clients<'a, C, S> {
    pub(crate) fn new(
        table: &'a ClientTable<C, S>,
        registry: &'a Registry,
        shared: usize,
    ) -> Clients<'a, C, S> {
        Clients {
            table,
            registry,
            shared,
        }
    }

    /// Bytes of memory all clients' buffers hold, the published messages they are owed
    /// included (what `--maxmemory-clients` limits).
    pub fn memory(&self) -> usize {
        self.table.memory() + self.shared
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The client with `id`, if it is still connected.
    pub fn get(&self, id: ClientId) -> Option<ClientEntry<'a, C, S>> {
        let key = self.table.key_of(id)?;
        let client = self.table.get(key)?;
        Some(ClientEntry::of(client, self.registry.counts(key)))
    }

    /// Every connected client, in table order.
    pub fn iter(&self) -> impl Iterator<Item = ClientEntry<'a, C, S>> + 'a {
        let registry = self.registry;
        self.table
            .iter()
            .map(move |(key, c)| ClientEntry::of(c, registry.counts(key)))
    }
}

/// One row of the client table as a service sees it.
pub struct ClientEntry<'a, C: Codec, S> {
    /// Identity and counters.
    pub info: &'a ClientInfo,
    /// The service's state for this client.
    pub state: &'a S,
    /// Its protocol session (for RESP: version and authentication).
    pub session: C::Session,
    /// The data socket's file descriptor.
    pub fd: RawFd,
    /// Bytes received and not yet decoded (a request still arriving).
    pub input_buffered: usize,
    /// Response bytes not yet written.
    pub output_buffered: usize,
    /// Whether the client is being closed (after `QUIT`, an error, a kill).
    pub closing: bool,
    /// The topics it subscribes to, by kind.
    pub subscriptions: Subscriptions,
    /// Bytes of memory its buffers hold, and the published messages it is owed.
    pub memory: usize,
}

impl<'a, C: Codec, S> ClientEntry<'a, C, S> {
    fn of(client: &'a Client<C, S>, subscriptions: Subscriptions) -> ClientEntry<'a, C, S> {
        ClientEntry {
            info: &client.info,
            state: &client.state,
            session: client.session,
            fd: client.stream.as_raw_fd(),
            input_buffered: client.input_len(),
            output_buffered: client.owed(),
            closing: client.closing_reason().is_some(),
            subscriptions,
            memory: client.total_memory(),
        }
    }
}

// By hand: derived impls would ask `C` and `S` to be `Clone`/`Debug` themselves.
impl<C: Codec, S> Clone for ClientEntry<'_, C, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C: Codec, S> Copy for ClientEntry<'_, C, S> {}

impl<C: Codec, S> std::fmt::Debug for ClientEntry<'_, C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientEntry")
            .field("info", self.info)
            .field("session", &self.session)
            .field("fd", &self.fd)
            .field("input_buffered", &self.input_buffered)
            .field("output_buffered", &self.output_buffered)
            .field("closing", &self.closing)
            .field("subscriptions", &self.subscriptions)
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientInfo;
    use crate::codec::TestCodec;
    use crate::listener::{ListenAddr, ListenerInfo};
    use crate::stream::{Peer, Stream};
    use std::sync::Arc;
    use std::time::Instant;

    fn client(id: ClientId, stream: Stream) -> Client<TestCodec, u32> {
        let listener = Arc::new(ListenerInfo {
            addr: ListenAddr::unix("/tmp/t.sock"),
        });
        Client::new(
            ClientInfo::new(id, listener, Peer::Unix(None), Instant::now()),
            stream,
        )
    }

    fn stream() -> Stream {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        Stream::Unix(mio::net::UnixStream::from_std(a))
    }

    #[test]
    fn ids_are_never_reused_even_when_slots_are() {
        let mut table: ClientTable<TestCodec, u32> = ClientTable::new();
        let (key_a, id_a) = table
            .insert_with(|_, id| Ok::<_, ()>(client(id, stream())))
            .unwrap();
        table.remove(key_a).unwrap();
        let (key_b, id_b) = table
            .insert_with(|_, id| Ok::<_, ()>(client(id, stream())))
            .unwrap();
        assert_eq!(key_a, key_b, "the slot is reused");
        assert_ne!(id_a, id_b, "the id is not");
        assert_eq!(table.key_of(id_a), None, "a stale id finds nothing");
        assert_eq!(table.key_of(id_b), Some(key_b));
        let registry = Registry::default();
        let view = Clients::new(&table, &registry, 0);
        assert!(view.get(id_a).is_none());
        assert_eq!(view.get(id_b).unwrap().info.id(), id_b);
    }

    #[test]
    fn failed_insert_leaves_table_unchanged() {
        let mut table: ClientTable<TestCodec, u32> = ClientTable::new();
        let err = table.insert_with(|_, _| Err::<Client<TestCodec, u32>, _>("register failed"));
        assert_eq!(err.unwrap_err(), "register failed");
        assert!(table.is_empty());
        let (_, id) = table
            .insert_with(|_, id| Ok::<_, ()>(client(id, stream())))
            .unwrap();
        assert_eq!(id.as_u64(), 1, "no id was used up by the failure");
    }

    #[test]
    fn lookup_insert_remove_and_listing() {
        let mut table: ClientTable<TestCodec, u32> = ClientTable::new();
        let mut keys = Vec::new();
        for _ in 0..5 {
            keys.push(
                table
                    .insert_with(|_, id| Ok::<_, ()>(client(id, stream())))
                    .unwrap(),
            );
        }
        assert_eq!(table.len(), 5);
        let (key, id) = keys[2];
        assert_eq!(table.get(key).unwrap().info.id(), id);
        table.get_mut(key).unwrap().state = 7;
        assert_eq!(table.remove(key).unwrap().state, 7);
        assert!(table.remove(key).is_none());
        let registry = Registry::default();
        let listed: Vec<u64> = Clients::new(&table, &registry, 0)
            .iter()
            .map(|e| e.info.id().as_u64())
            .collect();
        assert_eq!(listed, vec![1, 2, 4, 5]);
    }

    /// The table's costs, measured with criterion where the crate-private table can be
    /// reached: insert and remove, lookup by token (slab key) and by id. Not part of the
    /// default test run:
    /// `cargo test --release --lib client_table::tests::bench -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: run it with --ignored in release mode"]
    fn bench() {
        use criterion::{BatchSize, Criterion, Throughput};
        const CLIENTS: usize = 1000;

        /// A table of `CLIENTS` handles over Unix socket pairs (the far ends kept open).
        struct Bench {
            table: ClientTable<TestCodec, ()>,
            spare: Vec<Stream>,
            _peers: Vec<std::os::unix::net::UnixStream>,
        }
        impl Bench {
            fn new() -> Bench {
                let (spare, peers) = (0..CLIENTS)
                    .map(|_| {
                        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
                        (Stream::Unix(mio::net::UnixStream::from_std(a)), b)
                    })
                    .unzip();
                Bench {
                    table: ClientTable::new(),
                    spare,
                    _peers: peers,
                }
            }
            fn insert(&mut self) -> Option<(usize, ClientId)> {
                let stream = self.spare.pop()?;
                let listener = Arc::new(ListenerInfo {
                    addr: ListenAddr::unix("/bench.sock"),
                });
                self.table
                    .insert_with(|_, id| {
                        let info = ClientInfo::new(id, listener, Peer::Unix(None), Instant::now());
                        Ok::<_, ()>(Client::new(info, stream))
                    })
                    .ok()
            }
            fn remove(&mut self, key: usize) {
                if let Some(client) = self.table.remove(key) {
                    self.spare.push(client.stream);
                }
            }
        }

        let mut c = Criterion::default();
        let mut group = c.benchmark_group("client_table");
        group.throughput(Throughput::Elements(CLIENTS as u64));
        group.bench_function("insert_remove_1000", |b| {
            let mut t = Bench::new();
            let mut keys = Vec::with_capacity(CLIENTS);
            b.iter(|| {
                keys.clear();
                while let Some((key, _)) = t.insert() {
                    keys.push(key);
                }
                for &key in &keys {
                    t.remove(key);
                }
            });
        });
        let mut t = Bench::new();
        let mut entries = Vec::with_capacity(CLIENTS);
        while let Some(entry) = t.insert() {
            entries.push(entry);
        }
        group.bench_function("lookup_by_key_1000", |b| {
            b.iter(|| {
                entries
                    .iter()
                    .filter(|(key, _)| t.table.get(std::hint::black_box(*key)).is_some())
                    .count()
            });
        });
        group.bench_function("lookup_by_id_1000", |b| {
            b.iter(|| {
                entries
                    .iter()
                    .filter(|(_, id)| t.table.key_of(std::hint::black_box(*id)).is_some())
                    .count()
            });
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function("remove_insert_one_in_full_table", |b| {
            b.iter_batched(
                || entries[CLIENTS / 2].0,
                |key| {
                    t.remove(key);
                    t.insert()
                },
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }
}
