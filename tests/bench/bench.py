#!/usr/bin/python3
"""make bench: cric against its peer, Debian's containerd with its CRI plugin,
in the same run, on the same machine, through the same CRI client.

Both runtimes get the same registry on loopback (Debian's docker-registry),
the same CNI plugins (bridge + host-local + portmap, each its own bridge and
subnet: 198.19.20.0/24 and 198.19.21.0/24, apart from the default config's
198.18.0.0/16 and the tests' 198.19.42.0/24), runc, and their own temp
roots. Every figure is reported for both and as a ratio cric/containerd
(below 1: cric is faster/smaller); absolute times on shared machines are
noise, the ratios are the result.

containerd needs a sandbox ("pause") image: the bench builds one from
cric's own static pause binary and pushes it to the loopback registry, so
nothing is fetched from the internet.

    tests/bench/bench.py [--quick] [--json FILE] [--only SCENARIO ...]

--only runs some scenarios alone (version, pull, pods, many, shared,
imagefs, life, footprint, exec, relist, concurrent, restart, idle, growth,
burst, stream); "imagefs" runs no pod, so it does not touch the network and can
run beside the network tests. --concurrent, --restart-pods, --idle-seconds,
--growth, --calls, --stream-mib, --stream-reps and --iterations shorten a
run while iterating.
"""
import argparse
import concurrent.futures
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from conftest import BIN, CRI, DAEMONS, Suite, api, running_pids_under  # noqa: E402
import imageutil as iu  # noqa: E402
from netutil import bridge_conflist, free_port  # noqa: E402
from floor import RUNC, Floor, run as floor_cmd  # noqa: E402

CONTAINERD = "/usr/bin/containerd"
SHIM = "/usr/bin/containerd-shim-runc-v2"
CNI_BIN = "/usr/lib/cni"
# The bench's containers run cric's static pause binary under this name:
# it exits on SIGTERM, and its name tells it from the runtimes' processes.
WORKLOAD = "sleeper"
STEPS = ("RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
         "RemoveContainer", "StopPodSandbox", "RemovePodSandbox")


def missing():
    for path in (CONTAINERD, SHIM, iu.REGISTRY_BIN, "/usr/sbin/runc", "/usr/sbin/ip",
                 os.path.join(CNI_BIN, "bridge"), os.path.join(BIN, "cric-pause")):
        if not os.access(path, os.X_OK):
            return path
    return None


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f)


