"""Fixtures for cric's integration tests: a real suite under a temp root.

Each test gets its own suite started by deploy/cric-up --root <tmp> (so
several can exist side by side and nothing touches /run/cric or /var/lib/cric),
talks CRI to the real gateway socket with grpcio, and on teardown the suite is
stopped with deploy/cric-down and the root checked for leftovers.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import grpc
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CRIC_BUILD", os.path.join(REPO, "build"))
BIN = os.path.join(BUILD, "bin")
sys.path.insert(0, os.path.join(BUILD, "py"))

from proto.cri import api_pb2 as api  # noqa: E402  (generated at test time)

DAEMONS = ["gateway", "imaged", "stored", "netd", "runtimed", "monitord"]

# The daemons of a sanitized build inherit this (tests/integration/lsan.supp
# says why each suppression is there).
os.environ.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "lsan.supp") + ":print_suppressions=0")


def pid_running(pid):
    """True for a live process; a zombie (exited, not yet reaped) is not."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before open, or before read
        return False


class CRI:
    """A minimal CRI client over the real socket (no generated stubs needed)."""

    def __init__(self, socket_path):
        self.channel = grpc.insecure_channel("unix://" + socket_path)

    def close(self):
        self.channel.close()

    def _callable(self, service, method, resp_cls, stream=False):
        ser = lambda m: m if isinstance(m, bytes) else m.SerializeToString()
        des = resp_cls.FromString if resp_cls else (lambda b: b)
        make = self.channel.unary_stream if stream else self.channel.unary_unary
        return make(f"/runtime.v1.{service}/{method}",
                    request_serializer=ser, response_deserializer=des)

    def call(self, method, req, resp_cls=None, timeout=10, service=None):
        service = service or ("ImageService" if method in IMAGE_METHODS else "RuntimeService")
        return self._callable(service, method, resp_cls)(req, timeout=timeout)

    def future(self, method, req, resp_cls=None, timeout=10, service=None):
        service = service or ("ImageService" if method in IMAGE_METHODS else "RuntimeService")
        return self._callable(service, method, resp_cls).future(req, timeout=timeout)

    def stream(self, method, req, resp_cls=None, timeout=10):
        return self._callable("RuntimeService", method, resp_cls, stream=True)(req, timeout=timeout)

    def version(self, timeout=10):
        return self.call("Version", api.VersionRequest(), api.VersionResponse, timeout)

    def status(self, verbose=False, timeout=10):
        return self.call("Status", api.StatusRequest(verbose=verbose), api.StatusResponse, timeout)


IMAGE_METHODS = {"ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"}


class Suite:
    def __init__(self, root):
        self.root = root
        self.socket = os.path.join(root, "run/cric/cric.sock")
        self.ipc_dir = os.path.join(root, "run/cric/ipc")
        self.cni_dir = os.path.join(root, "etc/cni/net.d")
        self.config = os.path.join(root, "etc/cric/cric.json")
        self.log_dir = os.path.join(root, "var/log/cric")
        self.cri = None

    def up(self, *extra, check=True, env=None):
        r = subprocess.run([os.path.join(REPO, "deploy/cric-up"), "--root", self.root, *extra],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, CRIC_BIN_DIR=BIN, **(env or {})))
        if check:
            assert r.returncode == 0, \
                f"cric-up failed:\n{r.stdout}\n{r.stderr}\n{self.keep_logs()}"
            assert r.stdout.strip() == "unix://" + self.socket
        if r.returncode == 0 and self.cri is None:
            self.cri = CRI(self.socket)
        return r

    def keep_logs(self):
        """Copy the daemons' logs out of the root (which the fixture deletes)
        to $CRIC_TEST_LOGS (default /tmp/cric-test-logs), and return their
        tails, for a suite that failed to start or a test that failed."""
        if not os.path.isdir(self.log_dir):
            return "(no daemon logs)"
        keep = os.path.join(os.environ.get("CRIC_TEST_LOGS", "/tmp/cric-test-logs"),
                            os.path.basename(self.root))
        shutil.copytree(self.log_dir, keep, dirs_exist_ok=True)
        tails = []
        for name in sorted(os.listdir(self.log_dir)):
            with open(os.path.join(self.log_dir, name), errors="replace") as f:
                tails.append(f"--- {name} (last lines; all in {keep}) ---\n"
                             + "".join(f.readlines()[-15:]))
        return "\n".join(tails)

    def down(self, *extra):
        if self.cri:
            self.cri.close()
            self.cri = None
        return subprocess.run([os.path.join(REPO, "deploy/cric-down"), "--root", self.root, *extra],
                              capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, CRIC_BIN_DIR=BIN))

    def pid(self, daemon):
        with open(os.path.join(self.root, "run/cric/pids", daemon + ".pid")) as f:
            return int(f.read())

    def kill(self, daemon, sig=signal.SIGKILL):
        pid = self.pid(daemon)
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            wait_for(lambda: not pid_running(pid), what=f"{daemon} to die")
        return pid

    def log(self, daemon):
        with open(os.path.join(self.log_dir, daemon + ".log")) as f:
            return f.read()

    def write_config(self, doc):
        import json
        os.makedirs(os.path.dirname(self.config), exist_ok=True)
        with open(self.config, "w") as f:
            json.dump(doc, f)

    def ctl(self, *args, user=None):
        cmd = [os.path.join(BIN, "cricctl"), "--root", self.root, *args]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


