"""cric-call knows every internal method (tests/tools/cric-call.c), from the
same generated service descriptors the daemons serve and call them with.

The expected list is derived independently here, from Python's descriptors of
proto/cric/*.proto: every method of every service, named "<package>.<Method>"
on the wire, with its request and response types. No suite is started.
"""
import importlib
import os
import subprocess

from conftest import BUILD, REPO

CRIC_CALL = os.path.join(BUILD, "tools", "cric-call")


def proto_methods():
    want = []
    proto_dir = os.path.join(REPO, "proto", "cric")
    for name in sorted(os.listdir(proto_dir)):
        if not name.endswith(".proto"):
            continue
        mod = importlib.import_module(f"proto.cric.{name[:-6]}_pb2")
        for svc in mod.DESCRIPTOR.services_by_name.values():
            for m in svc.methods:
                want.append((f"{mod.DESCRIPTOR.package}.{m.name}", m.input_type.full_name,
                             m.output_type.full_name))
    return want


def run_cric_call(*args):
    # make check-integration builds it; a missing tool is a failure, not a skip.
    assert os.access(CRIC_CALL, os.X_OK), f"{CRIC_CALL} not built (make {CRIC_CALL})"
    return subprocess.run([CRIC_CALL, *args], capture_output=True, text=True)


def test_cric_call_lists_every_internal_method():
    r = run_cric_call("--list")
    assert r.returncode == 0, r.stderr
    listed = [tuple(line.split()) for line in r.stdout.splitlines()]
    want = proto_methods()
    assert sorted(listed) == sorted(want)
    # The services every daemon relies on are there (a proto file that lost
    # its service block would make both lists shorter alike).
    names = {m[0] for m in listed}
    assert {"cric.Health", "cric.netd.SetupPodNetwork", "cric.stored.ImportLayer"} <= names


def test_cric_call_refuses_an_unknown_method():
    r = run_cric_call("cric.netd.SetupPodNetwrok")
    assert r.returncode == 2
    assert "unknown method" in r.stderr
