"""Exec and Attach over WebSocket (RFC 6455) through the real socket and
monitord's streaming server, driven by a client that is not ours: Python's
`websockets` (Debian's python3-websockets), speaking the channel protocols
of the kubelet's wsstream (v4.channel.k8s.io, v4.base64.channel.k8s.io,
channel.k8s.io, none). Hostile frames go over a raw socket. Containers as
in test_execsync.py (monitord's CreateMonitor on real runc bundles).

What is checked: the handshake (accept key computed here with hashlib,
subprotocol chosen, the bad ones refused: version, key, method, protocol,
used token), the opening empty message, echo and the v4 Success status,
`exit 7` as NonZeroExitCode 7, the older protocols' text status, base64
text frames, `cat` echoing stdin sent fragmented with a ping between the
fragments (the pong seen), the client's close answered and its exec killed,
a tty seeing its resize (`stty size`), two attachers at once, unmasked and
oversized frames closing that connection only (1002, 1009) while another
session runs on; 50 sessions live at once; a client that stops reading
leaving the process blocked on its full stdout pipe with a bounded amount
in between, and every byte arriving once it reads.
"""
import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import urllib.parse

import pytest

from conftest import api, wait_for
from test_attach import start
from test_execsync import left_in_cgroup, running
from test_monitor import Env, missing, skip_unless_ready  # noqa: F401
from test_stream_exec import running_with_pts

try:
    import websockets
except ImportError:  # pragma: no cover
    websockets = None

pytestmark = [skip_unless_ready(missing, "real runc bundles")]

V4 = "v4.channel.k8s.io"
V4B64 = "v4.base64.channel.k8s.io"
ECHO = 'while read l; do echo "got $l"; [ "$l" = quit ] && exit 3; done'


@pytest.fixture
def env(suite):
    if websockets is None:
        if os.environ.get("CI") == "true":
            pytest.fail("python3-websockets is required")
        pytest.skip("python3-websockets missing")
    e = Env(suite)
    yield e
    e.cleanup()


def exec_url(env, cid, cmd, tty=False, stdin=False, stdout=True, stderr=False):
    req = api.ExecRequest(container_id=cid, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout,
                          stderr=stderr)
    return env.suite.cri.call("Exec", req, api.ExecResponse).url


def attach_url(env, cid, stdin=False):
    req = api.AttachRequest(container_id=cid, stdin=stdin, stdout=True)
    return env.suite.cri.call("Attach", req, api.AttachResponse).url


def ws(url):
    return "ws" + url[len("http"):]


def connect(url, protocols=(V4,)):
    return websockets.connect(ws(url), subprotocols=list(protocols) if protocols else None,
                              max_size=None, ping_interval=None, close_timeout=10)


def frame(conn, ch, data=b""):
    """A message of ours on channel ch under conn's protocol."""
    if conn.subprotocol and "base64" in conn.subprotocol:
        return str(ch) + base64.b64encode(data).decode()
    return bytes([ch]) + data


def unframe(conn, m):
    if conn.subprotocol and "base64" in conn.subprotocol:
        assert isinstance(m, str), m
        return int(m[0]), base64.b64decode(m[1:])
    assert isinstance(m, bytes), m
    return m[0], m[1:]


async def drain(conn, out, until=None):
    """Messages into out (channel: bytes) until the server closes (or the
    bytes of channel until[0] hold until[1]); the first message's channel
    and length as out["first"]."""
    async for m in conn:
        ch, data = unframe(conn, m)
        out.setdefault("first", (ch, len(data)))
        out[ch] = out.get(ch, b"") + data
        if until and until[1] in out.get(until[0], b""):
            return out
    return out


def session(url, protocols=(V4,), send=()):
    async def go():
        async with connect(url, protocols) as conn:
            for m in send:
                await conn.send(frame(conn, *m))
            out = await asyncio.wait_for(drain(conn, {}), 30)
            return conn.subprotocol, conn.close_code, out
    return asyncio.run(go())


def test_exec_status_and_protocols(env):
    cid, init = running(env)
    proto, code, out = session(exec_url(env, cid, ["echo", "hello"]))
    assert proto == V4 and code == 1000
    assert out["first"] == (1, 0)  # the empty message: the session is up
    assert out[1] == b"hello\n"
    assert json.loads(out[3]) == {"metadata": {}, "status": "Success"}

    url = exec_url(env, cid, ["sh", "-c", "echo out; echo err >&2; exit 7"], stderr=True)
    proto, code, out = session(url, (V4B64, V4))  # the client's order decides
    assert proto == V4B64 and (out[1], out[2]) == (b"out\n", b"err\n")
    st = json.loads(out[3])
    assert st["status"] == "Failure" and st["reason"] == "NonZeroExitCode", st
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}], st

    # no subprotocol: binary channel.k8s.io, the status as text
    proto, code, out = session(exec_url(env, cid, ["sh", "-c", "exit 3"]), None)
    assert proto is None and out["first"] == (1, 0)
    assert out[3].startswith(b"command terminated with non-zero exit code"), out
    proto, _, out = session(exec_url(env, cid, ["true"], stdout=False, stderr=True),
                            ["channel.k8s.io"])
    assert proto == "channel.k8s.io" and out["first"] == (2, 0) and 3 not in out, out
    wait_for(lambda: not left_in_cgroup(env, cid, init), what="nothing left of the execs")


