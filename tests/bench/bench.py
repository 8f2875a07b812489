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
imagefs); "imagefs" runs no pod, so it does not touch the network and can
run beside the network tests.
"""
import argparse
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from conftest import BIN, CRI, DAEMONS, Suite, api, running_pids_under  # noqa: E402
import imageutil as iu  # noqa: E402
from netutil import bridge_conflist  # noqa: E402

CONTAINERD = "/usr/bin/containerd"
SHIM = "/usr/bin/containerd-shim-runc-v2"
CNI_BIN = "/usr/lib/cni"


def missing():
    for path in (CONTAINERD, SHIM, iu.REGISTRY_BIN, "/usr/sbin/runc",
                 os.path.join(CNI_BIN, "bridge"), os.path.join(BIN, "cric-pause")):
        if not os.access(path, os.X_OK):
            return path
    return None


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f)


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


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

    def pss_mib(self):
        return sum(pss_kib(p) for p in self.pids()) / 1024.0


class Cric(Runtime):
    name = "cric"

    def __init__(self, tmp, registry):
        self.root = os.path.join(tmp, "cric")
        self.suite = Suite(self.root)
        tag = secrets.token_hex(2)
        self.bridge = "cbc" + tag
        write_json(os.path.join(self.suite.cni_dir, "10-bench.conflist"),
                   bridge_conflist("bench-cric-" + tag, self.bridge,
                                   os.path.join(self.root, "var/lib/cni/networks"),
                                   "198.19.20.0/24"))
        self.suite.up()
        self.cri = self.suite.cri

    def pids(self):
        """The daemons and what they spawned, and the infra processes: runc
        runs those detached (they are nobody's descendants here), so their
        pids come from runtimed's pod records."""
        table = procs()
        roots = {self.suite.pid(d) for d in DAEMONS}
        records = os.path.join(self.root, "var/lib/cric/runtimed/sandboxes")
        for name in os.listdir(records) if os.path.isdir(records) else ():
            if name.endswith(".json"):
                with open(os.path.join(records, name)) as f:
                    roots.add(json.load(f).get("infra_pid", 0))
        return descendants(roots & set(table), table)

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


def remove_all_pods(rt):
    pods = rt.cri.call("ListPodSandbox", api.ListPodSandboxRequest(),
                       api.ListPodSandboxResponse, timeout=60).items
    for p in pods:
        rt.cri.call("StopPodSandbox", api.StopPodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
        rt.cri.call("RemovePodSandbox", api.RemovePodSandboxRequest(pod_sandbox_id=p.id),
                    timeout=60)


def pod_config(name, pid_mode=api.CONTAINER):
    """A pod as the kubelet sends it: pid=CONTAINER unless the pod shares its
    process namespace (shareProcessNamespace: pid=POD)."""
    cfg = api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, namespace="bench", uid="uid-" + name),
        hostname=name[:60], log_directory="/tmp")
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


SCENARIOS = ("version", "pull", "pods", "many", "shared", "imagefs")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--only", action="append", choices=SCENARIOS,
                    help="run only this scenario (repeatable)")
    ap.add_argument("--cric-only", action="store_true",
                    help="measure cric alone (no containerd; no ratios)")
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

    tmp = tempfile.mkdtemp(prefix="cb-", dir="/tmp")  # short: socket paths
    reg = iu.Registry(os.path.join(tmp, "registry")).start()
    runtimes = []
    try:
        with open(os.path.join(BIN, "cric-pause"), "rb") as f:
            pause = iu.Layer(iu.tar_layer([("pause", "f", f.read(), {"mode": 0o755})]))
        reg.push_image("bench/pause", "1", [pause],
                       config_extra={"config": {"Entrypoint": ["/pause"], "User": "65535"}})
        bb = iu.Layer(iu.busybox_layer())
        big = [iu.Layer(iu.tar_layer([(f"f{i}", "f", os.urandom(8 << 20))])) for i in range(4)]
        reg.push_image("bench/busybox", "1", [bb])
        reg.push_image("bench/five", "1", [bb] + big)
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
        for rt in runtimes:
            rt.cri.call("ListImages", api.ListImagesRequest(), api.ListImagesResponse)

        results = {rt.name: {} for rt in runtimes}
        scenarios = [
            ("version", "Version", lambda rt: bench_version(rt, n_version)),
            ("pull", "PullImage", lambda rt: bench_pull(rt, refs, rounds)),
            ("pods", "pods", lambda rt: bench_pods(rt, n_pods, "(kubelet default)", "pod")),
            ("many", "many pods", lambda rt: bench_many(rt, n_many, 50 if not q else 10)),
            # A pod sharing its PID namespace: cric runs an infra process
            # for it (containerd runs its pause container for every pod).
            ("shared", "pods with pid=POD",
             lambda rt: bench_pods(rt, n_pods, "(pid=POD)", "shared", api.POD)),
            ("imagefs", "ImageFsInfo",
             lambda rt: bench_imagefs(rt, f"{reg.host}/bench/links:1",
                                      f"{reg.host}/bench/busybox:1", 3 if q else 10)),
        ]
        for key, title, fn in scenarios:
            if key not in only:
                continue
            for rt in runtimes:
                print(f"bench: {title} on {rt.name}...", file=sys.stderr, flush=True)
                results[rt.name].update(fn(rt))
    finally:
        for rt in reversed(runtimes):
            try:
                rt.stop()
            except Exception as e:  # keep tearing down the rest
                print(f"bench: stopping {rt.name}: {e}", file=sys.stderr)
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    results.setdefault("containerd", {})
    width = max(len(k) for k in results["cric"])
    print(f"\n{'':{width}}  {'cric':>10}  {'containerd':>10}  {'cric/ctd':>8}")
    for k, v in results["cric"].items():
        other = results["containerd"].get(k)
        ratio = f"{v / other:8.2f}" if other else f"{'-':>8}"
        o = f"{other:10.2f}" if other is not None else f"{'-':>10}"
        print(f"{k:{width}}  {v:10.2f}  {o}  {ratio}")
    if not args.cric_only:
        print("\nratios below 1: cric is faster or smaller; containerd "
              + subprocess.run([CONTAINERD, "--version"], capture_output=True,
                               text=True).stdout.split()[2])
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
