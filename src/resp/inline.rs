//! Splitting an inline command (`SET "a key" 'v'`) into words, as Redis's `sdssplitargs`
//! does and as `redis-cli` quotes.
//!
//! Words are separated by blanks. Inside double quotes, `\n \r \t \b \a \\ \"` and `\xHH`
//! escapes are decoded; inside single quotes only `\'` is. A closing quote must be followed
//! by a blank or the end of the line, and every quote must be closed; otherwise the request
//! is refused with "unbalanced quotes". Unlike Redis, which stops reading at a NUL byte
//! and silently drops the rest of the line, a raw NUL byte is refused.

use super::Span;
use super::error::RespError;

/// Splits `line` (without its line end) into words, written one after another into `out`,
/// with their positions in `spans`. Both are cleared first.
pub(crate) fn split_inline(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<Span>,
) -> Result<(), RespError> {
    out.clear();
    spans.clear();
    if line.contains(&0) {
        return Err(RespError::NulInInline);
    }
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(());
        }
        let start = out.len();
        i = read_word(line, i, out)?;
        spans.push(Span {
            start,
            end: out.len(),
        });
    }
}

/// Reads one word starting at `i`; returns the index just past it.
fn read_word(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, RespError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Double,
        Single,
    }
    let mut quote = Quote::None;
    loop {
        let Some(&b) = line.get(i) else {
            return if quote == Quote::None {
                Ok(i)
            } else {
                Err(RespError::UnbalancedQuotes)
            };
        };
        match quote {
            Quote::Double => match b {
                b'\\' => match (line.get(i + 1), line.get(i + 2), line.get(i + 3)) {
                    (Some(b'x'), Some(&h), Some(&l)) if is_hex(h) && is_hex(l) => {
                        out.push(hex_value(h) * 16 + hex_value(l));
                        i += 4;
                    }
                    (Some(&escaped), _, _) => {
                        out.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 2;
                    }
                    (None, _, _) => return Err(RespError::UnbalancedQuotes),
                },
                b'"' => return closing_quote(line, i),
                other => {
                    out.push(other);
                    i += 1;
                }
            },
            Quote::Single => match b {
                b'\\' if line.get(i + 1) == Some(&b'\'') => {
                    out.push(b'\'');
                    i += 2;
                }
                b'\'' => return closing_quote(line, i),
                other => {
                    out.push(other);
                    i += 1;
                }
            },
            Quote::None => match b {
                b' ' | b'\n' | b'\r' | b'\t' => return Ok(i),
                b'"' => {
                    quote = Quote::Double;
                    i += 1;
                }
                b'\'' => {
                    quote = Quote::Single;
                    i += 1;
                }
                other => {
                    out.push(other);
                    i += 1;
                }
            },
        }
    }
}

/// A closing quote at `i` ends the word only if a blank or the line end follows it.
fn closing_quote(line: &[u8], i: usize) -> Result<usize, RespError> {
    match line.get(i + 1) {
        None => Ok(i + 1),
        Some(&next) if is_space(next) => Ok(i + 1),
        Some(_) => Err(RespError::UnbalancedQuotes),
    }
}

/// C's `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Vec<String>, RespError> {
        let mut out = Vec::new();
        let mut spans = Vec::new();
        split_inline(line.as_bytes(), &mut out, &mut spans)?;
        Ok(spans
            .iter()
            .map(|s| String::from_utf8_lossy(&out[s.start..s.end]).into_owned())
            .collect())
    }

    #[test]
    fn splits_like_sdssplitargs() {
        let cases: &[(&str, Result<&[&str], RespError>)] = &[
            ("", Ok(&[])),
            ("   \t ", Ok(&[])),
            ("PING", Ok(&["PING"])),
            ("  set  k   v  ", Ok(&["set", "k", "v"])),
            (r#"ECHO "hello world""#, Ok(&["ECHO", "hello world"])),
            (r#"ECHO "a\nb\x41\"""#, Ok(&["ECHO", "a\nbA\""])),
            (r#"ECHO 'it\'s'"#, Ok(&["ECHO", "it's"])),
            (r#"ECHO 'no \n escape'"#, Ok(&["ECHO", "no \\n escape"])),
            (r#"ECHO ab"cd""#, Ok(&["ECHO", "abcd"])),
            (r#"ECHO """#, Ok(&["ECHO", ""])),
            (r#"ECHO "unterminated"#, Err(RespError::UnbalancedQuotes)),
            (r#"ECHO 'unterminated"#, Err(RespError::UnbalancedQuotes)),
            (r#"ECHO "glued"word"#, Err(RespError::UnbalancedQuotes)),
            (r#"set """test-key""" v"#, Err(RespError::UnbalancedQuotes)),
            (
                "ECHO \"trailing backslash\\",
                Err(RespError::UnbalancedQuotes),
            ),
        ];
        for (line, expected) in cases {
            let expected =
                (*expected).map(|ws| ws.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>());
            assert_eq!(split(line), expected, "line {line:?}");
        }
    }

    #[test]
    fn refuses_nul_bytes() {
        let mut out = Vec::new();
        let mut spans = Vec::new();
        assert_eq!(
            split_inline(b"PING\0", &mut out, &mut spans),
            Err(RespError::NulInInline)
        );
    }
}
