"""Each daemon runs with exactly its declared capabilities (DESIGN.md)."""
import os
import stat

import pytest

from conftest import DAEMONS

# capability numbers (linux/capability.h)
CAP = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "SETPCAP": 8, "NET_RAW": 13,
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
    "stored": (mask("SYS_ADMIN", "CHOWN", "FOWNER", "MKNOD", "DAC_OVERRIDE", "SETFCAP"), True),
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


def test_daemon_refuses_other_users(suite):
    """Only root (or the configured service user) may call a daemon: with the
    socket opened to everyone, a connection from uid 65534 is still dropped."""
    sock = os.path.join(suite.ipc_dir, "imaged.sock")
    os.chmod(sock, 0o666)
    for p in [suite.root, os.path.dirname(suite.ipc_dir), os.path.dirname(os.path.dirname(suite.ipc_dir))]:
        os.chmod(p, os.stat(p).st_mode | stat.S_IXOTH | stat.S_IROTH)
    r = suite.ctl("--timeout", "2", "health", user=65534)
    assert r.returncode != 0
    assert "imaged    DOWN" in r.stdout, r.stdout
    assert "connection from uid 65534 refused" in suite.log("imaged")
    # root still gets through (bounded wait: one call can be slow on a
    # machine busy with other builds; the refusal above is what is tested)
    from conftest import wait_for
    last = []
    def root_ok():
        last[:] = [suite.ctl("health")]
        return last[0].returncode == 0
    try:
        wait_for(root_ok, timeout=40, what="root's health call")
    except AssertionError:
        raise AssertionError(f"root's health call kept failing:\n{last[0].stdout}{last[0].stderr}"
                             f"\nimaged log:\n{suite.log('imaged')[-3000:]}")
