#!/usr/bin/env python3
"""Soak test for muxd: many clients for a long time, with random disconnects, bad input,
slow readers and slow writers mixed in with well-behaved traffic, and subscribers: ones
that read every message (checked: all, in order), ones that reset mid-stream, and ones
that stop reading until the pub/sub output limit closes them.

Every well-formed request's response is checked. At the end the daemon must have no
clients left but the probe, and its RSS must be back near where it started.

Run it through scripts/soak.sh, which builds and starts muxd; or point it at a running
muxd: soak.py --tcp 127.0.0.1:7379 --unix /tmp/muxd.sock --pid PID --duration 300
"""

import argparse
import os
import random
import socket
import struct
import sys
import threading
import time

BAD_INPUTS = [
    (b"*3000000000\r\n", b"-ERR Protocol error: invalid multibulk length"),
    (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'"),
    (b"*1\r\n$-10\r\n", b"-ERR Protocol error: invalid bulk length"),
    (b"*1\r\n$1073741824\r\n", b"-ERR Protocol error: invalid bulk length"),
    (b"ECHO \"unbalanced\r\n", b"-ERR Protocol error: unbalanced quotes in request"),
    (b"PI\x00NG\r\n", b"-ERR Protocol error: NUL byte in inline request"),
    (b"*1\r\n$4\r\nPINGxx", b"-ERR Protocol error: expected '\\r\\n' after bulk data"),
    (b"x" * 70000, b"-ERR Protocol error: too big inline request"),
]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, message):
        with self.lock:
            self.failures.append(message)
            self.counts["failures"] = self.counts.get("failures", 0) + 1


class Conn:
    """A blocking RESP connection with an incremental reply parser."""

    def __init__(self, args, rng):
        if args.unix and (not args.tcp or rng.random() < 0.5):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(args.unix)
        else:
            host, port = args.tcp.rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(30)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                return line
            self._fill()

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-", b":"):
            return line
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ValueError(f"bad reply line {line!r}")

    def close(self, reset=False):
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def encode(*words):
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        out.append(b"$%d\r\n%s\r\n" % (len(w), w))
    return b"".join(out)


def well_behaved(args, rng, stats):
    """Pipelined PING/ECHO/ADD/SUM with every reply checked."""
    c = Conn(args, rng)
    total = 0
    for _ in range(rng.randint(1, 40)):
        batch, expected = [], []
        for _ in range(rng.randint(1, 32)):
            pick = rng.random()
            if pick < 0.3:
                batch.append(b"PING\r\n" if rng.random() < 0.5 else encode(b"PING"))
                expected.append(b"+PONG")
            elif pick < 0.6:
                payload = os.urandom(rng.randint(0, 4096))
                batch.append(encode(b"ECHO", payload))
                expected.append(payload)
            elif pick < 0.9:
                nums = [rng.randint(-10**6, 10**6) for _ in range(rng.randint(1, 5))]
                total += sum(nums)
                batch.append(encode(b"ADD", *[str(n).encode() for n in nums]))
                expected.append(b":%d" % total)
            else:
                batch.append(encode(b"SUM"))
                expected.append(b":%d" % total)
                total = 0
        c.send(b"".join(batch))
        for want in expected:
            got = c.reply()
            if got != want:
                stats.fail(f"expected {want[:60]!r}, got {str(got)[:60]}")
                c.close()
                return
            stats.add("requests_ok")
    if rng.random() < 0.5:
        c.send(b"QUIT\r\n")
        if c.reply() != b"+OK":
            stats.fail("QUIT did not reply +OK")
    c.close()
    stats.add("sessions_normal")


def abrupt(args, rng, stats):
    """Sends part of a pipeline and disconnects, sometimes with a reset."""
    c = Conn(args, rng)
    batch = b"".join(encode(b"ECHO", os.urandom(100)) for _ in range(rng.randint(1, 500)))
    c.send(batch[: rng.randint(1, len(batch))])
    c.close(reset=rng.random() < 0.5)
    stats.add("sessions_abrupt")


