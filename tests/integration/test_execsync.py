"""ExecSync through the real CRI socket (grpcio), into containers made by
monitord's own CreateMonitor on real runc bundles (test_monitor.py's Env:
busybox root file system, a cgroup of the test's own), then `runc start`.
No network: no pods, no lock.

What is checked: output and exit code, stdout/stderr apart, a unique id
prefix, output bounds (configured and the default's fit into one answer),
the timeout (DEADLINE_EXCEEDED "command timed out" within the timeout plus a
small margin; nothing of the exec left in the container's cgroup, a
background child included; no zombie of ours anywhere), timeout 0 outliving
the gateway's max_request_seconds, a background child of a finished command
gone too, and the errors (not running, unknown, empty command).
"""
import os
import secrets
import statistics
import time

import grpc
import pytest

from conftest import api, wait_for
from test_monitor import Env, cgroup_mounts, missing, skip_unless_ready  # noqa: F401

pytestmark = skip_unless_ready(missing, "real runc bundles")

INIT = "while :; do sleep 0.2; done"  # a shell init reaps what is orphaned to it


@pytest.fixture
def env(suite):
    e = Env(suite)
    yield e
    e.cleanup()


def configure(suite, **monitord):
    doc = {"max_request_seconds": 1}
    if monitord:
        doc["monitord"] = monitord
    suite.write_config(doc)
    suite.kill("gateway")
    suite.kill("monitord")
    suite.up()


def running(env, script=INIT):
    cid, _, resp = env.create(script)
    bin_dir = os.path.join(env.bundles, cid, "rootfs/bin")
    for tool in ("true", "kill"):
        if not os.path.lexists(os.path.join(bin_dir, tool)):
            os.symlink("busybox", os.path.join(bin_dir, tool))
    r = env.runc("start", cid)
    assert r.returncode == 0, r.stderr
    return cid, resp["pid"]


def exec_sync(env, cid, cmd, timeout=0, deadline=30, channel=None):
    req = api.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout)
    if channel is None:
        return env.suite.cri.call("ExecSync", req, api.ExecSyncResponse, timeout=deadline)
    call = channel.unary_unary("/runtime.v1.RuntimeService/ExecSync",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=api.ExecSyncResponse.FromString)
    return call(req, timeout=deadline)


def exec_error(env, cid, cmd, timeout=0, deadline=30):
    with pytest.raises(grpc.RpcError) as e:
        exec_sync(env, cid, cmd, timeout, deadline)
    return e.value.code(), e.value.details()


def stat(pid):
    """(state, ppid, comm) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), comm


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return None


def left_in_cgroup(env, cid, init):
    """Live processes of the container's cgroup (memory hierarchy) but its
    init and the init's own `sleep 0.2` (or the fork about to exec it)."""
    mp = [m for m in cgroup_mounts() if os.path.exists(os.path.join(m, "memory.usage_in_bytes"))
          or os.path.basename(m) == "unified"][0]
    path = os.path.join(mp + env.cgroup, f"ctr-{cid[:12]}", "cgroup.procs")
    with open(path) as f:
        pids = [int(x) for x in f.read().split()]
    out = []
    for p in pids:
        s = stat(p)
        # (the init's `sleep 0.2`, or its fork about to become one)
        if p == init or not s or s[0] == "Z" or \
                (s[1] == init and cmdline(p) in ([b"sleep", b"0.2"], cmdline(init))):
            continue
        out.append((p, cmdline(p)))
    return out


def zombies():
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            s = stat(int(p))
            if s and s[0] == "Z":
                out[int(p)] = s
    return out


def new_zombies_of_ours(before, env, init):
    """Zombies that were not there before and whose parent is one of the
    exec's possible reapers: monitord, the container's init, or PID 1 (the
    host's, which reaps late: only our commands' names count there, other
    suites may run beside us)."""
    parents = {env.suite.pid("monitord"), init}
    return {p: s for p, s in zombies().items() if p not in before and
            (s[1] in parents or (s[1] == 1 and s[2] in ("cric-exec", "runc", "sleep", "sh")))}


def assert_no_zombie_of_ours(before, env, init):
    try:
        wait_for(lambda: not new_zombies_of_ours(before, env, init), timeout=5,
                 what="no zombie of the exec")
    except AssertionError:
        raise AssertionError(f"zombies: {new_zombies_of_ours(before, env, init)}")


