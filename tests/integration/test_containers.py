"""Containers through the CRI socket: CreateContainer, StartContainer,
StopContainer, RemoveContainer, ContainerStatus and ListContainers, with
images built here (busybox-static) and pulled from a loopback registry,
real pods (real CNI, namespaces, cgroups), stored's overlay root
filesystems, monitord's monitors and real runc.

Every test counts what containers leave (records, bundles, runc state,
root filesystems, overlay mounts) and checks that nothing remains after
removal, or after a refused or failed creation.
"""
import json
import os
import re
import secrets
import signal
import time

import grpc
import pytest

import imageutil as iu
from conftest import api, skip_unless_ready, wait_for
from imageutil import Layer, Registry, busybox_layer, tar_layer
from netutil import missing as net_missing
from test_pods import Pods

pytestmark = [skip_unless_ready(iu.missing, "images from a local registry"),
              skip_unless_ready(net_missing, "pods with real CNI networks")]

CREATED, RUNNING, EXITED = (api.CONTAINER_CREATED, api.CONTAINER_RUNNING,
                            api.CONTAINER_EXITED)

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"app:x:1000:1001:app:/home/app:/bin/sh\n")
GROUP = b"root:x:0:\napp:x:1001:\nvideo:x:44:app\nstaff:x:50:\n"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("reg")).start()
    bb = Layer(busybox_layer())
    etc = Layer(tar_layer([("bin", "d"), ("bin/id", "l", "busybox"),
                           ("bin/sleep", "l", "busybox"), ("bin/true", "l", "busybox"),
                           ("bin/cat", "l", "busybox"), ("bin/head", "l", "busybox"),
                           ("bin/tr", "l", "busybox"),
                           ("etc", "d"), ("etc/passwd", "f", PASSWD),
                           ("etc/group", "f", GROUP), ("home", "d"),
                           ("home/app", "d"), ("w", "d")]))
    r.push_image("test/ctr", "1", [bb, etc], config_extra={"config": {
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo image-cmd"],
        "Env": ["PATH=/bin", "FROM_IMAGE=yes", "OVERRIDE=image"], "WorkingDir": "/w"}})
    r.push_image("test/user", "1", [bb, etc], user="app")
    yield r
    r.stop()


