//! What the server does with a request: the [`Service`] trait and the [`Context`] it
//! works through.
//!
//! The loop decodes a request with the [`Codec`], hands it to the service with a context
//! for the client it came from, and writes whatever the service replied, in request order.
//! Through the context a service reads the client's info and its own per-client state,
//! looks at the table of clients, replies, subscribes its client to topics and publishes
//! to them ([`crate::pubsub`]), and asks for effects the loop carries out at a safe point:
//! close this client after its reply, close another client, stop the server.

use std::sync::Arc;
use std::time::Instant;

use crate::client::frames::Frame;
use crate::client::{ClientId, ClientInfo, CloseReason};
use crate::client_table::{ClientTable, Clients};
use crate::codec::Codec;
use crate::config::ServerInfo;
use crate::pubsub::{self, Encode, Fanout, Kind, PubSub, Subscriptions, Topics, Via};
use crate::stats::Stats;

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
///     fn on_request(&mut self, _request: Args<'_>, ctx: &mut Context<'_, RespCodec, i64>) {
///         *ctx.state() += 1;
///         let n = *ctx.state();
///         ctx.reply(&Reply::Integer(n));
///     }
/// }
/// ```
pub trait Service<C: Codec> {
    /// State kept in each client handle, created with `Default` when the client connects
    /// and handed back in [`on_disconnect`](Service::on_disconnect).
    type ClientState: Default;

    /// Handles one request. Replies go through [`Context::reply`]; a request may get any
    /// number of them (none, one, or an array sent element by element).
    ///
    /// A panic here is caught: the client gets an error reply and is closed, the server
    /// goes on serving everyone else.
    fn on_request(&mut self, request: C::Request<'_>, ctx: &mut Context<'_, C, Self::ClientState>);

    /// Called once a client is accepted, before its first request (a greeting can be sent).
    fn on_connect(&mut self, ctx: &mut Context<'_, C, Self::ClientState>) {
        let _ = ctx;
    }

    /// Called once a client is gone, with its final info and state.
    fn on_disconnect(&mut self, info: &ClientInfo, state: Self::ClientState, reason: CloseReason) {
        let _ = (info, state, reason);
    }
}

/// Effects a service asked for, carried out by the loop once the request is handled.
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
    /// Messages the current client published to itself: queued after its reply.
    pub(crate) to_self: Vec<Frame>,
}

/// The loop's state a context works on besides the client table.
pub(crate) struct LoopState<'a> {
    pub(crate) effects: &'a mut Effects,
    pub(crate) pubsub: &'a mut PubSub,
    pub(crate) server: &'a ServerInfo,
    pub(crate) stats: &'a mut Stats,
}

/// A service's view of the server while it handles one client's request.
pub struct Context<'a, C: Codec, S> {
    table: &'a mut ClientTable<C, S>,
    /// Slab key of the client being served; present in `table` for the whole call.
    key: usize,
    /// Where this client's responses are encoded (the buffer lent to it for its turn).
    out: &'a mut Vec<u8>,
    /// This client's protocol session (a copy of its handle's).
    session: C::Session,
    effects: &'a mut Effects,
    pubsub: &'a mut PubSub,
    server: &'a ServerInfo,
    stats: &'a mut Stats,
    now: Instant,
}

