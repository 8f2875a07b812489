"""Container security seen from inside, through the CRI socket with real
pods and real runc: privileged containers (only in privileged pods), the
pod's shared /dev/shm, and the pod sysctls that let ping work without
NET_RAW and low ports without NET_BIND_SERVICE.

Pods: run under `flock /tmp/cric-net.lock` like every suite that makes
them."""
import os
import secrets

import grpc
import pytest

from conftest import api
from test_containers import Ctrs, grpc_error, monitors_ready  # noqa: F401
from test_containers import ctrs, registry  # noqa: F401  (fixtures)

BB = "/bin/busybox"
KUBELET_MASKED = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                  "/proc/scsi", "/sys/firmware"]
KUBELET_READONLY = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                    "/proc/sysrq-trigger"]


def pod(ctrs, privileged=False, **kw):
    ctrs.logs = os.path.join(ctrs.suite.root, "var/log/pods", secrets.token_hex(4))
    cfg = ctrs.pods.config(**kw)
    cfg.log_directory = ctrs.logs
    cfg.linux.security_context.privileged = privileged
    return ctrs.pods.run(cfg), cfg


def security(privileged=False, drop=(), user=None):
    return api.LinuxContainerSecurityContext(
        privileged=privileged, masked_paths=KUBELET_MASKED, readonly_paths=KUBELET_READONLY,
        seccomp=api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault),
        capabilities=api.Capability(drop_capabilities=list(drop)),
        run_as_user=api.Int64Value(value=user) if user is not None else None,
        namespace_options=api.NamespaceOption(pid=api.CONTAINER))


def run(ctrs, pod_id, pod_cfg, name, script, sc=None):
    """Run script in a new container of the pod; its output lines."""
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name=name, command=[BB, "sh", "-c", script],
                                                   security=sc or security()))
    ctrs.start(cid)
    s = ctrs.wait_exit(cid)
    text = open(os.path.join(ctrs.logs, f"{name}/0.log")).read()
    ctrs.remove(cid)
    lines = [line.split(" ", 3)[3] for line in text.splitlines()]
    assert s.exit_code == 0, (s.exit_code, lines)
    return lines


def status_field(lines, key):
    return next(line.split(":", 1)[1].strip() for line in lines if line.startswith(key + ":"))


def mount_opts(lines, target):
    """The options of target's line in /proc/mounts output."""
    for line in lines:
        f = line.split()
        if len(f) >= 4 and f[1] == target:
            return f[3].split(",")
    return None


PROBE = (f"{BB} grep -E '^(CapEff|Seccomp):' /proc/self/status; "
         f"{BB} cat /proc/mounts; "
         f"if [ -c /proc/keys ]; then echo keys:masked; else echo keys:real; fi; "
         f"for d in /dev/kmsg /dev/loop-control /dev/null; do "
         f"  [ -c $d ] && echo dev:$d; done; true")


