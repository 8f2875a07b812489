"""imaged's registry transport in its helper, cric-fetch (imaged/fetch.h):
an idle imaged maps no libcurl nor TLS library and has no helper; a pull
starts one (imaged's user, no capabilities, no_new_privs) that exits once
idle; a helper killed with -9 mid-blob costs that pull nothing: the blob
resumes (a Range request) on a new helper, while imaged stays up. Against Debian's
docker-registry on loopback, with images built by the tests.
"""
import os
import signal

import pytest

from conftest import api, pid_running, skip_unless_ready, wait_for
import imageutil as iu
from imageutil import Layer, Registry, SlowProxy, busybox_layer, tar_layer

pytestmark = skip_unless_ready(iu.missing, "image pulls from a local registry")

TRANSPORT_LIBS = ("libcurl", "libssl", "libcrypto.so", "libgnutls", "libnghttp2", "libssh2")


@pytest.fixture
def reg(tmp_path):
    r = Registry(tmp_path).start()
    yield r
    r.stop()


def pull(suite, image, timeout=60):
    return suite.cri.call("PullImage", api.PullImageRequest(image=api.ImageSpec(image=image)),
                          api.PullImageResponse, timeout=timeout).image_ref


def remove(suite, image):
    suite.cri.call("RemoveImage", api.RemoveImageRequest(image=api.ImageSpec(image=image)))


def helpers_of(pid):
    """The live cric-fetch children of pid (a zombie counts as gone)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        if comm == "cric-fetch" and int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def mapped(pid, names):
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return [n for n in names if n in maps]


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_helper_only_while_pulling(suite, reg, tmp_path):
    suite.write_config({"imaged": {"fetch_idle_seconds": 2}})
    suite.kill("imaged")
    suite.up()
    imaged = suite.pid("imaged")
    assert mapped(imaged, TRANSPORT_LIBS) == []
    assert helpers_of(imaged) == []

    layer = Layer(tar_layer([("etc", "d"), ("etc/motd", "f", b"hi\n")]))
    _, _, cd = reg.push_image("test/fetch", "1", [layer])
    # Slow enough (2 s for the blob) to see the helper at work.
    proxy = SlowProxy(tmp_path, reg.host, rate=64 * 1024, chunk=4096).start()
    try:
        ref = f"{proxy.host}/test/fetch:1"
        fut = suite.cri.future("PullImage", api.PullImageRequest(image=api.ImageSpec(image=ref)),
                               api.PullImageResponse, timeout=60)
        wait_for(proxy.started, timeout=20, what="the blob download to start")
        helpers = helpers_of(imaged)
        assert len(helpers) == 1
        h = helpers[0]
        st = status_fields(h)
        assert st["Uid"].split() == status_fields(imaged)["Uid"].split()
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
        assert st["NoNewPrivs"].strip() == "1"
        assert "libcurl" in mapped(h, TRANSPORT_LIBS)
        # Only the control socket and its transfers, beside stdio.
        fds = sorted(int(n) for n in os.listdir(f"/proc/{h}/fd"))
        assert fds[:4] == [0, 1, 2, 3]
        for n in fds[4:]:
            assert os.readlink(f"/proc/{h}/fd/{n}").startswith("socket:")
        assert fut.result().image_ref == cd
    finally:
        proxy.stop()

    # It is gone after the idle time; imaged never mapped the transport.
    wait_for(lambda: helpers_of(imaged) == [], timeout=10, what="the helper to exit when idle")
    assert mapped(imaged, TRANSPORT_LIBS) == []

    # The next pull starts a new one.
    remove(suite, cd)
    assert pull(suite, f"{reg.host}/test/fetch:1") == cd
    assert suite.pid("imaged") == imaged


def test_helper_killed_mid_blob(suite, reg, tmp_path):
    big = Layer(tar_layer([("big", "f", os.urandom(1024 * 1024))]), "none")
    _, _, cd = reg.push_image("test/kill", "1", [Layer(busybox_layer()), big])
    proxy = SlowProxy(tmp_path, reg.host, rate=256 * 1024).start()
    try:
        imaged = suite.pid("imaged")
        ref = f"{proxy.host}/test/kill:1"
        fut = suite.cri.future("PullImage", api.PullImageRequest(image=api.ImageSpec(image=ref)),
                               api.PullImageResponse, timeout=60)
        wait_for(proxy.started, timeout=20, what="a blob download to start")
        [h] = helpers_of(imaged)
        os.kill(h, signal.SIGKILL)
        # The cut blob resumes from where it stopped on a new helper.
        assert fut.result().image_ref == cd
        assert suite.pid("imaged") == imaged and pid_running(imaged)
        assert h not in helpers_of(imaged)
        assert pull(suite, ref) == cd
        remove(suite, cd)
    finally:
        proxy.stop()
