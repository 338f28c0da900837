//! Client memory, server-wide (Redis 7's `maxmemory-clients`): every per-client limit is
//! per client, so many clients each within theirs could still exhaust the machine
//! together. The table keeps the sum of the memory its clients' buffers hold; past the
//! limit, the clients holding the most are closed, largest first, until the sum is
//! under it. Closing the largest first never touches a client holding no more than its
//! share (the limit divided among the clients): while the sum is over the limit, the
//! largest holds more than that.

use log::warn;

use super::{EventLoop, LOG_TARGET};
use crate::client::CloseReason;
use crate::codec::Codec;
use crate::service::Service;

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Closes clients, largest first, while all clients' buffers hold more than the limit.
    /// Costs one comparison while under it.
    #[inline]
    pub(super) fn enforce_client_memory(&mut self) {
        if self.client_memory() > self.core.info.max_client_memory {
            self.evict_clients();
        }
    }

    /// All clients' own buffers, and the published messages they are owed (shared, held
    /// once).
    fn client_memory(&self) -> usize {
        self.core.clients.memory() + self.core.pubsub.arena.memory()
    }

    #[cold]
    fn evict_clients(&mut self) {
        let limit = self.core.info.max_client_memory;
        // Ranked by what each holds or keeps alive: its own buffers and the messages it
        // is owed (a subscriber that does not read keeps its batches alive).
        let mut largest: Vec<(usize, usize)> = self
            .core
            .clients
            .iter()
            .map(|(key, client)| (client.total_memory(), key))
            .filter(|&(memory, _)| memory > 0)
            .collect();
        largest.sort_unstable_by(|a, b| b.cmp(a));
        for (memory, key) in largest {
            let total = self.client_memory();
            if total <= limit {
                break;
            }
            if let Some(client) = self.core.clients.get(key) {
                warn!(
                    target: LOG_TARGET,
                    "client memory above maxmemory-clients, evicting client={} memory={memory} total={total} limit={limit}",
                    client.info.id
                );
            }
            self.core.stats.evicted_clients += 1;
            self.close_now(key, CloseReason::Evicted);
        }
    }
}
