//! `CLIENT ID | INFO | LIST | SETNAME | GETNAME | SETINFO | KILL | HELP`: the client-handle
//! table as Redis shows it.
//!
//! `CLIENT LIST` prints one line per handle in Redis's `key=value` style:
//! `id= addr= laddr= fd= kind= name= age= idle= flags= sub= psub= ssub= cmds= in= out=
//! qbuf= obuf= tot-mem=` (flag `P`: subscribed to something; `tot-mem`: bytes its
//! buffers hold), plus
//! `uid= gid= pid=` for a Unix peer (from `SO_PEERCRED`), and last, where Redis 7.2 has
//! them, `resp= lib-name= lib-ver=`. A Unix peer's `addr` and `laddr` are the socket path
//! followed by `:0`, as Redis writes them. For a client behind a proxy that sent a PROXY
//! header, `addr` and `laddr` are the addresses the header gave (what `CLIENT KILL
//! ADDR`/`LADDR` match too), and `proxy=` is the proxy's own address. `CLIENT INFO` and
//! `CLIENT LIST` are verbatim text in RESP3, as in Redis.

use std::collections::HashSet;
use std::fmt::Write;
use std::time::Instant;

use super::{
    ClientState, CommandService, Ctx, SYNTAX_ERROR, arity_ok, parse_i64, reply_help,
    reply_unknown_subcommand, reply_wrong_arity,
};
use crate::client::{ClientId, ClientInfo};
use crate::client_table::ClientEntry;

/// A row of the client table, as the command set sees it.
type Entry<'a> = ClientEntry<'a, RespCodec, ClientState>;
use crate::listener::{ListenAddr, ListenerKind};
use crate::resp::{Args, Reply, RespCodec};
use crate::stream::Peer;

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST",
    "    Return information about client connections.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "GETNAME",
    "    Return the name of the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ID <client-id>",
    "      Kill connection by client id.",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address.",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to the specified local address.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "HELP",
    "    Print this help.",
];

/// Subcommands and their arities (Redis's, the command name included).
pub(crate) const SUBCOMMANDS: &[(&str, i32)] = &[
    ("id", 2),
    ("info", 2),
    ("list", -2),
    ("setname", 3),
    ("getname", 2),
    ("setinfo", 4),
    ("kill", -3),
    ("help", 2),
];

pub(crate) fn client(_: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let sub = args.get(1).unwrap_or_default();
    let Some(&(name, arity)) = SUBCOMMANDS
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(sub))
    else {
        reply_unknown_subcommand("client", sub, ctx);
        return;
    };
    if !arity_ok(arity, args.len()) {
        reply_wrong_arity(&format!("client|{name}"), ctx);
        return;
    }
    match name {
        "id" => {
            let id = ctx.id().as_u64();
            ctx.reply(&Reply::Integer(i64::try_from(id).unwrap_or(i64::MAX)));
        }
        "info" => {
            let id = ctx.id();
            let now = ctx.now();
            let line = ctx
                .clients()
                .get(id)
                .map(|entry| client_line(&entry, now))
                .unwrap_or_default();
            ctx.reply(&Reply::text(line.as_bytes()));
        }
        "list" => list(args, ctx),
        "setname" => {
            if set_name_or_reply(args.get(2).unwrap_or_default(), ctx) {
                ctx.reply(&Reply::OK);
            }
        }
        "setinfo" => setinfo(args, ctx),
        "getname" => match ctx.info().name().map(str::to_owned) {
            Some(name) => ctx.reply(&Reply::Bulk(name.as_bytes())),
            None => ctx.reply(&Reply::Null),
        },
        "kill" => kill(args, ctx),
        _ => reply_help(HELP, ctx),
    }
}

