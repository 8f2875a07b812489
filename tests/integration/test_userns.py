"""Pods of their own user namespace (namespace_options.userns_options POD)
through the CRI socket, with runc 1.1 (which cannot make id-mapped mounts:
cric makes them itself, common/idmap.h).

A container of such a pod runs as root in a user namespace of the kubelet's
mapping (container 0 -> host N, 65536 ids): its rootfs is an overlay of
id-mapped layers with an upper dir of its own host ids, its volumes and pod
files are id-mapped binds. What it writes in its rootfs lands on the host as
N + its id; in an id-mapped volume as its own id (the map undone, as the
peers' id-mapped volumes do).

The pod's user namespace is made by netd with the pod's network
namespace inside it, and runtimed makes the pod's IPC and UTS namespaces
inside it too: every container (and the infra of a shared PID namespace)
joins the four by path, so runc 1.1, which joins the user namespace first,
may join the others; `runc exec` too. The containers get sysfs and
/dev/mqueue of their own. On by default (runtimed.userns_pods).

Pods: run under `flock /tmp/cric-net.lock` like every suite that makes
them."""
import json
import os
import secrets
import subprocess
import time

import grpc
import pytest

from conftest import api
from test_containers import grpc_error  # noqa: F401
from test_containers import ctrs, registry  # noqa: F401  (fixtures)
from test_stream_ws import session



BB = "/bin/busybox"
N = 1 << 20  # the pod's host ids: N .. N+65535
LEN = 65536


def userns(host=N, length=LEN, uids=None, gids=None):
    m = [api.IDMapping(container_id=0, host_id=host, length=length)]
    return api.UserNamespace(mode=api.POD, uids=m if uids is None else uids,
                             gids=m if gids is None else gids)


def userns_pod(ctrs, ns):
    ctrs.logs = os.path.join(ctrs.suite.root, "var/log/pods", secrets.token_hex(4))
    cfg = ctrs.pods.config()
    cfg.log_directory = ctrs.logs
    opts = cfg.linux.security_context.namespace_options
    opts.pid = api.CONTAINER
    opts.userns_options.CopyFrom(ns)
    return cfg


def sc():
    return api.LinuxContainerSecurityContext(namespace_options=api.NamespaceOption(
        pid=api.CONTAINER, userns_options=userns()))


def idmap_mounts(root):
    """Mounts cric made for the suite beyond the pods' own (netns, ipc,
    uts, shm pins): overlays, id-mapped layers and binds."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if root + "/" in line and
                ("/idmap/" in line or "/lower/" in line or "overlay" in line)]


# What the container reports, one "key value" line each.
SCRIPT = f"""
u=$({BB} cat /proc/self/uid_map); echo uid_map $u
g=$({BB} cat /proc/self/gid_map); echo gid_map $g
echo id $({BB} id -u):$({BB} id -g)
echo image $({BB} stat -c %u:%g /etc/passwd)
echo hostsys $({BB} stat -c %u:%g /sys/kernel)
echo net $({BB} ls /sys/class/net)
echo sysfs $({BB} grep -c ' /sys sysfs ' /proc/self/mounts)
echo mqueue $({BB} grep -c ' /dev/mqueue mqueue ' /proc/self/mounts)
echo hosts $({BB} stat -c %u:%g /etc/hosts)
echo vol $({BB} stat -c %u:%g /vol)
echo root > /made-by-root && {BB} mkdir /app && echo app > /app/f &&
  {BB} chown 1000:1001 /app/f && echo rootfs ok
echo root > /vol/root-file && {BB} mkdir /vol/app && echo app > /vol/app/f &&
  {BB} chown 1000:1001 /vol/app/f && echo volume ok