class Ctrs:
    """CRI container calls, and what containers leave on the host."""

    def __init__(self, suite, pods, registry):
        self.suite, self.pods, self.reg = suite, pods, registry
        self.logs = None

    @property
    def cri(self):
        return self.suite.cri

    def image(self, name="test/ctr:1"):
        return f"{self.reg.host}/{name}"

    def pull(self, name="test/ctr:1"):
        return self.cri.call("PullImage", api.PullImageRequest(
            image=api.ImageSpec(image=self.image(name))), api.PullImageResponse,
            timeout=120).image_ref

    def pod(self, **kw):
        self.logs = os.path.join(self.suite.root, "var/log/pods", secrets.token_hex(4))
        cfg = self.pods.config(**kw)
        cfg.log_directory = self.logs
        return self.pods.run(cfg), cfg

    def config(self, name="c", image="test/ctr:1", command=(), args=(), envs=None,
               log_path=None, attempt=0, labels=None, annotations=None, mounts=(),
               security=None, working_dir="", resources=None):
        return api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name, attempt=attempt),
            image=api.ImageSpec(image=self.image(image)), command=list(command),
            args=list(args), envs=[api.KeyValue(key=k, value=v)
                                   for k, v in (envs or {}).items()],
            log_path=log_path if log_path is not None else f"{name}/{attempt}.log",
            labels=labels or {}, annotations=annotations or {}, mounts=list(mounts),
            working_dir=working_dir,
            linux=api.LinuxContainerConfig(resources=resources, security_context=security or
                                           api.LinuxContainerSecurityContext(
                                               namespace_options=api.NamespaceOption(
                                                   pid=api.CONTAINER))))

    def create(self, pod_id, pod_cfg, cfg, timeout=60):
        return self.cri.call("CreateContainer", api.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg),
            api.CreateContainerResponse, timeout=timeout).container_id

    def start(self, cid):
        self.cri.call("StartContainer", api.StartContainerRequest(container_id=cid),
                      timeout=60)

    def stop(self, cid, timeout=0):
        self.cri.call("StopContainer", api.StopContainerRequest(container_id=cid,
                                                                timeout=timeout),
                      timeout=timeout + 60)

    def remove(self, cid):
        self.cri.call("RemoveContainer", api.RemoveContainerRequest(container_id=cid),
                      timeout=60)

    def status(self, cid, verbose=False):
        return self.cri.call("ContainerStatus", api.ContainerStatusRequest(
            container_id=cid, verbose=verbose), api.ContainerStatusResponse)

    def list(self, **filt):
        req = api.ListContainersRequest(filter=api.ContainerFilter(**filt) if filt else None)
        return self.cri.call("ListContainers", req, api.ListContainersResponse).containers

    def wait_exit(self, cid, timeout=20):
        wait_for(lambda: self.status(cid).status.state == EXITED, timeout,
                 f"container {cid} to exit")
        return self.status(cid).status

    def counts(self):
        root = self.suite.root

        def entries(*parts):
            d = os.path.join(root, *parts)
            return len(os.listdir(d)) if os.path.isdir(d) else 0
        with open("/proc/self/mountinfo") as f:
            mounts = sum(1 for line in f if root + "/" in line and "overlay" in line)
        return {
            "records": entries("var/lib/cric/runtimed/containers"),
            "bundles": entries("run/cric/runtimed/containers"),
            "runc_state": entries("run/cric/runtimed/runtimes/runc"),
            "rootfs_dirs": entries("var/lib/cric/stored/containers"),
            "rootfs_mounts": entries("run/cric/stored/rootfs"),
            "overlay_mounts": mounts,
        }


@pytest.fixture
def ctrs(suite, net, registry):
    p = Pods(suite, net)
    c = Ctrs(suite, p, registry)
    yield c
    errors = p.cleanup()
    assert not errors, errors


def grpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value.code(), e.value.details()


def monitors_ready(ctrs):
    """CreateMonitor answers (monitord's side of containers)."""
    pod_id, pod_cfg = ctrs.pod()
    ctrs.pull()
    try:
        cid = ctrs.create(pod_id, pod_cfg, ctrs.config(command=["true"]))
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED and "onitor" in e.details():
            return None, e.details()
        raise
    ctrs.remove(cid)
    return pod_id, pod_cfg


# ---------------------------------------------------------------------------


