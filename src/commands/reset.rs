//! `RESET`: the connection as if it had just connected, as Redis does it
//! (`clearClientConnectionState`): RESP2 again, no name, `ADD`'s total back to 0, and,
//! when a password is configured, unauthenticated. The library name and version stay:
//! they still describe the client behind the connection.

use super::{CommandService, Ctx};
use crate::resp::{Args, Reply, RespSession};

pub(crate) fn reset(service: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    // Everything a client can subscribe to or start (MULTI, later pub/sub) is ended here.
    ctx.state().set_total(0);
    ctx.set_name(None);
    ctx.set_session(RespSession {
        auth_required: service.requires_password(),
        ..RespSession::default()
    });
    ctx.reply(&Reply::Simple("RESET"));
}
