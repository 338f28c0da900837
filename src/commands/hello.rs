//! `HELLO [protover [AUTH username password] [SETNAME clientname]]`: the handshake every
//! current client library opens with. It picks the protocol version (2 or 3) for the rest
//! of the connection and answers with facts about the server, a map (a flat array in
//! RESP2): `server`, `version`, `proto`, `id`, `mode`, `role`, `modules`. With no argument
//! it reports without switching.
//!
//! As in Redis 7.0 (`helloCommand` in `src/networking.c`): the version is checked first,
//! before authentication (a client learns it must fall back to RESP2 even without the
//! password), then the options in order, each taking effect as it is read (so
//! `HELLO 3 SETNAME a b` names the client `a`, then fails on `b`; Redis 7.2 checks every
//! option before applying any), then, without authentication, `NOAUTH`.

use super::auth::{WRONGPASS, authenticate};
use super::client::set_name_or_reply;
use super::{CommandService, Ctx, parse_i64};
use crate::resp::{Args, Protocol, Reply, RespSession};

/// Redis 7.0's text for `HELLO` (without `AUTH`) from a client that has yet to authenticate.
const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

pub(crate) fn hello(service: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let mut protocol = ctx.session().protocol;
    let mut next = 1;
    if let Some(version) = args.get(1) {
        next = 2;
        let Some(number) = parse_i64(version) else {
            ctx.reply(&Reply::Error(
                "ERR Protocol version is not an integer or out of range",
            ));
            return;
        };
        let Some(wanted) = Protocol::from_number(number) else {
            ctx.reply(&Reply::Error("NOPROTO unsupported protocol version"));
            return;
        };
        protocol = wanted;
    }
    let mut j = next;
    while let Some(option) = args.get(j) {
        let more = args.len() - 1 - j;
        if option.eq_ignore_ascii_case(b"auth") && more >= 2 {
            let user = args.get(j + 1).unwrap_or_default();
            let password = args.get(j + 2).unwrap_or_default();
            if !authenticate(service, ctx, user, password, "hello") {
                ctx.reply(&WRONGPASS);
                return;
            }
            j += 3;
        } else if option.eq_ignore_ascii_case(b"setname") && more >= 1 {
            if !set_name_or_reply(args.get(j + 1).unwrap_or_default(), ctx) {
                return;
            }
            j += 2;
        } else {
            let option = String::from_utf8_lossy(option);
            ctx.reply(&Reply::Error(&format!(
                "ERR Syntax error in HELLO option '{option}'"
            )));
            return;
        }
    }
    if ctx.session().auth_required {
        ctx.reply(&Reply::Error(NOAUTH_HELLO));
        return;
    }
    ctx.set_session(RespSession {
        protocol,
        ..ctx.session()
    });
    let id = i64::try_from(ctx.id().as_u64()).unwrap_or(i64::MAX);
    ctx.reply(&Reply::Map(&[
        (Reply::Bulk(b"server"), Reply::Bulk(b"muxd")),
        (
            Reply::Bulk(b"version"),
            Reply::Bulk(env!("CARGO_PKG_VERSION").as_bytes()),
        ),
        (Reply::Bulk(b"proto"), Reply::Integer(protocol.number())),
        (Reply::Bulk(b"id"), Reply::Integer(id)),
        (Reply::Bulk(b"mode"), Reply::Bulk(b"standalone")),
        (Reply::Bulk(b"role"), Reply::Bulk(b"master")),
        (Reply::Bulk(b"modules"), Reply::Array(&[])),
    ]));
}
