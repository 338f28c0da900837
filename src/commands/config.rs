//! `CONFIG GET pattern [pattern ...]`: the daemon's settings under Redis's parameter names,
//! matched with Redis's glob rules. It answers what `redis-cli` and `redis-benchmark` ask
//! at start-up (`save`, `appendonly`), so both run against muxd without a warning.
//! Settings are fixed at start: `CONFIG SET` is refused.

use super::{
    CommandService, Ctx, arity_ok, reply_help, reply_unknown_subcommand, reply_wrong_arity,
};
use crate::listener::ListenAddr;
use crate::resp::{Args, Reply};

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "HELP",
    "    Print this help.",
];

pub(crate) fn config(service: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let sub = args.get(1).unwrap_or_default();
    if sub.eq_ignore_ascii_case(b"get") {
        if !arity_ok(-3, args.len()) {
            reply_wrong_arity("config|get", ctx);
            return;
        }
        let params = parameters(service, ctx);
        let matching: Vec<&(&str, String)> = params
            .iter()
            .filter(|(name, _)| {
                args.iter()
                    .skip(2)
                    .any(|pattern| glob_match(pattern, name.as_bytes(), true))
            })
            .collect();
        ctx.reply(&Reply::ArrayHeader(matching.len() * 2));
        for (name, value) in matching {
            ctx.reply(&Reply::Bulk(name.as_bytes()));
            ctx.reply(&Reply::Bulk(value.as_bytes()));
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
fn parameters(service: &CommandService, ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let server = ctx.server();
    let config = server.config();
    let mut binds = Vec::new();
    let mut port = 0;
    let mut unix = String::new();
    for listener in server.listeners() {
        match &listener.addr {
            ListenAddr::Tcp(addr) => {
                binds.push(addr.ip().to_string());
                if port == 0 {
                    port = addr.port();
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
    vec![
        ("bind", binds.join(" ")),
        ("port", port.to_string()),
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
        ("save", String::new()),
        ("appendonly", "no".to_owned()),
        ("databases", "1".to_owned()),
    ]
}

/// Redis's `stringmatchlen`: `*`, `?`, `[abc]`, `[^a-z]`, `\x`; optionally ignoring case.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            let rest = {
                let mut r = rest;
                while let Some((b'*', more)) = r.split_first() {
                    r = more;
                }
                r
            };
            if rest.is_empty() {
                return true;
            }
            (0..=text.len()).any(|i| glob_match(rest, text.get(i..).unwrap_or_default(), nocase))
        }
        Some((b'?', rest)) => match text.split_first() {
            Some((_, tail)) => glob_match(rest, tail, nocase),
            None => false,
        },
        Some((b'[', rest)) => {
            let Some((&c, tail)) = text.split_first() else {
                return false;
            };
            let (negate, mut class) = match rest.split_first() {
                Some((b'^', r)) => (true, r),
                _ => (false, rest),
            };
            let mut matched = false;
            loop {
                match class {
                    [] => break,
                    [b']', r @ ..] => {
                        class = r;
                        break;
                    }
                    [b'\\', x, r @ ..] => {
                        matched |= eq(*x, c);
                        class = r;
                    }
                    [a, b'-', z, r @ ..] if *z != b']' => {
                        let (lo, hi) = if a <= z { (*a, *z) } else { (*z, *a) };
                        let c2 = if nocase { c.to_ascii_lowercase() } else { c };
                        let (lo2, hi2) = if nocase {
                            (lo.to_ascii_lowercase(), hi.to_ascii_lowercase())
                        } else {
                            (lo, hi)
                        };
                        matched |= (lo..=hi).contains(&c) || (lo2..=hi2).contains(&c2);
                        class = r;
                    }
                    [x, r @ ..] => {
                        matched |= eq(*x, c);
                        class = r;
                    }
                }
            }
            matched != negate && glob_match(class, tail, nocase)
        }
        Some((b'\\', rest)) if !rest.is_empty() => match (rest.split_first(), text.split_first()) {
            (Some((p, prest)), Some((t, tail))) if eq(*p, *t) => glob_match(prest, tail, nocase),
            _ => false,
        },
        Some((p, rest)) => match text.split_first() {
            Some((t, tail)) if eq(*p, *t) => glob_match(rest, tail, nocase),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_follows_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "save", true),
            ("save", "save", true),
            ("SAVE", "save", true),
            ("sav?", "save", true),
            ("sa*", "save", true),
            ("*max*", "maxclients", true),
            ("*max*", "port", false),
            ("[sp]ort", "port", true),
            ("[^sp]ort", "port", false),
            ("[a-z]ort", "port", true),
            ("p\\ort", "port", true),
            ("", "port", false),
            ("port?", "port", false),
            ("**", "", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes(), true),
                *expected,
                "{pattern} ~ {text}"
            );
        }
    }
}
