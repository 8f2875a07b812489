"""CRI PortForward over WebSocket through the real socket and monitord's
streaming server, as the kubelet's streaming library serves it
(k8s.io/kubelet/pkg/cri/streaming/portforward/websocket.go), driven by a
client that is not ours: Python's `websockets` (Debian's
python3-websockets). Into a real pod with a CNI network (run under flock
/tmp/cric-net.lock); the echo servers listen on the pod's loopback only,
as test_portfwd.py's.

What is checked: the ports of ?port= (repeated, or separated by commas),
channels 2i (data) and 2i+1 (error) for the i-th, the first frame on each
the port as two bytes little-endian; two ports at once with 1 MiB each way,
bytes identical; v4.base64.channel.k8s.io (text frames) with the call's
ports when there is no ?port=; a refused port as text on its error channel
while the other port forwards on, and the connection closed (1000) once
every port's connection is done; refusals before the upgrade: a bad or
empty port (400, the token still good), a port the call did not name
(400), no ?port= when the call named none (400), a subprotocol
port-forward does not speak (403); the session's fds all released.
"""
import asyncio
import base64
import os
import socket
import struct
import urllib.parse

import pytest

from conftest import api, wait_for
from netutil import free_port, missing, net  # noqa: F401
from test_pods import netns_of, pods, skip_unless_ready  # noqa: F401
from test_portfwd import echo_server
from test_stream_portforward import start_stream_server

try:
    import websockets
except ImportError:  # pragma: no cover
    websockets = None

pytestmark = skip_unless_ready(missing, "pod sandboxes with real CNI networks")

V4 = "v4.channel.k8s.io"
V4B64 = "v4.base64.channel.k8s.io"
CHUNK = 32 * 1024


@pytest.fixture
def ws_ok():
    if websockets is None:
        pytest.fail("python3-websockets is required")


def pf_url(pods, pod, ports=()):
    return pods.cri.call("PortForward", api.PortForwardRequest(pod_sandbox_id=pod,
                                                               port=list(ports)),
                         api.PortForwardResponse).url


def ws(url, query=""):
    return "ws" + url[len("http"):] + query


def connect(url, protocols=(V4,)):
    return websockets.connect(url, subprotocols=list(protocols) if protocols else None,
                              max_size=None, ping_interval=None, close_timeout=10)


def frame(conn, ch, data):
    if conn.subprotocol == V4B64:
        return str(ch) + base64.b64encode(data).decode()
    return bytes([ch]) + data


def unframe(conn, m):
    if conn.subprotocol == V4B64:
        assert isinstance(m, str), m
        return int(m[0]), base64.b64decode(m[1:])
    assert isinstance(m, bytes), m
    return m[0], m[1:]


async def forward(url, sends, protocols=(V4,), until=None):
    """Connect, send sends ({channel: bytes}) in CHUNK messages, collect
    every channel's bytes ({channel: [first frame, rest]}) until the bytes
    on each channel of until ({channel: n}) are there (then close), or
    until the server closes. Answers (subprotocol, close code, frames)."""
    async with connect(url, protocols) as conn:
        got = {}

        async def reader():
            async for m in conn:
                ch, data = unframe(conn, m)
                if ch not in got:
                    got[ch] = [data, b""]
                else:
                    got[ch][1] += data
                if until and all(len(got.get(c, [b"", b""])[1]) >= n
                                 for c, n in until.items()):
                    return

        async def writer():
            for ch, data in sends.items():
                for i in range(0, len(data), CHUNK):
                    await conn.send(frame(conn, ch, data[i:i + CHUNK]))

        r = asyncio.ensure_future(reader())
        await writer()
        await asyncio.wait_for(r, 60)
        await conn.close()
        return conn.subprotocol, conn.close_code, got


def port_le(port):
    return struct.pack("<H", port)


