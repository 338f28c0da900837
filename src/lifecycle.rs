//! What a running server tells the process around it about its life: the seam a process
//! supervisor hangs on (the daemon's systemd notifications, `src/supervise.rs`).
//!
//! The library only reports; what is done with a report is the [`Lifecycle`]'s business.
//! Readiness needs no hook: once [`Server::bind`](crate::Server::bind) returns, every
//! master socket is bound and accepting (connections queue until [`run`](crate::Server::run)).
//! The hooks run on the loop thread, so a loop that is stuck stops calling
//! [`heartbeat`](Lifecycle::heartbeat): a watchdog's proof of life.

use std::time::Duration;

/// Hooks the loop calls at points of its life. Every method has a default that does
/// nothing; set one with [`Server::set_lifecycle`](crate::Server::set_lifecycle).
///
/// # Examples
/// ```no_run
/// use std::time::Duration;
/// use muxd::commands::CommandService;
/// use muxd::resp::RespCodec;
/// use muxd::{Config, Lifecycle, Server};
///
/// struct Beat;
///
/// impl Lifecycle for Beat {
///     fn stopping(&mut self) {
///         eprintln!("shutting down");
///     }
///     fn heartbeat_interval(&self) -> Option<Duration> {
///         Some(Duration::from_secs(5))
///     }
///     fn heartbeat(&mut self) {
///         eprintln!("still serving");
///     }
/// }
///
/// let mut config = Config::default();
/// config.listen.push("tcp://127.0.0.1:0".parse()?);
/// let mut server = Server::bind(config, RespCodec::default(), CommandService::default())?;
/// server.set_lifecycle(Beat);
/// server.run()?;
/// # Ok::<(), muxd::Error>(())
/// ```
pub trait Lifecycle: Send {
    /// Shutdown begins: the master sockets are closed and the responses owed are being
    /// written. Called once.
    fn stopping(&mut self) {}

    /// How often the loop calls [`heartbeat`](Lifecycle::heartbeat); `None` (the default)
    /// never does. Asked once, when the loop starts.
    fn heartbeat_interval(&self) -> Option<Duration> {
        None
    }

    /// Called from the loop thread between two turns, every
    /// [`heartbeat_interval`](Lifecycle::heartbeat_interval), while the loop runs
    /// (shutdown included).
    fn heartbeat(&mut self) {}
}
