//! `CONFIG GET pattern [pattern ...]`: the daemon's settings under Redis's parameter names,
//! matched with Redis's glob rules. It answers what `redis-cli` and `redis-benchmark` ask
//! at start-up (`save`, `appendonly`), so both run against muxd without a warning.
//! Settings are fixed at start: `CONFIG SET` is refused. The reply is a map (a flat array
//! of names and values in RESP2), as in Redis.

use super::{
    CommandService, Ctx, arity_ok, reply_help, reply_unknown_subcommand, reply_wrong_arity,
};
use crate::config::Config;
use crate::listener::ListenAddr;
use crate::pubsub::Glob;
use crate::resp::{Args, Reply};

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "HELP",
    "    Print this help.",
];

/// Subcommands and their arities (Redis's, the command name included).
pub(crate) const SUBCOMMANDS: &[(&str, i32)] = &[("get", -3), ("set", -4), ("help", 2)];

pub(crate) fn config(service: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let sub = args.get(1).unwrap_or_default();
    if sub.eq_ignore_ascii_case(b"get") {
        if !arity_ok(-3, args.len()) {
            reply_wrong_arity("config|get", ctx);
            return;
        }
        let params = parameters(service, ctx);
        let patterns: Vec<Glob> = args.iter().skip(2).map(Glob::nocase).collect();
        let matching: Vec<&(&str, Vec<u8>)> = params
            .iter()
            .filter(|(name, _)| patterns.iter().any(|p| p.matches(name.as_bytes())))
            .collect();
        ctx.reply(&Reply::MapHeader(matching.len()));
        for (name, value) in matching {
            ctx.reply(&Reply::Bulk(name.as_bytes()));
            ctx.reply(&Reply::Bulk(value));
        }
    } else if sub.eq_ignore_ascii_case(b"set") {
        ctx.reply(&Reply::Error(
            "ERR CONFIG SET is not supported: muxd's settings are fixed at start-up",
        ));
    } else if sub.eq_ignore_ascii_case(b"help") {
        reply_help(HELP, ctx);
    } else {
        reply_unknown_subcommand("config", sub, ctx);
    }
}

/// Every parameter and its current value.
fn parameters(service: &CommandService, ctx: &Ctx<'_>) -> Vec<(&'static str, Vec<u8>)> {
    let server = ctx.server();
    let config = server.config();
    let mut binds = Vec::new();
    let mut port = 0;
    let mut tls_port = 0;
    let mut unix = String::new();
    for listener in server.listeners() {
        match &listener.addr {
            ListenAddr::Tcp(addr) => {
                binds.push(addr.ip().to_string());
                if port == 0 {
                    port = addr.port();
                }
            }
            ListenAddr::Tls(addr) => {
                binds.push(addr.ip().to_string());
                if tls_port == 0 {
                    tls_port = addr.port();
                }
            }
            ListenAddr::Unix(path) => {
                if unix.is_empty() {
                    unix = path.display().to_string();
                }
            }
        }
    }
    let limits = &service.limits;
    let texts = [
        ("bind", binds.join(" ")),
        ("port", port.to_string()),
        ("tls-port", tls_port.to_string()),
        ("unixsocket", unix),
        ("unixsocketperm", format!("{:o}", config.unix_mode)),
        ("tcp-backlog", config.backlog.to_string()),
        ("maxclients", server.max_clients().to_string()),
        (
            "timeout",
            config.idle_timeout.map_or(0, |t| t.as_secs()).to_string(),
        ),
        ("proto-max-bulk-len", limits.max_bulk_len.to_string()),
        (
            "proto-max-multibulk-len",
            limits.max_multibulk_len.to_string(),
        ),
        ("proto-max-inline-len", limits.max_inline_len.to_string()),
        (
            "client-query-buffer-limit",
            config.max_input_buffer.to_string(),
        ),
        (
            "client-output-high-watermark",
            config.output_high_watermark.to_string(),
        ),
        (
            "client-output-low-watermark",
            config.output_low_watermark.to_string(),
        ),
        (
            "shutdown-timeout",
            config.shutdown_timeout.as_secs().to_string(),
        ),
        ("client-output-buffer-limit", output_buffer_limit(config)),
        (
            "maxmemory-clients",
            config
                .max_client_memory
                .map_or_else(|| "0".to_owned(), |limit| limit.to_string()),
        ),
        ("save", String::new()),
        ("appendonly", "no".to_owned()),
        ("databases", "1".to_owned()),
    ];
    let mut params: Vec<(&str, Vec<u8>)> = texts
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    // Shown to an authenticated client, as Redis does; any bytes, so not text.
    let password = service.password.as_ref().map(|p| p.secret().to_vec());
    params.push(("requirepass", password.unwrap_or_default()));
    params
}

/// Redis's form of its three client classes' output limits (`hard soft seconds` each).
/// muxd's only such limit is the pub/sub class's; ordinary clients are paused instead
/// (`client-output-high-watermark`), shown as no limit, as Redis's default; muxd has no
/// replicas, whose class keeps Redis's default.
fn output_buffer_limit(config: &Config) -> String {
    let pubsub = config.pubsub_output_limit;
    format!(
        "normal 0 0 0 slave 268435456 67108864 60 pubsub {} {} {}",
        pubsub.hard,
        pubsub.soft,
        pubsub.soft_time.as_secs()
    )
}
