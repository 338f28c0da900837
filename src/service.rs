//! What the server does with a request: the [`Service`] trait and the [`Context`] it
//! works through.
//!
//! The loop decodes a request with the [`Codec`], hands it to the service with a context
//! for the client it came from, and writes whatever the service replied, in request order.
//! Through the context a service reads the client's info and its own per-client state,
//! looks at the table of clients, replies, and asks for effects the loop carries out at a
//! safe point: close this client after its reply, close another client, stop the server.

use std::time::Instant;

use crate::client::{ClientId, ClientInfo, CloseReason};
use crate::client_table::{ClientTable, Clients};
use crate::codec::Codec;
use crate::config::ServerInfo;
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
    /// Other clients to close now (slab keys).
    pub(crate) kill: Vec<usize>,
    /// Other clients that were sent a response and need a write (slab keys).
    pub(crate) flush: Vec<usize>,
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
    server: &'a ServerInfo,
    stats: &'a Stats,
    now: Instant,
}

impl<'a, C: Codec, S> Context<'a, C, S> {
    /// The context for serving the client at `key`, whose responses go to `out`; it
    /// is in the default session until [`speaking`](Context::speaking) says otherwise.
    pub(crate) fn new(
        table: &'a mut ClientTable<C, S>,
        key: usize,
        out: &'a mut Vec<u8>,
        effects: &'a mut Effects,
        server: &'a ServerInfo,
        stats: &'a Stats,
        now: Instant,
    ) -> Context<'a, C, S> {
        Context {
            table,
            key,
            out,
            session: C::Session::default(),
            effects,
            server,
            stats,
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
            client.info.set_name(name);
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
        if self.effects.kill.contains(&key) {
            return false;
        }
        if let Some(client) = self.table.get_mut(key) {
            client.begin_close(CloseReason::Killed);
            self.effects.kill.push(key);
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
                self.effects.flush.push(key);
                true
            }
            _ => false,
        }
    }

    /// Asks the server to stop: stop accepting, write what is owed, close every client.
    pub fn stop_server(&mut self) {
        self.effects.stop = true;
    }

    /// The connected clients, this one included.
    pub fn clients(&self) -> Clients<'_, C, S> {
        Clients::new(self.table)
    }

    /// Facts about the server: start time, listeners, configuration.
    pub fn server(&self) -> &ServerInfo {
        self.server
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        self.stats
    }

    /// The time the loop woke up for this batch of events (cheaper than `Instant::now`).
    pub fn now(&self) -> Instant {
        self.now
    }
}
