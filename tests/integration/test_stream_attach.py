"""CRI Attach through the real socket and monitord's streaming server,
driven by the Go remotecommand client of test_stream_exec.py (attach speaks
the same streams as exec). Containers as in test_attach.py (monitord's
CreateMonitor on real runc bundles, stdin open; no pod, no network).

What is checked: Attach's answers (URL shape, NOT_FOUND, INVALID_ARGUMENT,
FAILED_PRECONDITION), a container reading stdin and answering on stdout and
stderr through one attacher, the session ending with a Success status when
the container exits; two attachers at once (one with stdin, one watching,
the watcher leaving and the container running on); a tty container seeing
its resize (`stty size`); monitord kill -9 mid-attach (the container runs
on, a new attach after the restart).
"""
import os
import subprocess
import threading
import time

import grpc
import pytest

from conftest import api, wait_for
from test_attach import start
from test_monitor import Env, missing, skip_unless_ready  # noqa: F401
from test_stream_exec import client, run, status_line  # noqa: F401

pytestmark = skip_unless_ready(missing, "real runc bundles")

ECHO = 'while read l; do echo "got $l"; echo "err $l" >&2; [ "$l" = quit ] && exit 3; done'


@pytest.fixture
def env(suite):
    e = Env(suite)
    yield e
    e.cleanup()


def attach_url(env, cid, tty=False, stdin=False, stdout=True, stderr=False):
    req = api.AttachRequest(container_id=cid, tty=tty, stdin=stdin, stdout=stdout,
                            stderr=stderr)
    return env.suite.cri.call("Attach", req, api.AttachResponse).url


def test_attach_errors(env):
    cid, _ = start(env, ECHO)

    def code(**kw):
        with pytest.raises(grpc.RpcError) as e:
            env.suite.cri.call("Attach", api.AttachRequest(**kw), api.AttachResponse)
        return e.value.code()

    assert code(container_id="ab" * 32, stdout=True) == grpc.StatusCode.NOT_FOUND
    assert code(container_id=cid) == grpc.StatusCode.INVALID_ARGUMENT
    assert code(container_id=cid, tty=True, stdout=True,
                stderr=True) == grpc.StatusCode.INVALID_ARGUMENT
    created, bundle = env.bundle("sleep 100")
    env.ok("CreateMonitor", env.request(created, bundle))
    assert code(container_id=created, stdout=True) == grpc.StatusCode.FAILED_PRECONDITION


def test_stdin_stdout_stderr_until_the_container_exits(env, client):
    cid, _ = start(env, ECHO)
    url = attach_url(env, cid[:12], stdin=True, stderr=True)
    assert url.startswith("http://127.0.0.1:") and "/attach/" in url
    rc, out, err = run(client, url, "-stdin", "-stderr", stdin=b"hello\nquit\n")
    # the container's exit code is not the attach's: Success, as the kubelet
    assert rc == 0, err
    assert out == b"got hello\ngot quit\n", (out, err)
    assert "err hello\nerr quit\n" in err, err
    assert status_line(err) == '{"metadata":{},"status":"Success"}'
    wait_for(lambda: env.status(cid).get("exited"), what="the container's exit")
    # used token, and attach to an exited container
    rc, _, err = run(client, url)
    assert rc == 101 and "HTTP 404" in err, err
    with pytest.raises(grpc.RpcError) as e:
        attach_url(env, cid)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_two_attachers(env, client):
    """A watcher and a stdin attacher at once: both see the output; the
    watcher leaves, the container runs on for the other."""
    cid, _ = start(env, ECHO)
    watcher = subprocess.Popen([client, "-url", attach_url(env, cid), "-hangup-after",
                                "got mark"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer = subprocess.Popen([client, "-url", attach_url(env, cid, stdin=True), "-stdin"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        # until the watcher is attached too and saw a line
        for _ in range(150):
            writer.stdin.write(b"mark\n")
            writer.stdin.flush()
            if watcher.poll() is not None:
                break
            time.sleep(0.2)
        w_out, w_err = watcher.communicate(timeout=30)
        assert b"got mark\n" in w_out and b"HUNG UP" in w_err, (w_out, w_err)
        assert not env.status(cid).get("exited")
        out, err = writer.communicate(b"quit\n", timeout=30)
    finally:
        watcher.kill()
        writer.kill()
    assert writer.returncode == 0, err
    assert out.endswith(b"got mark\ngot quit\n"), out
    assert b'"status":"Success"' in err


def test_tty_and_resize(env, client):
    """Each line read shows the terminal's size: lines are sent until the
    resize (sent by the client once its streams are open) is seen."""
    cid, _ = start(env, 'while read l; do busybox stty size; [ "$l" = quit ] && exit 0; done',
                   tty=True)
    url = attach_url(env, cid, tty=True, stdin=True)
    p = subprocess.Popen([client, "-url", url, "-tty", "-stdin", "-resize", "100x40"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()

    def pump():
        while b := os.read(p.stdout.fileno(), 65536):
            out.extend(b)

    reader = threading.Thread(target=pump, daemon=True)
    try:
        reader.start()
        for _ in range(150):
            p.stdin.write(b"x\n")
            p.stdin.flush()
            time.sleep(0.2)
            if b"40 100" in out or p.poll() is not None:
                break
        p.stdin.write(b"quit\n")
        p.stdin.close()
        err = p.stderr.read()
        p.wait(timeout=30)
        reader.join(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert b"40 100\r\n" in out, out


def test_monitord_killed_mid_attach(env, client):
    """kill -9 of monitord during an attach: the client's connection ends,
    the container runs on (its monitor holds its stdio), and the restarted
    monitord attaches anew, with stdin."""
    cid, _ = start(env, ECHO)
    p = subprocess.Popen([client, "-url", attach_url(env, cid, stdin=True), "-stdin"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"before\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"got before\n"
        env.suite.kill("monitord")
        p.communicate(timeout=30)  # the connection ends with monitord
    finally:
        p.kill()
    env.suite.up()
    st = env.status(cid)
    assert st["monitor_alive"] and not st.get("exited"), st
    rc, out, err = run(client, attach_url(env, cid, stdin=True), "-stdin",
                       stdin=b"after\nquit\n")
    assert (rc, out) == (0, b"got after\ngot quit\n"), err
