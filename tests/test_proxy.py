"""The cuttable TCP proxy of the chaos tests, on real sockets: it forwards, a cut looks like a
partition (silence) or a refusal (reset) to new and open connections, a heal restores it,
and a retarget follows an upstream that moved to another port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from proxy import Proxy


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's spelling)
        body = f"hello from {self.server.server_port}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _http_server() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def upstreams() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    first, second = _http_server(), _http_server()
    yield first, second
    for server in (first, second):
        server.shutdown()
        server.server_close()


def _connected(proxy: Proxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    sock.settimeout(0.5)
    return sock


def _ask(sock: socket.socket) -> bytes:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock.recv(4096)


def test_it_forwards_and_a_cut_silences_new_and_open_connections_until_healed(upstreams):
    server = upstreams[0]
    with Proxy("127.0.0.1", server.server_port) as proxy:
        client = httpx.Client(base_url=proxy.url, timeout=0.5)
        assert client.get("/").text == f"hello from {server.server_port}"
        open_sock = _connected(proxy)
        assert b"200 OK" in _ask(open_sock)

        proxy.cut()
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):  # accepted, never answered: the client's timeout
            httpx.get(proxy.url, timeout=0.5)
        assert time.monotonic() - started >= 0.45
        with pytest.raises(TimeoutError):  # the kept-alive connection goes silent too
            _ask(open_sock)
        with pytest.raises((httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError)):
            client.get("/")

        proxy.heal()
        assert httpx.get(proxy.url, timeout=2).status_code == 200
        assert client.get("/").status_code == 200  # a fresh connection after the silenced one
        # The silenced connection is reset on heal: its client is not left hanging for ever.
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            if not _ask(open_sock):
                raise ConnectionResetError
        client.close()


def test_a_reset_cut_fails_clients_at_once(upstreams):
    server = upstreams[0]
    with Proxy("127.0.0.1", server.server_port, mode="reset") as proxy:
        open_sock = _connected(proxy)
        assert b"200 OK" in _ask(open_sock)
        proxy.cut()
        started = time.monotonic()
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(proxy.url, timeout=2)
        assert time.monotonic() - started < 1
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            if not _ask(open_sock):
                raise ConnectionResetError
        proxy.heal()
        assert httpx.get(proxy.url, timeout=2).status_code == 200


def test_one_cut_can_be_a_drop_and_the_next_a_reset(upstreams):
    with Proxy("127.0.0.1", upstreams[0].server_port) as proxy:
        proxy.cut(mode="reset")
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(proxy.url, timeout=2)
        proxy.heal()
        proxy.cut(mode="drop")
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(proxy.url, timeout=0.3)
        with pytest.raises(ValueError):
            proxy.cut(mode="lose-half")


def test_retarget_follows_an_upstream_that_moved_and_a_dead_upstream_resets(upstreams):
    first, second = upstreams
    with Proxy("127.0.0.1", first.server_port) as proxy:
        client = httpx.Client(base_url=proxy.url, timeout=2)
        assert client.get("/").text == f"hello from {first.server_port}"
        first.shutdown()
        first.server_close()
        # Nothing listens upstream any more: the client sees a reset, not a hang.
        started = time.monotonic()
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)):
            httpx.get(proxy.url, timeout=2)
        assert time.monotonic() - started < 1
        proxy.retarget(second.server_port)
        assert client.get("/").text == f"hello from {second.server_port}"
        client.close()
