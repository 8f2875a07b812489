"""Attach on the monitor (monitord/attach.h, the control socket's "attach"),
through cric-attach against real runc containers made by monitord's
CreateMonitor (test_monitor.py's Env). No network: no pods, no lock.

What is checked: two attachers see the same stdout and stderr, stdin from
one (a second stdin attacher is refused), the log unchanged beside them,
stdin_once closing the container's stdin when the stdin attacher leaves,
the connections closing when the container exits; garbage frames and a
ninth attacher refused; a tty container: its
terminal's stream, resize seen by `stty size`, stdin from a later attacher
after the first left, stdin_once as an end of file (^D) on the pty; a slow attacher dropped while the log gets every
byte; attach after monitord's kill -9.
"""
import os
import socket
import subprocess
import threading

import pytest

from conftest import BUILD, wait_for
from test_monitor import Env, missing, skip_unless_ready  # noqa: F401

pytestmark = skip_unless_ready(missing, "real runc bundles")

ATTACH = os.path.join(BUILD, "tools", "cric-attach")


@pytest.fixture
def env(suite):
    assert os.access(ATTACH, os.X_OK), f"{ATTACH} not built"
    e = Env(suite)
    yield e
    e.cleanup()


def start(env, script, tty=False, stdin=True, stdin_once=False):
    cid, b = env.bundle(script, tty=tty)
    req = env.request(cid, b, {"tty": tty, "stdin": stdin, "stdin_once": stdin_once})
    env.ok("CreateMonitor", req)
    r = env.runc("start", cid)
    assert r.returncode == 0, r.stderr
    return cid, req["log_path"]


class Attacher:
    """cric-attach in the background; what it wrote, collected."""

    def __init__(self, env, cid, stdin=False, resize=None, read=True):
        args = [ATTACH] + (["--stdin"] if stdin else []) + \
            (["--resize", resize] if resize else []) + [env.mon_dir(cid)]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        first = self.p.stderr.readline()
        self.refusal = None if first == b"attached\n" else first.decode()
        self.out, self.err = bytearray(), bytearray()
        self.threads = []
        if read:
            for src, dst in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
                t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pump(src, dst):
        while True:
            b = os.read(src.fileno(), 65536)
            if not b:
                return
            dst.extend(b)

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def detach(self):
        self.p.stdin.close()

    def wait(self, timeout=10):
        rc = self.p.wait(timeout=timeout)
        for t in self.threads:
            t.join(timeout)
        return rc

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def log_text(path):
    with open(path, "rb") as f:
        return f.read()


def test_two_attachers_stdin_once_and_exit(env):
    script = ('echo start; while read l; do echo "got $l"; echo "err $l" >&2; done; '
              'echo "stdin closed"')
    cid, log_path = start(env, script, stdin_once=True)
    wait_for(lambda: b"start" in log_text(log_path), what="the container's first line")
    a1 = Attacher(env, cid, stdin=True)
    a2 = Attacher(env, cid)
    assert a1.refusal is None and a2.refusal is None, (a1.refusal, a2.refusal)
    a3 = Attacher(env, cid, stdin=True)
    assert a3.refusal and "another attacher holds the container's stdin" in a3.refusal
    assert a3.wait() == 1

    a1.send(b"hello\n")
    for a in (a1, a2):
        wait_for(lambda: b"got hello\n" in a.out and b"err hello\n" in a.err,
                 what="the output at both attachers")
    a1.send(b"again\n")
    wait_for(lambda: b"got again\n" in a2.out, what="more output")
    assert a2.out == b"got hello\ngot again\n" and a2.err == b"err hello\nerr again\n"
    # The log beside them, unchanged.
    wait_for(lambda: b"got again" in log_text(log_path), what="the log")
    assert b"stdout F got hello\n" in log_text(log_path)

    # stdin_once: the stdin attacher leaves, the container sees its stdin
    # end, says so and exits; the watcher gets it all, then the end.
    a1.detach()
    assert a1.wait() == 0
    assert a2.wait() == 0
    assert a2.out.endswith(b"stdin closed\n")
    wait_for(lambda: os.path.exists(os.path.join(env.mon_dir(cid), "exit")), what="the exit")
    late = Attacher(env, cid)
    assert late.refusal and "connect to the monitor" in late.refusal
    late.wait()


def test_tty_resize_and_a_later_stdin_attacher(env):
    script = 'while read l; do echo "got $l"; busybox stty size; done'
    cid, log_path = start(env, script, tty=True)
    a1 = Attacher(env, cid, stdin=True, resize="100x30")
    watcher = Attacher(env, cid)
    assert a1.refusal is None and watcher.refusal is None
    a1.send(b"one\n")
    for a in (a1, watcher):
        wait_for(lambda: b"got one\r\n30 100\r\n" in a.out, what="the terminal's output")
    assert a1.err == b""  # a tty has one stream
    a1.detach()
    assert a1.wait() == 0
    # Not stdin_once: the next attacher types on.
    a2 = Attacher(env, cid, stdin=True, resize="80x24")
    assert a2.refusal is None
    a2.send(b"two\n")
    wait_for(lambda: b"got two\r\n24 80\r\n" in a2.out, what="a later attacher's stdin")
    wait_for(lambda: b"got two\r\n24 80\r\n" in watcher.out, what="the watcher")
    wait_for(lambda: b"got two" in log_text(log_path), what="the log")
    a2.stop()
    watcher.stop()


