"""Each daemon runs with exactly its declared capabilities and identity, and
takes each method only from the callers its table names (DESIGN.md, "Trust
between daemons")."""
import grp
import json
import os
import pathlib
import pwd
import secrets
import stat
import subprocess

import pytest

from conftest import BUILD, DAEMONS, api
from netutil import net  # noqa: F401  (fixture)
from test_pods import Pods

CRIC_CALL = os.path.join(BUILD, "tools", "cric-call")
USERS = {"gateway": "cric-gateway", "imaged": "cric-imaged"}


def ids():
    try:
        return ({d: pwd.getpwnam(u).pw_uid for d, u in USERS.items()},
                grp.getgrnam("cric").gr_gid)
    except KeyError as e:
        pytest.fail(f"{e}: the daemons' users are missing (run deploy/cric-users)")


def as_user(user, *cmd, timeout=60):
    """Run cmd as user with group cric, as the unit's User=/Group= would."""
    return subprocess.run(["setpriv", f"--reuid={user}", "--regid=cric", "--init-groups",
                           *cmd], capture_output=True, text=True, timeout=timeout, cwd="/")


def cric_call(suite, method, req, user=None, daemon=None):
    cmd = [CRIC_CALL, "--root", suite.root, "--timeout", "30"]
    if daemon:
        cmd += ["--daemon", daemon]
    cmd += [method, json.dumps(req)]
    r = as_user(user, *cmd) if user else subprocess.run(cmd, capture_output=True, text=True,
                                                        timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)

# capability numbers (linux/capability.h)
CAP = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "SETPCAP": 8, "NET_RAW": 13,
       "NET_ADMIN": 12, "SYS_ADMIN": 21, "MKNOD": 27, "SETFCAP": 31,
       "SETUID": 7, "SETGID": 6}


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
                     "SETFCAP", "SETUID", "SETGID"), True),
    "netd": (mask("NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SETUID", "SETGID"), False),
    "runtimed": (None, False),  # what it was given: runc needs it
    "monitord": (None, False),
}


@pytest.mark.parametrize("daemon", DAEMONS)
def test_capability_sets_exact_on_every_thread(suite, daemon):
    want, nnp = EXPECTED[daemon]
    if want is None:
        want = own_bounding_set()
    uids, cric = ids()
    pid = suite.pid(daemon)
    tasks = os.listdir(f"/proc/{pid}/task")
    assert len(tasks) > 1  # threaded: each thread must carry the reduced sets
    for tid in tasks:
        st = status_fields(f"/proc/{pid}/task/{tid}/status")
        # The gateway and imaged are their own users (real, effective,
        # saved, fs) in group cric; the others root.
        uid, gid = (uids[daemon], cric) if daemon in uids else (0, 0)
        assert st["Uid"].split() == [str(uid)] * 4, f"{daemon} thread {tid} Uid {st['Uid']}"
        assert st["Gid"].split() == [str(gid)] * 4, f"{daemon} thread {tid} Gid {st['Gid']}"
        if daemon in uids:
            assert st["Groups"].split() == [str(cric)], f"{daemon} Groups {st['Groups']}"
        # monitord's streaming threads (libmicrohttpd's, the one waiting to
        # start it at the first connection: MHD-wait, the sessions') face
        # the network and hold no capability at all.
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            comm = f.read().strip()
        bare = daemon == "monitord" and (comm.startswith("MHD-") or comm == "cric-session")
        eff = 0 if bare else want
        assert int(st["CapEff"], 16) == eff, f"{daemon} thread {tid} ({comm}) CapEff {st['CapEff']}"
        assert int(st["CapPrm"], 16) == eff, f"{daemon} thread {tid} ({comm}) CapPrm {st['CapPrm']}"
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
    """Only root, the daemons' users and group cric may call a daemon: with
    the socket opened to everyone, a connection from uid 65534 is still
    dropped."""
    sock = os.path.realpath(os.path.join(suite.ipc_dir, "imaged.sock"))
    os.chmod(sock, 0o666)
    run = os.path.dirname(suite.ipc_dir)
    for p in [suite.root, os.path.dirname(os.path.dirname(run)), os.path.dirname(run), run,
              os.path.dirname(sock)]:
        os.chmod(p, os.stat(p).st_mode | stat.S_IXOTH | stat.S_IROTH)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "/usr/bin/python3", "-c", REFUSED_PROBE, sock],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"uid 65534 was not disconnected:\n{r.stderr}"
    assert "connection from uid 65534 refused" in suite.log("imaged")
    # root still gets through
    r = suite.ctl("health")
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\nimaged log:\n{suite.log('imaged')[-3000:]}"


