//! Output: writing what clients are owed, `WRITABLE` interest, watermarks.

use std::io::{self, Write};
use std::mem;
use std::time::Instant;

use log::{debug, warn};
use mio::{Interest, Token};

use super::*;
use crate::client::{CloseReason, Phase};
use crate::codec::Codec;
use crate::service::Service;
use crate::stream::Stream;

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Writes `out[written..]` now as far as the socket takes it and keeps the rest with
    /// the client; updates its `WRITABLE` interest; completes a close once all is written.
    pub(super) fn finish_output(
        &mut self,
        key: usize,
        mut out: Vec<u8>,
        own: bool,
        written: usize,
        now: Instant,
    ) {
        let Some(client) = self.clients.get_mut(key) else {
            if !own {
                recycle_output(&mut self.write_buf, out);
            }
            return;
        };
        let mut pos = written.min(out.len());
        let result = if pos < out.len() {
            write_nonblocking(&mut client.stream, &out, &mut pos)
        } else {
            Ok(())
        };
        let sent = (pos - written.min(pos)) as u64;
        if sent > 0 {
            client.info.bytes_out += sent;
            client.info.last_active = now;
            self.stats.total_net_output_bytes += sent;
        }
        let remaining = out.len() - pos;
        if remaining == 0 {
            if own {
                out.clear();
                if out.capacity() > KEEP_BUFFER {
                    out = Vec::new();
                }
                if let Some(buffers) = client.buffers.as_deref_mut() {
                    buffers.output = out;
                    buffers.written = 0;
                }
            } else {
                recycle_output(&mut self.write_buf, out);
            }
        } else if own {
            if let Some(buffers) = client.buffers.as_deref_mut() {
                buffers.output = out;
                buffers.written = pos;
            }
        } else {
            let buffers = client.buffers.get_or_insert_with(Default::default);
            buffers
                .output
                .extend_from_slice(out.get(pos..).unwrap_or_default());
            buffers.written = 0;
            recycle_output(&mut self.write_buf, out);
        }
        if sent > 0 && self.info.config.idle_timeout.is_some() {
            // Written to is active too: keep the idle order in step with `last_active`.
            self.clients.touch(key);
        }
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };

        if let Err(e) = result {
            debug!(target: LOG_TARGET, "write failed client={} error={e}", client.info.id);
            self.close_now(key, CloseReason::Reset);
            return;
        }
        let want_writable = remaining > 0;
        if client.writable_interest != want_writable {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) =
                self.poll
                    .registry()
                    .reregister(&mut client.stream, Token(key), interest)
            {
                warn!(
                    target: LOG_TARGET,
                    "reregistering failed, closing client={} error={e}",
                    client.info.id
                );
                self.close_now(key, CloseReason::Reset);
                return;
            }
            client.writable_interest = want_writable;
        }
        if remaining == 0 {
            self.output_drained(key, now);
        } else if remaining <= self.info.config.output_low_watermark {
            self.resume_if_paused(key);
        }
    }

    /// Writes what a client is owed (on a writable event, or after another client sent it
    /// something).
    pub(super) fn flush(&mut self, key: usize, now: Instant) {
        let Some(buffers) = self
            .clients
            .get_mut(key)
            .and_then(|c| c.buffers.as_deref_mut())
        else {
            return;
        };
        if buffers.pending_output() == 0 {
            return;
        }
        let out = mem::take(&mut buffers.output);
        let written = mem::take(&mut buffers.written);
        self.finish_output(key, out, true, written, now);
    }

    /// All owed output is written: finish a close, or let a paused client read again.
    pub(super) fn output_drained(&mut self, key: usize, now: Instant) {
        let Some(client) = self.clients.get(key) else {
            return;
        };
        match client.phase {
            Phase::Closing(reason) => self.linger_or_close(key, reason, now),
            Phase::Open => self.resume_if_paused(key),
            Phase::Lingering(..) => {}
        }
    }

    pub(super) fn resume_if_paused(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key)
            && client.paused
            && client.phase == Phase::Open
        {
            client.paused = false;
            client.read_pending = true;
            self.ready.push(key);
            debug!(target: LOG_TARGET, "output drained, resuming reads client={}", client.info.id);
        }
    }
}

/// Returns the shared output buffer to its place, emptied (and shrunk after a huge reply).
pub(super) fn recycle_output(shared: &mut Vec<u8>, mut out: Vec<u8>) {
    out.clear();
    if out.capacity() > 4 * READ_CHUNK {
        out = Vec::with_capacity(READ_CHUNK);
    }
    *shared = out;
}

/// Writes `data[*pos..]` until all is written or the socket would block.
pub(super) fn write_nonblocking(
    stream: &mut Stream,
    data: &[u8],
    pos: &mut usize,
) -> io::Result<()> {
    while let Some(rest) = data.get(*pos..).filter(|r| !r.is_empty()) {
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
