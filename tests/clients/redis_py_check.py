#!/usr/bin/env python3
"""One row of muxd's real-client matrix for redis-py (tests/client_matrix runs it).

Connects with redis-py's defaults (or the --mode/--parser variant), then checks PING, ECHO
of a binary payload, ADD/SUM through execute_command, CLIENT SETNAME then CLIENT LIST
(name and resp= shown), a pipeline and a transaction of 1,000 commands with every reply
checked, and pub/sub: pubsub() subscribe and psubscribe, get_message, listen, the
health-check PING while subscribed, publish's receiver count, unsubscribing. With --password the server requires it: the row connects with password= and a
wrong password must raise redis.exceptions.AuthenticationError. Exits 1 with a message
on the first mismatch.

  redis_py_check.py --target tcp://127.0.0.1:7379 | unix:///tmp/muxd.sock
                             | tls://127.0.0.1:7380 --cacert CA.pem
                    [--password PW] [--mode default|resp2|asyncio]
                    [--parser hiredis|python] [--server muxd|redis]

--server redis checks the harness against a real redis-server, which has no ADD/SUM:
INCRBY on a key and a Lua get-and-delete stand in, with the same integer replies.
"""

import argparse
import asyncio
import faulthandler
import inspect
import os
import sys

import redis
import redis.asyncio
from redis import _parsers
from redis.utils import HIREDIS_AVAILABLE

PAYLOAD = b"a\r\nb" + bytes(range(256)) + b"\r\n*1\r\n$-1\r\n\x00"
PIPELINE = 1000
# SUM's stand-in on Redis: the running total, then reset to 0, as an integer reply.
GET_AND_RESET = "local v = redis.call('GET', KEYS[1]) or 0 redis.call('DEL', KEYS[1]) return tonumber(v)"


class Mismatch(Exception):
    pass


STEP = "connect"


def step(name):
    """Names the check under way, for the message if the client raises."""
    global STEP
    STEP = name