def status_of(url):
    """The HTTP status a WebSocket handshake to url is answered with."""
    u = urllib.parse.urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall((f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Protocol: {V4}\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            b = s.recv(4096)
            assert b, head
            head += b
    return int(head.split()[1])


def monitord_fds(pods):
    """monitord's open fds: {fd: what it is}."""
    d = f"/proc/{pods.suite.pid('monitord')}/fd"
    out = {}
    for fd in os.listdir(d):
        try:
            out[fd] = os.readlink(os.path.join(d, fd))
        except FileNotFoundError:
            pass
    return out


def test_ws_portforward(pods, ws_ok):
    pod = pods.run(name="wspf")
    netns = netns_of(pods, pod)
    p1, p2, refused = free_port(), free_port(), free_port()
    servers = [echo_server("127.0.0.1", p, netns) for p in (p1, p2)]
    try:
        start_stream_server(pf_url(pods, pod))  # and the gateway's connection to monitord is up
        fds = monitord_fds(pods)
        # Two ports, 1 MiB each way each, bytes identical.
        a, b = os.urandom(1 << 20), os.urandom(1 << 20)
        url = ws(pf_url(pods, pod, [p1, p2, refused]), f"?port={p1}&port={p2}")
        proto, _, got = asyncio.run(forward(url, {0: a, 2: b}, until={0: len(a), 2: len(b)}))
        assert proto == V4
        assert {ch: got[ch][0] for ch in got} == \
            {0: port_le(p1), 1: port_le(p1), 2: port_le(p2), 3: port_le(p2)}, got
        assert got[0][1] == a and got[2][1] == b
        assert got[1][1] == b"" and got[3][1] == b""

        # base64, the call's ports (no ?port=), "p1,p2" in one parameter
        # also taken; a smaller payload (text frames a third larger).
        c = os.urandom(300 * 1024)
        for query in ("", f"?port={p2},{p1}"):
            url = ws(pf_url(pods, pod, [p2, p1]), query)
            proto, _, got = asyncio.run(forward(url, {2: c}, (V4B64,), until={2: len(c)}))
            assert proto == V4B64 and got[0][0] == port_le(p2) and got[2][0] == port_le(p1)
            assert got[2][1] == c

        # A refused port: its error channel says why, the other forwards on.
        url = ws(pf_url(pods, pod), f"?port={refused},{p1}")
        _, _, got = asyncio.run(forward(url, {2: b"ping" * 1000},
                                        until={1: 1, 2: 4000}))
        msg = got[1][1].decode()
        assert f"error forwarding port {refused} to pod {pod}" in msg, msg
        assert "Connection refused" in msg, msg
        assert got[2][1] == b"ping" * 1000
        # Only a refused port: the error, then the server closes (1000).
        url = ws(pf_url(pods, pod), f"?port={refused}")
        _, code, got = asyncio.run(forward(url, {}))
        assert code == 1000 and "Connection refused" in got[1][1].decode(), (code, got)

        # Every session's fd released (the connections into the pod too).
        wait_for(lambda: len(monitord_fds(pods)) <= len(fds), timeout=10,
                 what=f"monitord's fds back to {fds}, not {monitord_fds(pods)}")
    finally:
        for s in servers:
            s.kill()
            s.wait()


def test_ws_portforward_refusals(pods, ws_ok):
    pod = pods.run(name="wspfbad")
    port = free_port()
    url = ws(pf_url(pods, pod, [port]))
    # Bad ports: 400 before the token is taken.
    for q in ("?port=abc", "?port=0", "?port=65536", "?port=", f"?port={port},",
              f"?port={port}&port=-1", "?port=" + ",".join(["1"] * 33)):
        assert status_of(url + q) == 400, q
    # A port the call did not name: 400 (the token is used).
    assert status_of(url + f"?port={port + 1}") == 400
    assert status_of(url + f"?port={port}") == 404
    # No ?port= and a call that named no port: nothing to forward.
    assert status_of(ws(pf_url(pods, pod))) == 400

    async def refused_protocol(u):
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with connect(u, ("channel.k8s.io",)):
                pass
        return e.value.status_code
    assert asyncio.run(refused_protocol(ws(pf_url(pods, pod, [port])))) == 403