echo shm $({BB} touch /dev/shm/x && {BB} stat -c %u:%g /dev/shm/x)
"""


def host_owner(path):
    st = os.stat(path)
    return f"{st.st_uid}:{st.st_gid}"


def test_userns_pod_end_to_end(ctrs, tmp_path):
    st = ctrs.cri.call("Status", api.StatusRequest(), api.StatusResponse)
    assert st.runtime_handlers and all(h.features.user_namespaces
                                       for h in st.runtime_handlers), st
    root = ctrs.suite.root
    # The suite's root stands for the host's / (mkdtemp made it 0700): the
    # container's root, host id N, walks it to its rootfs like /run.
    os.chmod(root, 0o711)
    before = idmap_mounts(root)
    vol = tmp_path / "emptydir"
    vol.mkdir()
    os.chown(vol, 0, 0)
    pod_cfg = userns_pod(ctrs, userns())
    pod_id = ctrs.pods.run(pod_cfg)
    ctrs.pull()
    cfg = ctrs.config(name="u", command=[BB, "sh", "-c", SCRIPT], security=sc(),
                      mounts=[api.Mount(container_path="/vol", host_path=str(vol))])
    cid = ctrs.create(pod_id, pod_cfg, cfg)
    # Created: the container holds its mounts; the host keeps only the
    # overlay and its id-mapped layers (stored's), no bind of runtimed's.
    assert not [m for m in idmap_mounts(root) if "/idmap/" in m]
    ctrs.start(cid)
    s = ctrs.wait_exit(cid)
    text = open(os.path.join(ctrs.logs, "u/0.log")).read()
    out = dict(line.split(" ", 3)[3].split(" ", 1) for line in text.splitlines()
               if len(line.split(" ", 3)) == 4 and " " in line.split(" ", 3)[3])
    assert s.exit_code == 0, (s.exit_code, text)
    assert out["uid_map"].split() == ["0", str(N), str(LEN)], out
    assert out["gid_map"].split() == ["0", str(N), str(LEN)], out
    assert out["id"] == "0:0", out                 # root inside
    assert out["image"] == "0:0", out              # an image file of root: root
    assert out["hostsys"] == "65534:65534", out    # the host's root: nobody
    assert out["net"].split() == ["eth0", "lo"], out  # the pod's sysfs, not the host's
    assert out["sysfs"] == "1" and out["mqueue"] == "1", out
    assert out["hosts"] == "0:0", out              # the pod's files, mapped
    assert out["vol"] == "0:0", out                # the volume, mapped
    assert out["rootfs"] == "ok" and out["volume"] == "ok", out
    assert out["shm"] == "0:0", out
    # On the host: the rootfs's files as N + the container's ids ...
    upper = os.path.join(root, "var/lib/cric/stored/containers", cid, "upper")
    assert host_owner(os.path.join(upper, "made-by-root")) == f"{N}:{N}"
    assert host_owner(os.path.join(upper, "app/f")) == f"{N + 1000}:{N + 1001}"
    assert host_owner(os.path.join(upper, "app")) == f"{N}:{N}"
    # ... the volume's as the container's own ids (the map undone).
    assert host_owner(vol / "root-file") == "0:0"
    assert host_owner(vol / "app/f") == "1000:1001"
    ctrs.remove(cid)
    ctrs.pods.stop(pod_id)
    ctrs.pods.remove(pod_id)
    assert idmap_mounts(root) == before
    assert not os.path.exists(upper)


def test_bad_mappings_are_invalid_argument(ctrs):
    pods_before = len(ctrs.pods.list())
    bad = [
        (userns(host=0), "uids[0].host_id"),
        (userns(length=100), "uids[0].length"),
        (userns(uids=[]), "userns_options.uids"),
        (userns(uids=[api.IDMapping(container_id=0, host_id=N, length=LEN),
                      api.IDMapping(container_id=100, host_id=N + 50, length=LEN)]),
         "userns_options.uids: exactly one"),
        (userns(gids=[api.IDMapping(container_id=5, host_id=N, length=LEN)]),
         "gids[0].container_id"),
        (userns(host=(1 << 32) - 100), "passes 2^32-1"),
    ]
    for ns, field in bad:
        code, msg = grpc_error(ctrs.pods.run, userns_pod(ctrs, ns))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (field, msg)
        assert field in msg, (field, msg)
    # A container asking for a user namespace in a pod without one.
    ctrs.logs = os.path.join(ctrs.suite.root, "var/log/pods", secrets.token_hex(4))
    cfg = ctrs.pods.config()
    cfg.log_directory = ctrs.logs
    pod_id = ctrs.pods.run(cfg)
    ctrs.pull()
    code, msg = grpc_error(ctrs.create, pod_id, cfg, ctrs.config(command=["true"],
                                                                 security=sc()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert "namespace_options.userns_options POD" in msg, msg
    ctrs.pods.stop(pod_id)
    ctrs.pods.remove(pod_id)
    assert len(ctrs.pods.list()) == pods_before


def test_userns_rootfs_mounted_again_after_restart(ctrs):
    """stored killed and its mounts gone (as after a crash and a cleanup):
    the restarted stored mounts the id-mapped layers and the overlay again
    from its refs, and removal still leaves nothing."""
    root = ctrs.suite.root
    os.chmod(root, 0o711)
    before = idmap_mounts(root)
    pod_cfg = userns_pod(ctrs, userns())
    pod_id = ctrs.pods.run(pod_cfg)
    ctrs.pull()
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name="r", command=[BB, "sleep", "600"],
                                                   security=sc()))
    ctrs.start(cid)
    target = os.path.join(root, "run/cric/stored/rootfs", cid)
    lower = os.path.join(root, "var/lib/cric/stored/containers", cid, "lower")

    def mine():
        return [m for m in idmap_mounts(root) if cid in m]
    assert len(mine()) == 3  # the overlay and its two id-mapped layers
    ctrs.suite.kill("stored")
    subprocess.run(["umount", "-l", target], check=True)
    for n in os.listdir(lower):
        subprocess.run(["umount", "-l", os.path.join(lower, n)], check=True)
    assert mine() == []
    ctrs.suite.up()
    assert len(mine()) == 3, mine()
    assert host_owner(os.path.join(target, "etc/passwd")) == f"{N}:{N}"
    ctrs.stop(cid)
    ctrs.remove(cid)
    ctrs.pods.stop(pod_id)
    ctrs.pods.remove(pod_id)
    assert idmap_mounts(root) == before


def exec_sync(ctrs, cid, *cmd):
    r = ctrs.cri.call("ExecSync", api.ExecSyncRequest(
        container_id=cid, cmd=[BB, *cmd], timeout=10), api.ExecSyncResponse, timeout=30)
    assert r.exit_code == 0, (cmd, r)
    return r.stdout.decode().strip()


def pins(root, pod_id):
    """What of the pod is pinned or mounted on the host: netd's pins of
    its user and network namespaces, runtimed's IPC and UTS pins."""
    netd = os.path.join(root, "run/cric/netd")
    files = [os.path.join(netd, d, pod_id) for d in ("userns", "netns")]
    with open("/proc/self/mountinfo") as f:
        mounts = [line for line in f if pod_id in line]
    return [f for f in files if os.path.exists(f)] + mounts


