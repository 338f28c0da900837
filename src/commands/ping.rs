//! `PING [message]` and `ECHO message`: the round-trip checks.

use super::{CommandService, Ctx, pubsub, reply_wrong_arity};
use crate::resp::{Args, Reply};

/// `PING` replies `+PONG`; `PING message` replies the message as a bulk string. In the
/// RESP2 subscribed mode, as Redis does, both reply `pong` and the message (empty without
/// one) as a two-element array.
pub(crate) fn ping(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    match (args.len(), args.get(1)) {
        (1 | 2, message) if pubsub::in_subscribed_mode(ctx) => {
            let message = Reply::Bulk(message.unwrap_or_default());
            ctx.reply(&Reply::Array(&[Reply::Bulk(b"pong"), message]));
        }
        (1, _) => ctx.reply(&Reply::PONG),
        (2, Some(message)) => ctx.reply(&Reply::Bulk(message)),
        _ => reply_wrong_arity("ping", ctx),
    }
}

/// `ECHO message` replies the message.
pub(crate) fn echo(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    ctx.reply(&Reply::Bulk(args.get(1).unwrap_or_default()));
}
