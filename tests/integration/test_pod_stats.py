"""Pod stats and metrics through the CRI socket (monitord, asking runtimed
about the pods): PodSandboxStats, ListPodSandboxStats, ListMetricDescriptors,
ListPodSandboxMetrics, on real pods (real CNI network, cgroups) with real
containers (runc, overlay).

Run under `flock /tmp/cric-net.lock` (creates pods)."""
import os
import socket
import time

import grpc

from conftest import api, wait_for
from test_containers import Ctrs, ctrs, grpc_error, registry  # noqa: F401 (fixtures)
from test_pods import NODE

MiB = 1 << 20


def pstats(ctrs, pod_id):
    return ctrs.cri.call("PodSandboxStats", api.PodSandboxStatsRequest(pod_sandbox_id=pod_id),
                         api.PodSandboxStatsResponse).stats


def lpstats(ctrs, **filt):
    req = api.ListPodSandboxStatsRequest(
        filter=api.PodSandboxStatsFilter(**filt) if filt else None)
    return ctrs.cri.call("ListPodSandboxStats", req, api.ListPodSandboxStatsResponse).stats


def descriptors(ctrs):
    return ctrs.cri.call("ListMetricDescriptors", api.ListMetricDescriptorsRequest(),
                         api.ListMetricDescriptorsResponse).descriptors


def pod_metrics(ctrs):
    return ctrs.cri.call("ListPodSandboxMetrics", api.ListPodSandboxMetricsRequest(),
                         api.ListPodSandboxMetricsResponse).pod_metrics


