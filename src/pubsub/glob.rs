//! Glob patterns as Redis matches them (`stringmatchlen` in Redis's `util.c`), with a cost
//! bound: what `PSUBSCRIBE` patterns, `PUBSUB CHANNELS` and `CONFIG GET` match with.
//!
//! The syntax and its corner cases are Redis's, byte for byte and binary-safe:
//!
//! - `*` any run of bytes, `?` any one byte, `\x` the byte `x` (a `\` at the very end is
//!   itself);
//! - `[abc]`, `[a-z]` (a reversed range `[z-a]` is the same range), `[^...]` negates,
//!   `\x` inside a class is `x`; a `]` right after `[` (or `[^`) closes an empty class; a
//!   class left open runs to the end of the pattern; a range's ends compare as C's signed
//!   `char`, so `[a-\xff]` holds the bytes `0x00..=0x61` and `0xff`;
//! - an empty text matches only the empty pattern (`*` does not match `""`);
//! - Redis gives up past 1,000 nested `*`: a pattern whose 1,001st run of stars is followed
//!   by anything never matches.
//!
//! Redis matches by recursion at each `*`, which costs exponential time in the number of
//! stars without its later safeguards. Here a pattern is compiled once into tokens split
//! into segments at its stars; a text matches when the first segment matches its start,
//! the last its end, and every segment in between, taken in order, is found at the
//! leftmost place after the one before (taking the leftmost place never loses a match).
//! Each segment is looked for with at most one comparison per token per text position,
//! so a match costs at most (pattern tokens + 1) × (text length + 1) steps, and the
//! hostile `*a*a*a*…*b` costs one step per pattern byte: [`Glob::matches_counting`]
//! returns the steps so tests can prove it.

/// Nesting depth past which Redis's matcher gives up (`nesting > 1000` in `util.c`).
const MAX_NESTING: usize = 1000;

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This byte exactly.
    Byte(u8),
    /// This ASCII letter in either case (case-insensitive matching only), lower case.
    Folded(u8),
    /// Any one byte (`?`).
    Any,
    /// A byte in the class at this index of [`Glob::classes`].
    Class(u32),
}

/// A set of bytes: what a `[...]` class matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn contains(&self, b: u8) -> bool {
        let word = self.0.get(usize::from(b >> 6)).copied().unwrap_or(0);
        word & (1 << (b & 63)) != 0
    }

    fn insert(&mut self, b: u8) {
        if let Some(word) = self.0.get_mut(usize::from(b >> 6)) {
            *word |= 1 << (b & 63);
        }
    }

    fn remove(&mut self, b: u8) {
        if let Some(word) = self.0.get_mut(usize::from(b >> 6)) {
            *word &= !(1 << (b & 63));
        }
    }

    /// Inserts the bytes `lo..=hi` (as unsigned values), a word at a time.
    fn insert_span(&mut self, lo: u8, hi: u8) {
        for (w, word) in self.0.iter_mut().enumerate() {
            let base = w * 64;
            let from = usize::from(lo).max(base);
            let to = usize::from(hi).min(base + 63);
            if from <= to {
                let n = to - from + 1;
                let bits = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                *word |= bits << (from - base);
            }
        }
    }

    /// Inserts the bytes whose value as a signed C `char` lies in `lo..=hi`.
    fn insert_signed(&mut self, lo: i32, hi: i32) {
        if lo > hi {
            return;
        }
        // -128..=-1 are the bytes 0x80..=0xff; 0..=127 are themselves.
        let unsigned = |v: i32| v.rem_euclid(256) as u8;
        if hi < 0 || lo >= 0 {
            self.insert_span(unsigned(lo), unsigned(hi));
        } else {
            self.insert_span(0, unsigned(hi));
            self.insert_span(unsigned(lo), 0xff);
        }
    }

    fn invert(&mut self) {
        for word in &mut self.0 {
            *word = !*word;
        }
    }
}