def test_bad_input_gives_clear_errors_and_leaves_nothing(ctrs):
    ctrs.pull()
    pod_id, pod_cfg = ctrs.pod()
    before = ctrs.counts()
    code, msg = grpc_error(ctrs.create, "f" * 64, pod_cfg, ctrs.config())
    assert code == grpc.StatusCode.NOT_FOUND and "pod sandbox" in msg
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(image="test/absent:1"))
    assert code == grpc.StatusCode.NOT_FOUND and "test/absent:1" in msg, msg
    for bad in ("../x.log", "/etc/x.log", "a/../../b"):
        code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(log_path=bad))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "log_path" in msg, msg
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(name="Bad Name"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "metadata.name" in msg, msg
    # No command at all: the image has an Entrypoint; this one has none.
    ctrs.pull("test/user:1")
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg,
                           ctrs.config(image="test/user:1", args=[""]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no command" in msg, msg
    sc = api.LinuxContainerSecurityContext(
        run_as_group=api.Int64Value(value=5),
        namespace_options=api.NamespaceOption(pid=api.CONTAINER))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(security=sc))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "run_as_group" in msg, msg
    sc = api.LinuxContainerSecurityContext(
        capabilities=api.Capability(add_capabilities=["NET_BOGUS"]),
        namespace_options=api.NamespaceOption(pid=api.CONTAINER))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(security=sc))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "NET_BOGUS" in msg, msg
    sc = api.LinuxContainerSecurityContext(
        run_as_username="ghost", namespace_options=api.NamespaceOption(pid=api.CONTAINER))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(security=sc))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "ghost" in msg, msg
    mount = api.Mount(container_path="relative", host_path="/tmp")
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(mounts=[mount]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "container_path" in msg, msg
    # Unknown containers: status NOT_FOUND; stop and remove succeed.
    code, _ = grpc_error(ctrs.status, "e" * 64)
    assert code == grpc.StatusCode.NOT_FOUND
    ctrs.stop("e" * 64)
    ctrs.remove("e" * 64)
    assert ctrs.counts() == before
    assert len(ctrs.list()) == 0


def test_create_start_logs_and_exit_codes(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    before = ctrs.counts()
    ok = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="ok", args=["echo one; echo two >&2; echo $FROM_IMAGE $OVERRIDE; pwd"],
        envs={"OVERRIDE": "cri"}, labels={"app": "x"}))
    bad = ctrs.create(pod_id, pod_cfg, ctrs.config(name="bad", command=["/bin/sh", "-c",
                                                                         "exit 3"]))
    assert ctrs.status(ok).status.state == CREATED
    ctrs.start(ok)
    log = os.path.join(ctrs.logs, "ok/0.log")
    assert os.path.exists(log)  # at once: the kubelet links it right after
    ctrs.start(bad)
    s = ctrs.wait_exit(ok)
    assert (s.exit_code, s.reason) == (0, "Completed")
    assert s.started_at >= s.created_at and s.finished_at >= s.started_at
    assert s.log_path == log and s.labels["app"] == "x"
    assert s.image_ref.startswith(ctrs.image("test/ctr@sha256:").split("@")[0])
    s = ctrs.wait_exit(bad)
    assert (s.exit_code, s.reason) == (3, "Error")
    wait_for(lambda: "two" in open(log).read(), 5, "the log lines")
    lines = open(log).read().splitlines()
    streams = {line.split(" ", 3)[3]: line.split(" ", 3)[1] for line in lines}
    assert streams["one"] == "stdout" and streams["two"] == "stderr"
    assert streams["yes cri"] == "stdout" and streams["/w"] == "stdout"
    for line in lines:
        ts, stream, tag, _ = line.split(" ", 3)
        assert ts.endswith("Z") and tag == "F" and stream in ("stdout", "stderr")
    # Starting twice is refused.
    code, _ = grpc_error(ctrs.start, ok)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    # Filters
    assert {c.id for c in ctrs.list()} == {ok, bad}
    assert [c.id for c in ctrs.list(id=ok[:12])] == [ok]
    assert [c.id for c in ctrs.list(label_selector={"app": "x"})] == [ok]
    assert len(ctrs.list(pod_sandbox_id=pod_id[:10])) == 2
    assert len(ctrs.list(state=api.ContainerStateValue(state=RUNNING))) == 0
    assert len(ctrs.list(state=api.ContainerStateValue(state=EXITED))) == 2
    for cid in (ok, bad):
        ctrs.remove(cid)
        ctrs.remove(cid)  # idempotent
    assert ctrs.counts() == before


def armed(ctrs, name):
    """Wait until the container's shell has set its trap (it logs "armed"
    after): a signal sent before would meet the default action."""
    log = os.path.join(ctrs.logs, f"{name}/0.log")
    wait_for(lambda: os.path.exists(log) and "armed" in open(log).read(), 20,
             f"{name}'s trap")


