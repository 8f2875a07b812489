"""monitord and cric-monitor through monitord's real socket (cric-call),
against real runc bundles: a busybox root file system and a minimal
config.json written here, a per-test runc root under the suite's root, a
cgroup of the test's own in every hierarchy. No network: no pods, no lock.

What is checked: the kubelet's log format exactly (a 1 MiB line as P parts
of 16 KiB ending with F, a last line without newline), the exit record,
MonitorStatus, ReopenLog after a rename (every line once, in order, across
the files), kill -9 of monitord while a container logs (it keeps logging,
the restarted monitord adopts it), where the monitor lives (not monitord's
child, not in monitord's cgroup), bad input, a failing runc create, and
that nothing remains after RemoveMonitor.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import time

import pytest

from conftest import BUILD, pid_running, skip_unless_ready, wait_for

CRIC_CALL = os.path.join(BUILD, "tools", "cric-call")
RUNC = shutil.which("runc", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")
BUSYBOX = "/bin/busybox"
LINE_RE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$",
                     re.S)
PART = 16 * 1024


def cgroup_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] in ("cgroup", "cgroup2"):
                out.append(pre.split()[4])
    return out


def missing():
    for what, path in (("runc", RUNC), ("busybox-static", BUSYBOX)):
        if not path or not os.path.exists(path):
            return f"{what} is not installed"
    return None


pytestmark = skip_unless_ready(missing, "real runc bundles")


@pytest.fixture
def env(suite):
    assert os.access(CRIC_CALL, os.X_OK), f"{CRIC_CALL} not built"
    e = Env(suite)
    yield e
    e.cleanup()


class Env:
    def __init__(self, suite):
        self.suite = suite
        self.run = os.path.join(suite.root, "run/cric")
        self.bundles = os.path.join(self.run, "runtimed/test-bundles")
        self.runc_root = os.path.join(self.run, "runtimed/runtimes/test")
        self.logs = os.path.join(suite.root, "var/log/pods")
        self.cgroup = "/cric-test-" + secrets.token_hex(4)
        self.ids = []
        for mp in cgroup_mounts():
            d = mp + self.cgroup
            os.makedirs(d, exist_ok=True)
            if os.path.exists(os.path.join(mp, "cpuset.cpus")):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(mp, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read())

    def call(self, method, req, timeout=60):
        r = subprocess.run([CRIC_CALL, "--root", self.suite.root, "--timeout", str(timeout),
                            "cric.monitord." + method, json.dumps(req)],
                           capture_output=True, text=True, timeout=timeout + 30)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def ok(self, method, req, **kw):
        out = self.call(method, req, **kw)
        assert out["code"] == 0, out
        return out.get("response", {})

    def bundle(self, script, tty=False, memory=0):
        cid = secrets.token_hex(32)
        b = os.path.join(self.bundles, cid)
        os.makedirs(os.path.join(b, "rootfs/bin"))
        shutil.copy(BUSYBOX, os.path.join(b, "rootfs/bin/busybox"))
        for t in ("sh", "echo", "sleep", "head", "tr", "printf", "cat", "yes"):
            os.symlink("busybox", os.path.join(b, "rootfs/bin", t))
        config = {
            "ociVersion": "1.0.2",
            "process": {"terminal": tty, "user": {"uid": 0, "gid": 0},
                        "args": ["/bin/sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/",
                        "noNewPrivileges": True,
                        "capabilities": {k: [] for k in ("bounding", "effective", "permitted")}},
            "root": {"path": "rootfs", "readonly": True},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "mode=755"]}],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts")],
                      "cgroupsPath": f"{self.cgroup}/ctr-{cid[:12]}",
                      "maskedPaths": [], "readonlyPaths": []},
        }
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(config, f)
        if memory:
            config["linux"]["resources"] = {"memory": {"limit": memory}}
            with open(os.path.join(b, "config.json"), "w") as f:
                json.dump(config, f)
        if tty:
            config["mounts"].append({"destination": "/dev/pts", "type": "devpts",
                                     "source": "devpts",
                                     "options": ["nosuid", "noexec", "newinstance",
                                                 "ptmxmode=0666", "mode=0620"]})
            with open(os.path.join(b, "config.json"), "w") as f:
                json.dump(config, f)
        self.ids.append(cid)
        return cid, b

    def request(self, cid, bundle, over=None):
        req = {"container_id": cid, "bundle": bundle, "runtime_path": RUNC,
               "runtime_root": self.runc_root,
               "log_path": os.path.join(self.logs, cid[:8], "ctr/0.log"),
               "cgroup_parent": self.cgroup}
        req.update(over or {})
        return req

    def create(self, script):
        cid, b = self.bundle(script)
        req = self.request(cid, b)
        resp = self.ok("CreateMonitor", req)
        return cid, req["log_path"], resp

    def runc(self, *args):
        return subprocess.run([RUNC, "--root", self.runc_root, *args], capture_output=True,
                              text=True, timeout=30)

    def status(self, cid):
        return self.ok("MonitorStatus", {"container_id": cid})

    def mon_dir(self, cid):
        return os.path.join(self.run, "monitord", cid)

    def cleanup(self):
        for cid in self.ids:
            self.call("RemoveMonitor", {"container_id": cid})
            self.runc("delete", "--force", cid)
        for mp in cgroup_mounts():
            d = mp + self.cgroup
            for sub in (os.listdir(d) if os.path.isdir(d) else []):
                if os.path.isdir(os.path.join(d, sub)):
                    os.rmdir(os.path.join(d, sub))
            if os.path.isdir(d):
                os.rmdir(d)


def parse_log(data):
    """Records of a CRI log: (timestamp, stream, tag, content); every line
    must match the format exactly."""
    recs = []
    assert data == b"" or data.endswith(b"\n"), "a record without its newline"
    for line in data.split(b"\n")[:-1]:
        m = LINE_RE.match(line)
        assert m, f"not a CRI log line: {line[:200]!r}"
        recs.append((m.group(1), m.group(2).decode(), m.group(3).decode(), m.group(4)))
    return recs


def join_lines(recs, stream):
    """The stream's lines, P parts joined to their F."""
    lines, cur = [], b""
    last_ts = b""
    for ts, s, tag, content in recs:
        if s != stream:
            continue
        assert ts >= last_ts, "timestamps out of order within a stream"
        last_ts = ts
        cur += content
        if tag == "F":
            lines.append(cur)
            cur = b""
        else:
            assert len(content) == PART, f"a P part of {len(content)} bytes"
    assert cur == b"", "a P part without its F"
    return lines


