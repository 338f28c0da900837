//! # muxd: many clients, one thread, one poll
//!
//! ```text
//!                 master sockets (tcp://…, tls://…, unix://…)
//!                        │ connection requests
//!                        ▼
//!  ┌───────────────── mio::Poll, one thread (event_loop/) ─────────────────┐
//!  │ readable master ─► accept.rs: accept ─► client table (slab, key=token)│
//!  │                                                                       │
//!  │ readable client ─► serve.rs: a turn for its handle                    │
//!  │     read ─► Codec::decode ─► Service::on_request(request, ctx)        │
//!  │                                  │ ctx.reply ─► Codec::encode         │
//!  │ writable client ─► output.rs: write what is owed; WRITABLE interest   │
//!  │                    only while something is; watermarks pause/resume   │
//!  │ ctx.publish ─► pubsub/: encoded once, a shared range queued for each  │
//!  │                each written once (writev) at the end of the turn      │
//!  │ end of stream, QUIT, errors, idle, SIGTERM                            │
//!  │                 ─► close.rs: write what is owed, linger, close        │
//!  │ readable source ─► callbacks.rs: the service's own (UDP, pipe, …)     │
//!  │ waker ───────────► callbacks.rs: what other threads queued through a  │
//!  │                    ServerHandle (bounded), run in order               │
//!  │ end of each turn ─► mod.rs: effects services asked for, deferred      │
//!  │                     reads and accepts; timers.rs: the loop's          │
//!  │                     deadlines that came (idle, linger, …), then the   │
//!  │                     service's timers; poll sleeps until the next one  │
//!  └───────────────────────────────────────────────────────────────────────┘
//!  The handle (client/) decides what an event means for it: open, paused,
//!  closing, lingering; the loop carries out what it decides.
//! ```
//!
//! A client's connection request arrives on a **master socket**; `accept` turns it into a
//! **client handle** kept in the **client-handle table**. Its **service requests** are
//! decoded by a [`Codec`], handled by a [`Service`], and answered with **responses**, in
//! order, pipelined or not. No thread per client, no async runtime.
//!
//! - [`server`]: bind and run ([`Server`]);
//! - [`config`]: what a server is told ([`Config`]) and knows once bound ([`ServerInfo`]);
//! - [`fd_limit`]: the open-file limit, which bounds the number of clients;
//! - [`lifecycle`]: hooks a process supervisor hangs on (shutdown begins, heartbeat);
//! - `event_loop`: the loop itself (private), one room per phase: `accept`, `serve`,
//!   `output`, `close`, `proxy` (a connection's PROXY header before it is served),
//!   `timers` for its deadlines (idle, linger, accept retry, stop, PROXY header,
//!   TLS handshake, heartbeat), and `callbacks` for the service's code outside requests (hooks, its
//!   timers, its sources, what other threads send);
//! - `tokens` (private): the poll token space (clients, the service's sources, master
//!   sockets, signal pipe, waker);
//! - `deadlines` (private): the deadline heap every timer lives in;
//! - [`listener`]: master sockets, TCP (plain or TLS) and Unix, the life of socket files, sockets
//!   inherited from systemd (`listener::activation`) and the PROXY protocol
//!   (`listener::proxy`);
//! - [`client_table`]: the table of client handles, and the read-only view services get;
//! - [`client`]: one client handle: its state machine, the buffers lent to it for a turn,
//!   its [`ClientId`], [`ClientInfo`] and [`CloseReason`]s;
//! - [`buffer`]: the input buffer a connection's bytes are read into and parsed from;
//! - [`codec`]: the [`Codec`] trait: bytes to requests, responses to bytes;
//! - [`resp`]: RESP2 and RESP3, the Redis protocol, as a codec, and its client side
//!   ([`resp::client`]: request encoder, reply framer, reply values);
//! - [`service`]: the [`Service`] trait, the [`Context`] it works through for one client
//!   and the [`ServerContext`] for the whole server (timers, other clients, stopping),
//!   the [`ServerHandle`] other threads reach it with, and its own event sources;
//! - [`pubsub`]: topics clients subscribe to and messages published to them, encoded
//!   once and shared by every receiver; Redis's glob patterns ([`pubsub::Glob`]);
//! - [`commands`]: the daemon's command set (`PING`, `ADD`, `CLIENT LIST`, ...);
//! - [`stats`]: server-wide counters;
//! - [`tls`]: TLS configurations from PEM files (server, and a client's pieces); the
//!   TLS stream itself is [`TlsStream`], one kind of [`Stream`].
//!
//! # Embedding
//! A [`Codec`] turns bytes into requests and responses into bytes ([`resp::RespCodec`]
//! is one; a line codec is a page); a [`Service`] handles each request with a
//! [`Context`]: reply, the client's own state, other clients, timers. Then
//! [`Server::bind`] the master sockets and [`Server::run`] the loop on a thread of yours;
//! a [`ServerHandle`] reaches it from any other thread. `examples/` has a line echo
//! server, a chat room, a RESP key-value store, a ticker fed by a timer and a thread,
//! and a length-prefixed binary protocol.
//!
//! ```
//! use std::time::Duration;
//! use muxd::resp::{Args, RespCodec, Reply};
//! use muxd::{Config, Context, Server, ServerContext, Service};
//!
//! /// Answers every request with its number of arguments, and counts time.
//! #[derive(Default)]
//! struct CountArgs {
//!     seconds: u64,
//! }
//!
//! impl Service<RespCodec> for CountArgs {
//!     type ClientState = ();
//!
//!     fn on_request(&mut self, request: Args<'_>, ctx: &mut Context<'_, RespCodec, Self>) {
//!         ctx.reply(&Reply::Integer(request.len() as i64));
//!     }
//!
//!     fn on_start(&mut self, ctx: &mut ServerContext<'_, RespCodec, Self>) {
//!         ctx.every(Duration::from_secs(1), |count, _| count.seconds += 1);
//!     }
//! }
//!
//! let mut config = Config::default();
//! config.listen.push("tcp://127.0.0.1:0".parse()?); // port 0: any free port
//! // and as many more as you like: "tcp://[::1]:7000", "unix:///run/app.sock", ...
//! let server = Server::bind(config, RespCodec::default(), CountArgs::default())?;
//! println!("serving on {:?}", server.local_addrs());
//! let handle = server.handle(); // Send + Clone: handle.stop() from any thread
//! # handle.stop().unwrap(); // (here: stop at once)
//! let count = server.run()?; // serves until stopped, then returns the service
//! # Ok::<(), muxd::Error>(())
//! ```