/// C's `tolower` on a `char` value in the "C" locale: only `A`..=`Z` change.
fn c_tolower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// A compiled glob pattern.
///
/// # Examples
/// ```
/// use muxd::pubsub::Glob;
///
/// let glob = Glob::new(b"news.[a-c]*");
/// assert!(glob.matches(b"news.art"));
/// assert!(!glob.matches(b"news.dance"));
/// assert!(!Glob::new(b"*").matches(b""), "as in Redis, * does not match the empty text");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    classes: Vec<ByteSet>,
    /// Token ranges between the runs of stars, in order (empty segments left out).
    segments: Vec<(usize, usize)>,
    /// Whether the pattern starts with a star (else the first segment is anchored at the
    /// text's start).
    leading_star: bool,
    /// Whether it ends with a star (else the last segment is anchored at the text's end).
    trailing_star: bool,
    /// Whether it has a star at all.
    has_star: bool,
    /// Redis's nesting limit makes it match nothing.
    never: bool,
}

impl Glob {
    /// Compiles `pattern`, case-sensitive (pub/sub patterns).
    pub fn new(pattern: &[u8]) -> Glob {
        Glob::compile(pattern, false)
    }

    /// Compiles `pattern`, ignoring ASCII case (Redis's `nocase`, used by `CONFIG GET`).
    pub fn nocase(pattern: &[u8]) -> Glob {
        Glob::compile(pattern, true)
    }

    fn compile(pattern: &[u8], nocase: bool) -> Glob {
        let mut glob = Glob {
            tokens: Vec::new(),
            classes: Vec::new(),
            segments: Vec::new(),
            leading_star: pattern.first() == Some(&b'*'),
            trailing_star: false,
            has_star: false,
            never: false,
        };
        let literal = |b: u8| {
            if nocase && b.is_ascii_alphabetic() {
                Token::Folded(b.to_ascii_lowercase())
            } else {
                Token::Byte(b)
            }
        };
        let mut star_runs = 0;
        let mut segment_start = 0;
        let mut i = 0;
        while let Some(&b) = pattern.get(i) {
            match b {
                b'*' => {
                    let mut end = i + 1;
                    while pattern.get(end) == Some(&b'*') {
                        end += 1;
                    }
                    star_runs += 1;
                    if star_runs == MAX_NESTING + 1 && end < pattern.len() {
                        glob.never = true;
                    }
                    glob.close_segment(segment_start);
                    segment_start = glob.tokens.len();
                    glob.has_star = true;
                    glob.trailing_star = end == pattern.len();
                    i = end;
                }
                b'?' => {
                    glob.tokens.push(Token::Any);
                    i += 1;
                }
                b'[' => {
                    let (set, next) = parse_class(pattern, i + 1, nocase);
                    let index = u32::try_from(glob.classes.len()).unwrap_or(u32::MAX);
                    glob.classes.push(set);
                    glob.tokens.push(Token::Class(index));
                    i = next;
                }
                b'\\' if i + 1 < pattern.len() => {
                    glob.tokens
                        .push(literal(pattern.get(i + 1).copied().unwrap_or(b)));
                    i += 2;
                }
                _ => {
                    glob.tokens.push(literal(b));
                    i += 1;
                }
            }
        }
        glob.close_segment(segment_start);
        glob
    }

    fn close_segment(&mut self, start: usize) {
        if self.tokens.len() > start {
            self.segments.push((start, self.tokens.len()));
        }
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &[u8]) -> bool {
        self.matches_counting(text).0
    }

    /// Whether `text` matches, and the steps (token comparisons and text positions tried)
    /// it took: at most (pattern tokens + 1) × (text length + 1), whatever the pattern.
    pub fn matches_counting(&self, text: &[u8]) -> (bool, u64) {
        let mut steps = 0;
        let matched = self.run(text, &mut steps);
        (matched, steps)
    }

