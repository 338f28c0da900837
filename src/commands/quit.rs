//! `QUIT`: reply `+OK`, then close once the reply is written. Requests pipelined after it
//! are not run.

use super::{CommandService, Ctx};
use crate::resp::{Args, Reply};

pub(crate) fn quit(_: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    ctx.reply(&Reply::OK);
    ctx.close_after_reply();
}
