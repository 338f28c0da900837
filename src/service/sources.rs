//! The service's own event sources: a UDP socket, a pipe, a timerfd, a listener for
//! another protocol, anything `mio` can poll, registered with the loop's poller and
//! handled on the loop thread.
//!
//! The service owns each source (it reads from it); the loop keeps, per source, the code
//! to run when it is ready, in a slab whose key gives the poll token (see `tokens.rs`).

use std::fmt;
use std::io;

use mio::event::{Event, Source};
use mio::{Interest, Registry};

use super::{ServerContext, Service};
use crate::codec::Codec;
use crate::tokens;

/// A source the service registered with the loop
/// ([`ServerContext::register`]): unique for the life of the server, so an id whose
/// source was deregistered finds nothing, even once its slot serves another source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    key: usize,
    seq: u64,
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seq)
    }
}

/// What runs when a source is ready.
pub(crate) type ReadyFn<C, S> = dyn FnMut(&mut S, &Event, &mut ServerContext<'_, C, S>);

struct Slot<C: Codec, S: Service<C>> {
    seq: u64,
    /// `None` while it runs.
    on_ready: Option<Box<ReadyFn<C, S>>>,
}

/// The registered sources.
pub(crate) struct Sources<C: Codec, S: Service<C>> {
    slots: slab::Slab<Slot<C, S>>,
    next_seq: u64,
}

impl<C: Codec, S: Service<C>> Default for Sources<C, S> {
    fn default() -> Self {
        Sources {
            slots: slab::Slab::new(),
            next_seq: 0,
        }
    }
}

impl<C: Codec, S: Service<C>> Sources<C, S> {
    /// Registers `source` with `interest` under a new slot's token; the slot is taken
    /// only once the registration succeeded.
    pub(crate) fn register(
        &mut self,
        registry: &Registry,
        source: &mut (impl Source + ?Sized),
        interest: Interest,
        on_ready: Box<ReadyFn<C, S>>,
    ) -> io::Result<SourceId> {
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        if key >= tokens::MAX_SOURCE_KEYS {
            return Err(io::Error::other("too many sources registered"));
        }
        registry.register(source, tokens::source(key), interest)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        entry.insert(Slot {
            seq,
            on_ready: Some(on_ready),
        });
        Ok(SourceId { key, seq })
    }

    /// Changes the interest of source `id`.
    pub(crate) fn reregister(
        &self,
        registry: &Registry,
        source: &mut (impl Source + ?Sized),
        id: SourceId,
        interest: Interest,
    ) -> io::Result<()> {
        self.check(id)?;
        registry.reregister(source, tokens::source(id.key), interest)
    }

    /// Deregisters source `id` and forgets it (even if the poller's deregistration
    /// failed: the source is the service's to drop).
    pub(crate) fn deregister(
        &mut self,
        registry: &Registry,
        source: &mut (impl Source + ?Sized),
        id: SourceId,
    ) -> io::Result<()> {
        self.check(id)?;
        drop(self.slots.try_remove(id.key));
        registry.deregister(source)
    }

    /// Takes out the code of the source at `key`, to run it.
    pub(crate) fn take(&mut self, key: usize) -> Option<(SourceId, Box<ReadyFn<C, S>>)> {
        let slot = self.slots.get_mut(key)?;
        let on_ready = slot.on_ready.take()?;
        Some((SourceId { key, seq: slot.seq }, on_ready))
    }

    /// Puts back the code taken out to run, unless the source was deregistered meanwhile.
    pub(crate) fn put_back(&mut self, id: SourceId, on_ready: Box<ReadyFn<C, S>>) {
        if let Some(slot) = self.slots.get_mut(id.key)
            && slot.seq == id.seq
        {
            slot.on_ready = Some(on_ready);
        }
    }

    fn check(&self, id: SourceId) -> io::Result<()> {
        match self.slots.get(id.key) {
            Some(slot) if slot.seq == id.seq => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such source registered",
            )),
        }
    }
}