def check(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: expected {want!r}, got {got!r}")


async def done(value):
    """The result of a sync call, or the awaited result of an async one."""
    return await value if inspect.isawaitable(value) else value


class Adder:
    """ADD/SUM on muxd; the same integer replies from INCRBY and a script on Redis."""

    def __init__(self, server):
        self.server = server
        self.key = f"matrix:adder:{os.getpid()}"

    def add(self, *numbers):
        if self.server == "muxd":
            return ("ADD", *numbers)
        return ("INCRBY", self.key, sum(numbers))

    def sum(self):
        if self.server == "muxd":
            return ("SUM",)
        return ("EVAL", GET_AND_RESET, 1, self.key)


def connect(args, password):
    """A client built the way a user would: from a URL, with only the options the mode names."""
    options = {}
    if args.target.startswith("unix://"):
        url = args.target
    elif args.target.startswith("tls://"):
        # rediss:// is redis-py's ssl=True.
        url = "rediss://" + args.target.removeprefix("tls://")
        options["ssl_ca_certs"] = args.cacert
    else:
        url = "redis://" + args.target.removeprefix("tcp://")
    if password is not None:
        options["password"] = password
    if args.mode == "resp2":
        options["protocol"] = 2
    if args.parser == "python":
        options["parser_class"] = (
            _parsers._AsyncRESP3Parser if args.mode == "asyncio" else _parsers._RESP2Parser
        )
    elif not HIREDIS_AVAILABLE:
        raise Mismatch("--parser hiredis: the hiredis package is not installed")
    module = redis.asyncio if args.mode == "asyncio" else redis
    return module.Redis.from_url(url, **options)


async def close(client):
    if isinstance(client, redis.asyncio.Redis):
        await client.aclose()
    else:
        client.close()


async def connection_facts(client):
    """The parser class and protocol of a pooled connection (after it has connected)."""
    pool = client.connection_pool
    conn = await done(pool.get_connection())
    try:
        return type(conn._parser).__name__, int(conn.protocol)
    finally:
        await done(pool.release(conn))


async def row(args, password):
    client = connect(args, password)
    try:
        step("connect and PING")
        check("PING", await done(client.ping()), True)
        parser, protocol = await connection_facts(client)
        print(f"connected: parser={parser} protocol={protocol}")
        want_hiredis = args.parser == "hiredis"
        check(f"parser in use ({parser})", "Hiredis" in parser, want_hiredis)
        check("protocol", protocol, 2 if args.mode == "resp2" else 3)

        step("ECHO")
        check("ECHO binary payload", await done(client.echo(PAYLOAD)), PAYLOAD)

        adder = Adder(args.server)
        for command, want in [
            (adder.add(1, 2, 3), 6),
            (adder.add(-10), -4),
            (adder.sum(), -4),
            (adder.sum(), 0),
        ]:
            step(" ".join(map(str, command[:2])))
            check(STEP, await done(client.execute_command(*command)), want)

        name = f"matrix-redis-py-{args.mode}-{args.parser}-{os.getpid()}"
        step("CLIENT SETNAME")
        check("CLIENT SETNAME", await done(client.client_setname(name)), True)
        step("CLIENT LIST")
        rows = [c for c in await done(client.client_list()) if c.get("name") == name]
        check(f"CLIENT LIST rows named {name}", len(rows), 1)
        check("CLIENT LIST resp=", rows[0].get("resp"), str(protocol))

        # pipeline() is a MULTI/EXEC transaction by default; transaction=False is a plain one.
        for transaction in (True, False):
            what = "transaction" if transaction else "pipeline"
            step(f"{what} of {PIPELINE}")
            pipe = client.pipeline(transaction=transaction)
            want = []
            for i in range(PIPELINE):
                if i % 2:
                    pipe.execute_command(*adder.add(1))
                    want.append((i + 1) // 2)
                else:
                    pipe.echo(f"m{i}")
                    want.append(f"m{i}".encode())
            got = await done(pipe.execute())
            check(f"{what} reply count", len(got), PIPELINE)
            for i, (g, w) in enumerate(zip(got, want)):
                check(f"{what} reply {i}", g, w)
            check(f"SUM after the {what}", await done(client.execute_command(*adder.sum())), PIPELINE // 2)
    finally:
        await close(client)


async def message(p):
    """The next message a PubSub object gets, waiting at most 5 s."""
    got = await done(p.get_message(timeout=5))
    if got is None:
        raise Mismatch(f"{STEP}: no message within 5 s")
    return got


async def pubsub(args, password):
    client = connect(args, password)
    publisher = connect(args, password)
    p = client.pubsub()
    channel = f"matrix:{os.getpid()}:news".encode()
    pattern = f"matrix:{os.getpid()}:n*".encode()
    try:
        step("SUBSCRIBE and PSUBSCRIBE through pubsub()")
        await done(p.subscribe(channel))
        await done(p.psubscribe(pattern))
        check("subscribe confirmation", await message(p),
              {"type": "subscribe", "pattern": None, "channel": channel, "data": 1})
        check("psubscribe confirmation", await message(p),
              {"type": "psubscribe", "pattern": None, "channel": pattern, "data": 2})

        step("PUBLISH, get_message")
        check("PUBLISH receivers", await done(publisher.publish(channel, b"hello\r\n")), 2)
        check("message", await message(p),
              {"type": "message", "pattern": None, "channel": channel, "data": b"hello\r\n"})
        check("pmessage", await message(p),
              {"type": "pmessage", "pattern": pattern, "channel": channel, "data": b"hello\r\n"})

        step("health-check PING while subscribed")
        p.connection.next_health_check = 0
        await done(p.check_health())
        check("PUBLISH receivers", await done(publisher.publish(channel, b"after ping")), 2)
        # The health check's pong is swallowed: the next message is the published one.
        check("message after the health check", (await message(p))["data"], b"after ping")
        check("pmessage after the health check", (await message(p))["data"], b"after ping")

        step("listen")
        await done(p.punsubscribe(pattern))
        check("punsubscribe confirmation", await message(p),
              {"type": "punsubscribe", "pattern": None, "channel": pattern, "data": 1})
        check("PUBLISH receivers", await done(publisher.publish(channel, b"listened")), 1)
        listening = p.listen()
        got = await (listening.__anext__() if args.mode == "asyncio" else done(next(listening)))
        check("listen", got, {"type": "message", "pattern": None, "channel": channel, "data": b"listened"})

        step("UNSUBSCRIBE")
        await done(p.unsubscribe())
        check("unsubscribe confirmation", await message(p),
              {"type": "unsubscribe", "pattern": None, "channel": channel, "data": 0})
        check("PUBLISH after unsubscribing", await done(publisher.publish(channel, b"x")), 0)
    finally:
        await done(p.aclose() if args.mode == "asyncio" else p.close())
        await close(client)
        await close(publisher)


async def wrong_password(args, password):
    step("wrong password")
    client = connect(args, password + "-wrong")
    try:
        await done(client.ping())
    except redis.exceptions.RedisError as e:
        # redis.asyncio over a Unix socket authenticates inside its socket connect and so
        # wraps the AuthenticationError in a ConnectionError (redis-py 8.1): accept the
        # AuthenticationError as the cause there.
        auth = e if isinstance(e, redis.exceptions.AuthenticationError) else e.__cause__
        if not isinstance(auth, redis.exceptions.AuthenticationError):
            raise Mismatch(f"wrong password: expected AuthenticationError, got {type(e).__name__}: {e}")
        if "invalid username-password pair" not in str(auth):
            raise Mismatch(f"wrong password: AuthenticationError without WRONGPASS's text: {auth}")
        return
    finally:
        await close(client)
    raise Mismatch("wrong password: PING succeeded")


async def main():
    # A server that never answers would hang redis-py (no timeout by default): after 60 s,
    # print where the row is stuck and exit 1.
    faulthandler.dump_traceback_later(60, exit=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--password")
    parser.add_argument("--cacert", help="with a tls:// target: the CA to trust")
    parser.add_argument("--mode", choices=["default", "resp2", "asyncio"], default="default")
    parser.add_argument("--parser", choices=["hiredis", "python"], default="hiredis")
    parser.add_argument("--server", choices=["muxd", "redis"], default="muxd")
    args = parser.parse_args()
    label = f"redis-py {redis.__version__} mode={args.mode} parser={args.parser} {args.target}"
    print(label, "hiredis", _hiredis_version())
    try:
        await row(args, args.password)
        await pubsub(args, args.password)
        if args.password is not None:
            await wrong_password(args, args.password)
    except Mismatch as e:
        sys.exit(f"FAIL {label}: {e}")
    except Exception as e:  # a client error is a failed row too, with its type shown
        sys.exit(f"FAIL {label}: {STEP}: {type(e).__module__}.{type(e).__name__}: {e}")
    print(f"ok {label}" + (" with password" if args.password is not None else ""))


def _hiredis_version():
    try:
        import hiredis

        return hiredis.__version__
    except ImportError:
        return "not installed"


if __name__ == "__main__":
    asyncio.run(main())