def proc_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split()[1]
    return None


def cgroup_of(pid, controller):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    return None


def pss_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return None


SCRIPT_EXIT3 = ("echo first line; echo to stderr >&2; "
                "head -c 1048576 /dev/zero | tr '\\0' x; echo; "
                "echo after the big one; printf 'no newline at the end'; exit 3")


def test_log_format_exit_record_and_placement(env):
    cid, log_path, resp = env.create(SCRIPT_EXIT3)
    mpid, pid = resp["monitor_pid"], resp["pid"]
    assert pid_running(mpid) and pid_running(pid)
    # The log exists once the container is created (StartContainer's promise).
    assert os.path.exists(log_path)
    # Not monitord's child, not in monitord's cgroup: in the one it was given.
    monitord = env.suite.pid("monitord")
    assert int(proc_field(mpid, "PPid")) != monitord
    assert cgroup_of(mpid, "memory") == env.cgroup
    assert cgroup_of(monitord, "memory") != env.cgroup
    # Its own session; the container's init is its child (subreaper).
    assert os.getsid(mpid) != os.getsid(monitord)
    assert int(proc_field(pid, "PPid")) == mpid
    st = env.status(cid)
    assert st.get("monitor_alive") and not st.get("exited")
    print(f"monitor PSS: {pss_kb(mpid)} kB")
    assert pss_kb(mpid) < 1024

    before = time.time_ns()
    r = env.runc("start", cid)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: env.status(cid).get("exited"), timeout=20, what="the exit record")
    st = env.status(cid)
    assert st["exit_code"] == 3
    assert before <= int(st["finished_at"]) <= time.time_ns()
    assert not st.get("oom_killed")

    with open(log_path, "rb") as f:
        recs = parse_log(f.read())
    assert join_lines(recs, "stdout") == [b"first line", b"x" * 1048576, b"after the big one",
                                          b"no newline at the end"]
    assert join_lines(recs, "stderr") == [b"to stderr"]
    big = [r for r in recs if r[1] == "stdout" and r[3][:1] == b"x"]
    assert [r[2] for r in big] == ["P"] * 63 + ["F"]

    env.ok("RemoveMonitor", {"container_id": cid})
    assert not os.path.exists(env.mon_dir(cid))
    wait_for(lambda: not pid_running(mpid), what="the monitor to end")
    assert not pid_running(pid)
    env.ok("RemoveMonitor", {"container_id": cid})  # idempotent
    assert env.call("MonitorStatus", {"container_id": cid})["code"] == 5  # NOT_FOUND


