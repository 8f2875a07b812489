#!/usr/bin/python3
"""Check the test client (streamclient) against Debian's containerd 1.6
streaming server, the reference the issue names, so that a bug in our
client is not mistaken for one in cric. Not part of the suite (it needs
containerd: deploy/install-deps --bench); run it after changing the client:

    flock /tmp/cric-net.lock tests/integration/streamclient/validate-containerd.py

It starts containerd with its CRI plugin (as tests/bench/bench.py does: a
loopback registry with busybox and a pause image made from cric-pause), runs
a host-network pod with a busybox container, and runs the same exec cases
test_stream_exec.py runs against cric, one attach case of
test_stream_attach.py, the port-forward cases of test_stream_portforward.py
(into the host-network pod: an echo server on the host); then
test_stream_ws.py's exec cases over WebSocket (and how containerd answers
bad handshakes and frames, for information). Prints one line per case;
exits 1 when one fails.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))

from bench import Containerd, pod_config  # noqa: E402
from conftest import BIN, api  # noqa: E402
import imageutil as iu  # noqa: E402
from netutil import free_port  # noqa: E402
from test_portfwd import echo_server  # noqa: E402


def build_client(out):
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off",
               GOCACHE=os.path.join(out, "cache"), GOFLAGS="")
    subprocess.run(["go", "build", "-o", os.path.join(out, "streamclient"), "."], cwd=HERE,
                   env=env, check=True)
    return os.path.join(out, "streamclient")


def ws_cases(cri, cid):
    """test_stream_ws.py's exec cases over WebSocket (python3-websockets)."""
    import asyncio
    import json
    import test_stream_ws as w
    failed = 0

    def url(cmd, **kw):
        kw.setdefault("stdout", True)
        return cri.call("Exec", api.ExecRequest(container_id=cid, cmd=cmd, **kw),
                        api.ExecResponse).url

    def check(name, ok, detail):
        nonlocal failed
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} ws {name}: {detail}")

    proto, code, out = w.session(url(["echo", "hello"]))
    check("echo", proto == w.V4 and code == 1000 and out.get("first") == (1, 0) and
          out.get(1) == b"hello\n" and json.loads(out[3]) == {"metadata": {}, "status": "Success"},
          (proto, code, out))
    proto, code, out = w.session(url(["sh", "-c", "echo out; echo err >&2; exit 7"],
                                     stderr=True), (w.V4B64, w.V4))
    st = json.loads(out.get(3, b"{}"))
    check("exit 7 base64", proto == w.V4B64 and out.get(2) == b"err\n" and
          st.get("reason") == "NonZeroExitCode" and
          st["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}], (proto, out))
    try:
        proto, code, out = w.session(url(["sh", "-c", "exit 3"]), None)
        check("no subprotocol", proto is None and out.get("first") == (1, 0) and
              out.get(3, b"").startswith(b"command terminated with non-zero exit code"), out)
    except Exception as e:  # x/net/websocket answers an empty Sec-WebSocket-Protocol
        print(f"info ws no subprotocol: {e!r}")
    proto, code, out = w.session(url(["sleep", "0"], stdout=False, stderr=True),
                                 ["channel.k8s.io"])
    check("stderr only", out.get("first") == (2, 0) and 3 not in out, out)
    resize = json.dumps({"Width": 100, "Height": 40}).encode()
    _, code, out = w.session(url(["sh", "-c", "read x; stty size; echo TERM=$TERM"], tty=True,
                                 stdin=True), send=[(4, resize), (0, b"go\n")])
    # (containerd 1.6 lost the resize sent at once in one run of two: informative)
    print(f"info ws tty resize: {out}")

    data = os.urandom(30 * 1024)

    async def cat(fragmented):
        async with w.connect(url(["cat"], stdin=True)) as conn:
            await asyncio.wait_for(await conn.ping(b"before"), 10)
            if fragmented:  # x/net/websocket takes each frame for a message
                await conn.send([w.frame(conn, 0, data[:10]), data[10:]])
            else:
                await conn.send(w.frame(conn, 0, data))
            try:
                out = await asyncio.wait_for(w.drain(conn, {}, until=(1, data)), 10)
            except asyncio.TimeoutError:
                out = {}
            return len(out.get(1, b""))
    n = asyncio.run(cat(False))
    check("cat, ping", n == len(data), f"{n} bytes back")
    print(f"info ws cat fragmented: {asyncio.run(cat(True))} of {len(data)} bytes back")

    for h, m in [({"Sec-WebSocket-Version": "8"}, "GET"), ({"Sec-WebSocket-Key": "short"}, "GET"),
                 ({}, "POST"), ({"Sec-WebSocket-Protocol": "v5.channel.k8s.io"}, "GET")]:
        sock, st, got, _, _ = w.raw_handshake(url(["sleep", "0"]), h, m)
        sock.close()
        print(f"info ws handshake {m} {h}: HTTP {st}")
    for name, bad in [("unmasked", b"\x82\x02\x00x"),
                      ("1 MiB", b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"mask")]:
        sock, st, got, key, rest = w.raw_handshake(url(["sleep", "5"]))
        sock.sendall(bad)
        sock.settimeout(10)
        try:
            print(f"info ws {name}: close {w.close_code(w.read_until_closed(sock, rest))}")
        except OSError as e:
            print(f"info ws {name}: {e}")
        sock.close()
    return failed


def main():
    tmp = tempfile.mkdtemp(prefix="cv-", dir="/tmp")
    client = build_client(tmp)
    reg = iu.Registry(os.path.join(tmp, "registry")).start()
    ctd = None
    failed = 0
    try:
        with open(os.path.join(BIN, "cric-pause"), "rb") as f:
            pause = iu.Layer(iu.tar_layer([("pause", "f", f.read(), {"mode": 0o755})]))
        reg.push_image("v/pause", "1", [pause],
                       config_extra={"config": {"Entrypoint": ["/pause"], "User": "65535"}})
        reg.push_image("v/busybox", "1", [iu.Layer(iu.busybox_layer(("echo", "cat", "sleep", "stty")))])
        ctd = Containerd(tmp, reg, f"{reg.host}/v/pause:1")
        cri = ctd.cri
        image = f"{reg.host}/v/busybox:1"
        cri.call("PullImage", api.PullImageRequest(image=api.ImageSpec(image=image)),
                 api.PullImageResponse, timeout=120)
        cfg = pod_config("validate")
        cfg.linux.security_context.namespace_options.network = api.NODE
        cfg.hostname = ""  # a host-network pod keeps the host's
        pod = cri.call("RunPodSandbox", api.RunPodSandboxRequest(config=cfg),
                       api.RunPodSandboxResponse, timeout=120).pod_sandbox_id
        cc = api.ContainerConfig(metadata=api.ContainerMetadata(name="c"),
                                 image=api.ImageSpec(image=image),
                                 command=["/bin/sh", "-c", "while :; do sleep 1; done"],
                                 log_path="c.log")
        cid = cri.call("CreateContainer", api.CreateContainerRequest(
            pod_sandbox_id=pod, config=cc, sandbox_config=cfg), api.CreateContainerResponse,
            timeout=60).container_id
        cri.call("StartContainer", api.StartContainerRequest(container_id=cid), timeout=60)

        def case(name, cmd, args, want_rc, want_out=None, stdin=None, want_err=None, **kw):
            nonlocal failed
            url = cri.call("Exec", api.ExecRequest(container_id=cid, cmd=cmd, **kw),
                           api.ExecResponse).url
            r = subprocess.run([client, "-url", url, *args], input=stdin, capture_output=True,
                               timeout=60)
            err = r.stderr.decode(errors="replace")
            ok = r.returncode == want_rc and (want_out is None or want_out in r.stdout) and \
                (want_err is None or want_err in err)
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: rc {r.returncode} "
                  f"out {r.stdout[:80]!r} {err.strip().splitlines()[-1:]}")

        case("echo", ["echo", "hello"], [], 0, b"hello\n", stdout=True,
             want_err='STATUS {"metadata":{},"status":"Success"}')
        data = os.urandom(300 * 1024)
        url = cri.call("Exec", api.ExecRequest(container_id=cid, cmd=["cat"], stdin=True,
                                               stdout=True), api.ExecResponse).url
        r = subprocess.run([client, "-url", url, "-stdin"], input=data, capture_output=True,
                           timeout=60)
        ok = r.returncode == 0 and r.stdout == data
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} cat 300 KiB: rc {r.returncode} "
              f"{len(r.stdout)} bytes back")
        case("exit 7", ["sh", "-c", "echo out; echo err >&2; exit 7"], ["-stderr"], 7,
             b"out\n", stdout=True, stderr=True,
             want_err='"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",'
                      '"message":"7"}]}')
        case("tty resize", ["sh", "-c", "sleep 0.5; stty size; echo TERM=$TERM"],
             ["-tty", "-resize", "100x40"], 0, b"40 100", stdout=True, tty=True)
        case("v2", ["sh", "-c", "exit 3"], ["-protocols", "v2.channel.k8s.io"], 1, None,
             stdout=True, want_err="PROTOCOL v2.channel.k8s.io")
        case("no common protocol", ["true"], ["-protocols", "v9.channel.k8s.io"], 101, None,
             stdout=True, want_err="HTTP 403")
        # attach: a container reading its stdin (test_stream_attach.py's)
        ac = api.ContainerConfig(metadata=api.ContainerMetadata(name="a"),
                                 image=api.ImageSpec(image=image), stdin=True,
                                 command=["/bin/sh", "-c", 'while read l; do echo "got $l"; '
                                          '[ "$l" = quit ] && exit 3; done'],
                                 log_path="a.log")
        aid = cri.call("CreateContainer", api.CreateContainerRequest(
            pod_sandbox_id=pod, config=ac, sandbox_config=cfg), api.CreateContainerResponse,
            timeout=60).container_id
        cri.call("StartContainer", api.StartContainerRequest(container_id=aid), timeout=60)
        url = cri.call("Attach", api.AttachRequest(container_id=aid, stdin=True, stdout=True),
                       api.AttachResponse).url
        # containerd ends an attach when the client's stdin ends (cric goes
        # on until the container exits or the client leaves): stdin is kept
        # open past the container's exit here (pauses fine outside the suite)
        feed = subprocess.Popen(["sh", "-c", 'sleep 1; printf "hello\\nquit\\n"; sleep 2'],
                                stdout=subprocess.PIPE)
        r = subprocess.run([client, "-url", url, "-stdin"], stdin=feed.stdout,
                           capture_output=True, timeout=60)
        feed.wait()
        err = r.stderr.decode(errors="replace")
        ok = r.returncode == 0 and r.stdout == b"got hello\ngot quit\n" and \
            'STATUS {"metadata":{},"status":"Success"}' in err
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} attach until exit 3: rc {r.returncode} "
              f"out {r.stdout[:80]!r} {err.strip().splitlines()[-1:]}")
        # port-forward: two connections at once, 10 MiB each way; then a
        # refused port (its text on the error stream) and the same session
        # forwarding again
        port, refused = free_port(), free_port()
        echo = echo_server("127.0.0.1", port)
        try:
            url = cri.call("PortForward", api.PortForwardRequest(pod_sandbox_id=pod, port=[port]),
                           api.PortForwardResponse).url
            big = 10 << 20
            r = subprocess.run([client, "-url", url, "-portforward",
                                f"{port}:{big},{port}:{big};{refused}:0;{port}:100000"],
                               capture_output=True, timeout=120)
        finally:
            echo.kill()
            echo.wait()
        lines = r.stdout.decode(errors="replace").splitlines()
        err = r.stderr.decode(errors="replace")
        want = [rf'^CONN 0 PORT {port} SENT {big} GOT {big} MATCH true EOF true ERROR ""$',
                rf'^CONN 1 PORT {port} SENT {big} GOT {big} MATCH true EOF true ERROR ""$',
                rf'^CONN 2 PORT {refused} SENT 0 GOT 0 MATCH true EOF true ERROR ".*refused.*"$',
                r'^CONN 3 PORT \d+ SENT 100000 GOT 100000 MATCH true EOF true ERROR ""$']
        ok = r.returncode == 1 and "PROTOCOL portforward.k8s.io" in err and \
            len(lines) == 4 and all(re.match(w, ln) for w, ln in zip(want, lines))
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} port-forward: rc {r.returncode} {lines} "
              f"{err.strip().splitlines()[-1:]}")
        failed += ws_cases(cri, cid)
    finally:
        if ctd:
            ctd.stop()
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
