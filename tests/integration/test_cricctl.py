"""cricctl's image and container commands against a real suite: the life
cycle a newcomer walks without crictl (pull, images, run-pod, create, start,
ps, logs, exec, call, stop, rm, rm-pod, rmi), crictl's JSON files for
create, and the messages a person needs (an unknown pod named on stderr, a
socket that does not answer hinting at --root).

Pods get real CNI networks: run under `flock /tmp/cric-net.lock`.
"""
import json
import os

import imageutil as iu
from conftest import api, skip_unless_ready, wait_for
from netutil import missing as net_missing
from test_containers import ctrs, registry  # noqa: F401  (fixtures)

pytestmark = [skip_unless_ready(iu.missing, "images from a local registry"),
              skip_unless_ready(net_missing, "pods with real CNI networks")]

SCRIPT = "echo to-stdout; echo to-stderr >&2; exec sleep 300"


def ctl(suite, *args, rc=0):
    r = suite.ctl(*args)
    assert r.returncode == rc, (args, r.returncode, r.stdout, r.stderr)
    return r


def test_cricctl_walks_the_life_cycle(ctrs, tmp_path):  # noqa: F811
    suite = ctrs.suite
    image = ctrs.image()
    ref = ctl(suite, "--timeout", "120", "pull", image).stdout.strip()
    assert ref.startswith("sha256:") and len(ref) == 71, ref  # the image's id
    images = ctl(suite, "images").stdout
    assert any(line.startswith(ref[7:19]) and ctrs.image("test/ctr:1") in line
               for line in images.splitlines()), images

    pod = ctl(suite, "run-pod", "walk", "cricctl-test").stdout.strip()
    assert len(pod) == 64, pod
    try:
        cid = ctl(suite, "create", pod[:12], "app", image,
                  "/bin/sh", "-c", SCRIPT).stdout.strip()
        assert len(cid) == 64, cid
        assert "CREATED" in ctl(suite, "ps", "-a").stdout
        ctl(suite, "start", cid[:12])
        ps = ctl(suite, "ps").stdout
        assert any(line.startswith(cid[:13]) and "RUNNING" in line and " app " in line
                   and pod[:13] in line for line in ps.splitlines()), ps

        def logged():
            r = ctl(suite, "logs", cid)
            return r if r.stdout == "to-stdout\n" and r.stderr == "to-stderr\n" else None
        wait_for(logged, what="both streams in cricctl logs")

        r = ctl(suite, "exec", cid, "/bin/sh", "-c", "echo in-exec; echo e >&2; exit 3", rc=3)
        assert r.stdout == "in-exec\n" and r.stderr == "e\n", r

        st = json.loads(ctl(suite, "call", "RuntimeService/ContainerStatus",
                            json.dumps({"container_id": cid})).stdout)
        assert st["status"]["state"] == "CONTAINER_RUNNING", st
        assert st["status"]["metadata"]["name"] == "app", st

        ctl(suite, "stop", cid, "0")
        assert any(line.startswith(cid[:13]) and "EXITED" in line
                   for line in ctl(suite, "ps", "-a").stdout.splitlines())
        ctl(suite, "rm", cid)
        assert cid[:13] not in ctl(suite, "ps", "-a").stdout

        # crictl's form: the container's and the pod's config as JSON files.
        (tmp_path / "c.json").write_text(json.dumps({
            "metadata": {"name": "from-json", "attempt": 1},
            "image": {"image": image},
            "command": ["/bin/sh", "-c", "echo json-made; exec sleep 300"],
            "log_path": "from-json/1.log"}))
        (tmp_path / "p.json").write_text(json.dumps({
            "metadata": {"name": "walk", "namespace": "cricctl-test", "uid": "x"}}))
        jid = ctl(suite, "create", pod, str(tmp_path / "c.json"),
                  str(tmp_path / "p.json")).stdout.strip()
        ctl(suite, "start", jid)
        wait_for(lambda: ctl(suite, "logs", jid).stdout == "json-made\n",
                 what="the JSON-made container's log")
        status = suite.cri.call("ContainerStatus", api.ContainerStatusRequest(
            container_id=jid), api.ContainerStatusResponse).status
        assert status.metadata.attempt == 1 and status.log_path.endswith("from-json/1.log")
    finally:
        ctl(suite, "rm-pod", pod)
    assert pod[:13] not in ctl(suite, "pods").stdout
    assert jid[:13] not in ctl(suite, "ps", "-a").stdout

    ctl(suite, "rmi", image)
    assert ctrs.image("test/ctr") not in ctl(suite, "images").stdout


