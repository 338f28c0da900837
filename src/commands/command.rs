//! `COMMAND [COUNT | LIST | INFO name ... | DOCS ...]`: what the server understands, for
//! client libraries and `redis-cli` that ask at start-up. `COMMAND DOCS` replies an empty
//! map, so `redis-cli` falls back to its built-in help. An unknown name in `COMMAND INFO`
//! is the null (`$-1` in RESP2, as Redis), and the flags are a set in RESP3.

use super::{COMMANDS, Command, CommandService, Ctx, lookup, reply_unknown_subcommand};
use crate::resp::{Args, Reply};

/// Subcommands and their arities (Redis's, the command name included).
pub(crate) const SUBCOMMANDS: &[(&str, i32)] =
    &[("count", 2), ("list", -2), ("info", -2), ("docs", -2)];

pub(crate) fn command(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let Some(sub) = args.get(1) else {
        ctx.reply(&Reply::ArrayHeader(COMMANDS.len()));
        for c in COMMANDS {
            reply_command_info(c, ctx);
        }
        return;
    };
    if sub.eq_ignore_ascii_case(b"count") {
        ctx.reply(&Reply::Integer(COMMANDS.len() as i64));
    } else if sub.eq_ignore_ascii_case(b"list") {
        ctx.reply(&Reply::ArrayHeader(COMMANDS.len()));
        for c in COMMANDS {
            ctx.reply(&Reply::Bulk(c.name.as_bytes()));
        }
    } else if sub.eq_ignore_ascii_case(b"info") {
        ctx.reply(&Reply::ArrayHeader(args.len() - 2));
        for name in args.iter().skip(2) {
            match lookup(name) {
                Some(c) => reply_command_info(c, ctx),
                None => ctx.reply(&Reply::Null),
            }
        }
    } else if sub.eq_ignore_ascii_case(b"docs") {
        ctx.reply(&Reply::MapHeader(0));
    } else {
        reply_unknown_subcommand("command", sub, ctx);
    }
}

/// The classic six-field form: name, arity, flags, first key, last key, key step.
fn reply_command_info(c: &Command, ctx: &mut Ctx<'_>) {
    ctx.reply(&Reply::ArrayHeader(6));
    ctx.reply(&Reply::Bulk(c.name.as_bytes()));
    ctx.reply(&Reply::Integer(i64::from(c.arity)));
    ctx.reply(&Reply::Set(&[Reply::Simple("fast")]));
    ctx.reply(&Reply::Integer(0));
    ctx.reply(&Reply::Integer(0));
    ctx.reply(&Reply::Integer(0));
}