impl<'a, C: Codec, S> Context<'a, C, S> {
    /// The context for serving the client at `key`, whose responses go to `out`; it
    /// is in the default session until [`speaking`](Context::speaking) says otherwise.
    pub(crate) fn new(
        table: &'a mut ClientTable<C, S>,
        key: usize,
        out: &'a mut Vec<u8>,
        state: LoopState<'a>,
        now: Instant,
    ) -> Context<'a, C, S> {
        Context {
            table,
            key,
            out,
            session: C::Session::default(),
            effects: state.effects,
            pubsub: state.pubsub,
            server: state.server,
            stats: state.stats,
            now,
        }
    }

    /// The same context for a client in `session` (a copy of its handle's).
    pub(crate) fn speaking(mut self, session: C::Session) -> Context<'a, C, S> {
        self.session = session;
        self
    }

    /// Sends `response` to this client, after every response sent before it.
    #[inline]
    pub fn reply(&mut self, response: &C::Response<'_>) {
        C::encode(self.session, response, self.out);
    }

    /// Sends the codec's error response carrying `message`.
    pub fn reply_error(&mut self, message: &dyn std::fmt::Display) {
        C::encode_error(self.session, message, self.out);
    }

    /// This client's protocol session: what it agreed with the server about the wire
    /// format (for RESP: the version, 2 or 3, and whether it is authenticated).
    pub fn session(&self) -> C::Session {
        self.session
    }

    /// Changes this client's protocol session: this request's responses sent after the
    /// call, and all later requests and responses, are decoded and encoded in it (RESP's
    /// `HELLO 3` switches to RESP3; `AUTH` lifts the unauthenticated limits).
    pub fn set_session(&mut self, session: C::Session) {
        self.session = session;
        if let Some(client) = self.table.get_mut(self.key) {
            client.session = session;
        }
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.info().id
    }

    /// This client's info and counters.
    pub fn info(&self) -> &ClientInfo {
        match self.table.get(self.key) {
            Some(client) => &client.info,
            None => unreachable!("the client being served is in the table"),
        }
    }

    /// This client's service state.
    pub fn state(&mut self) -> &mut S {
        match self.table.get_mut(self.key) {
            Some(client) => &mut client.state,
            None => unreachable!("the client being served is in the table"),
        }
    }

    /// Names this client (`None` clears the name); shown in [`ClientInfo::name`].
    pub fn set_name(&mut self, name: Option<&str>) {
        if let Some(client) = self.table.get_mut(self.key) {
            client.info.name = name.map(Box::from);
        }
    }

    /// Closes this client once the replies to this and earlier requests are written.
    /// Requests it sent after this one are not handled.
    pub fn close_after_reply(&mut self) {
        self.effects.close_current = Some(CloseReason::Quit);
    }

    /// Closes the client with `id`; returns `false` if no such client is connected (or
    /// this call already asked for it). Closing the current client waits for its replies;
    /// any other client, even one already closing (after `QUIT`, with output it does not
    /// read), is closed as soon as this request is handled, its unsent output dropped.
    pub fn kill(&mut self, id: ClientId) -> bool {
        let Some(key) = self.table.key_of(id) else {
            return false;
        };
        if key == self.key {
            if self.effects.close_current.is_some() {
                return false;
            }
            self.effects.close_current = Some(CloseReason::Killed);
            return true;
        }
        if self.effects.kill.iter().any(|&(k, _)| k == key) {
            return false;
        }
        if let Some(client) = self.table.get_mut(key) {
            client.begin_close(CloseReason::Killed);
            self.effects.kill.push((key, CloseReason::Killed));
        }
        true
    }

    /// Sends `response` to another client (or this one), after whatever it was already
    /// owed. Returns `false`, and queues nothing, if no such client is connected, it is
    /// closing, or it has more than the output high watermark unread (it is not reading:
    /// its memory must not grow without bound).
    pub fn send_to(&mut self, id: ClientId, response: &C::Response<'_>) -> bool {
        let Some(key) = self.table.key_of(id) else {
            return false;
        };
        if key == self.key {
            self.reply(response);
            return true;
        }
        let high_watermark = self.server.config.output_high_watermark;
        match self.table.get_mut(key) {
            Some(client) if client.is_open() && client.owed() <= high_watermark => {
                let session = client.session;
                C::encode(session, response, client.queued_output());
                if !client.flush_queued {
                    client.flush_queued = true;
                    self.effects.flush.push(key);
                }
                self.table.account(key);
                true
            }
            _ => false,
        }
    }

    /// Subscribes this client to `name`: a channel, a pattern or a shard channel, as
    /// `kind` says. Returns `false` if it already was (Redis confirms anyway).
    pub fn subscribe(&mut self, kind: Kind, name: &[u8]) -> bool {
        self.pubsub.registry.subscribe(self.key, kind, name)
    }

    /// Unsubscribes this client from `name` of `kind`; returns `false` if it was not
    /// subscribed.
    pub fn unsubscribe(&mut self, kind: Kind, name: &[u8]) -> bool {
        self.pubsub.registry.unsubscribe(self.key, kind, name)
    }

    /// Unsubscribes this client from every topic of `kind`; returns their names, in the
    /// order they were dropped.
    pub fn unsubscribe_all(&mut self, kind: Kind) -> Vec<Arc<[u8]>> {
        self.pubsub.registry.unsubscribe_all(self.key, kind)
    }

    /// How many topics of each kind this client subscribes to.
    pub fn subscriptions(&self) -> Subscriptions {
        self.pubsub.registry.counts(self.key)
    }

    /// The topics with subscribers, server-wide.
    pub fn topics(&self) -> Topics<'_> {
        Topics::new(&self.pubsub.registry)
    }

    /// Publishes a message on `channel`: to its subscribers and to the subscribers of
    /// every pattern that matches it. `encode` writes the message as a receiver reached
    /// `via` a subscription gets it, in the encoding form given (a session reduced by
    /// [`Codec::encoding`]); it is called once per distinct `via` and form, and the bytes
    /// are shared among the receivers. Returns the receivers, as Redis counts them (one
    /// per subscription that matched).
    ///
    /// Subscribers get the message after everything they were owed; this client, if it
    /// subscribes, after its replies to this request. A subscriber whose unsent output
    /// goes past [`Config::pubsub_output_limit`](crate::Config::pubsub_output_limit) is
    /// closed; nobody is waited for.
    pub fn publish(
        &mut self,
        channel: &[u8],
        mut encode: impl FnMut(Via<'_>, C::Session, &mut Vec<u8>),
    ) -> usize {
        self.fan_out(Kind::Channel, channel, &mut encode)
    }

    /// Publishes a message on the shard channel `channel` (patterns are not matched):
    /// see [`publish`](Context::publish).
    pub fn publish_shard(
        &mut self,
        channel: &[u8],
        mut encode: impl FnMut(Via<'_>, C::Session, &mut Vec<u8>),
    ) -> usize {
        self.fan_out(Kind::ShardChannel, channel, &mut encode)
    }

    fn fan_out(
        &mut self,
        kind: Kind,
        channel: &[u8],
        encode: &mut Encode<'_, C::Session>,
    ) -> usize {
        let mut fanout = Fanout {
            current: Some(self.key),
            flush: &mut self.effects.flush,
            kill: &mut self.effects.kill,
            to_self: &mut self.effects.to_self,
            limit: &self.server.config.pubsub_output_limit,
            stats: self.stats,
            now: self.now,
        };
        let PubSub { registry, encoded } = &mut *self.pubsub;
        pubsub::publish(
            self.table,
            registry,
            encoded,
            &mut fanout,
            kind,
            channel,
            encode,
        )
    }

    /// Asks the server to stop: stop accepting, write what is owed, close every client.
    pub fn stop_server(&mut self) {
        self.effects.stop = true;
    }

    /// The connected clients, this one included.
    pub fn clients(&self) -> Clients<'_, C, S> {
        Clients::new(self.table, &self.pubsub.registry)
    }

    /// Facts about the server: start time, listeners, configuration.
    pub fn server(&self) -> &ServerInfo {
        self.server
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        &*self.stats
    }

    /// The time the loop woke up for this batch of events (cheaper than `Instant::now`).
    pub fn now(&self) -> Instant {
        self.now
    }
}
