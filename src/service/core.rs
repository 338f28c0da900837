//! The part of the loop a service reaches through its context: the client table, the
//! service's timers and sources, the effects it asks for, what the server knows and
//! counts, and a handle for other threads.
//!
//! The loop owns one [`Core`] and lends it to each context, so building a context costs
//! a pointer, not a copy of each piece.

use std::time::Instant;

use mio::Registry;

use super::sources::Sources;
use super::{Context, ServerContext, ServerHandle, Service};
use crate::client::CloseReason;
use crate::client::frames::FrameRef;
use crate::client_table::ClientTable;
use crate::codec::Codec;
use crate::config::ServerInfo;
use crate::deadlines::Deadlines;
use crate::pubsub::PubSub;
use crate::stats::Stats;

/// What the service's contexts reach.
pub(crate) struct Core<C: Codec, S: Service<C>> {
    pub(crate) clients: ClientTable<C, S::ClientState>,
    /// The service's timers (the loop's own are kept apart, in the loop).
    pub(crate) timers: Deadlines<Task<C, S>>,
    /// What the service asked for while the loop was in its code.
    pub(crate) effects: Effects,
    /// Topics and their subscribers.
    pub(crate) pubsub: PubSub<C::Session>,
    pub(crate) info: ServerInfo,
    pub(crate) stats: Stats,
    /// When the loop woke up for the current batch of events.
    pub(crate) now: Instant,
    /// Handed to the service, for its other threads.
    pub(crate) handle: ServerHandle<C, S>,
    /// The service's own sources, and the poller's registry they are registered with.
    pub(crate) sources: Sources<C, S>,
    pub(crate) registry: Registry,
}

impl<C: Codec, S: Service<C>> Core<C, S> {
    pub(crate) fn new(
        info: ServerInfo,
        handle: ServerHandle<C, S>,
        registry: Registry,
    ) -> Core<C, S> {
        Core {
            clients: ClientTable::new(),
            timers: Deadlines::default(),
            effects: Effects::default(),
            pubsub: PubSub::default(),
            info,
            stats: Stats::default(),
            now: Instant::now(),
            handle,
            sources: Sources::default(),
            registry,
        }
    }
}

/// Effects a service asked for, carried out by the loop once the service's code returns.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Close the current client, once its replies are written.
    pub(crate) close_current: Option<CloseReason>,
    /// Stop the server (graceful shutdown).
    pub(crate) stop: bool,
    /// Other clients to close now (slab keys), and why.
    pub(crate) kill: Vec<(usize, CloseReason)>,
    /// Other clients that were sent something, to write at the end of the loop's turn,
    /// once each (slab keys; each is marked `flush_queued` while listed).
    pub(crate) flush: Vec<usize>,
    /// Messages the client being served published to itself: queued after its reply.
    pub(crate) to_self: Vec<FrameRef>,
}

/// Server-wide code run once.
pub(crate) type ServerOnce<C, S> = dyn FnOnce(&mut S, &mut ServerContext<'_, C, S>);
/// Server-wide code run again and again.
pub(crate) type ServerFn<C, S> = dyn FnMut(&mut S, &mut ServerContext<'_, C, S>);
/// A client's code run once.
pub(crate) type ClientOnce<C, S> = dyn FnOnce(&mut S, &mut Context<'_, C, S>);
/// A client's code run again and again.
pub(crate) type ClientFn<C, S> = dyn FnMut(&mut S, &mut Context<'_, C, S>);

/// What a service's timer runs when it fires.
pub(crate) enum Task<C: Codec, S: Service<C>> {
    Once(Box<ServerOnce<C, S>>),
    Every(Box<ServerFn<C, S>>),
    ClientOnce(Box<ClientOnce<C, S>>),
    ClientEvery(Box<ClientFn<C, S>>),
}
