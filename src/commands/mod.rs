//! The daemon's command set: one [`Service`] over the RESP codec.
//!
//! Each command lives in its own file with the same three steps: check the arguments,
//! apply, reply. The table below maps names (case-insensitive) to handlers with Redis's
//! arity convention, so wrong arity and unknown commands get Redis's exact error texts and
//! the connection stays open. Adding a command is one file and one table row.

mod client;
mod command;
mod config;
mod info;
mod ping;
mod quit;
mod select;
mod sum;

use crate::resp::{Args, Reply, RespCodec, RespLimits};
use crate::service::{Context, Service};

/// What the daemon keeps for each client.
#[derive(Debug, Default)]
pub struct ClientState {
    /// The running total of `ADD`, reset by `SUM`.
    pub total: i64,
}

/// The context every command handler gets.
pub type Ctx<'a> = Context<'a, RespCodec, CommandService>;

/// A command: its name as Redis prints it in errors (lower case), its arity, its handler.
pub(crate) struct Command {
    pub(crate) name: &'static str,
    /// Redis's convention: `n` means exactly `n` arguments (the name included), `-n` at
    /// least `n`.
    pub(crate) arity: i32,
    pub(crate) run: fn(&mut CommandService, Args<'_>, &mut Ctx<'_>),
}

/// Every command the daemon knows, most frequent first.
pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "ping",
        arity: -1,
        run: ping::ping,
    },
    Command {
        name: "echo",
        arity: 2,
        run: ping::echo,
    },
    Command {
        name: "add",
        arity: -2,
        run: sum::add,
    },
    Command {
        name: "sum",
        arity: 1,
        run: sum::sum,
    },
    Command {
        name: "quit",
        arity: -1,
        run: quit::quit,
    },
    Command {
        name: "client",
        arity: -2,
        run: client::client,
    },
    Command {
        name: "info",
        arity: -1,
        run: info::info,
    },
    Command {
        name: "config",
        arity: -2,
        run: config::config,
    },
    Command {
        name: "command",
        arity: -1,
        run: command::command,
    },
    Command {
        name: "select",
        arity: 2,
        run: select::select,
    },
];

/// The daemon's service: `PING`, `ECHO`, `QUIT`, `ADD`, `SUM`, `CLIENT`, `INFO`,
/// `CONFIG GET`, `COMMAND`, `SELECT`.
#[derive(Debug, Default)]
pub struct CommandService {
    /// The codec's limits, reported by `CONFIG GET` (the service does not see the codec).
    limits: RespLimits,
}

impl CommandService {
    /// A service that reports `limits` as the protocol limits in force.
    pub fn new(limits: RespLimits) -> CommandService {
        CommandService { limits }
    }
}

impl Service<RespCodec> for CommandService {
    type ClientState = ClientState;

    #[inline]
    fn on_request(&mut self, request: Args<'_>, ctx: &mut Ctx<'_>) {
        let name = request.command();
        let Some(command) = lookup(name) else {
            reply_unknown_command(&request, ctx);
            return;
        };
        if !arity_ok(command.arity, request.len()) {
            reply_wrong_arity(command.name, ctx);
            return;
        }
        (command.run)(self, request, ctx);
    }
}

pub(crate) fn lookup(name: &[u8]) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name.len() == name.len() && c.name.as_bytes().eq_ignore_ascii_case(name))
}

pub(crate) fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let arity = i64::from(arity);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// `ERR wrong number of arguments for 'ping' command` (`client|setname` for a
/// subcommand).
pub(crate) fn reply_wrong_arity(name: &str, ctx: &mut Ctx<'_>) {
    let message = format!("ERR wrong number of arguments for '{name}' command");
    ctx.reply(&Reply::Error(&message));
}

/// `ERR value is not an integer or out of range`
pub(crate) const NOT_AN_INTEGER: Reply<'static> =
    Reply::Error("ERR value is not an integer or out of range");

/// `ERR syntax error`
pub(crate) const SYNTAX_ERROR: Reply<'static> = Reply::Error("ERR syntax error");

/// Redis's text: the name and the first arguments, each quoted, capped at 128 bytes.
fn reply_unknown_command(request: &Args<'_>, ctx: &mut Ctx<'_>) {
    let mut message = String::from("ERR unknown command '");
    push_capped(&mut message, request.command(), 128);
    message.push_str("', with args beginning with: ");
    let mut args = String::new();
    for arg in request.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        args.push('\'');
        let room = 128 - args.len().min(128);
        push_capped(&mut args, arg, room);
        args.push_str("' ");
    }
    message.push_str(&args);
    ctx.reply(&Reply::Error(&message));
}

/// `ERR unknown subcommand 'x'. Try CLIENT HELP.`
pub(crate) fn reply_unknown_subcommand(command: &str, sub: &[u8], ctx: &mut Ctx<'_>) {
    let mut message = String::from("ERR unknown subcommand '");
    push_capped(&mut message, sub, 128);
    message.push_str("'. Try ");
    message.push_str(&command.to_ascii_uppercase());
    message.push_str(" HELP.");
    ctx.reply(&Reply::Error(&message));
}

/// Appends at most `max` bytes of `bytes` (lossily decoded) to `out`.
fn push_capped(out: &mut String, bytes: &[u8], max: usize) {
    let cut = bytes.get(..max.min(bytes.len())).unwrap_or_default();
    out.push_str(&String::from_utf8_lossy(cut));
}

/// Parses an integer argument with Redis's rules.
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    crate::resp::parse_int(arg)
}

/// Replies with `lines` as an array of simple strings (the `HELP` subcommands).
pub(crate) fn reply_help(lines: &[&str], ctx: &mut Ctx<'_>) {
    ctx.reply(&Reply::ArrayHeader(lines.len()));
    for line in lines {
        ctx.reply(&Reply::Simple(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_exact() {
        assert_eq!(lookup(b"PING").map(|c| c.name), Some("ping"));
        assert_eq!(lookup(b"pInG").map(|c| c.name), Some("ping"));
        assert!(lookup(b"PINGX").is_none());
        assert!(lookup(b"").is_none());
    }

    #[test]
    fn arity_follows_redis_convention() {
        assert!(arity_ok(2, 2));
        assert!(!arity_ok(2, 3));
        assert!(arity_ok(-2, 2));
        assert!(arity_ok(-2, 5));
        assert!(!arity_ok(-2, 1));
    }

    #[test]
    fn every_command_has_a_unique_lower_case_name() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(COMMANDS.iter().skip(i + 1).all(|o| o.name != c.name));
        }
    }
}
