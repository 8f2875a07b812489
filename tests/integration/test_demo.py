"""`make demo`, the README's first command after the build, on a fresh root:
its output names a running container, the container's log lines and an
ExecSync answer; a second run replaces only the demo's own pod (a pod of
someone else survives it); `cric-down --all` then leaves nothing of the
root (processes, mounts, namespace pins, cgroups, IPAM leases, veths, the
root's own bridge).

Run under `flock /tmp/cric-net.lock` like every suite that creates pods (the
demo's network is the root's own bridge, but iptables is the host's).
"""
import json
import glob
import os
import re
import subprocess

from conftest import BIN, BUILD, REPO, running_pids_under, skip_unless_ready
from imageutil import missing as image_missing
from netutil import missing as net_missing

pytestmark = [skip_unless_ready(image_missing, "the demo's loopback registry"),
              skip_unless_ready(net_missing, "the demo's pod network")]



def root_network(root):
    """The bridge and lease directory cric-up --default-cni gave this root."""
    with open(os.path.join(root, "etc/cni/net.d/10-cric-bridge.conflist")) as f:
        plugin = json.load(f)["plugins"][0]
    return plugin["bridge"], os.path.join(plugin["ipam"]["dataDir"], "cric")


def make_demo(root):
    # -o: the build is the test run's (CRIC_BUILD), not remade here.
    r = subprocess.run(["make", "-s", "-C", REPO, "-o", "all", "-o", "pyproto", "demo",
                        f"BUILD={BUILD}", f"DEMO_ROOT={root}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"make demo failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def ctl(root, *args):
    r = subprocess.run([os.path.join(BIN, "cricctl"), "--root", root, *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def demo_pod(out):
    m = re.search(r"RunPodSandbox: pod ([0-9a-f]{13}) cric-demo/demo, IP ([0-9.]+)", out)
    assert m, out
    return m.group(1), m.group(2)


def check_output(out):
    assert re.search(r"^  [0-9a-f]{13}  RUNNING   hello ", out, re.M), out
    assert "stdout: hello from a cric container, uid 0" in out, out
    assert "stdout: tick 1" in out, out
    assert re.search(r"ExecSync: exit code 0, stdout:\n    hello from exec in demo\n", out), out
    assert re.search(r"sha256:[0-9a-f]{12}  .*KiB  127\.0\.0\.1:\d+/cric-demo/busybox:1", out), out
    assert "deploy/cric-down --all --root" in out, out


def test_make_demo_twice_then_cric_down_leaves_nothing(suite_root):
    root = suite_root
    try:
        out1 = make_demo(root)
        check_output(out1)
        pod1, ip1 = demo_pod(out1)
        bridge, leases = root_network(root)
        # The root's network is its own: bridge, /24 and leases.
        assert bridge != "cric0" and leases.startswith(root + "/"), (bridge, leases)
        assert ip1.startswith("198.19.") and int(ip1.split(".")[2]) >= 128, ip1
        assert os.path.exists(os.path.join(leases, ip1)), os.listdir(leases)
        assert os.listdir(f"/sys/class/net/{bridge}/brif"), "the pod's veth is not on the bridge"
        other = ctl(root, "run-pod", "other", "someone-else").strip()

        out2 = make_demo(root)
        check_output(out2)
        pod2, ip2 = demo_pod(out2)
        assert f"removed the earlier demo pod {pod1}" in out2, out2
        assert pod2 != pod1
        pods = ctl(root, "pods")
        assert other[:13] in pods and pod2 in pods and pod1 not in pods, pods
        # The demo's log lines come from the container's CRI log file.
        logs = glob.glob(os.path.join(root, "var/log/pods/cric-demo_demo_*/hello/0.log"))
        assert len(logs) == 1, logs
    finally:
        r = subprocess.run([os.path.join(REPO, "deploy/cric-down"), "--all", "--root", root],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, CRIC_BIN_DIR=BIN))
    assert r.returncode == 0, f"cric-down failed:\n{r.stdout}\n{r.stderr}"

    assert running_pids_under(root) == [], "processes left running after cric-down"
    with open("/proc/self/mountinfo") as f:
        assert root not in f.read(), "mounts left under the root"
    pins = os.path.join(root, "run/cric/netd/netns")
    assert not os.path.isdir(pins) or os.listdir(pins) == [], os.listdir(pins)
    for pod in (pod1, pod2, other[:13]):
        left = glob.glob(f"/sys/fs/cgroup/*/cric/pod-{pod}*")
        assert left == [], left
    for ip in (ip1, ip2):
        assert not os.path.exists(os.path.join(leases, ip)), f"IPAM lease {ip} left"
    assert not os.path.exists(f"/sys/class/net/{bridge}"), f"bridge {bridge} left"
