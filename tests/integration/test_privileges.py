"""Each daemon runs with exactly its declared capabilities (DESIGN.md)."""
import os
import stat

import pytest

from conftest import DAEMONS

# capability numbers (linux/capability.h)
CAP = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "SETPCAP": 8, "NET_RAW": 13,
       "NET_ADMIN": 12, "SYS_ADMIN": 21, "MKNOD": 27, "SETFCAP": 31}


def mask(*names):
    m = 0
    for n in names:
        m |= 1 << CAP[n]
    return m


def status_fields(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def own_bounding_set():
    return int(status_fields("/proc/self/status")["CapBnd"], 16)


EXPECTED = {
    "gateway": (mask(), True),
    "imaged": (mask(), True),
    "stored": (mask("SYS_ADMIN", "CHOWN", "FOWNER", "FSETID", "MKNOD", "DAC_OVERRIDE",
                     "SETFCAP"), True),
    "netd": (mask("NET_ADMIN", "NET_RAW", "SYS_ADMIN"), False),
    "runtimed": (None, False),  # what it was given: runc needs it
    "monitord": (None, False),
}


@pytest.mark.parametrize("daemon", DAEMONS)
def test_capability_sets_exact_on_every_thread(suite, daemon):
    want, nnp = EXPECTED[daemon]
    if want is None:
        want = own_bounding_set()
    pid = suite.pid(daemon)
    tasks = os.listdir(f"/proc/{pid}/task")
    assert len(tasks) > 1  # threaded: each thread must carry the reduced sets
    for tid in tasks:
        st = status_fields(f"/proc/{pid}/task/{tid}/status")
        assert int(st["CapEff"], 16) == want, f"{daemon} thread {tid} CapEff {st['CapEff']}"
        assert int(st["CapPrm"], 16) == want, f"{daemon} thread {tid} CapPrm {st['CapPrm']}"
        assert int(st["CapBnd"], 16) == want, f"{daemon} thread {tid} CapBnd {st['CapBnd']}"
        assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
        assert st["NoNewPrivs"] == ("1" if nnp else "0"), f"{daemon} NoNewPrivs"


# One connection as uid 65534 that completes nng's SP handshake (the 8-byte
# header: "\0SP\0", the req0 protocol id 0x0030, two reserved bytes), so that
# the daemon sees a peer and must drop it; EOF proves it did.
REFUSED_PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
while s.recv(64):
    pass
"""


def test_daemon_refuses_other_users(suite):
    """Only root (or the configured service user) may call a daemon: with the
    socket opened to everyone, a connection from uid 65534 is still dropped."""
    import subprocess
    sock = os.path.join(suite.ipc_dir, "imaged.sock")
    os.chmod(sock, 0o666)
    for p in [suite.root, os.path.dirname(suite.ipc_dir), os.path.dirname(os.path.dirname(suite.ipc_dir))]:
        os.chmod(p, os.stat(p).st_mode | stat.S_IXOTH | stat.S_IROTH)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "/usr/bin/python3", "-c", REFUSED_PROBE, sock],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"uid 65534 was not disconnected:\n{r.stderr}"
    assert "connection from uid 65534 refused" in suite.log("imaged")
    # root still gets through
    r = suite.ctl("health")
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\nimaged log:\n{suite.log('imaged')[-3000:]}"
