//! A handle's bytes between turns, and the loop's shared buffers lent to it for one turn.
//!
//! Most clients hold no buffer at all between two wake-ups: their requests arrive whole
//! and their responses leave at once. So the loop keeps one shared input buffer and one
//! shared output buffer ([`Scratch`]) and lends them to the client it is serving. A
//! handle gets buffers of its own ([`Buffers`]) only when a request is split across reads
//! or the socket does not take all of its responses; from then on, its own buffers are
//! lent instead, until they are empty again. Lending and giving back live here, so the
//! loop never needs to know whose buffer it holds.
//!
//! A client's own output may also hold shared frames (published messages, see
//! [`frames`](super::frames)) placed between its response bytes. They stay in its
//! buffers while a turn borrows the response bytes: a turn's new responses go after
//! every frame queued so far.

use std::mem;

use super::frames::FrameQueue;
use crate::buffer::InputBuf;

/// Size of the shared read buffer, and of one read into it.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// Free space guaranteed before reading into a client's own input buffer.
const MIN_CLIENT_READ: usize = 16 * 1024;
/// A client's buffers larger than this are given back once empty.
const KEEP_BUFFER: usize = 64 * 1024;
/// Written output bytes are dropped from the front of a client's own output once there
/// are this many (while it still owes more: a subscriber that never catches up fully).
const COMPACT_AT: usize = 64 * 1024;

/// The bytes a client handle keeps between two wake-ups: allocated the first time a
/// request is split across reads or a response cannot be written at once.
#[derive(Debug, Default)]
pub(crate) struct Buffers<D> {
    /// Received bytes not yet decoded, starting at the first byte of a request.
    input: InputBuf,
    /// The codec's progress through `input`'s first request.
    decode: D,
    /// Encoded responses, of which `output[written..]` is not yet written.
    output: Vec<u8>,
    written: usize,
    /// Shared frames owed, placed between `output`'s bytes.
    pub(crate) frames: FrameQueue,
    /// Memory last counted in the client table's sum (see `ClientTable::account`).
    pub(crate) accounted: usize,
}

impl<D> Buffers<D> {
    /// Unparsed input bytes held.
    pub(crate) fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Response bytes not yet written, shared frames included.
    #[inline]
    pub(crate) fn owed(&self) -> usize {
        self.output.len() - self.written + self.frames.owed()
    }

    /// Bytes of memory its own buffers hold (with the shared batches, what
    /// `--maxmemory-clients` counts).
    pub(crate) fn memory(&self) -> usize {
        self.input.capacity() + self.output.capacity() + self.frames.memory()
    }

    /// Bytes of shared batches it is owed: what it keeps alive of them.
    pub(crate) fn pinned(&self) -> usize {
        self.frames.owed()
    }

    /// Where a frame queued now goes: after every byte it is owed so far.
    pub(crate) fn frame_place(&self) -> usize {
        self.output.len()
    }

    /// Drops a partial request (the peer closed inside it); returns how many bytes.
    pub(crate) fn drop_input(&mut self) -> usize {
        let dropped = self.input.len();
        self.input.clear();
        dropped
    }

    /// Where responses for this client go while it is not being served (another client
    /// sent it one): after everything it is already owed.
    pub(crate) fn output_mut(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }
}

/// The loop's shared buffers: where clients without bytes of their own are read into and
/// answered from.
#[derive(Debug)]
pub(crate) struct Scratch {
    /// Where clients without a partial request are read into (and lingering clients'
    /// input is dropped).
    pub(crate) read: InputBuf,
    /// Where responses go when the client has nothing waiting to be written.
    write: Vec<u8>,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            read: InputBuf::with_capacity(READ_CHUNK),
            write: Vec::with_capacity(READ_CHUNK),
        }
    }
}

/// Input lent to a client for one turn: its own partial request, or the shared buffer.
pub(crate) struct Input<D> {
    pub(crate) buf: InputBuf,
    /// The codec's progress through `buf`'s first request.
    pub(crate) decode: D,
    own: bool,
    /// Room offered to the last read.
    room: usize,
}

impl<D> Input<D> {
    /// Room for the next read: the shared buffer reads a whole chunk, an own buffer at
    /// least enough to make progress without growing much.
    #[inline]
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let spare = self.buf.spare(if self.own {
            MIN_CLIENT_READ
        } else {
            READ_CHUNK
        });
        self.room = spare.len();
        spare
    }

    /// Whether a read of `n` bytes left part of the room it was offered unused.
    #[inline]
    pub(crate) fn was_short_read(&self, n: usize) -> bool {
        n < self.room
    }
}

