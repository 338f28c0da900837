//! [`ServerHandle`]: how other threads reach a running server. Everything goes through
//! one bounded queue, and the loop's `mio::Waker` wakes the loop to take it.
//!
//! A sender puts a message in the queue, then wakes the loop unless a wake-up is already
//! on its way (one `write` to the waker per burst, not per message). The loop takes at
//! most the queue's capacity of messages per turn, in the order they were queued (so the
//! order of each sending thread is kept), and runs each on the loop thread with a
//! [`ServerContext`]. A full queue makes the sender wait or fails at once, as the caller
//! chooses: memory never grows without bound. Once the loop has ended, every send fails.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::{self, ThreadId};

use mio::Waker;

use super::{ServerContext, Service};
use crate::client::ClientId;
use crate::codec::Codec;

/// Reaches a running [`Server`](crate::Server) from any thread: send a response to a
/// client, run code on the loop thread with the service and the client table, stop it.
/// Cheap to clone; `Send` and `Sync`.
///
/// Messages wait in a bounded queue ([`Config::queue_capacity`](crate::Config)) and run on
/// the loop thread in the order they were queued: what one thread sends arrives in the
/// order it sent it. The `try_` methods fail at once when the queue is full; the others
/// wait for room.
///
/// # Examples
/// A producer thread broadcasting to the clients a service keeps in a list:
/// ```
/// # use muxd::{Config, Context, Server, Service, ClientId};
/// # use muxd::resp::{Args, RespCodec, Reply};
/// #[derive(Default)]
/// struct News {
///     readers: Vec<ClientId>,
/// }
///
/// impl Service<RespCodec> for News {
///     type ClientState = ();
///     fn on_request(&mut self, _: Args<'_>, ctx: &mut Context<'_, RespCodec, Self>) {
///         self.readers.push(ctx.id());
///         ctx.reply(&Reply::OK);
///     }
/// }
///
/// let mut config = Config::default();
/// config.listen.push("tcp://127.0.0.1:0".parse()?);
/// let server = Server::bind(config, RespCodec::default(), News::default())?;
/// let handle = server.handle();
/// # server.handle().stop().unwrap(); // (here: stop at once)
/// std::thread::spawn(move || {
///     for n in 0.. {
///         let text = format!("news #{n}");
///         let sent = handle.run(move |news, ctx| {
///             for &id in &news.readers {
///                 ctx.send_to(id, &Reply::Bulk(text.as_bytes()));
///             }
///         });
///         if sent.is_err() {
///             break; // the server stopped
///         }
///         std::thread::sleep(std::time::Duration::from_secs(1));
///     }
/// });
/// server.run()?;
/// # Ok::<(), muxd::Error>(())
/// ```
pub struct ServerHandle<C: Codec, S: Service<C>> {
    shared: Arc<Shared<C, S>>,
}

/// Why a message could not be queued for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The queue is full (the loop is behind). Also what a waiting send made on the loop
    /// thread itself gets, since waiting there would wait forever.
    Full,
    /// The server has stopped: nothing will take the message.
    Stopped,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Full => "the server's queue is full",
            SendError::Stopped => "the server has stopped",
        })
    }
}

impl std::error::Error for SendError {}

/// Where a response sent from another thread is encoded, on the loop thread, in the
/// session its client speaks (see [`ServerHandle::send_to`]).
pub struct Responder<'a, C: Codec> {
    session: C::Session,
    out: &'a mut Vec<u8>,
}

impl<C: Codec> Responder<'_, C> {
    /// Sends `response` to the client, after whatever it was already owed.
    pub fn send(&mut self, response: &C::Response<'_>) {
        C::encode(self.session, response, self.out);
    }

    /// Sends the codec's error response carrying `message`.
    pub fn send_error(&mut self, message: &dyn fmt::Display) {
        C::encode_error(self.session, message, self.out);
    }

    /// The client's protocol session.
    pub fn session(&self) -> C::Session {
        self.session
    }
}

