"""Containers at scale through the CRI socket: 100 create/start/stop/remove
cycles that leave nothing behind (counted: mounts, processes, cgroups, runc
state, files under the suite's root), and ListContainers /
ListContainerStats over 200 containers with every filter, counts exact.

Under a sanitized build (make check-asan) the cycle count is smaller
(conftest.sanitized): the same code paths, a fraction of the time.

Run under `flock /tmp/cric-net.lock` (creates pods)."""
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import api, pid_running, sanitized
from test_containers import (CREATED, EXITED, RUNNING, Ctrs, ctrs,  # noqa: F401 (fixtures)
                             registry)

CYCLES = 20 if sanitized("runtimed") else 100


def cgroup_hierarchies():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] in ("cgroup", "cgroup2"):
                out.append(pre.split()[4])
    return out


def footprint(ctrs, skip_dirs):
    """What containers can leave, counted: mounts under the root, cric
    monitors / runc / exec helpers naming the root, processes in the test's
    cgroups, cgroup directories in every hierarchy, runc state directories,
    and every file and directory under the root but the kubelet's log
    directories (skip_dirs) and the daemons' own logs."""
    root = ctrs.suite.root
    r = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True,
                       timeout=30, check=True)
    mounts = sum(1 for t in r.stdout.split("\n") if t == root or t.startswith(root + "/"))
    procs = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        name = os.path.basename(cmd[0])
        if name in (b"cric-monitor", b"runc", b"cric-exec") and \
                any(root.encode() in a for a in cmd) and pid_running(int(p)):
            procs += 1
    parent = ctrs.pods.cgroup_parent.lstrip("/")
    cgroups = 0
    for h in cgroup_hierarchies():
        d = os.path.join(h, parent)
        if os.path.isdir(d):
            cgroups += 1 + sum(len(dirs) for _, dirs, _ in os.walk(d))
    runc = os.path.join(root, "run/cric/runtimed/runtimes/runc")
    paths = set()
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in skip_dirs
                   and not os.path.ismount(os.path.join(dirpath, d))]
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            if not p.startswith(os.path.join(root, "var/log/cric/")):
                paths.add(os.path.relpath(p, root))
    return {"mounts": mounts, "processes": procs,
            "pod_processes": ctrs.pods.infra_processes(), "cgroups": cgroups,
            "runc_state": len(os.listdir(runc)) if os.path.isdir(runc) else 0,
            "files": len(paths)}, paths


def test_hundred_cycles_leave_nothing_behind(ctrs):
    ctrs.pull()
    pod_id, pod_cfg = ctrs.pod()
    skip = {os.path.dirname(ctrs.logs)}  # /var/log/pods: the kubelet's
    # One cycle first: what the first container makes once (the image's
    # shared state) is not a leak.
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name="warm", args=["true"]))
    ctrs.start(cid)
    ctrs.stop(cid)
    ctrs.remove(cid)
    before, before_paths = footprint(ctrs, skip)
    # Each count sees a running container (so each can fail).
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name="seen", args=["exec sleep 600"]))
    ctrs.start(cid)
    during, _ = footprint(ctrs, skip)
    assert all(during[k] > before[k] for k in before), (before, during)
    ctrs.remove(cid)
    t0 = time.monotonic()
    for i in range(CYCLES):
        # Half exit at once, half run until stopped.
        cid = ctrs.create(pod_id, pod_cfg, ctrs.config(
            name=f"cycle-{i}", args=["true" if i % 2 else "exec sleep 600"]))
        ctrs.start(cid)
        ctrs.stop(cid)
        assert ctrs.status(cid).status.state == EXITED
        ctrs.remove(cid)
    took = time.monotonic() - t0
    after, after_paths = footprint(ctrs, skip)
    assert after == before, (before, after, sorted(after_paths ^ before_paths)[:20])
    assert len(ctrs.list()) == 0
    print(f"{CYCLES} cycles in {took:.1f} s")


