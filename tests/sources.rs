//! A service's own event sources, against the real loop: a registered UDP socket's
//! datagrams reach the service on the loop thread; once deregistered, its code runs no
//! more; a stale source id is refused.

mod util;

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::sync::mpsc;

use muxd::mio::Interest;
use muxd::mio::net::UdpSocket;
use muxd::{Context, ServerContext, Service, SourceId};
use util::TIMEOUT;
use util::lines::{LineClient, Lines, Running};

/// Registers its UDP socket at start; each datagram is passed to the test and counted,
/// and answered to the datagram's sender. `DEREGISTER` and `COUNT` over the line protocol.
struct Udp {
    socket: UdpSocket,
    id: Option<SourceId>,
    received: mpsc::Sender<Vec<u8>>,
    datagrams: usize,
    /// What deregistering twice returned, as the second time's error kind.
    second_deregister: Option<ErrorKind>,
}

impl Udp {
    fn on_readable(&mut self) {
        let mut buf = [0u8; 1500];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    self.datagrams += 1;
                    let _ = self.received.send(buf[..n].to_vec());
                    let _ = self.socket.send_to(b"ack", from);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }
}

impl Service<Lines> for Udp {
    type ClientState = ();

    fn on_start(&mut self, ctx: &mut ServerContext<'_, Lines, Self>) {
        let id = ctx
            .register(&mut self.socket, Interest::READABLE, |udp, event, _| {
                assert!(event.is_readable());
                udp.on_readable();
            })
            .unwrap();
        self.id = Some(id);
    }

    fn on_request(&mut self, line: &[u8], ctx: &mut Context<'_, Lines, Self>) {
        match line {
            b"DEREGISTER" => {
                let id = self.id.unwrap();
                ctx.deregister(&mut self.socket, id).unwrap();
                self.second_deregister =
                    ctx.deregister(&mut self.socket, id).err().map(|e| e.kind());
                ctx.reply(b"done");
            }
            b"COUNT" => {
                let n = self.datagrams.to_string();
                ctx.reply(n.as_bytes());
            }
            _ => ctx.reply(b"?"),
        }
    }
}

#[test]
fn a_registered_udp_sockets_datagrams_reach_the_service() {
    let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_addr: SocketAddr = socket.local_addr().unwrap();
    let (received_tx, received) = mpsc::channel();
    let service = Udp {
        socket,
        id: None,
        received: received_tx,
        datagrams: 0,
        second_deregister: None,
    };
    let running = Running::start(service, |_| {});
    let peer = StdUdp::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut ack = [0u8; 16];
    for i in 0..100 {
        let datagram = format!("datagram {i}");
        peer.send_to(datagram.as_bytes(), udp_addr).unwrap();
        // One at a time: UDP on loopback does not drop, but a burst could overflow the
        // socket's buffer.
        assert_eq!(received.recv_timeout(TIMEOUT).unwrap(), datagram.as_bytes());
        let (n, from) = peer.recv_from(&mut ack).unwrap();
        assert_eq!((&ack[..n], from), (&b"ack"[..], udp_addr));
    }
    // Clients are served alongside.
    let mut client = LineClient::tcp(running.tcp);
    assert_eq!(client.ask("COUNT"), "100");

    // Deregistered: datagrams wait in the socket, the service's code does not run.
    assert_eq!(client.ask("DEREGISTER"), "done");
    peer.send_to(b"unheard", udp_addr).unwrap();
    assert_eq!(client.ask("COUNT"), "100");
    let service = running.stop();
    assert_eq!(service.datagrams, 100);
    assert_eq!(service.second_deregister, Some(ErrorKind::NotFound));
    assert!(received.try_recv().is_err());
}