def refused_in_log(suite, daemon, method, uid):
    return [line for line in suite.log(daemon).splitlines()
            if f"refused: {method} may not be called by uid {uid} pid " in line
            and "(imaged)" in line]


def test_imaged_user_is_refused_everything_but_its_methods(suite, net):  # noqa: F811
    """A client running as imaged's user (what a compromised imaged is) gets
    PERMISSION_DENIED from stored's CreateRootfs, netd's SetupPodNetwork and
    runtimed's StopPodSandbox, each logged with its uid, pid and executable,
    and nothing happens: the pod keeps running, no rootfs, no network."""
    uids, _ = ids()
    pods = Pods(suite, net)
    try:
        pod = pods.run()
        before = net.counts()
        rootfs_dir = os.path.join(suite.root, "run/cric/stored/rootfs")
        rootfs_before = sorted(os.listdir(rootfs_dir)) if os.path.isdir(rootfs_dir) else []
        cid = secrets.token_hex(32)
        calls = [
            ("stored", "cric.stored.CreateRootfs",
             {"container_id": cid, "chain_id": "sha256:" + secrets.token_hex(32)}),
            ("netd", "cric.netd.SetupPodNetwork",
             {"pod_id": secrets.token_hex(32), "name": "evil", "namespace": "default",
              "uid": "u1"}),
            ("runtimed", "/runtime.v1.RuntimeService/StopPodSandbox", {"pod_sandbox_id": pod}),
            ("runtimed", "/runtime.v1.RuntimeService/RemovePodSandbox", {"pod_sandbox_id": pod}),
        ]
        for daemon, method, req in calls:
            r = cric_call(suite, method, req, user="cric-imaged")
            assert r["code"] == 7 and r["codeName"] == "PERMISSION_DENIED", (method, r)
            assert f"uid {uids['imaged']}" in r["message"], r
            lines = refused_in_log(suite, daemon, method, uids["imaged"])
            assert len(lines) == 1, suite.log(daemon)[-2000:]
            assert f'exe "{CRIC_CALL}"' in lines[0] or 'comm "cric-call"' in lines[0], lines
        # Nothing happened.
        st = pods.status(pod)
        assert st.status.state == api.SANDBOX_READY
        assert net.counts() == before
        assert (sorted(os.listdir(rootfs_dir)) if os.path.isdir(rootfs_dir) else []) == \
            rootfs_before
        # Health answers anyone in group cric; root's admin tool still works,
        # and gets past the check to the handler (which finds no such chain).
        r = cric_call(suite, "cric.Health", {}, user="cric-imaged", daemon="stored")
        assert r["code"] == 0, r
        r = cric_call(suite, "cric.stored.CreateRootfs",
                      {"container_id": cid, "chain_id": "sha256:" + secrets.token_hex(32)})
        assert r["code"] not in (0, 7), r
        r = suite.ctl("health")
        assert r.returncode == 0, r.stdout + r.stderr
        # CRI methods come from the gateway only, not even from root's tools.
        r = cric_call(suite, "/runtime.v1.RuntimeService/StopPodSandbox", {"pod_sandbox_id": pod})
        assert r["code"] == 7, r
        assert pods.status(pod).status.state == api.SANDBOX_READY
    finally:
        errors = pods.cleanup()
    assert not errors, errors


