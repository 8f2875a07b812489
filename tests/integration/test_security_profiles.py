"""Seccomp Localhost profiles, AppArmor/SELinux on a host without them, and
user namespaces with host namespaces refused, through the CRI socket with real pods and runc.

The profile used blocks sethostname(2) only: a container with
CAP_SYS_ADMIN then fails to set its (pod's) host name, while an
unconfined one with the same capability can; a privileged container
ignores the profile.

Pods: run under `flock /tmp/cric-net.lock` like every suite that makes
them."""
import json
import os
import secrets

import grpc
import pytest

from conftest import api
from test_container_security import BB, run
from test_containers import grpc_error, monitors_ready  # noqa: F401
from test_containers import ctrs, registry  # noqa: F401  (fixtures)

BLOCK_SETHOSTNAME = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}
SECRET = "S3CRET-" + secrets.token_hex(4)
# Set the host name, then say how it went and what it is.
SET_HOSTNAME = (f"{BB} hostname changed-{secrets.token_hex(2)} 2>/dev/null; echo rc=$?; "
                f"{BB} grep '^Seccomp:' /proc/self/status; true")


def lsm_present():
    return (os.path.exists("/sys/kernel/security/apparmor") or
            os.path.exists("/sys/fs/selinux/enforce"))


def profile_dir(ctrs):
    """A kubelet-like <root-dir>/seccomp with the profiles the tests use."""
    d = os.path.join(ctrs.suite.root, "var/lib/kubelet/seccomp")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "block.json"), "w") as f:
        json.dump(BLOCK_SETHOSTNAME, f)
    with open(os.path.join(d, "bad.json"), "w") as f:
        f.write('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [' + SECRET + ']}')
    with open(os.path.join(d, "unknown.json"), "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": [SECRET], "action": "SCMP_ACT_ERRNO"}]}, f)
    os.makedirs(os.path.join(d, "dir.json"), exist_ok=True)
    return d


def sc(seccomp=None, path=None, privileged=False, apparmor=None, selinux=None, userns=None):
    s = api.LinuxContainerSecurityContext(
        privileged=privileged, capabilities=api.Capability(add_capabilities=["SYS_ADMIN"]),
        namespace_options=api.NamespaceOption(pid=api.CONTAINER, userns_options=userns))
    if seccomp is not None:
        s.seccomp.CopyFrom(seccomp)
    if path is not None:
        s.seccomp_profile_path = path
    if apparmor is not None:
        s.apparmor.CopyFrom(apparmor)
    if selinux is not None:
        s.selinux_options.CopyFrom(selinux)
    return s


def localhost(path):
    return api.SecurityProfile(profile_type=api.SecurityProfile.Localhost, localhost_ref=path)


UNCONFINED = api.SecurityProfile(profile_type=api.SecurityProfile.Unconfined)
RUNTIME_DEFAULT = api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault)