    fn run(&self, text: &[u8], steps: &mut u64) -> bool {
        if self.never {
            return false;
        }
        if text.is_empty() {
            return self.tokens.is_empty() && !self.has_star;
        }
        if !self.has_star {
            return self.tokens.len() == text.len()
                && self.segment_at(0, self.tokens.len(), text, 0, steps);
        }
        // Every token takes one byte: a text shorter than that cannot match.
        if text.len() < self.tokens.len() {
            return false;
        }
        let mut middle = self.segments.as_slice();
        let mut lo = 0;
        let mut hi = text.len();
        if !self.leading_star {
            let Some((&(start, end), rest)) = middle.split_first() else {
                return true;
            };
            if !self.segment_at(start, end, text, 0, steps) {
                return false;
            }
            lo = end - start;
            middle = rest;
        }
        if !self.trailing_star {
            let Some((&(start, end), rest)) = middle.split_last() else {
                return true;
            };
            hi = text.len() - (end - start);
            if !self.segment_at(start, end, text, hi, steps) {
                return false;
            }
            middle = rest;
        }
        for &(start, end) in middle {
            let len = end - start;
            let mut at = lo;
            loop {
                *steps += 1;
                if at + len > hi {
                    return false;
                }
                if self.segment_at(start, end, text, at, steps) {
                    break;
                }
                at += 1;
            }
            lo = at + len;
        }
        true
    }