def seqs(paths):
    nums = []
    for p in paths:
        with open(p, "rb") as f:
            for _, stream, tag, content in parse_log(f.read()):
                assert stream == "stdout" and tag == "F"
                nums.append(int(content.split(b"-")[1]))
    return nums


def test_reopen_and_monitord_restart(env):
    script = "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.01; done"
    cid, log_path, resp = env.create(script)
    mpid = resp["monitor_pid"]
    assert env.runc("start", cid).returncode == 0

    def lines():
        with open(log_path, "rb") as f:
            return f.read().count(b"\n")

    wait_for(lambda: lines() >= 20, what="log lines")
    os.rename(log_path, log_path + ".1")
    env.ok("ReopenLog", {"container_id": cid})
    assert os.path.exists(log_path)
    wait_for(lambda: lines() >= 20, what="log lines in the new file")

    # monitord killed while the container logs: it keeps logging, and the
    # restarted monitord adopts its monitor.
    env.suite.kill("monitord")
    size = os.path.getsize(log_path)
    wait_for(lambda: os.path.getsize(log_path) > size + 200, what="logging without monitord")
    env.suite.up()
    assert "adopted 1 running monitors" in env.suite.log("monitord")
    st = env.status(cid)
    assert st.get("monitor_alive") and not st.get("exited")
    os.rename(log_path, log_path + ".2")
    env.ok("ReopenLog", {"container_id": cid})
    wait_for(lambda: lines() >= 10, what="log lines after the restart")

    # RemoveMonitor stops the container (its monitor kills the init) and
    # leaves nothing.
    env.ok("RemoveMonitor", {"container_id": cid}, timeout=30)
    assert not pid_running(mpid)
    nums = seqs([log_path + ".1", log_path + ".2", log_path])
    assert nums == list(range(len(nums))), "a line lost or duplicated across reopens"
    assert len(nums) > 50

    # No container: ReopenLog fails and creates no file.
    os.rename(log_path, log_path + ".3")
    assert env.call("ReopenLog", {"container_id": cid})["code"] == 5  # monitor removed
    assert not os.path.exists(log_path)


def test_reopen_after_exit_is_refused(env):
    cid, log_path, _ = env.create("echo bye")
    assert env.runc("start", cid).returncode == 0
    wait_for(lambda: env.status(cid).get("exited"), what="the exit record")
    assert env.status(cid).get("exit_code", 0) == 0
    os.rename(log_path, log_path + ".1")
    out = env.call("ReopenLog", {"container_id": cid})
    assert out["code"] == 9, out  # FAILED_PRECONDITION
    assert "not running" in out["message"]
    assert not os.path.exists(log_path)


def test_bad_input_is_refused(env):
    cid, b = env.bundle("true")
    bad = [
        {"container_id": "abc"},
        {"container_id": cid.upper()},
        {"bundle": "/tmp"},
        {"bundle": b + "/../" + os.path.basename(b)},
        {"runtime_path": "/bin/sh"},
        {"runtime_root": "/tmp/runc"},
        {"log_path": "relative/0.log"},
        {"log_path": "/var/log/../x.log"},
        {"cgroup_parent": ""},
        {"cgroup_parent": "/"},
        {"cgroup_parent": "/a/../b"},
    ]
    for over in bad:
        out = env.call("CreateMonitor", env.request(cid, b, over))
        assert out["code"] == 3, (over, out)  # INVALID_ARGUMENT
    assert not os.path.exists(env.mon_dir(cid))
    for m in ("ReopenLog", "MonitorStatus", "RemoveMonitor"):
        assert env.call(m, {"container_id": "../x"})["code"] == 3


def test_failed_create_leaves_nothing(env):
    cid, b = env.bundle("true")
    with open(os.path.join(b, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.0.2", "process": {"args": ["/nonexistent"], "cwd": "/"},'
                ' "root": {"path": "missing-rootfs"}}')
    out = env.call("CreateMonitor", env.request(cid, b))
    assert out["code"] != 0
    assert out["message"], out
    assert not os.path.exists(env.mon_dir(cid))
    wait_for(lambda: not [p for p in monitors_of(env.suite.root)], what="no monitor left")
    assert env.runc("state", cid).returncode != 0


def monitors_of(root):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"cric-monitor") and any(root.encode() in a for a in cmd) \
                and pid_running(int(p)):
            out.append(int(p))
    return out


