"""netd's pod networks with the real CNI plugins.

netd's internal methods (cric.netd.SetupPodNetwork, TeardownPodNetwork,
PodNetworkStatus) are called directly over nng with the cric-call test tool,
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
import time

from conftest import skip_unless_ready
from netutil import (GATEWAY, NETD_CALL, PREFIX, fetch, free_port, host_addresses, host_veth,
                     in_pod, link_exists, missing, pin_of, ping, run, serve_in_netns)

pytestmark = skip_unless_ready(missing, "netd with the real CNI plugins")


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
    return serve_in_netns(pin_of(net, pod_id), port)


def test_host_port_forwards_to_the_pod(net):
    container_port = 8080
    host_port = free_port()
    pod, n = net.setup_ok(ports=[(container_port, host_port)])
    listener = _serve_once_in_pod(net, pod, container_port)
    try:
        # Directly, through the host's own address(es), and through loopback.
        assert fetch(n["ips"][0], container_port).startswith("hello from the pod")
        targets = host_addresses() + ["127.0.0.1"]
        assert len(targets) >= 2, targets
        for addr in targets:
            assert fetch(addr, host_port).startswith("hello from the pod"), addr
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
          f"(each including a cric-call process start)")


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