def test_cat_fragmented_stdin_ping_and_client_close(env):
    """stdin as a message in three fragments with a ping between them; cat
    echoes it; the client's close is answered and ends the exec."""
    cid, init = running(env)
    url = exec_url(env, cid, ["cat"], stdin=True)
    data = os.urandom(100 * 1024)

    async def go():
        async with connect(url) as conn:
            pongs = []

            async def fragments():
                yield frame(conn, 0, data[:10])
                pongs.append(await conn.ping(b"between"))
                yield data[10:50000]
                yield data[50000:]

            await conn.send(fragments())
            await asyncio.wait_for(pongs[0], 10)
            out = await asyncio.wait_for(drain(conn, {}, until=(1, data)), 30)
            await conn.close()
            return conn.close_code, out
    code, out = asyncio.run(go())
    assert out[1] == data and code == 1000
    wait_for(lambda: not left_in_cgroup(env, cid, init), timeout=15,
             what="cat killed when the client closed")


def test_tty_resize(env):
    cid, _ = running_with_pts(env)
    url = exec_url(env, cid, ["sh", "-c", "read x; stty size; echo TERM=$TERM"], tty=True,
                   stdin=True)
    resize = json.dumps({"Width": 100, "Height": 40}).encode()
    _, code, out = session(url, send=[(4, resize), (0, b"go\n")])
    assert b"40 100" in out[1] and b"TERM=xterm" in out[1], out
    assert json.loads(out[3])["status"] == "Success"


def test_two_attachers(env):
    cid, _ = start(env, ECHO)

    async def go():
        async with connect(attach_url(env, cid)) as watcher, \
                connect(attach_url(env, cid, stdin=True)) as writer:
            seen = {}
            watch = asyncio.ensure_future(drain(watcher, seen, until=(1, b"got mark")))
            for _ in range(150):  # until the watcher is attached and saw a line
                await writer.send(frame(writer, 0, b"mark\n"))
                done, _ = await asyncio.wait([watch], timeout=0.2)
                if done:
                    break
            await asyncio.wait_for(watch, 10)
            await writer.send(frame(writer, 0, b"quit\n"))
            w_out = await asyncio.wait_for(drain(writer, {}), 30)
            rest = await asyncio.wait_for(drain(watcher, {}), 30)
            return seen, w_out, rest
    seen, w_out, rest = asyncio.run(go())
    assert b"got mark\n" in seen[1]
    assert w_out[1].endswith(b"got mark\ngot quit\n"), w_out
    # the attach's status is Success whatever the container's exit code
    assert json.loads(w_out[3])["status"] == "Success"
    assert rest[1].endswith(b"got quit\n") and json.loads(rest[3])["status"] == "Success"