def test_stop_with_timeout_and_remove_running(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    before = ctrs.counts()
    # Ignores SIGTERM: StopContainer returns after its timeout, not long after.
    stubborn = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="stubborn", args=["trap '' TERM; echo armed; while :; do sleep 0.1; done"]))
    ctrs.start(stubborn)
    armed(ctrs, "stubborn")
    assert ctrs.status(stubborn).status.state == RUNNING
    t0 = time.monotonic()
    ctrs.stop(stubborn, timeout=2)
    took = time.monotonic() - t0
    assert 2 <= took < 6, took
    s = ctrs.status(stubborn).status
    assert s.state == EXITED and s.exit_code == 137
    # Polite: SIGTERM ends it well before its timeout (a handler: PID 1 of
    # its pid namespace gets no signal it does not handle).
    polite = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="polite", args=["trap 'exit 143' TERM; echo armed; while :; do sleep 0.1; done"]))
    ctrs.start(polite)
    armed(ctrs, "polite")
    t0 = time.monotonic()
    ctrs.stop(polite, timeout=30)
    assert time.monotonic() - t0 < 5
    assert ctrs.status(polite).status.exit_code == 143
    # Removing a running container kills it.
    running = ctrs.create(pod_id, pod_cfg, ctrs.config(name="running", args=["sleep 60"]))
    ctrs.start(running)
    info = json.loads(ctrs.status(running, verbose=True).info["info"])
    assert info["pid"] > 0 and info["sandboxID"] == pod_id
    assert info["runtimeSpec"]["process"]["args"] == ["/bin/sh", "-c", "sleep 60"]
    ctrs.remove(running)
    assert not os.path.exists(f"/proc/{info['pid']}")
    for cid in (stubborn, polite):
        ctrs.remove(cid)
    assert ctrs.counts() == before


def test_users_and_names(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    ctrs.pull("test/user:1")

    def ids_of(name, security=None, image="test/ctr:1"):
        cid = ctrs.create(pod_id, pod_cfg, ctrs.config(
            name=name, image=image, command=["/bin/sh", "-c", "id"], security=security))
        ctrs.start(cid)
        ctrs.wait_exit(cid)
        text = open(os.path.join(ctrs.logs, f"{name}/0.log")).read()
        ctrs.remove(cid)
        # busybox id: "uid=1000(app) gid=1001(app) groups=44(video)"
        return re.sub(r"\([^)]*\)", "", text.split(" ", 3)[3].strip())

    ns = api.NamespaceOption(pid=api.CONTAINER)
    assert ids_of("img", image="test/user:1") == "uid=1000 gid=1001 groups=44"
    sc = api.LinuxContainerSecurityContext(run_as_user=api.Int64Value(value=4242),
                                           run_as_group=api.Int64Value(value=7),
                                           supplemental_groups=[9], namespace_options=ns)
    assert ids_of("num", sc) == "uid=4242 gid=7 groups=9"
    sc = api.LinuxContainerSecurityContext(run_as_username="app", namespace_options=ns)
    assert ids_of("named", sc).startswith("uid=1000 gid=1001")
    # A second live container of one name is refused, naming the holder.
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(name="dup", args=["true"]))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(name="dup", args=["true"]))
    assert code == grpc.StatusCode.ALREADY_EXISTS and cid in msg
    # RemovePodSandbox removes the pod's containers.
    ctrs.pods.stop(pod_id)
    ctrs.pods.remove(pod_id)
    assert len(ctrs.list()) == 0


