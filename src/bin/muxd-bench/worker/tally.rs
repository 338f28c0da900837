//! What a load thread measures: the [`Tally`] of replies, error replies and wrong replies
//! (with a few distinct samples of each) and the latency histogram; the [`Ring`] of send
//! times each latency is measured from; the [`Outcome`] the thread hands back.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::new_histogram;

/// Error and wrong-reply samples kept per thread.
pub const SAMPLES: usize = 5;
/// Failures of one kind looked at for distinct samples, per thread.
const SAMPLE_TRIES: u64 = 1000;

/// What one thread measured.
pub struct Outcome {
    pub hist: Histogram<u64>,
    pub replies: u64,
    pub errors: u64,
    pub wrong: u64,
    pub error_samples: Vec<String>,
    pub wrong_samples: Vec<String>,
    /// When the last reply arrived, since the start.
    pub last_reply: Duration,
}

/// The counts and the histogram a thread fills.
pub(super) struct Tally {
    pub(super) hist: Histogram<u64>,
    pub(super) replies: u64,
    pub(super) errors: u64,
    pub(super) wrong: u64,
    pub(super) error_samples: Vec<String>,
    pub(super) wrong_samples: Vec<String>,
    /// Latencies are recorded in runs of equal values (a read's replies often share one).
    run_value: u64,
    run_count: u64,
    pub(super) last_reply_ns: u64,
}

impl Tally {
    pub(super) fn new() -> Tally {
        Tally {
            hist: new_histogram(),
            replies: 0,
            errors: 0,
            wrong: 0,
            error_samples: Vec::new(),
            wrong_samples: Vec::new(),
            run_value: 0,
            run_count: 0,
            last_reply_ns: 0,
        }
    }

    #[inline]
    pub(super) fn record(&mut self, latency_ns: u64) {
        let us = (latency_ns + 500) / 1000;
        if us == self.run_value {
            self.run_count += 1;
        } else {
            self.flush_run();
            self.run_value = us;
            self.run_count = 1;
        }
    }

    pub(super) fn flush_run(&mut self) {
        if self.run_count > 0 {
            self.hist
                .saturating_record_n(self.run_value, self.run_count);
            self.run_count = 0;
        }
    }

    pub(super) fn error(&mut self, sample: impl FnOnce() -> String) {
        self.errors += 1;
        keep_sample(&mut self.error_samples, self.errors, sample);
    }

    pub(super) fn wrong(&mut self, sample: impl FnOnce() -> String) {
        self.wrong += 1;
        keep_sample(&mut self.wrong_samples, self.wrong, sample);
    }

    /// What the thread measured, its last run of latencies recorded.
    pub(super) fn into_outcome(mut self) -> Outcome {
        self.flush_run();
        Outcome {
            hist: self.hist,
            replies: self.replies,
            errors: self.errors,
            wrong: self.wrong,
            error_samples: self.error_samples,
            wrong_samples: self.wrong_samples,
            last_reply: Duration::from_nanos(self.last_reply_ns),
        }
    }
}

/// Keeps up to [`SAMPLES`] distinct samples, looking only at the first
/// [`SAMPLE_TRIES`] occurrences (so a flood of failures costs no formatting).
fn keep_sample(samples: &mut Vec<String>, occurrence: u64, sample: impl FnOnce() -> String) {
    if samples.len() < SAMPLES && occurrence <= SAMPLE_TRIES {
        let sample = sample();
        if !samples.contains(&sample) {
            samples.push(sample);
        }
    }
}

/// Timestamps of the requests in flight on a connection, oldest first.
pub(super) struct Ring {
    slots: Box<[u64]>,
    head: usize,
    len: usize,
}

impl Ring {
    pub(super) fn new(capacity: usize) -> Ring {
        Ring {
            slots: vec![0; capacity.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: u64) {
        let mut at = self.head + self.len;
        if at >= self.slots.len() {
            at -= self.slots.len();
        }
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = value;
            self.len += 1;
        }
    }

    #[inline]
    pub(super) fn pop(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots.get(self.head).copied();
        self.head += 1;
        if self.head == self.slots.len() {
            self.head = 0;
        }
        self.len -= 1;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_fifo_and_wraps() {
        let mut r = Ring::new(3);
        for round in 0..5u64 {
            r.push(round * 10);
            r.push(round * 10 + 1);
            assert_eq!(r.pop(), Some(round * 10));
            assert_eq!(r.pop(), Some(round * 10 + 1));
        }
        assert_eq!(r.pop(), None);
    }
}
