//! Publish/subscribe in the loop: clients subscribe to topics, a message published to a
//! topic goes to every subscriber. Generic over the codec: a service subscribes its
//! clients and publishes through its [`Context`](crate::Context); the daemon's Redis
//! commands (`SUBSCRIBE`, `PUBLISH`, ...) are one such service.
//!
//! - [`glob`]: patterns as Redis matches them, with a cost bound;
//! - `registry`: who is subscribed to what, both ways (a client that goes leaves nothing);
//! - `fanout`: a publish: each message encoded once per encoding form its receivers
//!   speak into a batch they share (`client::frames::Arena`), a range of it queued
//!   after what each is owed (the messages of a turn merged into one range), each
//!   receiver written once at the end of the loop's turn; a subscriber past its output
//!   limit closed, never waited for.
//!
//! Three namespaces ([`Kind`]): channels, patterns (a message on a channel also goes to
//! the subscribers of every pattern matching it, each pattern matched once per publish
//! however many subscribe to it) and shard channels (Redis's sharded pub/sub; a
//! standalone server has one shard, so they behave as channels in a namespace of their
//! own, without patterns).

mod fanout;
pub mod glob;
mod registry;

pub(crate) use fanout::{Fanout, publish};

use crate::client::frames::Arena;
pub use glob::{Glob, glob_match};
pub(crate) use registry::Registry;

/// The loop's pub/sub state: the registry, the batches of messages published, and the
/// encoding forms seen (a codec's sessions reduced by [`Codec::encoding`](crate::Codec)),
/// numbered in the order first seen.
#[derive(Debug)]
pub(crate) struct PubSub<Session> {
    pub(crate) registry: Registry,
    pub(crate) arena: Arena,
    pub(crate) forms: Vec<Session>,
}

impl<Session> Default for PubSub<Session> {
    fn default() -> PubSub<Session> {
        PubSub {
            registry: Registry::default(),
            arena: Arena::default(),
            forms: Vec::new(),
        }
    }
}

/// Writes a message as a receiver reached [`Via`] a subscription gets it, in an encoding
/// form (a session reduced by [`Codec::encoding`](crate::Codec::encoding)).
pub(crate) type Encode<'e, Session> = dyn FnMut(Via<'_>, Session, &mut Vec<u8>) + 'e;

/// A namespace of topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Channels, named exactly (`SUBSCRIBE`, `PUBLISH`).
    Channel,
    /// Glob patterns over channel names (`PSUBSCRIBE`): see [`Glob`].
    Pattern,
    /// Shard channels (`SSUBSCRIBE`, `SPUBLISH`): channels of their own namespace,
    /// never matched by patterns.
    ShardChannel,
}

impl Kind {
    /// Every kind, in the order their counts are listed.
    pub const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::ShardChannel];

    /// The member of `of` that belongs to this kind.
    pub(crate) fn pick<T>(self, of: &[T; 3]) -> &T {
        let [channel, pattern, shard] = of;
        match self {
            Kind::Channel => channel,
            Kind::Pattern => pattern,
            Kind::ShardChannel => shard,
        }
    }

    pub(crate) fn pick_mut<T>(self, of: &mut [T; 3]) -> &mut T {
        let [channel, pattern, shard] = of;
        match self {
            Kind::Channel => channel,
            Kind::Pattern => pattern,
            Kind::ShardChannel => shard,
        }
    }
}

/// How a message reached a subscriber: what its encoding may need to say (Redis's
/// `message` versus `pmessage` with the pattern; `smessage` for a shard channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via<'a> {
    /// It subscribed to the channel the message was published on.
    Channel,
    /// It subscribed to this pattern, which matches the channel.
    Pattern(&'a [u8]),
    /// It subscribed to the shard channel the message was published on.
    ShardChannel,
}

/// How many topics of each kind a client is subscribed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subscriptions {
    /// Channels.
    pub channels: usize,
    /// Patterns.
    pub patterns: usize,
    /// Shard channels.
    pub shard_channels: usize,
}

impl Subscriptions {
    /// Channels and patterns: the count Redis reports in `subscribe`/`psubscribe` (and
    /// their `unsubscribe`) confirmations.
    pub fn channels_and_patterns(&self) -> usize {
        self.channels + self.patterns
    }

    /// Every subscription: a RESP2 client with any is in Redis's subscribed mode.
    pub fn total(&self) -> usize {
        self.channels + self.patterns + self.shard_channels
    }

    /// The count of `kind`.
    pub fn of(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel => self.channels,
            Kind::Pattern => self.patterns,
            Kind::ShardChannel => self.shard_channels,
        }
    }
}

/// The server-wide pub/sub view a service reads (`PUBSUB CHANNELS`, `NUMSUB`, `NUMPAT`,
/// `INFO`).
#[derive(Debug, Clone, Copy)]
pub struct Topics<'a> {
    registry: &'a Registry,
}

impl<'a> Topics<'a> {
    pub(crate) fn new(registry: &'a Registry) -> Topics<'a> {
        Topics { registry }
    }

    /// How many topics of `kind` have subscribers (Redis's `pubsub_channels`,
    /// `pubsub_patterns`, `pubsubshard_channels`).
    pub fn len(&self, kind: Kind) -> usize {
        self.registry.len(kind)
    }

    /// Whether no topic of `kind` has a subscriber.
    pub fn is_empty(&self, kind: Kind) -> bool {
        self.len(kind) == 0
    }

    /// The names of the topics of `kind` with subscribers, in no particular order.
    pub fn names(&self, kind: Kind) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.registry.topics(kind).map(|topic| &*topic.name)
    }

    /// How many clients subscribe to `name` (of `kind`; pattern subscribers of a channel
    /// are not counted, as in `PUBSUB NUMSUB`).
    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> usize {
        self.registry
            .topic(kind, name)
            .map_or(0, |topic| topic.subscribers.len())
    }
}
