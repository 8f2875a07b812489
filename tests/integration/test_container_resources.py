"""Container resources and the pod's stop through the CRI socket:
UpdateContainerResources applied by runc to the container's cgroup and
reported by ContainerStatus, refused updates that change nothing,
UpdatePodSandboxResources, the runtime's features in Status, and
StopPodSandbox stopping a pod's containers together.

Real pods (CNI), registry images, monitord's monitors and runc, as in
test_containers.py, whose fixtures these tests share. Pods: run under
`flock /tmp/cric-net.lock`.
"""
import json
import os
import threading

import grpc
import pytest

from conftest import api, wait_for
from test_containers import (  # noqa: F401  (fixtures)
    CREATED, EXITED, RUNNING, Ctrs, ctrs, grpc_error, monitors_ready, registry)


def cgroup_dir(pid, controller):
    """The directory of pid's cgroup for controller (v1), or its v2 one."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, ctrls, path in lines:
        if controller in ctrls.split(","):
            for mnt in (controller, "cpu,cpuacct", "cpuacct,cpu"):
                d = f"/sys/fs/cgroup/{mnt}{path}"
                if os.path.isdir(d):
                    return d
    for hid, ctrls, path in lines:
        if hid == "0" and not ctrls:
            return f"/sys/fs/cgroup{path}"
    raise AssertionError(f"no {controller} cgroup for {pid}: {lines}")


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def v2(d):
    return os.path.exists(os.path.join(d, "cgroup.controllers"))


def limits(pid):
    """(memory limit, cpu quota, cpu period, cpu shares/weight) from the cgroup."""
    mem, cpu = cgroup_dir(pid, "memory"), cgroup_dir(pid, "cpu")
    if v2(mem):
        quota, period = read(cpu, "cpu.max").split()
        return int(read(mem, "memory.max")), int(quota), int(period), int(read(cpu, "cpu.weight"))
    return (int(read(mem, "memory.limit_in_bytes")), int(read(cpu, "cpu.cfs_quota_us")),
            int(read(cpu, "cpu.cfs_period_us")), int(read(cpu, "cpu.shares")))


def update(ctrs, cid, timeout=30, **res):
    ctrs.cri.call("UpdateContainerResources", api.UpdateContainerResourcesRequest(
        container_id=cid, linux=api.LinuxContainerResources(**res)),
        api.UpdateContainerResourcesResponse, timeout=timeout)


def running(ctrs, name="c", args=("sleep 600",), resources=None):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name=name, args=list(args),
                                                   resources=resources))
    ctrs.start(cid)
    pid = json.loads(ctrs.status(cid, verbose=True).info["info"])["pid"]
    return pod_id, pod_cfg, cid, pid


def test_update_applies_to_the_cgroup_and_shows_in_status(ctrs):
    res = api.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_shares=256,
                                      cpu_period=100000, cpu_quota=50000)
    pod_id, pod_cfg, cid, pid = running(ctrs, resources=res)
    before = ctrs.status(cid).status.resources.linux
    assert (before.memory_limit_in_bytes, before.cpu_shares, before.cpu_quota) == (
        64 << 20, 256, 50000)
    mem, quota, period, shares = limits(pid)
    assert (mem, quota, period) == (64 << 20, 50000, 100000)

    update(ctrs, cid, memory_limit_in_bytes=128 << 20, cpu_quota=20000, cpu_shares=512)
    mem, quota, period, shares = limits(pid)
    assert (mem, quota, period) == (128 << 20, 20000, 100000)
    if not v2(cgroup_dir(pid, "cpu")):
        assert shares == 512
    after = ctrs.status(cid).status.resources.linux
    # Set fields replace, unset ones keep their value (cpu_period).
    assert (after.memory_limit_in_bytes, after.cpu_quota, after.cpu_period,
            after.cpu_shares) == (128 << 20, 20000, 100000, 512)
    # Survives a runtimed restart (it is in the container's record).
    ctrs.suite.kill("runtimed")
    ctrs.suite.up()
    assert ctrs.status(cid).status.resources.linux.memory_limit_in_bytes == 128 << 20

    # An exited container: the record alone changes (containerd does so).
    ctrs.stop(cid)
    update(ctrs, cid, memory_limit_in_bytes=96 << 20)
    assert ctrs.status(cid).status.resources.linux.memory_limit_in_bytes == 96 << 20
    ctrs.remove(cid)
    code, _ = grpc_error(update, ctrs, cid, cpu_shares=2)
    assert code == grpc.StatusCode.NOT_FOUND


def test_invalid_updates_are_refused_and_change_nothing(ctrs):
    res = api.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000,
                                      cpu_quota=50000)
    pod_id, pod_cfg, cid, pid = running(ctrs, resources=res)
    applied = limits(pid)
    shown = ctrs.status(cid).status.resources.linux
    bad = [({"memory_limit_in_bytes": -1}, "memory_limit_in_bytes"),
           ({"cpu_quota": -5}, "cpu_quota"),
           ({"cpu_period": 10}, "cpu_period"),
           ({"cpu_shares": -2}, "cpu_shares"),
           ({"oom_score_adj": 5000}, "oom_score_adj"),
           ({"cpuset_cpus": "3-1"}, "cpuset_cpus"),
           ({"cpuset_cpus": "0,,1"}, "cpuset_cpus"),
           ({"cpuset_mems": "x"}, "cpuset_mems"),
           # A valid field with a bad one: nothing of it applied.
           ({"memory_limit_in_bytes": 32 << 20, "cpuset_cpus": "a"}, "cpuset_cpus")]
    for fields, word in bad:
        code, msg = grpc_error(update, ctrs, cid, **fields)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and word in msg, (fields, msg)
    if not v2(cgroup_dir(pid, "memory")):
        code, msg = grpc_error(update, ctrs, cid, unified={"memory.high": "1000000"})
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "cgroup v2" in msg, msg
    assert limits(pid) == applied
    assert ctrs.status(cid).status.resources.linux == shown
    # Well-formed but refused by the kernel through runc (no such CPUs):
    # runc's message, and neither the cgroup nor the record changed.
    code, msg = grpc_error(update, ctrs, cid, memory_limit_in_bytes=32 << 20,
                           cpuset_cpus="0-4000")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "update" in msg, (code, msg)
    assert limits(pid) == applied
    assert ctrs.status(cid).status.resources.linux == shown
    code, msg = grpc_error(update, ctrs, "f" * 64, cpu_shares=2)
    assert code == grpc.StatusCode.NOT_FOUND
    ctrs.remove(cid)


def test_memory_below_usage_is_runcs_refusal_and_changes_nothing(ctrs):
    res = api.LinuxContainerResources(memory_limit_in_bytes=128 << 20)
    # Holds ~40 MB of shared memory, charged to its cgroup (no swap on
    # the host: it cannot be reclaimed).
    pod_id, pod_cfg, cid, pid = running(ctrs, name="holder", resources=res, args=[
        "head -c 40000000 /dev/zero > /dev/shm/hold; echo held; sleep 600"])
    log = os.path.join(ctrs.logs, "holder/0.log")
    wait_for(lambda: os.path.exists(log) and "held" in open(log).read(), 20, "the holder")
    applied = limits(pid)
    d = cgroup_dir(pid, "memory")
    usage = read(d, "memory.usage_in_bytes" if not v2(d) else "memory.current")
    try:
        update(ctrs, cid, memory_limit_in_bytes=4 << 20)
        code, msg = None, f"accepted: usage {usage}, now {limits(pid)}"
    except grpc.RpcError as e:
        code, msg = e.code(), e.details()
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "update" in msg, (code, msg)
    assert limits(pid) == applied
    assert ctrs.status(cid).status.resources.linux.memory_limit_in_bytes == 128 << 20
    assert ctrs.status(cid).status.state == RUNNING
    ctrs.remove(cid)


def test_status_reports_features_honestly(ctrs):
    st = ctrs.cri.call("Status", api.StatusRequest(), api.StatusResponse)
    assert st.features.supplemental_groups_policy is True
    assert st.runtime_handlers and st.runtime_handlers[0].name == ""
    for h in st.runtime_handlers:
        assert h.features.recursive_read_only_mounts is False
        # This host: runc runs user namespaces, the kernel id-maps the
        # mounts cric makes and lets a pod's user namespace own its other
        # namespaces (test_userns.py); on by default.
        assert h.features.user_namespaces is True


def test_update_pod_sandbox_resources(ctrs):
    pod_id, pod_cfg = ctrs.pod()
    res = api.LinuxContainerResources(cpu_shares=1024, memory_limit_in_bytes=256 << 20)
    ctrs.cri.call("UpdatePodSandboxResources", api.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=pod_id, resources=res), api.UpdatePodSandboxResourcesResponse)
    cfg = ctrs.pods.info(pod_id)["config"]
    assert cfg["linux"]["resources"]["memory_limit_in_bytes"] == 256 << 20
    assert cfg["linux"]["resources"]["cpu_shares"] == 1024
    code, msg = grpc_error(ctrs.cri.call, "UpdatePodSandboxResources",
                           api.UpdatePodSandboxResourcesRequest(
                               pod_sandbox_id=pod_id, resources=api.LinuxContainerResources(
                                   cpu_shares=-1)), api.UpdatePodSandboxResourcesResponse)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cpu_shares" in msg
    code, _ = grpc_error(ctrs.cri.call, "UpdatePodSandboxResources",
                         api.UpdatePodSandboxResourcesRequest(pod_sandbox_id="f" * 64),
                         api.UpdatePodSandboxResourcesResponse)
    assert code == grpc.StatusCode.NOT_FOUND


STUBBORN = ["trap '' TERM; while :; do sleep 0.1; done"]


def test_pod_containers_stop_together(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    ids = []
    for name in ("a", "b", "c"):
        ids.append(ctrs.create(pod_id, pod_cfg, ctrs.config(name=name, args=STUBBORN)))
        ctrs.start(ids[-1])
    # The kubelet's pattern: StopContainer with the grace period, one call
    # per container at once; runtimed serves them together.
    futs = [ctrs.cri.future("StopContainer", api.StopContainerRequest(
        container_id=cid, timeout=2), timeout=60) for cid in ids]
    for f in futs:
        f.result()
    done = [ctrs.status(cid).status for cid in ids]
    assert all(s.state == EXITED and s.exit_code == 137 for s in done)
    ends = [s.finished_at for s in done]
    assert max(ends) - min(ends) < 1e9, ends
    assert min(ends) - max(s.started_at for s in done) >= 1.9e9

    # StopPodSandbox with three stubborn containers still running: killed
    # together by the pod's hook.
    more = []
    for name in ("d", "e", "f"):
        more.append(ctrs.create(pod_id, pod_cfg, ctrs.config(name=name, args=STUBBORN)))
        ctrs.start(more[-1])
    ctrs.pods.stop(pod_id)
    done = [ctrs.status(cid).status for cid in more]
    assert all(s.state == EXITED for s in done), [s.state for s in done]
    ends = [s.finished_at for s in done]
    assert max(ends) - min(ends) < 1e9, ends
    ctrs.pods.remove(pod_id)
    assert len(ctrs.list()) == 0


def test_pod_stop_waits_for_a_creation_in_flight(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    records = ctrs.counts()["records"]
    outcome = {}

    def create():
        try:
            outcome["id"] = ctrs.create(pod_id, pod_cfg, ctrs.config(name="late",
                                                                     args=["sleep 600"]))
        except grpc.RpcError as e:
            outcome["error"] = (e.code(), e.details())
    t = threading.Thread(target=create)
    t.start()
    # Its record is written first: from then on the creation is in flight.
    wait_for(lambda: ctrs.counts()["records"] > records or not t.is_alive(), 30,
             "the creation's record")
    ctrs.pods.stop(pod_id)
    t.join(60)
    assert "id" in outcome, outcome
    # Stopped with the pod, never left created in a stopped pod.
    assert ctrs.status(outcome["id"]).status.state == EXITED
    ctrs.pods.remove(pod_id)
    assert len(ctrs.list()) == 0
