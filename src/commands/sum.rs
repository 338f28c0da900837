//! `ADD n [n ...]` and `SUM`: the classic multiplexing exercise. Each client accumulates
//! integers in its own handle; the server keeps one running total per client.

use super::{CommandService, Ctx, NOT_AN_INTEGER, parse_i64};
use crate::resp::{Args, Reply};

/// Adds every argument to this client's total and replies the new total. A non-integer or
/// an overflow anywhere leaves the total unchanged.
pub(crate) fn add(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let mut total = ctx.state().total();
    for arg in args.iter().skip(1) {
        let Some(n) = parse_i64(arg) else {
            ctx.reply(&NOT_AN_INTEGER);
            return;
        };
        let Some(next) = total.checked_add(n) else {
            ctx.reply(&Reply::Error("ERR increment or decrement would overflow"));
            return;
        };
        total = next;
    }
    ctx.state().set_total(total);
    ctx.reply(&Reply::Integer(total));
}

/// Replies this client's total and resets it to 0.
pub(crate) fn sum(_: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    let state = ctx.state();
    let total = state.total();
    state.set_total(0);
    ctx.reply(&Reply::Integer(total));
}