# Under CI=true every prerequisite of every test must be there: a skip
# (pytest.skip, a skipif mark) is reported as a failure that says why it
# would have skipped, so a machine missing something fails instead of
# passing with less tested.
IN_CI = os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)  # the suite fixture keeps logs of failures
    if IN_CI and rep.skipped and not hasattr(rep, "wasxfail"):
        if isinstance(rep.longrepr, tuple):  # (file, line, "Skipped: <reason>")
            where = f"{rep.longrepr[0]}:{rep.longrepr[1]}: "
            why = rep.longrepr[2]
        else:
            where, why = "", str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"{where}{why}\n(CI=true: a missing prerequisite is a failure, not a skip)"


def skip_unless_ready(missing, what):
    """A module's pytestmark: skip its tests when missing() names a missing
    prerequisite of `what`, saying which."""
    why = missing()
    return pytest.mark.skipif(why is not None, reason=f"{what}: {why}")


def sanitized(daemon):
    """True when the daemon's binary was built with AddressSanitizer (make
    check-asan), which cannot run under valgrind."""
    with open(os.path.join(BIN, "cric-" + daemon), "rb") as f:
        return b"__asan_init" in f.read()


def wait_for(pred, timeout=10.0, what="condition"):
    """Poll pred() until true; bounded, fails with `what` on timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def socket_inodes(pid):
    """Inodes of the sockets process pid has open (as /proc/<pid>/fd names them)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:[") and link.endswith("]"):
            inodes.add(link[len("socket:["):-1])
    return inodes


def unix_bytes_unread(receiver_pid, sender_pid):
    """Bytes sender_pid has sent on its unix stream connections to receiver_pid
    that receiver_pid has not read yet: the sum of the receiver's Recv-Q that
    `ss -x` reports for each. For a frozen (SIGSTOP) receiver, a growing
    figure is a request that has reached its socket."""
    mine, theirs = socket_inodes(receiver_pid), socket_inodes(sender_pid)
    r = subprocess.run(["ss", "-x", "-H", "-n"], capture_output=True, text=True, timeout=10,
                       check=True)
    total = 0
    for line in r.stdout.splitlines():
        # u_str ESTAB <recv-q> <send-q> <local path or *> <inode> <peer or *> <peer inode>
        f = line.split()
        if len(f) >= 8 and f[-3] in mine and f[-1] in theirs:
            total += int(f[2])
    return total


def running_pids_under(root):
    """PIDs of live cric processes whose command line names this root."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        # (a daemon run under valgrind has valgrind's name first)
        if any(os.path.basename(a).startswith(b"cric-") for a in cmd[:8]) \
                and root.encode() in cmd and pid_running(int(p)):
            out.append(int(p))
    return out


@pytest.fixture
def suite_root():
    root = tempfile.mkdtemp(prefix="cric-test-")
    yield root
    # Last resort: never leave daemons of this root running (nor delete the
    # directory under them).
    for pid in running_pids_under(root):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def started_suite(suite_root, request, config=None):
    """A generator for suite fixtures: a Suite under suite_root (with
    `config` written first, if given) started, yielded, then taken down
    and checked: no daemon, mount or sanitizer report left."""
    s = Suite(suite_root)
    if config is not None:
        s.write_config(config)
    try:
        s.up()
    except BaseException:
        s.down()  # whatever did start must not outlive the test
        raise
    yield s
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        # The root goes with the test: keep the daemons' story of a failure.
        print(f"daemon logs of the failed test:\n{s.keep_logs()}", file=sys.stderr)
    r = s.down("--all")
    assert r.returncode == 0, f"cric-down failed:\n{r.stdout}\n{r.stderr}"
    assert running_pids_under(suite_root) == [], "daemons left running after cric-down"
    with open("/proc/self/mountinfo") as f:
        assert suite_root not in f.read(), "mounts left under the suite root"
    assert_no_sanitizer_reports(s)


@pytest.fixture
def suite(suite_root, request):
    """A started suite (empty CNI conf dir: NetworkReady false)."""
    yield from started_suite(suite_root, request)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   # valgrind memcheck (deploy/cric-up CRIC_VALGRIND)
                   "Invalid read of size", "Invalid write of size", "Invalid free()",
                   "depends on uninitialised value", "Syscall param")


def assert_no_sanitizer_reports(s):
    """Under `make check-asan` the daemons are sanitized: any report fails."""
    for d in DAEMONS:
        path = os.path.join(s.log_dir, d + ".log")
        if os.path.exists(path):
            text = s.log(d)
            for mark in SANITIZER_MARKS:
                assert mark not in text, f"{d}: sanitizer report in its log:\n{text[-4000:]}"


# The `net` fixture (a CNI network of the test's own) lives with its helpers.
from netutil import net  # noqa: E402,F401
