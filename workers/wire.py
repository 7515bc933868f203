"""A small blocking Redis client for the operator command's hand-off: hiredis speaks the protocol, a socket carries it.

Everything else in the product talks to Redis through redis-py. Importing redis-py (and RQ on top of it)
takes longer than the whole hand-off otherwise does: 0.2-0.25 s of a one-account correction's 0.4 s on the
project's 2-core VM, against about 0.01 s for this module (docs/performance.md). So the command's fast
path, which only pushes a request and waits for its reply (`workers.handoff`), uses this client; every
slower path loads redis-py as before.

It understands the URLs the product documents for APPEALS_REDIS_URL: `redis://`, `rediss://` (TLS with
the system's trust store, host name checked) and `unix://`, with a user and password and a database
number. `connect()` returns None for a URL carrying any other option, and the caller uses redis-py,
which knows them all. The methods mirror redis-py's for the few commands the hand-off uses, so
`workers.handoff` runs on either client.
"""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

CONNECT_TIMEOUT = 5.0


class WireError(Exception):
    """The server answered with an error, or the connection failed or broke (the caller falls back to redis-py)."""


def connect(url: str, timeout: float = CONNECT_TIMEOUT) -> "Wire | None":
    """A connected client for `url`, or None when the URL has options this client does not know.

    Raises WireError when the server cannot be reached or refuses the credentials.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    if parts.scheme not in ("redis", "rediss", "unix") or set(query) - {"db"} or parts.fragment:
        return None
    try:
        db = int(parts.path.strip("/") or 0) if parts.scheme != "unix" else 0
        if "db" in query:  # as redis-py reads it: the query's database before the path's
            db = int(query["db"][-1])
        port = parts.port or 6379
    except ValueError:
        return None  # redis-py says what is wrong with it
    try:
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(unquote(parts.path))
        else:
            sock = socket.create_connection((parts.hostname or "localhost", port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if parts.scheme == "rediss":
                import ssl

                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
    except OSError as exc:
        raise WireError(f"cannot reach Redis: {exc}") from None
    client = Wire(sock, timeout)
    try:
        if parts.password is not None:
            client.call("AUTH", *([unquote(parts.username)] if parts.username else []), unquote(parts.password))
        if db:
            client.call("SELECT", db)
    except WireError:
        client.close()
        raise
    return client


class Wire:
    """One connection; each call sends a command and waits for its reply."""

    def __init__(self, sock: socket.socket, timeout: float):
        self._sock = sock
        self._timeout = timeout
        self._reader = hiredis.Reader()

    def call(self, *args, block: float = 0.0):
        """Send one command and return its reply (bytes, int, list or None); `block`: seconds the server
        may hold the reply back (BLPOP's timeout), added to the socket's."""
        try:
            self._sock.settimeout(self._timeout + block)
            self._sock.sendall(hiredis.pack_command(args))
            while True:
                reply = self._reader.gets()
                if reply is not False:
                    break
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise WireError("Redis closed the connection")
                self._reader.feed(chunk)
        except (OSError, hiredis.ProtocolError) as exc:
            self.close()
            raise WireError(f"Redis connection failed: {exc}") from None
        if isinstance(reply, hiredis.ReplyError):
            raise WireError(str(reply))
        return reply

    def close(self) -> None:
        """Close the connection (idempotent)."""
        try:
            self._sock.close()
        except OSError:
            pass

    # -- the commands `workers.handoff` uses, with redis-py's signatures and results -------------------
    def smembers(self, key: str) -> set:
        return set(self.call("SMEMBERS", key))

    def exists(self, *keys: str) -> int:
        return self.call("EXISTS", *keys)

    def rpush(self, key: str, *values) -> int:
        return self.call("RPUSH", key, *values)

    def lrem(self, key: str, count: int, value) -> int:
        return self.call("LREM", key, count, value)

    def blpop(self, keys, timeout: float = 0):
        reply = self.call("BLPOP", *([keys] if isinstance(keys, str) else keys), timeout, block=timeout)
        return None if reply is None else tuple(reply)
