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
mod pubsub;
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
    Command {
        name: "publish",
        arity: 3,
        run: pubsub::publish,
    },
    Command {
        name: "subscribe",
        arity: -2,
        run: pubsub::subscribe,
    },
    Command {
        name: "unsubscribe",
        arity: -1,
        run: pubsub::unsubscribe,
    },
    Command {
        name: "psubscribe",
        arity: -2,
        run: pubsub::psubscribe,
    },
    Command {
        name: "punsubscribe",
        arity: -1,
        run: pubsub::punsubscribe,
    },
    Command {
        name: "spublish",
        arity: 3,
        run: pubsub::spublish,
    },
    Command {
        name: "ssubscribe",
        arity: -2,
        run: pubsub::ssubscribe,
    },
    Command {
        name: "sunsubscribe",
        arity: -1,
        run: pubsub::sunsubscribe,
    },
    Command {
        name: "pubsub",
        arity: -2,
        run: pubsub::pubsub,
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
        let Some(index) = lookup_index(name) else {
            reply_unknown_command(&request, ctx);
            return;
        };
        let Some(command) = COMMANDS.get(index) else {
            return;
        };
        if !arity_ok(command.arity, request.len()) {
            reply_wrong_arity(command.name, ctx);
            return;
        }
        if SUBSCRIBED_MAY_RUN.get(index) == Some(&false)
            && pubsub::refused_when_subscribed(command.name, &request, ctx)
        {
            return;
        }
        (command.run)(self, request, ctx);
    }
}

/// The command named `name` (any case).
#[inline]
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Command> {
    COMMANDS.get(lookup_index(name)?)
}

/// Where the command named `name` (any case) is in [`COMMANDS`].
///
/// This runs for every request. A short name (most are) is compared as one number
/// ([`short_key`]), so the cost is a few instructions per table row whatever the table's
/// size; longer names are compared byte by byte.
#[inline]
fn lookup_index(name: &[u8]) -> Option<usize> {
    match short_key(name) {
        Some(key) => SHORT_KEYS.iter().position(|&k| k == key),
        None => COMMANDS.iter().position(|c| {
            c.name.len() == name.len() && c.name.as_bytes().eq_ignore_ascii_case(name)
        }),
    }
}

/// Longest name [`short_key`] packs.
const SHORT_NAME: usize = 7;

/// `name` packed with its length into one number, if it is at most [`SHORT_NAME`] bytes
/// long, each byte with its `0x20` bit set. For a name of lower-case ASCII letters (every
/// command's: checked below) that is exactly a case-insensitive match: `b | 0x20` equals
/// the letter `l` only for `l` and its upper case.
#[inline]
const fn short_key(name: &[u8]) -> Option<u64> {
    if name.len() > SHORT_NAME {
        return None;
    }
    // The length plus one on top: never 0, the mark of a longer name in `SHORT_KEYS`.
    let mut key = (name.len() as u64 + 1) << 56;
    let mut rest = name;
    let mut shift = 0;
    while let [b, tail @ ..] = rest {
        key |= ((*b | 0x20) as u64) << shift;
        shift += 8;
        rest = tail;
    }
    Some(key)
}

/// [`short_key`] of each command in [`COMMANDS`]' order (0, which no name packs to, for
/// the longer ones). Building it checks that every name is lower-case ASCII letters.
// Evaluated while compiling: an index out of range fails the build, never the server.
#[allow(clippy::indexing_slicing)]
const SHORT_KEYS: [u64; COMMANDS.len()] = {
    let mut keys = [0; COMMANDS.len()];
    let mut i = 0;
    while i < COMMANDS.len() {
        let mut rest = COMMANDS[i].name.as_bytes();
        while let [b, tail @ ..] = rest {
            assert!(
                b.is_ascii_lowercase(),
                "command names are lower-case letters"
            );
            rest = tail;
        }
        if let Some(key) = short_key(COMMANDS[i].name.as_bytes()) {
            keys[i] = key;
        }
        i += 1;
    }
    keys
};

/// Whether each command in [`COMMANDS`] may run in Redis's subscribed mode (checked by
/// place for every request, so the check costs one load).
#[allow(clippy::indexing_slicing)] // evaluated while compiling, as `SHORT_KEYS`
const SUBSCRIBED_MAY_RUN: [bool; COMMANDS.len()] = {
    let mut allowed = [false; COMMANDS.len()];
    let mut i = 0;
    while i < COMMANDS.len() {
        allowed[i] = pubsub::allowed_when_subscribed(COMMANDS[i].name);
        i += 1;
    }
    allowed
};

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

    /// Changing any one byte of a command's name to anything but its other case finds
    /// nothing (the packed comparison of short names is exact).
    #[test]
    fn lookup_matches_exactly_one_byte_changed() {
        for c in COMMANDS {
            let name = c.name.as_bytes();
            for at in 0..name.len() {
                for b in 0..=255u8 {
                    let mut changed = name.to_vec();
                    changed[at] = b;
                    let found = lookup(&changed).map(|c| c.name);
                    if b.eq_ignore_ascii_case(&name[at]) {
                        assert_eq!(found, Some(c.name));
                    } else {
                        assert_ne!(found, Some(c.name), "{changed:?}");
                    }
                }
            }
            assert!(lookup(&[name, b"\0"].concat()).is_none());
            assert!(lookup(&name[..name.len() - 1]).is_none_or(|o| o.name != c.name));
        }
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
