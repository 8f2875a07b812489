"""One pod driven through the CRI socket the way the kubelet drives it
(pkg/kubelet/kuberuntime: SyncPod, startContainer, killContainer, the
PLEG's relist, the eviction manager's stats, the prober, the lifecycle
hook runner and the container log manager's rotation), against the real
daemons, real runc, a real CNI network and a registry image.

What the kubelet sends is what is sent here: the image by its id with the
user's name beside it, its four labels and its annotations, its mounts
(etc-hosts, a read-only projected token directory, a fresh random
termination-log file per attempt at /dev/termination-log), log path
`<name>/<restartCount>.log` under /var/log/pods/<ns>_<name>_<uid>, its
resources, default masked and read-only paths, namespace options.

Run under `flock /tmp/cric-net.lock` (creates pods)."""
import os
import secrets
import signal
import threading
import time

import grpc

from conftest import api, wait_for
from test_containers import (CREATED, EXITED, RUNNING, Ctrs, ctrs, grpc_error,  # noqa: F401
                             registry)

MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
GRACE = 30  # the pod's terminationGracePeriodSeconds


class Relister(threading.Thread):
    """The PLEG: ListPodSandbox + ListContainers every second, then the
    status of what they listed, each must succeed; and, every other tick,
    ListContainerStats as the eviction manager and the summary API ask for
    it (every 10 s there; more often here, a short test)."""

    def __init__(self, cri):
        super().__init__(daemon=True)
        self.cri, self.done = cri, threading.Event()
        self.ticks, self.stats_calls, self.gone, self.errors = 0, 0, 0, []

    def run(self):
        while not self.done.is_set():
            try:
                pods = self.cri.call("ListPodSandbox", api.ListPodSandboxRequest(),
                                     api.ListPodSandboxResponse, timeout=5).items
                ctrs = self.cri.call("ListContainers", api.ListContainersRequest(),
                                     api.ListContainersResponse, timeout=5).containers
                # GetPodStatus for what it listed (gone meanwhile: NOT_FOUND).
                for p in pods:
                    self.status("PodSandboxStatus", api.PodSandboxStatusRequest(
                        pod_sandbox_id=p.id, verbose=True), api.PodSandboxStatusResponse)
                for c in ctrs:
                    self.status("ContainerStatus", api.ContainerStatusRequest(
                        container_id=c.id), api.ContainerStatusResponse)
                if self.ticks % 2 == 0:
                    self.cri.call("ListContainerStats", api.ListContainerStatsRequest(),
                                  api.ListContainerStatsResponse, timeout=5)
                    self.stats_calls += 1
                self.ticks += 1
            except grpc.RpcError as e:
                self.errors.append((self.ticks, e.code(), e.details()))
            self.done.wait(1.0)

    def status(self, method, req, resp):
        try:
            self.cri.call(method, req, resp, timeout=5)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            self.gone += 1

    def stop(self):
        self.done.set()
        self.join(10)
        return self.errors


def kubelet_pod_config(ctrs, name, ns, uid):
    cfg = ctrs.pods.config(name=name, namespace=ns, uid=uid, labels={
        "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": ns,
        "io.kubernetes.pod.uid": uid, "app": "web"},
        annotations={"kubernetes.io/config.source": "api",
                     "kubernetes.io/config.seen": "2026-12-06T23:00:00Z"},
        hostname=name)
    cfg.log_directory = os.path.join(ctrs.suite.root, "var/log/pods", f"{ns}_{name}_{uid}")
    cfg.dns_config.CopyFrom(api.DNSConfig(servers=["198.18.0.10"], searches=[
        f"{ns}.svc.cluster.local", "svc.cluster.local"], options=["ndots:5"]))
    return cfg


def termination_file(pod_dir, name):
    """kuberuntime makeMounts: a fresh file per attempt, 8 random hex."""
    d = os.path.join(pod_dir, "containers", name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, secrets.token_hex(4))
    open(path, "w").close()
    return path


