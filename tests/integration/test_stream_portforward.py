"""CRI PortForward through the real socket and monitord's streaming server,
driven by the Go client of test_stream_exec.py in its port-forward mode
(portforward.k8s.io over SPDY/3.1, error and data streams paired by
requestID, as client-go's portforward speaks it), into real pods with a
CNI network (run under flock /tmp/cric-net.lock). The echo server runs in
the pod's network namespace (listening on its loopback only), as
test_portfwd.py's.

What is checked: PortForward's answers (URL shape; unknown pod NOT_FOUND,
stopped pod FAILED_PRECONDITION, bad ports INVALID_ARGUMENT); two
connections at once with 10 MiB each way, bytes identical, the client's
FIN reaching the server (the echo ends, the data stream ends); a refused
port as text on the error stream, the session still forwarding after it;
a host-network pod forwarding on the host (16 connections at once);
tokens single-use; the two streams of a connection taken in either order;
streams for a port not asked for (or port 0) reset; with
stream_pair_timeout_s at 1 s, a lone data stream reset and a lone error
stream told "timed out waiting for streams", their SPDY slots freed (64
lone streams, then pairs, in one session) and no fd left.
"""
import os
import re
import socket
import time
import urllib.parse

import grpc
import pytest

from conftest import api, wait_for
from netutil import free_port, missing, net  # noqa: F401
from test_pods import netns_of, pods, skip_unless_ready  # noqa: F401
from test_portfwd import echo_server
from test_stream_exec import client, run  # noqa: F401

pytestmark = skip_unless_ready(missing, "pod sandboxes with real CNI networks")

CONN = re.compile(r'^CONN (\d+) PORT (\d+) SENT (\d+) GOT (\d+) MATCH (\w+) EOF (\w+) '
                  r'ERROR "(.*)"$')


def pf_url(pods, pod, ports=()):
    return pods.cri.call("PortForward", api.PortForwardRequest(pod_sandbox_id=pod,
                                                               port=list(ports)),
                         api.PortForwardResponse).url


def start_stream_server(url):
    """monitord starts its streaming server at the first connection
    (monitord/lazyhttp.h), which opens the server's own fds: one plain
    request first, so that fds counted after it are the sessions' only."""
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.recv(1024).startswith(b"HTTP/1.")


def conns(out):
    """The client's lines: {request id: (port, sent, got, match, eof, error)}."""
    res = {}
    for line in out.decode().splitlines():
        m = CONN.match(line)
        assert m, line
        res[int(m[1])] = (int(m[2]), int(m[3]), int(m[4]), m[5] == "true", m[6] == "true",
                          m[7])
    return res


def forward(client, url, spec, *args, timeout=90):
    return run(client, url, "-portforward", spec, *args, timeout=timeout)


def code_of(pods, pod, ports=()):
    with pytest.raises(grpc.RpcError) as e:
        pf_url(pods, pod, ports)
    return e.value.code(), e.value.details()


def test_portforward_into_a_pod(pods, client):
    pod = pods.run(name="pf")
    netns = netns_of(pods, pod)
    port, refused = free_port(), free_port()
    server = echo_server("127.0.0.1", port, netns)
    try:
        url = pf_url(pods, pod[:12], [port])
        assert re.match(r"^http://127\.0\.0\.1:\d+/portforward/[0-9a-f]{32}$", url), url
        # Two connections at once, 10 MiB each way; the client's FIN ends
        # the echo, whose end ends the data stream.
        big = 10 << 20
        rc, out, err = forward(client, url, f"{port}:{big},{port}:{big}")
        assert "PROTOCOL portforward.k8s.io" in err
        res = conns(out)
        assert res == {0: (port, big, big, True, True, ""), 1: (port, big, big, True, True, "")}, \
            (res, err)
        assert rc == 0, err
        # The token was used.
        rc, out, err = forward(client, url, f"{port}:10")
        assert rc == 101 and "HTTP 404" in err, err

        # A refused port: the error stream says so; the same session then
        # forwards again (the data streams opened first this time).
        url = pf_url(pods, pod)
        rc, out, err = forward(client, url, f"{refused}:0;{port}:100000", "-data-first")
        res = conns(out)
        assert rc == 1, err
        assert res[0][:2] == (refused, 0) and res[0][4], res
        assert f"error forwarding port {refused} to pod {pod}" in res[0][5], res
        assert "Connection refused" in res[0][5], res
        assert res[1] == (port, 100000, 100000, True, True, ""), (res, err)

        # Streams for a port the call did not name, or for port 0: reset
        # (the session goes on).
        url = pf_url(pods, pod, [port])
        rc, out, err = forward(client, url, f"{refused}:10;0:10;{port}:1000")
        res = conns(out)
        assert rc == 1 and res[2] == (port, 1000, 1000, True, True, ""), (res, err)
        for i in (0, 1):
            assert "Stream reset" in res[i][5], res
    finally:
        server.kill()
        server.wait()


