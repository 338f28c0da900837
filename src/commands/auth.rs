//! `AUTH [username] password`, and the credential check `HELLO ... AUTH` shares with it.
//!
//! muxd has one user, Redis's `default`. With no password configured, `default` accepts
//! any password (clients configured with one send it anyway) and the one-argument form
//! gets Redis's warning that no password is set. Any other user name, or a wrong password,
//! gets `WRONGPASS`, is counted (`INFO`'s `acl_access_denied_auth`) and logged as a warning
//! with the client's id and address; the password is never logged.

use log::warn;

use super::client::peer_addr;
use super::{CommandService, Ctx, SYNTAX_ERROR};
use crate::resp::{Args, Reply, RespSession};

/// The one user, as Redis names it.
const DEFAULT_USER: &[u8] = b"default";

/// Redis's reply to wrong credentials.
pub(crate) const WRONGPASS: Reply<'static> =
    Reply::Error("WRONGPASS invalid username-password pair or user is disabled.");

/// `AUTH password` with no password configured: Redis's exact text.
const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";

pub(crate) fn auth(service: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let (user, password) = match (args.len(), args.get(1), args.get(2)) {
        (2, Some(password), _) => {
            if !service.requires_password() {
                ctx.reply(&Reply::Error(NO_PASSWORD));
                return;
            }
            (DEFAULT_USER, password)
        }
        (3, Some(user), Some(password)) => (user, password),
        _ => {
            ctx.reply(&SYNTAX_ERROR);
            return;
        }
    };
    if authenticate(service, ctx, user, password, "auth") {
        ctx.reply(&Reply::OK);
    } else {
        ctx.reply(&WRONGPASS);
    }
}

/// Checks `user` and `password`: on success the client is authenticated (its session no
/// longer requires it); on failure it is counted and logged. `command` names the command
/// in the log line.
pub(crate) fn authenticate(
    service: &mut CommandService,
    ctx: &mut Ctx<'_>,
    user: &[u8],
    password: &[u8],
    command: &str,
) -> bool {
    let accepted = user == DEFAULT_USER && service.password_matches(password);
    if accepted {
        let session = ctx.session();
        if session.auth_required {
            ctx.set_session(RespSession {
                auth_required: false,
                ..session
            });
        }
    } else {
        service.auth_failures += 1;
        warn!(
            "authentication failed client={} addr={} command={command}",
            ctx.id(),
            peer_addr(ctx.info())
        );
    }
    accepted
}

/// The configured password, kept so that checking a candidate takes time that depends on
/// the candidate alone: both are hashed with a key drawn at start (SipHash, as
/// `RandomState` does), and only digests are compared; the bytes themselves are compared
/// only once the digests match, which a wrong password does with a chance of 2^-64.
pub(crate) struct Password {
    key: std::collections::hash_map::RandomState,
    digest: u64,
    secret: Box<[u8]>,
}

impl Password {
    pub(crate) fn new(secret: &[u8]) -> Password {
        use std::hash::BuildHasher;
        let key = std::collections::hash_map::RandomState::new();
        Password {
            digest: key.hash_one(secret),
            key,
            secret: secret.into(),
        }
    }

    pub(crate) fn matches(&self, candidate: &[u8]) -> bool {
        use std::hash::BuildHasher;
        self.key.hash_one(candidate) == self.digest && *self.secret == *candidate
    }

    /// The password itself (`CONFIG GET requirepass` shows it, as Redis does).
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn a_password_matches_itself_only() {
        let p = Password::new(b"s3cret");
        assert!(p.matches(b"s3cret"));
        for wrong in [&b""[..], b"s3cre", b"s3cret ", b"S3cret", b"s3cret\n"] {
            assert!(!p.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{p:?}"), "Password(..)", "never printed");
    }
}