def pss_kib(pid, field="Pss:"):
    """The process's PSS in KiB, or with field="Pss_Anon:" its anonymous
    part: what no other process shares and no page cache backs (the file
    part moves with the page cache's folio sizes and with how many other
    processes map the same libraries)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids):
    """CPU time (user + system, with reaped children's) of pids, in s."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def procs():
    """pid -> (ppid, comm, cmdline) of every live process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        out[int(d)] = (int(fields[1]), comm, cmd)
    return out


def descendants(roots, table):
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


class Runtime:
    """One CRI runtime under test: a name, a CRI client, its processes."""
    name = ""
    cri = None

    def pids(self):
        raise NotImplementedError

    def runtime_pids(self):
        """Its processes but the workload (the bench's containers run
        WORKLOAD: what they cost is the same under every runtime)."""
        table = procs()
        return {p for p in self.pids() if p in table and table[p][1] != WORKLOAD}

    def pss_mib(self, field="Pss:"):
        return sum(pss_kib(p, field) for p in self.runtime_pids()) / 1024.0

    def pss_by_process(self, when, rss=False):
        """{"PSS <when>, <process name> (MiB)": PSS} for each process name
        (and RSS likewise with rss)."""
        table = procs()
        out = {}
        for p in self.runtime_pids():
            name = table[p][1] if p in table else "?"
            kinds = [("PSS", pss_kib)] + ([("RSS", rss_kib)] if rss else [])
            for kind, f in kinds:
                key = f"{kind} {when}, {name} (MiB)"
                out[key] = out.get(key, 0) + f(p) / 1024.0
        return dict(sorted(out.items()))

    def cpu_s(self):
        return cpu_s(self.runtime_pids())

    def restart(self, what):
        """Kill -9 `what` (one of self.restartable()) and start it again
        as it was; the seconds until a CRI call it serves answers."""
        raise NotImplementedError

    def restartable(self):
        return []


class Cric(Runtime):
    name = "cric"

    def __init__(self, tmp, registry):
        self.root = os.path.join(tmp, "cric")
        self.logs = os.path.join(self.root, "pod-logs")
        self.suite = Suite(self.root)
        tag = secrets.token_hex(2)
        self.bridge = "cbc" + tag
        write_json(os.path.join(self.suite.cni_dir, "10-bench.conflist"),
                   bridge_conflist("bench-cric-" + tag, self.bridge,
                                   os.path.join(self.root, "var/lib/cni/networks"),
                                   "198.19.20.0/24"))
        try:
            self.suite.up()
        except BaseException:
            self.stop()
            raise
        self.cri = self.suite.cri

    def pids(self):
        """The daemons and what they spawned, the infra processes and the
        monitors (with the containers under them): those run detached
        (nobody's descendants here); the infras' pids come from runtimed's
        pod records, the monitors are found by their command line."""
        table = procs()
        roots = {self.suite.pid(d) for d in DAEMONS}
        roots |= {p for p, (_, comm, cmd) in table.items()
                  if comm == "cric-monitor" and self.root in cmd}
        records = os.path.join(self.root, "var/lib/cric/runtimed/sandboxes")
        for name in os.listdir(records) if os.path.isdir(records) else ():
            if name.endswith(".json"):
                with open(os.path.join(records, name)) as f:
                    roots.add(json.load(f).get("infra_pid", 0))
        return descendants(roots & set(table), table)

    # A CRI call each daemon serves (or takes part in): it answers once
    # the daemon is back and the gateway reconnected to it.
    PROBES = {"gateway": ("Version", api.VersionRequest(), api.VersionResponse),
              "imaged": ("ListImages", api.ListImagesRequest(), api.ListImagesResponse),
              "stored": ("ImageFsInfo", api.ImageFsInfoRequest(), api.ImageFsInfoResponse),
              "netd": ("Status", api.StatusRequest(), api.StatusResponse),
              "runtimed": ("ListContainers", api.ListContainersRequest(),
                           api.ListContainersResponse),
              "monitord": ("ListContainerStats", api.ListContainerStatsRequest(),
                           api.ListContainerStatsResponse)}

    def restartable(self):
        return list(self.PROBES)

    def restart(self, what):
        pid = self.suite.pid(what)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if b"=" in e)
        self.suite.kill(what)
        log = os.path.join(self.suite.log_dir, what + ".log")
        t = time.perf_counter()
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        with open(os.path.join(self.root, "run/cric/pids", what + ".pid"), "w") as f:
            f.write(f"{proc.pid}\n")
        method, req, resp = self.PROBES[what]
        if what == "gateway":
            dt = wait_answer(self.suite.socket, method, req, resp, t)
            self.cri.close()
            self.cri = self.suite.cri = CRI(self.suite.socket)
        else:
            dt = wait_answer(self.cri, method, req, resp, t)
        proc.returncode = 0  # not ours to reap: it runs on as the suite's
        return dt

    def stop(self):
        r = self.suite.down("--all")
        if r.returncode != 0:
            print(f"cric-down: {r.stderr.strip()}", file=sys.stderr)
        for pid in running_pids_under(self.root):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class Containerd(Runtime):
    name = "containerd"

    def __init__(self, tmp, registry, pause_ref):
        self.dir = os.path.join(tmp, "ctd")
        self.logs = os.path.join(self.dir, "pod-logs")
        os.makedirs(self.dir)
        self.socket = os.path.join(self.dir, "c.sock")
        tag = secrets.token_hex(2)
        self.bridge = "cbd" + tag
        cni_dir = os.path.join(self.dir, "cni")
        write_json(os.path.join(cni_dir, "10-bench.conflist"),
                   bridge_conflist("bench-ctd-" + tag, self.bridge,
                                   os.path.join(self.dir, "cni-data"), "198.19.21.0/24"))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{self.dir}/root"
state = "{self.dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  level = "warn"
[{cri}]
  sandbox_image = "{pause_ref}"
  enable_selinux = false
  disable_apparmor = true
  # The machine lacks CAP_SYS_RESOURCE: the pause oom_score_adj of -998
  # would fail in runc, as cric clamps it.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni_dir}"
[{cri}.registry.mirrors."{registry.host}"]
  endpoint = ["http://{registry.host}"]
"""
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(config)
        self.log = os.path.join(self.dir, "containerd.log")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([CONTAINERD, "--config", self.config],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        end = time.monotonic() + 30
        self.cri = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited; see {self.log}")
            if os.path.exists(self.socket):
                try:
                    cri = CRI(self.socket)
                    cri.version(timeout=2)
                    self.cri = cri
                    break
                except Exception:  # not serving CRI yet
                    cri.close()
            time.sleep(0.1)
        if self.cri is None:
            raise RuntimeError(f"containerd's CRI did not answer in 30 s; see {self.log}")

    def restartable(self):
        return ["containerd"]

    def restart(self, what):
        self.proc.kill()
        self.proc.wait()
        t = time.perf_counter()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([CONTAINERD, "--config", self.config],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        dt = wait_answer(self.socket, "ListContainers", api.ListContainersRequest(),
                         api.ListContainersResponse, t)
        self.cri.close()
        self.cri = CRI(self.socket)
        return dt

    def shims(self, table):
        return [p for p, (_, comm, cmd) in table.items()
                if comm.startswith("containerd-shim") and self.socket in cmd]

    def pids(self):
        table = procs()
        return descendants({self.proc.pid, *self.shims(table)}, table)

    def stop(self):
        if self.cri:
            remove_all_pods(self)
            self.cri.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        table = procs()
        for pid in descendants(set(self.shims(table)), table):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Mounts it left (shm, rootfs, netns): innermost first.
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f if self.dir in line.split()[4]]
        for mp in sorted(mps, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def wait_answer(cri, method, req, resp, since, limit=60):
    """Seconds from since until method answers (polled every 5 ms). cri:
    a client, or a socket path to dial afresh for each try (a grpc channel
    that found no server backs off for a second or more: it would measure
    the client, not the server)."""
    while time.perf_counter() - since < limit:
        c = CRI(cri) if isinstance(cri, str) else cri
        try:
            c.call(method, req, resp, timeout=2)
            return time.perf_counter() - since
        except grpc.RpcError:
            time.sleep(0.005)
        finally:
            if c is not cri:
                c.close()
    raise RuntimeError(f"{method} did not answer in {limit} s after the restart")


def remove_all_pods(rt):
    pods = rt.cri.call("ListPodSandbox", api.ListPodSandboxRequest(),
                       api.ListPodSandboxResponse, timeout=60).items
    for p in pods:
        rt.cri.call("StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
        rt.cri.call("RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=p.id),
                    timeout=60)


def pod_config(name, pid_mode=api.CONTAINER, log_directory="/tmp"):
    """A pod as the kubelet sends it: pid=CONTAINER unless the pod shares its
    process namespace (shareProcessNamespace: pid=POD)."""
    cfg = api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, namespace="bench", uid="uid-" + name),
        hostname=name[:60], log_directory=log_directory)
    cfg.linux.security_context.namespace_options.pid = pid_mode
    return cfg


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def p50(xs):
    return statistics.median(xs)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


# ---- the scenarios: each returns {metric: value} for one runtime ----

def bench_version(rt, n):
    f = lambda: rt.cri.version()  # noqa: E731
    for _ in range(50):
        f()
    lat = [timed(f)[0] for _ in range(n)]
    return {"Version p50 (ms)": p50(lat) * 1e3, "Version p99 (ms)": p99(lat) * 1e3}


def bench_pull(rt, refs, rounds):
    out = {}
    for label, ref in refs:
        times = []
        for _ in range(rounds):
            dt, r = timed(lambda: rt.cri.call(
                "PullImage", api.PullImageRequest(image=api.ImageSpec(image=ref)),
                api.PullImageResponse, timeout=300))
            times.append(dt)
            rt.cri.call("RemoveImage", api.RemoveImageRequest(
                image=api.ImageSpec(image=r.image_ref)), timeout=120)
        out[f"pull {label}, cold, p50 (ms)"] = p50(times) * 1e3
        rt.cri.call("PullImage", api.PullImageRequest(image=api.ImageSpec(image=ref)),
                    api.PullImageResponse, timeout=300)
        dt, _ = timed(lambda: rt.cri.call(
            "PullImage", api.PullImageRequest(image=api.ImageSpec(image=ref)),
            api.PullImageResponse, timeout=300))
        out[f"pull {label}, present (ms)"] = dt * 1e3
    return out


def bench_pods(rt, n, label, tag, pid_mode=api.CONTAINER):
    run, stop, rm = [], [], []
    for i in range(n):
        cfg = pod_config(f"{rt.name}-{tag}-{i}", pid_mode)
        dt, r = timed(lambda: rt.cri.call("RunPodSandbox", api.RunPodSandboxRequest(config=cfg),
                                          api.RunPodSandboxResponse, timeout=120))
        run.append(dt)
        pid = r.pod_sandbox_id
        stop.append(timed(lambda: rt.cri.call(
            "StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=120))[0])
        rm.append(timed(lambda: rt.cri.call(
            "RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=pid),
            timeout=120))[0])
    return {f"RunPodSandbox {label} p50 (ms)": p50(run) * 1e3,
            f"StopPodSandbox {label} p50 (ms)": p50(stop) * 1e3,
            f"RemovePodSandbox {label} p50 (ms)": p50(rm) * 1e3}


def imagefs_layer(n):
    """One layer of n hard-linked files: n inodes of two names each (each
    inode a hard link du must count once), in 100 directories."""
    entries = [(f"hl{d}", "d") for d in range(100)]
    for i in range(n):
        entries.append((f"hl{i % 100}/f{i}", "f", b""))
        entries.append((f"hl{i % 100}/l{i}", "h", f"hl{i % 100}/f{i}"))
    return iu.Layer(iu.tar_layer(entries))


def bench_imagefs(rt, ref, small_ref, calls):
    """ImageFsInfo of a store holding an image of 100k hard-linked files
    (100k inodes, 200k names),
    and whether pulls proceed while it runs: a small image is pulled and
    removed while ImageFsInfo calls run back to back in another thread."""
    rt.cri.call("PullImage", api.PullImageRequest(image=api.ImageSpec(image=ref)),
                api.PullImageResponse, timeout=900)
    fsinfo = lambda: rt.cri.call("ImageFsInfo", api.ImageFsInfoRequest(),  # noqa: E731
                                 api.ImageFsInfoResponse, timeout=600)

    def pull_small():
        r = rt.cri.call("PullImage", api.PullImageRequest(image=api.ImageSpec(image=small_ref)),
                        api.PullImageResponse, timeout=300)
        rt.cri.call("RemoveImage", api.RemoveImageRequest(
            image=api.ImageSpec(image=r.image_ref)), timeout=120)
    fsinfo()
    lat = [timed(fsinfo)[0] for _ in range(calls)]
    idle = [timed(pull_small)[0] for _ in range(calls)]
    stop = threading.Event()
    busy_calls = []

    def hammer():
        while not stop.is_set():
            busy_calls.append(timed(fsinfo)[0])
    t = threading.Thread(target=hammer)
    t.start()
    try:
        during = [timed(pull_small)[0] for _ in range(calls)]
    finally:
        stop.set()
        t.join()
    rt.cri.call("RemoveImage", api.RemoveImageRequest(image=api.ImageSpec(image=ref)),
                timeout=600)
    return {"ImageFsInfo, 100k hard links, p50 (ms)": p50(lat) * 1e3,
            "pull+remove small image, idle, p50 (ms)": p50(idle) * 1e3,
            "pull+remove small image during ImageFsInfo, p50 (ms)": p50(during) * 1e3,
            "ImageFsInfo calls during those pulls": len(busy_calls)}


def bench_many(rt, n, calls):
    idle = rt.pss_mib()
    ids = []
    for i in range(n):
        r = rt.cri.call("RunPodSandbox", api.RunPodSandboxRequest(
            config=pod_config(f"{rt.name}-many-{i}")), api.RunPodSandboxResponse, timeout=120)
        ids.append(r.pod_sandbox_id)
    lst = [timed(lambda: rt.cri.call("ListPodSandbox", api.ListPodSandboxRequest(),
                                     api.ListPodSandboxResponse, timeout=60))
           for _ in range(calls)]
    assert all(len(x[1].items) == n for x in lst), "ListPodSandbox lost pods"
    st = [timed(lambda: rt.cri.call("PodSandboxStatus", api.PodSandboxStatusRequest(
        pod_sandbox_id=i), api.PodSandboxStatusResponse, timeout=60))[0] for i in ids]
    busy = rt.pss_mib()
    nproc = len(rt.pids())
    remove_all_pods(rt)
    return {"memory idle, PSS (MiB)": idle,
            f"memory with {n} pods, PSS (MiB)": busy,
            f"processes with {n} pods": nproc,
            f"ListPodSandbox of {n} p50 (ms)": p50([x[0] for x in lst]) * 1e3,
            f"PodSandboxStatus with {n} p50 (ms)": p50(st) * 1e3}


# ---- containers: per-step life cycle against the floor, footprint, relist,
# ExecSync. Series are kept as samples (ms) and summarised at the end. ----

def ctr_config(name, image):
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(name=name), image=api.ImageSpec(image=image),
        command=[f"/bin/{WORKLOAD}"], log_path=f"{name}.log",
        linux=api.LinuxContainerConfig(security_context=api.LinuxContainerSecurityContext(
            namespace_options=api.NamespaceOption(pid=api.CONTAINER))))


def run_pod(rt, name, pid_mode=api.CONTAINER):
    cfg = pod_config(name, pid_mode, rt.logs)
    r = rt.cri.call("RunPodSandbox", api.RunPodSandboxRequest(config=cfg),
                    api.RunPodSandboxResponse, timeout=120)
    return r.pod_sandbox_id, cfg


def create_ctr(rt, pod_id, pod_cfg, name, image):
    return rt.cri.call("CreateContainer", api.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=ctr_config(name, image), sandbox_config=pod_cfg),
        api.CreateContainerResponse, timeout=120).container_id


def start_ctr(rt, cid):
    rt.cri.call("StartContainer", api.StartContainerRequest(container_id=cid), timeout=120)


def wait_workload(cid, timeout=30):
    """Until the workload of container cid (found by its cgroup, named after
    the id under every runtime and the floor) catches SIGTERM: a signal
    sent before that to a PID namespace's init without a handler is lost,
    and the stop would wait out its timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p, (_, comm, _) in procs().items():
            if comm != WORKLOAD:
                continue
            try:
                with open(f"/proc/{p}/cgroup") as f:
                    if cid not in f.read():
                        continue
                with open(f"/proc/{p}/status") as f:
                    caught = [ln for ln in f if ln.startswith("SigCgt:")][0]
            except (OSError, IndexError):
                continue
            if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                return
        time.sleep(0.005)
    raise RuntimeError(f"the workload of {cid} did not start")


def cri_cycle(rt, name, image):
    """One pod + one container through the seven CRI steps: step -> s."""
    t = {}
    pod = {}

    def run():
        pod["id"], pod["cfg"] = run_pod(rt, name)
    t["RunPodSandbox"] = timed(run)[0]
    dt, cid = timed(lambda: create_ctr(rt, pod["id"], pod["cfg"], "c", image))
    t["CreateContainer"] = dt
    t["StartContainer"] = timed(lambda: start_ctr(rt, cid))[0]
    wait_workload(cid)
    t["StopContainer"] = timed(lambda: rt.cri.call("StopContainer", api.StopContainerRequest(
        container_id=cid, timeout=10), timeout=120))[0]
    t["RemoveContainer"] = timed(lambda: rt.cri.call(
        "RemoveContainer", api.RemoveContainerRequest(container_id=cid), timeout=120))[0]
    t["StopPodSandbox"] = timed(lambda: rt.cri.call(
        "StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=pod["id"]), timeout=120))[0]
    t["RemovePodSandbox"] = timed(lambda: rt.cri.call(
        "RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=pod["id"]),
        timeout=120))[0]
    return t


def floor_cycle(fl):
    """The same seven steps done by hand: netns + CNI ADD, runc create,
    start, kill + wait, delete, CNI DEL, netns del."""
    t = {}
    t["RunPodSandbox"] = timed(lambda: (fl.netns_add(), fl.cni_add()))[0]
    t["CreateContainer"] = timed(fl.create)[0]
    t["StartContainer"] = timed(fl.start)[0]
    wait_workload(fl.cid)
    t["StopContainer"] = timed(fl.stop)[0]
    t["RemoveContainer"] = timed(fl.delete)[0]
    t["StopPodSandbox"] = timed(fl.cni_del)[0]
    t["RemovePodSandbox"] = timed(fl.netns_del)[0]
    return t


def bench_life(runtimes, fl, n, image):
    """n cycles of each, interleaved (cric, containerd, floor, cric, ...) so
    drift hits all alike; one untimed cycle each first."""
    out = {rt.name: {} for rt in runtimes + [fl]}
    for i in range(n + 1):
        for rt in runtimes + [fl]:
            t = floor_cycle(fl) if rt is fl else cri_cycle(rt, f"{rt.name}-life-{i}", image)
            if i == 0:
                continue
            t["pod + container, full cycle"] = sum(t.values())
            for k, v in t.items():
                out[rt.name].setdefault(k, []).append(v * 1e3)
    return out


def start_pods(rt, pods, ctrs_per_pod, image, tag):
    ids = []
    for i in range(pods):
        pod_id, cfg = run_pod(rt, f"{rt.name}-{tag}-{i}")
        for j in range(ctrs_per_pod):
            start_ctr(rt, create_ctr(rt, pod_id, cfg, f"c{j}", image))
        ids.append(pod_id)
    return ids


def remove_everything(rt):
    """Containers stopped and removed, then the pods."""
    for c in rt.cri.call("ListContainers", api.ListContainersRequest(),
                         api.ListContainersResponse, timeout=60).containers:
        rt.cri.call("StopContainer", api.StopContainerRequest(container_id=c.id, timeout=10),
                    timeout=120)
        rt.cri.call("RemoveContainer", api.RemoveContainerRequest(container_id=c.id),
                    timeout=120)
    remove_all_pods(rt)


def bench_footprint(rt, pods, image):
    """PSS of the runtime's processes (the workload not counted) idle and
    with `pods` pods of one running container each: the increment per pod."""
    remove_everything(rt)
    time.sleep(1)
    idle = rt.pss_mib()
    nidle = len(rt.runtime_pids())
    start_pods(rt, pods, 1, image, "fp")
    time.sleep(1)
    busy = rt.pss_mib()
    nproc = len(rt.runtime_pids())
    remove_everything(rt)
    return {f"PSS idle before the {pods} pods (MiB)": idle,
            f"PSS with {pods} pods × 1 container (MiB)": busy,
            "PSS per running pod + container (KiB)": (busy - idle) * 1024 / pods,
            f"processes idle before the {pods} pods": nidle,
            f"processes with {pods} pods": nproc}


def bench_exec(rt, calls, image):
    """ExecSync of `true` in a running container, round trip."""
    pod_id, cfg = run_pod(rt, f"{rt.name}-exec")
    cid = create_ctr(rt, pod_id, cfg, "c", image)
    start_ctr(rt, cid)
    req = api.ExecSyncRequest(container_id=cid, cmd=["/bin/true"], timeout=10)

    def once():
        r = rt.cri.call("ExecSync", req, api.ExecSyncResponse, timeout=30)
        assert r.exit_code == 0, r
    for _ in range(5):
        once()
    pids = rt.runtime_pids()
    c0 = cpu_s(pids)
    lat = [timed(once)[0] * 1e3 for _ in range(calls)]
    cpu = (cpu_s(pids) - c0) * 1e3 * 1000 / calls
    remove_everything(rt)
    # CPU: the runtime's processes with what they spawned and reaped
    # (runc exec included: compare with the floor's).
    return {"ExecSync `true` (ms)": lat, "CPU per 1000 ExecSyncs, runc's included (ms)": cpu}


def floor_exec(fl, calls):
    """runc exec of `true` in a running floor container."""
    fl.netns_add()
    fl.cni_add()
    fl.create()
    fl.start()
    try:
        run = lambda: floor_cmd(RUNC, "--root", fl.runc_root, "exec", fl.cid,  # noqa: E731
                                "/bin/true")
        for _ in range(5):
            run()
        t0 = os.times()
        lat = [timed(run)[0] * 1e3 for _ in range(calls)]
        t1 = os.times()
        cpu = (t1.children_user + t1.children_system - t0.children_user
               - t0.children_system) * 1e3 * 1000 / calls
    finally:
        fl.stop()
        fl.delete()
        fl.cni_del()
        fl.netns_del()
    return {"ExecSync `true` (ms)": lat, "CPU per 1000 ExecSyncs, runc's included (ms)": cpu}


def bench_relist(rt, pods, calls, image):
    """The kubelet's relist (ListPodSandbox + ListContainers, no filter) with
    `pods` pods of two running containers each, and the status calls."""
    remove_everything(rt)
    dt, ids = timed(lambda: start_pods(rt, pods, 2, image, "rl"))

    def relist():
        p = rt.cri.call("ListPodSandbox", api.ListPodSandboxRequest(),
                        api.ListPodSandboxResponse, timeout=60).items
        c = rt.cri.call("ListContainers", api.ListContainersRequest(),
                        api.ListContainersResponse, timeout=60).containers
        return len(p), len(c)
    for _ in range(20):
        assert relist() == (pods, 2 * pods), "relist lost pods or containers"
    pids = rt.runtime_pids()
    c0 = cpu_s(pids)
    lat = [timed(relist)[0] * 1e3 for _ in range(calls)]
    relist_cpu = (cpu_s(pids) - c0) * 1e3 * 1000 / calls
    lp = [timed(lambda: rt.cri.call("ListPodSandbox", api.ListPodSandboxRequest(),
                                    api.ListPodSandboxResponse, timeout=60))[0] * 1e3
          for _ in range(calls)]
    lc = [timed(lambda: rt.cri.call("ListContainers", api.ListContainersRequest(),
                                    api.ListContainersResponse, timeout=60))[0] * 1e3
          for _ in range(calls)]
    cids = [c.id for c in rt.cri.call("ListContainers", api.ListContainersRequest(),
                                      api.ListContainersResponse, timeout=60).containers]
    cst = [timed(lambda: rt.cri.call("ContainerStatus", api.ContainerStatusRequest(
        container_id=c), api.ContainerStatusResponse, timeout=60))[0] * 1e3 for c in cids]
    pst = [timed(lambda: rt.cri.call("PodSandboxStatus", api.PodSandboxStatusRequest(
        pod_sandbox_id=p), api.PodSandboxStatusResponse, timeout=60))[0] * 1e3 for p in ids]
    # The kubelet's stats view (every 10 s with the CRI stats provider),
    # checked complete; a runtime that lacks a call is left out of its row.
    stats = {}
    for method, req, resp, field, want in (
            ("ListPodSandboxStats", api.ListPodSandboxStatsRequest(),
             api.ListPodSandboxStatsResponse, "stats", pods),
            ("ListContainerStats", api.ListContainerStatsRequest(),
             api.ListContainerStatsResponse, "stats", 2 * pods)):
        call = lambda: rt.cri.call(method, req, resp, timeout=60)  # noqa: E731
        try:
            got = len(getattr(call(), field))
        except grpc.RpcError as e:
            print(f"  {rt.name}: {method}: {e.code().name} {e.details()}", file=sys.stderr)
            continue
        assert got == want, f"{method}: {got} of {want}"
        stats[method] = [timed(call)[0] * 1e3 for _ in range(max(10, calls // 4))]
    remove_everything(rt)
    k = f"{pods} pods × 2 containers"
    for method, lat_ms in stats.items():
        stats[method] = (f"{method}, {k} (ms)", lat_ms)
    return {f"relist (ListPodSandbox + ListContainers), {k} (ms)": lat,
            f"runtime CPU per 1000 relists, {k} (ms)": relist_cpu,
            f"ListPodSandbox alone, {k} (ms)": lp,
            f"ListContainers alone, {k} (ms)": lc,
            f"ContainerStatus, {k} (ms)": cst,
            f"PodSandboxStatus, {k} (ms)": pst,
            **dict(stats.values()),
            f"set-up of {k}, wall (s)": dt}


# ---- streaming: exec round trip, port-forward throughput, through
# tests/integration/streamclient (Go, spdystream: a client that is not
# ours, as the stream tests use it) ----

STREAM_SRC = os.path.join(HERE, "..", "integration", "streamclient")
GOPATH = "/usr/share/gocode"

# A TCP server for port-forward: "echo" sends back what it reads; "sink"
# answers the count as decimal text once it read the bytes expected (not
# at the FIN: containerd 1.6 closes the whole connection at the client's
# FIN).
STREAM_SERVER = """
import socket, sys, threading
mode, port, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen()
print("ready", flush=True)
def serve(c):
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        if mode == "echo":
            c.sendall(b)
        elif n < want <= n + len(b):
            c.sendall(str(want).encode())
        n += len(b)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def build_streamclient(tmp):
    """The Go client built as the stream tests build it; None (with why)
    when golang-go or spdystream is missing."""
    if not shutil.which("go") or not os.path.isdir(
            os.path.join(GOPATH, "src/github.com/docker/spdystream")):
        return None, "golang-go or golang-github-docker-spdystream-dev missing"
    out = os.path.join(tmp, "go")
    env = dict(os.environ, GOPATH=GOPATH, GO111MODULE="off", GOCACHE=os.path.join(out, "cache"),
               GOFLAGS="")
    r = subprocess.run(["go", "build", "-o", os.path.join(out, "streamclient"), "."],
                       cwd=STREAM_SRC, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return os.path.join(out, "streamclient"), ""


def pod_netns(rt, pod_id):
    """A path to the pod's network namespace: cric's status says it;
    containerd's runtime spec names it (else its pause process's)."""
    info = json.loads(rt.cri.call("PodSandboxStatus", api.PodSandboxStatusRequest(
        pod_sandbox_id=pod_id, verbose=True), api.PodSandboxStatusResponse,
        timeout=60).info["info"])
    if info.get("netns"):
        return info["netns"]
    for ns in info.get("runtimeSpec", {}).get("linux", {}).get("namespaces", []):
        if ns.get("type") == "network" and ns.get("path"):
            return ns["path"]
    return f"/proc/{info['pid']}/ns/net"


def exec_round_trips(rt, client, cid, calls):
    """calls exec round trips of `true`: the Exec call (here), then one
    process of the Go client (-loop) fed each URL on a pipe does the
    upgrade, the error and stdout streams and reads the v4 status. Timed
    here from before the Exec call until the client's line for it; the
    client's own part (dial to status) is its figure."""
    p = subprocess.Popen([client, "-loop"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    req = api.ExecRequest(container_id=cid, cmd=["/bin/true"], stdout=True)
    total, session, exec_call = [], [], []
    try:
        for _ in range(calls):
            t = time.perf_counter()
            url = rt.cri.call("Exec", req, api.ExecResponse, timeout=30).url
            t1 = time.perf_counter()
            p.stdin.write(url + "\n")
            p.stdin.flush()
            line = p.stdout.readline()
            t2 = time.perf_counter()
            if not line.startswith("RT ") or '"status":"Success"' not in line:
                raise RuntimeError(f"{rt.name}: exec round trip: {line.strip()!r}")
            total.append((t2 - t) * 1e3)
            exec_call.append((t1 - t) * 1e3)
            session.append(float(line.split()[1]))
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return total, exec_call, session


def port_forward(rt, client, pod_id, netns, mode, nbytes):
    """One PortForward session of one connection carrying nbytes to a
    server of mode (echo or sink) on the pod's loopback: MiB/s."""
    port = free_port()
    server = subprocess.Popen(["nsenter", "--net=" + netns, "/usr/bin/python3", "-c",
                               STREAM_SERVER, mode, str(port), str(nbytes)],
                              stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{rt.name}: the {mode} server did not start")
        url = rt.cri.call("PortForward", api.PortForwardRequest(pod_sandbox_id=pod_id,
                                                                port=[port]),
                          api.PortForwardResponse, timeout=30).url
        r = subprocess.run([client, "-url", url, "-portforward", f"{port}:{nbytes}", "-timing"]
                           + (["-one-way"] if mode == "sink" else []),
                           capture_output=True, text=True, timeout=300)
    finally:
        server.kill()
        server.wait()
    ms = [float(ln.split()[2]) for ln in r.stderr.splitlines() if ln.startswith("TIME ")]
    if r.returncode != 0 or " MATCH true EOF true " not in r.stdout or len(ms) != 1:
        raise RuntimeError(f"{rt.name}: port-forward ({mode}): rc {r.returncode} "
                           f"{r.stdout.strip()!r} {r.stderr.strip()[-300:]!r}")
    return nbytes / (1 << 20) / (ms[0] / 1e3)


def bench_stream(rt, client, calls, image, mib, reps):
    """Exec round trips (Exec call + upgrade + `true` + v4 status) and
    port-forward throughput (one connection, mib MiB echoed, and mib MiB
    one way to a sink; reps sessions each) into a pod with a CNI network."""
    remove_everything(rt)
    pod_id, cfg = run_pod(rt, f"{rt.name}-stream")
    cid = create_ctr(rt, pod_id, cfg, "c", image)
    start_ctr(rt, cid)
    exec_round_trips(rt, client, cid, 5)  # warm-up, not counted
    # CPU: the runtime's processes with what they spawned and reaped
    # (runc exec, cric's port-forward helper), not the client's nor the
    # servers'.
    pids = rt.runtime_pids()
    c0 = cpu_s(pids)
    total, exec_call, session = exec_round_trips(rt, client, cid, calls)
    exec_cpu = (cpu_s(pids) - c0) * 1e3 * 1000 / calls
    netns = pod_netns(rt, pod_id)
    nbytes = mib << 20
    c0 = cpu_s(pids)
    echo = [port_forward(rt, client, pod_id, netns, "echo", nbytes) for _ in range(reps)]
    echo_cpu = (cpu_s(pids) - c0) * 1e3 / (2 * mib * reps)
    sink = [port_forward(rt, client, pod_id, netns, "sink", nbytes) for _ in range(reps)]
    remove_everything(rt)
    return {"exec round trip: Exec + upgrade + `true` + status (ms)": total,
            "exec round trip: of which the Exec call (ms)": exec_call,
            "exec round trip: of which the session, upgrade to status (ms)": session,
            f"port-forward, {mib} MiB echoed on one connection, each way (MiB/s)": echo,
            f"port-forward, {mib} MiB one way to a sink (MiB/s)": sink,
            "CPU per 1000 exec round trips, runc's included (ms)": exec_cpu,
            "CPU per MiB port-forwarded, echo, both ways counted (ms)": echo_cpu}


# ---- concurrency, restarts, idle CPU, growth ----

def wait_workloads_catch_sigterm(n, timeout=10.0):
    """Until n workload processes handle SIGTERM. A container's process is
    its PID namespace's init, which the kernel spares signals it has no
    handler for: one stopped between runc starting it and its sigaction
    ignores SIGTERM and costs StopContainer its whole grace period, which
    would time the workload, not the runtime."""
    deadline = time.monotonic() + timeout
    while True:
        ready = 0
        for pid, (_, comm, _) in procs().items():
            if comm != WORKLOAD:
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    cgt = next(line for line in f if line.startswith("SigCgt:"))
            except (FileNotFoundError, ProcessLookupError, StopIteration):
                continue
            ready += bool(int(cgt.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
        if ready >= n or time.monotonic() > deadline:
            return ready
        time.sleep(0.005)


def bench_concurrent(rt, pods, image):
    """pods pods of one container each, all at once (a thread each): wall
    time until all run, each pod's own time (RunPodSandbox + Create +
    Start), then all removed at once."""
    remove_everything(rt)
    tag = secrets.token_hex(2)

    def up(i):
        t = time.perf_counter()
        pod_id, cfg = run_pod(rt, f"{rt.name}-cc{tag}-{i}")
        cid = create_ctr(rt, pod_id, cfg, "c", image)
        start_ctr(rt, cid)
        return time.perf_counter() - t, pod_id, cid

    def down(ids):
        pod_id, cid = ids
        t = time.perf_counter()
        rt.cri.call("StopContainer", api.StopContainerRequest(container_id=cid, timeout=10),
                    timeout=120)
        rt.cri.call("RemoveContainer", api.RemoveContainerRequest(container_id=cid),
                    timeout=120)
        rt.cri.call("StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                    timeout=120)
        rt.cri.call("RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                    timeout=120)
        return time.perf_counter() - t

    with concurrent.futures.ThreadPoolExecutor(pods) as ex:
        t = time.perf_counter()
        ups = list(ex.map(up, range(pods)))
        wall_up = time.perf_counter() - t
        running = rt.cri.call("ListContainers", api.ListContainersRequest(
            filter=api.ContainerFilter(state=api.ContainerStateValue(
                state=api.CONTAINER_RUNNING))), api.ListContainersResponse, timeout=60)
        assert len(running.containers) == pods, "not all containers run"
        assert wait_workloads_catch_sigterm(pods) >= pods, "workloads not up"
        t = time.perf_counter()
        downs = list(ex.map(down, [(p, c) for _, p, c in ups]))
        wall_down = time.perf_counter() - t
    k = f"{pods} pods at once"
    return {f"{k}: wall until all run (ms)": wall_up * 1e3,
            f"{k}: each pod until it runs (ms)": [u[0] * 1e3 for u in ups],
            f"{k}: wall until all removed (ms)": wall_down * 1e3,
            f"{k}: each pod until removed (ms)": [d * 1e3 for d in downs]}


def bench_restart(rt, pods, image, rounds):
    """With `pods` pods of one running container: each daemon killed (-9)
    and started again, rounds times; the time until a CRI call it serves
    answers (containerd: ListContainers)."""
    remove_everything(rt)
    start_pods(rt, pods, 1, image, "rs")
    out = {}
    slowest = 0
    for what in rt.restartable():
        times = [rt.restart(what) * 1e3 for _ in range(rounds)]
        out[f"restart of {what} with {pods} pods, until it answers (ms)"] = times
        slowest = max(slowest, statistics.median(times))
    out[f"restart with {pods} pods, the slowest daemon's median (ms)"] = slowest
    n = len(rt.cri.call("ListContainers", api.ListContainersRequest(),
                        api.ListContainersResponse, timeout=60).containers)
    assert n == pods, f"{pods - n} containers lost over the restarts"
    remove_everything(rt)
    return out


def bench_idle_cpu(rt, pods, seconds, image):
    """CPU time of every runtime process (monitors and shims included, the
    workload not) over `seconds` with `pods` pods of one running container
    and no calls."""
    remove_everything(rt)
    start_pods(rt, pods, 1, image, "ic")
    time.sleep(2)
    table = procs()
    pids = rt.runtime_pids()
    c0 = {p: cpu_s([p]) for p in pids}
    time.sleep(seconds)
    k = f"idle CPU with {pods} pods"
    out = {f"{k}, per minute (ms)": 0.0}
    for p in pids:
        c1 = cpu_s([p])
        if c1 < c0[p]:
            continue  # gone meanwhile
        used = (c1 - c0[p]) * 1e3 * 60 / seconds
        out[f"{k}, per minute (ms)"] += used
        name = f"{k}, {table[p][1] if p in table else '?'}, per minute (ms)"
        out[name] = out.get(name, 0.0) + used
    remove_everything(rt)
    return out


def bench_growth(rt, image, few, many):
    """PSS and RSS of each runtime process after `few` pod + container
    cycles and after `many`: what work leaves behind."""
    def cycles(n, first):
        for i in range(first, first + n):
            cri_cycle(rt, f"{rt.name}-gr-{i}", image)
        time.sleep(2)
    remove_everything(rt)
    cycles(few, 0)
    out = {f"PSS after {few} cycles (MiB)": rt.pss_mib()}
    out.update(rt.pss_by_process(f"after {few} cycles", rss=True))
    cycles(many - few, few)
    out[f"PSS after {many} cycles (MiB)"] = rt.pss_mib()
    out.update(rt.pss_by_process(f"after {many} cycles", rss=True))
    return out


def burst(rt, calls):
    """calls CRI calls back to back (Version, ListPodSandbox, ListContainers,
    ImageFsInfo in turn), then the idle PSS once it settled."""
    reqs = [("Version", api.VersionRequest(version="v1"), api.VersionResponse),
            ("ListPodSandbox", api.ListPodSandboxRequest(), api.ListPodSandboxResponse),
            ("ListContainers", api.ListContainersRequest(), api.ListContainersResponse),
            ("ImageFsInfo", api.ImageFsInfoRequest(), api.ImageFsInfoResponse)]
    for i in range(calls):
        method, req, resp = reqs[i % len(reqs)]
        rt.cri.call(method, req, resp, timeout=60)
    time.sleep(2)
    when = f"idle after a {calls}-call burst"
    return {f"PSS {when} (MiB)": rt.pss_mib(),
            f"PSS {when}, anonymous (MiB)": rt.pss_mib("Pss_Anon:"),
            **rt.pss_by_process(when)}


SCENARIOS = ("version", "pull", "pods", "many", "shared", "imagefs",
             "life", "footprint", "exec", "relist", "concurrent", "restart", "idle",
             "growth", "burst", "stream")


def summary(v):
    """A series of samples -> its figures; a scalar stays as it is."""
    if not isinstance(v, list):
        return v
    xs = sorted(v)

    def pct(q):
        return xs[min(len(xs) - 1, int(len(xs) * q))]
    return {"median": statistics.median(xs), "p95": pct(0.95), "p99": pct(0.99),
            "min": xs[0], "max": xs[-1], "n": len(xs)}


def central(v):
    return v["median"] if isinstance(v, dict) else v


def machine():
    def first(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    def version(*cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout or r.stderr).splitlines()[0] if r.returncode == 0 else "?"
    return [f"CPU: {first('/proc/cpuinfo', 'model name')} × {os.cpu_count()}",
            f"memory: {first('/proc/meminfo', 'MemTotal')}",
            f"kernel: {os.uname().release}",
            f"runc: {version(RUNC, '--version')}",
            f"containerd: {version(CONTAINERD, '--version')}",
            f"load average at the end: {os.getloadavg()[0]:.2f}"]


def fmt(x):
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"
    return str(x)


def markdown(results, order, argv):
    names = [n for n in ("cric", "containerd", "floor") if n in results]
    lines = ["# make bench", "", "`" + " ".join(argv) + "`, " +
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), ""]
    lines += [f"- {m}" for m in machine()]
    lines += ["", "Times in ms unless named otherwise; ratios are of medians "
              "(below 1: cric is faster or smaller). The floor is bare runc and the "
              "CNI plugins called directly on the same bundle and conflist.", "",
              "| metric | runtime | median | p95 | p99 | min | max | n "
              "| ÷ containerd | ÷ floor |",
              "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for metric in order:
        ctd = results.get("containerd", {}).get(metric)
        flo = results.get("floor", {}).get(metric)
        for n in names:
            v = results[n].get(metric)
            if v is None:
                continue
            r_ctd = fmt(central(v) / central(ctd)) if n != "containerd" and ctd else ""
            r_flo = fmt(central(v) / central(flo)) if n != "floor" and flo else ""
            if isinstance(v, dict):
                cells = [fmt(v[k]) for k in ("median", "p95", "p99", "min", "max", "n")]
            else:
                cells = [fmt(v), "", "", "", "", ""]
            lines.append(f"| {metric} | {n} | " + " | ".join(cells) + f" | {r_ctd} | {r_flo} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--markdown", help="write the results as a markdown table here")
    ap.add_argument("--only", action="append", choices=SCENARIOS,
                    help="run only this scenario (repeatable)")
    ap.add_argument("--cric-only", action="store_true",
                    help="measure cric alone (no containerd; no ratios)")
    ap.add_argument("--iterations", type=int,
                    help="pod + container life cycles per runtime (default 20; --quick 3)")
    ap.add_argument("--footprint-pods", type=int, default=10,
                    help="running pods of one container for the footprint and for the "
                    "idle CPU (default 10; the issue's figure is 100)")
    ap.add_argument("--relist-pods", type=int,
                    help="pods of two containers for the relist (default 30; --quick 5; "
                    "the issue's figure is 100)")
    ap.add_argument("--calls", type=int,
                    help="relists and ExecSyncs timed (default 300; --quick 30)")
    ap.add_argument("--concurrent", type=int, action="append",
                    help="pods started at once (repeatable; default 10 and 30; --quick 5)")
    ap.add_argument("--restart-pods", type=int, default=10,
                    help="running pods while the daemons restart (default 10)")
    ap.add_argument("--idle-seconds", type=int,
                    help="idle CPU measured over this long (default 30; --quick 5)")
    ap.add_argument("--stream-mib", type=int,
                    help="MiB per port-forward connection (default 64; --quick 8)")
    ap.add_argument("--stream-reps", type=int,
                    help="port-forward sessions per direction (default 5; --quick 2)")
    ap.add_argument("--growth", type=int, nargs=2, metavar=("FEW", "MANY"),
                    help="pod cycles before the two memory readings (default 10 100; "
                    "--quick 3 10)")
    args = ap.parse_args()
    only = set(args.only or SCENARIOS)
    if os.geteuid() != 0:
        sys.exit("bench: run as root (namespaces, mounts, CNI)")
    m = None if args.cric_only else missing()
    if m:
        sys.exit(f"bench: {m} is missing; 'bash deploy/install-deps --bench' installs what "
                 "the bench needs (containerd, runc, CNI plugins, docker-registry)")
    q = args.quick
    n_version, n_pods, n_many, rounds = (200, 5, 20, 1) if q else (2000, 20, 100, 5)
    n_life = args.iterations or (3 if q else 20)
    n_relist = args.relist_pods or (5 if q else 30)
    n_calls = args.calls or (30 if q else 300)
    n_concurrent = args.concurrent or ([5] if q else [10, 30])
    n_idle_s = args.idle_seconds or (5 if q else 30)
    n_growth = args.growth or ((3, 10) if q else (10, 100))
    n_stream_mib = args.stream_mib or (8 if q else 64)
    n_stream_reps = args.stream_reps or (2 if q else 5)

    tmp = tempfile.mkdtemp(prefix="cb-", dir="/tmp")  # short: socket paths
    os.chmod(tmp, 0o755)  # cric's daemons run under their own users
    reg = iu.Registry(os.path.join(tmp, "registry")).start()
    runtimes = []
    fl = None
    results = {}
    try:
        with open(os.path.join(BIN, "cric-pause"), "rb") as f:
            pause_bin = f.read()
        pause = iu.Layer(iu.tar_layer([("pause", "f", pause_bin, {"mode": 0o755})]))
        reg.push_image("bench/pause", "1", [pause],
                       config_extra={"config": {"Entrypoint": ["/pause"], "User": "65535"}})
        bb = iu.Layer(iu.busybox_layer())
        big = [iu.Layer(iu.tar_layer([(f"f{i}", "f", os.urandom(8 << 20))])) for i in range(4)]
        reg.push_image("bench/busybox", "1", [bb])
        reg.push_image("bench/five", "1", [bb] + big)
        # The containers' image: busybox (for ExecSync's true) and the
        # workload, a process that exits on SIGTERM.
        ctr_layers = [iu.busybox_layer(["true"]),
                      iu.tar_layer([("bin", "d"), (f"bin/{WORKLOAD}", "f", pause_bin,
                                                   {"mode": 0o755})])]
        reg.push_image("bench/ctr", "1", [iu.Layer(t) for t in ctr_layers])
        ctr_image = f"{reg.host}/bench/ctr:1"
        refs = [("busybox (1 layer, 1 MB)", f"{reg.host}/bench/busybox:1"),
                ("5 layers, 34 MB", f"{reg.host}/bench/five:1")]
        if "imagefs" in only:
            reg.push_image("bench/links", "1", [imagefs_layer(100000)])

        cric = Cric(tmp, reg)
        runtimes.append(cric)
        if not args.cric_only:
            ctd = Containerd(tmp, reg, f"{reg.host}/bench/pause:1")
            runtimes.append(ctd)
            # containerd pulls its sandbox image on the first pod: not timed.
            ctd.cri.call("PullImage", api.PullImageRequest(
                image=api.ImageSpec(image=f"{reg.host}/bench/pause:1")), api.PullImageResponse,
                timeout=120)
        results = {rt.name: {} for rt in runtimes}
        for rt in runtimes:
            rt.cri.call("ListImages", api.ListImagesRequest(), api.ListImagesResponse)
            results[rt.name]["PSS idle, fresh (MiB)"] = rt.pss_mib()
            results[rt.name]["PSS idle, fresh, anonymous (MiB)"] = rt.pss_mib("Pss_Anon:")
            results[rt.name]["processes idle, fresh"] = len(rt.runtime_pids())
            results[rt.name].update(rt.pss_by_process("idle, fresh"))
        if only & {"life", "footprint", "exec", "relist", "concurrent", "restart", "idle",
                   "growth", "stream"}:
            for rt in runtimes:
                rt.cri.call("PullImage", api.PullImageRequest(
                    image=api.ImageSpec(image=ctr_image)), api.PullImageResponse, timeout=120)
        if only & {"life", "footprint", "exec", "relist", "concurrent", "restart", "idle",
                   "growth"}:
            fl_tag = secrets.token_hex(2)
            fl = Floor(tmp, ctr_layers, [f"/bin/{WORKLOAD}"],
                       bridge_conflist("bench-floor-" + fl_tag, "cbf" + fl_tag,
                                       os.path.join(tmp, "floor-cni"), "198.19.22.0/24"),
                       CNI_BIN)
            results["floor"] = {}

        def each(fn):
            def per_runtime():
                for rt in runtimes:
                    print(f"bench: ... on {rt.name}", file=sys.stderr, flush=True)
                    results[rt.name].update(fn(rt))
            return per_runtime

        def life():
            for name, figures in bench_life(runtimes, fl, n_life, ctr_image).items():
                results[name].update(figures)

        def stream():
            client, why = build_streamclient(tmp)
            if client is None:
                print(f"bench: stream skipped: {why}", file=sys.stderr)
                return
            each(lambda rt: bench_stream(rt, client, n_calls, ctr_image, n_stream_mib,
                                         n_stream_reps))()

        def exec_():
            each(lambda rt: bench_exec(rt, n_calls, ctr_image))()
            results["floor"].update(floor_exec(fl, n_calls))

        scenarios = [
            ("version", "Version", each(lambda rt: bench_version(rt, n_version))),
            ("pull", "PullImage", each(lambda rt: bench_pull(rt, refs, rounds))),
            ("pods", "pods", each(lambda rt: bench_pods(rt, n_pods, "(kubelet default)",
                                                        "pod"))),
            ("many", "many pods", each(lambda rt: bench_many(rt, n_many, 50 if not q else 10))),
            # A pod sharing its PID namespace: cric runs an infra process
            # for it (containerd runs its pause container for every pod).
            ("shared", "pods with pid=POD",
             each(lambda rt: bench_pods(rt, n_pods, "(pid=POD)", "shared", api.POD))),
            ("imagefs", "ImageFsInfo",
             each(lambda rt: bench_imagefs(rt, f"{reg.host}/bench/links:1",
                                           f"{reg.host}/bench/busybox:1", 3 if q else 10))),
            ("life", f"pod + container life cycle × {n_life}, interleaved with the floor",
             life),
            ("footprint", f"footprint at {args.footprint_pods} pods",
             each(lambda rt: bench_footprint(rt, args.footprint_pods, ctr_image))),
            ("exec", "ExecSync", exec_),
            ("relist", f"relist at {n_relist} pods × 2 containers",
             each(lambda rt: bench_relist(rt, n_relist, n_calls, ctr_image))),
            ("concurrent", f"pods at once: {', '.join(map(str, n_concurrent))}",
             each(lambda rt: {k: v for n in n_concurrent
                              for k, v in bench_concurrent(rt, n, ctr_image).items()})),
            ("restart", f"daemon restarts with {args.restart_pods} pods",
             each(lambda rt: bench_restart(rt, args.restart_pods, ctr_image,
                                           2 if q else 3))),
            ("idle", f"idle CPU over {n_idle_s} s with {args.footprint_pods} pods",
             each(lambda rt: bench_idle_cpu(rt, args.footprint_pods, n_idle_s, ctr_image))),
            ("growth", f"memory after {n_growth[0]} and {n_growth[1]} pod cycles",
             each(lambda rt: bench_growth(rt, ctr_image, *n_growth))),
            ("burst", "idle after a burst", each(lambda rt: burst(rt, 4000))),
            ("stream", "streaming: exec round trip, port-forward throughput", stream),
        ]
        for key, title, fn in scenarios:
            if key not in only:
                continue
            print(f"bench: {title}...", file=sys.stderr, flush=True)
            fn()
    finally:
        if fl:
            fl.cleanup()
        for rt in reversed(runtimes):
            try:
                rt.stop()
            except Exception as e:  # keep tearing down the rest
                print(f"bench: stopping {rt.name}: {e}", file=sys.stderr)
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    order = list(STEPS) + ["pod + container, full cycle"]
    for rt in results.values():
        order += [k for k in rt if k not in order]
    results = {n: {k: summary(v) for k, v in figures.items()} for n, figures in results.items()}
    names = [n for n in ("cric", "containerd", "floor") if n in results]
    width = max(len(k) for k in order)
    print(f"\n{'':{width}}" + "".join(f"  {n:>10}" for n in names)
          + f"  {'cric/ctd':>8}  {'cric/floor':>10}")
    for k in order:
        vals = [results[n].get(k) for n in names]
        if vals[0] is None:
            continue
        cells = "".join(f"  {central(v):10.2f}" if v is not None else f"  {'-':>10}"
                        for v in vals)
        ratios = ""
        for other, w in (("containerd", 8), ("floor", 10)):
            o = results.get(other, {}).get(k)
            ratios += f"  {central(vals[0]) / central(o):{w}.2f}" if o else f"  {'-':>{w}}"
        print(f"{k:{width}}{cells}{ratios}")
    print("\n(medians of series; ratios below 1: cric is faster or smaller)")
    if args.json:
        write_json(args.json, results)
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(markdown(results, order, ["tests/bench/bench.py"] + sys.argv[1:]))
        print(f"bench: the table is in {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
