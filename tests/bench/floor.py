"""The floor of make bench: what no runtime built on runc and these CNI
plugins can beat. The same container bundle run by bare runc (create,
start, kill + wait, delete) in a network namespace set up by calling the
same CNI conflist's plugins directly (netns add, ADD, DEL, netns del), as
libcni would: each plugin in order with the previous plugin's result on
ADD, in reverse order with the final result on DEL.

The bench process becomes a child subreaper only while a floor container
is running, so its init is ours to wait for and reap (a late-reaping PID 1
must not hold its exit), as cric's monitor and containerd's shim do.
"""
import ctypes
import io
import json
import os
import secrets
import subprocess
import tarfile

RUNC = "/usr/sbin/runc"
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def subreaper(on):
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def run(*cmd, stdin=None, env=None, errors=None):
    """cmd's output; errors: a file for its stderr, when what it starts
    keeps its stdio (runc create: the container's init holds a pipe open)."""
    if errors is None:
        r = subprocess.run(cmd, input=stdin, env=env, capture_output=True,
                           stdin=None if stdin is not None else subprocess.DEVNULL)
        err = r.stderr
    else:
        with open(errors, "w+b") as f:
            r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=f)
            f.seek(0)
            err = f.read()
    if r.returncode != 0:
        out = r.stdout.decode(errors="replace").strip() if r.stdout else ""
        raise RuntimeError(f"{' '.join(cmd)}: {err.decode(errors='replace').strip()}{out}")
    return r.stdout


def reap_runc():
    """runc's intermediate processes (nsexec's stages) that exited while we
    were a subreaper: reaped, and only those (not the bench's own children)."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if comm.startswith("runc") and state == "Z" and int(ppid) == me:
            try:
                os.waitpid(int(d), 0)
            except ChildProcessError:
                pass


class Floor:
    """Bare runc and CNI: the pod and container steps of a CRI runtime."""
    name = "floor"

    def __init__(self, tmp, layers, args, conflist, cni_bin):
        self.dir = os.path.join(tmp, "floor")
        self.runc_root = os.path.join(self.dir, "runc")
        self.bundle = os.path.join(self.dir, "bundle")
        self.conflist = conflist
        self.cni_bin = cni_bin
        self.cgroup = "/cric-bench-floor-" + secrets.token_hex(3)
        self.bridge = conflist["plugins"][0]["bridge"]
        rootfs = os.path.join(self.bundle, "rootfs")
        os.makedirs(rootfs)
        os.makedirs(self.runc_root)
        for tar in layers:
            with tarfile.open(fileobj=io.BytesIO(tar)) as t:
                t.extractall(rootfs)
        run(RUNC, "spec", "--bundle", self.bundle)
        self.spec_path = os.path.join(self.bundle, "config.json")
        with open(self.spec_path) as f:
            self.spec = json.load(f)
        self.spec["process"]["terminal"] = False
        self.spec["process"]["args"] = list(args)
        self.spec["root"]["readonly"] = False
        self.netns = None
        self.result = None
        self.cid = None
        self.pid = None

    # -- the pod: a network namespace and the conflist's plugins --

    def _cni(self, plugin, command, prev):
        conf = dict(plugin, name=self.conflist["name"],
                    cniVersion=self.conflist["cniVersion"])
        if prev is not None:
            conf["prevResult"] = prev
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": self.netns,
               "CNI_NETNS": f"/var/run/netns/{self.netns}", "CNI_IFNAME": "eth0",
               "CNI_PATH": self.cni_bin, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        out = run(os.path.join(self.cni_bin, plugin["type"]),
                  stdin=json.dumps(conf).encode(), env=env)
        return json.loads(out) if out.strip() else None

    def netns_add(self):
        self.netns = "cbf-" + secrets.token_hex(4)
        run("ip", "netns", "add", self.netns)

    def cni_add(self):
        prev = None
        for plugin in self.conflist["plugins"]:
            prev = self._cni(plugin, "ADD", prev)
        self.result = prev

    def cni_del(self):
        for plugin in reversed(self.conflist["plugins"]):
            self._cni(plugin, "DEL", self.result)
        self.result = None

    def netns_del(self):
        run("ip", "netns", "del", self.netns)
        self.netns = None

    # -- the container: the same bundle each time, in the pod's netns --

    def create(self):
        self.cid = "cbf-" + secrets.token_hex(6)
        spec = self.spec
        ns = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
        ns.append({"type": "network", "path": f"/var/run/netns/{self.netns}"})
        spec["linux"]["namespaces"] = ns
        spec["linux"]["cgroupsPath"] = f"{self.cgroup}/{self.cid}"
        with open(self.spec_path, "w") as f:
            json.dump(spec, f)
        pidfile = os.path.join(self.dir, "pid")
        subreaper(True)
        run(RUNC, "--root", self.runc_root, "create", "--bundle", self.bundle,
            "--pid-file", pidfile, self.cid, errors=os.path.join(self.dir, "create.err"))
        with open(pidfile) as f:
            self.pid = int(f.read())

    def start(self):
        run(RUNC, "--root", self.runc_root, "start", self.cid)

    def stop(self):
        run(RUNC, "--root", self.runc_root, "kill", self.cid, "TERM")
        os.waitpid(self.pid, 0)
        subreaper(False)
        self.pid = None
        reap_runc()

    def delete(self):
        run(RUNC, "--root", self.runc_root, "delete", self.cid)
        self.cid = None

    def cleanup(self):
        """Whatever a failure part way left, and the cgroup parents runc
        made: best effort."""
        if self.cid:
            subprocess.run([RUNC, "--root", self.runc_root, "delete", "-f", self.cid],
                           capture_output=True)
        if self.pid:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        subreaper(False)
        if self.netns:
            if self.result is not None:
                try:
                    self.cni_del()
                except RuntimeError:
                    pass
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        subs = [os.path.join("/sys/fs/cgroup", d) for d in os.listdir("/sys/fs/cgroup")]
        for sub in ["/sys/fs/cgroup"] + subs:
            path = os.path.join(sub, self.cgroup.lstrip("/"))
            if os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError:
                    pass