def test_exec_into_userns_pod_through_a_netd_restart(ctrs):
    """ExecSync (and a streaming exec) into two containers of a
    user-namespaced pod: each is root
    in the pod's one user namespace (its mapping, not the host's), they
    share it and the pod's IPC and network namespaces, and see the pod's
    interfaces in sysfs. netd restarted: the pod and exec still work;
    runtimed restarted: a new container joins the same namespaces. Stop
    and removal leave no pin or mount. Then a pod sharing a PID
    namespace."""
    root = ctrs.suite.root
    os.chmod(root, 0o711)
    pod_cfg = userns_pod(ctrs, userns())
    pod_id = ctrs.pods.run(pod_cfg)
    ctrs.pull()
    cids = []
    for name in ("a", "b"):
        cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name=name, command=[BB, "sleep", "600"],
                                                       security=sc()))
        ctrs.start(cid)
        cids.append(cid)
    t0 = time.monotonic()
    assert exec_sync(ctrs, cids[0], "id", "-u") == "0"
    assert time.monotonic() - t0 < 8
    assert exec_sync(ctrs, cids[0], "cat", "/proc/self/uid_map").split() == \
        ["0", str(N), str(LEN)]
    assert exec_sync(ctrs, cids[0], "ls", "/sys/class/net").split() == ["eth0", "lo"]
    assert exec_sync(ctrs, cids[0], "test", "-d", "/dev/mqueue") == ""
    # A streaming exec (the kubelet's kubectl exec path, over WebSocket).
    url = ctrs.cri.call("Exec", api.ExecRequest(
        container_id=cids[0], cmd=[BB, "cat", "/proc/self/uid_map"], stdout=True),
        api.ExecResponse).url
    _, code, out = session(url)
    assert code == 1000 and out[1].decode().split() == ["0", str(N), str(LEN)], out
    assert json.loads(out[3]) == {"metadata": {}, "status": "Success"}, out
    ns = [{t: exec_sync(ctrs, c, "readlink", f"/proc/self/ns/{t}")
           for t in ("user", "ipc", "net", "uts")} for c in cids]
    assert ns[0] == ns[1], ns
    assert ns[0]["user"] != os.readlink("/proc/self/ns/user"), ns
    # One IPC namespace: a message queue made in one is seen from the other.
    exec_sync(ctrs, cids[0], "touch", "/dev/mqueue/q")
    assert exec_sync(ctrs, cids[1], "ls", "/dev/mqueue") == "q"
    assert len(pins(root, pod_id)) >= 4  # user, net pins; IPC, UTS mounts

    ctrs.suite.kill("netd")
    ctrs.suite.up()
    st = ctrs.cri.call("PodSandboxStatus", api.PodSandboxStatusRequest(pod_sandbox_id=pod_id),
                       api.PodSandboxStatusResponse)
    assert st.status.state == api.SANDBOX_READY and st.status.network.ip, st
    assert exec_sync(ctrs, cids[1], "id", "-u") == "0"
    assert exec_sync(ctrs, cids[1], "ls", "/sys/class/net").split() == ["eth0", "lo"]
    # runtimed restarted: it recovers the pod's user namespace from its
    # record, so a new container joins the same namespaces and exec works.
    ctrs.suite.kill("runtimed")
    ctrs.suite.up()
    assert exec_sync(ctrs, cids[0], "id", "-u") == "0"
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name="c", command=[BB, "sleep", "600"],
                                                   security=sc()))
    ctrs.start(cid)
    cids.append(cid)
    assert {t: exec_sync(ctrs, cid, "readlink", f"/proc/self/ns/{t}")
            for t in ("user", "ipc", "net", "uts")} == ns[0]

    for cid in cids:
        ctrs.stop(cid)
        ctrs.remove(cid)
    ctrs.pods.stop(pod_id)
    assert [p for p in pins(root, pod_id) if "/shm" not in p] == [], pins(root, pod_id)
    ctrs.pods.remove(pod_id)
    assert pins(root, pod_id) == []
    # A new pod after the restart, sharing a PID namespace.
    shares_a_pid_namespace(ctrs)


