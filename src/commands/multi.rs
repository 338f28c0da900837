//! `MULTI`, `EXEC`, `DISCARD`: transactions, with Redis's semantics and error texts
//! (`src/multi.c`).
//!
//! After `MULTI`, every command but `MULTI`, `EXEC`, `DISCARD`, `QUIT` and `RESET` is
//! checked (known, arity, authenticated), copied into the client's queue and answered
//! `+QUEUED`; `EXEC` runs the queue and replies one array of the replies, each in the form
//! the client speaks when it runs (a queued `HELLO 3` switches the rest to RESP3, as in
//! Redis). A command refused while queueing (unknown, wrong arity) aborts the transaction:
//! nothing more is queued and `EXEC` answers `EXECABORT`. `DISCARD`, `RESET` and
//! disconnecting drop the queue. muxd being one thread, nothing else runs between the
//! queued commands.
//!
//! `WATCH` and `UNWATCH` are accepted as Redis accepts them: muxd keeps no keys, so
//! nothing watched can change and `EXEC` never fails for it. `WATCH` runs at once inside
//! `MULTI` (not queued) and is refused there with Redis's error, which does not abort the
//! transaction; `UNWATCH` is queued like any command.
//!
//! The queue is bounded by the input-buffer limit (`--max-request-bytes`, Redis's
//! `client-query-buffer-limit`): a command that would take the queue past it is refused,
//! the queue is dropped at once and the transaction aborted (Redis has no limit of its
//! own here besides the memory a client may use).

use log::warn;

use super::{Command, CommandService, Ctx, lookup};
use crate::resp::{Args, Reply, RequestQueue};

/// A client's open transaction.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// The commands queued, copied (a request borrows the input buffer).
    queue: RequestQueue,
    /// A command was refused while queueing: `EXEC` aborts, nothing more is queued
    /// (Redis's `CLIENT_DIRTY_EXEC`).
    aborted: bool,
}

const EXECABORT: Reply<'static> =
    Reply::Error("EXECABORT Transaction discarded because of previous errors.");

pub(crate) fn multi(service: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    let state = ctx.state();
    if state.transaction().is_some() {
        ctx.reply(&Reply::Error("ERR MULTI calls can not be nested"));
        return;
    }
    state.set_transaction(Some(Transaction::default()));
    service.open_transactions += 1;
    ctx.reply(&Reply::OK);
}

/// Ends the client's transaction, if it has one, and returns it (`EXEC`, `DISCARD`,
/// `RESET`, a refused `EXEC`).
pub(crate) fn end(service: &mut CommandService, ctx: &mut Ctx<'_>) -> Option<Transaction> {
    let transaction = ctx.state().set_transaction(None)?;
    service.open_transactions = service.open_transactions.saturating_sub(1);
    Some(transaction)
}

pub(crate) fn discard(service: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    if end(service, ctx).is_none() {
        ctx.reply(&Reply::Error("ERR DISCARD without MULTI"));
        return;
    }
    ctx.reply(&Reply::OK);
}

pub(crate) fn exec(service: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    let Some(transaction) = end(service, ctx) else {
        ctx.reply(&Reply::Error("ERR EXEC without MULTI"));
        return;
    };
    if transaction.aborted {
        ctx.reply(&EXECABORT);
        return;
    }
    ctx.reply(&Reply::ArrayHeader(transaction.queue.len()));
    for request in transaction.queue.iter() {
        // Known and of the right arity: both were checked when it was queued.
        if let Some(command) = lookup(request.command()) {
            (command.run)(service, request, ctx);
        }
    }
}

pub(crate) fn watch(_: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    if ctx.state().transaction().is_some() {
        ctx.reply(&Reply::Error("ERR WATCH inside MULTI is not allowed"));
        return;
    }
    ctx.reply(&Reply::OK);
}

pub(crate) fn unwatch(_: &mut CommandService, _: Args<'_>, ctx: &mut Ctx<'_>) {
    ctx.reply(&Reply::OK);
}

/// Queues `request` in the open transaction and answers `+QUEUED`.
pub(crate) fn queue(request: &Args<'_>, ctx: &mut Ctx<'_>) {
    let limit = ctx.server().config().max_input_buffer;
    let id = ctx.id();
    let Some(transaction) = ctx.state().transaction_mut() else {
        return;
    };
    if !transaction.aborted {
        if transaction.queue.memory() + RequestQueue::cost(request) > limit {
            *transaction = Transaction {
                aborted: true,
                ..Transaction::default()
            };
            warn!("transaction queue over the limit, discarded client={id} limit={limit}");
            ctx.reply(&Reply::Error(
                "ERR MULTI queue over client-query-buffer-limit; transaction discarded",
            ));
            return;
        }
        transaction.queue.push(request);
    }
    ctx.reply(&Reply::Simple("QUEUED"));
}

/// A command refused before it could run or be queued (unknown, wrong arity, not
/// authenticated), with `message`. Inside `MULTI` the refusal aborts the transaction, as
/// Redis's `rejectCommand` does; a refused `EXEC` ends it at once with `EXECABORT` and the
/// reason.
pub(crate) fn refuse(
    service: &mut CommandService,
    command: Option<&Command>,
    message: &str,
    ctx: &mut Ctx<'_>,
) {
    let Some(transaction) = ctx.state().transaction_mut() else {
        ctx.reply(&Reply::Error(message));
        return;
    };
    if command.is_some_and(|c| c.name == "exec") {
        end(service, ctx);
        let reason = message.strip_prefix("ERR ").unwrap_or(message);
        ctx.reply(&Reply::Error(&format!(
            "EXECABORT Transaction discarded because of: {reason}"
        )));
        return;
    }
    *transaction = Transaction {
        aborted: true,
        ..Transaction::default()
    };
    ctx.reply(&Reply::Error(message));
}
