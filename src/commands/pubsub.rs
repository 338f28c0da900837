//! Pub/sub, as Redis 7 has it: `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`,
//! `SSUBSCRIBE`, `SUNSUBSCRIBE` (confirmations carrying the client's count), `PUBLISH`,
//! `SPUBLISH` (the receivers, as Redis counts them), `PUBSUB CHANNELS | NUMSUB | NUMPAT |
//! SHARDCHANNELS | SHARDNUMSUB | HELP`, and the RESP2 subscribed mode, in which only the
//! subscription commands, `PING`, `QUIT` and `RESET` are allowed. Built on the library's
//! [`crate::pubsub`]: the commands reply, the loop keeps the topics.
//!
//! A standalone Redis has one shard, so shard channels behave as channels of their own
//! namespace (`smessage` instead of `message`, never matched by patterns).

use super::{
    CommandService, Ctx, arity_ok, reply_help, reply_unknown_subcommand, reply_wrong_arity,
};
use crate::codec::Codec;
use crate::pubsub::{Glob, Kind, Via};
use crate::resp::{Args, Protocol, Reply, RespCodec};

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// `PUBSUB`'s subcommands and their arities (Redis's, the command name included).
pub(crate) const SUBCOMMANDS: &[(&str, i32)] = &[
    ("channels", -2),
    ("numsub", -2),
    ("numpat", 2),
    ("shardchannels", -2),
    ("shardnumsub", -2),
    ("help", 2),
];

/// The subcommands of the daemon's commands that have them, with their arities.
fn subcommands(command: &str) -> &'static [(&'static str, i32)] {
    match command {
        "client" => super::client::SUBCOMMANDS,
        "config" => super::config::SUBCOMMANDS,
        "command" => super::command::SUBCOMMANDS,
        "pubsub" => SUBCOMMANDS,
        _ => &[],
    }
}

/// In Redis's subscribed mode (RESP2, subscribed to anything) a command not flagged
/// [`PUBSUB_OK`](super::PUBSUB_OK) is refused: returns Redis's error text, naming the
/// command as Redis does (`client|list` for a subcommand). An unknown subcommand or a
/// subcommand's wrong arity is left to the command, which reports it first, as Redis
/// does.
#[inline]
pub(crate) fn refusal_when_subscribed(
    name: &str,
    args: &Args<'_>,
    ctx: &Ctx<'_>,
) -> Option<String> {
    if !in_subscribed_mode(ctx) {
        return None;
    }
    refusal(name, args)
}

