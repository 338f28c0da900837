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
mod pubsub;
mod quit;
mod reset;
mod select;
mod state;
mod sum;

use crate::client::{ClientInfo, CloseReason};
use crate::resp::{Args, Reply, RespCodec, RespLimits, RespSession};
use crate::service::{Context, ServerContext, Service};
pub use state::ClientState;

/// The context every command handler gets.
pub type Ctx<'a> = Context<'a, RespCodec, CommandService>;

/// A command: its name as Redis prints it in errors (lower case), its arity, its handler.
pub(crate) struct Command {
    pub(crate) name: &'static str,
    /// The name as [`name_key`] packs it, so that finding a request's command compares one
    /// integer per command.
    key: u64,
    /// Redis's convention: `n` means exactly `n` arguments (the name included), `-n` at
    /// least `n`.
    pub(crate) arity: i32,
    pub(crate) run: fn(&mut CommandService, Args<'_>, &mut Ctx<'_>),
    /// [`NO_AUTH`], [`NOT_QUEUED`], [`PUBSUB_OK`], as Redis's command flags have them.
    pub(crate) flags: u8,
}

impl Command {
    /// A row of the table. The name must be lower-case letters, at most [`MAX_NAME`] of
    /// them (checked when the table is compiled).
    const fn new(
        name: &'static str,
        arity: i32,
        run: fn(&mut CommandService, Args<'_>, &mut Ctx<'_>),
        flags: u8,
    ) -> Command {
        assert!(
            name.len() <= MAX_NAME,
            "a command name is longer than MAX_NAME"
        );
        let key = match name_key(name.as_bytes()) {
            Some(key) => key,
            None => LONG_NAME,
        };
        assert!(
            is_lower_word(name.as_bytes()),
            "a command name is not lower-case letters"
        );
        Command {
            name,
            key,
            arity,
            run,
            flags,
        }
    }
}

/// May be sent before authenticating (Redis's `no-auth`: `AUTH`, `HELLO`, `QUIT`, `RESET`).
pub(crate) const NO_AUTH: u8 = 1;
/// Runs at once inside `MULTI` instead of being queued (`MULTI`, `EXEC`, `DISCARD`,
/// `WATCH`, `QUIT`, `RESET`, as Redis's `processCommand` has them).
pub(crate) const NOT_QUEUED: u8 = 2;
/// May run in Redis's RESP2 subscribed mode (the subscription commands, `PING`, `QUIT`,
/// `RESET`, as Redis's `processCommand` has them).
pub(crate) const PUBSUB_OK: u8 = 4;

/// Every command the daemon knows, most frequent first.
pub(crate) const COMMANDS: &[Command] = &[
    Command::new("ping", -1, ping::ping, PUBSUB_OK),
    Command::new("echo", 2, ping::echo, 0),
    Command::new("add", -2, sum::add, 0),
    Command::new("sum", 1, sum::sum, 0),
    Command::new("quit", -1, quit::quit, NO_AUTH | NOT_QUEUED | PUBSUB_OK),
    Command::new("client", -2, client::client, 0),
    Command::new("info", -1, info::info, 0),
    Command::new("config", -2, config::config, 0),
    Command::new("command", -1, command::command, 0),
    Command::new("select", 2, select::select, 0),
    Command::new("hello", -1, hello::hello, NO_AUTH),
    Command::new("auth", -2, auth::auth, NO_AUTH),
    Command::new("reset", 1, reset::reset, NO_AUTH | NOT_QUEUED | PUBSUB_OK),
    Command::new("multi", 1, multi::multi, NOT_QUEUED),
    Command::new("exec", 1, multi::exec, NOT_QUEUED),
    Command::new("discard", 1, multi::discard, NOT_QUEUED),
    Command::new("watch", -2, multi::watch, NOT_QUEUED),
    Command::new("unwatch", 1, multi::unwatch, 0),
    Command::new("publish", 3, pubsub::publish, 0),
    Command::new("subscribe", -2, pubsub::subscribe, PUBSUB_OK),
    Command::new("unsubscribe", -1, pubsub::unsubscribe, PUBSUB_OK),
    Command::new("psubscribe", -2, pubsub::psubscribe, PUBSUB_OK),
    Command::new("punsubscribe", -1, pubsub::punsubscribe, PUBSUB_OK),
    Command::new("spublish", 3, pubsub::spublish, 0),
    Command::new("ssubscribe", -2, pubsub::ssubscribe, PUBSUB_OK),
    Command::new("sunsubscribe", -1, pubsub::sunsubscribe, PUBSUB_OK),
    Command::new("pubsub", -2, pubsub::pubsub, 0),
];

/// The longest command name.
const MAX_NAME: usize = 15;
/// The longest name [`name_key`] packs: longer ones are found by comparing bytes.
const SHORT_NAME: usize = 7;
/// The key of a command whose name is longer than [`SHORT_NAME`]: no name packs to it
/// (a packed name's top byte is its length).
const LONG_NAME: u64 = u64::MAX;