def send_udp(ip, total):
    """Datagrams from the host to the pod (nothing listens: the pod's
    kernel answers port unreachable, which counts as its tx)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(total // 1000):
            s.sendto(b"x" * 1000, (ip, 9))


def iface(net, name):
    return next((i for i in net.interfaces if i.name == name), None)


def test_pod_stats_cpu_memory_network_processes_filters(ctrs):
    ctrs.pull()
    other_id, _ = ctrs.pod(labels={"app": "ps", "tier": "b"})
    host_id, _ = ctrs.pod(network=NODE, labels={"app": "host"})
    pod_id, pod_cfg = ctrs.pod(labels={"app": "ps", "tier": "a"}, annotations={"n": "1"})
    burn = ctrs.create(pod_id, pod_cfg, ctrs.config(name="burn", args=["while :; do :; done"]))
    hold = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="hold", args=["busybox dd if=/dev/zero of=/dev/shm/held bs=1M count=40 "
                           "2>/dev/null; echo done; exec busybox sleep 1000"]))
    ctrs.start(burn)
    ctrs.start(hold)
    wait_for(lambda: "done" in open(os.path.join(ctrs.logs, "hold/0.log")).read(), 20,
             "the holder's writes")

    a = pstats(ctrs, pod_id[:12])  # a unique prefix will do
    assert a.attributes.id == pod_id
    md = a.attributes.metadata
    assert (md.name, md.namespace) == (pod_cfg.metadata.name, "default")
    assert dict(a.attributes.labels) == {"app": "ps", "tier": "a"}
    assert dict(a.attributes.annotations) == {"n": "1"}
    lx = a.linux
    # Memory: the pod's cgroup holds the 40 MiB of tmpfs.
    assert lx.memory.working_set_bytes.value >= 40 * MiB, lx.memory
    assert lx.memory.usage_bytes.value >= lx.memory.working_set_bytes.value
    # Processes: the burner's shell, the holder's sleep (pids controller).
    if os.path.exists("/sys/fs/cgroup/pids") or os.path.exists("/sys/fs/cgroup/cgroup.procs"):
        assert lx.process.process_count.value >= 2, lx.process
    # Its containers, from the same sampler as ListContainerStats.
    assert {c.attributes.id for c in lx.containers} == {burn, hold}
    by_id = {c.attributes.id: c for c in lx.containers}
    assert by_id[hold].memory.working_set_bytes.value >= 40 * MiB

    # Network: bytes sent to the pod's IP show on its eth0.
    ip = ctrs.pods.status(pod_id).status.network.ip
    assert ip
    before = iface(lx.network, "eth0")
    assert before is not None and lx.network.default_interface.name == "eth0", lx.network
    assert iface(lx.network, "lo") is None
    send_udp(ip, 200_000)

    # CPU: the pod's usage grows at about one core.
    time.sleep(2.5)
    b = pstats(ctrs, pod_id)
    used = b.linux.cpu.usage_core_nano_seconds.value - lx.cpu.usage_core_nano_seconds.value
    assert used > 0.3 * 10**9, used  # 2.5 s on a shared, loaded 2-core host
    # The rate is that of the pod's own two samples: used over their interval.
    rate = b.linux.cpu.usage_nano_cores.value
    interval = b.linux.cpu.timestamp - lx.cpu.timestamp
    assert abs(rate - used * 10**9 / interval) < 0.1 * rate, (rate, used, interval)
    assert rate < 1.5 * 10**9, rate  # one burner: at most about one core
    after = iface(b.linux.network, "eth0")
    assert after.rx_bytes.value - before.rx_bytes.value >= 200_000, (before, after)
    assert after.tx_bytes.value > before.tx_bytes.value
    # One sample for every caller within its freshness.
    listed = {s.attributes.id: s for s in lpstats(ctrs)}
    assert listed[pod_id].linux.cpu.timestamp == b.linux.cpu.timestamp

    # A host-network pod: cpu and memory, no network of its own (as containerd).
    h = pstats(ctrs, host_id)
    assert h.linux.HasField("memory") and not h.linux.HasField("network")

    # Filters: exact id, prefix, labels.
    assert {pod_id, other_id, host_id} <= set(listed)
    assert [s.attributes.id for s in lpstats(ctrs, id=pod_id)] == [pod_id]
    assert [s.attributes.id for s in lpstats(ctrs, id=other_id[:10])] == [other_id]
    assert {s.attributes.id for s in lpstats(ctrs, label_selector={"app": "ps"})} == \
        {pod_id, other_id}
    assert [s.attributes.id for s in lpstats(ctrs, label_selector={"tier": "b"})] == [other_id]
    assert len(lpstats(ctrs, label_selector={"app": "ps", "tier": "c"})) == 0
    assert len(lpstats(ctrs, id="f" * 64)) == 0
    assert [c.attributes.id for c in lpstats(ctrs, id=other_id)[0].linux.containers] == []

    # Unknown pod: NOT_FOUND; none named: INVALID_ARGUMENT.
    code, _ = grpc_error(pstats, ctrs, "f" * 64)
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = grpc_error(pstats, ctrs, "")
    assert code == grpc.StatusCode.INVALID_ARGUMENT

    # A stopped pod leaves the list (READY pods only).
    ctrs.pods.stop(other_id)
    assert other_id not in {s.attributes.id for s in lpstats(ctrs)}

    # Metrics: every one has its descriptor, with one value per label key.
    descs = {d.name: d for d in descriptors(ctrs)}
    assert len(descs) == len(descriptors(ctrs))
    for name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                 "container_network_receive_bytes_total", "container_processes",
                 "container_fs_usage_bytes"):
        assert name in descs, name
    assert list(descs["container_network_receive_bytes_total"].label_keys) == \
        ["id", "name", "interface"]
    pm = {m.pod_sandbox_id: m for m in pod_metrics(ctrs)}
    assert pod_id in pm and other_id not in pm
    mine = pm[pod_id]
    every = list(mine.metrics) + [m for c in mine.container_metrics for m in c.metrics]
    for m in every:
        assert m.name in descs, m.name
        assert len(m.label_values) == len(descs[m.name].label_keys), m
        want = api.COUNTER if m.name.endswith("_total") else api.GAUGE
        assert m.metric_type == want, m
    rx = [m for m in mine.metrics if m.name == "container_network_receive_bytes_total"]
    assert [list(m.label_values) for m in rx] == [[pod_id, "POD", "eth0"]]
    assert rx[0].value.value >= after.rx_bytes.value
    cm = {c.container_id: {m.name: m for m in c.metrics} for c in mine.container_metrics}
    assert set(cm) == {burn, hold}
    assert list(cm[burn]["container_cpu_usage_seconds_total"].label_values) == [burn, "burn"]
    # Whole seconds (as containerd), from samples at least as recent as b's.
    burn_ns = {c.attributes.id: c for c in b.linux.containers}[burn].cpu.usage_core_nano_seconds
    assert cm[burn]["container_cpu_usage_seconds_total"].value.value >= burn_ns.value // 10**9
    assert cm[hold]["container_memory_working_set_bytes"].value.value >= 40 * MiB

    ctrs.remove(burn)
    ctrs.remove(hold)
    assert [c.attributes.id for c in pstats(ctrs, pod_id).linux.containers] == []
