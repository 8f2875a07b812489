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
                "exec", "call", "run-pod", "stop-pod", "rm-pod"):
        assert f"\n  {cmd} " in out, (cmd, out)
    assert "EVERY pod and container of this root" in out
    # A socket nobody answers on: the hint names --root and --socket.
    r = ctl(suite, "--socket", os.path.join(suite.root, "nothing.sock"), "version", rc=1)
    assert "UNAVAILABLE" in r.stderr and "--root DIR" in r.stderr, r.stderr
