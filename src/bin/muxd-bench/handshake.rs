//! What every connection sends before the load, and how the replies are judged: `HELLO 3`
//! with `-3` (so the load runs over RESP3), `AUTH` with `-a` (and `--user`), both in one
//! `HELLO 3 AUTH user password` when both are asked for, as client libraries do; and in
//! idle mode a `PING`, which proves the server really took the connection.

use muxd::resp::{Framer, encode_request};

use crate::report::printable;

/// The requests a connection opens with, and what each reply must be.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Greeting {
    /// The requests, encoded, back to back.
    pub bytes: Vec<u8>,
    steps: Vec<Step>,
}

/// One request of the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `HELLO 3 [AUTH ...]`: a RESP3 map.
    Hello,
    /// `AUTH [user] password`: `+OK`.
    Auth,
    /// `PING`: `+PONG`.
    Ping,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Hello => "HELLO 3",
            Step::Auth => "AUTH",
            Step::Ping => "PING",
        }
    }
}

impl Greeting {
    /// The greeting for `-3` (`resp3`), `-a` (`password`) and `--user`, plus a `PING` when
    /// `ping`.
    pub fn new(resp3: bool, user: Option<&str>, password: Option<&str>, ping: bool) -> Greeting {
        let mut greeting = Greeting::default();
        match (resp3, password) {
            (true, Some(password)) => {
                let user = user.unwrap_or("default");
                greeting.push(Step::Hello, &["HELLO", "3", "AUTH", user, password]);
            }
            (true, None) => greeting.push(Step::Hello, &["HELLO", "3"]),
            (false, Some(password)) => match user {
                Some(user) => greeting.push(Step::Auth, &["AUTH", user, password]),
                None => greeting.push(Step::Auth, &["AUTH", password]),
            },
            (false, None) => {}
        }
        if ping {
            greeting.push(Step::Ping, &["PING"]);
        }
        greeting
    }

    fn push(&mut self, step: Step, words: &[&str]) {
        encode_request(words, &mut self.bytes);
        self.steps.push(step);
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Checks the complete replies at the start of `buf`, `answered` of the greeting's
    /// requests being answered already; returns the bytes they used. Once every request
    /// is answered, any further byte is an error.
    ///
    /// # Errors
    /// A reply that is not what its request must get, or not RESP, with what it was.
    pub fn check(&self, buf: &[u8], answered: &mut usize) -> Result<usize, String> {
        let mut used = 0;
        while let Some(rest) = buf.get(used..).filter(|r| !r.is_empty()) {
            let Some(&step) = self.steps.get(*answered) else {
                return Err(format!(
                    "the server sent more than the replies to its greeting: \"{}\"",
                    printable(rest, 200)
                ));
            };
            let len = match Framer::new().advance(rest) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    return Err(format!(
                        "malformed reply to {} ({e}): \"{}\"",
                        step.name(),
                        printable(rest, 200)
                    ));
                }
            };
            let reply = rest.get(..len).unwrap_or_default();
            let good = match step {
                Step::Hello => reply.first() == Some(&b'%'),
                Step::Auth => reply == b"+OK\r\n",
                Step::Ping => reply == b"+PONG\r\n",
            };
            if !good {
                let wanted = match step {
                    Step::Hello => "a RESP3 map",
                    Step::Auth => "+OK",
                    Step::Ping => "+PONG",
                };
                return Err(format!(
                    "{} answered with \"{}\" instead of {wanted}",
                    step.name(),
                    printable(reply, 200)
                ));
            }
            *answered += 1;
            used += len;
        }
        Ok(used)
    }

    /// Whether `answered` replies are all of them.
    pub fn done(&self, answered: usize) -> bool {
        answered >= self.steps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_each_combination() {
        let g = Greeting::new(true, None, Some("pw"), false);
        assert_eq!(
            g.bytes,
            b"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n"
        );
        let g = Greeting::new(false, Some("bob"), Some("pw"), true);
        assert_eq!(
            g.bytes,
            b"*3\r\n$4\r\nAUTH\r\n$3\r\nbob\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n"
        );
        assert_eq!(
            Greeting::new(false, None, Some("pw"), false).bytes,
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        );
        assert!(Greeting::new(false, None, None, false).is_empty());
    }

    #[test]
    fn replies_are_checked_in_order_and_split_anywhere() {
        let g = Greeting::new(true, None, None, true);
        let stream = b"%1\r\n$5\r\nproto\r\n:3\r\n+PONG\r\n";
        for cut in 0..=stream.len() {
            let mut answered = 0;
            let used = g.check(&stream[..cut], &mut answered).unwrap();
            let rest = [&stream[used..cut], &stream[cut..]].concat();
            let used2 = g.check(&rest, &mut answered).unwrap();
            assert_eq!(used2, rest.len(), "cut {cut}");
            assert!(g.done(answered));
        }
        let mut answered = 0;
        let e = g
            .check(b"-NOAUTH HELLO must be called\r\n", &mut answered)
            .unwrap_err();
        assert!(e.contains("HELLO 3 answered with \"-NOAUTH"), "{e}");
        let g = Greeting::new(false, None, Some("x"), false);
        let e = g.check(b"-WRONGPASS invalid\r\n", &mut 0).unwrap_err();
        assert!(e.contains("AUTH answered with \"-WRONGPASS invalid"), "{e}");
        let e = g.check(b"+OK\r\n+OK\r\n", &mut 0).unwrap_err();
        assert!(e.contains("more than the replies"), "{e}");
    }
}