def test_runtimed_restart_keeps_containers_and_pod_stop_kills_them(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    before = ctrs.counts()
    sleeper = ctrs.create(pod_id, pod_cfg, ctrs.config(name="sleeper", args=["sleep 600"]))
    ctrs.start(sleeper)
    quick = ctrs.create(pod_id, pod_cfg, ctrs.config(name="quick", args=["exit 7"]))
    created = ctrs.create(pod_id, pod_cfg, ctrs.config(name="created", args=["true"]))
    ctrs.suite.kill("runtimed")
    ctrs.suite.up()
    assert ctrs.status(sleeper).status.state == RUNNING
    assert ctrs.status(created).status.state == CREATED
    ctrs.start(quick)
    s = ctrs.wait_exit(quick)
    assert (s.exit_code, s.reason) == (7, "Error")
    pid = json.loads(ctrs.status(sleeper, verbose=True).info["info"])["pid"]
    # StopPodSandbox stops what still runs; RemovePodSandbox removes them all.
    ctrs.pods.stop(pod_id)
    assert ctrs.status(sleeper).status.state == EXITED
    assert not os.path.exists(f"/proc/{pid}")
    ctrs.pods.remove(pod_id)
    assert len(ctrs.list()) == 0
    assert ctrs.counts() == before


def test_create_retried_by_name_after_its_deadline_gets_the_same_id(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    before = ctrs.counts()
    # The kubelet's retry is not byte-identical: a new log path per attempt.
    first = ctrs.config(name="retried", args=["sleep 600"], log_path="retried/a.log")
    # imaged frozen: the creation waits on ResolveImage past its caller's
    # deadline (a fast machine would otherwise finish within any short one).
    ctrs.suite.kill("imaged", signal.SIGSTOP)
    try:
        code, _ = grpc_error(ctrs.create, pod_id, pod_cfg, first, timeout=0.5)
    finally:
        ctrs.suite.kill("imaged", signal.SIGCONT)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    again = ctrs.config(name="retried", args=["sleep 600"], log_path="retried/b.log")
    cid = ctrs.create(pod_id, pod_cfg, again)
    assert [c.id for c in ctrs.list()] == [cid]
    # The first attempt's container (its log path), not a second one.
    assert ctrs.status(cid).status.log_path.endswith("/retried/a.log")
    # Handed over once: a third creation of the name is a conflict.
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, again)
    assert code == grpc.StatusCode.ALREADY_EXISTS and cid in msg
    ctrs.remove(cid)
    assert ctrs.counts() == before


def test_target_pid_namespace_joins_another_container(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    target = ctrs.create(pod_id, pod_cfg, ctrs.config(name="target", args=["sleep 600"]))
    ctrs.start(target)

    def pid1_of(name, ns):
        sc = api.LinuxContainerSecurityContext(namespace_options=ns)
        cid = ctrs.create(pod_id, pod_cfg, ctrs.config(
            name=name, command=["/bin/cat", "/proc/1/cmdline"], security=sc))
        ctrs.start(cid)
        ctrs.wait_exit(cid)
        text = open(os.path.join(ctrs.logs, f"{name}/0.log")).read()
        ctrs.remove(cid)
        return text

    assert "sleep" in pid1_of("joined", api.NamespaceOption(pid=api.TARGET, target_id=target))
    assert "sleep" not in pid1_of("own", api.NamespaceOption(pid=api.CONTAINER))
    code, msg = grpc_error(ctrs.create, pod_id, pod_cfg, ctrs.config(
        name="orphan", args=["true"], security=api.LinuxContainerSecurityContext(
            namespace_options=api.NamespaceOption(pid=api.TARGET, target_id="f" * 64))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "target_id" in msg
    ctrs.remove(target)


def test_memory_limit_and_oom_killed(ctrs):
    pod_id, pod_cfg = monitors_ready(ctrs)
    if pod_id is None:
        pytest.skip(f"monitord does not run monitors yet: {pod_cfg}")
    res = api.LinuxContainerResources(memory_limit_in_bytes=16 << 20, cpu_shares=256)
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="hog", resources=res,
        args=["x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"]))
    spec = json.loads(ctrs.status(cid, verbose=True).info["info"])["runtimeSpec"]
    assert spec["linux"]["resources"]["memory"]["limit"] == 16 << 20
    ctrs.start(cid)
    s = ctrs.wait_exit(cid, timeout=30)
    assert (s.exit_code, s.reason) == (137, "OOMKilled"), (s.exit_code, s.reason)
    ctrs.remove(cid)
