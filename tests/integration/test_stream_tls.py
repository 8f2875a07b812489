"""The streaming server over TLS (monitord.stream_tls_cert and
monitord.stream_tls_key): Exec through the real socket, the session over
https with clients that are not ours, the Go client of test_stream_exec.py
(SPDY/3.1, the certificate checked against -ca) and Python's `websockets`
(wss, an ssl context trusting the certificate). The certificate is made
here with the openssl CLI (self-signed, for IP 127.0.0.1). Containers as in
test_execsync.py (monitord's CreateMonitor on real runc bundles).

What is checked: the URLs are https; echo, `cat` with 256 KiB of stdin and
`exit 7` over SPDY in TLS; Exec over wss; a client that does not trust the
certificate fails its handshake (the token stays good); plain HTTP to the
TLS port gets no answer but a closed connection, and the server serves on;
the server closing the TLS connection at the end of a WebSocket session
(libmicrohttpd does not: monitord hangs it up) and no fd kept; the
configuration refused with the key named (one of the two, a missing
file, a key that is not PEM), monitord not starting.
"""
import asyncio
import json
import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import wait_for
from test_execsync import running
from test_monitor import Env, missing, skip_unless_ready  # noqa: F401
from test_stream_exec import client, exec_url, run  # noqa: F401

try:
    import websockets
except ImportError:  # pragma: no cover
    websockets = None

pytestmark = skip_unless_ready(missing, "real runc bundles")


@pytest.fixture
def env(suite):
    e = Env(suite)
    yield e
    e.cleanup()


@pytest.fixture
def cert(tmp_path):
    """(certificate, key): self-signed for 127.0.0.1, made by openssl."""
    c, k = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", k, "-out", c,
                        "-days", "1", "-subj", "/CN=cric-test",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return c, k


def monitord_fds(env):
    """monitord's open fds: {fd: what it is}."""
    d = f"/proc/{env.suite.pid('monitord')}/fd"
    out = {}
    for fd in os.listdir(d):
        try:
            out[fd] = os.readlink(os.path.join(d, fd))
        except FileNotFoundError:
            pass
    return out


def configure(suite, **monitord):
    suite.write_config({"monitord": monitord})
    suite.kill("monitord")
    suite.up()


def test_exec_over_tls(env, client, cert):
    if websockets is None:
        pytest.fail("python3-websockets is required")
    ca, key = cert
    configure(env.suite, stream_tls_cert=ca, stream_tls_key=key)
    assert "(TLS)" in env.suite.log("monitord")
    cid, _ = running(env)
    url = exec_url(env, cid, ["echo", "hello"])
    fds = monitord_fds(env)  # the gateway's connection to monitord made
    assert url.startswith("https://127.0.0.1:"), url

    # Not trusted: the handshake fails, before HTTP (the token stays good).
    rc, _, err = run(client, url)
    assert rc == 100 and "certificate" in err, err
    rc, out, err = run(client, url, "-ca", ca)
    assert (rc, out) == (0, b"hello\n"), err

    data = os.urandom(256 << 10)
    rc, out, err = run(client, exec_url(env, cid, ["cat"], stdin=True), "-ca", ca, "-stdin",
                       stdin=data)
    assert rc == 0 and out == data, err
    rc, _, err = run(client, exec_url(env, cid, ["sh", "-c", "exit 7"]), "-ca", ca)
    assert rc == 7 and "NonZeroExitCode" in err, err

    # Plain HTTP to the TLS port: no HTTP answer, the connection closed.
    host, port = url.split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"GET /exec/0123 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while (b := s.recv(4096)):
            got += b
    assert not got.startswith(b"HTTP/"), got

    # WebSocket over TLS (wss): the server served on.
    ctx = ssl.create_default_context(cafile=ca)

    async def wss(u):
        async with websockets.connect("wss" + u[len("https"):], ssl=ctx,
                                      subprotocols=["v4.channel.k8s.io"],
                                      ping_interval=None) as conn:
            return [m async for m in conn]
    t0 = time.monotonic()
    msgs = asyncio.run(asyncio.wait_for(wss(exec_url(env, cid, ["echo", "tls"])), 30))
    assert b"\x01tls\n" in msgs, msgs
    assert json.loads(msgs[-1][1:]) == {"metadata": {}, "status": "Success"}, msgs
    # The server closed the TLS connection after the close handshake (the
    # client waits for that up to its close_timeout, 10 s).
    assert time.monotonic() - t0 < 5
    # Every connection gone from monitord (none kept by libmicrohttpd).
    try:
        wait_for(lambda: len(monitord_fds(env)) <= len(fds), timeout=10)
    except AssertionError:
        raise AssertionError(f"monitord's fds: {fds} before, {monitord_fds(env)} now")


def test_tls_config_refused(suite, cert):
    ca, key = cert
    suite.kill("monitord")
    for bad, want in [({"stream_tls_cert": ca}, '"monitord.stream_tls_key" must be set with'),
                      ({"stream_tls_key": key}, '"monitord.stream_tls_cert" must be set with'),
                      ({"stream_tls_cert": ca + ".gone", "stream_tls_key": key},
                       f'read the TLS certificate "{ca}.gone": No such file'),
                      ({"stream_tls_cert": ca, "stream_tls_key": ca},
                       "libmicrohttpd did not start"),
                      ({"stream_tls_cert": 7, "stream_tls_key": key},
                       '"monitord.stream_tls_cert" must be the path')]:
        suite.write_config({"monitord": bad})
        r = suite.up(check=False)
        assert r.returncode != 0, bad
        assert want in suite.log("monitord"), (bad, suite.log("monitord")[-2000:])
    suite.write_config({})
    suite.up()
