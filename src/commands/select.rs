//! `SELECT index`: muxd has one database, number 0. Client libraries configured with a
//! database send `SELECT 0` on connect; that works, any other index is out of range.

use super::{CommandService, Ctx, NOT_AN_INTEGER, parse_i64};
use crate::resp::{Args, Reply};

pub(crate) fn select(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    match args.get(1).and_then(parse_i64) {
        Some(0) => ctx.reply(&Reply::OK),
        Some(_) => ctx.reply(&Reply::Error("ERR DB index is out of range")),
        None => ctx.reply(&NOT_AN_INTEGER),
    }
}