def bad_input(args, rng, stats):
    """Sends hostile bytes; expects the protocol error and the close."""
    c = Conn(args, rng)
    data, want = rng.choice(BAD_INPUTS)
    try:
        c.send(data)
    except OSError:
        pass  # The server may close before taking all of a long input.
    try:
        got = c._line()
        if not want.startswith(got) and not got.startswith(want[:30]):
            stats.fail(f"bad input {data[:20]!r}: expected {want!r}, got {got!r}")
        c._fill()
        stats.fail(f"bad input {data[:20]!r}: connection stayed open")
    except EOFError:
        stats.add("sessions_bad_input")
    except ConnectionResetError:
        stats.add("sessions_bad_input")
    c.close()


def slow_reader(args, rng, stats):
    """Pipelines a lot without reading for a while, then reads and checks everything."""
    c = Conn(args, rng)
    n = rng.randint(500, 3000)
    payload = os.urandom(1024)
    sender = threading.Thread(target=c.send, args=(encode(b"ECHO", payload) * n,))
    sender.start()
    time.sleep(rng.uniform(0.5, 3.0))
    for _ in range(n):
        if c.reply() != payload:
            stats.fail("slow reader got a wrong reply")
            break
        stats.add("requests_ok")
    sender.join()
    c.close()
    stats.add("sessions_slow_reader")


SESSION = [0]


def unique(stats, seed):
    """A name no other session of the run uses."""
    with stats.lock:
        SESSION[0] += 1
        return b"soak:%d:%d" % (seed, SESSION[0])


def subscriber(args, rng, stats):
    """Subscribes by channel or pattern, gets numbered messages from a publisher
    connection, checks every one arrives in order; sometimes resets mid-stream instead."""
    sub, pub = Conn(args, rng), Conn(args, rng)
    channel = unique(stats, args.seed)
    by_pattern = rng.random() < 0.3
    if by_pattern:
        sub.send(encode(b"PSUBSCRIBE", channel + b"*"))
        want = [b"psubscribe", channel + b"*", b":1"]
    else:
        sub.send(encode(b"SUBSCRIBE", channel))
        want = [b"subscribe", channel, b":1"]
    if sub.reply() != want:
        stats.fail("subscribe: wrong confirmation")
        return
    n = rng.randint(1, 2000)
    payload = os.urandom(rng.randint(0, 512))
    pub.send(b"".join(encode(b"PUBLISH", channel, b"%d:" % i + payload) for i in range(n)))
    reset_at = rng.randint(0, n) if rng.random() < 0.2 else None
    for i in range(n):
        if i == reset_at:
            sub.close(reset=True)
            stats.add("sessions_subscriber_reset")
            break
        got = sub.reply()
        want = ([b"pmessage", channel + b"*"] if by_pattern else [b"message"]) + [channel, b"%d:" % i + payload]
        if got != want:
            stats.fail(f"subscriber: message {i} was {str(got)[:80]}")
            break
        stats.add("messages_ok")
    else:
        sub.send(encode(b"PING"))
        if sub.reply() != [b"pong", b""]:
            stats.fail("subscriber: PING in subscribed mode")
        sub.close()
        stats.add("sessions_subscriber")
    for _ in range(n):
        if pub.reply() not in (b":0", b":1"):
            stats.fail("publisher: a PUBLISH reached someone else")
            break
    pub.close()


def stalled_subscriber(args, rng, stats):
    """Subscribes, then reads nothing while a publisher sends more than the pub/sub hard
    limit: it must be closed (soak.sh runs muxd with --pubsub-hard-limit 2mb)."""
    sub, pub = Conn(args, rng), Conn(args, rng)
    channel = unique(stats, args.seed)
    sub.send(encode(b"SUBSCRIBE", channel))
    sub.reply()
    payload = os.urandom(16 * 1024)
    for _ in range(400):  # 6.4 MB, in pieces, each answered
        pub.send(encode(b"PUBLISH", channel, payload))
        if pub.reply() == b":0":
            break
    else:
        stats.fail("stalled subscriber: never closed by the output limit")
    pub.close()
    try:
        while True:
            sub._fill()
    except (EOFError, ConnectionResetError):
        stats.add("sessions_stalled_subscriber")
    sub.close()