/// Code another thread sends to run on the loop thread.
pub(crate) type RunFn<C, S> = dyn FnOnce(&mut S, &mut ServerContext<'_, C, S>) + Send;
/// A response another thread sends, encoded on the loop thread.
pub(crate) type RespondFn<C> = dyn FnOnce(&mut Responder<'_, C>) + Send;

/// What other threads send the loop.
pub(crate) enum Message<C: Codec, S: Service<C>> {
    Run(Box<RunFn<C, S>>),
    SendTo(ClientId, Box<RespondFn<C>>),
}

struct Shared<C: Codec, S: Service<C>> {
    queue: SyncSender<Message<C, S>>,
    waker: Arc<Waker>,
    /// A wake-up is on its way: a sender need not write to the waker again.
    wake_pending: AtomicBool,
    stop: AtomicBool,
    /// The thread running the loop, once it runs (a waiting send there would deadlock).
    loop_thread: OnceLock<ThreadId>,
}

/// The loop's side of the queue.
pub(crate) struct Inbox<C: Codec, S: Service<C>> {
    queue: Receiver<Message<C, S>>,
    shared: Arc<Shared<C, S>>,
    /// Most messages taken per turn (the queue's capacity).
    budget: usize,
}

/// A handle and the loop's side of its queue, which holds at most `capacity` messages.
pub(crate) fn channel<C: Codec, S: Service<C>>(
    waker: Arc<Waker>,
    capacity: usize,
) -> (ServerHandle<C, S>, Inbox<C, S>) {
    let capacity = capacity.max(1);
    let (sender, receiver) = mpsc::sync_channel(capacity);
    let shared = Arc::new(Shared {
        queue: sender,
        waker,
        wake_pending: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        loop_thread: OnceLock::new(),
    });
    let inbox = Inbox {
        queue: receiver,
        shared: Arc::clone(&shared),
        budget: capacity,
    };
    (ServerHandle { shared }, inbox)
}

impl<C: Codec, S: Service<C>> ServerHandle<C, S> {
    /// Asks the server to stop gracefully, as on `SIGTERM`. Returns at once; messages
    /// still queued when the loop ends are dropped.
    ///
    /// # Errors
    /// Fails only if the poller could not be woken.
    pub fn stop(&self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.waker.wake()
    }

    /// Runs `f` on the loop thread with the service and a [`ServerContext`] (the client
    /// table, sending to clients, timers, stopping). Waits while the queue is full.
    ///
    /// # Errors
    /// [`SendError::Stopped`] once the server has stopped; [`SendError::Full`] if called
    /// on the loop thread itself with the queue full (waiting there would never end:
    /// code on the loop thread has a context, and needs no handle).
    pub fn run(
        &self,
        f: impl FnOnce(&mut S, &mut ServerContext<'_, C, S>) + Send + 'static,
    ) -> Result<(), SendError> {
        self.send(Message::Run(Box::new(f)), true)
    }

    /// [`run`](ServerHandle::run), or [`SendError::Full`] at once if the queue is full.
    ///
    /// # Errors
    /// [`SendError::Full`] if the queue is full, [`SendError::Stopped`] once the server has
    /// stopped.
    pub fn try_run(
        &self,
        f: impl FnOnce(&mut S, &mut ServerContext<'_, C, S>) + Send + 'static,
    ) -> Result<(), SendError> {
        self.send(Message::Run(Box::new(f)), false)
    }

    /// Sends a response to the client with `id`: `respond` runs on the loop thread and
    /// encodes it in the client's session, after whatever the client was already owed.
    /// Waits while the queue is full. If the client is gone, closing, or not reading
    /// (more than the output high watermark unread) by then, the response is dropped,
    /// as [`ServerContext::send_to`] would.
    ///
    /// ```
    /// # use muxd::{ClientId, ServerHandle, commands::CommandService, resp::{RespCodec, Reply}};
    /// # fn f(handle: ServerHandle<RespCodec, CommandService>, id: ClientId) {
    /// let result = String::from("computed elsewhere");
    /// let _ = handle.send_to(id, move |r| r.send(&Reply::Bulk(result.as_bytes())));
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`run`](ServerHandle::run).
    pub fn send_to(
        &self,
        id: ClientId,
        respond: impl FnOnce(&mut Responder<'_, C>) + Send + 'static,
    ) -> Result<(), SendError> {
        self.send(Message::SendTo(id, Box::new(respond)), true)
    }

    /// [`send_to`](ServerHandle::send_to), or [`SendError::Full`] at once if the queue
    /// is full.
    ///
    /// # Errors
    /// As [`try_run`](ServerHandle::try_run).
    pub fn try_send_to(
        &self,
        id: ClientId,
        respond: impl FnOnce(&mut Responder<'_, C>) + Send + 'static,
    ) -> Result<(), SendError> {
        self.send(Message::SendTo(id, Box::new(respond)), false)
    }

    fn send(&self, message: Message<C, S>, wait: bool) -> Result<(), SendError> {
        let on_loop = self.shared.loop_thread.get() == Some(&thread::current().id());
        let queued = if wait && !on_loop {
            self.shared
                .queue
                .send(message)
                .map_err(|_| SendError::Stopped)
        } else {
            self.shared.queue.try_send(message).map_err(|e| match e {
                TrySendError::Full(_) => SendError::Full,
                TrySendError::Disconnected(_) => SendError::Stopped,
            })
        };
        queued?;
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) {
            // The loop may have ended meanwhile: the message is simply never taken.
            let _ = self.shared.waker.wake();
        }
        Ok(())
    }
}

impl<C: Codec, S: Service<C>> Clone for ServerHandle<C, S> {
    fn clone(&self) -> Self {
        ServerHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: Codec, S: Service<C>> fmt::Debug for ServerHandle<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl<C: Codec, S: Service<C>> Inbox<C, S> {
    /// Notes the thread the loop runs on (before it runs).
    pub(crate) fn bind_to_current_thread(&self) {
        let _ = self.shared.loop_thread.set(thread::current().id());
    }

    /// Whether a handle asked the server to stop.
    #[inline]
    pub(crate) fn stop_requested(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Takes the messages waiting, at most one queue's worth, oldest first, and passes
    /// each to `each`. Returns whether the budget ran out (more may be waiting).
    pub(crate) fn drain(&self, mut each: impl FnMut(Message<C, S>)) -> bool {
        // Taken before reading the queue: a message queued after this either is read
        // below or comes with a new wake-up.
        self.shared.wake_pending.swap(false, Ordering::AcqRel);
        for _ in 0..self.budget {
            match self.queue.try_recv() {
                Ok(message) => each(message),
                Err(_) => return false,
            }
        }
        true
    }
}

impl<C: Codec> Responder<'_, C> {
    /// A responder encoding in `session` into `out`.
    pub(crate) fn new(session: C::Session, out: &mut Vec<u8>) -> Responder<'_, C> {
        Responder { session, out }
    }
}