def kubelet_container_config(image_id, user_image, pod_name, ns, uid, pod_dir, term, attempt=0):
    name = "app"
    script = ("trap 'echo bye from $i > /dev/termination-log; exit 0' TERM; i=0; "
              "while :; do echo $i; i=$((i+1)); busybox usleep 50000; done")
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(name=name, attempt=attempt),
        image=api.ImageSpec(image=image_id, user_specified_image=user_image),
        command=["/bin/sh", "-c"], args=[script], working_dir="",
        envs=[api.KeyValue(key="KUBERNETES_SERVICE_HOST", value="198.18.0.1"),
              api.KeyValue(key="KUBERNETES_SERVICE_PORT", value="443")],
        labels={"io.kubernetes.container.name": name, "io.kubernetes.pod.name": pod_name,
                "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid},
        annotations={"io.kubernetes.container.hash": "5c0a6f2e",
                     "io.kubernetes.container.restartCount": str(attempt),
                     "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
                     "io.kubernetes.container.terminationMessagePolicy": "File",
                     "io.kubernetes.pod.terminationGracePeriod": str(GRACE)},
        mounts=[api.Mount(container_path="/etc/hosts",
                          host_path=os.path.join(pod_dir, "etc-hosts")),
                api.Mount(container_path="/var/run/secrets/kubernetes.io/serviceaccount",
                          host_path=os.path.join(pod_dir, "volumes/token"), readonly=True),
                api.Mount(container_path="/dev/termination-log", host_path=term)],
        log_path=f"{name}/{attempt}.log",
        linux=api.LinuxContainerConfig(
            resources=api.LinuxContainerResources(
                cpu_shares=102, cpu_period=100000, cpu_quota=50000,
                memory_limit_in_bytes=128 << 20, oom_score_adj=968),
            security_context=api.LinuxContainerSecurityContext(
                namespace_options=api.NamespaceOption(network=api.POD, pid=api.CONTAINER,
                                                      ipc=api.POD),
                seccomp=api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault),
                masked_paths=MASKED, readonly_paths=READONLY,
                supplemental_groups_policy=api.Merge)))


def exec_sync(ctrs, cid, cmd, timeout, deadline=None):
    # The kubelet's own deadline is the probe's timeout plus its margin.
    return ctrs.cri.call("ExecSync", api.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                         timeout=timeout),
                         api.ExecSyncResponse, timeout=deadline or timeout + 30)


def counter_lines(*paths):
    out = []
    for path in paths:
        for line in open(path).read().splitlines():
            ts, stream, tag, content = line.split(" ", 3)
            assert stream == "stdout" and tag == "F", line
            out.append(int(content))
    return out


