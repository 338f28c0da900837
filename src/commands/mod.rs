//! The daemon's command set: one [`Service`] over the RESP codec.
//!
//! Each command lives in its own file with the same three steps: check the arguments,
//! apply, reply. The table below maps names (case-insensitive) to handlers with Redis's
//! arity convention, so wrong arity and unknown commands get Redis's exact error texts and
//! the connection stays open. Adding a command is one file and one table row.

mod auth;
mod client;
mod command;
mod config;
mod hello;
mod info;
mod multi;
mod ping;
mod quit;
mod reset;
mod select;
mod state;
mod sum;

use crate::resp::{Args, Reply, RespCodec, RespLimits, RespSession};
use crate::service::{Context, Service};
pub use state::ClientState;

/// The context every command handler gets.
pub type Ctx<'a> = Context<'a, RespCodec, ClientState>;

/// A command: its name as Redis prints it in errors (lower case), its arity, its handler.
pub(crate) struct Command {
    pub(crate) name: &'static str,
    /// Redis's convention: `n` means exactly `n` arguments (the name included), `-n` at
    /// least `n`.
    pub(crate) arity: i32,
    pub(crate) run: fn(&mut CommandService, Args<'_>, &mut Ctx<'_>),
    /// [`NO_AUTH`], [`NOT_QUEUED`], as Redis's command flags have them.
    pub(crate) flags: u8,
}

/// May be sent before authenticating (Redis's `no-auth`: `AUTH`, `HELLO`, `QUIT`, `RESET`).
pub(crate) const NO_AUTH: u8 = 1;
/// Runs at once inside `MULTI` instead of being queued (`MULTI`, `EXEC`, `DISCARD`,
/// `QUIT`, `RESET`, as Redis's `processCommand` has them).
pub(crate) const NOT_QUEUED: u8 = 2;

/// Every command the daemon knows, most frequent first.
pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "ping",
        arity: -1,
        run: ping::ping,
        flags: 0,
    },
    Command {
        name: "echo",
        arity: 2,
        run: ping::echo,
        flags: 0,
    },
    Command {
        name: "add",
        arity: -2,
        run: sum::add,
        flags: 0,
    },
    Command {
        name: "sum",
        arity: 1,
        run: sum::sum,
        flags: 0,
    },
    Command {
        name: "quit",
        arity: -1,
        run: quit::quit,
        flags: NO_AUTH | NOT_QUEUED,
    },
    Command {
        name: "client",
        arity: -2,
        run: client::client,
        flags: 0,
    },
    Command {
        name: "info",
        arity: -1,
        run: info::info,
        flags: 0,
    },
    Command {
        name: "config",
        arity: -2,
        run: config::config,
        flags: 0,
    },
    Command {
        name: "command",
        arity: -1,
        run: command::command,
        flags: 0,
    },
    Command {
        name: "select",
        arity: 2,
        run: select::select,
        flags: 0,
    },
    Command {
        name: "hello",
        arity: -1,
        run: hello::hello,
        flags: NO_AUTH,
    },
    Command {
        name: "auth",
        arity: -2,
        run: auth::auth,
        flags: NO_AUTH,
    },
    Command {
        name: "reset",
        arity: 1,
        run: reset::reset,
        flags: NO_AUTH | NOT_QUEUED,
    },
    Command {
        name: "multi",
        arity: 1,
        run: multi::multi,
        flags: NOT_QUEUED,
    },
    Command {
        name: "exec",
        arity: 1,
        run: multi::exec,
        flags: NOT_QUEUED,
    },
    Command {
        name: "discard",
        arity: 1,
        run: multi::discard,
        flags: NOT_QUEUED,
    },
];

/// The daemon's service: `PING`, `ECHO`, `QUIT`, `ADD`, `SUM`, `CLIENT`, `INFO`,
/// `CONFIG GET`, `COMMAND`, `SELECT`, `HELLO`, `AUTH`, `RESET`, `MULTI`, `EXEC`, `DISCARD`.
#[derive(Debug, Default)]
pub struct CommandService {
    /// The codec's limits, reported by `CONFIG GET` (the service does not see the codec).
    limits: RespLimits,
    /// The password clients must give (`AUTH`), if any.
    password: Option<auth::Password>,
    /// Failed authentications (`AUTH`, `HELLO ... AUTH`), Redis's `acl_access_denied_auth`.
    auth_failures: u64,
}

impl CommandService {
    /// A service that reports `limits` as the protocol limits in force.
    pub fn new(limits: RespLimits) -> CommandService {
        CommandService {
            limits,
            ..CommandService::default()
        }
    }

    /// The same service requiring `password` from every client: until a client gives it
    /// (`AUTH`, `HELLO ... AUTH`), it may send only `AUTH`, `HELLO`, `QUIT` and `RESET`,
    /// and requests no longer than Redis allows unauthenticated clients.
    pub fn with_password(mut self, password: &[u8]) -> CommandService {
        self.password = Some(auth::Password::new(password));
        self
    }

    /// Whether clients must authenticate before anything but `AUTH`, `HELLO`, `QUIT` and
    /// `RESET`.
    pub(crate) fn requires_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether `candidate` is the password (any is, when none is configured).
    pub(crate) fn password_matches(&self, candidate: &[u8]) -> bool {
        self.password.as_ref().is_none_or(|p| p.matches(candidate))
    }
}

impl Service<RespCodec> for CommandService {
    type ClientState = ClientState;

    /// Redis's order: unknown command, then arity, then authentication; then, inside
    /// `MULTI`, queued rather than run.
    #[inline]
    fn on_request(&mut self, request: Args<'_>, ctx: &mut Ctx<'_>) {
        let Some(command) = lookup(request.command()) else {
            multi::refuse(None, &unknown_command_message(&request), ctx);
            return;
        };
        if !arity_ok(command.arity, request.len()) {
            multi::refuse(Some(command), &wrong_arity_message(command.name), ctx);
            return;
        }
        if ctx.session().auth_required && command.flags & NO_AUTH == 0 {
            multi::refuse(Some(command), NOAUTH, ctx);
            return;
        }
        if command.flags & NOT_QUEUED == 0 && ctx.state().in_transaction() {
            multi::queue(&request, ctx);
            return;
        }
        (command.run)(self, request, ctx);
    }

    /// With a password configured, a new client starts unauthenticated: held to Redis's
    /// unauthenticated request limits and to the `NO_AUTH` commands.
    fn on_connect(&mut self, ctx: &mut Ctx<'_>) {
        if self.requires_password() {
            ctx.set_session(RespSession {
                auth_required: true,
                ..ctx.session()
            });
        }
    }
}

/// Redis's refusal of a command from a client that has yet to authenticate.
const NOAUTH: &str = "NOAUTH Authentication required.";

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
    ctx.reply(&Reply::Error(&wrong_arity_message(name)));
}

fn wrong_arity_message(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// `ERR value is not an integer or out of range`
pub(crate) const NOT_AN_INTEGER: Reply<'static> =
    Reply::Error("ERR value is not an integer or out of range");

/// `ERR syntax error`
pub(crate) const SYNTAX_ERROR: Reply<'static> = Reply::Error("ERR syntax error");

/// Redis's text: the name and the first arguments, each quoted, capped at 128 bytes.
fn unknown_command_message(request: &Args<'_>) -> String {
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
    message
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
