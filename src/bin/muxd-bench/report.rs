//! What a run reports: the latency histogram, the per-test summary (text or one JSON
//! object per line, written by hand: it is one flat object), the progress line, and
//! [`printable`], how the bytes of a reply are shown in messages.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency the histograms tell apart: an hour, in microseconds. Longer ones are
/// recorded as an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_LATENCY_US, 3) {
        Ok(h) => h,
        // The bounds are constants that hdrhistogram accepts.
        Err(e) => unreachable!("histogram bounds: {e}"),
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    /// The percentiles of `hist` (all 0 when it is empty).
    pub fn of(hist: &Histogram<u64>) -> Latency {
        if hist.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        }
    }
}

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub test: String,
    pub target: String,
    pub clients: usize,
    pub pipeline: usize,
    pub threads: usize,
    /// Replies received and checked.
    pub requests: u64,
    /// Error replies and failed connections.
    pub errors: u64,
    /// Replies that were not the expected one.
    pub wrong: u64,
    /// From the start of sending to the last reply.
    pub seconds: f64,
    pub latency: Latency,
}

impl Report {
    /// Requests per second (0 for an empty run).
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Whether the run had neither errors nor wrong replies.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.wrong == 0
    }

    /// One JSON object on one line (no trailing newline), keys in a fixed order.
    pub fn to_json(&self) -> String {
        format!(
            concat!(
                "{{\"test\":{},\"target\":{},\"clients\":{},\"pipeline\":{},\"threads\":{},",
                "\"requests\":{},\"errors\":{},\"wrong\":{},\"seconds\":{},\"rps\":{},",
                "\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}"
            ),
            json_string(&self.test),
            json_string(&self.target),
            self.clients,
            self.pipeline,
            self.threads,
            self.requests,
            self.errors,
            self.wrong,
            json_number(self.seconds, 3),
            json_number(self.rps(), 1),
            self.latency.p50,
            self.latency.p90,
            self.latency.p99,
            self.latency.p999,
            self.latency.max,
        )
    }

    /// The human-readable summary, a few lines ending with a newline.
    pub fn to_text(&self) -> String {
        let l = &self.latency;
        format!(
            "====== {} ======\n  \
             {}, {} clients, pipeline {}, {} thread{}\n  \
             {} requests in {:.3} s: {:.1} requests/s\n  \
             {} errors, {} wrong replies\n  \
             latency us: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}\n",
            self.test,
            self.target,
            self.clients,
            self.pipeline,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.requests,
            self.seconds,
            self.rps(),
            self.errors,
            self.wrong,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
        )
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite number with `decimals` decimals; JSON has no NaN or infinity, so those are 0.
fn json_number(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        format!("{:.decimals$}", 0.0)
    }
}

/// The once-a-second progress line on stderr: rewritten in place with `\r` on a terminal,
/// one plain line per report otherwise.
pub struct Progress {
    enabled: bool,
    tty: bool,
    name: String,
    last_at: Instant,
    last_count: u64,
    shown: bool,
}

/// How often the progress line is updated.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

impl Progress {
    /// Progress for test `name`, started at `start`; nothing is printed if `quiet`.
    pub fn new(name: &str, start: Instant, quiet: bool) -> Progress {
        Progress {
            enabled: !quiet,
            tty: std::io::stderr().is_terminal(),
            name: name.to_owned(),
            last_at: start,
            last_count: 0,
            shown: false,
        }
    }

    /// Prints the line for `count` replies so far at `now`.
    pub fn report(&mut self, count: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_at).as_secs_f64();
        let rate = if elapsed > 0.0 {
            (count.saturating_sub(self.last_count)) as f64 / elapsed
        } else {
            0.0
        };
        self.last_at = now;
        self.last_count = count;
        if !self.enabled {
            return;
        }
        let line = progress_line(&self.name, count, rate);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.shown = true;
    }

    /// Clears the line on a terminal, so the summary starts on a clean line.
    pub fn finish(&mut self) {
        if self.enabled && self.tty && self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        self.shown = false;
    }
}

