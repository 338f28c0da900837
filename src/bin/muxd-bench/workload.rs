//! What a test sends and what it expects back: the request bytes, built once, and the
//! rule every reply is checked against.
//!
//! | test          | request                                  | expected reply        |
//! |---------------|------------------------------------------|-----------------------|
//! | `ping_inline` | `PING\r\n`                               | `+PONG`               |
//! | `ping_mbulk`  | `*1\r\n$4\r\nPING\r\n`                   | `+PONG`               |
//! | `echo`        | `*2\r\n$4\r\nECHO\r\n$<d>\r\n<d x's>\r\n`| the payload, as bulk  |
//! | `add`         | `*2\r\n$3\r\nADD\r\n$1\r\n1\r\n`         | `:1`, `:2`, ... per connection (muxd only) |
//! | `--command`   | the words as a multibulk array           | the first reply, byte for byte |

use std::fmt;

use anyhow::bail;
use muxd::resp::{Protocol, Reply, encode_request};

/// One of the built-in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    PingInline,
    PingMbulk,
    Echo,
    Add,
}

impl Test {
    /// Every built-in test, in the order they run by default.
    pub const ALL: [Test; 4] = [Test::PingInline, Test::PingMbulk, Test::Echo, Test::Add];

    /// The name used by `-t` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Test::PingInline => "ping_inline",
            Test::PingMbulk => "ping_mbulk",
            Test::Echo => "echo",
            Test::Add => "add",
        }
    }

    /// The test called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Test> {
        Test::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How every reply of a run is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these bytes (one complete reply).
    Exact(Vec<u8>),
    /// An integer reply one above the previous one on the same connection, starting at 1
    /// on a new connection (`ADD 1` on muxd).
    Counter,
}

/// A request to send over and over and the rule for its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The name in reports: the test's, or the command line of `--command`.
    pub name: String,
    /// One request, encoded.
    pub request: Vec<u8>,
    /// `None` for `--command` until its first reply has been learned.
    pub expect: Option<Expect>,
}

impl Workload {
    /// A built-in test; `data_size` is the `echo` payload length.
    pub fn builtin(test: Test, data_size: usize) -> Workload {
        let (request, expect) = match test {
            Test::PingInline => (b"PING\r\n".to_vec(), Expect::Exact(b"+PONG\r\n".to_vec())),
            Test::PingMbulk => (request(["PING"]), Expect::Exact(b"+PONG\r\n".to_vec())),
            Test::Echo => {
                let payload = vec![b'x'; data_size];
                let mut bulk = Vec::new();
                Reply::Bulk(&payload).encode(Protocol::Resp2, &mut bulk);
                (request([&b"ECHO"[..], &payload]), Expect::Exact(bulk))
            }
            Test::Add => (request(["ADD", "1"]), Expect::Counter),
        };
        Workload {
            name: test.name().to_owned(),
            request,
            expect: Some(expect),
        }
    }

    /// `--command`: `line` split on spaces; the expected reply is learned later.
    pub fn command(line: &str) -> anyhow::Result<Workload> {
        let mut words = line.split(' ').filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            bail!("--command needs at least a command name");
        }
        Ok(Workload {
            name: line.trim().to_owned(),
            request: request(words),
            expect: None,
        })
    }
}

/// One request: the words as a multibulk array.
fn request<I>(words: I) -> Vec<u8>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut out = Vec::new();
    encode_request(words, &mut out);
    out
}

/// Parses `-t`: a comma-separated list of test names.
pub fn parse_tests(list: &str) -> anyhow::Result<Vec<Test>> {
    let mut tests = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(test) = Test::from_name(name) else {
            let known: Vec<&str> = Test::ALL.iter().map(|t| t.name()).collect();
            bail!("unknown test {name:?} (known: {})", known.join(", "));
        };
        if !tests.contains(&test) {
            tests.push(test);
        }
    }
    if tests.is_empty() {
        bail!("-t needs at least one test name");
    }
    Ok(tests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_requests_and_replies() {
        let w = Workload::builtin(Test::PingInline, 3);
        assert_eq!(w.request, b"PING\r\n");
        assert_eq!(w.expect, Some(Expect::Exact(b"+PONG\r\n".to_vec())));
        let w = Workload::builtin(Test::PingMbulk, 3);
        assert_eq!(w.request, b"*1\r\n$4\r\nPING\r\n");
        let w = Workload::builtin(Test::Echo, 3);
        assert_eq!(w.request, b"*2\r\n$4\r\nECHO\r\n$3\r\nxxx\r\n");
        assert_eq!(w.expect, Some(Expect::Exact(b"$3\r\nxxx\r\n".to_vec())));
        let w = Workload::builtin(Test::Echo, 0);
        assert_eq!(w.request, b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
        let w = Workload::builtin(Test::Add, 3);
        assert_eq!(w.request, b"*2\r\n$3\r\nADD\r\n$1\r\n1\r\n");
        assert_eq!(w.expect, Some(Expect::Counter));
        assert_eq!(w.name, "add");
    }

    #[test]
    fn command_splits_on_spaces() {
        let w = Workload::command("  ECHO  hello ").unwrap();
        assert_eq!(w.request, b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n");
        assert_eq!(w.name, "ECHO  hello");
        assert_eq!(w.expect, None);
        assert!(Workload::command("   ").is_err());
    }

    #[test]
    fn test_lists() {
        assert_eq!(
            parse_tests("ping_mbulk, ECHO,ping_mbulk").unwrap(),
            vec![Test::PingMbulk, Test::Echo]
        );
        assert!(parse_tests("ping,echo").is_err());
        assert!(parse_tests(",").is_err());
    }
}