    /// Whether tokens `start..end` match the text at `at` (the caller checked it fits).
    fn segment_at(
        &self,
        start: usize,
        end: usize,
        text: &[u8],
        at: usize,
        steps: &mut u64,
    ) -> bool {
        let (Some(tokens), Some(bytes)) = (self.tokens.get(start..end), text.get(at..)) else {
            return false;
        };
        for (token, &b) in tokens.iter().zip(bytes) {
            *steps += 1;
            let ok = match *token {
                Token::Byte(x) => b == x,
                Token::Folded(x) => b.to_ascii_lowercase() == x,
                Token::Any => true,
                Token::Class(i) => self
                    .classes
                    .get(i as usize)
                    .is_some_and(|set| set.contains(b)),
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// Parses the class whose body starts at `i` (just past its `[`); returns the bytes it
/// matches and where the pattern goes on.
fn parse_class(pattern: &[u8], mut i: usize, nocase: bool) -> (ByteSet, usize) {
    let mut set = ByteSet::default();
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let fold = |set: &mut ByteSet, b: u8| {
        set.insert(b);
        if nocase && b.is_ascii_alphabetic() {
            set.insert(b.to_ascii_lowercase());
            set.insert(b.to_ascii_uppercase());
        }
    };
    let next = loop {
        let left = pattern.len().saturating_sub(i);
        match (pattern.get(i), pattern.get(i + 1), pattern.get(i + 2)) {
            // An escaped byte is compared exactly, even ignoring case.
            (Some(b'\\'), Some(&b), _) => {
                set.insert(b);
                i += 2;
            }
            (Some(b']'), _, _) => break i + 1,
            // Left open: the class takes the rest of the pattern.
            (None, _, _) => break pattern.len(),
            (Some(&a), Some(b'-'), Some(&z)) if left >= 3 => {
                insert_range(&mut set, a, z, nocase);
                i += 3;
            }
            (Some(&b), _, _) => {
                fold(&mut set, b);
                i += 1;
            }
        }
    };
    if negate {
        set.invert();
    }
    (set, next)
}

/// A range's bytes as Redis compares them: the ends as signed `char`s, swapped if
/// reversed, then (ignoring case) lower-cased, as is the byte compared.
fn insert_range(set: &mut ByteSet, a: u8, z: u8, nocase: bool) {
    let (mut lo, mut hi) = (i32::from(a as i8), i32::from(z as i8));
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    if !nocase {
        set.insert_signed(lo, hi);
        return;
    }
    let (lo, hi) = (c_tolower(lo), c_tolower(hi));
    // The bytes b with tolower(b) in lo..=hi: the range itself, except upper-case letters,
    // which stand for their lower-case selves.
    let mut range = ByteSet::default();
    range.insert_signed(lo, hi);
    for upper in b'A'..=b'Z' {
        range.remove(upper);
        if (lo..=hi).contains(&c_tolower(i32::from(upper))) {
            range.insert(upper);
        }
    }
    for (word, add) in set.0.iter_mut().zip(range.0) {
        *word |= add;
    }
}

/// Whether `text` matches `pattern` (compiled for this one match).
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    Glob::compile(pattern, nocase).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent reading of Redis's recursive matcher, for small inputs: the oracle
    /// the compiled matcher is checked against.
    fn oracle(p: &[u8], s: &[u8], nocase: bool, nesting: usize) -> bool {
        if nesting > MAX_NESTING {
            return false;
        }
        let lower = |b: u8| c_tolower(i32::from(b as i8));
        let (mut p, mut s) = (p, s);
        while !p.is_empty() && !s.is_empty() {
            match p[0] {
                b'*' => {
                    while p.len() > 1 && p[1] == b'*' {
                        p = &p[1..];
                    }
                    if p.len() == 1 {
                        return true;
                    }
                    return (0..s.len()).any(|k| oracle(&p[1..], &s[k..], nocase, nesting + 1));
                }
                b'?' => s = &s[1..],
                b'[' => {
                    let mut q = &p[1..];
                    let not = q.first() == Some(&b'^');
                    if not {
                        q = &q[1..];
                    }
                    let mut hit = false;
                    loop {
                        if q.len() >= 2 && q[0] == b'\\' {
                            q = &q[1..];
                            hit |= q[0] == s[0];
                        } else if q.is_empty() || q[0] == b']' {
                            // Closed, or left open to the end of the pattern.
                            break;
                        } else if q.len() >= 3 && q[1] == b'-' {
                            let (mut a, mut z) = (i32::from(q[0] as i8), i32::from(q[2] as i8));
                            if a > z {
                                std::mem::swap(&mut a, &mut z);
                            }
                            let mut c = i32::from(s[0] as i8);
                            if nocase {
                                (a, z, c) = (c_tolower(a), c_tolower(z), c_tolower(c));
                            }
                            hit |= a <= c && c <= z;
                            q = &q[2..];
                        } else if nocase {
                            hit |= lower(q[0]) == lower(s[0]);
                        } else {
                            hit |= q[0] == s[0];
                        }
                        q = &q[1..];
                    }
                    if hit == not {
                        return false;
                    }
                    s = &s[1..];
                    // `q` is at the closing `]` (consumed below) or empty (class left open).
                    p = if q.is_empty() { &p[p.len() - 1..] } else { q };
                }
                c => {
                    let c = if c == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        p[0]
                    } else {
                        c
                    };
                    let equal = if nocase {
                        lower(c) == lower(s[0])
                    } else {
                        c == s[0]
                    };
                    if !equal {
                        return false;
                    }
                    s = &s[1..];
                }
            }
            p = &p[1..];
            if s.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }

    #[test]
    fn redis_cases() {
        // (pattern, text, matches): answers checked against Redis 7.0.15 (see
        // tests/pubsub_redis.rs for the same table run through both servers).
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"*", b"", false),
            (b"", b"", true),
            (b"*", b"x", true),
            (b"**", b"x", true),
            (b"a*", b"a", true),
            (b"*a", b"a", true),
            (b"a*b*", b"ab", true),
            (b"a*?", b"a", false),
            (b"?", b"", false),
            (b"h?llo", b"hello", true),
            (b"h*llo", b"heeeello", true),
            (b"h[ae]llo", b"hallo", true),
            (b"h[^e]llo", b"hello", false),
            (b"h[a-b]llo", b"hbllo", true),
            (b"h[b-a]llo", b"hallo", true),
            (b"[]", b"]", false),
            (b"[]a]", b"a", false),
            (b"[]a]", b"]", false),
            (b"[^]", b"x", true),
            (b"[", b"x", false),
            (b"[^", b"x", true),
            (b"[a", b"a", true),
            (b"[a-]x", b"]", true),
            (b"[a-]x", b"x", true),
            (b"[a-]x", b"^", true),
            (b"[a-]x", b"b", false),
            (b"\\*", b"*", true),
            (b"\\*", b"a", false),
            (b"\\", b"\\", true),
            (b"a\\", b"a\\", true),
            (b"[\\]]", b"]", true),
            (b"[\\", b"\\", true),
            (b"HELLO", b"hello", false),
            (b"a\0b", b"a\0b", true),
            (b"[a-\xff]", b"\xff", true),
            (b"[a-\xff]", b"\x80", false),
            (b"[a-\xff]", b"\x10", true),
            (b"[\x80-\xff]", b"\x90", true),
            (b"[\x80-\xff]", b"a", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text),
                expected,
                "{:?} ~ {:?}",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(text)
            );
            assert_eq!(
                oracle(pattern, text, false, 0),
                expected,
                "oracle {pattern:?} ~ {text:?}"
            );
        }
    }