def test_cricctl_says_what_a_person_needs_to_know(suite):
    # An unknown pod: success (CRI idempotence), said on stderr.
    r = ctl(suite, "stop-pod", "0123456789ab")
    assert 'no pod "0123456789ab": nothing to stop' in r.stderr, r.stderr
    r = ctl(suite, "rm-pod", "0123456789ab")
    assert "nothing to remove" in r.stderr, r.stderr
    # Bad arguments, unknown commands and methods: usage, exit 2.
    assert "Usage: cricctl create" in ctl(suite, "create", "x", rc=2).stderr
    assert "unknown command" in ctl(suite, "frobnicate", rc=2).stderr
    assert "is no CRI method" in ctl(suite, "call", "RuntimeService/Nope", rc=2).stderr
    assert "not JSON" in ctl(suite, "call", "RuntimeService/Version", "{", rc=2).stderr
    # help names every command and warns about remove-all.
    out = ctl(suite, "help").stdout
    for cmd in ("pull", "images", "rmi", "ps", "create", "start", "stop", "rm", "logs",
                "exec", "call", "run-pod", "stop-pod", "rm-pod", "events", "inspect"):
        assert f"\n  {cmd} " in out, (cmd, out)
    assert "EVERY pod and container of this root" in out
    # A socket nobody answers on: the hint names --root and --socket.
    r = ctl(suite, "--socket", os.path.join(suite.root, "nothing.sock"), "version", rc=1)
    assert "UNAVAILABLE" in r.stderr and "--root DIR" in r.stderr, r.stderr


def test_cricctl_events_and_inspect(ctrs):  # noqa: F811
    import subprocess
    import threading
    from conftest import BIN
    suite = ctrs.suite
    follow = subprocess.Popen([os.path.join(BIN, "cricctl"), "--root", suite.root, "events"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(follow.stdout), daemon=True).start()
    try:
        ctrs.pull()
        pod, pcfg = ctrs.pod(pid=api.POD)
        cid = ctrs.create(pod, pcfg, ctrs.config(name="seen",
                                                 command=["/bin/busybox", "sh", "-c", "exit 2"]))
        ctrs.start(cid)

        def of(c):
            return [f[1] for f in (line.split() for line in list(lines)) if f[2] == c]
        wait_for(lambda: "CONTAINER_STOPPED_EVENT" in of(cid), timeout=20,
                 what="cricctl events to print the container's exit")
        assert of(cid) == ["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT",
                           "CONTAINER_STOPPED_EVENT"]
        assert of(pod) == ["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT"]
        line = next(line for line in lines if cid in line).split()
        assert line[0].endswith("Z") and line[3] == pod, line
        assert line[4] == f"default/{pcfg.metadata.name}", line
    finally:
        follow.terminate()
        follow.wait(10)
    # COUNT events (the recent ones first), then it ends well.
    r = ctl(suite, "events", "2")
    assert len(r.stdout.splitlines()) == 2, r.stdout

    v = json.loads(ctl(suite, "inspect", cid[:12]).stdout)
    assert v["kind"] == "container" and v["status"]["status"]["id"] == cid
    assert v["status"]["status"]["state"] == "CONTAINER_EXITED"
    assert isinstance(v["status"]["info"]["info"], dict)  # the verbose info, parsed
    assert v["record"]["id"] == cid and v["record"]["state"] == "exited", v["record"]
    assert v["runc"]["id"] == cid and v["runc"]["init_process_pid"] > 0, v["runc"]
    assert v["monitor"]["exited"] and v["monitor"]["exit_code"] == 2, v["monitor"]
    assert v["rootfs"]["fstype"] == "overlay", v["rootfs"]
    assert "upperdir=" in v["rootfs"]["super_options"], v["rootfs"]

    p = json.loads(ctl(suite, "inspect", pod).stdout)
    assert p["kind"] == "pod" and p["status"]["status"]["id"] == pod
    assert p["record"]["id"] == pod and p["runc"]["init_process_pid"] > 0, p
    assert "error" not in p["network"], p["network"]
    assert p["network"]["network"]["ips"], p["network"]

    r = ctl(suite, "inspect", "0123456789ab", rc=1)
    assert 'no container or pod "0123456789ab"' in r.stderr, r.stderr
