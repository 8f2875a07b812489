"""Port-forward's connection into a pod (monitord/portfwd.h and its helper
cric-portfwd), through cric-fwd, into a real pod's pinned network namespace
(a CNI network: run under flock /tmp/cric-net.lock).

What is checked: two connections at once to a TCP echo server listening on
the pod's loopback only, 4 MiB each way, bytes identical; the [::1]
fallback; a port free in the pod while the host's same port listens is
refused (the connect happens inside the pod); host network (no namespace)
connects on the host; a missing or non-namespace path is a clear error.
"""
import os
import subprocess
import threading

from conftest import BUILD
from netutil import free_port, missing, net  # noqa: F401
from test_pods import netns_of, pods, skip_unless_ready  # noqa: F401

pytestmark = skip_unless_ready(missing, "pod sandboxes with real CNI networks")

FWD = os.path.join(BUILD, "tools", "cric-fwd")
HELPER = os.path.join(BUILD, "bin", "cric-portfwd")

ECHO = """
import socket, sys, threading
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("ready", flush=True)
def echo(c):
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""


def echo_server(addr, port, netns=None):
    cmd = ["/usr/bin/python3", "-c", ECHO, addr, str(port)]
    if netns:
        cmd = ["nsenter", "--net=" + netns] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def forward(netns, port, data):
    r = subprocess.run([FWD, HELPER, netns or "-", str(port)], input=data, capture_output=True,
                       timeout=60)
    return r.returncode, r.stdout, r.stderr.decode()


def test_forward_into_a_pod(pods, tmp_path):
    assert os.access(FWD, os.X_OK), f"{FWD} not built"
    pod = pods.run(name="fwd")
    netns = netns_of(pods, pod)
    port, port6, host_only = free_port(), free_port(), free_port()
    servers = [echo_server("127.0.0.1", port, netns)]
    host = echo_server("127.0.0.1", host_only)
    servers.append(host)
    try:
        # Two connections at once, 4 MiB each way, bytes identical.
        payloads = [os.urandom(4 << 20), os.urandom(4 << 20)]
        results = [None, None]

        def one(i):
            results[i] = forward(netns, port, payloads[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for i in range(2):
            rc, out, err = results[i]
            assert rc == 0 and err == "connected\n", err
            assert out == payloads[i], f"connection {i}: {len(out)} bytes back, not identical"

        # The host's listener is not the pod's: refused in the pod.
        rc, out, err = forward(netns, host_only, b"x")
        assert rc == 1
        assert (f"connect to 127.0.0.1:{host_only} or [::1]:{host_only} in the pod: "
                "Connection refused [ECONNREFUSED]") in err
        # Host network: the host's loopback.
        rc, out, err = forward(None, host_only, b"on the host")
        assert rc == 0 and out == b"on the host", err

        # [::1] when 127.0.0.1 refuses (when the pod's loopback has IPv6).
        has6 = subprocess.run(["nsenter", "--net=" + netns, "ip", "-6", "addr", "show", "lo"],
                              capture_output=True, text=True).stdout
        if "::1" in has6:
            servers.append(echo_server("::1", port6, netns))
            rc, out, err = forward(netns, port6, b"six")
            assert rc == 0 and out == b"six", err

        # Not a namespace; no such path.
        plain = tmp_path / "plain"
        plain.write_text("")
        rc, _, err = forward(str(plain), port, b"")
        assert rc == 1 and "enter the network namespace" in err and "[EINVAL]" in err, err
        rc, _, err = forward("/nonexistent/netns", port, b"")
        assert rc == 1 and "[ENOENT]" in err, err
        rc, _, err = forward(netns, 0, b"")
        assert rc == 1 and "[EINVAL]" in err, err
    finally:
        for s in servers:
            s.kill()
            s.wait()