def test_list_200_containers_with_every_filter(ctrs):
    ctrs.pull()
    pods = [ctrs.pod() for _ in range(5)]
    specs = []  # (pod index, i, kind)
    for p in range(5):
        for i in range(40):
            kind = ("created", "exited", "running", "running")[i % 4]
            specs.append((p, i, kind))

    def make(spec):
        p, i, kind = spec
        pod_id, pod_cfg = pods[p]
        cid = ctrs.create(pod_id, pod_cfg, ctrs.config(
            name=f"c{i}", args=["true" if kind == "exited" else "exec sleep 600"],
            labels={"pod": str(p), "kind": kind, "mod": str(i % 3)}), timeout=120)
        if kind != "created":
            ctrs.start(cid)
        return cid

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(make, specs))
    took = time.monotonic() - t0
    by = dict(zip(ids, specs))
    for cid, (_, _, kind) in by.items():
        if kind == "exited":
            ctrs.wait_exit(cid)

    def ids_of(**filt):
        return sorted(c.id for c in ctrs.list(**filt))

    def expect(pred):
        return sorted(c for c, s in by.items() if pred(*s))

    state = {"created": CREATED, "exited": EXITED, "running": RUNNING}
    assert ids_of() == sorted(ids)
    for c in (ids[0], ids[77], ids[199]):
        assert ids_of(id=c) == [c]
        assert ids_of(id=c[:13]) == [c]
    assert ids_of(id="f" * 64) == []
    for kind, st in state.items():
        assert ids_of(state=api.ContainerStateValue(state=st)) == \
            expect(lambda p, i, k: k == kind), kind
    for p, (pod_id, _) in enumerate(pods):
        assert ids_of(pod_sandbox_id=pod_id) == expect(lambda q, i, k: q == p)
        assert ids_of(pod_sandbox_id=pod_id[:10]) == expect(lambda q, i, k: q == p)
        assert ids_of(pod_sandbox_id=pod_id, state=api.ContainerStateValue(state=RUNNING)) \
            == expect(lambda q, i, k: q == p and k == "running")
    assert ids_of(pod_sandbox_id="0" * 64) == []
    assert ids_of(label_selector={"mod": "1"}) == expect(lambda p, i, k: i % 3 == 1)
    assert ids_of(label_selector={"mod": "1", "pod": "3"}) == \
        expect(lambda p, i, k: i % 3 == 1 and p == 3)
    assert ids_of(label_selector={"mod": "1", "pod": "9"}) == []
    assert ids_of(label_selector={"kind": "exited"},
                  state=api.ContainerStateValue(state=EXITED)) == \
        expect(lambda p, i, k: k == "exited")
    assert ids_of(label_selector={"kind": "exited"},
                  state=api.ContainerStateValue(state=RUNNING)) == []
    assert ids_of(id=ids[5][:12], pod_sandbox_id=pods[0][0]) == [ids[5]]  # pod 0's
    assert ids_of(id=ids[5][:12], pod_sandbox_id=pods[4][0]) == []

    # ListContainerStats: the same filters but state.
    def stats_of(**filt):
        req = api.ListContainerStatsRequest(
            filter=api.ContainerStatsFilter(**filt) if filt else None)
        return sorted(s.attributes.id for s in ctrs.cri.call(
            "ListContainerStats", req, api.ListContainerStatsResponse, timeout=30).stats)

    # (every container, whatever its state, as the kubelet's summary expects)
    assert stats_of() == sorted(ids)
    for c in (ids[0], ids[77], ids[199]):
        assert stats_of(id=c) == [c]
        assert stats_of(id=c[:13]) == [c]
    assert stats_of(id="f" * 64) == []
    for p, (pod_id, _) in enumerate(pods):
        assert stats_of(pod_sandbox_id=pod_id) == expect(lambda q, i, k: q == p)
        assert stats_of(pod_sandbox_id=pod_id[:10]) == expect(lambda q, i, k: q == p)
    assert stats_of(pod_sandbox_id="0" * 64) == []
    assert stats_of(label_selector={"mod": "2"}) == expect(lambda p, i, k: i % 3 == 2)
    assert stats_of(label_selector={"mod": "2", "pod": "1"}) == \
        expect(lambda p, i, k: i % 3 == 2 and p == 1)
    assert stats_of(label_selector={"kind": "running"}, pod_sandbox_id=pods[1][0]) == \
        expect(lambda p, i, k: k == "running" and p == 1)
    assert stats_of(label_selector={"kind": "running"}, pod_sandbox_id=pods[1][0],
                    id=ids[0][:12]) == []  # ids[0] is pod 0's
    assert stats_of(label_selector={"mod": "2", "pod": "9"}) == []

    t1 = time.monotonic()
    for pod_id, _ in pods:
        ctrs.pods.stop(pod_id)
        ctrs.pods.remove(pod_id)
    assert len(ctrs.list()) == 0
    print(f"200 containers made in {took:.1f} s, removed in {time.monotonic() - t1:.1f} s")
