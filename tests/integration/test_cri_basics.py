"""Version, Status, RuntimeConfig, routing and bad input through the real socket."""
import json
import os
import re
import subprocess

import grpc
import pytest

from conftest import BIN, api

# A CNI network in the test range (198.18.0.0/15), never written to /etc.
CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "cric-test",
    "plugins": [
        {"type": "bridge", "bridge": "crictest0", "isGateway": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.19.7.0/24"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def conditions(status):
    return {c.type: c for c in status.status.conditions}


def test_version_exact_fields(suite):
    v = suite.cri.version()
    built = subprocess.run([os.path.join(BIN, "cric-runtimed"), "--version"],
                           capture_output=True, text=True, check=True).stdout.split()[1]
    assert v.version == "0.1.0"
    assert v.runtime_name == "cric"
    assert v.runtime_version == built
    assert re.fullmatch(r"0\.1\.0(\+g[0-9a-f]{4,40})?", v.runtime_version)
    assert v.runtime_api_version == "v1"


def test_status_network_follows_cni_config(suite):
    # No CNI config yet: runtime ready, network not.
    st = suite.cri.status()
    c = conditions(st)
    assert set(c) == {"RuntimeReady", "NetworkReady"}
    assert c["RuntimeReady"].status is True and c["RuntimeReady"].reason == ""
    assert c["NetworkReady"].status is False
    assert c["NetworkReady"].reason == "NetworkPluginNotReady"
    assert suite.cni_dir in c["NetworkReady"].message

    # An invalid file is skipped; a network whose plugin is missing is not ready
    # and the message names the plugin.
    os.makedirs(suite.cni_dir, exist_ok=True)
    with open(os.path.join(suite.cni_dir, "00-broken.conflist"), "w") as f:
        f.write("{ not json")
    missing = dict(CONFLIST, plugins=[{"type": "no-such-plugin"}])
    with open(os.path.join(suite.cni_dir, "10-missing.conflist"), "w") as f:
        json.dump(missing, f)
    c = conditions(suite.cri.status())
    assert c["NetworkReady"].status is False
    assert "no-such-plugin" in c["NetworkReady"].message

    # A valid network with Debian's plugins: ready at once (no restart).
    os.unlink(os.path.join(suite.cni_dir, "10-missing.conflist"))
    with open(os.path.join(suite.cni_dir, "20-test.conflist"), "w") as f:
        json.dump(CONFLIST, f)
    st = suite.cri.status(verbose=True)
    c = conditions(st)
    assert c["NetworkReady"].status is True
    assert c["NetworkReady"].reason == "" and c["NetworkReady"].message == ""
    info = json.loads(st.info["config"])
    assert info["cni_network"] == "cric-test"
    assert info["cni_conf_file"] == os.path.join(suite.cni_dir, "20-test.conflist")
    assert info["cgroup_manager"] == "cgroupfs"
    assert [h.name for h in st.runtime_handlers] == ["", "runc"]

    # And back to not ready when it goes away.
    os.unlink(os.path.join(suite.cni_dir, "20-test.conflist"))
    assert conditions(suite.cri.status())["NetworkReady"].status is False


def test_runtime_config_reports_cgroup_driver(suite):
    rc = suite.cri.call("RuntimeConfig", api.RuntimeConfigRequest(), api.RuntimeConfigResponse)
    assert rc.linux.cgroup_driver == api.CGROUPFS


# Every method of the pinned CRI (proto/cri/api.proto, cri-api v0.36) is
# implemented: none answers UNIMPLEMENTED, asked with an empty request (which
# each refuses or answers harmlessly). GetContainerEvents never ends: its
# deadline is its answer.
def test_no_cri_method_answers_unimplemented(suite):
    asked = 0
    for service in api.DESCRIPTOR.services_by_name.values():
        for m in service.methods:
            call = suite.cri._callable(service.name, m.name, None, stream=m.server_streaming)
            try:
                if m.server_streaming:
                    list(call(b"", timeout=0.5 if m.name == "GetContainerEvents" else 10))
                else:
                    call(b"", timeout=10)
            except grpc.RpcError as e:
                assert e.code() != grpc.StatusCode.UNIMPLEMENTED, (m.name, e.details())
                assert e.code() != grpc.StatusCode.DEADLINE_EXCEEDED or \
                    m.name == "GetContainerEvents", (m.name, e.details())
            asked += 1
    assert asked >= 41, asked  # both services, every method (41 in v0.36)


def test_container_calls_are_answered_by_runtimed(suite):
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("CreateContainer", api.CreateContainerRequest())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pod sandbox id" in e.value.details()
    assert len(suite.cri.call("ListContainers", api.ListContainersRequest(),
                              api.ListContainersResponse).containers) == 0
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("ContainerStatus", api.ContainerStatusRequest(container_id="ab" * 32))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_image_calls_are_answered_by_their_daemons(suite):
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("PullImage", api.PullImageRequest())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image.image" in e.value.details()
    assert len(suite.cri.call("ListImages", api.ListImagesRequest(),
                              api.ListImagesResponse).images) == 0
    fs = suite.cri.call("ImageFsInfo", api.ImageFsInfoRequest(), api.ImageFsInfoResponse)
    assert fs.image_filesystems[0].fs_id.mountpoint == \
        os.path.join(suite.root, "var/lib/cric/stored")


def test_streaming_list_methods_are_served(suite):
    # Empty: no message, then OK (tests/integration/test_stream_list.py has
    # the rest).
    for method in ["StreamContainers", "StreamPodSandboxes", "StreamContainerStats",
                   "StreamPodSandboxStats", "StreamPodSandboxMetrics"]:
        assert list(suite.cri.stream(method, b"")) == [], method
    images = suite.cri._callable("ImageService", "StreamImages", None, stream=True)
    assert list(images(b"", timeout=10)) == []


def test_garbage_request_is_invalid_argument_and_gateway_survives(suite):
    for method in ["Version", "Status", "RunPodSandbox", "PullImage"]:
        with pytest.raises(grpc.RpcError) as e:
            suite.cri.call(method, b"\xff\xff\xff\xff\x0f")
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        assert "not a valid runtime.v1." in e.value.details()
    # A field with the wrong wire type for its number is garbage too.
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("Version", b"\x0d\x00\x00\x00\x00")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert suite.cri.version().runtime_name == "cric"


def test_unknown_method_is_unimplemented(suite):
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("NoSuchMethod", api.VersionRequest())
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("Version", api.VersionRequest(), service="NoSuchService")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_cri_socket_mode(suite):
    """The CRI socket is the gateway's, in a directory only it (and root) may
    enter; the internal sockets are 0660 in group cric, in a directory only
    root may write; imaged's is its own, behind root's link."""
    import grp
    import pwd
    cric = grp.getgrnam("cric").gr_gid
    gw, im = pwd.getpwnam("cric-gateway").pw_uid, pwd.getpwnam("cric-imaged").pw_uid
    st = os.stat(suite.socket)
    assert oct(st.st_mode & 0o777) == "0o660" and st.st_uid == gw
    gwdir = os.stat(os.path.dirname(os.path.realpath(suite.socket)))
    assert gwdir.st_uid == gw and gwdir.st_mode & 0o777 == 0o700
    assert os.lstat(suite.socket).st_uid == 0  # root's link
    ipc = os.stat(suite.ipc_dir)
    assert (ipc.st_uid, ipc.st_gid, ipc.st_mode & 0o7777) == (0, cric, 0o2750)
    for d in ["imaged", "stored", "netd", "runtimed", "monitord"]:
        st = os.stat(os.path.join(suite.ipc_dir, d + ".sock"))
        assert st.st_mode & 0o777 == 0o660 and st.st_gid == cric, d
        assert st.st_uid == (im if d == "imaged" else 0), d


def test_cricctl_against_the_suite(suite):
    r = suite.ctl("version")
    assert r.returncode == 0 and "RuntimeName:  cric" in r.stdout
    r = suite.ctl("health")
    assert r.returncode == 0, r.stdout + r.stderr
    for d in ["imaged", "stored", "netd", "runtimed", "monitord"]:
        assert re.search(rf"^{d}\s+ok\s+pid {suite.pid(d)}\b", r.stdout, re.M), r.stdout