/// `CLIENT LIST [ID id ...]`
fn list(args: Args<'_>, ctx: &mut Ctx<'_>) {
    let mut only: Option<HashSet<ClientId>> = None;
    if args.len() > 2 {
        let is_id_filter = args.get(2).is_some_and(|a| a.eq_ignore_ascii_case(b"id"));
        if !is_id_filter || args.len() < 4 {
            ctx.reply(&SYNTAX_ERROR);
            return;
        }
        let mut ids = HashSet::new();
        for arg in args.iter().skip(3) {
            match parse_i64(arg) {
                Some(n) if n > 0 => {
                    ids.insert(ClientId::from_u64(n as u64));
                }
                _ => {
                    ctx.reply(&Reply::Error("ERR Invalid client ID"));
                    return;
                }
            }
        }
        only = Some(ids);
    }
    let now = ctx.now();
    let mut text = String::new();
    for entry in ctx.clients().iter() {
        if only
            .as_ref()
            .is_none_or(|ids| ids.contains(&entry.info.id()))
        {
            text.push_str(&client_line(&entry, now));
        }
    }
    ctx.reply(&Reply::text(text.as_bytes()));
}

/// Names the client (`CLIENT SETNAME`, `HELLO ... SETNAME`): printable ASCII without
/// spaces; empty clears the name. Replies the error and returns `false` for a bad name.
pub(crate) fn set_name_or_reply(name: &[u8], ctx: &mut Ctx<'_>) -> bool {
    if !is_printable_word(name) {
        ctx.reply(&Reply::Error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
        return false;
    }
    let name = std::str::from_utf8(name).ok().filter(|n| !n.is_empty());
    ctx.set_name(name);
    true
}

/// Redis's rule for names and library details: `CLIENT LIST` splits fields on spaces and
/// lines on newlines, so only `!` to `~` are allowed.
fn is_printable_word(text: &[u8]) -> bool {
    text.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value`, as Redis 7.2 has it (Debian's 7.0 predates
/// it; `clientSetinfoCommand` in `src/networking.c`): the option is named back as sent in
/// the errors, and an empty value clears the field.
fn setinfo(args: Args<'_>, ctx: &mut Ctx<'_>) {
    let option = args.get(2).unwrap_or_default();
    let value = args.get(3).unwrap_or_default();
    let is_name = option.eq_ignore_ascii_case(b"lib-name");
    if !is_name && !option.eq_ignore_ascii_case(b"lib-ver") {
        let option = String::from_utf8_lossy(option);
        ctx.reply(&Reply::Error(&format!(
            "ERR Unrecognized option '{option}'"
        )));
        return;
    }
    if !is_printable_word(value) {
        let option = String::from_utf8_lossy(option);
        ctx.reply(&Reply::Error(&format!(
            "ERR {option} cannot contain spaces, newlines or special characters."
        )));
        return;
    }
    let value = std::str::from_utf8(value)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Box::from);
    let state = ctx.state();
    if is_name {
        state.set_lib_name(value);
    } else {
        state.set_lib_ver(value);
    }
    ctx.reply(&Reply::OK);
}

/// The filters of `CLIENT KILL`.
#[derive(Default)]
struct KillFilter {
    id: Option<ClientId>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    skip_me: bool,
}

/// `CLIENT KILL ip:port` (old form: `+OK` or an error) or
/// `CLIENT KILL <filter> <value> ...` (new form: the number killed).
fn kill(args: Args<'_>, ctx: &mut Ctx<'_>) {
    let old_form = args.len() == 3;
    let filter = if old_form {
        KillFilter {
            addr: args.get(2).map(<[u8]>::to_vec),
            ..KillFilter::default()
        }
    } else {
        match parse_kill_filter(&args) {
            Ok(filter) => filter,
            Err(reply) => {
                ctx.reply(&reply);
                return;
            }
        }
    };
    let me = ctx.id();
    let victims: Vec<ClientId> = ctx
        .clients()
        .iter()
        .filter(|entry| kill_matches(&filter, entry))
        .map(|entry| entry.info.id())
        .filter(|&id| !(filter.skip_me && id == me))
        .collect();
    let killed = victims.into_iter().filter(|&id| ctx.kill(id)).count();
    if old_form {
        if killed == 0 {
            ctx.reply(&Reply::Error("ERR No such client"));
        } else {
            ctx.reply(&Reply::OK);
        }
    } else {
        ctx.reply(&Reply::Integer(killed as i64));
    }
}

fn parse_kill_filter(args: &Args<'_>) -> Result<KillFilter, Reply<'static>> {
    let mut filter = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    let mut words = args.iter().skip(2);
    while let Some(option) = words.next() {
        let Some(value) = words.next() else {
            return Err(SYNTAX_ERROR);
        };
        if option.eq_ignore_ascii_case(b"id") {
            match parse_i64(value) {
                Some(n) if n > 0 => filter.id = Some(ClientId::from_u64(n as u64)),
                _ => return Err(Reply::Error("ERR client-id should be greater than 0")),
            }
        } else if option.eq_ignore_ascii_case(b"addr") {
            filter.addr = Some(value.to_vec());
        } else if option.eq_ignore_ascii_case(b"laddr") {
            filter.laddr = Some(value.to_vec());
        } else if option.eq_ignore_ascii_case(b"skipme") {
            if value.eq_ignore_ascii_case(b"yes") {
                filter.skip_me = true;
            } else if value.eq_ignore_ascii_case(b"no") {
                filter.skip_me = false;
            } else {
                return Err(SYNTAX_ERROR);
            }
        } else {
            return Err(SYNTAX_ERROR);
        }
    }
    Ok(filter)
}

fn kill_matches(filter: &KillFilter, entry: &Entry<'_>) -> bool {
    let info = entry.info;
    filter.id.is_none_or(|id| id == info.id())
        && filter
            .addr
            .as_ref()
            .is_none_or(|a| a.as_slice() == peer_addr(info).as_bytes())
        && filter
            .laddr
            .as_ref()
            .is_none_or(|a| a.as_slice() == local_addr(info).as_bytes())
}

/// The client's address: the source a PROXY header gave, else the connection's peer.
pub(crate) fn peer_addr(info: &ClientInfo) -> String {
    match info.proxied() {
        Some(proxied) => proxied.source.to_string(),
        None => connection_peer(info),
    }
}

/// The address the client connected to: the destination a PROXY header gave, else the
/// master socket that accepted it.
fn local_addr(info: &ClientInfo) -> String {
    match info.proxied() {
        Some(proxied) => proxied.destination.to_string(),
        None => listener_addr(info),
    }
}

/// The connection's own peer: `127.0.0.1:50412`, or `<socket path>:0` for a Unix peer.
fn connection_peer(info: &ClientInfo) -> String {
    match info.peer() {
        Peer::Tcp(addr) => addr.to_string(),
        Peer::Unix(_) => listener_addr(info),
    }
}

/// The address of the master socket that accepted the client.
fn listener_addr(info: &ClientInfo) -> String {
    match &info.listener().addr {
        ListenAddr::Tcp(addr) | ListenAddr::Tls(addr) => addr.to_string(),
        ListenAddr::Unix(path) => format!("{}:0", path.display()),
    }
}

/// One `CLIENT LIST` line, newline included.
pub(crate) fn client_line(entry: &Entry<'_>, now: Instant) -> String {
    let info = entry.info;
    let kind = info.listener().kind();
    let mut flags = String::new();
    let subs = entry.subscriptions;
    if subs.total() > 0 {
        flags.push('P');
    }
    if kind == ListenerKind::Unix {
        flags.push('U');
    }
    if entry.closing {
        flags.push('c');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let mut line = String::with_capacity(200);
    let _ = write!(
        line,
        "id={} addr={} laddr={} fd={} kind={} name={} age={} idle={} flags={} sub={} psub={} ssub={} cmds={} in={} out={} qbuf={} obuf={} tot-mem={}",
        info.id(),
        peer_addr(info),
        local_addr(info),
        entry.fd,
        kind,
        info.name().unwrap_or(""),
        info.age(now).as_secs(),
        info.idle(now).as_secs(),
        flags,
        subs.channels,
        subs.patterns,
        subs.shard_channels,
        info.requests(),
        info.bytes_in(),
        info.bytes_out(),
        entry.input_buffered,
        entry.output_buffered,
        entry.memory,
    );
    if let Peer::Unix(Some(cred)) = info.peer() {
        let _ = write!(line, " uid={} gid={} pid={}", cred.uid, cred.gid, cred.pid);
    }
    if info.proxied().is_some() {
        let _ = write!(line, " proxy={}", connection_peer(info));
    }
    let _ = write!(
        line,
        " resp={} lib-name={} lib-ver={}",
        entry.session.protocol.number(),
        entry.state.lib_name().unwrap_or(""),
        entry.state.lib_ver().unwrap_or(""),
    );
    line.push('\n');
    line
}