def test_slow_attacher_is_dropped_and_the_log_has_everything(env):
    size = 8_000_000
    script = f'read go; yes 0123456789abcdef | head -c {size}; echo; echo done; read x'
    cid, log_path = start(env, script)
    slow = Attacher(env, cid, read=False)  # never reads: its pipes fill
    starter = Attacher(env, cid, stdin=True)
    assert slow.refusal is None and starter.refusal is None
    starter.send(b"go\n")
    wait_for(lambda: b"stdout F done\n" in log_text(log_path), timeout=60, what="the log's end")
    # The log has every line, however the attachers fared.
    assert log_text(log_path).count(b"stdout F 0123456789abcdef\n") == size // 17
    mlog = open(os.path.join(env.mon_dir(cid), "monitor.log")).read()
    assert "attacher dropped: it did not read its backlog" in mlog
    # The slow one's connection was closed: it ends once it reads (its
    # last frame may be cut: 1, "Protocol error"), with less than it all.
    got = slow.p.stdout.read()
    assert slow.wait() in (0, 1)
    assert 0 < len(got) < size
    starter.stop()


def test_attach_after_monitord_kill9(env):
    cid, _ = start(env, 'while read l; do echo "got $l"; done')
    env.suite.kill("monitord")
    a = Attacher(env, cid, stdin=True)
    assert a.refusal is None, a.refusal
    a.send(b"alive\n")
    wait_for(lambda: b"got alive\n" in a.out, what="attach without monitord")
    env.suite.up()
    a.detach()
    assert a.wait() == 0
    b = Attacher(env, cid, stdin=True)
    assert b.refusal is None, b.refusal
    b.send(b"back\n")
    wait_for(lambda: b"got back\n" in b.out, what="attach after the restart")
    b.stop()
    # A container without stdin: stdin refused, watching allowed.
    cid2, _ = start(env, "echo hi; sleep 1000", stdin=False)
    r = Attacher(env, cid2, stdin=True)
    assert r.refusal and "has no stdin" in r.refusal
    r.wait()
    w = Attacher(env, cid2)
    assert w.refusal is None
    w.stop()


def raw_attach(env, cid, frame):
    """Attach by hand, send frame; what the monitor sends until it closes."""
    dfd = os.open(env.mon_dir(cid), os.O_PATH | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(f"/proc/self/fd/{dfd}/ctl.sock")
            s.sendall(b"attach\n")
            assert s.recv(3) == b"ok\n"
            s.sendall(frame)
            got = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return got
                got += b
    finally:
        os.close(dfd)


def test_garbage_frames_drop_that_attacher_only(env):
    cid, log_path = start(env, 'while read l; do echo "got $l"; done')
    watcher = Attacher(env, cid, stdin=True)
    assert watcher.refusal is None
    for frame in (b"\x09\x00\x00\x00\x01x",            # an unknown type
                  b"\x00\x7f\xff\xff\xff",              # a frame over the limit
                  b"\x04\x00\x00\x00\x03abc"):          # a resize of 3 bytes
        raw_attach(env, cid, frame)  # closed by the monitor
    mlog = open(os.path.join(env.mon_dir(cid), "monitor.log")).read()
    for why in ("an unknown frame type", "a frame over the limit", "a bad resize frame"):
        assert f"attacher dropped: {why}" in mlog
    watcher.send(b"still\n")
    wait_for(lambda: b"got still\n" in watcher.out, what="the other attacher unharmed")
    # Eight at most.
    more = [Attacher(env, cid) for _ in range(7)]
    assert all(a.refusal is None for a in more), [a.refusal for a in more]
    ninth = Attacher(env, cid)
    assert ninth.refusal and "too many attachers" in ninth.refusal
    ninth.wait()
    for a in more + [watcher]:
        a.stop()


def test_tty_stdin_once_ends_the_input_with_eof(env):
    cid, _ = start(env, 'while read l; do echo "got $l"; done; echo "input ended"',
                   tty=True, stdin_once=True)
    watcher = Attacher(env, cid)
    a = Attacher(env, cid, stdin=True)
    assert a.refusal is None and watcher.refusal is None
    a.send(b"last\n")
    wait_for(lambda: b"got last\r\n" in watcher.out, what="the line")
    a.detach()
    assert a.wait() == 0
    # ^D on the pty: read sees the end; the container says so and exits.
    assert watcher.wait() == 0
    assert watcher.out.endswith(b"input ended\r\n")
    late = Attacher(env, cid, stdin=True)
    assert late.refusal  # exited: no monitor
    late.wait()