#[cold]
fn refusal(name: &str, args: &Args<'_>) -> Option<String> {
    let subs = subcommands(name);
    let full_name = if subs.is_empty() || args.len() == 1 {
        name.to_owned()
    } else {
        let sub = args.get(1).unwrap_or_default();
        match subs
            .iter()
            .find(|(s, _)| s.as_bytes().eq_ignore_ascii_case(sub))
        {
            Some(&(s, arity)) if arity_ok(arity, args.len()) => format!("{name}|{s}"),
            _ => return None,
        }
    };
    Some(format!(
        "ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Whether the client is in Redis's subscribed mode: subscribed to anything (of any kind)
/// and speaking RESP2 (in RESP3 pushes cannot be mistaken for replies: anything goes).
#[inline]
pub(crate) fn in_subscribed_mode(ctx: &Ctx<'_>) -> bool {
    ctx.is_subscribed() && ctx.session().protocol == Protocol::Resp2
}

/// A (un)subscribe confirmation, `[verb, name, count]`: a push (`>`) in RESP3, an array
/// in RESP2.
fn confirm(verb: &[u8], name: Reply<'_>, count: i64, ctx: &mut Ctx<'_>) {
    ctx.reply(&Reply::Push(&[
        Reply::Bulk(verb),
        name,
        Reply::Integer(count),
    ]));
}

/// `SUBSCRIBE channel [channel ...]`
pub(crate) fn subscribe(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    subscribe_to(Kind::Channel, b"subscribe", args, ctx);
}

/// `PSUBSCRIBE pattern [pattern ...]`
pub(crate) fn psubscribe(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    subscribe_to(Kind::Pattern, b"psubscribe", args, ctx);
}

/// `SSUBSCRIBE shardchannel [shardchannel ...]`
pub(crate) fn ssubscribe(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    subscribe_to(Kind::ShardChannel, b"ssubscribe", args, ctx);
}

/// `UNSUBSCRIBE [channel ...]`
pub(crate) fn unsubscribe(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    unsubscribe_from(Kind::Channel, b"unsubscribe", args, ctx);
}

/// `PUNSUBSCRIBE [pattern ...]`
pub(crate) fn punsubscribe(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    unsubscribe_from(Kind::Pattern, b"punsubscribe", args, ctx);
}

/// `SUNSUBSCRIBE [shardchannel ...]`
pub(crate) fn sunsubscribe(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    unsubscribe_from(Kind::ShardChannel, b"sunsubscribe", args, ctx);
}

/// The count a confirmation carries: channels and patterns together, shard channels
/// apart (as Redis counts them).
fn count(kind: Kind, ctx: &Ctx<'_>) -> i64 {
    let subs = ctx.subscriptions();
    let n = match kind {
        Kind::ShardChannel => subs.shard_channels,
        Kind::Channel | Kind::Pattern => subs.channels_and_patterns(),
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn subscribe_to(kind: Kind, verb: &[u8], args: Args<'_>, ctx: &mut Ctx<'_>) {
    for name in args.iter().skip(1) {
        ctx.subscribe(kind, name);
        let n = count(kind, ctx);
        confirm(verb, Reply::Bulk(name), n, ctx);
    }
}

fn unsubscribe_from(kind: Kind, verb: &[u8], args: Args<'_>, ctx: &mut Ctx<'_>) {
    if args.len() > 1 {
        for name in args.iter().skip(1) {
            ctx.unsubscribe(kind, name);
            let n = count(kind, ctx);
            confirm(verb, Reply::Bulk(name), n, ctx);
        }
        return;
    }
    let dropped = ctx.unsubscribe_all(kind);
    let left = count(kind, ctx);
    if dropped.is_empty() {
        // Subscribed to nothing: one confirmation all the same, with a null name.
        confirm(verb, Reply::Null, left, ctx);
    }
    for (i, name) in dropped.iter().enumerate() {
        // The count after each one, as if they had been dropped one by one.
        let n = left + i64::try_from(dropped.len() - 1 - i).unwrap_or(0);
        confirm(verb, Reply::Bulk(name), n, ctx);
    }
}

/// `PUBLISH channel message`
pub(crate) fn publish(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    publish_on(Kind::Channel, args, ctx);
}

/// `SPUBLISH shardchannel message`
pub(crate) fn spublish(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    publish_on(Kind::ShardChannel, args, ctx);
}

fn publish_on(kind: Kind, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let channel = args.get(1).unwrap_or_default();
    let message = args.get(2).unwrap_or_default();
    let encode = |via: Via<'_>, session, out: &mut Vec<u8>| {
        let bulk = Reply::Bulk;
        let items = match via {
            Via::Channel => &[bulk(b"message"), bulk(channel), bulk(message)][..],
            Via::ShardChannel => &[bulk(b"smessage"), bulk(channel), bulk(message)],
            Via::Pattern(p) => &[bulk(b"pmessage"), bulk(p), bulk(channel), bulk(message)],
        };
        RespCodec::encode(session, &Reply::Push(items), out);
    };
    let receivers = match kind {
        Kind::ShardChannel => ctx.publish_shard(channel, encode),
        Kind::Channel | Kind::Pattern => ctx.publish(channel, encode),
    };
    ctx.reply(&Reply::Integer(
        i64::try_from(receivers).unwrap_or(i64::MAX),
    ));
}

/// `PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP`
pub(crate) fn pubsub(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let sub = args.get(1).unwrap_or_default();
    let Some(&(name, arity)) = SUBCOMMANDS
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(sub))
    else {
        reply_unknown_subcommand("pubsub", sub, ctx);
        return;
    };
    if !arity_ok(arity, args.len()) {
        reply_wrong_arity(&format!("pubsub|{name}"), ctx);
        return;
    }
    match name {
        "channels" | "shardchannels" if args.len() > 3 => {
            // Redis's own check, past the arity: at most one pattern.
            let message = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(sub)
            );
            ctx.reply(&Reply::Error(&message));
        }
        "channels" => channels(Kind::Channel, args.get(2), ctx),
        "shardchannels" => channels(Kind::ShardChannel, args.get(2), ctx),
        "numsub" => numsub(Kind::Channel, &args, ctx),
        "shardnumsub" => numsub(Kind::ShardChannel, &args, ctx),
        "numpat" => {
            let n = ctx.topics().len(Kind::Pattern);
            ctx.reply(&Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        _ => reply_help(HELP, ctx),
    }
}

/// The active channels of `kind`, those matching `pattern` if given.
fn channels(kind: Kind, pattern: Option<&[u8]>, ctx: &mut Ctx<'_>) {
    let glob = pattern.map(Glob::new);
    let names: Vec<Vec<u8>> = ctx
        .topics()
        .names(kind)
        .filter(|name| glob.as_ref().is_none_or(|g| g.matches(name)))
        .map(<[u8]>::to_vec)
        .collect();
    ctx.reply(&Reply::ArrayHeader(names.len()));
    for name in &names {
        ctx.reply(&Reply::Bulk(name));
    }
}

/// Each channel of `kind` named, with its number of subscribers.
fn numsub(kind: Kind, args: &Args<'_>, ctx: &mut Ctx<'_>) {
    ctx.reply(&Reply::ArrayHeader((args.len() - 2) * 2));
    for name in args.iter().skip(2) {
        let n = ctx.topics().subscribers(kind, name);
        ctx.reply(&Reply::Bulk(name));
        ctx.reply(&Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::{COMMANDS, PUBSUB_OK};

    /// What Redis's `processCommand` lets run in the subscribed mode, and nothing else.
    #[test]
    fn the_commands_allowed_when_subscribed_are_redis_s() {
        let mut allowed: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.flags & PUBSUB_OK != 0)
            .map(|c| c.name)
            .collect();
        allowed.sort_unstable();
        assert_eq!(
            allowed,
            [
                "ping",
                "psubscribe",
                "punsubscribe",
                "quit",
                "reset",
                "ssubscribe",
                "subscribe",
                "sunsubscribe",
                "unsubscribe"
            ]
        );
    }
}
