//! `RESET`: the connection as if it had just connected, as Redis does it
//! (`clearClientConnectionState`): an open `MULTI` discarded, unsubscribed from every
//! channel, pattern and shard channel, RESP2 again, no name, `ADD`'s total back to 0, and, when a password is configured, unauthenticated. The library name
//! and version stay: they still describe the client behind the connection.

use super::{CommandService, Ctx, multi};
use crate::pubsub::Kind;
use crate::resp::{Args, Reply, RespSession};

pub(crate) fn reset(service: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    multi::end(service, ctx);
    // Unsubscribed from everything, without confirmations (Redis's `notify` off).
    for kind in Kind::ALL {
        ctx.unsubscribe_all(kind);
    }
    ctx.state().set_total(0);
    ctx.set_name(None);
    ctx.set_session(RespSession {
        auth_required: service.requires_password(),
        ..RespSession::default()
    });
    ctx.reply(&Reply::Simple("RESET"));
}