def test_portforward_in_a_host_network_pod(pods, client):
    pod = pods.run(name="pfhost", network=api.NODE, ipc=api.NODE, pid=api.POD)
    port = free_port()
    server = echo_server("127.0.0.1", port)  # on the host
    try:
        # 16 connections at once in one session.
        rc, out, err = forward(client, pf_url(pods, pod), ",".join([f"{port}:300000"] * 16))
        assert conns(out) == {i: (port, 300000, 300000, True, True, "") for i in range(16)}, err
        assert rc == 0, err
    finally:
        server.kill()
        server.wait()


def test_portforward_refused_calls(pods):
    pod = pods.run(name="pfbad")
    assert code_of(pods, "ab" * 32)[0] == grpc.StatusCode.NOT_FOUND
    assert code_of(pods, "")[0] == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = code_of(pods, pod, [0])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "port 0" in msg
    assert code_of(pods, pod, [65536])[0] == grpc.StatusCode.INVALID_ARGUMENT
    pods.stop(pod)
    code, msg = code_of(pods, pod, [80])
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not ready" in msg, msg


def monitord_fds(pods):
    return len(os.listdir(f"/proc/{pods.suite.pid('monitord')}/fd"))


def test_portforward_pair_timeout(pods, client):
    """monitord.stream_pair_timeout_s: a data stream whose error stream
    never comes is reset, an error stream whose data stream never comes
    gets "timed out waiting for streams" and ends; the session forwards on
    after them, and ends leaving no fd behind."""
    pods.suite.write_config({"monitord": {"stream_pair_timeout_s": 1}})
    pods.suite.kill("monitord")
    pods.suite.up()
    pod = pods.run(name="pftimeout")
    port = free_port()
    server = echo_server("127.0.0.1", port, netns_of(pods, pod))
    try:
        start_stream_server(pf_url(pods, pod))  # and the gateway's connection to monitord is up
        fds = monitord_fds(pods)
        for kind, want in (("data", " [reset]"), ("error", "timed out waiting for streams")):
            t0 = time.monotonic()
            rc, out, err = forward(client, pf_url(pods, pod), f"{port}:{kind},{port}:{kind}")
            took = time.monotonic() - t0
            assert conns(out) == {i: (port, 0, 0, False, True, want) for i in (0, 1)}, (out, err)
            assert 1 <= took < 10, took
        # In one session: twice 32 lone data streams (the pairs a session
        # holds at once), reset, leave their slots free for what comes after
        # them (SPDY's 64 streams would be taken, and the last refused).
        lone = ",".join([f"{port}:data"] * 32)
        rc, out, err = forward(client, pf_url(pods, pod), f"{lone};{lone};{port}:1000,{port}:1000")
        res = conns(out)
        assert len(res) == 66 and all(res[i][4:] == (True, " [reset]") for i in range(64)), res
        assert res[64] == res[65] == (port, 1000, 1000, True, True, ""), res
        wait_for(lambda: monitord_fds(pods) <= fds, timeout=10, what="monitord's fds released")
    finally:
        server.kill()
        server.wait()