def raw_handshake(url, headers=None, method="GET"):
    """A handshake over a plain socket: (socket, status, headers, key)."""
    u = urllib.parse.urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    h = {"Host": u.netloc, "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Protocol": V4}
    h.update(headers or {})
    req = f"{method} {u.path} HTTP/1.1\r\n" + \
        "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None) + "\r\n"
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    s.sendall(req.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        assert b, buf
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    got = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return s, int(lines[0].split()[1]), got, key, rest


def read_until_closed(s, rest):
    data = rest
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
    return data


def take_frame(data):
    """(opcode, payload, the rest) of a server's frame at the start of
    data, or None while data does not hold all of it."""
    if len(data) < 2:
        return None
    op, n, hl = data[0] & 0x0f, data[1] & 0x7f, 2
    if n == 126:
        hl = 4
    elif n == 127:
        hl = 10
    if len(data) < hl:
        return None
    if n == 126:
        n = struct.unpack(">H", data[2:4])[0]
    elif n == 127:
        n = struct.unpack(">Q", data[2:10])[0]
    if len(data) < hl + n:
        return None
    return op, data[hl:hl + n], data[hl + n:]


def close_code(data):
    """The code of the close frame among a server's frames."""
    while (f := take_frame(data)):
        op, payload, data = f
        if op == 0x8:
            return struct.unpack(">H", payload[:2])[0]
    return None


def test_handshake_refusals_and_garbage(env):
    cid, _ = running(env)
    slow = exec_url(env, cid, ["sh", "-c", "sleep 2; echo survived"])

    async def survivor():
        async with connect(slow) as conn:
            return await asyncio.wait_for(drain(conn, {}), 30)

    async def go():
        fut = asyncio.ensure_future(survivor())
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(None, hostile)
        return results, await fut

    def hostile():
        url = exec_url(env, cid, ["true"])
        for h, m, want in [({"Sec-WebSocket-Version": "8"}, "GET", 426),
                           ({"Sec-WebSocket-Key": "short"}, "GET", 400),
                           ({"Sec-WebSocket-Key": None}, "GET", 400),
                           ({}, "POST", 405)]:
            s, st, got, _, _ = raw_handshake(url, h, m)
            s.close()
            assert st == want, (h, m, st)
            if want == 426:
                assert got.get("sec-websocket-version") == "13", got
        s, st, _, _, _ = raw_handshake(url, {"Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
        s.close()
        assert st == 403  # the token is used now
        s, st, _, _, _ = raw_handshake(url)
        s.close()
        assert st == 404
        codes = []
        for bad in (b"\x82\x02\x00x",  # not masked
                    b"\x82\xff" + struct.pack(">Q", 1 << 20) + b"mask"):  # 1 MiB
            s, st, got, key, rest = raw_handshake(exec_url(env, cid, ["sleep", "30"]))
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            assert st == 101 and got["sec-websocket-accept"] == accept, got
            assert got["sec-websocket-protocol"] == V4
            s.sendall(bad)
            codes.append(close_code(read_until_closed(s, rest)))
            s.close()
        return codes

    codes, out = asyncio.run(go())
    assert codes == [1002, 1009]
    assert out[1] == b"survived\n"
    _, code, out = session(exec_url(env, cid, ["echo", "again"]))
    assert out[1] == b"again\n" and code == 1000


def test_fifty_concurrent_sessions(env):
    """50 execs live at once: each says it runs, then waits for a line on
    stdin, sent only once all 50 have said so."""
    cid, init = running(env)
    n = 50
    urls = [exec_url(env, cid, ["sh", "-c", f"echo up {i}; read x; echo bye $x"], stdin=True)
            for i in range(n)]

    async def one(i, all_up):
        async with connect(urls[i]) as conn:
            out = await drain(conn, {}, until=(1, f"up {i}\n".encode()))
            all_up.append(i)
            while len(all_up) < n:
                await asyncio.sleep(0.05)
            await conn.send(frame(conn, 0, f"{i}\n".encode()))
            return await drain(conn, out)

    async def go():
        all_up = []
        return await asyncio.wait_for(asyncio.gather(*(one(i, all_up) for i in range(n))), 120)
    results = asyncio.run(go())
    for i, out in enumerate(results):
        assert out[1] == f"up {i}\nbye {i}\n".encode(), out
        assert json.loads(out[3])["status"] == "Success"
    wait_for(lambda: not left_in_cgroup(env, cid, init), what="nothing left of the execs")


def test_a_client_that_stops_reading_blocks_the_process(env):
    """A client that reads nothing: monitord buffers a bounded amount (its
    output buffer, then the socket's), the exec's stdout pipe fills and the
    process blocks in write; once the client reads, every byte comes."""
    cid, init = running(env)
    total = 24 << 20
    url = exec_url(env, cid, ["head", "-c", str(total), "/dev/zero"])
    u = urllib.parse.urlsplit(url)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((u.hostname, u.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {V4}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head

    def writer():
        return next((p for p, cmd in left_in_cgroup(env, cid, init) if cmd[:1] == [b"head"]),
                    None)

    def blocked():
        p = writer()
        try:
            with open(f"/proc/{p}/wchan") as f:
                # pipe_write, anon_pipe_write as of Linux 6.x
                return p if f.read().endswith("pipe_write") else None
        except (FileNotFoundError, TypeError):
            return None

    found = []
    wait_for(lambda: found.append(blocked()) or found[-1], timeout=30,
             what="head blocked writing its stdout")
    with open(f"/proc/{found[-1]}/io") as f:
        wchar = int(dict(ln.split(": ") for ln in f.read().split("\n") if ln)["wchar"])
    assert wchar < 12 << 20, wchar  # bounded: far from all of it
    # now read: every byte, then the status
    data, got, status = b"", 0, None
    s.settimeout(60)
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        data += b
        while (f := take_frame(data)):
            op, payload, data = f
            if op == 0x2 and payload[:1] == b"\x01":
                got += len(payload) - 1
            elif op == 0x2 and payload[:1] == b"\x03":
                status = json.loads(payload[1:])
    s.close()
    assert got == total and status == {"metadata": {}, "status": "Success"}, (got, status)
