//! Server-wide counters, updated by the loop and read by services (`INFO stats`).

use crate::client::CloseReason;

/// What the loop has counted since the server started.
///
/// Field names follow Redis's `INFO` where Redis has the same figure.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted, including those rejected for the client limit.
    pub total_connections_received: u64,
    /// Connections refused because the client limit was reached.
    pub rejected_connections: u64,
    /// Requests handed to the service.
    pub total_commands_processed: u64,
    /// Bytes read from clients.
    pub total_net_input_bytes: u64,
    /// Bytes written to clients.
    pub total_net_output_bytes: u64,
    /// Clients closed for a malformed request.
    pub protocol_errors: u64,
    /// Times `accept` failed for lack of file descriptors (`EMFILE`/`ENFILE`).
    pub accept_fd_exhausted: u64,
    /// Times a client's reading was paused because its unread output passed the high
    /// watermark.
    pub output_paused_clients: u64,
    /// Clients closed because they exceeded a per-client limit.
    pub limit_disconnections: u64,
    /// Times a client's turn ended at the per-turn request budget with requests left, so
    /// that other clients were served first.
    pub turns_yielded: u64,
    /// Subscribers closed because their unsent output went past the pub/sub output limit
    /// (Redis's `client_output_buffer_limit_disconnections`).
    pub client_output_buffer_limit_disconnections: u64,
    /// Clients closed because all clients' buffers held more than `maxmemory-clients`
    /// (Redis's `evicted_clients`).
    pub evicted_clients: u64,
    /// Times the loop woke up from its poll (Redis's `eventloop_cycles`): an idle server
    /// wakes only for its deadlines, so this counts how often it did.
    pub eventloop_cycles: u64,
    /// Clients closed, by reason.
    closed: [u64; CloseReason::ALL.len()],
}

impl Stats {
    /// Clients closed for `reason` so far.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed.get(reason.index()).copied().unwrap_or(0)
    }

    pub(crate) fn count_close(&mut self, reason: CloseReason) {
        if let Some(n) = self.closed.get_mut(reason.index()) {
            *n += 1;
        }
    }
}
