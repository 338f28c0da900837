//! A publish: a message goes to every subscriber of its channel and of every pattern
//! matching it.
//!
//! The cost per subscriber is only what it must be. For each group of receivers (the
//! channel's subscribers, then each matching pattern's) the message is encoded once per
//! encoding form they speak ([`Codec::encoding`]: for RESP, RESP2 arrays or RESP3
//! pushes), appended to the group's open batch for that form in the [`Arena`]; each
//! receiver gets the range queued after what it is already owed (merged into its last
//! range when it continues it: the messages of a turn go out as one slice), and joins
//! the list of clients the loop writes at the end of its turn, once each, whatever number
//! of messages it got. Nothing is written and nothing waits here: a subscriber that does
//! not read only piles up ranges, until it reaches its output limit and is closed.
//!
//! The client being served (a client publishing to a channel it listens to itself) gets
//! its messages after its reply, never inside it: they wait in `to_self` until the
//! service has returned.

use std::time::Instant;

use log::warn;

use super::registry::Topic;
use super::{Encode, Kind, PubSub, Via};
use crate::client::CloseReason;
use crate::client::frames::{Arena, FrameRef};
use crate::client_table::ClientTable;
use crate::codec::Codec;
use crate::config::OutputLimit;
use crate::stats::Stats;

/// What a publish hands back to the loop, and what it needs from it.
pub(crate) struct Fanout<'a> {
    /// The client being served, whose messages wait in `to_self` until its reply is done.
    pub(crate) current: Option<usize>,
    /// Clients sent something, to write at the end of the loop's turn.
    pub(crate) flush: &'a mut Vec<usize>,
    /// Clients past their output limit, to close as soon as the request is handled.
    pub(crate) kill: &'a mut Vec<(usize, CloseReason)>,
    /// Messages for the client being served.
    pub(crate) to_self: &'a mut Vec<FrameRef>,
    pub(crate) limit: &'a OutputLimit,
    pub(crate) stats: &'a mut Stats,
    pub(crate) now: Instant,
}

/// Publishes on `channel` (of `kind`: a channel or a shard channel) the message `encode`
/// writes for a receiver reached `via` a subscription, in the encoding form given.
/// Returns the receivers, counted as Redis counts them: a client subscribed to the
/// channel and to a matching pattern receives, and counts, twice.
pub(crate) fn publish<C: Codec, S>(
    table: &mut ClientTable<C, S>,
    pubsub: &mut PubSub<C::Session>,
    out: &mut Fanout<'_>,
    kind: Kind,
    channel: &[u8],
    encode: &mut Encode<'_, C::Session>,
) -> usize {
    let PubSub {
        registry,
        arena,
        forms,
    } = pubsub;
    let mut receivers = 0;
    let direct = match kind {
        Kind::ShardChannel => Via::ShardChannel,
        Kind::Channel | Kind::Pattern => Via::Channel,
    };
    if let Some(topic) = registry.topic_mut(kind, channel) {
        receivers += deliver(table, arena, forms, topic, direct, out, encode);
    }
    if kind == Kind::Channel {
        for topic in registry.topics_mut(Kind::Pattern) {
            if topic
                .glob
                .as_ref()
                .is_some_and(|glob| glob.matches(channel))
            {
                let name = std::sync::Arc::clone(&topic.name);
                receivers += deliver(table, arena, forms, topic, Via::Pattern(&name), out, encode);
            }
        }
    }
    receivers
}

/// Queues the message for each of `topic`'s subscribers; returns how many there are.
fn deliver<C: Codec, S>(
    table: &mut ClientTable<C, S>,
    arena: &mut Arena,
    forms: &mut Vec<C::Session>,
    topic: &mut Topic,
    via: Via<'_>,
    out: &mut Fanout<'_>,
    encode: &mut Encode<'_, C::Session>,
) -> usize {
    // The message in each form this group speaks, encoded on first need, and the batches
    // it filled (closed once every subscriber has its range).
    let mut encoded: [Option<FrameRef>; FORMS] = [None; FORMS];
    let mut filled: [Option<usize>; FORMS] = [None; FORMS];
    let Topic {
        subscribers, open, ..
    } = topic;
    for &key in subscribers.iter() {
        let Some(client) = table.get_mut(key) else {
            continue;
        };
        if !client.is_open() {
            // Closing: counted, as Redis counts it, but sent nothing.
            continue;
        }
        let session = C::encoding(client.session);
        let form = match forms.iter().position(|f| *f == session) {
            Some(form) => form,
            None => {
                forms.push(session);
                forms.len() - 1
            }
        };
        let Some(slot) = encoded.get_mut(form) else {
            // More encoding forms than FORMS: not a codec this loop serves well; skipped.
            continue;
        };
        let frame = *slot.get_or_insert_with(|| {
            let batch = open_batch(open, form, arena);
            let (frame, full) = arena.append(batch, |bytes| encode(via, session, bytes));
            if full {
                open.retain(|&(f, _)| f != form);
                if let Some(slot) = filled.get_mut(form) {
                    *slot = Some(batch);
                }
            }
            frame
        });
        if out.current == Some(key) {
            out.to_self.push(frame);
            continue;
        }
        match client.push_frame(frame, arena, out.limit, out.now) {
            Some(hit) => {
                client.begin_close(CloseReason::Limit);
                out.kill.push((key, CloseReason::Limit));
                out.stats.client_output_buffer_limit_disconnections += 1;
                let (hard, soft) = (out.limit.hard, out.limit.soft);
                warn!(
                    "client output buffer limit reached, closing client={} limit={} owed={} hard={hard} soft={soft} soft_seconds={}",
                    client.info.id,
                    hit.as_str(),
                    client.owed(),
                    out.limit.soft_time.as_secs()
                );
            }
            None if !client.flush_queued => {
                client.flush_queued = true;
                out.flush.push(key);
            }
            None => {}
        }
        table.account(key);
    }
    for batch in filled.into_iter().flatten() {
        arena.close(batch);
    }
    subscribers.len()
}

/// The batch a topic's messages in `form` are appended to, opened if it has none.
fn open_batch(open: &mut Vec<(usize, usize)>, form: usize, arena: &mut Arena) -> usize {
    if let Some(&(_, batch)) = open.iter().find(|&&(f, _)| f == form) {
        return batch;
    }
    let batch = arena.open();
    open.push((form, batch));
    batch
}

/// Encoding forms a publish tells apart (RESP has two: RESP2 and RESP3).
pub(crate) const FORMS: usize = 4;
