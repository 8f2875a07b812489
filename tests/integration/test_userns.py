"""Pods of their own user namespace (namespace_options.userns_options POD)
through the CRI socket, with runc 1.1 (which cannot make id-mapped mounts:
cric makes them itself, common/idmap.h).

A container of such a pod runs as root in a user namespace of the kubelet's
mapping (container 0 -> host N, 65536 ids): its rootfs is an overlay of
id-mapped layers with an upper dir of its own host ids, its volumes and pod
files are id-mapped binds. What it writes in its rootfs lands on the host as
N + its id; in an id-mapped volume as its own id (the map undone, as the
peers' id-mapped volumes do).

They are opt-in (runtimed.userns_pods, false by default): runc 1.1 joins a
user namespace before the others, so each container makes its own after
joining the pod's host-owned namespaces, and `runc exec` cannot follow it
(it enters the user namespace first, then the IPC namespace: EPERM). This
suite turns them on; ExecSync into such a container fails at once, with the
reason. test_security_profiles.py checks the default: refused, saying so.

Pods: run under `flock /tmp/cric-net.lock` like every suite that makes
them."""
import os
import secrets
import subprocess
import time

import grpc
import pytest

from conftest import api, started_suite
from test_containers import grpc_error  # noqa: F401
from test_containers import ctrs, registry  # noqa: F401  (fixtures)



@pytest.fixture
def suite(suite_root, request):
    """A started suite with pods of their own user namespace turned on."""
    yield from started_suite(suite_root, request, config={"runtimed": {"userns_pods": True}})


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


def test_exec_into_userns_container_fails_clearly(ctrs):
    """runc 1.1 cannot exec into a container of a pod user namespace: the
    ExecSync call fails at once with the reason, it does not hang, and the
    container keeps running."""
    root = ctrs.suite.root
    os.chmod(root, 0o711)
    pod_cfg = userns_pod(ctrs, userns())
    pod_id = ctrs.pods.run(pod_cfg)
    ctrs.pull()
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name="x", command=[BB, "sleep", "600"],
                                                   security=sc()))
    ctrs.start(cid)
    t0 = time.monotonic()
    r = ctrs.cri.call("ExecSync", api.ExecSyncRequest(
        container_id=cid, cmd=[BB, "id", "-u"], timeout=10), api.ExecSyncResponse,
        timeout=30)
    elapsed = time.monotonic() - t0
    err = r.stderr.decode(errors="replace")
    # runc's own words: it entered the user namespace, then the IPC one
    # refused it. A failed exec (exit 255, as the kubelet takes it), not
    # a hang until the timeout.
    assert r.exit_code == 255 and r.stdout == b"", r
    assert "setns into ipc namespace: Operation not permitted" in err, err
    assert elapsed < 8, elapsed
    assert ctrs.status(cid).status.state == api.CONTAINER_RUNNING
    ctrs.stop(cid)
    ctrs.remove(cid)
    ctrs.pods.stop(pod_id)
    ctrs.pods.remove(pod_id)


def test_userns_pods_key_checked_and_turned_off(ctrs):
    """runtimed.userns_pods of the wrong type stops runtimed at start,
    naming the key; turned off again, Status no longer claims user
    namespaces and a pod asking for one is refused, saying how to turn
    them on."""
    s = ctrs.suite
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
    assert "not supported by this host's runc" in msg and "userns_pods" in msg, msg