def shares_a_pid_namespace(ctrs):
    """pid: POD in a user-namespaced pod: the infra joins the pod's user
    namespace, its PID namespace is the user namespace's, and a container
    joining it sees the infra as pid 1 and can be exec'd into."""
    root = ctrs.suite.root
    pod_cfg = userns_pod(ctrs, userns())
    pod_cfg.linux.security_context.namespace_options.pid = api.POD
    pod_id = ctrs.pods.run(pod_cfg)
    cfg = ctrs.config(name="p", command=[BB, "sleep", "600"], security=sc())
    cfg.linux.security_context.namespace_options.pid = api.POD
    cid = ctrs.create(pod_id, pod_cfg, cfg)
    ctrs.start(cid)
    assert exec_sync(ctrs, cid, "cat", "/proc/1/cmdline").strip("\0") == "/pause"
    assert exec_sync(ctrs, cid, "cat", "/proc/self/uid_map").split() == \
        ["0", str(N), str(LEN)]
    ctrs.stop(cid)
    ctrs.remove(cid)
    ctrs.pods.stop(pod_id)
    ctrs.pods.remove(pod_id)
    assert pins(root, pod_id) == []


def test_userns_pods_key_checked_and_turned_off(ctrs):
    """On by default: Status claims user namespaces. runtimed.userns_pods
    of the wrong type stops runtimed at start, naming the key; turned off,
    Status no longer claims user namespaces and a pod asking for one is
    refused, saying how to turn them on."""
    s = ctrs.suite
    st = ctrs.cri.call("Status", api.StatusRequest(), api.StatusResponse)
    assert all(h.features.user_namespaces for h in st.runtime_handlers), st
    s.write_config({"runtimed": {"userns_pods": "yes"}})
    s.kill("runtimed")
    r = s.up(check=False)
    assert r.returncode != 0
    assert '"runtimed.userns_pods" must be true or false' in s.log("runtimed")
    s.write_config({"runtimed": {"userns_pods": False}})
    s.up()
    st = ctrs.cri.call("Status", api.StatusRequest(), api.StatusResponse)
    assert not any(h.features.user_namespaces for h in st.runtime_handlers), st
    code, msg = grpc_error(ctrs.pods.run, userns_pod(ctrs, userns()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert "turned off" in msg and "userns_pods" in msg, msg
