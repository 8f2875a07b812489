"""Pod sandboxes through the CRI socket: RunPodSandbox,
StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox and
UpdateRuntimeConfig, with real runc, real namespaces and cgroups, and the
real bridge + host-local + portmap plugins on the test's own network
(netutil.Net, 198.19.42.0/24).

Each test counts what pods leave on the host (mounts, pins, veths, leases,
iptables rules, cgroups, runc state, records, files, infra processes)
before and after, restricted to what is this test's own.
"""
import json
import os
import secrets
import signal
import subprocess
import time

import grpc
import pytest

from conftest import api, pid_running, sanitized, skip_unless_ready, wait_for
from netutil import (PING, PREFIX, fetch, free_port, host_addresses, missing, run,
                     serve_in_netns)

pytestmark = skip_unless_ready(missing, "pod sandboxes with real CNI networks")

POD, CONTAINER, NODE = api.POD, api.CONTAINER, api.NODE
READY, NOTREADY = api.SANDBOX_READY, api.SANDBOX_NOTREADY


def memory_hierarchy():
    for p in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(p, "memory.limit_in_bytes")) or \
                os.path.exists(os.path.join(p, "memory.max")):
            return p
    return None


class Pods:
    """CRI pod calls on a suite, and the pods a test made (removed at the end)."""

    def __init__(self, suite, net):
        self.suite = suite
        self.net = net
        self.cgroup_parent = "/cric-test-" + secrets.token_hex(3)
        self.ids = set()

    @property
    def cri(self):
        return self.suite.cri

    def config(self, name=None, namespace="default", uid=None, attempt=0, pid=CONTAINER,
               network=POD, ipc=POD, ports=(), sysctls=None, dns=None, labels=None,
               annotations=None, hostname="", cgroup_parent=None, resources=None, overhead=None):
        name = name or "pod-" + secrets.token_hex(4)
        opts = api.NamespaceOption(network=network, pid=pid, ipc=ipc)
        linux = api.LinuxPodSandboxConfig(
            cgroup_parent=cgroup_parent if cgroup_parent is not None
            else f"{self.cgroup_parent}/pod-{name}",
            security_context=api.LinuxSandboxSecurityContext(namespace_options=opts),
            sysctls=sysctls or {}, resources=resources, overhead=overhead)
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, namespace=namespace,
                                            uid=uid or "uid-" + name, attempt=attempt),
            hostname=hostname, labels=labels or {}, annotations=annotations or {},
            dns_config=dns,
            port_mappings=[api.PortMapping(protocol=api.TCP, container_port=c, host_port=h)
                           for c, h in ports],
            linux=linux)

    def run(self, config=None, handler="", **kw):
        config = config or self.config(**kw)
        r = self.cri.call("RunPodSandbox",
                          api.RunPodSandboxRequest(config=config, runtime_handler=handler),
                          api.RunPodSandboxResponse, timeout=120)
        self.ids.add(r.pod_sandbox_id)
        return r.pod_sandbox_id

    def status(self, pod_id, verbose=False):
        return self.cri.call("PodSandboxStatus",
                             api.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose),
                             api.PodSandboxStatusResponse)

    def info(self, pod_id):
        return json.loads(self.status(pod_id, verbose=True).info["info"])

    def stop(self, pod_id):
        self.cri.call("StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                      timeout=120)

    def remove(self, pod_id):
        self.cri.call("RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                      timeout=120)
        self.ids.discard(pod_id)

    def list(self, **filt):
        req = api.ListPodSandboxRequest(filter=api.PodSandboxFilter(**filt) if filt else None)
        return self.cri.call("ListPodSandbox", req, api.ListPodSandboxResponse).items

    # --- what pods leave on the host ---

    def cgroups(self):
        h = memory_hierarchy()
        root = os.path.join(h, self.cgroup_parent.lstrip("/")) if h else None
        if not root or not os.path.isdir(root):
            return 0
        return sum(len(dirs) for _, dirs, _ in os.walk(root)) + 1

    def infra_processes(self):
        n = 0
        for p in os.listdir("/proc"):
            if not p.isdigit() or not pid_running(int(p)):
                continue
            try:
                with open(f"/proc/{p}/cgroup") as f:
                    if self.cgroup_parent + "/" in f.read():
                        n += 1
            except OSError:
                pass
        return n

    def counts(self):
        root = self.suite.root
        c = dict(self.net.counts())

        def entries(*parts):
            d = os.path.join(root, *parts)
            return len(os.listdir(d)) if os.path.isdir(d) else 0
        c.update({
            "records": entries("var/lib/cric/runtimed/sandboxes"),
            "sandbox_dirs": entries("run/cric/runtimed/sandboxes"),
            "runc_state": entries("run/cric/runtimed/runtimes/runc"),
            "cgroups": self.cgroups(),
            "infra_processes": self.infra_processes(),
        })
        return c

    def cleanup(self):
        errors = []
        if self.ids:
            self.suite.up(check=False)
        for pod_id in list(self.ids):
            try:
                self.stop(pod_id)
                self.remove(pod_id)
            except Exception as e:
                errors.append(f"{pod_id}: {e}")
        if self.cgroups():
            errors.append(f"cgroups left under {self.cgroup_parent}")
            for h in os.listdir("/sys/fs/cgroup"):
                d = os.path.join("/sys/fs/cgroup", h, self.cgroup_parent.lstrip("/"))
                for dirpath, _, _ in sorted(os.walk(d), reverse=True) if os.path.isdir(d) else []:
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
        return errors


@pytest.fixture
def pods(suite, net):
    p = Pods(suite, net)
    yield p
    errors = p.cleanup()
    assert not errors, errors


def netns_of(pods, pod_id):
    return pods.info(pod_id)["netns"]


def in_netns(netns, *cmd, check=True):
    return run("nsenter", "--net=" + netns, *cmd, check=check)


def ping(addr, pods=None, pod_id=None):
    """ICMP echo to addr from the host, or from inside a pod's network namespace."""
    cmd = ["/usr/bin/python3", "-c", PING, addr]
    if pod_id:
        return in_netns(netns_of(pods, pod_id), *cmd)
    return run(*cmd)


def grpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value.code(), e.value.details()


# ---------------------------------------------------------------------------


def test_pods_get_addresses_and_reach_each_other(pods):
    before = pods.counts()
    a = pods.run(name="web", pid=POD, labels={"app": "web"}, annotations={"note": "a"})
    b = pods.run(name="db", labels={"app": "db"})
    sa, sb = pods.status(a).status, pods.status(b).status
    for s, pod_id, name in ((sa, a, "web"), (sb, b, "db")):
        assert s.id == pod_id and len(pod_id) == 64
        assert s.state == READY
        assert s.metadata.name == name and s.metadata.namespace == "default"
        assert s.metadata.uid == "uid-" + name
        assert s.network.ip.startswith(PREFIX)
        assert s.runtime_handler == "runc"
        assert s.linux.namespaces.options.network == POD
        assert abs(s.created_at / 1e9 - time.time()) < 120
    assert sa.labels == {"app": "web"} and sa.annotations == {"note": "a"}
    assert sa.linux.namespaces.options.pid == POD
    assert sb.linux.namespaces.options.pid == CONTAINER
    assert sa.network.ip != sb.network.ip

    # Reachable from each other's namespaces and from the host.
    ping(sb.network.ip, pods, a)
    ping(sa.network.ip, pods, b)
    ping(sa.network.ip)

    info = pods.info(a)
    assert info["pid"] > 0 and pid_running(info["pid"])
    assert info["cni_result"]["ips"][0]["address"].startswith(sa.network.ip + "/")
    assert info["config"]["metadata"]["name"] == "web"
    assert pods.info(b)["pid"] == 0  # no infra without a shared PID namespace

    listed = {p.id: p for p in pods.list()}
    assert set(listed) == {a, b}
    assert listed[a].labels == {"app": "web"} and listed[a].state == READY

    for pod_id in (a, b):
        pods.stop(pod_id)
        pods.remove(pod_id)
    assert pods.counts() == before


def test_host_network_pod_shares_the_hosts_namespaces(pods):
    before = pods.counts()
    p = pods.run(network=NODE, ipc=NODE, pid=POD)
    s = pods.status(p).status
    assert s.state == READY
    assert s.network.ip == ""
    assert s.linux.namespaces.options.network == NODE
    info = pods.info(p)
    assert info["netns"] == "" and info["uts_namespace"] == "" and info["ipc_namespace"] == ""
    # No CNI call: netd holds nothing for it.
    assert pods.counts()["pins"] == before["pins"]
    assert pods.counts()["records"] == before["records"] + 1
    pid = info["pid"]
    for ns in ("net", "uts", "ipc"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}"), ns
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    pods.stop(p)
    pods.remove(p)
    assert pods.counts() == before


def test_host_port_reaches_the_pod_through_host_addresses_and_loopback(pods):
    host_port = free_port()
    p = pods.run(ports=[(8080, host_port)])
    ip = pods.status(p).status.network.ip
    listener = serve_in_netns(netns_of(pods, p), 8080)
    try:
        assert fetch(ip, 8080).startswith("hello from the pod")
        targets = host_addresses() + ["127.0.0.1"]
        assert len(targets) >= 2, targets
        for addr in targets:
            assert fetch(addr, host_port).startswith("hello from the pod"), addr
    finally:
        listener.kill()
        listener.wait()


def test_dns_hostname_sysctls_and_cgroup_inside_the_pod(pods):
    dns = api.DNSConfig(servers=["198.19.42.53", "2001:db8::53"],
                        searches=["default.svc.cluster.local", "svc.cluster.local"],
                        options=["ndots:5", "timeout:2"])
    mib = 1024 * 1024
    p = pods.run(name="probe", hostname="probe-host", pid=POD, dns=dns,
                 sysctls={"net.ipv4.ip_unprivileged_port_start": "80",
                          "net/ipv4/conf/all/forwarding": "1",  # slashed form
                          "kernel.shmmni": "1000", "kernel.msgmax": "16384"},
                 resources=api.LinuxContainerResources(memory_limit_in_bytes=64 * mib,
                                                       cpu_shares=512),
                 overhead=api.LinuxContainerResources(memory_limit_in_bytes=16 * mib))
    info = pods.info(p)

    # UTS: the pinned namespace carries the hostname, and so does the infra.
    assert run("nsenter", "--uts=" + info["uts_namespace"], "hostname").stdout.strip() == \
        "probe-host"
    pid = info["pid"]
    with open(f"/proc/{pid}/root/etc/hostname") as f:
        assert f.read().strip() == "probe-host"
    # DNS: the pod's resolv.conf as its containers see it.
    with open(f"/proc/{pid}/root/etc/resolv.conf") as f:
        text = f.read()
    assert "nameserver 198.19.42.53\n" in text and "nameserver 2001:db8::53\n" in text
    assert "search default.svc.cluster.local svc.cluster.local\n" in text
    assert "options ndots:5 timeout:2\n" in text
    with open(f"/proc/{pid}/root/etc/hosts") as f:
        assert pods.status(p).status.network.ip + "\tprobe-host" in f.read()
    # Sysctls: set inside the pod's namespaces, the host's untouched.
    netns = info["netns"]
    assert in_netns(netns, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").stdout.strip() \
        == "80"
    assert in_netns(netns, "cat", "/proc/sys/net/ipv4/conf/all/forwarding").stdout.strip() == "1"
    ipc = info["ipc_namespace"]
    assert run("nsenter", "--ipc=" + ipc, "cat", "/proc/sys/kernel/shmmni").stdout.strip() == \
        "1000"
    assert run("nsenter", "--ipc=" + ipc, "cat", "/proc/sys/kernel/msgmax").stdout.strip() == \
        "16384"
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read().strip() != "1000"
    # The infra: its own PID namespace, unprivileged, in the pod's cgroup.
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    with open(f"/proc/{pid}/status") as f:
        st = f.read()
    assert "\nUid:\t65535\t" in st and "\nCapEff:\t0000000000000000\n" in st
    cgroup = pods.cgroup_parent + "/pod-probe"
    with open(f"/proc/{pid}/cgroup") as f:
        assert cgroup + "/cric-" + p in f.read()
    h = memory_hierarchy()
    if h:  # pod resources + overhead on the pod's cgroup
        d = os.path.join(h, cgroup.lstrip("/"))
        name = "memory.limit_in_bytes" if os.path.exists(os.path.join(d, "memory.limit_in_bytes")) \
            else "memory.max"
        with open(os.path.join(d, name)) as f:
            assert int(f.read()) == 80 * mib


def test_bad_input_duplicates_and_idempotence(pods):
    before = pods.counts()
    cri = pods.cri
    bad = [
        (api.PodSandboxConfig(), "metadata"),
        (pods.config(name="-x"), "metadata.name"),
        (pods.config(sysctls={"kernel.panic": "1"}), "not namespaced"),
        (pods.config(sysctls={"net.ipv4.ip_forward": "1"}, network=NODE), "network namespace"),
        (pods.config(sysctls={"net/../../kernel/panic": "1"}), "invalid sysctl"),
        (pods.config(sysctls={"net.ipv4.no_such_knob": "1"}), "does not exist"),
        (pods.config(dns=api.DNSConfig(servers=["198.19.42.53\nnameserver 1.1.1.1"])),
         "not an IP"),
        (pods.config(dns=api.DNSConfig(searches=["a b"])), "searches"),
        (pods.config(hostname="bad_host!"), "hostname"),
        (pods.config(cgroup_parent="/a/../../etc"), "cgroup_parent"),
        (pods.config(pid=api.TARGET), "namespace_options.pid"),
    ]
    for cfg, what in bad:
        code, msg = grpc_error(cri.call, "RunPodSandbox", api.RunPodSandboxRequest(config=cfg),
                               api.RunPodSandboxResponse)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (what, code, msg)
        assert what in msg, (what, msg)
    code, msg = grpc_error(pods.run, handler="no-such-runtime")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no-such-runtime" in msg
    assert pods.counts() == before
    assert len(pods.list()) == 0

    cfg = pods.config(name="twin")
    first = pods.run(cfg)
    # The same pod attempt again is the kubelet's retry after a deadline:
    # answered with the pod made, never "name is reserved".
    assert pods.run(cfg) == first
    assert [p.id for p in pods.list()] == [first]
    # Another attempt of the same pod is a different sandbox.
    cfg2 = pods.config(name="twin", attempt=1)
    second = pods.run(cfg2)
    assert second != first

    code, _ = grpc_error(pods.status, "0" * 64)
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = grpc_error(pods.status, "")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = grpc_error(pods.status, "../../etc")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    pods.stop("0" * 64)      # unknown: fine
    pods.remove("0" * 64)
    # Unique prefixes work like crictl's.
    assert pods.status(first[:12]).status.id == first
    for _ in range(2):
        pods.stop(first)
    assert pods.status(first).status.state == NOTREADY
    assert pods.status(second).status.state == READY
    for _ in range(2):
        pods.remove(first)
    code, _ = grpc_error(pods.status, first)
    assert code == grpc.StatusCode.NOT_FOUND
    pods.stop(first)
    pods.remove(second)  # remove without stop stops first
    # The name is free again once removed.
    pods.remove(pods.run(cfg))
    assert pods.counts() == before


def test_failing_plugin_fails_the_pod_and_leaves_nothing(pods):
    before = pods.counts()
    doc = pods.net.conflist()
    doc["plugins"][0]["ipam"]["ranges"] = [[{"subnet": "198.19.42.0/33"}]]
    pods.net.write_conf(doc)
    code, msg = grpc_error(pods.run, pid=POD)
    assert code != grpc.StatusCode.OK
    assert "198.19.42.0/33" in msg or "invalid CIDR" in msg, msg
    assert len(pods.list()) == 0
    assert pods.counts() == before


def test_failed_starts_roll_back_without_touching_freed_memory(pods):
    """A RunPodSandbox that fails after its sandbox is in the table rolls it
    back; the rollback once unlocked the sandbox's mutex after freeing it
    (inside pthread_mutex_unlock, where ASan does not look). runtimed runs
    under valgrind memcheck here, which does; its reports fail the test
    (conftest's SANITIZER_MARKS). A sanitized build cannot run under
    valgrind: there the rollbacks still run, checked by ASan alone."""
    import shutil
    if not sanitized("runtimed"):
        if not shutil.which("valgrind"):
            pytest.skip("valgrind is not installed (deploy/install-deps)")
        pods.suite.kill("runtimed")
        pods.suite.up(env={"CRIC_VALGRIND": "runtimed"})
        wait_for(lambda: pods.cri.version(timeout=30).runtime_name == "cric", timeout=60,
                 what="runtimed under valgrind")
    before = pods.counts()
    for pid_mode in (POD, CONTAINER):
        # An allowed sysctl with a value the kernel refuses: the API server
        # does not check it, the pod fails after its namespaces exist.
        code, msg = grpc_error(pods.run, pid=pid_mode,
                               sysctls={"net.ipv4.ip_local_port_range": "abc"})
        assert code != grpc.StatusCode.OK and "ip_local_port_range" in msg, msg
    # A failing CNI plugin, after the pod's cgroup and pins exist.
    doc = pods.net.conflist()
    doc["plugins"][0]["ipam"]["ranges"] = [[{"subnet": "198.19.42.0/33"}]]
    pods.net.write_conf(doc)
    code, msg = grpc_error(pods.run, pid=POD)
    assert code != grpc.StatusCode.OK
    assert len(pods.list()) == 0
    assert pods.counts() == before
    log = pods.suite.log("runtimed")
    assert log.count("rolling back") >= 3, log[-3000:]
    for mark in ("Invalid read of size", "Invalid write of size", "Invalid free()"):
        assert mark not in log, log[-6000:]


def test_infra_oom_score_adj_is_set_and_clamped(pods):
    """The infra's config.json says oomScoreAdj -998 (as containerd and
    CRI-O give the sandbox) or, where runtimed lacks CAP_SYS_RESOURCE (this
    host), the lowest value it can grant, its own, and says so in its log;
    the infra process runs with that value."""
    p = pods.run(pid=POD)
    rt = pods.suite.pid("runtimed")
    with open(f"/proc/{rt}/status") as f:
        capeff = int([ln for ln in f if ln.startswith("CapEff:")][0].split()[1], 16)
    with open(f"/proc/{rt}/oom_score_adj") as f:
        own = int(f.read())
    want = -998 if capeff & (1 << 24) else max(-998, own)
    info = pods.info(p)
    with open(os.path.join(info["sandbox_dir"], "infra", "config.json")) as f:
        assert json.load(f)["process"]["oomScoreAdj"] == want
    with open(f"/proc/{info['pid']}/oom_score_adj") as f:
        assert int(f.read()) == want
    if want != -998:
        assert f"oom_score_adj -998 clamped to {want}" in pods.suite.log("runtimed")
    pods.stop(p)


def test_log_directory_must_be_a_clean_absolute_path(pods):
    before = pods.counts()
    for bad in ["var/log/pods/x", "/var/log/pods/x/..", "/var/log/pods/../x", "/var//log",
                "/var/log/./pods", "/var/log/pods/", "/var/log/\x01"]:
        cfg = pods.config()
        cfg.log_directory = bad
        code, msg = grpc_error(pods.run, config=cfg)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "log_directory" in msg, (bad, msg)
    assert len(pods.list()) == 0
    assert pods.counts() == before
    cfg = pods.config()
    cfg.log_directory = "/var/log/pods/default_ok_" + secrets.token_hex(4)
    p = pods.run(config=cfg)
    pods.stop(p)


# Fewer under a sanitized build (make check-asan): the same code paths, the
# leak count still exact, a quarter of the time.
POD_CYCLES = 25 if sanitized("runtimed") else 100


def test_hundred_cycles_leave_nothing_behind(pods):
    before = pods.counts()
    for i in range(POD_CYCLES):
        p = pods.run(name=f"cycle-{i}", pid=POD if i % 2 else CONTAINER,
                     ports=[(80, 20000 + i)] if i % 10 == 0 else ())
        assert pods.status(p).status.state == READY
        pods.stop(p)
        pods.remove(p)
    after = pods.counts()
    assert after == before, (before, after)


def test_kill9_netd_and_runtimed_then_recover(pods):
    before = pods.counts()
    a = pods.run(name="survivor-a", pid=POD, ports=[(80, free_port())])
    b = pods.run(name="survivor-b")
    st = {p: pods.status(p, verbose=True) for p in (a, b)}
    infra = json.loads(st[a].info["info"])["pid"]

    for daemon in ("netd", "runtimed"):
        pods.suite.kill(daemon)
    pods.suite.up()
    for p in (a, b):
        now = pods.status(p, verbose=True)
        assert now.status.state == READY
        assert now.status.network.ip == st[p].status.network.ip
        assert now.status.created_at == st[p].status.created_at
        assert json.loads(now.info["info"])["pid"] == json.loads(st[p].info["info"])["pid"]
    assert pid_running(infra)
    ping(pods.status(b).status.network.ip, pods, a)

    # Kill again, this time between a stop and a remove.
    pods.stop(a)
    pods.suite.kill("runtimed")
    pods.suite.kill("netd")
    pods.suite.up()
    assert pods.status(a).status.state == NOTREADY
    wait_for(lambda: not pid_running(infra), what="the infra to be gone")
    for p in (a, b):
        pods.stop(p)
        pods.remove(p)
    assert pods.counts() == before


def test_infra_death_makes_the_pod_notready(pods):
    p = pods.run(pid=POD)
    pid = pods.info(p)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pods.status(p).status.state == NOTREADY, what="NOTREADY")
    assert [x.state for x in pods.list(id=p)] == [NOTREADY]


def test_list_hundred_pods_with_filters(pods):
    before = pods.counts()
    ids = [pods.run(name=f"many-{i}", labels={"group": str(i % 3), "all": "yes"})
           for i in range(100)]
    assert sorted(p.id for p in pods.list()) == sorted(ids)
    assert len(pods.list(label_selector={"group": "1"})) == 33
    assert len(pods.list(label_selector={"group": "1", "all": "yes"})) == 33
    assert len(pods.list(label_selector={"group": "1", "all": "no"})) == 0
    assert [p.id for p in pods.list(id=ids[7])] == [ids[7]]
    assert [p.id for p in pods.list(id=ids[7][:20])] == [ids[7]]
    assert len(pods.list(id="f" * 64)) == 0
    for p in ids[:10]:
        pods.stop(p)
    notready = pods.list(state=api.PodSandboxStateValue(state=NOTREADY))
    assert sorted(p.id for p in notready) == sorted(ids[:10])
    assert len(pods.list(state=api.PodSandboxStateValue(state=READY))) == 90
    assert len(pods.list(state=api.PodSandboxStateValue(state=READY),
                         label_selector={"group": "0"})) == len(
        [i for i in range(10, 100) if i % 3 == 0])
    seen = {p.metadata.name for p in pods.list()}
    assert seen == {f"many-{i}" for i in range(100)}
    for p in ids:
        pods.remove(p)
    assert pods.counts() == before


def test_update_runtime_config_hands_the_pod_cidr_to_ipam(pods):
    doc = pods.net.conflist()
    # host-local puts runtimeConfig.ipRanges before its own ranges, which
    # must then not overlap: the network takes its ranges from the runtime.
    doc["plugins"][0]["capabilities"] = {"ipRanges": True}
    del doc["plugins"][0]["ipam"]["ranges"]
    pods.net.write_conf(doc)
    cri = pods.cri

    def update(cidr):
        return cri.call("UpdateRuntimeConfig", api.UpdateRuntimeConfigRequest(
            runtime_config=api.RuntimeConfig(network_config=api.NetworkConfig(pod_cidr=cidr))))

    code, _ = grpc_error(update, "198.19.42.0/40")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    update("198.19.42.128/25")
    p = pods.run()
    assert int(pods.status(p).status.network.ip.split(".")[3]) > 128
    # Kept across a restart of runtimed.
    pods.suite.kill("runtimed")
    pods.suite.up()
    q = pods.run()
    assert int(pods.status(q).status.network.ip.split(".")[3]) > 128
    update("")  # empty: no change
    r = pods.run()
    assert int(pods.status(r).status.network.ip.split(".")[3]) > 128


def test_network_ready_follows_the_cni_dir(pods):
    def network_ready():
        conds = {c.type: c.status for c in pods.cri.status().status.conditions}
        return conds["NetworkReady"]
    assert network_ready()
    os.unlink(pods.net.conf_file)
    assert not network_ready()
    code, msg = grpc_error(pods.run)
    assert code != grpc.StatusCode.OK and "network" in msg.lower()
    pods.net.write_conf(pods.net.conflist())
    assert network_ready()
    pods.run()


def test_stop_is_retried_after_netd_is_back(pods):
    p = pods.run()
    pods.suite.kill("netd")
    code, _ = grpc_error(pods.stop, p)
    assert code == grpc.StatusCode.UNAVAILABLE
    pods.suite.up()
    pods.stop(p)
    assert pods.status(p).status.state == NOTREADY
    pods.remove(p)


def test_runc_state_is_per_suite(pods):
    p = pods.run(pid=POD)
    out = subprocess.run(["runc", "--root", os.path.join(pods.suite.root,
                                                          "run/cric/runtimed/runtimes/runc"),
                          "list", "-q"], capture_output=True, text=True).stdout.split()
    assert out == [p]
    host = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split()
    assert p not in host


# A CNI plugin that holds ADD for a while (and says when it started), to
# kill runtimed in the middle of a RunPodSandbox.
SLOW_PLUGIN = """#!/usr/bin/python3
import json, os, sys, time
conf = json.load(sys.stdin)
if os.environ.get("CNI_COMMAND") == "ADD":
    open(conf["marker"], "w").close()
    time.sleep(conf["sleep"])
    json.dump(conf.get("prevResult") or {"cniVersion": conf["cniVersion"]}, sys.stdout)
"""


def test_kill9_runtimed_mid_run_rolls_the_pod_back(pods, tmp_path):
    before = pods.counts()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "slow").write_text(SLOW_PLUGIN)
    (bindir / "slow").chmod(0o755)
    pods.suite.write_config({"cni": {"bin_dirs": [str(bindir), "/usr/lib/cni"]}})
    pods.suite.kill("netd")
    pods.suite.up()
    marker = tmp_path / "adding"
    doc = pods.net.conflist()
    doc["plugins"].append({"type": "slow", "marker": str(marker), "sleep": 3})
    pods.net.write_conf(doc)

    fut = pods.cri.future("RunPodSandbox",
                          api.RunPodSandboxRequest(config=pods.config(name="halfway", pid=POD)),
                          api.RunPodSandboxResponse, timeout=60)
    wait_for(marker.exists, timeout=30, what="the CNI ADD to start")
    pods.suite.kill("runtimed")
    with pytest.raises(grpc.RpcError) as e:
        fut.result()
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    # Restarted, runtimed finds the half-made pod and undoes it (CNI DEL
    # after netd's ADD finished, pins, cgroups, files, record).
    pods.suite.up()
    assert len(pods.list()) == 0
    assert pods.counts() == before
    assert "rolled back" in pods.suite.log("runtimed")
    # The name is free: the kubelet's retry succeeds.
    pods.run(config=pods.config(name="halfway", pid=POD))


# A CNI plugin that logs each call and holds ADD for a while; fails ADD
# when its config says so.
LOGGING_SLOW_PLUGIN = """#!/usr/bin/python3
import json, os, sys, time
conf = json.load(sys.stdin)
cmd = os.environ.get("CNI_COMMAND")
with open(conf["log"], "a") as f:
    f.write(cmd + "\\n")
if cmd == "ADD":
    time.sleep(conf["sleep"])
    if conf.get("fail"):
        print(json.dumps({"cniVersion": conf["cniVersion"], "code": 7, "msg": "slow fails"}))
        sys.exit(1)
    json.dump(conf.get("prevResult") or {"cniVersion": conf["cniVersion"]}, sys.stdout)
"""


def slow_network(pods, tmp_path, sleep, fail=False):
    """The test network with the logging slow plugin chained last; returns
    the file its calls are logged to."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "slow").write_text(LOGGING_SLOW_PLUGIN)
    (bindir / "slow").chmod(0o755)
    pods.suite.write_config({"cni": {"bin_dirs": [str(bindir), "/usr/lib/cni"]}})
    pods.suite.kill("netd")
    pods.suite.up()
    log = tmp_path / "calls"
    doc = pods.net.conflist()
    doc["plugins"].append({"type": "slow", "log": str(log), "sleep": sleep, "fail": fail})
    pods.net.write_conf(doc)
    return log


def cni_calls(log):
    return log.read_text().split() if log.exists() else []


def run_with_deadline(pods, config, seconds):
    return grpc_error(pods.cri.call, "RunPodSandbox", api.RunPodSandboxRequest(config=config),
                      api.RunPodSandboxResponse, timeout=seconds)


def test_run_retried_by_name_gets_the_creation_in_progress(pods, tmp_path):
    """The kubelet gives RunPodSandbox a deadline and, when it passes,
    retries the same pod attempt (with a request that is not byte-identical).
    The first creation keeps going; the retry waits for it and gets its id;
    nothing is made twice. (Before: the retry got ALREADY_EXISTS "is
    reserved" while the first creation ran and after it.)"""
    before = pods.counts()
    log = slow_network(pods, tmp_path, sleep=4)
    cfg = pods.config(name="slow", pid=POD)
    code, _ = run_with_deadline(pods, cfg, 1.5)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert cni_calls(log) == ["ADD"]
    # A retry whose own deadline passes while the creation runs.
    code, msg = run_with_deadline(pods, cfg, 0.5)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED, msg
    # The kubelet's retry: same name, namespace, uid and attempt.
    retry = pods.config(name="slow", pid=POD, annotations={"retry": "1"})
    t0 = time.monotonic()
    pod = pods.run(retry)
    assert time.monotonic() - t0 < 10
    assert [p.id for p in pods.list()] == [pod]
    assert pods.status(pod).status.state == READY
    # The first request's labels and annotations: its creation made the pod.
    assert "retry" not in pods.status(pod).status.annotations
    # And once made, a retry gets it at once.
    assert pods.run(cfg) == pod
    assert cni_calls(log) == ["ADD"]
    now = pods.counts()
    for what in ("pins", "records", "sandbox_dirs", "infra_processes", "veths", "leases"):
        assert now[what] == before[what] + 1, (what, before, now)
    pods.stop(pod)
    pods.remove(pod)
    assert pods.counts() == before


def test_run_retried_after_a_failed_creation_starts_anew(pods, tmp_path):
    """Only a creation that fails rolls back: a retry waiting for it then
    creates the pod anew (and gets the new one's id)."""
    before = pods.counts()
    log = slow_network(pods, tmp_path, sleep=3, fail=True)
    cfg = pods.config(name="flaky")
    code, _ = run_with_deadline(pods, cfg, 1)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert cni_calls(log) == ["ADD"]
    # The network is fixed while the first creation still fails.
    doc = pods.net.conflist()
    doc["plugins"].append({"type": "slow", "log": str(log), "sleep": 0})
    pods.net.write_conf(doc)
    pod = pods.run(cfg)
    calls = cni_calls(log)
    assert calls[0] == "ADD" and calls[-1] == "ADD" and calls.count("ADD") == 2, calls
    assert "rolling back" in pods.suite.log("runtimed")
    assert [p.id for p in pods.list()] == [pod]
    assert pods.status(pod).status.state == READY
    pods.stop(pod)
    pods.remove(pod)
    assert pods.counts() == before


def test_pod_whose_network_went_with_a_reboot_is_notready(pods):
    """runtimed asks netd (PodNetworkStatus) whether a pod's network is still
    there: after a reboot (here: both daemons killed, the pin unmounted),
    the pod is NOTREADY and its stop and remove clean up."""
    before = pods.counts()
    p = pods.run()
    netns = pods.info(p)["netns"]
    assert netns.startswith(os.path.join(pods.suite.root, "run/cric/netd/netns/"))
    pods.suite.kill("runtimed")
    pods.suite.kill("netd")
    run("umount", netns)
    pods.suite.up()
    assert pods.status(p).status.state == NOTREADY
    assert [x.state for x in pods.list(id=p)] == [NOTREADY]
    assert "network" in pods.suite.log("runtimed")
    pods.stop(p)
    pods.remove(p)
    # A real reboot also empties iptables; here the bridge plugin's DEL,
    # without the namespace, cannot find its masquerade rules (the net
    # fixture removes them).
    after = pods.counts()
    after.pop("iptables_rules")
    before.pop("iptables_rules")
    assert after == before


def test_runtime_handlers_from_the_config(pods):
    pods.suite.write_config({"runtimed": {"runtimes": {"runc": {}, "other": {
        "path": "/usr/sbin/runc"}}}})
    pods.suite.kill("runtimed")
    pods.suite.up()
    handlers = [h.name for h in pods.cri.status().runtime_handlers]
    assert handlers == ["", "other", "runc"] or handlers == ["", "runc", "other"]
    p = pods.run(pid=POD, handler="other")
    assert pods.status(p).status.runtime_handler == "other"
    state = os.path.join(pods.suite.root, "run/cric/runtimed/runtimes/other")
    assert os.listdir(state) == [p]
    pods.stop(p)
    assert os.listdir(state) == []
    # An unknown default is refused at start, naming the key.
    pods.suite.write_config({"runtimed": {"default_runtime": "nope"}})
    pods.suite.kill("runtimed")
    r = pods.suite.up(check=False)
    assert r.returncode != 0
    assert "default_runtime" in pods.suite.log("runtimed")
    pods.suite.write_config({})
    pods.suite.up()