def host_grantable():
    """What runtimed can grant: its bounding set (the daemons run as this
    test's root, whose bounding set is the host's)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))


def test_privileged_containers(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    before = ctrs.counts()
    # A privileged container in a pod that is not privileged: refused.
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg,
                           ctrs.config(name="p", command=["true"],
                                       security=security(privileged=True)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "privileged pod" in msg, msg
    assert ctrs.counts() == before

    ppod, ppod_cfg = pod(ctrs, privileged=True)
    # Not privileged, in a privileged pod: the usual container.
    out = run(ctrs, ppod, ppod_cfg, "plain", PROBE)
    assert int(status_field(out, "CapEff"), 16) != host_grantable()
    assert status_field(out, "Seccomp") == "2"
    assert "ro" in mount_opts(out, "/sys")
    assert "keys:masked" in out
    assert "dev:/dev/kmsg" not in out and "dev:/dev/null" in out

    out = run(ctrs, ppod, ppod_cfg, "priv", PROBE, security(privileged=True))
    assert int(status_field(out, "CapEff"), 16) == host_grantable()
    assert status_field(out, "Seccomp") == "0"
    assert "rw" in mount_opts(out, "/sys")
    cg = [line.split() for line in out if len(line.split()) > 3 and
          line.split()[1].startswith("/sys/fs/cgroup")]
    assert cg and all("rw" in f[3].split(",") for f in cg), cg
    assert "keys:real" in out
    host = [d for d in ("/dev/kmsg", "/dev/loop-control") if os.path.exists(d)]
    assert host and all(f"dev:{d}" in out for d in host), out
    assert "dev:/dev/null" in out
    # /dev/kmsg is readable in earnest (the device cgroup allows it).
    out = run(ctrs, ppod, ppod_cfg, "kmsg",
              f"{BB} dd if=/dev/kmsg bs=4096 count=1 2>/dev/null | {BB} wc -c",
              security(privileged=True))
    assert int(out[-1]) > 0
    ctrs.pods.stop(ppod)
    ctrs.pods.remove(ppod)
    assert ctrs.counts() == before


def test_pod_sysctls_for_ping_and_low_ports(ctrs):
    # busybox 1.35's ping opens only raw sockets (it fails "are you root?"
    # whatever ping_group_range says), so ping itself is not tried here:
    # the range is read back from inside the pod's namespace.
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    probe = (f"{BB} cat /proc/sys/net/ipv4/ping_group_range "
             f"/proc/sys/net/ipv4/ip_unprivileged_port_start; "
             f"{BB} grep '^CapEff:' /proc/self/status; "
             f"{BB} nc -l -p 80 -w 1 </dev/null >/dev/null 2>&1 & "
             f"{BB} sleep 0.3; {BB} netstat -ltn | {BB} grep -q ':80 ' && echo bind80:ok; "
             f"wait; true")
    # Root without NET_RAW (not in the default set; dropped anyway) and
    # without NET_BIND_SERVICE.
    out = run(ctrs, pod_id, pod_cfg, "root", probe,
              security(drop=["NET_RAW", "NET_BIND_SERVICE"]))
    assert out[0].split() == ["0", "2147483647"] and out[1] == "0", out
    assert int(status_field(out, "CapEff"), 16) & ((1 << 13) | (1 << 10)) == 0
    assert "bind80:ok" in out, out
    # A non-root user, no capabilities at all.
    out = run(ctrs, pod_id, pod_cfg, "user", probe, security(user=4242))
    assert int(status_field(out, "CapEff"), 16) == 0
    assert "bind80:ok" in out, out
    # The pod's own values win.
    own, own_cfg = pod(ctrs, sysctls={"net.ipv4.ip_unprivileged_port_start": "1024"})
    out = run(ctrs, own, own_cfg, "own", probe, security(user=4242))
    assert out[0].split() == ["0", "2147483647"] and out[1] == "1024", out
    assert "bind80:ok" not in out, out


def pod_mounts(root):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if root + "/" in line and "/sandboxes/" in line]


def test_pod_shares_one_dev_shm(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    logs_a = ctrs.logs
    out = run(ctrs, pod_id, pod_cfg, "w",
              f"echo shared-{pod_id[:8]} > /dev/shm/x; {BB} grep ' /dev/shm ' /proc/mounts")
    opts = out[-1].split()[3].split(",")
    assert "size=65536k" in opts and "nosuid" in opts and "nodev" in opts, out
    # Another container of the pod sees it; it lives in the pod's tmpfs.
    assert run(ctrs, pod_id, pod_cfg, "r", f"{BB} cat /dev/shm/x") == [f"shared-{pod_id[:8]}"]
    shm = os.path.join(ctrs.suite.root, "run/cric/runtimed/sandboxes", pod_id, "shm")
    assert open(os.path.join(shm, "x")).read().strip() == f"shared-{pod_id[:8]}"
    # Another pod's container does not.
    other, other_cfg = pod(ctrs)
    assert run(ctrs, other, other_cfg, "o",
               "if [ -e /dev/shm/x ]; then echo seen; else echo unseen; fi") == ["unseen"]
    # A host-IPC pod's containers use the node's /dev/shm.
    name = "cric-test-" + secrets.token_hex(4)
    with open(f"/dev/shm/{name}", "w") as f:
        f.write("node\n")
    try:
        hpod, hpod_cfg = pod(ctrs, ipc=api.NODE)
        assert run(ctrs, hpod, hpod_cfg, "h", f"{BB} cat /dev/shm/{name}") == ["node"]
        ctrs.pods.stop(hpod)
        ctrs.pods.remove(hpod)
    finally:
        os.unlink(f"/dev/shm/{name}")
    # Nothing stays mounted once the pods are removed.
    assert any(f"/{pod_id}/shm" in line for line in pod_mounts(ctrs.suite.root))
    for p in (pod_id, other):
        ctrs.pods.stop(p)
        ctrs.pods.remove(p)
    assert pod_mounts(ctrs.suite.root) == []
    assert not os.path.exists(shm)
    ctrs.logs = logs_a
