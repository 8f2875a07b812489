"""Devices, CDI devices, mount propagation and the leftover resources
(swap, hugepages, unified) through the CRI socket with real pods and real
runc, read from inside the container (busybox) and from the host.

Device nodes are made by the test with mknod under the suite root (a
/dev/null-like char 1:3); CDI spec files go to <root>/etc/cdi and
<root>/var/run/cdi, runtimed's default CDI directories under --root.
Propagation uses tmpfs mounts the test makes under the suite root and
unmounts again.

Pods: run under `flock /tmp/cric-net.lock` like every suite that makes
them."""
import json
import os
import subprocess

import grpc
import pytest

from conftest import api
from test_container_resources import cgroup_dir, read, update
from test_container_security import pod as make_pod
from test_containers import grpc_error, monitors_ready
from test_containers import ctrs, registry  # noqa: F401  (fixtures)

BB = "/bin/busybox"
LOOP = "while :; do sleep 1; done"


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def mknode(path, minor):
    """A char node of major 240 (local/experimental: no driver here), so
    opening it tells the device cgroup's answer apart: "No such device or
    address" when the cgroup lets it through, "Operation not permitted"
    when it does not (the nodes runc always allows, like 1:3, cannot)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mknod(path, 0o20666, os.makedev(240, minor))


def open_errors(ctrs, cid, *ops):
    """The error of each shell redirection in ops, e.g. "> /dev/x"."""
    out = []
    for op in ops:
        r = ctrs.cri.call("ExecSync", api.ExecSyncRequest(
            container_id=cid, cmd=[BB, "sh", "-c", f"true {op}"], timeout=20),
            api.ExecSyncResponse, timeout=40)
        err = r.stderr.decode()
        out.append("allowed" if "No such device" in err else
                   "denied" if "not permitted" in err else err or "opened")
    return out


def exec_out(ctrs, cid, script):
    r = ctrs.cri.call("ExecSync", api.ExecSyncRequest(
        container_id=cid, cmd=[BB, "sh", "-c", script], timeout=20),
        api.ExecSyncResponse, timeout=40)
    return r.exit_code, r.stdout.decode().split()


def running(ctrs, pod_id, pod_cfg, name, **kw):
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name=name, command=[BB, "sh", "-c", LOOP],
                                                   **kw))
    ctrs.start(cid)
    return cid


def gone(ctrs, cid):
    ctrs.stop(cid)
    ctrs.remove(cid)


YAML_SPEC = """\
cdiVersion: 0.6.0
kind: cric.test/probe
containerEdits:
  env: ["CDI_SPEC=spec-level"]
devices:
  - name: one
    containerEdits:
      env: ["CDI_ONE=yes"]
      deviceNodes:
        - path: /dev/cdi-one
          hostPath: {node}
          permissions: r
      mounts:
        - hostPath: {share}
          containerPath: /cdi-mnt
          options: [rbind, ro]
