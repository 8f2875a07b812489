"""Container stats and ReopenContainerLog through the CRI socket (monitord):
real pods, registry images, runc, stored's overlay root filesystems.

Run under `flock /tmp/cric-net.lock` (creates pods)."""
import os
import time

import grpc

from conftest import api, wait_for
from test_containers import Ctrs, ctrs, grpc_error, registry  # noqa: F401 (fixtures)

RUNNING = api.CONTAINER_RUNNING


def reopen(ctrs, cid):
    ctrs.cri.call("ReopenContainerLog", api.ReopenContainerLogRequest(container_id=cid),
                  api.ReopenContainerLogResponse)


def counter_lines(path):
    out = []
    for line in open(path).read().splitlines():
        ts, stream, tag, content = line.split(" ", 3)
        assert stream == "stdout" and tag == "F", line
        out.append(int(content))
    return out


def test_reopen_container_log_after_rename(ctrs):
    ctrs.pull()
    pod_id, pod_cfg = ctrs.pod()
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="talk", args=["i=0; while :; do echo $i; i=$((i+1)); busybox usleep 20000; done"]))
    log = os.path.join(ctrs.logs, "talk/0.log")
    ctrs.start(cid)
    wait_for(lambda: os.path.getsize(log) > 0, 5, "the first lines")
    time.sleep(0.5)
    os.rename(log, log + ".1")
    reopen(ctrs, cid[:16])  # a unique prefix will do
    assert os.path.exists(log)  # when the call returns
    wait_for(lambda: os.path.getsize(log) > 100, 5, "lines in the new file")
    ctrs.stop(cid)
    old, new = counter_lines(log + ".1"), counter_lines(log)
    assert old and new
    both = old + new
    assert both == list(range(len(both))), "every line once, in order"
    # Stopped: FAILED_PRECONDITION and no file.
    os.rename(log, log + ".2")
    code, msg = grpc_error(reopen, ctrs, cid)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not running" in msg, msg
    assert not os.path.exists(log)
    ctrs.remove(cid)
    code, _ = grpc_error(reopen, ctrs, cid)
    assert code == grpc.StatusCode.NOT_FOUND
    code, msg = grpc_error(reopen, ctrs, "xyz")
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg


def cstats(ctrs, cid):
    return ctrs.cri.call("ContainerStats", api.ContainerStatsRequest(container_id=cid),
                         api.ContainerStatsResponse).stats


def lstats(ctrs, **filt):
    req = api.ListContainerStatsRequest(
        filter=api.ContainerStatsFilter(**filt) if filt else None)
    return ctrs.cri.call("ListContainerStats", req, api.ListContainerStatsResponse).stats


MiB = 1 << 20


