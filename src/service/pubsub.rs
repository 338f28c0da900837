//! The contexts' pub/sub face ([`crate::pubsub`]): a client's [`Context`] subscribes it
//! to topics; any code on the loop thread ([`ServerContext`]: a request, a timer, code
//! sent by another thread) publishes and looks at the topics; other threads publish
//! through a [`ServerHandle`].

use std::sync::Arc;

use super::{Context, SendError, ServerContext, ServerHandle, Service};
use crate::codec::Codec;
use crate::pubsub::{self, Encode, Fanout, Kind, PubSub, Subscriptions, Topics, Via};

impl<C: Codec, S: Service<C>> ServerContext<'_, C, S> {
    /// Publishes a message on `channel`: to its subscribers and to the subscribers of
    /// every pattern that matches it. `encode` writes the message as a receiver reached
    /// `via` a subscription gets it, in the encoding form given (a session reduced by
    /// [`Codec::encoding`]); it is called once per distinct `via` and form, and the bytes
    /// are shared among the receivers. Returns the receivers, as Redis counts them (one
    /// per subscription that matched).
    ///
    /// Subscribers get the message after everything they were owed; the client whose
    /// code this is, if it subscribes, after its replies to this request. A subscriber
    /// whose unsent output goes past
    /// [`Config::pubsub_output_limit`](crate::Config::pubsub_output_limit) is closed;
    /// nobody is waited for.
    ///
    /// # Examples
    /// ```
    /// use muxd::pubsub::{Kind, Via};
    /// use muxd::resp::{Args, RespCodec, Reply};
    /// use muxd::{Codec, Context, Service};
    ///
    /// /// `LISTEN` subscribes to `news`; `SAY text` publishes it there.
    /// struct Board;
    ///
    /// impl Service<RespCodec> for Board {
    ///     type ClientState = ();
    ///     fn on_request(&mut self, args: Args<'_>, ctx: &mut Context<'_, RespCodec, Self>) {
    ///         if args.command().eq_ignore_ascii_case(b"LISTEN") {
    ///             ctx.subscribe(Kind::Channel, b"news");
    ///             ctx.reply(&Reply::OK);
    ///         } else {
    ///             let text = args.get(1).unwrap_or_default();
    ///             let heard = ctx.publish(b"news", |_via: Via<'_>, session, out| {
    ///                 RespCodec::encode(session, &Reply::Bulk(text), out);
    ///             });
    ///             ctx.reply(&Reply::Integer(heard as i64));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn publish(
        &mut self,
        channel: &[u8],
        mut encode: impl FnMut(Via<'_>, C::Session, &mut Vec<u8>),
    ) -> usize {
        self.fan_out(Kind::Channel, channel, &mut encode)
    }

    /// Publishes a message on the shard channel `channel` (patterns are not matched):
    /// see [`publish`](ServerContext::publish).
    pub fn publish_shard(
        &mut self,
        channel: &[u8],
        mut encode: impl FnMut(Via<'_>, C::Session, &mut Vec<u8>),
    ) -> usize {
        self.fan_out(Kind::ShardChannel, channel, &mut encode)
    }

    /// The topics with subscribers, server-wide.
    pub fn topics(&self) -> Topics<'_> {
        Topics::new(&self.core.pubsub.registry)
    }

    fn fan_out(
        &mut self,
        kind: Kind,
        channel: &[u8],
        encode: &mut Encode<'_, C::Session>,
    ) -> usize {
        let core = &mut *self.core;
        let mut fanout = Fanout {
            current: self.current.as_ref().map(|c| c.key),
            flush: &mut core.effects.flush,
            kill: &mut core.effects.kill,
            to_self: &mut core.effects.to_self,
            limit: &core.info.config.pubsub_output_limit,
            stats: &mut core.stats,
            now: core.now,
        };
        pubsub::publish(
            &mut core.clients,
            &mut core.pubsub,
            &mut fanout,
            kind,
            channel,
            encode,
        )
    }
}

impl<C: Codec, S: Service<C>> Context<'_, C, S> {
    /// Subscribes this client to `name`: a channel, a pattern or a shard channel, as
    /// `kind` says. Returns `false` if it already was (Redis confirms anyway). It stays
    /// subscribed until it unsubscribes or goes.
    pub fn subscribe(&mut self, kind: Kind, name: &[u8]) -> bool {
        let key = self.key();
        self.core.pubsub.registry.subscribe(key, kind, name)
    }

    /// Unsubscribes this client from `name` of `kind`; returns `false` if it was not
    /// subscribed.
    pub fn unsubscribe(&mut self, kind: Kind, name: &[u8]) -> bool {
        let key = self.key();
        let PubSub {
            registry, arena, ..
        } = &mut self.core.pubsub;
        registry.unsubscribe(key, kind, name, arena)
    }

    /// Unsubscribes this client from every topic of `kind`; returns their names, in the
    /// order they were dropped.
    pub fn unsubscribe_all(&mut self, kind: Kind) -> Vec<Arc<[u8]>> {
        let key = self.key();
        let PubSub {
            registry, arena, ..
        } = &mut self.core.pubsub;
        registry.unsubscribe_all(key, kind, arena)
    }

    /// Whether this client subscribes to anything (what [`subscriptions`] would count,
    /// cheaper).
    ///
    /// [`subscriptions`]: Context::subscriptions
    #[inline]
    pub fn is_subscribed(&self) -> bool {
        self.core.pubsub.registry.is_subscribed(self.key())
    }

    /// How many topics of each kind this client subscribes to.
    pub fn subscriptions(&self) -> Subscriptions {
        self.core.pubsub.registry.counts(self.key())
    }
}

impl<C: Codec, S: Service<C>> ServerHandle<C, S> {
    /// Publishes a message on `channel` from any thread: `encode` runs on the loop thread
    /// and writes the message as a receiver reached `via` a subscription gets it, in each
    /// encoding form its receivers speak (see [`ServerContext::publish`]). Messages one
    /// thread publishes reach each subscriber in the order it published them. Waits while
    /// the queue is full.
    ///
    /// # Errors
    /// As [`run`](ServerHandle::run).
    ///
    /// # Examples
    /// ```no_run
    /// # use muxd::{ServerHandle, commands::CommandService, resp::{RespCodec, Reply}, Codec};
    /// # fn f(handle: ServerHandle<RespCodec, CommandService>) {
    /// let tick = b"tick".to_vec();
    /// let _ = handle.publish(b"clock".to_vec(), move |_via, session, out| {
    ///     let message = [Reply::Bulk(b"message"), Reply::Bulk(b"clock"), Reply::Bulk(&tick)];
    ///     RespCodec::encode(session, &Reply::Push(&message), out);
    /// });
    /// # }
    /// ```
    pub fn publish(
        &self,
        channel: Vec<u8>,
        mut encode: impl FnMut(Via<'_>, C::Session, &mut Vec<u8>) + Send + 'static,
    ) -> Result<(), SendError> {
        self.run(move |_, ctx| {
            ctx.publish(&channel, &mut encode);
        })
    }

    /// [`publish`](ServerHandle::publish), or [`SendError::Full`] at once if the queue is
    /// full.
    ///
    /// # Errors
    /// As [`try_run`](ServerHandle::try_run).
    pub fn try_publish(
        &self,
        channel: Vec<u8>,
        mut encode: impl FnMut(Via<'_>, C::Session, &mut Vec<u8>) + Send + 'static,
    ) -> Result<(), SendError> {
        self.try_run(move |_, ctx| {
            ctx.publish(&channel, &mut encode);
        })
    }
}