# Run as cric-imaged: every way to take or reach another daemon's socket.
TAKEOVER = r"""
import errno, json, os, socket, sys
ipc, cri, gw_sock = sys.argv[1:4]
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "done"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
netd = os.path.join(ipc, "netd.sock")
attempt("unlink", lambda: os.unlink(netd))
attempt("rename", lambda: os.rename(netd, os.path.join(ipc, "x.sock")))
attempt("create", lambda: open(os.path.join(ipc, "stored.sock.new"), "w"))
attempt("symlink", lambda: os.symlink("/tmp/evil.sock", os.path.join(ipc, "new.sock")))
attempt("replace_link", lambda: os.rename(os.path.join(ipc, "imaged.sock"), netd))
attempt("cri_unlink", lambda: os.unlink(cri))
attempt("gw_unlink", lambda: os.unlink(gw_sock))
def connect_cri():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(cri)
attempt("cri_connect", connect_cri)
def bind_new():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(os.path.join(ipc, "evil.sock"))
attempt("bind", bind_new)
print(json.dumps(out))
"""


def test_imaged_user_cannot_replace_or_reach_other_sockets(suite):
    """The ipc directory is root's to write: imaged's user cannot unlink,
    rename, create or bind another daemon's socket there, nor touch the CRI
    socket or its link; the CRI socket is not open to group cric (else a
    compromised imaged could ask the gateway for a privileged pod)."""
    gw_sock = os.path.realpath(suite.socket)
    r = as_user("cric-imaged", "/usr/bin/python3", "-c", TAKEOVER, suite.ipc_dir, suite.socket,
                gw_sock)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert all(v == "EACCES" for v in got.values()), got
    for d in ["stored", "netd", "runtimed", "monitord"]:
        assert stat.S_ISSOCK(os.lstat(os.path.join(suite.ipc_dir, d + ".sock")).st_mode)
    assert suite.ctl("health").returncode == 0


# A listener as uid 65534 that answers the SP handshake as a rep0 server and
# reports how many bytes its client sent after the 8-byte header.
FAKE_LISTENER = r"""
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(4)
print("ready", flush=True)
c, _ = s.accept()
c.settimeout(20)
hdr = b""
while len(hdr) < 8:
    b = c.recv(8 - len(hdr))
    if not b:
        break
    hdr += b
c.sendall(b"\x00SP\x00\x00\x31\x00\x00")
n = 0
try:
    while True:
        b = c.recv(4096)
        if not b:
            break
        n += len(b)
except socket.timeout:
    print("no-eof", flush=True)
print("after-header", n, flush=True)
"""


@pytest.fixture
def open_tmp():
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="cric-listener-")  # uid 65534 must reach it
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_client_checks_the_listener_before_sending(open_tmp):
    """A process that got a daemon's socket path (here: a config pointing the
    ipc dir elsewhere) is not root and not the daemon's user: the client
    drops the connection after the handshake and sends it nothing."""
    tmp_path = open_tmp
    d = tmp_path / "ipc"
    d.mkdir()
    os.chmod(d, 0o777)
    conf = tmp_path / "cric.json"
    conf.write_text(json.dumps({"ipc_dir": str(d), "run_dir": str(tmp_path / "run"),
                                "state_dir": str(tmp_path / "state")}))
    fake = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "/usr/bin/python3", "-c", FAKE_LISTENER, str(d / "netd.sock")],
                            stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        assert fake.stdout.readline().strip() == "ready"
        r = subprocess.run([CRIC_CALL, "--config", str(conf), "--timeout", "3",
                            "cric.netd.NetworkStatus", "{}"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["code"] == 14, r.stdout  # UNAVAILABLE
        assert "is uid 65534, not netd's user" in r.stderr, r.stderr
        out, _ = fake.communicate(timeout=30)
        assert "after-header 0" in out, out
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()
