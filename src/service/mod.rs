//! What the server does: the [`Service`] trait and the contexts it works through.
//!
//! The loop decodes a request with the [`Codec`], hands it to the service with a
//! [`Context`] for the client it came from, and writes whatever the service replied, in
//! request order. Through the context a service reads the client's info and its own
//! per-client state, looks at the table of clients, replies, sends to other clients,
//! subscribes its client to topics and publishes to them, arms timers, and asks for
//! effects the loop carries out as soon as its code returns:
//! close this client after its reply, close another client, stop the server.
//!
//! Code that runs for no client in particular (a server-wide timer, the start and
//! shutdown hooks, a client's departure) gets a [`ServerContext`]: the same view of the
//! server without "this client". A `Context` dereferences to a `ServerContext`.
//!
//! - `context.rs`: [`Context`], one client's view;
//! - `server_context.rs`: [`ServerContext`], the whole server's, and the timers;
//! - `handle.rs`: [`ServerHandle`], how other threads reach the loop (a bounded queue
//!   and the loop's waker);
//! - `sources.rs`: the service's own event sources ([`SourceId`]), registered with the
//!   loop's poller;
//! - `pubsub.rs`: subscribing a client to topics, publishing to them
//!   ([`crate::pubsub`]);
//! - `core.rs`: the part of the loop both contexts reach, lent to them by the loop.

mod context;
pub(crate) mod core;
pub(crate) mod handle;
mod pubsub;
mod server_context;
pub(crate) mod sources;

pub use crate::deadlines::TimerId;
pub use context::Context;
pub use handle::{Responder, SendError, ServerHandle};
pub use server_context::{MIN_PERIOD, ServerContext};
pub use sources::SourceId;

use crate::client::{ClientInfo, CloseReason};
use crate::codec::Codec;

/// The application behind the loop.
///
/// # Examples
/// A service that counts each client's requests and answers with the count:
/// ```
/// use muxd::resp::{Args, RespCodec, Reply};
/// use muxd::{Context, Service};
///
/// struct Counter;
///
/// impl Service<RespCodec> for Counter {
///     type ClientState = i64;
///
///     fn on_request(&mut self, _request: Args<'_>, ctx: &mut Context<'_, RespCodec, Self>) {
///         *ctx.state() += 1;
///         let n = *ctx.state();
///         ctx.reply(&Reply::Integer(n));
///     }
/// }
/// ```
pub trait Service<C: Codec>: Sized {
    /// State kept in each client handle, created with `Default` when the client connects
    /// and handed back in [`on_disconnect`](Service::on_disconnect).
    type ClientState: Default;

    /// Handles one request. Replies go through [`Context::reply`]; a request may get any
    /// number of them (none, one, or an array sent element by element).
    ///
    /// A panic here is caught: the client gets an error reply and is closed, the server
    /// goes on serving everyone else.
    fn on_request(&mut self, request: C::Request<'_>, ctx: &mut Context<'_, C, Self>);

    /// Called once a client is accepted, before its first request (a greeting can be sent).
    fn on_connect(&mut self, ctx: &mut Context<'_, C, Self>) {
        let _ = ctx;
    }

    /// Called once a client is gone (it is no longer in the table, its timers are gone),
    /// with its final info and state.
    fn on_disconnect(
        &mut self,
        info: &ClientInfo,
        state: Self::ClientState,
        reason: CloseReason,
        ctx: &mut ServerContext<'_, C, Self>,
    ) {
        let _ = (info, state, reason, ctx);
    }

    /// Called on the loop thread when [`Server::run`](crate::Server::run) starts, before
    /// the first client is served: the master sockets are bound
    /// ([`ServerInfo::listeners`](crate::ServerInfo::listeners)), timers can be armed.
    fn on_start(&mut self, ctx: &mut ServerContext<'_, C, Self>) {
        let _ = ctx;
    }

    /// Called when the server begins to stop (a handle, a signal, or the service asked),
    /// before the master sockets close and while every client is still open: the last
    /// chance to send them something or to save state. Then what they are owed is
    /// written and they are closed, each with [`on_disconnect`](Service::on_disconnect).
    fn on_shutdown(&mut self, ctx: &mut ServerContext<'_, C, Self>) {
        let _ = ctx;
    }
}