/// Output lent to a client for one turn: its own unwritten responses (new ones go after
/// them), or the shared buffer.
pub(crate) struct Output {
    pub(crate) buf: Vec<u8>,
    /// How much of `buf` is already written.
    pub(crate) written: usize,
    own: bool,
}

impl Output {
    /// Bytes not yet written.
    pub(crate) fn owed(&self) -> usize {
        self.buf.len() - self.written
    }

    /// The bytes not yet written.
    #[inline]
    pub(crate) fn unwritten(&self) -> &[u8] {
        self.buf.get(self.written..).unwrap_or_default()
    }
}

/// Lends `own`'s input if it holds the start of a request, else the shared buffer.
#[inline]
pub(crate) fn lend_input<D: Default>(
    own: Option<&mut Buffers<D>>,
    scratch: &mut Scratch,
) -> Input<D> {
    match own {
        Some(b) if !b.input.is_empty() => Input {
            buf: mem::take(&mut b.input),
            decode: mem::take(&mut b.decode),
            own: true,
            room: 0,
        },
        _ => Input {
            buf: mem::take(&mut scratch.read),
            decode: D::default(),
            own: false,
            room: 0,
        },
    }
}

/// Gives input back after a turn: the start of a request still arriving stays with the
/// client (copied into buffers of its own if it had none), the shared buffer goes back to
/// the loop, empty.
#[inline]
pub(crate) fn return_input<D: Default>(
    own: &mut Option<Box<Buffers<D>>>,
    mut input: Input<D>,
    scratch: &mut Scratch,
) {
    if input.own {
        if let Some(b) = own.as_deref_mut() {
            input.buf.shrink_if_idle(KEEP_BUFFER);
            input.buf.shrink_to_data(KEEP_BUFFER);
            b.input = input.buf;
            b.decode = input.decode;
        }
        return;
    }
    if !input.buf.is_empty() {
        let b = own.get_or_insert_with(Default::default);
        b.input.extend_from_slice(input.buf.data());
        b.decode = input.decode;
        input.buf.clear();
    }
    scratch.read = input.buf;
}

/// Lends `own`'s output if responses are waiting in it (new ones must follow them), else
/// the shared buffer.
#[inline]
pub(crate) fn lend_output<D>(own: Option<&mut Buffers<D>>, scratch: &mut Scratch) -> Output {
    match own {
        Some(b) if b.owed() > 0 => Output {
            buf: mem::take(&mut b.output),
            written: mem::take(&mut b.written),
            own: true,
        },
        _ => Output {
            buf: mem::take(&mut scratch.write),
            written: 0,
            own: false,
        },
    }
}

/// Gives output back after writing what the socket took: what is still owed stays with
/// the client (copied into buffers of its own if it had none), the shared buffer goes
/// back to the loop, empty (and shrunk after a huge reply).
#[inline(always)]
pub(crate) fn return_output<D: Default>(
    own: &mut Option<Box<Buffers<D>>>,
    mut output: Output,
    scratch: &mut Scratch,
) {
    if output.own {
        let Some(b) = own.as_deref_mut() else {
            return;
        };
        if output.owed() == 0 && b.frames.is_empty() {
            output.buf.clear();
            output.written = 0;
            if output.buf.capacity() > KEEP_BUFFER {
                output.buf = Vec::new();
            }
            b.frames.shrink_if_idle(KEEP_BUFFER / 64);
        } else if output.written >= COMPACT_AT {
            compact(&mut output, b);
        }
        b.output = output.buf;
        b.written = output.written;
        return;
    }
    if output.owed() > 0 || own.as_ref().is_some_and(|b| !b.frames.is_empty()) {
        keep_unwritten(own, &output);
    }
    recycle(&mut scratch.write, output.buf);
}

/// Drops the written front of a client's own output (it still owes the rest), and gives
/// back memory it no longer needs.
#[cold]
fn compact<D>(output: &mut Output, b: &mut Buffers<D>) {
    output.buf.drain(..output.written);
    b.frames.shift(output.written);
    output.written = 0;
    let len = output.buf.len();
    if output.buf.capacity() / 4 > len {
        output.buf.shrink_to((len + len / 4).max(KEEP_BUFFER));
    }
}

/// Keeps what the shared output buffer still owes in the client's own buffers.
#[cold]
fn keep_unwritten<D: Default>(own: &mut Option<Box<Buffers<D>>>, output: &Output) {
    let b = own.get_or_insert_with(Default::default);
    if b.output.is_empty() {
        // The frames queued while the shared buffer was lent (sent to itself) sit at
        // places in the shared buffer: place them in its own.
        b.frames.shift(output.written);
    }
    b.output.extend_from_slice(output.unwritten());
    b.written = 0;
}

