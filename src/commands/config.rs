//! `CONFIG GET pattern [pattern ...]`: the daemon's settings under Redis's parameter names,
//! matched with Redis's glob rules. It answers what `redis-cli` and `redis-benchmark` ask
//! at start-up (`save`, `appendonly`), so both run against muxd without a warning.
//! Settings are fixed at start: `CONFIG SET` is refused. The reply is a map (a flat array
//! of names and values in RESP2), as in Redis.

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
        let matching: Vec<&(&str, Vec<u8>)> = params
            .iter()
            .filter(|(name, _)| {
                args.iter()
                    .skip(2)
                    .any(|pattern| glob_match(pattern, name.as_bytes(), true))
            })
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

/// Redis's `stringmatchlen`: `*`, `?`, `[abc]`, `[^a-z]`, `\x`; optionally ignoring case.
///
/// Iterative: on a mismatch it only ever backtracks to the last `*`, so the cost is at
/// most pattern length × text length whatever the pattern (a recursive matcher is
/// exponential in the number of `*`, which let one request stall the loop).
pub(crate) fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: pattern just past it, text position it covers up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let c = text.get(t).copied().unwrap_or_default();
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(_) => {
                if let Some((matched, next)) = match_one(pattern, p, c, nocase)
                    && matched
                {
                    p = next;
                    t += 1;
                    continue;
                }
            }
            None => {}
        }
        // Mismatch: let the last `*` swallow one more byte, or fail.
        match star {
            Some((after_star, covered)) => {
                p = after_star;
                t = covered + 1;
                star = Some((after_star, covered + 1));
            }
            None => return false,
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&b| b == b'*')
}

/// Matches the single-byte pattern element at `p` (`?`, a class, an escape, or a literal)
/// against `c`. Returns whether it matched and where the next element starts.
fn match_one(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<(bool, usize)> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match *pattern.get(p)? {
        b'?' => Some((true, p + 1)),
        b'\\' if p + 1 < pattern.len() => Some((eq(*pattern.get(p + 1)?, c), p + 2)),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut matched = false;
            loop {
                match (pattern.get(i), pattern.get(i + 1), pattern.get(i + 2)) {
                    // An unterminated class ends at the pattern's end, as in Redis.
                    (None, _, _) => break,
                    (Some(b']'), _, _) => {
                        i += 1;
                        break;
                    }
                    (Some(b'\\'), Some(&x), _) => {
                        matched |= eq(x, c);
                        i += 2;
                    }
                    (Some(&a), Some(b'-'), Some(&z)) if z != b']' => {
                        let (lo, hi) = if a <= z { (a, z) } else { (z, a) };
                        matched |= (lo..=hi).contains(&c)
                            || (nocase
                                && (lo.to_ascii_lowercase()..=hi.to_ascii_lowercase())
                                    .contains(&c.to_ascii_lowercase()));
                        i += 3;
                    }
                    (Some(&x), _, _) => {
                        matched |= eq(x, c);
                        i += 1;
                    }
                }
            }
            Some((matched != negate, i))
        }
        literal => Some((eq(literal, c), p + 1)),
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
            ("*", "", true),
            ("?", "", false),
            ("*ort", "port", true),
            ("p*t", "port", true),
            ("p*x", "port", false),
            ("*o*t*", "port", true),
            ("[", "p", false),
            ("[p", "p", true),
            ("\\", "\\", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes(), true),
                *expected,
                "{pattern} ~ {text}"
            );
        }
    }

    /// A pattern that made the recursive matcher take seconds per parameter name (it is
    /// exponential in the number of `*`: with 30 of them it would never finish).
    #[test]
    fn pathological_pattern_finishes() {
        let pattern = format!("{}Z", "*?".repeat(30));
        assert!(!glob_match(
            pattern.as_bytes(),
            b"client-output-high-watermark",
            true
        ));
        let pattern = format!("{}k", "*?".repeat(30));
        assert!(!glob_match(
            pattern.as_bytes(),
            b"client-output-high-watermark",
            true
        ));
        assert!(glob_match(
            b"*?*?*?*k",
            b"client-output-high-watermark",
            true
        ));
    }
}
