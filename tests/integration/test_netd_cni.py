"""netd's pod networks with the real CNI plugins (issue 4, netd's half).

netd's internal methods (cric.netd.SetupPodNetwork, TeardownPodNetwork,
PodNetworkStatus) are called directly over nng with the netd-call test tool,
on a suite started under a temp root whose CNI dir holds a bridge +
host-local + portmap network on 198.19.42.0/24 (inside the test range
198.18.0.0/15, outside the default config's 198.18.0.0/16), with a bridge and
network name of its own per test. Everything a pod gets (pinned namespace,
veth, IP lease, iptables rules) is counted before and after; only what is
this test's is counted (its bridge, its subnet, its network name, its root),
so suites running beside it on the machine do not disturb the counts.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BUILD, wait_for

NETD_CALL = os.path.join(BUILD, "tools", "netd-call")
CNI_BIN = "/usr/lib/cni"
PREFIX = "198.19.42."
SUBNET = PREFIX + "0/24"
GATEWAY = PREFIX + "1"


def _missing():
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    if not os.access(NETD_CALL, os.X_OK):
        return f"{NETD_CALL} not built (tests/tools/netd-call.c)"
    for p in ("bridge", "host-local", "portmap"):
        if not os.access(os.path.join(CNI_BIN, p), os.X_OK):
            return f"CNI plugin {p} not in {CNI_BIN} (containernetworking-plugins)"
    for tool in ("nsenter", "iptables-save", "ip"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def run(*cmd, check=True, timeout=30):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{cmd}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


class Net:
    """A CNI network in a suite's conf dir, and netd's methods on it."""

    def __init__(self, suite):
        self.suite = suite
        tag = secrets.token_hex(3)
        self.bridge = "crt" + tag          # at most 15 characters
        self.name = "crictest-" + tag
        self.data_dir = os.path.join(suite.root, "var/lib/cni/networks")
        self.lease_dir = os.path.join(self.data_dir, self.name)
        self.netns_dir = os.path.join(suite.root, "run/cric/netd/netns")
        self.results_dir = os.path.join(suite.root, "var/lib/cric/netd/results")
        self.conf_file = os.path.join(suite.cni_dir, "10-test.conflist")
        self.pods = set()

    def conflist(self, subnet=SUBNET, gateway=GATEWAY):
        return {
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True,
                 "ipMasq": True, "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": self.data_dir,
                          "routes": [{"dst": "0.0.0.0/0"}],
                          "ranges": [[{"subnet": subnet, "gateway": gateway}]]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def write_conf(self, doc):
        os.makedirs(self.suite.cni_dir, exist_ok=True)
        tmp = self.conf_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, self.conf_file)

    def call(self, method, req, timeout=120):
        r = run(NETD_CALL, "--root", self.suite.root, "--timeout", str(timeout),
                "cric.netd." + method, json.dumps(req), timeout=timeout + 10)
        return json.loads(r.stdout)

    def setup(self, pod_id=None, ports=(), **extra):
        pod_id = pod_id or secrets.token_hex(32)
        self.pods.add(pod_id)
        req = {"pod_id": pod_id, "name": "pod-" + pod_id[:8], "namespace": "default",
               "uid": "uid-" + pod_id[:12],
               "port_mappings": [{"protocol": "tcp", "container_port": c, "host_port": h}
                                 for c, h in ports]}
        req.update(extra)
        return pod_id, self.call("SetupPodNetwork", req)

    def setup_ok(self, pod_id=None, ports=()):
        pod_id, r = self.setup(pod_id, ports)
        assert r["code"] == 0, r
        return pod_id, r["response"]["network"]

    def teardown(self, pod_id):
        r = self.call("TeardownPodNetwork", {"pod_id": pod_id})
        assert r["code"] == 0, r
        self.pods.discard(pod_id)
        return r["response"]

    def status(self, pod_id, check=False):
        return self.call("PodNetworkStatus", {"pod_id": pod_id, "check": check})

    # --- what is on the host ---

    def leases(self):
        if not os.path.isdir(self.lease_dir):
            return []
        return sorted(f for f in os.listdir(self.lease_dir) if f.startswith(PREFIX))

    def rules(self):
        """This network's iptables rules: its comments name it, its per-pod
        chains (masquerade, hostport DNAT) match or target its subnet."""
        out = run("iptables-save").stdout.splitlines()
        return [line for line in out if line.startswith("-A ")
                and (self.name in line or PREFIX in line)]

    def counts(self):
        with open("/proc/self/mountinfo") as f:
            mounts = sum(1 for line in f if self.suite.root in line)
        return {
            "mounts": mounts,
            # The pods' veths are the ports of this network's bridge.
            "veths": len(os.listdir(f"/sys/class/net/{self.bridge}/brif"))
            if os.path.isdir(f"/sys/class/net/{self.bridge}") else 0,
            "pins": len(os.listdir(self.netns_dir)) if os.path.isdir(self.netns_dir) else 0,
            "records": len(os.listdir(self.results_dir))
            if os.path.isdir(self.results_dir) else 0,
            "leases": len(self.leases()),
            "iptables_rules": len(self.rules()),
        }

    def cleanup(self):
        """Whatever the test did: tear down its pods, drop the bridge."""
        errors = []
        if self.pods:
            self.suite.up(check=False)  # netd may have been killed by the test
        for pod_id in list(self.pods):
            try:
                self.teardown(pod_id)
            except Exception as e:  # keep cleaning up
                errors.append(f"teardown {pod_id}: {e}")
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        # Safety net for rules a failed teardown left: never leak onto the host.
        for table in ("nat", "filter"):
            for line in run("iptables-save", "-t", table).stdout.splitlines():
                if line.startswith("-A ") and self.name in line:
                    subprocess.run(["iptables", "-t", table, "-D"] + _split(line[3:]),
                                   capture_output=True)
        return errors


def _split(rule):
    import shlex
    return shlex.split(rule)


@pytest.fixture
def net(suite):
    n = Net(suite)
    n.write_conf(n.conflist())
    yield n
    errors = n.cleanup()
    assert not errors, errors


def pin_of(net, pod_id):
    return os.path.join(net.netns_dir, pod_id)


def in_pod(net, pod_id, *cmd, check=True, timeout=30):
    return run("nsenter", "--net=" + pin_of(net, pod_id), *cmd, check=check, timeout=timeout)


# ICMP echo over a raw socket (no ping binary on the test machines): exits 0
# when the address answers within 2 s.
PING = """
import os, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
ident = os.getpid() & 0xffff
hdr = struct.pack('!BBHHH', 8, 0, 0, ident, 1) + b'cric-ping-'
pkt = hdr[:2] + struct.pack('!H', csum(hdr)) + hdr[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(2)
s.sendto(pkt, (sys.argv[1], 0))
end = time.monotonic() + 2
while time.monotonic() < end:
    data, peer = s.recvfrom(1500)
    icmp = data[(data[0] & 15) * 4:]
    if peer[0] == sys.argv[1] and icmp[0] == 0 and struct.unpack('!H', icmp[4:6])[0] == ident:
        sys.exit(0)
sys.exit(1)
"""


def ping(addr, pod=None, net=None):
    cmd = ["/usr/bin/python3", "-c", PING, addr]
    if pod:
        return in_pod(net, pod, *cmd)
    return run(*cmd)


def host_veth(network):
    """The host end of the pod's veth, from the CNI result."""
    result = json.loads(network["cni_result_json"])
    names = [i["name"] for i in result["interfaces"]
             if not i.get("sandbox") and i["name"].startswith("veth")]
    assert len(names) == 1, result
    return names[0]


def link_exists(name):
    return os.path.exists(f"/sys/class/net/{name}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------


def test_network_status_sees_the_conflist(net):
    r = run(NETD_CALL, "--root", net.suite.root, "cric.netd.NetworkStatus")
    st = json.loads(r.stdout)["response"]
    assert st["ready"] is True
    assert st["network_name"] == net.name
    assert st["conf_file"] == net.conf_file


def test_two_pods_get_addresses_and_reach_each_other(net):
    a, na = net.setup_ok()
    b, nb = net.setup_ok()
    for pod_id, n in ((a, na), (b, nb)):
        assert n["pod_id"] == pod_id
        assert n["netns_path"] == pin_of(net, pod_id)
        assert n["netns_present"] is True
        assert n["network_name"] == net.name
        assert n["cni_version"] == "1.0.0"
        assert n["interface"] == "eth0"
        assert len(n["ips"]) == 1 and n["ips"][0].startswith(PREFIX)
        assert n["ips"][0] != GATEWAY
        result = json.loads(n["cni_result_json"])
        assert result["cniVersion"] == "1.0.0"
        assert result["ips"][0]["address"] == n["ips"][0] + "/24"
        # Pinned: a mount of a network namespace, loopback up inside.
        with open("/proc/self/mountinfo") as f:
            assert any(pin_of(net, pod_id) in line and " nsfs " in line for line in f)
        ping("127.0.0.1", pod_id, net)
        addrs = in_pod(net, pod_id, "ip", "-o", "-4", "addr", "show", "eth0").stdout
        assert n["ips"][0] + "/24" in addrs
    assert na["ips"][0] != nb["ips"][0]
    assert sorted(net.leases()) == sorted([na["ips"][0], nb["ips"][0]])

    # Each reaches the other, and the host reaches both.
    ping(nb["ips"][0], a, net)
    ping(na["ips"][0], b, net)
    ping(na["ips"][0])

    # Status answers the same from the cache; CHECK runs (1.0.0 network).
    st = net.status(a, check=True)
    assert st["code"] == 0, st
    assert st["response"]["checked"] is True
    assert st["response"]["network"]["ips"] == na["ips"]
    assert st["response"]["network"]["cni_result_json"] == na["cni_result_json"]

    # A replay of the same setup answers the same network.
    _, again = net.setup(a)
    assert again["code"] == 0, again
    assert again["response"]["network"]["ips"] == na["ips"]


def _serve_once_in_pod(net, pod_id, port):
    """A TCP listener inside the pod that answers every connection with its peer."""
    code = ("import socket\n"
            "s = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {port}))\n"
            "s.listen()\n"
            "print('ready', flush=True)\n"
            "while True:\n"
            "    c, peer = s.accept()\n"
            "    c.sendall(b'hello from the pod, you are %s' % peer[0].encode())\n"
            "    c.close()\n")
    p = subprocess.Popen(["nsenter", "--net=" + pin_of(net, pod_id), "/usr/bin/python3", "-c",
                          code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _fetch(addr, port):
    with socket.create_connection((addr, port), timeout=5) as s:
        return s.recv(200).decode()


def _host_addresses():
    out = run("ip", "-o", "-4", "addr", "show", "scope", "global").stdout
    addrs = [line.split()[3].split("/")[0] for line in out.splitlines()]
    return [a for a in addrs if not a.startswith(PREFIX)]


def test_host_port_forwards_to_the_pod(net):
    container_port = 8080
    host_port = free_port()
    pod, n = net.setup_ok(ports=[(container_port, host_port)])
    listener = _serve_once_in_pod(net, pod, container_port)
    try:
        # Directly, through the host's own address(es), and through loopback.
        assert _fetch(n["ips"][0], container_port).startswith("hello from the pod")
        targets = _host_addresses() + ["127.0.0.1"]
        assert len(targets) >= 2, targets
        for addr in targets:
            assert _fetch(addr, host_port).startswith("hello from the pod"), addr
    finally:
        listener.kill()
        listener.wait()
    assert any(str(host_port) in r for r in net.rules())


def test_teardown_removes_everything_and_is_idempotent(net):
    before = net.counts()
    pod, n = net.setup_ok(ports=[(80, free_port())])
    veth = host_veth(n)
    assert link_exists(veth)
    assert net.leases() == [n["ips"][0]]
    assert any(pod in r for r in net.rules())
    assert os.path.exists(pin_of(net, pod))
    assert os.path.exists(os.path.join(net.results_dir, pod + ".json"))

    assert net.teardown(pod) == {"was_known": True}
    assert not link_exists(veth)
    assert net.leases() == []
    assert net.rules() == []
    assert not os.path.exists(pin_of(net, pod))
    assert not os.path.exists(os.path.join(net.results_dir, pod + ".json"))
    assert net.counts() == before

    # Again, and for a pod nobody knows: success.
    assert net.teardown(pod) == {"was_known": False}
    assert net.teardown(secrets.token_hex(32)) == {"was_known": False}
    st = net.status(pod)
    assert st["code"] == 5 and st["codeName"] == "NOT_FOUND", st


def test_twenty_cycles_leave_nothing_behind(net):
    # One cycle first: portmap creates its shared chains once.
    pod, _ = net.setup_ok(ports=[(80, free_port())])
    net.teardown(pod)
    before = net.counts()
    times, veths = [], []
    for _ in range(20):
        t0 = time.monotonic()
        pod, n = net.setup_ok(ports=[(80, free_port())])
        t1 = time.monotonic()
        veths.append(host_veth(n))
        assert net.counts()["veths"] == before["veths"] + 1
        net.teardown(pod)
        times.append((t1 - t0, time.monotonic() - t1))
    after = net.counts()
    assert after == before, (before, after)
    assert [v for v in veths if link_exists(v)] == []
    setup_ms = sorted(t[0] * 1000 for t in times)
    teardown_ms = sorted(t[1] * 1000 for t in times)
    print(f"\nsetup ms: median {setup_ms[10]:.0f} max {setup_ms[-1]:.0f}; "
          f"teardown ms: median {teardown_ms[10]:.0f} max {teardown_ms[-1]:.0f} "
          f"(each including a netd-call process start)")


def test_kill9_netd_then_teardown_from_the_cache(net):
    pod, n = net.setup_ok(ports=[(80, free_port())])
    veth = host_veth(n)
    old_pid = net.suite.kill("netd")
    # The network does not depend on netd running.
    ping(GATEWAY, pod, net)
    net.suite.up()
    assert net.suite.pid("netd") != old_pid
    st = net.status(pod)
    assert st["code"] == 0, st
    assert st["response"]["network"]["ips"] == n["ips"]
    assert st["response"]["network"]["netns_present"] is True
    # The conf dir changes meanwhile: DEL still uses what ADD used.
    other = net.conflist()
    other["name"] = "something-else"
    net.write_conf(other)
    assert net.teardown(pod) == {"was_known": True}
    assert not link_exists(veth)
    assert net.leases() == []
    assert net.rules() == []
    assert not os.path.exists(pin_of(net, pod))
    assert "1 pod network known" in net.suite.log("netd")


def test_failing_plugin_fails_setup_and_leaves_nothing(net):
    pod, _ = net.setup_ok()  # the bridge exists, as on a node already in use
    net.teardown(pod)
    before = net.counts()
    net.write_conf(net.conflist(subnet=PREFIX + "0/33"))
    pod, r = net.setup()
    assert r["code"] == 13 and r["codeName"] == "INTERNAL", r
    assert r["message"].startswith(f'network "{net.name}": plugin "bridge" ADD: ')
    assert f"invalid CIDR address: {PREFIX}0/33" in r["message"]
    net.pods.discard(pod)
    assert net.counts() == before
    assert not os.path.exists(pin_of(net, pod))
    st = net.status(pod)
    assert st["codeName"] == "NOT_FOUND", st


def test_network_not_ready_and_hostile_input(net):
    os.unlink(net.conf_file)
    _, r = net.setup()
    assert r["codeName"] == "UNAVAILABLE", r
    assert "pod network not ready" in r["message"]
    net.write_conf(net.conflist())

    good = {"pod_id": secrets.token_hex(32), "name": "p", "namespace": "ns", "uid": "u"}
    bad = [
        ({"pod_id": "../../../etc"}, "pod_id"),
        ({"pod_id": "A" * 64}, "pod_id"),
        ({"name": "x;K8S_POD_NAME=y"}, "name"),
        ({"name": ""}, "name"),
        ({"namespace": "n" * 64}, "namespace"),
        ({"uid": "u\nv"}, "uid"),
        ({"port_mappings": [{"container_port": 0, "host_port": 80}]}, "container_port"),
        ({"port_mappings": [{"container_port": 80, "host_port": 70000}]}, "host_port"),
        ({"port_mappings": [{"container_port": 80, "protocol": "icmp"}]}, "protocol"),
        ({"port_mappings": [{"container_port": 80, "host_ip": "example.com"}]}, "host_ip"),
        ({"port_mappings": [{"container_port": 80}] * 129}, "port mappings"),
        ({"dns": {"servers": ["not-an-ip"]}}, "servers"),
        ({"dns": {"options": ["ndots:5\nnameserver 1.1.1.1"]}}, "options"),
        ({"ip_ranges": [{"subnet": "198.19.0.0"}]}, "subnet"),
        ({"bandwidth": {"ingress_rate": 10**18}}, "bandwidth"),
    ]
    for change, needle in bad:
        req = dict(good, **change)
        r = net.call("SetupPodNetwork", req)
        assert r["codeName"] == "INVALID_ARGUMENT", (change, r)
        assert needle in r["message"], (change, r)
    r = net.call("TeardownPodNetwork", {"pod_id": "x/../y"})
    assert r["codeName"] == "INVALID_ARGUMENT", r
    r = net.call("PodNetworkStatus", {"pod_id": secrets.token_hex(32)})
    assert r["codeName"] == "NOT_FOUND", r
    assert net.counts()["pins"] == 0 and net.counts()["records"] == 0
