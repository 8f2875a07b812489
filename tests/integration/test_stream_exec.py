"""CRI Exec through the real socket and monitord's streaming server, driven
by a client that is not ours: tests/integration/streamclient (Go, on
Debian's docker/spdystream; built here), speaking the remotecommand
protocol over SPDY/3.1 as kubectl, crictl and the kubelet do. Containers
as in test_execsync.py (monitord's CreateMonitor on real runc bundles, no
pod, no network).

What is checked: Exec's answers (URL shape, errors), echo, cat echoing
stdin, `exit 7` as NonZeroExitCode 7 in the v4 status, a tty seeing its
resize (`stty size`), protocol negotiation (v4 first, v2 text status, none
in common: 403), tokens single-use and refused when unknown, 20 sessions at
once, a client hanging up mid-exec (pipes, tty) leaving no process in the
container's cgroup, garbage frames closing that connection only, the HTTP
thread without capabilities, an idle session ended, monitord kill -9 during
a session (the exec killed, the container unharmed, a new session after the
restart).
"""
import json
import os
import shutil
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import REPO, api, pid_running, wait_for
from test_execsync import INIT, configure, left_in_cgroup, running
from test_monitor import Env, missing, skip_unless_ready  # noqa: F401

pytestmark = skip_unless_ready(missing, "real runc bundles")

