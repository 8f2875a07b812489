"""Running containers against daemon failures, through the CRI socket:
kill -9 of each of the six daemons in turn, then of all six at once,
while a container prints a numbered line every 50 ms. The containers keep
running (same pid), no log line is lost or doubled, and a container that
exits while every daemon is down is reported, after the restart, with its
exit code and a finished_at inside the outage.

Run under `flock /tmp/cric-net.lock` (creates pods)."""
import json
import os
import time

import grpc
import pytest

from conftest import DAEMONS, api, pid_running, wait_for
from test_containers import EXITED, RUNNING, Ctrs, ctrs, registry  # noqa: F401 (fixtures)


def numbers(path):
    out = []
    for line in open(path).read().splitlines():
        ts, stream, tag, content = line.split(" ", 3)
        assert stream == "stdout" and tag == "F", line
        out.append(int(content))
    return out


def grows(path):
    """Wait for a few more lines in the log than there are now."""
    n = len(open(path).read().splitlines())
    wait_for(lambda: len(open(path).read().splitlines()) >= n + 3, 10, f"{path} to grow")


def restart(suite, daemons):
    for d in daemons:
        suite.kill(d)
    if "gateway" in daemons:  # a new socket: a new client, as the kubelet redials
        suite.cri.close()
        suite.cri = None
    suite.up()


def test_kill9_each_daemon_then_all_while_containers_run_and_log(ctrs):
    ctrs.pull()
    pod_id, pod_cfg = ctrs.pod()
    before = ctrs.counts()
    ctl = os.path.join(ctrs.suite.root, "ctl")
    os.makedirs(ctl)
    talk = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="talk", args=["i=0; while :; do echo $i; i=$((i+1)); busybox usleep 50000; done"]))
    # Exits with 5 when told to (a file appears in its host-path mount).
    late = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="late", mounts=[api.Mount(container_path="/ctl", host_path=ctl)],
        args=["echo waiting; while [ ! -e /ctl/go ]; do busybox usleep 50000; done; exit 5"]))
    ctrs.start(talk)
    ctrs.start(late)
    log = os.path.join(ctrs.logs, "talk/0.log")
    grows(log)
    pids = {c: json.loads(ctrs.status(c, verbose=True).info["info"])["pid"] for c in (talk, late)}

    for d in DAEMONS:
        restart(ctrs.suite, [d])
        assert all(pid_running(p) for p in pids.values()), d
        grows(log)
        assert ctrs.status(talk).status.state == RUNNING, d

    # Every daemon down at once; meanwhile `late` exits and `talk` logs on.
    for d in DAEMONS:
        ctrs.suite.kill(d)
    down = time.time_ns()
    open(os.path.join(ctl, "go"), "w").close()
    wait_for(lambda: not pid_running(pids[late]), 10, "late to exit during the outage")
    grows(log)
    back = time.time_ns()
    ctrs.suite.cri.close()
    ctrs.suite.cri = None
    ctrs.suite.up()
    s = ctrs.status(late).status
    assert (s.state, s.exit_code, s.reason) == (EXITED, 5, "Error"), s
    assert down <= s.finished_at <= back, (down, s.finished_at, back)
    assert ctrs.status(talk).status.state == RUNNING and pid_running(pids[talk])
    grows(log)

    ctrs.stop(talk)
    got = numbers(log)
    assert got == list(range(len(got))), \
        f"lines lost or doubled: {sorted(set(range(len(got))) - set(got))[:10]} missing"
    assert len(got) > 40
    for c in (talk, late):
        ctrs.remove(c)
    assert ctrs.counts() == before


# runc, but after `create` it leaves a marker and waits: the monitor (and
# monitord's CreateMonitor, and runtimed's CreateContainer) wait with it.
SLOW_CREATE = """#!/bin/sh
/usr/sbin/runc "$@" || exit $?
for a in "$@"; do
    if [ "$a" = create ]; then touch {marker}; sleep 2; fi
done
"""


def test_kill9_runtimed_mid_create_rolls_the_container_back(ctrs, tmp_path):
    """runtimed saves a creation's record before its first step and after
    its last only: restarted, it takes apart all a step may have made (the
    root filesystem, the monitor, runc's container) and frees the name."""
    ctrs.pull()
    marker, wrapper = tmp_path / "created", tmp_path / "slow-runc"
    wrapper.write_text(SLOW_CREATE.format(marker=marker))
    wrapper.chmod(0o755)
    ctrs.suite.write_config({"runtimed": {"runtimes": {"runc": {}, "slow": {
        "path": str(wrapper)}}}})
    for d in ("runtimed", "monitord"):  # both check the runtime's path
        ctrs.suite.kill(d)
    ctrs.suite.up()
    before = ctrs.counts()
    cfg = ctrs.pods.config()
    cfg.log_directory = ctrs.logs = os.path.join(ctrs.suite.root, "var/log/pods/slow")
    pod_id = ctrs.pods.run(cfg, handler="slow")
    fut = ctrs.cri.future("CreateContainer", api.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=ctrs.config(name="half", args=["sleep 60"]),
        sandbox_config=cfg), api.CreateContainerResponse, timeout=60)
    wait_for(marker.exists, 30, "runc create to finish")
    runc_state = os.path.join(ctrs.suite.root, "run/cric/runtimed/runtimes/slow")
    [cid] = os.listdir(runc_state)
    assert ctrs.counts()["rootfs_mounts"] == before["rootfs_mounts"] + 1
    ctrs.suite.kill("runtimed")
    with pytest.raises(grpc.RpcError) as e:
        fut.result()
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    ctrs.suite.up()
    wait_for(lambda: f"half-made container {cid} rolled back" in ctrs.suite.log("runtimed"),
             30, "the rollback")
    assert len(ctrs.cri.call("ListContainers", api.ListContainersRequest(),
                             api.ListContainersResponse).containers) == 0
    assert ctrs.counts() == before
    assert os.listdir(runc_state) == []
    assert cid not in os.listdir(os.path.join(ctrs.suite.root, "run/cric/monitord"))
    # The name is free: the kubelet's retry makes the container.
    c = ctrs.create(pod_id, cfg, ctrs.config(name="half", args=["sleep 60"]))
    ctrs.start(c)
    assert ctrs.status(c).status.state == RUNNING
    ctrs.stop(c)
    ctrs.remove(c)
