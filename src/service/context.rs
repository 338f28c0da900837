//! [`Context`]: the service's view of the server while its code runs for one client (a
//! request, the client's arrival, one of its timers).

use std::ops::{Deref, DerefMut};

use super::core::Core;
use super::server_context::Current;
use super::{ServerContext, Service};
use crate::client::{ClientId, ClientInfo, CloseReason};
use crate::codec::Codec;

/// The service's view of the server while its code runs for one client: the client's
/// info, its state and session, replying to it; and, through [`Deref`] to
/// [`ServerContext`], everything server-wide (other clients, timers, stopping).
pub struct Context<'a, C: Codec, S: Service<C>> {
    /// `current` is always `Some`.
    server: ServerContext<'a, C, S>,
}

impl<'a, C: Codec, S: Service<C>> Context<'a, C, S> {
    /// The context for the client at `key` (in the table for the whole call) speaking
    /// `session`, whose responses go to `out`.
    #[inline]
    pub(crate) fn new(
        core: &'a mut Core<C, S>,
        key: usize,
        out: &'a mut Vec<u8>,
        session: C::Session,
    ) -> Context<'a, C, S> {
        Context {
            server: ServerContext {
                core,
                current: Some(Current { key, out, session }),
            },
        }
    }

    /// Sends `response` to this client, after every response sent before it.
    #[inline]
    pub fn reply(&mut self, response: &C::Response<'_>) {
        if let Some(current) = self.server.current.as_mut() {
            C::encode(current.session, response, current.out);
        }
    }

    /// Sends the codec's error response carrying `message`.
    pub fn reply_error(&mut self, message: &dyn std::fmt::Display) {
        if let Some(current) = self.server.current.as_mut() {
            C::encode_error(current.session, message, current.out);
        }
    }

    /// This client's protocol session: what it agreed with the server about the wire
    /// format (for RESP: the version, 2 or 3, and whether it is authenticated).
    #[inline]
    pub fn session(&self) -> C::Session {
        self.server
            .current
            .as_ref()
            .map_or_else(C::Session::default, |c| c.session)
    }

    /// Changes this client's protocol session: this request's responses sent after the
    /// call, and all later requests and responses, are decoded and encoded in it (RESP's
    /// `HELLO 3` switches to RESP3; `AUTH` lifts the unauthenticated limits).
    pub fn set_session(&mut self, session: C::Session) {
        let key = self.key();
        if let Some(current) = self.server.current.as_mut() {
            current.session = session;
        }
        if let Some(client) = self.server.core.clients.get_mut(key) {
            client.session = session;
        }
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.info().id
    }

    /// This client's info and counters.
    pub fn info(&self) -> &ClientInfo {
        match self.server.core.clients.get(self.key()) {
            Some(client) => &client.info,
            None => unreachable!("the client being served is in the table"),
        }
    }

    /// This client's service state.
    #[inline]
    pub fn state(&mut self) -> &mut S::ClientState {
        let key = self.key();
        match self.server.core.clients.get_mut(key) {
            Some(client) => &mut client.state,
            None => unreachable!("the client being served is in the table"),
        }
    }

    /// Names this client (`None` clears the name); shown in [`ClientInfo::name`].
    pub fn set_name(&mut self, name: Option<&str>) {
        let key = self.key();
        if let Some(client) = self.server.core.clients.get_mut(key) {
            client.info.set_name(name);
        }
    }

    /// Closes this client once the replies to this and earlier requests are written.
    /// Requests it sent after this one are not handled.
    pub fn close_after_reply(&mut self) {
        self.server.core.effects.close_current = Some(CloseReason::Quit);
    }

    /// This client's slab key.
    pub(super) fn key(&self) -> usize {
        match &self.server.current {
            Some(current) => current.key,
            None => unreachable!("a client's context has a client"),
        }
    }
}

impl<'a, C: Codec, S: Service<C>> Deref for Context<'a, C, S> {
    type Target = ServerContext<'a, C, S>;

    fn deref(&self) -> &ServerContext<'a, C, S> {
        &self.server
    }
}

impl<C: Codec, S: Service<C>> DerefMut for Context<'_, C, S> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.server
    }
}