#![deny(missing_docs)]
// Bytes from the network must never panic the loop: no unchecked indexing, no unwrap.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub mod buffer;
pub mod client;
pub mod client_table;
pub mod codec;
pub mod commands;
pub mod config;
mod deadlines;
mod error;
mod event_loop;
pub mod fd_limit;
pub mod lifecycle;
pub mod listener;
pub mod pubsub;
/// The `mio` the loop is built on, for registering sources of a service's own
/// ([`ServerContext::register`]) with the same version.
pub use mio;
pub mod resp;
/// The `rustls` the TLS listeners are built on, for making their
/// [`Config::tls`](crate::Config::tls) (and a client's) with the same version.
pub use rustls;
pub mod server;
pub mod service;
pub mod stats;
mod stream;
pub mod tls;
mod tokens;

pub use client::{ClientId, ClientInfo, CloseReason};
pub use client_table::{ClientEntry, Clients};
pub use codec::{Codec, Decoded};
pub use config::{ClientMemoryLimit, Config, OutputLimit, ServerInfo};
pub use error::{Error, ErrorKind};
pub use lifecycle::Lifecycle;
pub use listener::{ListenAddr, ListenerInfo, ListenerKind};
pub use server::Server;
pub use service::{
    Context, Responder, SendError, ServerContext, ServerHandle, Service, SourceId, TimerId,
};
pub use stats::Stats;
pub use stream::{Peer, PeerCred, Stream, TlsError, TlsStream};