def test_output_exit_code_and_round_trip(env):
    cid, _ = running(env)
    r = exec_sync(env, cid, ["sh", "-c", "echo out; echo err >&2; echo more; exit 7"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\nmore\n", b"err\n", 7)
    # A unique prefix names the container; a command runc cannot start
    # answers the runtime's exit code and message.
    r = exec_sync(env, cid[:12], ["echo", "-n", "a b"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"a b", b"", 0)
    r = exec_sync(env, cid, ["/no/such/command"])
    assert r.exit_code != 0 and b"no such file" in r.stderr.lower()
    # A signalled command: 128 + the signal.
    assert exec_sync(env, cid, ["sh", "-c", "kill -9 $$"]).exit_code == 137

    times = []
    for _ in range(50):
        t = time.monotonic()
        assert exec_sync(env, cid, ["true"]).exit_code == 0
        times.append(time.monotonic() - t)
    direct = []
    for _ in range(20):
        t = time.monotonic()
        assert env.runc("exec", cid, "true").returncode == 0
        direct.append(time.monotonic() - t)
    print(f"ExecSync round trip (true, 50 runs): median {statistics.median(times) * 1000:.1f} ms,"
          f" min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms;"
          f" runc exec alone (20 runs): median {statistics.median(direct) * 1000:.1f} ms")


def test_output_bounds(env):
    configure(env.suite, exec_output_max=1 << 20)
    cid, _ = running(env)
    r = exec_sync(env, cid, ["sh", "-c", "head -c 3000000 /dev/zero; "
                             "head -c 2000000 /dev/zero | tr '\\0' e >&2; echo done >&2"])
    assert r.exit_code == 0
    assert r.stdout == b"\0" * (1 << 20)
    assert r.stderr == b"e" * (1 << 20)
    # The command was not disturbed by the bound: it ran to its end.
    r = exec_sync(env, cid, ["sh", "-c", "head -c 3000000 /dev/zero; echo -n end >&2"])
    assert (len(r.stdout), r.stderr, r.exit_code) == (1 << 20, b"end", 0)


def test_default_bounds_fit_one_answer(env):
    """16 MiB each by default, and both together within what one answer
    carries (the kubelet's gRPC client takes 16 MiB)."""
    cid, _ = running(env)
    ch = grpc.insecure_channel("unix://" + env.suite.socket,
                               options=[("grpc.max_receive_message_length", 16 << 20)])
    try:
        r = exec_sync(env, cid, ["sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' o; "
                                 "head -c 20000000 /dev/zero | tr '\\0' e >&2"],
                      deadline=60, channel=ch)
        assert r.exit_code == 0
        total = len(r.stdout) + len(r.stderr)
        assert (16 << 20) - (64 << 10) - 16 <= total <= (16 << 20) - (64 << 10)
        # The room is shared fairly: half each.
        assert len(r.stdout) == len(r.stderr) == ((16 << 20) - (64 << 10)) // 2
        assert set(r.stdout) == {ord("o")}
        assert set(r.stderr) == {ord("e")}
        # One stream alone keeps its 16 MiB ... less what the answer needs.
        r = exec_sync(env, cid, ["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' o; "
                                 "echo -n tail >&2"], deadline=60, channel=ch)
        assert (len(r.stdout), r.stderr) == (5000000, b"tail")
    finally:
        ch.close()


def test_timeout_kills_everything_it_started(env):
    cid, init = running(env)
    before = zombies()
    assert left_in_cgroup(env, cid, init) == []
    t = time.monotonic()
    code, msg = exec_error(env, cid, ["sh", "-c", "sleep 300 & sleep 301 & sleep 30"], timeout=2)
    took = time.monotonic() - t
    assert (code, msg) == (grpc.StatusCode.DEADLINE_EXCEEDED, "command timed out")
    assert 2 <= took < 3, took
    print(f"timeout 2 s answered after {took:.3f} s")
    # Nothing of the exec lives in the container when the call returns.
    assert left_in_cgroup(env, cid, init) == []
    # The killed processes orphaned inside the container are reaped by its
    # init; nothing of ours remains a zombie anywhere.
    assert_no_zombie_of_ours(before, env, init)
    assert not [p for p, s in zombies().items() if s[2] == "cric-exec"]

    # A command that ends leaving a background child: the child is gone
    # too, and the call does not wait for it.
    t = time.monotonic()
    r = exec_sync(env, cid, ["sh", "-c", "sleep 300 & echo started"], timeout=10)
    assert (r.stdout, r.exit_code) == (b"started\n", 0)
    assert time.monotonic() - t < 2
    assert left_in_cgroup(env, cid, init) == []
    assert_no_zombie_of_ours(before, env, init)
    # The container itself was not touched.
    assert env.status(cid).get("monitor_alive") and not env.status(cid).get("exited")


def test_timeout_zero_outlives_every_cap(env):
    """max_request_seconds is 1 here: a call without a gRPC deadline and
    with timeout 0 runs as long as its command."""
    configure(env.suite)
    cid, init = running(env)
    t = time.monotonic()
    r = exec_sync(env, cid, ["sh", "-c", "sleep 3; echo done"], timeout=0, deadline=None)
    assert (r.stdout, r.exit_code) == (b"done\n", 0)
    assert time.monotonic() - t >= 3
    # Its own timeout still holds beyond the cap.
    code, msg = exec_error(env, cid, ["sleep", "30"], timeout=2, deadline=None)
    assert (code, msg) == (grpc.StatusCode.DEADLINE_EXCEEDED, "command timed out")
    # A gRPC deadline shorter than the timeout ends it too, and kills it.
    t = time.monotonic()
    code, _ = exec_error(env, cid, ["sleep", "30"], timeout=20, deadline=2)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: left_in_cgroup(env, cid, init) == [], timeout=3, what="the exec killed")
    # Other methods keep the cap (ListContainers is runtimed's: any answer
    # but a hang will do; the cap is what the config says).
    assert env.suite.cri.version().runtime_name


def test_errors(env):
    cid, _ = running(env, "exit 0")
    wait_for(lambda: env.status(cid).get("exited"), what="the exit record")
    code, msg = exec_error(env, cid, ["true"])
    assert code == grpc.StatusCode.FAILED_PRECONDITION, msg
    assert "not running" in msg
    code, _ = exec_error(env, secrets.token_hex(32), ["true"])
    assert code == grpc.StatusCode.NOT_FOUND
    live, _ = running(env)
    code, _ = exec_error(env, live, [])
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    for bad in ("", "../x", "XYZ", "a" * 65):
        code, _ = exec_error(env, bad, ["true"])
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), bad
    code, _ = exec_error(env, live, ["true"], timeout=-1)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_monitord_killed_mid_exec(env):
    """kill -9 of monitord while an exec runs: the call fails, the helper
    sees monitord gone and kills the exec; the restarted monitord execs."""
    cid, init = running(env)
    req = api.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "sleep 3001 & sleep 3002"])
    fut = env.suite.cri.future("ExecSync", req, api.ExecSyncResponse, timeout=None)
    def both_sleeps():
        cmds = [c for _, c in left_in_cgroup(env, cid, init)]
        return [b"sleep", b"3001"] in cmds and [b"sleep", b"3002"] in cmds
    wait_for(both_sleeps, what="the exec running")
    env.suite.kill("monitord")
    assert fut.exception(timeout=10).code() == grpc.StatusCode.UNAVAILABLE
    wait_for(lambda: left_in_cgroup(env, cid, init) == [], timeout=5,
             what="the exec killed by its helper")
    env.suite.up()
    assert exec_sync(env, cid, ["echo", "back"]).stdout == b"back\n"


def test_tty_container(env):
    """A tty container's exec gets TERM=xterm, and no terminal: its stdout
    and stderr stay apart (what a probe reads). Without tty: no TERM."""
    cid, b = env.bundle(INIT, tty=True)
    env.ok("CreateMonitor", env.request(cid, b, {"tty": True}))
    assert env.runc("start", cid).returncode == 0
    script = "echo TERM=$TERM; [ -t 1 ] || echo no terminal; echo err >&2"
    r = exec_sync(env, cid, ["sh", "-c", script], timeout=10)
    assert (r.stdout, r.stderr, r.exit_code) == (b"TERM=xterm\nno terminal\n", b"err\n", 0)
    plain, _ = running(env)
    r = exec_sync(env, plain, ["sh", "-c", script], timeout=10)
    assert r.stdout == b"TERM=\nno terminal\n"


def test_created_not_started(env):
    """Created, not started: not running for the CRI (runc would exec)."""
    cid, _, _ = env.create(INIT)
    code, msg = exec_error(env, cid, ["echo", "hi"], timeout=10)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not started" in msg, msg
    assert env.runc("start", cid).returncode == 0
    assert exec_sync(env, cid, ["echo", "hi"], timeout=10).stdout == b"hi\n"