def test_localhost_seccomp_profile_applies(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    d = profile_dir(ctrs)
    block = os.path.join(d, "block.json")
    # Blocked even with CAP_SYS_ADMIN; the filter is on.
    out = run(ctrs, pod_id, pod_cfg, "blocked", SET_HOSTNAME, sc(localhost(block)))
    assert out[0] != "rc=0" and out[1].split() == ["Seccomp:", "2"], out
    # The deprecated string form, and the profile through a symlink.
    link = os.path.join(d, "link.json")
    if not os.path.lexists(link):
        os.symlink(block, link)
    out = run(ctrs, pod_id, pod_cfg, "old-form", SET_HOSTNAME, sc(path="localhost/" + link))
    assert out[0] != "rc=0", out
    # Unconfined with the same capability: allowed, no filter.
    out = run(ctrs, pod_id, pod_cfg, "free", SET_HOSTNAME, sc(UNCONFINED))
    assert out == ["rc=0", "Seccomp:\t0"], out
    out = run(ctrs, pod_id, pod_cfg, "free-old", SET_HOSTNAME, sc(path="unconfined"))
    assert out[0] == "rc=0" and out[1].split() == ["Seccomp:", "0"], out
    out = run(ctrs, pod_id, pod_cfg, "docker-default", SET_HOSTNAME, sc(path="docker/default"))
    assert out[1].split() == ["Seccomp:", "2"], out

    # The pod's profile for containers that choose none; theirs wins.
    ctrs.logs = os.path.join(ctrs.suite.root, "var/log/pods", secrets.token_hex(4))
    ppod_cfg = ctrs.pods.config()
    ppod_cfg.log_directory = ctrs.logs
    ppod_cfg.linux.security_context.privileged = True
    ppod_cfg.linux.security_context.seccomp.CopyFrom(localhost(block))
    ppod = ctrs.pods.run(ppod_cfg)
    out = run(ctrs, ppod, ppod_cfg, "from-pod", SET_HOSTNAME, sc())
    assert out[0] != "rc=0" and out[1].split() == ["Seccomp:", "2"], out
    out = run(ctrs, ppod, ppod_cfg, "own", SET_HOSTNAME, sc(UNCONFINED))
    assert out[0] == "rc=0", out
    # Privileged ignores a blocking profile.
    out = run(ctrs, ppod, ppod_cfg, "priv", SET_HOSTNAME, sc(localhost(block), privileged=True))
    assert out == ["rc=0", "Seccomp:\t0"], out
    ctrs.pods.stop(ppod)
    ctrs.pods.remove(ppod)


def test_bad_localhost_profiles_are_refused_clearly(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    d = profile_dir(ctrs)
    before = ctrs.counts()
    cases = [
        (localhost(os.path.join(d, "missing.json")), None, "no such file"),
        (localhost(os.path.join(d, "dir.json")), None, "not a regular file"),
        (localhost(os.path.join(d, "bad.json")), None, "not valid JSON"),
        (localhost(os.path.join(d, "unknown.json")), None, "syscalls[0].names[0]"),
        (localhost("seccomp/relative.json"), None, "absolute"),
        (api.SecurityProfile(profile_type=api.SecurityProfile.Localhost), None,
         "localhost_ref"),
        (None, "localhost/" + os.path.join(d, "missing.json"), "no such file"),
        (None, "docker/defaults", "seccomp_profile_path"),
    ]
    for prof, path, says in cases:
        code, msg = grpc_error(ctrs.create, pod_id, pod_cfg,
                               ctrs.config(name="bad", command=["true"],
                                           security=sc(prof, path=path)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and says in msg, (says, code, msg)
        assert SECRET not in msg, msg
    assert ctrs.counts() == before
    # A pod's own bad choice is refused at RunPodSandbox.
    cfg = ctrs.pods.config()
    cfg.linux.security_context.seccomp_profile_path = "localhost/relative.json"
    code, msg = grpc_error(ctrs.pods.run, cfg)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "localhost_ref" in msg, msg


def infra_seccomp(ctrs, pod_id):
    """The Seccomp: line of the pod's infra process."""
    pid = json.loads(ctrs.pods.status(pod_id, verbose=True).info["info"])["pid"]
    assert pid > 0
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("Seccomp:"))


def test_pod_seccomp_applies_to_the_infra(ctrs):
    """The pod's own profile filters its infra (pause) process, as
    containerd and CRI-O filter their sandbox container; privileged and
    Unconfined pods' infra runs unfiltered; a bad pod profile is refused
    at RunPodSandbox, leaking nothing and leaving nothing."""
    d = profile_dir(ctrs)
    for prof, privileged, want in ((localhost(os.path.join(d, "block.json")), False, "2"),
                                   (RUNTIME_DEFAULT, False, "2"), (UNCONFINED, False, "0"),
                                   (localhost(os.path.join(d, "block.json")), True, "0")):
        cfg = ctrs.pods.config(pid=api.POD)
        cfg.linux.security_context.seccomp.CopyFrom(prof)
        cfg.linux.security_context.privileged = privileged
        pod = ctrs.pods.run(cfg)
        assert infra_seccomp(ctrs, pod) == want, (prof, privileged)
        ctrs.pods.stop(pod)
        ctrs.pods.remove(pod)
    pods_before = len(ctrs.pods.list())
    for pid in (api.POD, api.CONTAINER):  # checked with or without an infra
        for name, says in (("missing.json", "no such file"), ("bad.json", "not valid JSON"),
                           ("unknown.json", "syscalls[0].names[0]")):
            cfg = ctrs.pods.config(pid=pid)
            cfg.linux.security_context.seccomp.CopyFrom(localhost(os.path.join(d, name)))
            code, msg = grpc_error(ctrs.pods.run, cfg)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (name, code, msg)
            assert "linux.security_context.seccomp" in msg and says in msg, msg
            assert SECRET not in msg, msg
    assert len(ctrs.pods.list()) == pods_before


@pytest.mark.skipif(lsm_present(), reason="this host runs AppArmor or SELinux")
def test_apparmor_and_selinux_on_a_host_without_them(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    # Unconfined and RuntimeDefault: nothing to apply, the container runs.
    for name, prof in (("aa-unconfined", UNCONFINED), ("aa-default", RUNTIME_DEFAULT)):
        out = run(ctrs, pod_id, pod_cfg, name,
                  f"{BB} cat /proc/self/attr/current 2>/dev/null; echo ok",
                  sc(RUNTIME_DEFAULT, apparmor=prof))
        assert out[-1] == "ok", out
    # selinux_relabel without SELinux: a no-op, as with containerd and
    # CRI-O; the volume is mounted and its files keep no label.
    vol = os.path.join(ctrs.suite.root, "relabel-vol")
    os.makedirs(vol, exist_ok=True)
    with open(os.path.join(vol, "f"), "w") as f:
        f.write("vol-data\n")
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="relabel", command=[BB, "cat", "/vol/f"], security=sc(RUNTIME_DEFAULT),
        mounts=[api.Mount(container_path="/vol", host_path=vol, selinux_relabel=True)]))
    ctrs.start(cid)
    assert ctrs.wait_exit(cid).exit_code == 0
    ctrs.remove(cid)
    for path in (vol, os.path.join(vol, "f")):
        assert "security.selinux" not in os.listxattr(path), path
    before = ctrs.counts()
    for kw, says in (
            ({"apparmor": api.SecurityProfile(profile_type=api.SecurityProfile.Localhost,
                                              localhost_ref="k8s-nginx")},
             "apparmor: Localhost profile \"k8s-nginx\" asked, but this host has no AppArmor"),
            ({"selinux": api.SELinuxOption(type="spc_t", level="s0:c1,c2")},
             "selinux_options: an SELinux label is asked, but this host has no SELinux")):
        code, msg = grpc_error(ctrs.create, pod_id, pod_cfg,
                               ctrs.config(name="lsm", command=["true"],
                                           security=sc(RUNTIME_DEFAULT, **kw)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and says in msg, msg
    assert ctrs.counts() == before
    pods_before = len(ctrs.pods.list())
    cfg = ctrs.pods.config()
    cfg.linux.security_context.apparmor.CopyFrom(
        api.SecurityProfile(profile_type=api.SecurityProfile.Localhost, localhost_ref="x"))
    code, msg = grpc_error(ctrs.pods.run, cfg)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert "linux.security_context.apparmor" in msg, msg
    cfg = ctrs.pods.config()
    cfg.linux.security_context.selinux_options.CopyFrom(api.SELinuxOption(level="s0"))
    code, msg = grpc_error(ctrs.pods.run, cfg)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert "linux.security_context.selinux_options" in msg, msg
    assert len(ctrs.pods.list()) == pods_before


def test_user_namespaces_with_host_namespaces_refused(ctrs):
    # A pod user namespace works here (test_userns.py, which also turns
    # them off), but never with the host's network: refused naming the
    # field, nothing left.
    pods_before = len(ctrs.pods.list())
    mapping = [api.IDMapping(host_id=1 << 20, container_id=0, length=65536)]
    cfg = ctrs.pods.config()
    cfg.linux.security_context.namespace_options.network = api.NODE
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(
        api.UserNamespace(mode=api.POD, uids=mapping, gids=mapping))
    code, msg = grpc_error(ctrs.pods.run, cfg)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert "namespace_options.userns_options" in msg, msg
    assert len(ctrs.pods.list()) == pods_before
    # NODE (the host's user namespace) is what every pod has: fine.
    cfg = ctrs.pods.config()
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(
        api.UserNamespace(mode=api.NODE))
    node = ctrs.pods.run(cfg)
    ctrs.pods.stop(node)
    ctrs.pods.remove(node)
