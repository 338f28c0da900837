//! For tests of the loop as a library: the examples' line codec, a blocking line client,
//! and a server run in a thread.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;

use muxd::{Config, ListenAddr, Server, Service};

use super::TIMEOUT;

/// The examples' line codec (`ERROR <message>` for errors, lines up to 4 KiB).
#[path = "../../examples/lines/mod.rs"]
mod codec;
pub use codec::Lines;

/// A blocking client of a line server; every read times out.
pub struct LineClient {
    pub reader: BufReader<Box<dyn std::io::Read + Send>>,
    pub writer: Box<dyn Write + Send>,
}

impl LineClient {
    pub fn tcp(addr: SocketAddr) -> LineClient {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        LineClient {
            reader: BufReader::new(Box::new(s.try_clone().unwrap())),
            writer: Box::new(s),
        }
    }

    pub fn unix(path: &Path) -> LineClient {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        LineClient {
            reader: BufReader::new(Box::new(s.try_clone().unwrap())),
            writer: Box::new(s),
        }
    }

    /// The next line, without its `\n`.
    #[track_caller]
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end_matches('\n').to_owned()
    }

    pub fn send(&mut self, request: &str) {
        self.writer
            .write_all(format!("{request}\n").as_bytes())
            .unwrap();
    }

    /// Sends `request` and reads the next line.
    #[track_caller]
    pub fn ask(&mut self, request: &str) -> String {
        self.send(request);
        self.line()
    }

    /// Whether the server closed the connection (what was left unread is dropped).
    pub fn closed(&mut self) -> bool {
        let mut rest = String::new();
        matches!(self.reader.read_line(&mut rest), Ok(0)) || rest.is_empty()
    }
}

/// A server run in a thread, on TCP port 0.
pub struct Running<S: Service<Lines>> {
    pub tcp: SocketAddr,
    pub handle: muxd::ServerHandle<Lines, S>,
    pub thread: std::thread::JoinHandle<S>,
}

impl<S: Service<Lines> + Send + 'static> Running<S> {
    /// Binds `service` on `127.0.0.1:0` (and what `configure` adds) and runs it in a thread.
    pub fn start(service: S, configure: impl FnOnce(&mut Config)) -> Running<S> {
        let mut config = Config::default();
        config.listen.push("tcp://127.0.0.1:0".parse().unwrap());
        configure(&mut config);
        let server = Server::bind(config, Lines, service).unwrap();
        let tcp = match &server.local_addrs()[0] {
            ListenAddr::Tcp(a) => *a,
            other => panic!("{other}"),
        };
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run().unwrap());
        Running {
            tcp,
            handle,
            thread,
        }
    }

    /// Stops the server and returns its service.
    pub fn stop(self) -> S {
        self.handle.stop().unwrap();
        self.thread.join().unwrap()
    }
}
