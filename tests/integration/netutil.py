"""Shared by the pod network tests (netd's methods, and the CRI pod calls):
a CNI network of the test's own in a suite's conf dir, what it leaves on
the host, and probes that run inside a pod's network namespace.

The network uses 198.19.42.0/24 (inside the test range 198.18.0.0/15,
outside the default config's 198.18.0.0/16), with a bridge and network name
of its own per test, so suites running beside it do not disturb the counts.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess

import pytest

from conftest import BUILD

NETD_CALL = os.path.join(BUILD, "tools", "cric-call")
CNI_BIN = "/usr/lib/cni"
PREFIX = "198.19.42."
SUBNET = PREFIX + "0/24"
GATEWAY = PREFIX + "1"


def missing():
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    if not os.access(NETD_CALL, os.X_OK):
        return f"{NETD_CALL} not built (tests/tools/cric-call.c)"
    for p in ("bridge", "host-local", "portmap"):
        if not os.access(os.path.join(CNI_BIN, p), os.X_OK):
            return f"CNI plugin {p} not in {CNI_BIN} (containernetworking-plugins)"
    for tool in ("nsenter", "iptables-save", "ip"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    return None




def run(*cmd, check=True, timeout=30):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{cmd}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def bridge_conflist(name, bridge, data_dir, subnet, gateway=None):
    """bridge (gateway, masquerade, hairpin) + host-local in data_dir + portmap."""
    rng = {"subnet": subnet}
    if gateway:
        rng["gateway"] = gateway
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True,
             "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": data_dir,
                      "routes": [{"dst": "0.0.0.0/0"}],
                      "ranges": [[rng]]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


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
        return bridge_conflist(self.name, self.bridge, self.data_dir, subnet, gateway)

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


def serve_in_netns(netns, port):
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
    p = subprocess.Popen(["nsenter", "--net=" + netns, "/usr/bin/python3", "-c",
                          code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def fetch(addr, port):
    with socket.create_connection((addr, port), timeout=5) as s:
        return s.recv(200).decode()


def host_addresses():
    out = run("ip", "-o", "-4", "addr", "show", "scope", "global").stdout
    addrs = [line.split()[3].split("/")[0] for line in out.splitlines()]
    return [a for a in addrs if not a.startswith(PREFIX)]