GO_SRC = os.path.join(REPO, "tests/integration/streamclient")
GOPATH = "/usr/share/gocode"
SPDYSTREAM = os.path.join(GOPATH, "src/github.com/docker/spdystream")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    if not shutil.which("go") or not os.path.isdir(SPDYSTREAM):
        if os.environ.get("CI") == "true":
            pytest.fail("golang-go and golang-github-docker-spdystream-dev are required")
        pytest.skip("golang-go or golang-github-docker-spdystream-dev missing")
    out = tmp_path_factory.mktemp("go")
    env = dict(os.environ, GOPATH=GOPATH, GO111MODULE="off", GOCACHE=str(out / "cache"),
               GOFLAGS="")
    r = subprocess.run(["go", "build", "-o", str(out / "streamclient"), "."], cwd=GO_SRC,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return str(out / "streamclient")


@pytest.fixture
def env(suite):
    e = Env(suite)
    yield e
    e.cleanup()


def exec_url(env, cid, cmd, tty=False, stdin=False, stdout=True, stderr=False):
    req = api.ExecRequest(container_id=cid, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout,
                          stderr=stderr)
    return env.suite.cri.call("Exec", req, api.ExecResponse).url


def run(client, url, *args, stdin=None, timeout=60):
    r = subprocess.run([client, "-url", url, *args], input=stdin, capture_output=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def status_line(err):
    return [ln for ln in err.splitlines() if ln.startswith("STATUS ")][-1][len("STATUS "):]


def test_exec_errors(env):
    cid, _ = running(env)

    def code(**kw):
        with pytest.raises(grpc.RpcError) as e:
            env.suite.cri.call("Exec", api.ExecRequest(**kw), api.ExecResponse)
        return e.value.code()

    assert code(container_id="ab" * 32, cmd=["true"], stdout=True) == grpc.StatusCode.NOT_FOUND
    assert code(container_id=cid, cmd=[], stdout=True) == grpc.StatusCode.INVALID_ARGUMENT
    assert code(container_id=cid, cmd=["true"]) == grpc.StatusCode.INVALID_ARGUMENT
    assert code(container_id=cid, cmd=["true"], tty=True, stdout=True,
                stderr=True) == grpc.StatusCode.INVALID_ARGUMENT
    created, bundle = env.bundle("sleep 100")
    env.ok("CreateMonitor", env.request(created, bundle))
    assert code(container_id=created, cmd=["true"],
                stdout=True) == grpc.StatusCode.FAILED_PRECONDITION


def test_echo_cat_and_exit_code(env, client):
    cid, init = running(env)
    url = exec_url(env, cid[:12], ["echo", "hello"])
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url
    rc, out, err = run(client, url)
    assert (rc, out) == (0, b"hello\n"), err
    assert "PROTOCOL v4.channel.k8s.io" in err
    assert status_line(err) == '{"metadata":{},"status":"Success"}'

    data = os.urandom(300 * 1024)  # past every window and buffer
    url = exec_url(env, cid, ["cat"], stdin=True)
    rc, out, err = run(client, url, "-stdin", stdin=data)
    assert rc == 0 and out == data, err

    url = exec_url(env, cid, ["sh", "-c", "echo out; echo err >&2; exit 7"], stderr=True)
    rc, out, err = run(client, url, "-stderr")
    assert rc == 7 and out == b"out\n" and "err\n" in err, err
    st = status_line(err)
    assert '"reason":"NonZeroExitCode"' in st and \
        '"causes":[{"reason":"ExitCode","message":"7"}]' in st, st
    wait_for(lambda: not left_in_cgroup(env, cid, init), what="nothing left of the execs")


def running_with_pts(env):
    """A running container with a devpts of its own (for tty execs)."""
    cid, b = env.bundle(INIT)
    with open(os.path.join(b, "config.json")) as f:
        config = json.load(f)
    config["mounts"].append({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                         "mode=0620"]})
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(config, f)
    os.symlink("busybox", os.path.join(b, "rootfs/bin/stty"))
    resp = env.ok("CreateMonitor", env.request(cid, b))
    r = env.runc("start", cid)
    assert r.returncode == 0, r.stderr
    return cid, resp["pid"]


def test_tty_resize(env, client):
    cid, _ = running_with_pts(env)
    url = exec_url(env, cid, ["sh", "-c", "sleep 0.5; stty size; echo TERM=$TERM"], tty=True)
    rc, out, err = run(client, url, "-tty", "-resize", "100x40")
    assert rc == 0, err
    assert b"40 100" in out and b"TERM=xterm" in out, out


def test_protocols_and_tokens(env, client):
    cid, _ = running(env)
    url = exec_url(env, cid, ["sh", "-c", "exit 3"])
    rc, _, err = run(client, url, "-protocols", "v2.channel.k8s.io")
    assert "PROTOCOL v2.channel.k8s.io" in err
    assert rc == 1 and "non-zero exit code" in status_line(err), err
    # the token is used
    rc, _, err = run(client, url)
    assert rc == 101 and "HTTP 404" in err, err
    # none in common: refused
    url = exec_url(env, cid, ["true"])
    rc, _, err = run(client, url, "-protocols", "v9.channel.k8s.io")
    assert rc == 101 and "HTTP 403" in err, err
    # unknown tokens, other paths, no upgrade
    base = url.rsplit("/", 2)[0]
    rc, _, err = run(client, base + "/exec/" + "0" * 32)
    assert rc == 101 and "HTTP 404" in err, err
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(exec_url(env, cid, ["true"]), timeout=10)
    assert e.value.code == 400


def test_concurrent_sessions(env, client):
    cid, init = running(env)
    n = 20

    def one(i):
        url = exec_url(env, cid, ["sh", "-c", f"sleep 1; echo {i}"])
        return run(client, url, timeout=120)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    for i, (rc, out, err) in enumerate(results):
        assert (rc, out) == (0, f"{i}\n".encode()), err
    wait_for(lambda: not left_in_cgroup(env, cid, init), what="nothing left of the execs")


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
def test_hangup_kills_the_exec(env, client, tty):
    cid, init = running_with_pts(env)
    url = exec_url(env, cid, ["sh", "-c", "sleep 300 & echo started; sleep 300"], tty=tty)
    rc, out, err = run(client, url, "-hangup-after", "started", *(["-tty"] if tty else []))
    assert rc == 0 and "HUNG UP" in err, err
    wait_for(lambda: not left_in_cgroup(env, cid, init), timeout=15,
             what="the exec and its child killed")


def test_garbage_closes_that_connection_only(env, client):
    cid, _ = running(env)
    slow = exec_url(env, cid, ["sh", "-c", "sleep 2; echo survived"])
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(run, client, slow)
        rc, _, err = run(client, exec_url(env, cid, ["true"]), "-garbage")
        assert rc == 0 and "CLOSED" in err, err
        rc, out, err = fut.result()
    assert (rc, out) == (0, b"survived\n"), err
    # and the server still serves
    rc, out, err = run(client, exec_url(env, cid, ["echo", "again"]))
    assert (rc, out) == (0, b"again\n"), err


def monitord_threads(env):
    """name, CapEff, CapPrm of each of monitord's threads."""
    pid = env.suite.pid("monitord")
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except FileNotFoundError:
            continue
        out.append((st["Name"], int(st["CapEff"], 16), int(st["CapPrm"], 16)))
    return out


def test_http_and_session_threads_hold_no_capability(env, client):
    """The HTTP server's thread (libmicrohttpd's) and each session's run
    with no capability; monitord's other threads keep theirs (the launcher
    runs the runtime for the sessions)."""
    cid, _ = running(env)
    url = exec_url(env, cid, ["sh", "-c", "echo started; sleep 3001"])
    p = subprocess.Popen([client, "-url", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"started\n"
        threads = monitord_threads(env)
    finally:
        p.kill()
        p.wait()
    for prefix in ("MHD", "cric-session"):
        named = [t for t in threads if t[0].startswith(prefix)]
        assert named and all(eff == 0 and prm == 0 for _, eff, prm in named), threads
    assert any(eff != 0 for _, eff, _ in threads), threads


def test_idle_session_ends(env, client):
    """A session with no byte either way for stream_idle_timeout_s ends, and
    its exec with it."""
    configure(env.suite, stream_idle_timeout_s=1)
    cid, init = running(env)
    url = exec_url(env, cid, ["sh", "-c", "cat; sleep 300"], stdin=True)
    r = subprocess.Popen([client, "-url", url, "-stdin"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = r.communicate(timeout=60)  # our stdin stays open: only the idle end ends it
    finally:
        r.kill()
    assert "STATUS" in err.decode(), err
    wait_for(lambda: not left_in_cgroup(env, cid, init), timeout=15,
             what="the idle session's exec killed")


def test_monitord_killed_mid_session(env, client):
    """kill -9 of monitord during a session: the client's connection ends,
    the exec is killed by its helper, the container runs on, and the
    restarted monitord serves a new session."""
    cid, init = running(env)
    url = exec_url(env, cid, ["sh", "-c", "echo started; sleep 3001"])
    p = subprocess.Popen([client, "-url", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"started\n"
        env.suite.kill("monitord")
        p.communicate(timeout=30)  # the connection ends with monitord
    finally:
        p.kill()
    wait_for(lambda: left_in_cgroup(env, cid, init) == [], timeout=15,
             what="the exec killed by its helper")
    assert pid_running(init)  # the container runs on
    env.suite.up()
    st = env.status(cid)
    assert st["monitor_alive"] and not st.get("exited"), st
    rc, out, err = run(client, exec_url(env, cid, ["echo", "back"]))
    assert (rc, out) == (0, b"back\n"), err