"""


def test_devices_and_cdi(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    root = ctrs.suite.root
    node0, node1 = os.path.join(root, "devs/null0"), os.path.join(root, "devs/null1")
    mknode(node0, 0)
    mknode(node1, 1)
    share = os.path.join(root, "cdi-share")
    os.makedirs(share)
    with open(os.path.join(share, "marker"), "w") as f:
        f.write("from-cdi-mount\n")
    os.makedirs(os.path.join(root, "etc/cdi"))
    with open(os.path.join(root, "etc/cdi/probe.yaml"), "w") as f:
        f.write(YAML_SPEC.format(node=node1, share=share))
    # A JSON spec of another kind in the second directory.
    os.makedirs(os.path.join(root, "var/run/cdi"))
    with open(os.path.join(root, "var/run/cdi/other.json"), "w") as f:
        json.dump({"cdiVersion": "0.6.0", "kind": "cric.test/json", "devices": [
            {"name": "j", "containerEdits": {"env": ["CDI_JSON=yes"]}},
            {"name": "k", "containerEdits": {"env": ["CDI_ANNO=yes"]}}]}, f)
    # A directory of nodes as one device: every node under it, not the
    # plain file.
    grp = os.path.join(root, "devs/grp")
    mknode(os.path.join(grp, "a"), 5)
    mknode(os.path.join(grp, "sub/b"), 6)
    with open(os.path.join(grp, "plain"), "w") as f:
        f.write("not a device\n")

    cfg = ctrs.config(name="dev", command=[BB, "sh", "-c", LOOP])
    cfg.devices.append(api.Device(host_path=node0, container_path="/dev/probe0",
                                  permissions="rw"))
    cfg.devices.append(api.Device(host_path=grp, container_path="/dev/grp", permissions="r"))
    cfg.CDI_devices.extend([api.CDIDevice(name="cric.test/probe=one"),
                            api.CDIDevice(name="cric.test/json=j")])
    # The device plugin path's annotation, naming one device again (once).
    cfg.annotations["cdi.k8s.io/cric-test_dev0"] = "cric.test/json=k,cric.test/probe=one"
    cid = ctrs.create(pod_id, pod_cfg, cfg)
    ctrs.start(cid)
    code, out = exec_out(ctrs, cid, (
        "[ -c /dev/probe0 ] && echo probe0:char; "
        "[ -c /dev/cdi-one ] && echo cdi:char; "
        "[ -c /dev/grp/a ] && [ -c /dev/grp/sub/b ] && echo grp:chars; "
        "[ -e /dev/grp/plain ] || echo grp:no-plain; "
        "echo env:$CDI_ONE:$CDI_SPEC:$CDI_JSON:$CDI_ANNO; "
        f"{BB} cat /cdi-mnt/marker; "
        "(echo x > /cdi-mnt/new) 2>/dev/null || echo cdi-mnt:ro"))
    assert code == 0, out
    for want in ("probe0:char", "cdi:char", "grp:chars", "grp:no-plain",
                 "env:yes:spec-level:yes:yes", "from-cdi-mount", "cdi-mnt:ro"):
        assert want in out, (want, out)
    # The device cgroup: probe0 read-write, the CDI node and the
    # directory's nodes read-only.
    assert open_errors(ctrs, cid, "< /dev/probe0", "> /dev/probe0", "< /dev/cdi-one",
                       "> /dev/cdi-one", "< /dev/grp/a", "> /dev/grp/a",
                       "< /dev/grp/sub/b") == ["allowed", "allowed", "allowed", "denied",
                                               "allowed", "denied", "allowed"]
    gone(ctrs, cid)

    # Refusals: INVALID_ARGUMENT naming what is wrong; nothing left.
    before = ctrs.counts()
    bad = ctrs.config(name="bad", command=["true"])
    bad.CDI_devices.append(api.CDIDevice(name="cric.test/probe=nope"))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cric.test/probe=nope" in msg, msg
    for value, says in (("cric.test/json=j,cric.test/probe=nope", "cric.test/probe=nope"),
                        ("probe=one", "not a fully-qualified CDI device name")):
        bad = ctrs.config(name="bad", command=["true"])
        bad.annotations["cdi.k8s.io/gpu"] = value
        code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
        assert 'annotation "cdi.k8s.io/gpu"' in msg and says in msg, msg
    bad = ctrs.config(name="bad", command=["true"])
    bad.devices.append(api.Device(host_path=os.path.join(root, "devs/missing"),
                                  container_path="/dev/m", permissions="rw"))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "devs/missing" in msg, msg
    bad = ctrs.config(name="bad", command=["true"])
    bad.devices.append(api.Device(host_path=os.path.join(share, "marker"),
                                  container_path="/dev/m"))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a character" in msg, msg
    assert ctrs.counts() == before


def prop_mount(ctrs, host_dir, path, mode):
    return api.Mount(container_path=path, host_path=host_dir, propagation=mode)


def test_mount_propagation_both_ways(ctrs):
    if monitors_ready(ctrs)[0] is None:
        pytest.skip("monitord does not run monitors yet")
    root = ctrs.suite.root
    shared, private = os.path.join(root, "prop-shared"), os.path.join(root, "prop-private")
    os.makedirs(shared)
    os.makedirs(private)
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "prop-shared", shared)
    try:
        sh("mount", "--make-shared", shared)
        sh("mount", "-t", "tmpfs", "-o", "size=1m", "prop-private", private)
        sh("mount", "--make-private", private)
        pod_id, pod_cfg = make_pod(ctrs, privileged=True)
        before = ctrs.counts()
        # The host mount must propagate: a private one is refused.
        for mode in (api.PROPAGATION_HOST_TO_CONTAINER, api.PROPAGATION_BIDIRECTIONAL):
            code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(
                name="refused", command=["true"],
                mounts=[prop_mount(ctrs, private, "/m", mode)]))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
            assert "mounts[0].propagation" in msg and private in msg, msg
        assert ctrs.counts() == before

        priv = api.LinuxContainerSecurityContext(
            privileged=True, namespace_options=api.NamespaceOption(pid=api.CONTAINER))
        cids = {}
        for name, mode in (("private", api.PROPAGATION_PRIVATE),
                           ("slave", api.PROPAGATION_HOST_TO_CONTAINER),
                           ("shared", api.PROPAGATION_BIDIRECTIONAL)):
            cids[name] = running(ctrs, pod_id, pod_cfg, name, security=priv,
                                 mounts=[prop_mount(ctrs, shared, "/m", mode)])
        # Host to container: rslave and rshared see it, rprivate does not.
        os.makedirs(os.path.join(shared, "from-host"))
        sh("mount", "-t", "tmpfs", "-o", "size=1m", "from-host",
           os.path.join(shared, "from-host"))
        with open(os.path.join(shared, "from-host/marker"), "w") as f:
            f.write("host-made\n")
        for name, sees in (("private", False), ("slave", True), ("shared", True)):
            code, out = exec_out(ctrs, cids[name],
                                 f"{BB} cat /m/from-host/marker 2>/dev/null || echo none")
            assert ("host-made" in out) == sees, (name, out)
        # Container to host: only rshared's mount reaches the host.
        for name, reaches in (("private", False), ("slave", False), ("shared", True)):
            code, out = exec_out(ctrs, cids[name], (
                f"{BB} mkdir -p /m/from-{name} && "
                f"{BB} mount -t tmpfs -o size=1m ctr /m/from-{name} && "
                f"echo {name}-made > /m/from-{name}/marker && echo mounted"))
            assert code == 0 and "mounted" in out, (name, out)
            marker = os.path.join(shared, f"from-{name}/marker")
            assert os.path.exists(marker) == reaches, name
        # The container's side of the rshared mount sees its own, the
        # others' (made in their own namespaces) not.
        code, out = exec_out(ctrs, cids["shared"],
                             f"{BB} cat /m/from-slave/marker 2>/dev/null || echo none")
        assert out == ["none"], out
        for cid in cids.values():
            gone(ctrs, cid)
        ctrs.pods.stop(pod_id)
        ctrs.pods.remove(pod_id)
    finally:
        subprocess.run(["umount", "-R", shared], capture_output=True)
        subprocess.run(["umount", "-R", private], capture_output=True)


def test_swap_hugepages_unified(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    mem = 64 << 20
    cid = running(ctrs, pod_id, pod_cfg, "swap", resources=api.LinuxContainerResources(
        memory_limit_in_bytes=mem, memory_swap_limit_in_bytes=2 * mem))
    pid = ctrs.status(cid, verbose=True).info["info"]
    pid = json.loads(pid)["pid"]
    d = cgroup_dir(pid, "memory")
    v2 = os.path.exists(os.path.join(d, "cgroup.controllers"))
    swap_file, swap_of = (("memory.swap.max", lambda m: m - mem) if v2 else
                          ("memory.memsw.limit_in_bytes", lambda m: m))
    if not os.path.exists(os.path.join(d, swap_file)):
        pytest.skip(f"no swap accounting here ({swap_file})")
    assert int(read(d, swap_file)) == swap_of(2 * mem)
    update(ctrs, cid, memory_limit_in_bytes=mem, memory_swap_limit_in_bytes=3 * mem)
    assert int(read(d, swap_file)) == swap_of(3 * mem)

    # Hugepages: the kubelet sends 0 for every size the host knows; with
    # no hugetlb controller that holds only while the host has none.
    sizes = sorted(os.listdir("/sys/kernel/mm/hugepages"))
    hugetlb = (os.path.isdir("/sys/fs/cgroup/hugetlb") or
               "hugetlb" in open("/sys/fs/cgroup/cgroup.controllers").read()
               if v2 else os.path.isdir("/sys/fs/cgroup/hugetlb"))

    def pages(s):
        return sum(int(open(f"/sys/kernel/mm/hugepages/{s}/{f}").read())
                   for f in ("nr_hugepages", "nr_overcommit_hugepages"))

    def page_size(s):  # hugepages-2048kB -> 2MB
        kb = int(s[len("hugepages-"):-2])
        return f"{kb >> 20}GB" if kb >= 1 << 20 else f"{kb >> 10}MB"
    zero = [api.HugepageLimit(page_size=page_size(s), limit=0) for s in sizes]
    before = ctrs.counts()
    if not hugetlb and not any(pages(s) for s in sizes):
        c2 = running(ctrs, pod_id, pod_cfg, "huge0",
                     resources=api.LinuxContainerResources(hugepage_limits=zero))
        gone(ctrs, c2)
    if not hugetlb and sizes:
        code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(
            name="huge", command=["true"], resources=api.LinuxContainerResources(
                hugepage_limits=[api.HugepageLimit(page_size=page_size(sizes[0]),
                                                   limit=2 << 20)])))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "hugetlb" in msg, msg
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(
        name="huge", command=["true"], resources=api.LinuxContainerResources(
            hugepage_limits=[api.HugepageLimit(page_size="3MB", limit=0)])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in msg, msg
    # unified: cgroup v2 only.
    if not v2:
        code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(
            name="uni", command=["true"], resources=api.LinuxContainerResources(
                unified={"memory.high": "100000000"})))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "cgroup v2" in msg, msg
    else:
        c3 = running(ctrs, pod_id, pod_cfg, "uni", resources=api.LinuxContainerResources(
            unified={"memory.high": "100003840"}))
        p3 = json.loads(ctrs.status(c3, verbose=True).info["info"])["pid"]
        assert read(cgroup_dir(p3, "memory"), "memory.high") == "100003840"
        update(ctrs, c3, unified={"memory.high": "200003584"})
        assert read(cgroup_dir(p3, "memory"), "memory.high") == "200003584"
        gone(ctrs, c3)
    assert ctrs.counts() == before
    gone(ctrs, cid)