/// A name of at most [`SHORT_NAME`] bytes, each byte with its `0x20` bit set, and its
/// length, packed in one integer. Command names are lower-case letters only, and setting
/// that bit maps a byte to a lower-case letter only from that letter or its upper case, so
/// a request's name has a command's key exactly when it is that name, ignoring ASCII case.
/// `None` for a longer name.
///
/// Once per request: a name of 4 to 7 bytes is read as two overlapping 4-byte words (the
/// bytes they share are the same, so or-ing them is harmless), a shorter one byte by byte.
#[inline]
const fn name_key(name: &[u8]) -> Option<u64> {
    let len = name.len();
    let bytes = match (name.first_chunk::<4>(), name.last_chunk::<4>()) {
        (Some(first), Some(last)) if len <= SHORT_NAME => {
            u32::from_le_bytes(*first) as u64
                | (u32::from_le_bytes(*last) as u64) << (8 * (len - 4))
        }
        _ => match name {
            [] => 0,
            [a] => *a as u64,
            [a, b] => *a as u64 | (*b as u64) << 8,
            [a, b, c] => *a as u64 | (*b as u64) << 8 | (*c as u64) << 16,
            _ => return None,
        },
    };
    // 0x20 in each of the name's `len` bytes.
    let case_bits = 0x0020_2020_2020_2020 >> (8 * (SHORT_NAME - len));
    Some(bytes | case_bits | (len as u64) << 56)
}

/// Whether `name` is lower-case letters only (what [`name_key`] relies on).
const fn is_lower_word(name: &[u8]) -> bool {
    let mut rest = name;
    while let [byte, tail @ ..] = rest {
        if !byte.is_ascii_lowercase() {
            return false;
        }
        rest = tail;
    }
    true
}

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
    /// Clients between `MULTI` and its end: while there are none, a request need not look
    /// at its client's state to know it is not to be queued (a lookup that cost PING a
    /// few percent).
    open_transactions: usize,
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

    /// Redis's order: unknown command, then arity, then authentication, then the RESP2
    /// subscribed mode; then, inside `MULTI`, queued rather than run.
    #[inline]
    fn on_request(&mut self, request: Args<'_>, ctx: &mut Ctx<'_>) {
        let Some(command) = lookup(request.command()) else {
            multi::refuse(self, None, &unknown_command_message(&request), ctx);
            return;
        };
        if !arity_ok(command.arity, request.len()) {
            multi::refuse(self, Some(command), &wrong_arity_message(command.name), ctx);
            return;
        }
        if ctx.session().auth_required && command.flags & NO_AUTH == 0 {
            multi::refuse(self, Some(command), NOAUTH, ctx);
            return;
        }
        if command.flags & PUBSUB_OK == 0
            && let Some(refusal) = pubsub::refusal_when_subscribed(command.name, &request, ctx)
        {
            multi::refuse(self, Some(command), &refusal, ctx);
            return;
        }
        if command.flags & NOT_QUEUED == 0
            && self.open_transactions > 0
            && ctx.state().in_transaction()
        {
            multi::queue(&request, ctx);
            return;
        }
        (command.run)(self, request, ctx);
    }

    fn on_disconnect(
        &mut self,
        _: &ClientInfo,
        state: ClientState,
        _: CloseReason,
        _: &mut ServerContext<'_, RespCodec, Self>,
    ) {
        if state.in_transaction() {
            self.open_transactions = self.open_transactions.saturating_sub(1);
        }
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

#[inline]
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Command> {
    match name_key(name) {
        Some(key) => COMMANDS.iter().find(|c| c.key == key),
        None => lookup_long(name),
    }
}

/// A command with a name longer than [`SHORT_NAME`] (`SUBSCRIBE`, ...), byte by byte.
#[cold]
fn lookup_long(name: &[u8]) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| {
        c.key == LONG_NAME
            && c.name.len() == name.len()
            && c.name.as_bytes().eq_ignore_ascii_case(name)
    })
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
        assert!(lookup(b"PIN").is_none());
        assert!(lookup(b"ping\0").is_none());
        // Bytes that differ from a letter only in the 0x20 bit but are not letters.
        assert!(lookup(b"P\tNG").is_none());
        assert!(lookup(b"PIN\x07").is_none());
        for b in 0..=255u8 {
            let name = [b'p', b'i', b'n', b];
            let expected = b.eq_ignore_ascii_case(&b'g');
            assert_eq!(lookup(&name).is_some(), expected, "byte {b:#x}");
        }
        assert!(lookup(b"").is_none());
        assert!(lookup(b"discardx").is_none());
        assert_eq!(lookup(b"DISCARD").map(|c| c.name), Some("discard"));
        for c in COMMANDS {
            assert_eq!(
                lookup(c.name.to_ascii_uppercase().as_bytes()).map(|f| f.name),
                Some(c.name)
            );
        }
    }

    /// Changing any one byte of a command's name to anything but its other case finds
    /// nothing (the packed comparison is exact, for short and long names alike).
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
