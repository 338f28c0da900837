//! A publish: a message goes to every subscriber of its channel and of every pattern
//! matching it.
//!
//! The cost is per subscriber only what it must be. For each group of receivers (the
//! channel's subscribers, then each matching pattern's) the message is encoded once per
//! encoding form they speak ([`Codec::encoding`]: for RESP, RESP2 arrays or RESP3
//! pushes) into a shared [`Frame`]; each receiver gets a reference queued after what it
//! is already owed, and joins the list of clients the loop writes at the end of its turn,
//! once each, whatever number of messages it got. Nothing is written and nothing waits
//! here: a subscriber that does not read only piles up references, until it reaches its
//! output limit and is closed.
//!
//! The client being served (a client publishing to a channel it listens to itself) gets
//! its frames after its reply, never inside it: they wait in `to_self` until the service
//! has returned.

use std::time::Instant;

use log::warn;

use super::{Encode, Kind, Registry, Via};
use crate::client::CloseReason;
use crate::client::frames::Frame;
use crate::client_table::ClientTable;
use crate::codec::Codec;
use crate::config::OutputLimit;
use crate::stats::Stats;

/// Encoding forms remembered per group of receivers (RESP has two: RESP2 and RESP3).
const FORMS: usize = 4;

/// What a publish hands back to the loop, and what it needs from it.
pub(crate) struct Fanout<'a> {
    /// The client being served, whose frames wait in `to_self` until its reply is done.
    pub(crate) current: Option<usize>,
    /// Clients sent something, to write at the end of the loop's turn.
    pub(crate) flush: &'a mut Vec<usize>,
    /// Clients past their output limit, to close as soon as the request is handled.
    pub(crate) kill: &'a mut Vec<(usize, CloseReason)>,
    /// Frames for the client being served.
    pub(crate) to_self: &'a mut Vec<Frame>,
    pub(crate) limit: &'a OutputLimit,
    pub(crate) stats: &'a mut Stats,
    pub(crate) now: Instant,
}

/// Publishes on `channel` (of `kind`: a channel or a shard channel) the message `encode`
/// writes for a receiver reached `via` a subscription, in the encoding form given.
/// Returns the receivers, counted as Redis counts them: a client subscribed to the
/// channel and to a matching pattern receives, and counts, twice.
#[allow(clippy::too_many_arguments)]
pub(crate) fn publish<C: Codec, S>(
    table: &mut ClientTable<C, S>,
    registry: &Registry,
    encoded: &mut Vec<u8>,
    out: &mut Fanout<'_>,
    kind: Kind,
    channel: &[u8],
    encode: &mut Encode<'_, C::Session>,
) -> usize {
    let mut receivers = 0;
    let direct = match kind {
        Kind::ShardChannel => Via::ShardChannel,
        Kind::Channel | Kind::Pattern => Via::Channel,
    };
    if let Some(topic) = registry.topic(kind, channel) {
        receivers += deliver(table, &topic.subscribers, direct, encoded, out, encode);
    }
    if kind == Kind::Channel {
        for topic in registry.topics(Kind::Pattern) {
            if topic
                .glob
                .as_ref()
                .is_some_and(|glob| glob.matches(channel))
            {
                let via = Via::Pattern(&topic.name);
                receivers += deliver(table, &topic.subscribers, via, encoded, out, encode);
            }
        }
    }
    receivers
}

/// Queues the message for each of `subscribers`; returns how many there are.
fn deliver<C: Codec, S>(
    table: &mut ClientTable<C, S>,
    subscribers: &[usize],
    via: Via<'_>,
    encoded: &mut Vec<u8>,
    out: &mut Fanout<'_>,
    encode: &mut Encode<'_, C::Session>,
) -> usize {
    let mut forms: [Option<(C::Session, Frame)>; FORMS] = Default::default();
    for &key in subscribers {
        let Some(client) = table.get_mut(key) else {
            continue;
        };
        if !client.is_open() {
            // Closing: counted, as Redis counts it, but sent nothing.
            continue;
        }
        let form = C::encoding(client.session);
        let known = forms
            .iter()
            .flatten()
            .find(|(f, _)| *f == form)
            .map(|(_, frame)| frame.clone());
        let frame = known.unwrap_or_else(|| {
            encoded.clear();
            encode(via, form, encoded);
            let frame = Frame::new(encoded);
            if let Some(slot) = forms.iter_mut().find(|slot| slot.is_none()) {
                *slot = Some((form, frame.clone()));
            }
            frame
        });
        if out.current == Some(key) {
            out.to_self.push(frame);
            continue;
        }
        match client.push_frame(frame, out.limit, out.now) {
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
    subscribers.len()
}