def test_stats_cpu_memory_writable_layer_and_filters(ctrs):
    ctrs.pull()
    pod_id, pod_cfg = ctrs.pod()
    burn = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="burn", args=["while :; do :; done"], labels={"role": "burn", "app": "s"},
        annotations={"note": "hot"}, attempt=2))
    hold = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="hold", labels={"role": "hold", "app": "s"},
        args=["busybox dd if=/dev/zero of=/dev/shm/held bs=1M count=50 2>/dev/null; "
              "busybox dd if=/dev/zero of=/big bs=1M count=10 2>/dev/null; sync; "
              "echo done; exec busybox sleep 1000"]))
    ctrs.start(burn)
    ctrs.start(hold)
    log = os.path.join(ctrs.logs, "hold/0.log")
    wait_for(lambda: "done" in open(log).read(), 20, "the holder's writes")

    # Memory: the 50 MiB in tmpfs count to the holder's cgroup.
    s = cstats(ctrs, hold)
    assert s.attributes.id == hold and s.attributes.metadata.name == "hold"
    assert s.memory.working_set_bytes.value >= 50 * MiB, s.memory
    assert s.memory.usage_bytes.value >= s.memory.working_set_bytes.value
    assert s.memory.page_faults.value > 0
    assert abs(s.memory.timestamp - time.time_ns()) < 10 * 10**9

    # CPU: the burner's usage grows at about one core.
    a = cstats(ctrs, burn)
    assert a.attributes.metadata.attempt == 2
    assert dict(a.attributes.labels) == {"role": "burn", "app": "s"}
    assert dict(a.attributes.annotations) == {"note": "hot"}
    time.sleep(2.5)
    b = cstats(ctrs, burn)
    used = b.cpu.usage_core_nano_seconds.value - a.cpu.usage_core_nano_seconds.value
    assert used > 0.5 * 10**9, used  # 2.5 s on a shared 2-core host
    # Over the samples' own interval: about one core (loose: a shared host).
    rate = used / (b.cpu.timestamp - a.cpu.timestamp)
    assert 0.3 < rate < 1.2, rate
    assert b.cpu.HasField("usage_nano_cores")
    assert 0.25 * 10**9 < b.cpu.usage_nano_cores.value < 1.2 * 10**9, b.cpu
    # A second call within the freshness window reads the same sample.
    assert cstats(ctrs, burn).cpu.timestamp == b.cpu.timestamp

    # The writable layer: the 10 MiB file, measured in the background.
    w = None
    for _ in range(300):
        w = cstats(ctrs, hold).writable_layer
        if w.used_bytes.value >= 10 * MiB:
            break
        time.sleep(0.1)
    assert w.used_bytes.value >= 10 * MiB, w
    assert w.inodes_used.value >= 2
    mp = w.fs_id.mountpoint
    assert os.path.ismount(mp), mp
    stored = os.path.join(ctrs.suite.root, "var/lib/cric/stored")
    assert os.stat(stored).st_dev == os.stat(mp).st_dev

    # Filters: id prefix, pod, labels.
    assert {x.attributes.id for x in lstats(ctrs)} >= {burn, hold}
    assert [x.attributes.id for x in lstats(ctrs, id=burn[:12])] == [burn]
    assert {x.attributes.id for x in lstats(ctrs, pod_sandbox_id=pod_id)} == {burn, hold}
    assert {x.attributes.id for x in lstats(ctrs, pod_sandbox_id=pod_id[:8])} == {burn, hold}
    assert len(lstats(ctrs, pod_sandbox_id="0" * 64)) == 0
    assert [x.attributes.id for x in lstats(ctrs, label_selector={"role": "hold"})] == [hold]
    assert len(lstats(ctrs, label_selector={"app": "s"})) == 2
    assert len(lstats(ctrs, label_selector={"app": "s", "role": "x"})) == 0
    listed = {x.attributes.id: x for x in lstats(ctrs, pod_sandbox_id=pod_id)}
    assert listed[hold].memory.working_set_bytes.value >= 50 * MiB
    assert listed[hold].writable_layer.used_bytes.value >= 10 * MiB
    assert listed[hold].writable_layer.fs_id.mountpoint == mp
    # The list's samples say what the burner does too.
    time.sleep(1.5)
    c = {x.attributes.id: x for x in lstats(ctrs, id=burn)}[burn]
    used = c.cpu.usage_core_nano_seconds.value - b.cpu.usage_core_nano_seconds.value
    assert 0.3 < used / (c.cpu.timestamp - b.cpu.timestamp) < 1.2, (b.cpu, c.cpu)
    assert listed[burn].memory.working_set_bytes.value < 50 * MiB  # not the holder's

    # A removed container vanishes from the list; asked for, NOT_FOUND.
    ctrs.remove(burn)
    assert [x.attributes.id for x in lstats(ctrs, pod_sandbox_id=pod_id)] == [hold]
    code, _ = grpc_error(cstats, ctrs, burn)
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = grpc_error(cstats, ctrs, "not-hex")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    ctrs.remove(hold)
    assert len(lstats(ctrs, pod_sandbox_id=pod_id)) == 0