def slow_writer(args, rng, stats):
    """Trickles a request in byte by byte."""
    c = Conn(args, rng)
    word = os.urandom(rng.randint(1, 16)).hex().encode()
    for b in encode(b"ECHO", word):
        c.send(bytes([b]))
        time.sleep(0.01)
    if c.reply() != word:
        stats.fail("slow writer got a wrong reply")
    else:
        stats.add("requests_ok")
    c.close()
    stats.add("sessions_slow_writer")


BEHAVIOURS = [
    (0.45, well_behaved),
    (0.10, abrupt),
    (0.10, bad_input),
    (0.08, slow_reader),
    (0.08, slow_writer),
    (0.15, subscriber),
    (0.04, stalled_subscriber),
]


def worker(args, seed, deadline, stats):
    rng = random.Random(seed)
    while time.time() < deadline:
        pick, acc = rng.random(), 0.0
        for weight, behaviour in BEHAVIOURS:
            acc += weight
            if pick < acc:
                break
        try:
            behaviour(args, rng, stats)
        except (OSError, EOFError, ValueError) as e:
            stats.fail(f"{behaviour.__name__}: {type(e).__name__}: {e}")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def info(args, field):
    c = Conn(args, random.Random(0))
    c.send(encode(b"INFO"))
    text = c.reply().decode()
    c.close()
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise KeyError(field)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tcp", help="host:port of muxd")
    p.add_argument("--unix", help="Unix socket path of muxd")
    p.add_argument("--pid", type=int, required=True, help="muxd's pid, for its RSS")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--duration", type=float, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rss-slack", type=int, default=16 << 20,
                   help="bytes the final RSS may exceed the start (default 16 MiB)")
    args = p.parse_args()
    if not args.tcp and not args.unix:
        p.error("give --tcp and/or --unix")

    start_rss = rss(args.pid)
    stats = Stats()
    deadline = time.time() + args.duration
    threads = [threading.Thread(target=worker, args=(args, args.seed * 1000 + i, deadline, stats),
                                daemon=True) for i in range(args.clients)]
    started = time.time()
    for t in threads:
        t.start()
    peak_rss = start_rss
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        peak_rss = max(peak_rss, rss(args.pid))
        elapsed = time.time() - started
        with stats.lock:
            ok = stats.counts.get("requests_ok", 0)
        print(f"\r{elapsed:6.0f}s requests_ok={ok} rss={rss(args.pid) >> 10} KiB", end="",
              file=sys.stderr, flush=True)
    print(file=sys.stderr)

    # Every client has left: wait for the server to notice the last ones.
    for _ in range(200):
        if info(args, "connected_clients") == 1:
            break
        time.sleep(0.05)
    connected = info(args, "connected_clients") - 1  # minus this probe
    end_rss = rss(args.pid)
    print(f"duration_s={time.time() - started:.0f} clients={args.clients} seed={args.seed}")
    for key in sorted(stats.counts):
        print(f"{key}={stats.counts[key]}")
    print(f"connected_clients_at_end={connected}")
    print(f"rss_start={start_rss} rss_peak={peak_rss} rss_end={end_rss} "
          f"rss_growth={end_rss - start_rss}")
    for line in ["total_connections_received", "total_commands_processed", "protocol_errors",
                 "closed_reset", "closed_peer_closed", "closed_quit", "closed_protocol_error",
                 "output_paused_clients", "client_output_buffer_limit_disconnections"]:
        print(f"server_{line}={info(args, line)}")
    problems = list(stats.failures[:20])
    if connected != 0:
        problems.append(f"{connected} clients still connected")
    for field in ["pubsub_channels", "pubsub_patterns"]:
        if info(args, field) != 0:
            problems.append(f"{field} is {info(args, field)} with no subscriber left")
    if end_rss - start_rss > args.rss_slack:
        problems.append(f"RSS grew by {end_rss - start_rss} bytes")
    if problems:
        print("FAILED:", *problems, sep="\n  ")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