def test_one_pod_driven_as_the_kubelet_does(ctrs):
    root = ctrs.suite.root
    before = ctrs.counts()
    relist = Relister(ctrs.cri)
    relist.start()
    try:
        name, ns, uid = "web-" + secrets.token_hex(3), "default", secrets.token_hex(8)
        pod_dir = os.path.join(root, "var/lib/kubelet/pods", uid)
        os.makedirs(os.path.join(pod_dir, "volumes/token"))
        with open(os.path.join(pod_dir, "volumes/token/token"), "w") as f:
            f.write("t0ken")
        with open(os.path.join(pod_dir, "etc-hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n198.18.0.99 kubelet-hosts\n")
        pod_cfg = kubelet_pod_config(ctrs, name, ns, uid)
        pod_id = ctrs.pods.run(config=pod_cfg)

        # EnsureImageExists: pull, then the kubelet names the image by its id.
        user_image = ctrs.image()
        ctrs.cri.call("PullImage", api.PullImageRequest(
            image=api.ImageSpec(image=user_image), sandbox_config=pod_cfg),
            api.PullImageResponse, timeout=120)
        image_id = ctrs.cri.call("ImageStatus", api.ImageStatusRequest(
            image=api.ImageSpec(image=user_image)), api.ImageStatusResponse).image.id
        assert image_id

        # CreateContainer whose deadline passes (imaged frozen: the creation
        # waits on it), then the kubelet's retry: a new termination file.
        term1 = termination_file(pod_dir, "app")
        first = kubelet_container_config(image_id, user_image, name, ns, uid, pod_dir, term1)
        ctrs.suite.kill("imaged", signal.SIGSTOP)
        try:
            code, _ = grpc_error(ctrs.create, pod_id, pod_cfg, first, timeout=0.5)
            # The relist goes on meanwhile (runtimed is not held by the create).
            t = relist.ticks
            wait_for(lambda: relist.ticks >= t + 2, 10, "relists during the stuck create")
        finally:
            ctrs.suite.kill("imaged", signal.SIGCONT)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        term2 = termination_file(pod_dir, "app")
        again = kubelet_container_config(image_id, user_image, name, ns, uid, pod_dir, term2)
        cid = ctrs.create(pod_id, pod_cfg, again)
        assert [c.id for c in ctrs.list(pod_sandbox_id=pod_id)] == [cid]
        st = ctrs.status(cid).status
        assert st.state == CREATED
        # Exact mounts: the kubelet finds the termination file through them.
        mounts = {m.container_path: m for m in st.mounts}
        assert set(mounts) == {"/etc/hosts", "/var/run/secrets/kubernetes.io/serviceaccount",
                               "/dev/termination-log"}, st.mounts
        assert mounts["/dev/termination-log"].host_path == term1  # the first attempt's
        assert mounts["/var/run/secrets/kubernetes.io/serviceaccount"].readonly
        assert st.labels["io.kubernetes.pod.uid"] == uid
        assert st.annotations["io.kubernetes.container.terminationMessagePath"] == \
            "/dev/termination-log"
        assert st.image_id == image_id and st.image_ref, st

        # StartContainer; at once the log file exists, and the kubelet links it.
        ctrs.start(cid)
        log = os.path.join(pod_cfg.log_directory, "app/0.log")
        assert os.path.exists(log)
        link_dir = os.path.join(root, "var/log/containers")
        os.makedirs(link_dir, exist_ok=True)
        link = os.path.join(link_dir, f"{name}_{ns}_app-{cid}.log")
        os.symlink(log, link)

        # postStart hook: ExecSync with timeout 0 (no timeout).
        r = exec_sync(ctrs, cid, ["/bin/sh", "-c", "echo hooked > /w/started; "
                                  "cat /etc/hosts /var/run/secrets/kubernetes.io/"
                                  "serviceaccount/token"], 0, deadline=60)
        assert (r.exit_code, r.stderr) == (0, b""), r
        assert b"kubelet-hosts" in r.stdout and b"t0ken" in r.stdout
        # Probes: a timeout of 1 s; a passing one, a failing one, a hung one.
        for _ in range(3):
            r = exec_sync(ctrs, cid, ["cat", "/w/started"], 1)
            assert (r.exit_code, r.stdout) == (0, b"hooked\n")
        r = exec_sync(ctrs, cid, ["/bin/sh", "-c", "echo no >&2; exit 1"], 1)
        assert (r.exit_code, r.stderr) == (1, b"no\n")
        t0 = time.monotonic()
        code, msg = grpc_error(exec_sync, ctrs, cid, ["sleep", "30"], 1)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (code, msg)
        assert time.monotonic() - t0 < 10
        # The relist shows it running; the stats include it.
        assert [c.state for c in ctrs.list(id=cid)] == [RUNNING]
        stats = ctrs.cri.call("ListContainerStats", api.ListContainerStatsRequest(),
                              api.ListContainerStatsResponse).stats
        mine = [s for s in stats if s.attributes.id == cid]
        assert len(mine) == 1 and mine[0].memory.working_set_bytes.value > 0, stats
        assert mine[0].attributes.labels["io.kubernetes.container.name"] == "app"

        # The container log manager's rotation: rename, then reopen.
        wait_for(lambda: os.path.getsize(log) > 200, 10, "lines to rotate")
        rotated = log + ".20261206-230000"
        os.rename(log, rotated)
        ctrs.cri.call("ReopenContainerLog", api.ReopenContainerLogRequest(container_id=cid),
                      api.ReopenContainerLogResponse)
        assert os.path.exists(log)
        wait_for(lambda: os.path.getsize(log) > 100, 10, "lines in the new file")

        # killContainer: StopContainer with the pod's grace period; the
        # handler writes a termination message and exits 0 at once.
        t0 = time.monotonic()
        ctrs.stop(cid, timeout=GRACE)
        assert time.monotonic() - t0 < 10
        st = ctrs.status(cid).status
        assert (st.state, st.exit_code, st.reason) == (EXITED, 0, "Completed")
        assert st.finished_at >= st.started_at >= st.created_at > 0
        tpath = {m.container_path: m.host_path for m in st.mounts}["/dev/termination-log"]
        assert open(tpath).read().startswith("bye from "), "the kubelet reads it itself"
        lines = counter_lines(rotated, log)
        assert lines == list(range(len(lines))), "every line once, in order"
        assert int(open(tpath).read().split()[2]) >= len(lines) - 1

        # removeContainer: the kubelet drops its link, then RemoveContainer.
        os.unlink(link)
        ctrs.remove(cid)
        assert len(ctrs.list(pod_sandbox_id=pod_id)) == 0
        assert os.path.exists(rotated) and os.path.exists(log)  # the kubelet's files

        ctrs.pods.stop(pod_id)
        ctrs.pods.remove(pod_id)
        assert len(ctrs.pods.list(id=pod_id)) == 0
    finally:
        errors = relist.stop()
    assert errors == [], errors
    assert relist.ticks >= 3 and relist.stats_calls >= 2, (relist.ticks, relist.stats_calls)
    assert ctrs.counts() == before
