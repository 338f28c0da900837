//! [`ClientState`]: what the daemon's commands keep for each client, beside what the loop
//! keeps in its handle (the client's name, and its codec session: protocol version and
//! whether it has yet to authenticate).
//!
//! Every connected client carries one in its handle, idle or not, so it is one pointer:
//! what only some clients use (`ADD`'s total, the library `CLIENT SETINFO` names, an open
//! `MULTI`) lives behind it, allocated the first time a client needs any of it.

use super::multi::Transaction;

/// The daemon's per-client state.
#[derive(Debug, Default)]
pub struct ClientState {
    /// `None` until the client first needs any of it (most idle clients never do).
    used: Option<Box<Used>>,
}

/// The state of a client that used more than `PING`.
#[derive(Debug, Default)]
struct Used {
    /// The running total of `ADD`, reset by `SUM`.
    total: i64,
    /// From `CLIENT SETINFO LIB-NAME` (shown as `lib-name=`).
    lib_name: Option<Box<str>>,
    /// From `CLIENT SETINFO LIB-VER` (shown as `lib-ver=`).
    lib_ver: Option<Box<str>>,
    /// Between `MULTI` and `EXEC`/`DISCARD`/`RESET`: the commands queued.
    transaction: Option<Transaction>,
}

impl ClientState {
    /// The running total of `ADD`.
    pub fn total(&self) -> i64 {
        self.used.as_ref().map_or(0, |u| u.total)
    }

    /// The client library's name, as it gave it with `CLIENT SETINFO LIB-NAME`.
    pub fn lib_name(&self) -> Option<&str> {
        self.used.as_ref().and_then(|u| u.lib_name.as_deref())
    }

    /// The client library's version, as it gave it with `CLIENT SETINFO LIB-VER`.
    pub fn lib_ver(&self) -> Option<&str> {
        self.used.as_ref().and_then(|u| u.lib_ver.as_deref())
    }

    pub(crate) fn set_total(&mut self, total: i64) {
        if total != 0 || self.used.is_some() {
            self.used_mut().total = total;
        }
    }

    pub(crate) fn set_lib_name(&mut self, name: Option<Box<str>>) {
        self.used_mut().lib_name = name;
    }

    pub(crate) fn set_lib_ver(&mut self, version: Option<Box<str>>) {
        self.used_mut().lib_ver = version;
    }

    /// Whether the client is between `MULTI` and `EXEC`.
    #[inline]
    pub fn in_transaction(&self) -> bool {
        self.used.as_ref().is_some_and(|u| u.transaction.is_some())
    }

    pub(crate) fn transaction(&self) -> Option<&Transaction> {
        self.used.as_ref().and_then(|u| u.transaction.as_ref())
    }

    pub(crate) fn transaction_mut(&mut self) -> Option<&mut Transaction> {
        self.used.as_mut().and_then(|u| u.transaction.as_mut())
    }

    /// Opens (`Some`) or ends (`None`) the transaction; returns the one that was open.
    pub(crate) fn set_transaction(
        &mut self,
        transaction: Option<Transaction>,
    ) -> Option<Transaction> {
        match transaction {
            Some(t) => self.used_mut().transaction.replace(t),
            None => self.used.as_mut().and_then(|u| u.transaction.take()),
        }
    }

    fn used_mut(&mut self) -> &mut Used {
        self.used.get_or_insert_with(Box::default)
    }
}