def test_monitor_footprint(env):
    """PSS per monitor with several running (the binary's pages are shared
    between them, as on a node): the issue aims at <= 300 KB."""
    n = 8
    mons = []
    for _ in range(n):
        cid, _, resp = env.create("exec sleep 60")
        assert env.runc("start", cid).returncode == 0
        mons.append(resp["monitor_pid"])
    per = sum(pss_kb(p) for p in mons) / n
    print(f"PSS per monitor with {n} running: {per:.0f} kB")
    assert per <= 300


def test_tty_container_logs_its_terminal(env):
    """tty: runc hands the pty master over the console socket; what the
    container writes on its terminal is logged as stdout."""
    cid, b = env.bundle("echo on the terminal; [ -t 1 ] && echo is a tty; exit 7", tty=True)
    req = env.request(cid, b, {"tty": True})
    env.ok("CreateMonitor", req)
    assert not os.path.exists(os.path.join(env.mon_dir(cid), "console.sock"))
    assert env.runc("start", cid).returncode == 0
    wait_for(lambda: env.status(cid).get("exited"), what="the exit record")
    assert env.status(cid)["exit_code"] == 7
    with open(req["log_path"], "rb") as f:
        recs = parse_log(f.read())
    # The terminal turns "\n" into "\r\n": the content keeps the "\r".
    assert join_lines(recs, "stdout") == [b"on the terminal\r", b"is a tty\r"]


def test_exit_while_monitord_is_down_and_replay(env):
    """A create replayed answers the same pids; a container that exits while
    monitord is down is reported, with its code, after the restart."""
    cid, b = env.bundle("read line; exit 5")
    req = env.request(cid, b, {"stdin": True})
    first = env.ok("CreateMonitor", req)
    assert env.ok("CreateMonitor", req) == first
    assert env.runc("start", cid).returncode == 0
    env.suite.kill("monitord")
    before = time.time_ns()
    # The container blocks reading the stdin its monitor holds open (a
    # pipe, not /dev/null: it would exit 5 at once); killed here.
    os.kill(first["pid"], 9)
    wait_for(lambda: os.path.exists(os.path.join(env.mon_dir(cid), "exit")),
             what="the exit record while monitord is down")
    env.suite.up()
    st = env.status(cid)
    assert st["exited"] and st["exit_code"] == 137 and not st.get("monitor_alive")
    assert int(st["finished_at"]) >= before
    out = env.call("CreateMonitor", req)
    assert out["code"] == 6, out  # ALREADY_EXISTS: remove it first


def test_oom_kill_is_recorded(env):
    """The cgroup's OOM killer ends the init: 137 and oom_killed."""
    cid, b = env.bundle("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
                        memory=16 << 20)
    env.ok("CreateMonitor", env.request(cid, b))
    assert env.runc("start", cid).returncode == 0
    wait_for(lambda: env.status(cid).get("exited"), timeout=30, what="the exit record")
    st = env.status(cid)
    assert st["exit_code"] == 137 and st.get("oom_killed"), st


def test_log_size_cap(env):
    """log_size_max bounds the file (it starts over past the cap)."""
    cid, b = env.bundle("i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done")
    req = env.request(cid, b, {"log_size_max": 2000})
    env.ok("CreateMonitor", req)
    assert env.runc("start", cid).returncode == 0
    wait_for(lambda: env.status(cid).get("exited"), what="the exit record")
    size = os.path.getsize(req["log_path"])
    assert 0 < size <= 2000
    with open(req["log_path"], "rb") as f:
        last = join_lines(parse_log(f.read()), "stdout")
    assert last[-1] == b"line-299"


def test_killed_monitor_is_reported(env):
    """A monitor killed under its container: MonitorStatus says so; a
    create for the id replaces its files (runc refuses the container that
    still exists); RemoveMonitor cleans up."""
    cid, b = env.bundle("exec sleep 60")
    req = env.request(cid, b)
    resp = env.ok("CreateMonitor", req)
    os.kill(resp["monitor_pid"], 9)
    wait_for(lambda: not pid_running(resp["monitor_pid"]), what="the monitor to die")
    st = env.status(cid)
    assert not st.get("monitor_alive") and not st.get("exited")
    assert st["message"] == "monitor died"
    out = env.call("CreateMonitor", req)
    assert out["code"] != 0 and "exists" in out["message"], out
    assert not os.path.exists(env.mon_dir(cid))
    assert env.runc("delete", "--force", cid).returncode == 0
    env.ok("RemoveMonitor", {"container_id": cid})