    #[test]
    fn nocase_as_config_get_matches() {
        assert!(glob_match(b"MAX*", b"maxclients", true));
        assert!(glob_match(b"[M]ax*", b"maxclients", true));
        assert!(glob_match(b"[A-Z]ax*", b"maxclients", true));
        assert!(
            !glob_match(b"[\\M]ax*", b"maxclients", true),
            "escaped: exact case"
        );
        assert!(
            !glob_match(b"[Z-a]", b"z", true),
            "lower-cased after the swap: empty"
        );
    }

    #[test]
    fn redis_nesting_limit() {
        let text = vec![b'a'; 2000];
        let ok = [b"*a".repeat(1000), b"b".to_vec()].concat();
        assert!(Glob::new(&ok).matches(&[text.as_slice(), b"b"].concat()));
        let trailing = [b"*a".repeat(1000), b"*".to_vec()].concat();
        assert!(
            Glob::new(&trailing).matches(&text),
            "the 1,001st star ends the pattern"
        );
        let over = b"*a".repeat(1001);
        assert!(!Glob::new(&over).matches(&text), "Redis gives up");
        let over = [b"*a".repeat(1001), b"*".to_vec()].concat();
        assert!(!Glob::new(&over).matches(&text), "Redis gives up");
    }

    /// The hostile pattern that makes a recursive matcher take exponential time costs one
    /// step per byte of pattern and text here.
    #[test]
    fn hostile_patterns_cost_linear_steps() {
        // Up to 999 stars: past 1,000 Redis gives up, which costs nothing.
        for n in [10usize, 100, 999] {
            let pattern = [b"*a".repeat(n), b"*b".to_vec()].concat();
            for len in [n, 10 * n, 100 * n] {
                let text = vec![b'a'; len];
                let (matched, steps) = Glob::new(&pattern).matches_counting(&text);
                assert!(!matched);
                let bound = (pattern.len() + text.len()) as u64;
                assert!(steps <= bound, "n={n} len={len}: {steps} steps > {bound}");
                // Text that matches, ending in b.
                let text = [vec![b'a'; len], b"b".to_vec()].concat();
                let (matched, steps) = Glob::new(&pattern).matches_counting(&text);
                assert!(matched);
                assert!(steps <= 2 * bound, "n={n} len={len}: {steps} steps");
            }
        }
        // The worst case for leftmost search: a long segment that almost matches at every
        // place. Still bounded by pattern × text.
        let pattern = [b"*".to_vec(), vec![b'a'; 100], b"b*".to_vec()].concat();
        let text = vec![b'a'; 10_000];
        let (matched, steps) = Glob::new(&pattern).matches_counting(&text);
        assert!(!matched);
        assert!(steps <= (pattern.len() as u64 + 1) * (text.len() as u64 + 1));
    }

    fn pattern_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                3 => Just(b'*'),
                2 => Just(b'?'),
                2 => Just(b'['),
                2 => Just(b']'),
                1 => Just(b'^'),
                2 => Just(b'-'),
                2 => Just(b'\\'),
                6 => prop::sample::select(b"abAB".to_vec()),
                1 => any::<u8>(),
            ],
            0..12,
        )
    }

    fn text_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                8 => prop::sample::select(b"abAB*?[]^-\\".to_vec()),
                1 => any::<u8>(),
            ],
            0..12,
        )
    }

    proptest! {
        #[test]
        fn agrees_with_redis_and_stays_in_bound(pattern in pattern_bytes(), text in text_bytes()) {
            for nocase in [false, true] {
                let glob = Glob::compile(&pattern, nocase);
                let (matched, steps) = glob.matches_counting(&text);
                prop_assert_eq!(matched, oracle(&pattern, &text, nocase, 0),
                    "{:?} ~ {:?} nocase={}", String::from_utf8_lossy(&pattern),
                    String::from_utf8_lossy(&text), nocase);
                let bound = (glob.tokens.len() as u64 + 1) * (text.len() as u64 + 1);
                prop_assert!(steps <= bound, "{} steps > {}", steps, bound);
            }
        }
    }
}