/// Gives input lent to a client that is gone back to the loop.
pub(crate) fn discard_input<D>(mut input: Input<D>, scratch: &mut Scratch) {
    if !input.own {
        input.buf.clear();
        scratch.read = input.buf;
    }
}

/// Gives output lent to a client that is gone back to the loop.
pub(crate) fn discard_output(output: Output, scratch: &mut Scratch) {
    if !output.own {
        recycle(&mut scratch.write, output.buf);
    }
}

/// Puts the shared output buffer back, emptied (and shrunk after a huge reply).
#[inline]
fn recycle(shared: &mut Vec<u8>, mut out: Vec<u8>) {
    out.clear();
    if out.capacity() > 4 * READ_CHUNK {
        out = Vec::with_capacity(READ_CHUNK);
    }
    *shared = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_request_moves_into_own_buffers_and_is_lent_back() {
        let mut scratch = Scratch::new();
        let mut own: Option<Box<Buffers<u8>>> = None;
        let mut input = lend_input(own.as_deref_mut(), &mut scratch);
        input.buf.extend_from_slice(b"*1\r\n$4\r\nPI");
        input.decode = 7;
        return_input(&mut own, input, &mut scratch);
        assert!(
            scratch.read.is_empty(),
            "the shared buffer comes back empty"
        );
        assert_eq!(own.as_ref().map(|b| b.input_len()), Some(10));

        let input = lend_input(own.as_deref_mut(), &mut scratch);
        assert!(input.own);
        assert_eq!(
            (input.buf.data(), input.decode),
            (&b"*1\r\n$4\r\nPI"[..], 7)
        );
        return_input(&mut own, input, &mut scratch);
    }

    #[test]
    fn unwritten_output_stays_with_the_client_until_written() {
        let mut scratch = Scratch::new();
        let mut own: Option<Box<Buffers<()>>> = None;
        let mut out = lend_output(own.as_deref_mut(), &mut scratch);
        assert!(!out.own);
        out.buf.extend_from_slice(b"+PONG\r\n+PONG\r\n");
        out.written = 7;
        return_output(&mut own, out, &mut scratch);
        assert!(scratch.write.is_empty());
        assert_eq!(own.as_ref().map(|b| b.owed()), Some(7));

        let mut out = lend_output(own.as_deref_mut(), &mut scratch);
        assert!(out.own);
        assert_eq!(out.unwritten(), b"+PONG\r\n");
        out.written = out.buf.len();
        return_output(&mut own, out, &mut scratch);
        assert_eq!(own.as_ref().map(|b| b.owed()), Some(0));
        let out = lend_output(own.as_deref_mut(), &mut scratch);
        assert!(!out.own, "nothing owed: the shared buffer is lent again");
        discard_output(out, &mut scratch);
    }

    #[test]
    fn frames_keep_their_places_when_output_moves_or_compacts() {
        use crate::client::frames::Arena;
        let mut arena = Arena::default();
        let batch = arena.open();
        let mut message = |text: &[u8]| arena.append(batch, |out| out.extend_from_slice(text)).0;
        let (first, second) = (message(b"msg"), message(b"second"));
        let mut scratch = Scratch::new();
        let mut own: Option<Box<Buffers<()>>> = None;
        // A turn on the shared buffer: a reply, then a message it sent itself.
        let mut out = lend_output(own.as_deref_mut(), &mut scratch);
        out.buf.extend_from_slice(b":1\r\n:2\r\n");
        let b = own.get_or_insert_with(Default::default);
        b.frames.push(out.buf.len(), first, &mut arena);
        out.written = 2; // the socket took two bytes
        return_output(&mut own, out, &mut scratch);
        let b = own.as_deref_mut().unwrap();
        assert_eq!(b.output, b"\r\n:2\r\n");
        assert_eq!(
            b.frames.places(),
            vec![6],
            "after the reply's unwritten bytes"
        );
        assert_eq!(b.owed(), 6 + 3);

        // Own output compacts once much of it is written: places follow.
        let mut own: Option<Box<Buffers<()>>> = Some(Box::default());
        let b = own.as_deref_mut().unwrap();
        b.output.extend_from_slice(&vec![b'x'; COMPACT_AT + 4]);
        b.frames.push(COMPACT_AT + 4, second, &mut arena);
        let mut out = lend_output(own.as_deref_mut(), &mut scratch);
        assert!(out.own);
        out.written = COMPACT_AT + 2;
        return_output(&mut own, out, &mut scratch);
        let b = own.as_deref_mut().unwrap();
        assert_eq!((b.written, b.output.len()), (0, 2));
        assert_eq!(b.frames.places(), vec![2]);
    }
}
