//! The request encoder: a command's arguments as the multibulk array a server decodes.

use crate::resp::reply::Reply;
use crate::resp::session::Protocol;

/// Appends one request to `out`: `*<n>\r\n`, then each argument as `$<len>\r\n<arg>\r\n`.
///
/// This is the form every RESP server accepts and [`RespCodec`](crate::resp::RespCodec)
/// decodes without copying. Any iterator of byte strings will do; when it does not know
/// its length in advance, the header is put in front once the arguments are written.
///
/// # Examples
/// ```
/// use muxd::resp::encode_request;
///
/// let mut out = Vec::new();
/// encode_request(["ECHO", "hi"], &mut out);
/// assert_eq!(out, b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n");
///
/// encode_request("SET k v".split(' '), &mut out);
/// assert!(out.ends_with(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"));
/// ```
pub fn encode_request<I>(args: I, out: &mut Vec<u8>)
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let args = args.into_iter();
    let start = out.len();
    let announced = match args.size_hint() {
        (low, Some(high)) if low == high => Some(low),
        _ => None,
    };
    if let Some(count) = announced {
        Reply::ArrayHeader(count).encode(Protocol::Resp2, out);
    }
    let body = out.len();
    let mut count = 0;
    for arg in args {
        Reply::Bulk(arg.as_ref()).encode(Protocol::Resp2, out);
        count += 1;
    }
    if announced != Some(count) {
        let mut header = Vec::new();
        Reply::ArrayHeader(count).encode(Protocol::Resp2, &mut header);
        out.splice(start..body, header);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded<I>(args: I) -> Vec<u8>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut out = b"before".to_vec();
        encode_request(args, &mut out);
        out.split_off(6)
    }

    #[test]
    fn encodes_multibulk_requests() {
        assert_eq!(encoded([b"PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encoded([&b"ECHO"[..], b"a\r\nb", b""]),
            b"*3\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"
        );
        assert_eq!(encoded(Vec::<Vec<u8>>::new()), b"*0\r\n");
    }

    #[test]
    fn any_iterator_gets_the_right_count() {
        let expected = b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
        // Length unknown in advance.
        assert_eq!(encoded("a b c".split(' ')), expected);
        // Length announced wrongly.
        struct Liar(std::vec::IntoIter<&'static str>);
        impl Iterator for Liar {
            type Item = &'static str;
            fn next(&mut self) -> Option<&'static str> {
                self.0.next()
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (1, Some(1))
            }
        }
        assert_eq!(encoded(Liar(vec!["a", "b", "c"].into_iter())), expected);
        let many = encoded((0..12).map(|i| i.to_string()));
        assert!(many.starts_with(b"*12\r\n$1\r\n0\r\n"));
        assert!(many.ends_with(b"$2\r\n11\r\n"));
    }
}
