//! Spreading a run over threads: which connections each thread opens ([`share`]), and
//! waiting until every thread has reported that its connections are open
//! ([`first_failure`]). Load runs and idle mode both start their threads this way.

use std::sync::mpsc::Receiver;

use anyhow::anyhow;

/// Connections `lo..hi` of `total` that thread `k` of `parts` handles.
pub fn share(total: usize, parts: usize, k: usize) -> (usize, usize) {
    let parts = parts.max(1);
    (total * k / parts, total * (k + 1) / parts)
}

/// Waits for `threads` threads to report that they connected; returns the first failure.
pub fn first_failure(
    ready: &Receiver<anyhow::Result<()>>,
    threads: usize,
    what: &str,
) -> Option<anyhow::Error> {
    let mut failure = None;
    for _ in 0..threads {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(_) => {
                failure.get_or_insert(anyhow!("{what} stopped unexpectedly"));
                break;
            }
        }
    }
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_connection_once() {
        for total in [1, 2, 3, 50, 101] {
            for parts in 1..=4.min(total) {
                let mut next = 0;
                for k in 0..parts {
                    let (lo, hi) = share(total, parts, k);
                    assert_eq!(lo, next);
                    assert!(hi > lo, "{total} over {parts}: thread {k} got none");
                    next = hi;
                }
                assert_eq!(next, total);
            }
        }
    }
}