/// `echo: 523000 requests, 1043210 requests/s`
pub fn progress_line(name: &str, count: u64, rate: f64) -> String {
    format!("{name}: {count} requests, {rate:.0} requests/s")
}

/// A reply as it can be printed on one line: at most `max` bytes, control bytes and
/// non-ASCII escaped (`\r\n` shows as `\r\n`).
pub fn printable(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > max {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            test: "ping_mbulk".into(),
            target: "tcp://127.0.0.1:7379".into(),
            clients: 50,
            pipeline: 16,
            threads: 1,
            requests: 100_000,
            errors: 0,
            wrong: 0,
            seconds: 0.812,
            latency: Latency {
                p50: 310,
                p90: 420,
                p99: 650,
                p999: 900,
                max: 1500,
            },
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        assert_eq!(
            sample().to_json(),
            "{\"test\":\"ping_mbulk\",\"target\":\"tcp://127.0.0.1:7379\",\"clients\":50,\
             \"pipeline\":16,\"threads\":1,\"requests\":100000,\"errors\":0,\"wrong\":0,\
             \"seconds\":0.812,\"rps\":123152.7,\"p50_us\":310,\"p90_us\":420,\"p99_us\":650,\
             \"p999_us\":900,\"max_us\":1500}"
        );
    }

    #[test]
    fn json_escapes_strings_and_never_prints_nan() {
        let mut r = sample();
        r.test = "ECHO \"a\\b\"\n\u{1}".into();
        r.target = "unix:///tmp/é.sock".into();
        r.seconds = 0.0;
        let json = r.to_json();
        assert!(
            json.starts_with(
                "{\"test\":\"ECHO \\\"a\\\\b\\\"\\n\\u0001\",\"target\":\"unix:///tmp/é.sock\""
            ),
            "{json}"
        );
        assert!(json.contains("\"seconds\":0.000,\"rps\":0.0,"), "{json}");
        assert_eq!(json_number(f64::NAN, 1), "0.0");
        assert_eq!(json_number(f64::INFINITY, 3), "0.000");
    }

    #[test]
    fn text_summary() {
        let text = sample().to_text();
        assert!(text.starts_with("====== ping_mbulk ======\n"), "{text}");
        assert!(text.contains("tcp://127.0.0.1:7379, 50 clients, pipeline 16, 1 thread\n"));
        assert!(text.contains("100000 requests in 0.812 s: 123152.7 requests/s"));
        assert!(text.contains("0 errors, 0 wrong replies"));
        assert!(text.contains("p50 310  p90 420  p99 650  p99.9 900  max 1500"));
    }

    #[test]
    fn percentiles_from_merged_histograms() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=500 {
            a.record(v).unwrap();
        }
        for v in 501..=1000 {
            b.record(v).unwrap();
        }
        a.add(&b).unwrap();
        let l = Latency::of(&a);
        assert_eq!(l.p50, 500);
        assert_eq!(l.p90, 900);
        assert_eq!(l.p99, 990);
        assert_eq!(l.p999, 999);
        assert_eq!(l.max, 1000);
        assert_eq!(Latency::of(&new_histogram()), Latency::default());
        let mut huge = new_histogram();
        huge.saturating_record(u64::MAX);
        assert!(Latency::of(&huge).max >= MAX_LATENCY_US);
    }

    #[test]
    fn progress_line_format() {
        assert_eq!(
            progress_line("echo", 523000, 1043210.4),
            "echo: 523000 requests, 1043210 requests/s"
        );
    }

    #[test]
    fn printable_escapes_and_truncates() {
        assert_eq!(printable(b"+PONG\r\n", 64), "+PONG\\r\\n");
        assert_eq!(printable(b"\x01\"", 64), "\\x01\\\"");
        assert_eq!(printable(b"abcdef", 3), "abc... (6 bytes)");
    }
}
