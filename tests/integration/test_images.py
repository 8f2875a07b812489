"""The CRI ImageService through the gateway socket, against Debian's
docker-registry on loopback with images built and pushed by the tests
(imageutil): pulls by tag, digest and short name (default registry,
mirrors), multi-arch indexes, Docker and OCI media types, gzip, zstd and
plain layers, token and basic auth, corrupt content, a registry going away
mid-pull, hostile layers, whiteouts in an overlay mount, concurrency,
kill -9 of imaged and stored, and ImageFsInfo against du.
"""
import ctypes
import json
import os
import pwd
import secrets
import shutil
import stat
import struct
import subprocess
import threading
import time

import grpc
import pytest

from conftest import BUILD, api, skip_unless_ready, wait_for
import imageutil as iu
from imageutil import Layer, Registry, SlowProxy, busybox_layer, tar_layer

pytestmark = skip_unless_ready(iu.missing, "image pulls from a local registry")

CRIC_CALL = os.path.join(BUILD, "tools", "cric-call")


@pytest.fixture
def reg(tmp_path):
    r = Registry(tmp_path).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def bb_layer():
    return Layer(busybox_layer())


def spec(image):
    return api.ImageSpec(image=image)


def pull(suite, image, auth=None, timeout=120):
    return suite.cri.call("PullImage", api.PullImageRequest(image=spec(image), auth=auth),
                          api.PullImageResponse, timeout=timeout).image_ref


def status(suite, image, verbose=False):
    return suite.cri.call("ImageStatus", api.ImageStatusRequest(image=spec(image),
                                                                verbose=verbose),
                          api.ImageStatusResponse)


def images(suite, image=None):
    f = api.ImageFilter(image=spec(image)) if image else None
    return suite.cri.call("ListImages", api.ListImagesRequest(filter=f),
                          api.ListImagesResponse).images


def remove(suite, image):
    suite.cri.call("RemoveImage", api.RemoveImageRequest(image=spec(image)))


def grpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value.code(), e.value.details()


def store_dir(suite):
    return os.path.join(suite.root, "var/lib/cric/stored")


def layers_on_disk(suite):
    d = os.path.join(store_dir(suite), "layers")
    return sorted(n for n in os.listdir(d) if n != "empty")


def layer_count(suite):
    """Published layers (a tree and its record)."""
    return sum(1 for n in layers_on_disk(suite) if n.endswith(".json"))


def blobs_on_disk(suite):
    d = os.path.join(store_dir(suite), "blobs/sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def staging_files(suite):
    d = os.path.join(suite.root, "var/lib/cric/imaged/staging")
    return os.listdir(d) if os.path.isdir(d) else []


def assert_store_empty(suite):
    assert layers_on_disk(suite) == []
    assert blobs_on_disk(suite) == []
    assert staging_files(suite) == []
    assert len(images(suite)) == 0


def configure(suite, imaged):
    suite.write_config({"imaged": imaged})
    suite.kill("imaged")
    suite.up()


# stored takes its image-import methods from imaged only: a test calling them
# "as imaged calls them" runs cric-call as imaged's user.
AS_IMAGED = ["setpriv", "--reuid=cric-imaged", "--regid=cric", "--init-groups"]


def cric_call(suite, method, req, as_imaged=False):
    r = subprocess.run([*(AS_IMAGED if as_imaged else []), CRIC_CALL, "--root", suite.root,
                        "--timeout", "60", method, json.dumps(req)],
                       capture_output=True, text=True, timeout=90, cwd="/")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ---------------------------------------------------------------------------


def test_pull_by_tag_digest_and_status(suite, reg, bb_layer):
    extra = Layer(tar_layer([("etc", "d"), ("etc/motd", "f", b"hello\n")]), "zstd")
    plain = Layer(tar_layer([("srv", "d"), ("srv/data", "f", b"x" * 5000)]), "none")
    md, _, cd = reg.push_image("test/app", "1.0", [bb_layer, extra, plain], user="1000:1000")
    ref = f"{reg.host}/test/app:1.0"
    image_id = pull(suite, ref)
    assert image_id == cd

    img = status(suite, ref).image
    assert img.id == cd
    assert list(img.repo_tags) == [ref]
    assert list(img.repo_digests) == [f"{reg.host}/test/app@{md}"]
    assert img.uid.value == 1000 and img.username == ""
    # Config and compressed layers, as containerd counts.
    layers_size = sum(len(x.blob) for x in (bb_layer, extra, plain))
    assert layers_size < img.size < layers_size + 4096
    # The same image by id, id prefix and digest.
    for name in (cd, cd[7:], cd[7:20], f"{reg.host}/test/app@{md}"):
        assert status(suite, name).image.id == cd, name
    info = json.loads(status(suite, ref, verbose=True).info["info"])
    assert info["imageSpec"]["config"]["User"] == "1000:1000"
    assert len(info["chainIDs"]) == 3 and info["chainIDs"][0] == bb_layer.diff_id

    # Pull by digest: same image, a repo digest and no new tag.
    assert pull(suite, f"{reg.host}/test/app@{md}") == cd
    assert len(images(suite)) == 1
    assert [i.id for i in images(suite, ref)] == [cd]
    assert len(images(suite, f"{reg.host}/test/other:1")) == 0

    # Unknown images: an empty status, not an error; removal succeeds.
    assert not status(suite, f"{reg.host}/test/nope:1").HasField("image")
    assert not status(suite, "sha256:" + "0" * 64).HasField("image")
    remove(suite, f"{reg.host}/test/nope:1")
    code, msg = grpc_error(pull, suite, f"{reg.host}/test/nope:1")
    assert code == grpc.StatusCode.NOT_FOUND, msg
    for bad in ("Upper", "a:b:c", "x@sha256:12", "0" * 64):
        code, _ = grpc_error(pull, suite, bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, bad
    code, _ = grpc_error(status, suite, "")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # A registry nobody answers for: UNAVAILABLE, naming it.
    code, msg = grpc_error(pull, suite, f"127.0.0.1:{iu.free_port()}/x:1")
    assert code == grpc.StatusCode.UNAVAILABLE, msg


def test_short_names_default_registry_and_mirrors(suite, reg, tmp_path, bb_layer):
    md, _, cd = reg.push_image("library/tool", "latest", [bb_layer], flavour="docker")
    # The default registry completes short names.
    configure(suite, {"default_registry": reg.host})
    assert pull(suite, "library/tool") == cd
    assert list(status(suite, "library/tool").image.repo_tags) == \
        [f"{reg.host}/library/tool:latest"]
    remove(suite, cd)

    # docker.io through a mirror: a dead mirror first, then ours; the
    # names stay docker.io's.
    dead = iu.free_port()
    configure(suite, {"registries": {"docker.io": {"mirrors": [f"127.0.0.1:{dead}", reg.host]}}})
    assert pull(suite, "tool") == cd
    img = status(suite, "tool").image
    assert list(img.repo_tags) == ["docker.io/library/tool:latest"]
    assert list(img.repo_digests) == [f"docker.io/library/tool@{md}"]
    assert status(suite, "docker.io/library/tool:latest").image.id == cd
    assert f"mirror 127.0.0.1:{dead}" in suite.log("imaged")


@pytest.mark.parametrize("flavour", ["oci", "docker"])
def test_multi_arch_index_selects_this_host(suite, reg, bb_layer, flavour):
    import platform
    host = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())
    if host is None:
        pytest.skip(f"test written for amd64 and arm64 hosts, not {os.uname().machine}")
    entries, ids = [], {}
    for plat in ("linux/arm/v7", "linux/arm64", "linux/amd64", "linux/s390x"):
        parts = plat.split("/")
        marker = Layer(tar_layer([("arch", "f", plat.encode())]))
        md, ms, cd = reg.push_image("test/multi", f"{parts[1]}-{flavour}", [bb_layer, marker],
                                    flavour=flavour, arch=parts[1],
                                    variant=parts[2] if len(parts) > 2 else None)
        entries.append((md, ms, plat))
        ids[parts[1]] = cd
    idx, _ = reg.push_index("test/multi", flavour, entries, flavour=flavour)
    ref = f"{reg.host}/test/multi:{flavour}"
    assert pull(suite, ref) == ids[host]
    # The repo digest is the image manifest's; the index digest resolves too.
    img = status(suite, ref).image
    assert img.id == ids[host]
    assert pull(suite, f"{reg.host}/test/multi@{idx}") == ids[host]


def test_config_that_lies_about_its_layers_is_refused(suite, reg, bb_layer):
    # (Schema 1 manifests are refused by manifest_parse, unit-tested: this
    # registry does not even accept unsigned ones.)
    # A config whose diff_ids do not match the layer's content.
    reg.push_image("test/lie", "1", [bb_layer], diff_ids=["sha256:" + "1" * 64])
    code, msg = grpc_error(pull, suite, f"{reg.host}/test/lie:1")
    assert code != grpc.StatusCode.OK and "sha256:" + "1" * 64 in msg, msg
    assert_store_empty(suite)


def _corrupt(reg, digest):
    hexd = digest[7:]
    path = os.path.join(reg.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")
    with open(path, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xff]))


def test_corrupt_blob_fails_and_keeps_nothing(suite, reg, bb_layer):
    good = Layer(tar_layer([("ok", "f", b"fine")]))
    bad = Layer(tar_layer([("data", "f", os.urandom(4096))]))
    reg.push_image("test/corrupt", "1", [good, bad])
    _corrupt(reg, bad.digest)
    code, msg = grpc_error(pull, suite, f"{reg.host}/test/corrupt:1")
    assert code != grpc.StatusCode.OK
    assert bad.digest in msg and "content has digest" in msg, msg
    assert_store_empty(suite)


def test_registry_gone_mid_pull_fails_cleanly_then_retry_succeeds(suite, reg, tmp_path):
    big = Layer(tar_layer([("big", "f", os.urandom(3 * 1024 * 1024))]), "none")
    _, _, cd = reg.push_image("test/big", "1", [big])
    proxy = SlowProxy(tmp_path, reg.host, rate=512 * 1024).start()
    try:
        fut = suite.cri.future("PullImage",
                               api.PullImageRequest(image=spec(f"{proxy.host}/test/big:1")),
                               api.PullImageResponse, timeout=120)
        wait_for(proxy.started, timeout=30, what="the blob download to start")
        proxy.stop()
        with pytest.raises(grpc.RpcError) as e:
            fut.result()
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.DEADLINE_EXCEEDED), e.value.details()
        assert_store_empty(suite)
        proxy.start()
        assert pull(suite, f"{proxy.host}/test/big:1") == cd
    finally:
        proxy.stop()


def _auth(user=iu.USER, password=iu.PASSWORD):
    return api.AuthConfig(username=user, password=password)


@pytest.mark.parametrize("kind", ["token", "basic"])
def test_auth(suite, tmp_path, bb_layer, kind):
    open_reg = Registry(tmp_path / "open").start()
    _, _, cd = open_reg.push_image("test/private", "1", [bb_layer])
    authed = Registry(tmp_path / "auth", storage=open_reg.storage).start(auth=kind)
    try:
        ref = f"{authed.host}/test/private:1"
        code, msg = grpc_error(pull, suite, ref)
        assert code == grpc.StatusCode.PERMISSION_DENIED, msg
        assert authed.host in msg
        code, msg = grpc_error(pull, suite, ref, auth=_auth(password="wrong-password"))
        assert code == grpc.StatusCode.PERMISSION_DENIED, msg
        assert "wrong-password" not in msg
        # username/password, then the base64 "auth" field.
        assert pull(suite, ref, auth=_auth()) == cd
        remove(suite, cd)
        assert pull(suite, ref, auth=api.AuthConfig(auth=iu.auth_b64())) == cd
        remove(suite, cd)
        # The credentials file: imaged runs as cric-imaged, so the file is
        # that user's to read (and nobody else's).
        creds = os.path.join(suite.root, "etc/cric/registry-auth.json")
        os.makedirs(os.path.dirname(creds), exist_ok=True)
        with open(creds, "w") as f:
            f.write(json.dumps({"auths": {authed.host: {"auth": iu.auth_b64()}}}))
        os.chmod(creds, 0o600)
        os.chown(creds, pwd.getpwnam("cric-imaged").pw_uid, -1)
        configure(suite, {"credentials_file": creds})
        assert pull(suite, ref) == cd
        if kind == "token":
            with open(authed.token_log) as f:
                assert f"token {iu.USER}" in f.read()
        for d in ("imaged", "gateway", "stored"):
            text = suite.log(d)
            assert iu.PASSWORD not in text and iu.auth_b64() not in text, d
    finally:
        authed.stop()
        open_reg.stop()


def test_whiteouts_and_opaque_dirs_in_the_overlay(suite, reg):
    base = Layer(tar_layer([("a", "d"), ("a/x", "f", b"x"), ("a/y", "f", b"y"), ("d", "d"),
                            ("d/old", "f", b"old"), ("keep", "f", b"k")]))
    top = Layer(tar_layer([("a", "d"), ("a/.wh.x", "f", b""), ("d", "d"),
                           ("d/.wh..wh..opq", "f", b""), ("d/new", "f", b"new"),
                           (".wh.keep", "f", b"")]))
    _, _, cd = reg.push_image("test/wh", "1", [base, top])
    pull(suite, f"{reg.host}/test/wh:1")
    chains = json.loads(status(suite, cd, verbose=True).info["info"])["chainIDs"]
    cid = secrets.token_hex(32)
    r = cric_call(suite, "cric.stored.CreateRootfs", {"container_id": cid,
                                                      "chain_id": chains[-1]})
    assert r["code"] == 0, r
    root = r["response"]["path"]
    try:
        assert sorted(os.listdir(root)) == ["a", "d"]
        assert os.listdir(os.path.join(root, "a")) == ["y"]
        assert os.listdir(os.path.join(root, "d")) == ["new"]
        # The container writes to its own upper layer only.
        with open(os.path.join(root, "a", "new"), "w") as f:
            f.write("mine")
        assert not os.path.exists(os.path.join(store_dir(suite), "layers", chains[0][7:],
                                               "a", "new"))
        # Its image cannot go while the container holds the layers.
        remove(suite, cd)
        assert layer_count(suite) == 2
        # A restart of stored keeps the mount (and mounts it again if gone).
        suite.kill("stored")
        subprocess.run(["umount", root], check=True)
        suite.up()
        assert sorted(os.listdir(root)) == ["a", "d"]
    finally:
        r = cric_call(suite, "cric.stored.RemoveRootfs", {"container_id": cid})
        assert r["code"] == 0, r
    with open("/proc/self/mountinfo") as f:
        assert root not in f.read()
    assert layers_on_disk(suite) == []


class OpenWatch:
    """The names opened in a directory (inotify IN_OPEN, through libc)."""
    IN_OPEN, IN_NONBLOCK, IN_CLOEXEC = 0x20, 0o4000, 0o2000000

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        assert self.libc.inotify_add_watch(self.fd, path.encode(), self.IN_OPEN) >= 0

    def opened(self):
        names = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            off = 0
            while off < len(buf):
                _, mask, _, n = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + n].rstrip(b"\0").decode()
                if name and mask & self.IN_OPEN:
                    names.append(name)
                off += 16 + n

    def close(self):
        os.close(self.fd)


def test_import_layer_takes_only_plain_names_in_imageds_staging_dir(suite, tmp_path):
    """stored's ImportLayer, called as imaged calls it: the staging dir is
    stored's own configuration, the file a plain name of a regular file in
    it. A relative path out of it, an absolute path, symlinks (to a valid
    blob, to /etc/shadow), a FIFO and a device fail, promptly, with nothing
    opened in the staging dir and nothing imported."""
    staging = os.path.join(suite.root, "var/lib/cric/imaged/staging")
    assert os.path.isdir(staging)
    layer = Layer(tar_layer([("f", "f", b"content\n")]))
    # The valid blob outside the staging dir, reachable as "../blob",
    # by absolute path and through a symlink.
    outside = os.path.join(os.path.dirname(staging), "blob")
    with open(outside, "wb") as f:
        f.write(layer.blob)
    os.symlink(outside, os.path.join(staging, "link"))
    os.symlink("/etc/shadow", os.path.join(staging, "shadow"))
    os.mkfifo(os.path.join(staging, "fifo"))
    os.mknod(os.path.join(staging, "null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    req = {"blob_digest": layer.digest, "diff_id": layer.diff_id, "lease": "names-test"}
    watch = OpenWatch(staging)
    try:
        for name in ("../blob", outside, "/etc/shadow", "link", "shadow", "fifo", "null",
                     ".", "..", "x" * 256):
            t0 = time.monotonic()
            r = cric_call(suite, "cric.stored.ImportLayer", dict(req, file=name),
                          as_imaged=True)
            assert r["codeName"] in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"), (name, r)
            assert time.monotonic() - t0 < 10, name
        assert watch.opened() == []
        assert blobs_on_disk(suite) == [] and layers_on_disk(suite) == []
        # The proto has no staging_dir any more: a caller cannot name one.
        r = subprocess.run([*AS_IMAGED, CRIC_CALL, "--root", suite.root,
                            "cric.stored.ImportLayer",
                            json.dumps(dict(req, staging_dir="/etc", file="shadow"))],
                           capture_output=True, text=True, timeout=90, cwd="/")
        assert r.returncode != 0 or json.loads(r.stdout)["code"] != 0, r.stdout
        assert watch.opened() == []
        # The plain name of a regular file is imported (and is all that is opened).
        shutil.copy(outside, os.path.join(staging, "good"))
        assert watch.opened() == ["good"]  # the copy's own open
        r = cric_call(suite, "cric.stored.ImportLayer", dict(req, file="good"), as_imaged=True)
        assert r["code"] == 0, r
        assert r["response"]["chain_id"] == layer.diff_id
        assert watch.opened() == ["good"]
        assert blobs_on_disk(suite) == [layer.digest[7:]]
    finally:
        watch.close()
        cric_call(suite, "cric.stored.DropLease", {"lease": "names-test"}, as_imaged=True)
    assert layers_on_disk(suite) == [] and blobs_on_disk(suite) == []


# security.capability v2: cap_net_raw permitted + effective (as setcap writes
# it); a pax value of raw bytes (tarfile writes it with hdrcharset=BINARY).
CAP_NET_RAW_XATTR = bytes([1, 0, 0, 2, 0, 0x20] + [0] * 14)


def test_special_bits_survive_under_storeds_capabilities(suite, reg):
    """stored runs with its declared capabilities only: the setuid, setgid
    and sticky bits and file capabilities of files and directories owned by
    others land as the layer says (without CAP_FSETID the kernel clears
    setgid on chmod of a file whose group is not stored's: Debian's chage,
    2755 root:shadow)."""
    cap = {"pax_headers": {"SCHILY.xattr.security.capability":
                           CAP_NET_RAW_XATTR.decode("utf-8", "surrogateescape")}}
    layer = Layer(tar_layer([
        ("usr", "d"), ("usr/bin", "d"),
        ("usr/bin/chage", "f", b"chage", {"mode": 0o2755, "gid": 42}),
        ("usr/bin/su", "f", b"su", {"mode": 0o4755, "uid": 1000, "gid": 1000}),
        ("usr/bin/both", "f", b"both", {"mode": 0o6751, "uid": 1001, "gid": 1002}),
        ("usr/bin/ping", "f", b"ping", {"mode": 0o755, "uid": 1003, "gid": 1004, **cap}),
        ("srv", "d"),
        ("srv/shared", "d", None, {"mode": 0o2775, "uid": 1000, "gid": 50}),
        ("srv/tmp", "d", None, {"mode": 0o1777, "uid": 1000, "gid": 1000}),
        ("srv/all", "d", None, {"mode": 0o7755, "uid": 1007, "gid": 1008}),
    ]))
    reg.push_image("test/modes", "1", [layer])
    pull(suite, f"{reg.host}/test/modes:1")
    root = os.path.join(store_dir(suite), "layers", layer.diff_id[7:])
    want = {"usr/bin/chage": (0o2755, 0, 42), "usr/bin/su": (0o4755, 1000, 1000),
            "usr/bin/both": (0o6751, 1001, 1002), "usr/bin/ping": (0o755, 1003, 1004),
            "srv/shared": (0o2775, 1000, 50), "srv/tmp": (0o1777, 1000, 1000),
            "srv/all": (0o7755, 1007, 1008)}
    got = {}
    for path in want:
        st = os.lstat(os.path.join(root, path))
        got[path] = (st.st_mode & 0o7777, st.st_uid, st.st_gid)
    assert got == want
    assert os.getxattr(os.path.join(root, "usr/bin/ping"), "security.capability",
                       follow_symlinks=False) == CAP_NET_RAW_XATTR


def configure_stored(suite, stored):
    suite.write_config({"stored": stored})
    suite.kill("stored")
    suite.up()


def test_decompression_limits_and_free_space_reserve(suite, reg):
    """Gzip bombs against small configured limits: per layer and per image
    (what one pull decompresses) on bytes and entries, and the free-space
    reserve of the image file system; each failed pull keeps nothing, and
    the same image pulls once the limits allow it."""
    MiB = 1 << 20
    bomb = Layer(tar_layer([("zeros", "f", bytes(8 * MiB))]))  # 8 MiB from ~8 KiB
    assert len(bomb.blob) < 64 * 1024
    halves = [Layer(tar_layer([(f"z{i}", "f", bytes(3 * MiB))])) for i in range(2)]
    many = Layer(tar_layer([(f"f{i}", "f", b"x") for i in range(50)]))
    few = [Layer(tar_layer([(f"d{i}", "d")] + [(f"d{i}/f{k}", "f", b"y") for k in range(29)]))
           for i in range(2)]
    _, _, bomb_id = reg.push_image("test/bomb", "1", [bomb])
    reg.push_image("test/halves", "1", halves)
    reg.push_image("test/many", "1", [many])
    reg.push_image("test/few", "1", few)

    def refused(name, code, *words):
        c, msg = grpc_error(pull, suite, f"{reg.host}/test/{name}:1")
        assert c == code, (name, c, msg)
        for w in words:
            assert w in msg, (name, msg)
        assert_store_empty(suite)

    configure_stored(suite, {"max_layer_bytes": 4 * MiB, "max_image_bytes": 5 * MiB,
                             "max_layer_entries": 40, "max_image_entries": 45})
    RE = grpc.StatusCode.RESOURCE_EXHAUSTED
    refused("bomb", RE, "limit of 4194304 bytes")
    # Each layer fits 4 MiB, the two together not 5 MiB.
    refused("halves", RE, "stored.max_image_bytes")
    refused("many", grpc.StatusCode.INVALID_ARGUMENT, "limit of 40 entries")
    # 30 entries a layer: under 40 each, 60 over the image's 45.
    refused("few", grpc.StatusCode.INVALID_ARGUMENT, "stored.max_image_entries")

    # Less free space than the reserve: RESOURCE_EXHAUSTED, saying so.
    configure_stored(suite, {"min_free_bytes": 1 << 62})
    refused("bomb", RE, "below the reserve of 4611686018427387904 bytes")

    configure_stored(suite, {"max_layer_bytes": 9 * MiB})
    assert pull(suite, f"{reg.host}/test/bomb:1") == bomb_id
    pull(suite, f"{reg.host}/test/halves:1")
    pull(suite, f"{reg.host}/test/few:1")
    # A wrong type stops stored with the key named.
    suite.write_config({"stored": {"max_image_bytes": "lots"}})
    suite.kill("stored")
    r = suite.up(check=False)
    assert r.returncode != 0
    assert "stored.max_image_bytes" in suite.log("stored")
    suite.write_config({})
    suite.up()


CANARY = "/tmp/cric-canary-" + secrets.token_hex(4)
UP = "../" * 12


def hostile_layers():
    c = CANARY.lstrip("/")
    return {
        "dotdot": ([(UP + c + "/pwned", "f", b"x")], '".." component'),
        "dotdot-inside": ([("a", "d"), ("a/../../" + c + "/pwned", "f", b"x")], '".."'),
        "absolute": ([(CANARY + "/pwned", "f", b"x")], "absolute path"),
        "symlink-escape": ([("esc", "l", CANARY), ("esc/pwned", "f", b"x")], "symlink"),
        "symlink-relative-then-file": ([("up", "l", UP + c), ("up/pwned", "f", b"x")],
                                       "symlink"),
        "symlink-dir-chain": ([("a", "l", "."), ("b", "l", "a/a/a/" + UP + c),
                               ("b/pwned", "f", b"x")], "symlink"),
        "hardlink-dotdot": ([("h", "h", UP + "etc/passwd")], '".."'),
        "hardlink-absolute": ([("h", "h", "/etc/passwd")], "absolute path"),
        "hardlink-through-symlink": ([("s", "l", "/etc"), ("h", "h", "s/passwd")], "symlink"),
        "device": ([("dev", "d"), ("dev/mem", "c", (1, 1))], "device"),
        "huge-name": ([("n" * 300, "f", b"x")], "NAME_MAX"),
        "huge-path": ([("/".join(["d" * 200] * 21) + "/f", "f", b"x")], "PATH_MAX"),
        "overlay-xattr": ([("f", "f", b"x", {"pax_headers": {
            "SCHILY.xattr.trusted.overlay.redirect": "/etc"}})], "overlay"),
        "bad-whiteout": ([(".wh..wh..evil", "f", b"")], "whiteout"),
    }


def test_hostile_layers_fail_and_touch_nothing(suite, reg):
    os.makedirs(CANARY, exist_ok=True)
    try:
        with open("/etc/passwd", "rb") as f:
            passwd = f.read()
        for name, (entries, why) in hostile_layers().items():
            try:
                layer = Layer(tar_layer(entries))
            except (ValueError, OverflowError) as e:  # tarfile refused to write it
                pytest.fail(f"{name}: cannot build: {e}")
            reg.push_image("test/hostile", name, [layer])
            code, msg = grpc_error(pull, suite, f"{reg.host}/test/hostile:{name}")
            assert code != grpc.StatusCode.OK, name
            assert why.lower() in msg.lower(), (name, msg)
            assert os.listdir(CANARY) == [], name
            assert_store_empty(suite)
        with open("/etc/passwd", "rb") as f:
            assert f.read() == passwd
        # A symlink in a lower layer is never followed by an upper one:
        # each layer unpacks into its own directory, so this pulls fine and
        # the upper layer's "d" is a directory of its own.
        lower = Layer(tar_layer([("d", "l", CANARY)]))
        upper = Layer(tar_layer([("d", "d"), ("d/pwned", "f", b"x")]))
        reg.push_image("test/hostile", "cross-layer", [lower, upper])
        pull(suite, f"{reg.host}/test/hostile:cross-layer")
        assert os.listdir(CANARY) == []
    finally:
        shutil.rmtree(CANARY, ignore_errors=True)


def test_concurrent_pulls_download_each_blob_once(suite, reg, bb_layer):
    mid = Layer(tar_layer([("m", "f", os.urandom(200000))]))
    a_top = Layer(tar_layer([("a", "f", os.urandom(100000))]))
    b_top = Layer(tar_layer([("b", "f", os.urandom(100000))]))
    _, _, ida = reg.push_image("test/a", "1", [bb_layer, mid, a_top])
    _, _, idb = reg.push_image("test/b", "1", [bb_layer, mid, b_top])
    refs = [f"{reg.host}/test/a:1"] * 4 + [f"{reg.host}/test/b:1"] * 4
    results, errors = {}, []

    def one(i, ref):
        try:
            results[i] = pull(suite, ref)
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(refs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert [results[i] for i in range(8)] == [ida] * 4 + [idb] * 4
    for layer in (bb_layer, mid, a_top, b_top):
        assert reg.blob_gets(layer.digest) == 1, layer.digest
    # Four layers on disk: the shared two once.
    assert layer_count(suite) == 4
    # Removing one image keeps what the other uses.
    remove(suite, ida)
    assert layer_count(suite) == 3
    remove(suite, f"{reg.host}/test/b:1")
    assert_store_empty(suite)


def test_concurrent_pulls_and_removals_of_images_sharing_layers(suite, reg, bb_layer):
    """Pulls and removals of two images that share their lower layers, from
    many threads at once: a removal collects unheld layers while pulls
    import, find present or publish the shared ones. Every pull succeeds (a
    layer found present or just published is never collected before the
    pull's lease holds it) and the store ends consistent."""
    shared = [Layer(tar_layer([(f"m{i}", "f", os.urandom(2000))])) for i in range(6)]
    a_top = Layer(tar_layer([("a", "f", os.urandom(2000))]))
    b_top = Layer(tar_layer([("b", "f", os.urandom(2000))]))
    _, _, ida = reg.push_image("test/ra", "1", shared + [a_top])
    _, _, idb = reg.push_image("test/rb", "1", shared + [b_top])
    refs = {ida: f"{reg.host}/test/ra:1", idb: f"{reg.host}/test/rb:1"}
    errors = []

    def worker(i):
        mine, other = (ida, idb) if i % 2 == 0 else (idb, ida)
        try:
            for k in range(16):
                image = mine if k % 3 else other
                got = pull(suite, refs[image])
                if got != image:
                    errors.append(f"pull {refs[image]}: {got}")
                remove(suite, image)
        except grpc.RpcError as e:
            errors.append(f"{e.code()}: {e.details()}")
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # Consistent at the end: both images pull, share their lower layers,
    # and their removal leaves nothing.
    assert pull(suite, refs[ida]) == ida and pull(suite, refs[idb]) == idb
    assert layer_count(suite) == len(shared) + 2
    layers = os.path.join(store_dir(suite), "layers")
    assert all(os.path.isdir(os.path.join(layers, n[:-5]))
               for n in os.listdir(layers) if n.endswith(".json"))
    remove(suite, ida)
    remove(suite, idb)
    assert_store_empty(suite)


def test_tags_move_and_removal_by_name(suite, reg, bb_layer):
    one = Layer(tar_layer([("v", "f", b"1")]))
    two = Layer(tar_layer([("v", "f", b"2")]))
    _, _, id1 = reg.push_image("test/t", "v1", [bb_layer, one])
    reg.push_image("test/t", "stable", [bb_layer, one])
    _, _, id2 = reg.push_image("test/t", "v2", [bb_layer, two])
    h = reg.host
    pull(suite, f"{h}/test/t:v1")
    pull(suite, f"{h}/test/t:stable")
    assert sorted(status(suite, id1).image.repo_tags) == [f"{h}/test/t:stable", f"{h}/test/t:v1"]
    # One tag of a two-tag image: only the tag goes.
    remove(suite, f"{h}/test/t:stable")
    assert list(status(suite, id1).image.repo_tags) == [f"{h}/test/t:v1"]
    # A tag moves to the image it names now.
    reg.push_image("test/t", "v1", [bb_layer, two])
    assert pull(suite, f"{h}/test/t:v1") == id2
    assert list(status(suite, id1).image.repo_tags) == []
    assert status(suite, f"{h}/test/t:v1").image.id == id2
    # Records survive a restart of imaged.
    suite.kill("imaged")
    suite.up()
    assert sorted(i.id for i in images(suite)) == sorted([id1, id2])
    remove(suite, id1)
    remove(suite, id2)
    assert_store_empty(suite)


@pytest.mark.parametrize("victim", ["imaged", "stored"])
def test_kill9_mid_pull_then_pull_again(suite, reg, tmp_path, bb_layer, victim):
    big = Layer(tar_layer([("big", "f", os.urandom(2 * 1024 * 1024))]), "none")
    _, _, cd = reg.push_image("test/k", "1", [bb_layer, big])
    proxy = SlowProxy(tmp_path, reg.host, rate=256 * 1024).start()
    try:
        ref = f"{proxy.host}/test/k:1"
        fut = suite.cri.future("PullImage", api.PullImageRequest(image=spec(ref)),
                               api.PullImageResponse, timeout=120)
        wait_for(proxy.started, timeout=30, what="a blob download to start")
        suite.kill(victim)
        if victim == "imaged":
            with pytest.raises(grpc.RpcError):
                fut.result()
        suite.up()
        if victim == "stored":
            try:
                fut.result()
            except grpc.RpcError:
                pass
        assert pull(suite, ref) == cd
        assert staging_files(suite) == []
        assert not [n for n in os.listdir(os.path.join(store_dir(suite), "layers"))
                    if n.startswith(".tmp")]
        assert layer_count(suite) == 2
        remove(suite, cd)
        assert_store_empty(suite)
    finally:
        proxy.stop()


def _du(path, *args):
    out = subprocess.run(["du", "-s", "--exclude=containers", *args, path], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[0])


def test_image_fs_info_matches_du(suite, reg, bb_layer):
    reg.push_image("test/fs", "1", [bb_layer, Layer(tar_layer([("x", "f", b"y" * 10000),
                                                               ("hl", "h", "x")]))])
    pull(suite, f"{reg.host}/test/fs:1")
    r = suite.cri.call("ImageFsInfo", api.ImageFsInfoRequest(), api.ImageFsInfoResponse)
    fs = r.image_filesystems[0]
    d = store_dir(suite)
    assert fs.fs_id.mountpoint == d
    assert fs.used_bytes.value == _du(d, "-B1")
    assert fs.inodes_used.value == _du(d, "--inodes")
    assert fs.used_bytes.value > 2 * 1024 * 1024  # the busybox blob and its layer
    c = r.container_filesystems[0]
    assert c.fs_id.mountpoint == os.path.join(d, "containers")
    assert c.inodes_used.value >= 1


def test_a_stalled_download_fails_with_deadline_exceeded(suite, reg, tmp_path):
    layer = Layer(tar_layer([("f", "f", os.urandom(100000))]))
    _, _, cd = reg.push_image("test/stall", "1", [layer])
    configure(suite, {"pull_progress_timeout_seconds": 2})
    proxy = SlowProxy(tmp_path, reg.host, rate=0).start()
    try:
        code, msg = grpc_error(pull, suite, f"{proxy.host}/test/stall:1")
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, msg
        assert_store_empty(suite)
    finally:
        proxy.stop()
    assert pull(suite, f"{reg.host}/test/stall:1") == cd


def _pull_outcome(suite, ref, timeout=120):
    """(image id or None, grpc code or None, details, seconds taken)."""
    t0 = time.monotonic()
    try:
        return pull(suite, ref, timeout=timeout), None, "", time.monotonic() - t0
    except grpc.RpcError as e:
        return None, e.code(), e.details(), time.monotonic() - t0


def _in_threads(fns):
    out = [None] * len(fns)

    def run(i):
        out[i] = fns[i]()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_a_trickling_registry_fails_on_progress_while_others_pull(suite, reg, tmp_path):
    """A registry sending a layer 2 bytes every half second (never silent
    for long) fails its pulls with DEADLINE_EXCEEDED within the progress
    timeout, naming the registry and the blob, both the pull downloading it
    and the one waiting for that download; pulls from a healthy registry at
    the same time complete; afterwards every slot is free."""
    slow = Layer(tar_layer([("t", "f", os.urandom(50000))]))
    reg.push_image("test/trickle", "1", [slow])
    healthy = []
    for i in range(4):
        layer = Layer(tar_layer([(f"h{i}", "f", os.urandom(100000))]))
        healthy.append((f"{reg.host}/test/ok{i}:1", reg.push_image(f"test/ok{i}", "1",
                                                                   [layer])[2]))
    configure(suite, {"pull_progress_timeout_seconds": 2})
    proxy = SlowProxy(tmp_path, reg.host, chunk=2, interval=0.5, only=[slow.digest]).start()
    try:
        trickled = f"{proxy.host}/test/trickle:1"
        out = _in_threads([lambda: _pull_outcome(suite, trickled)] * 2 +
                          [lambda r=r: _pull_outcome(suite, r) for r, _ in healthy[:3]])
        for _, code, msg, took in out[:2]:
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED, msg
            assert proxy.host in msg and slow.digest in msg and "stalled" in msg, msg
            assert took < 2 + 6, (took, msg)
        assert [o[0] for o in out[2:]] == [cd for _, cd in healthy[:3]], out[2:]
        # No slot is left held: a fourth image (one slot) pulls at once.
        got, code, msg, took = _pull_outcome(suite, healthy[3][0])
        assert got == healthy[3][1], msg
        assert took < 10
        assert staging_files(suite) == []
    finally:
        proxy.stop()


def test_a_slow_registry_cannot_hold_every_slot_nor_shared_downloads(suite, reg, tmp_path):
    """A registry trickling all three layers of an image takes at most two of
    the three download slots, and its downloads are shared only with pulls
    from itself: the same image from a healthy registry pulls promptly
    while the trickling pull still runs (its timeout is 15 s), which then
    fails on progress."""
    layers = [Layer(tar_layer([(f"s{i}", "f", os.urandom(30000))])) for i in range(3)]
    _, _, cd = reg.push_image("test/shared", "1", layers)
    configure(suite, {"pull_progress_timeout_seconds": 15, "max_concurrent_downloads": 3})
    proxy = SlowProxy(tmp_path, reg.host, chunk=2, interval=0.5,
                      only=[x.digest for x in layers]).start()
    try:
        t0 = time.monotonic()
        fut = suite.cri.future("PullImage",
                               api.PullImageRequest(image=spec(f"{proxy.host}/test/shared:1")),
                               api.PullImageResponse, timeout=120)
        wait_for(proxy.started, timeout=30, what="the trickled download to start")
        got, code, msg, took = _pull_outcome(suite, f"{reg.host}/test/shared:1")
        assert got == cd, msg
        assert took < 8, took
        assert not fut.done()
        with pytest.raises(grpc.RpcError) as e:
            fut.result()
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
        assert proxy.host in e.value.details()
        assert time.monotonic() - t0 < 15 + 10
    finally:
        proxy.stop()
    assert staging_files(suite) == []


def test_a_pull_stops_at_its_callers_deadline(suite, reg, tmp_path):
    """crictl sets a deadline on PullImage: past it nobody waits for the
    pull, and imaged stops it (here a trickle that counts as progress at a
    floor of one byte)."""
    slow = Layer(tar_layer([("d", "f", os.urandom(20000))]))
    reg.push_image("test/deadline", "1", [slow])
    configure(suite, {"pull_progress_timeout_seconds": 60, "pull_progress_min_bytes": 1})
    proxy = SlowProxy(tmp_path, reg.host, chunk=2, interval=0.5, only=[slow.digest]).start()
    try:
        code, msg = grpc_error(pull, suite, f"{proxy.host}/test/deadline:1", timeout=3)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, msg
        wait_for(lambda: "the caller's deadline passed" in suite.log("imaged"), timeout=10,
                 what="imaged to stop the pull")
        wait_for(lambda: staging_files(suite) == [], timeout=10, what="staging to empty")
    finally:
        proxy.stop()
    assert pull(suite, f"{reg.host}/test/deadline:1")


def test_a_cancelled_pull_stops_and_frees_its_slot(suite, reg, tmp_path):
    """A client that cancels its PullImage (the kubelet going away, crictl's
    ^C): the gateway tells imaged, which stops the download within about a
    second (a trickle that counts as progress: nothing else would stop it
    for an hour), drops its staging file and frees its one download slot:
    a pull from a healthy registry right after gets it at once."""
    slow = Layer(tar_layer([("x", "f", os.urandom(20000))]))
    reg.push_image("test/cancel", "1", [slow])
    ok = Layer(tar_layer([("y", "f", os.urandom(50000))]))
    _, _, ok_id = reg.push_image("test/after-cancel", "1", [ok])
    configure(suite, {"pull_progress_timeout_seconds": 60, "pull_progress_min_bytes": 1,
                      "max_concurrent_downloads": 1})
    proxy = SlowProxy(tmp_path, reg.host, chunk=2, interval=0.5, only=[slow.digest]).start()
    try:
        fut = suite.cri.future("PullImage",
                               api.PullImageRequest(image=spec(f"{proxy.host}/test/cancel:1")),
                               api.PullImageResponse, timeout=120)
        wait_for(proxy.started, timeout=30, what="the trickled download to start")
        wait_for(lambda: len(staging_files(suite)) == 1, timeout=10, what="a staging file")
        t0 = time.monotonic()
        assert fut.cancel()
        wait_for(lambda: f"{slow.digest}: cancelled" in suite.log("imaged"), timeout=10,
                 what="imaged to stop the cancelled download")
        took = time.monotonic() - t0
        assert took < 3, took
        log = suite.log("imaged")
        assert "cancelled by the caller: request" in log, log[-2000:]
        assert "cancelled by the client" in suite.log("gateway")
        wait_for(lambda: staging_files(suite) == [], timeout=5, what="staging to empty")
        got, code, msg, took = _pull_outcome(suite, f"{reg.host}/test/after-cancel:1")
        assert got == ok_id, msg
        assert took < 10, took
        assert len(images(suite, f"{proxy.host}/test/cancel:1")) == 0
    finally:
        proxy.stop()


def test_the_gateways_cap_does_not_stop_a_pull(suite, reg, tmp_path):
    """The kubelet sets no deadline on PullImage; the gateway caps such a
    call at max_request_seconds and answers DEADLINE_EXCEEDED then, but the
    pull runs on (bounded by progress) and completes: an image too big for
    the cap is pulled all the same."""
    slow = Layer(tar_layer([("c", "f", os.urandom(20000))]), "none")
    _, _, cd = reg.push_image("test/capped", "1", [slow])
    suite.write_config({"max_request_seconds": 2,
                        "imaged": {"pull_progress_timeout_seconds": 60,
                                   "pull_progress_min_bytes": 1}})
    suite.kill("gateway")
    suite.kill("imaged")
    suite.up()
    proxy = SlowProxy(tmp_path, reg.host, chunk=2000, interval=0.5, only=[slow.digest]).start()
    try:
        ref = f"{proxy.host}/test/capped:1"
        code, msg = grpc_error(pull, suite, ref, timeout=None)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, msg
        wait_for(lambda: len(images(suite, ref)) == 1, timeout=30,
                 what="the pull to complete after the gateway's answer")
        assert images(suite, ref)[0].id == cd
    finally:
        proxy.stop()


def test_annotations_are_kept(suite, reg, bb_layer):
    _, _, cd = reg.push_image("test/ann", "1", [bb_layer])
    req = api.PullImageRequest(image=api.ImageSpec(image=f"{reg.host}/test/ann:1",
                                                   annotations={"team": "cric", "x": "y"}))
    assert suite.cri.call("PullImage", req, api.PullImageResponse).image_ref == cd
    assert dict(status(suite, cd).image.spec.annotations) == {"team": "cric", "x": "y"}
    suite.kill("imaged")
    suite.up()
    assert dict(images(suite)[0].spec.annotations) == {"team": "cric", "x": "y"}


def test_pinned_images(suite, reg, bb_layer):
    _, _, cd = reg.push_image("test/pause", "3", [bb_layer])
    configure(suite, {"pinned_images": [f"{reg.host}/test/pause:3"]})
    pull(suite, f"{reg.host}/test/pause:3")
    assert status(suite, cd).image.pinned is True
    _, _, other = reg.push_image("test/other", "1", [Layer(tar_layer([("o", "f", b"o")]))])
    pull(suite, f"{reg.host}/test/other:1")
    assert status(suite, other).image.pinned is False


# --- audit findings ---


def _token_grants(registry, who):
    """Tokens the token server issued to `who` ("-" for anonymous)."""
    with open(registry.token_log) as f:
        return sum(1 for line in f if line.strip() == f"token {who}")


def test_tokens_are_never_shared_across_credentials(suite, tmp_path, bb_layer):
    # The token server grants iu.USER only. Once that user pulled (and a
    # token for the repository is cached), nobody else may ride on it.
    open_reg = Registry(tmp_path / "open").start()
    _, _, cd = open_reg.push_image("private/app", "v1", [bb_layer])
    authed = Registry(tmp_path / "auth", storage=open_reg.storage).start(auth="token")
    try:
        ref = f"{authed.host}/private/app:v1"
        assert pull(suite, ref, auth=_auth()) == cd
        granted = _token_grants(authed, iu.USER)
        assert granted >= 1
        others = [None, _auth(password="wrong-password"),
                  api.AuthConfig(auth=iu.auth_b64(password="also-wrong")),
                  _auth(user="mallory", password=iu.PASSWORD)]
        for _ in range(3):
            for auth in others:
                code, msg = grpc_error(pull, suite, ref, auth=auth)
                assert code == grpc.StatusCode.PERMISSION_DENIED, (auth, msg)
            # The user's own pulls keep using its cached token (also
            # through the base64 "auth" form of the same credentials).
            assert pull(suite, ref, auth=_auth()) == cd
            assert pull(suite, ref, auth=api.AuthConfig(auth=iu.auth_b64())) == cd
        assert _token_grants(authed, iu.USER) == granted
        text = suite.log("imaged")
        assert iu.PASSWORD not in text and "wrong-password" not in text
    finally:
        authed.stop()
        open_reg.stop()


def _host_arch():
    import platform
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())


def test_pull_by_index_digest_is_found_by_that_digest(suite, reg, bb_layer):
    host = _host_arch()
    if host is None:
        pytest.skip(f"test written for amd64 and arm64 hosts, not {os.uname().machine}")
    entries, mds = [], {}
    for arch in ("amd64", "arm64"):
        marker = Layer(tar_layer([("arch", "f", arch.encode())]))
        md, ms, cd = reg.push_image("test/idx", arch, [bb_layer, marker], arch=arch)
        entries.append((md, ms, f"linux/{arch}"))
        mds[arch] = (md, cd)
    idx, _ = reg.push_index("test/idx", "multi", entries)
    repo = f"{reg.host}/test/idx"
    by_index = f"{repo}@{idx}"
    configure(suite, {"pinned_images": [by_index]})
    md, cd = mds[host]

    assert pull(suite, by_index) == cd
    img = status(suite, by_index).image
    assert img.id == cd
    assert sorted(img.repo_digests) == sorted([by_index, f"{repo}@{md}"])
    assert list(img.repo_tags) == []
    assert [i.id for i in images(suite, by_index)] == [cd]
    assert img.pinned is True
    assert status(suite, f"{repo}@{md}").image.id == cd
    # Removal by the index digest removes it.
    remove(suite, by_index)
    assert not status(suite, by_index).HasField("image")
    assert_store_empty(suite)

    # By tag: the index digest the tag resolved to is a repo digest too
    # (as containerd reports it), so a kubelet pinning it finds the image.
    assert pull(suite, f"{repo}:multi") == cd
    assert status(suite, by_index).image.id == cd
    assert sorted(status(suite, cd).image.repo_digests) == sorted([by_index, f"{repo}@{md}"])


def _chain_ids(suite, image_id):
    return json.loads(status(suite, image_id, verbose=True).info["info"])["chainIDs"]


def _stored_image_refs(suite):
    with open(os.path.join(store_dir(suite), "refs.json")) as f:
        return json.load(f).get("images", {})


def test_remove_racing_pull_never_leaves_a_record_without_layers(suite, reg, bb_layer):
    # RemoveImage drops the record, then has stored release the layers; a
    # pull of the same image commits (stored, then the record) in between
    # unless the two are serialised: the record comes back, its layers go.
    top = Layer(tar_layer([("race", "f", b"r" * 1000)]))
    _, _, cd = reg.push_image("test/race", "1", [bb_layer, top])
    ref = f"{reg.host}/test/race:1"
    # Another image holding the same layers keeps every pull on the fast
    # path (no download), so pulls and removals take alike long and their
    # steps interleave; the removal starts a few ImageStatus calls later
    # each round, sweeping it across the pull's commit.
    _, _, keeper = reg.push_image("test/race", "keeper", [bb_layer, top],
                                  config_extra={"author": "keeper"})
    pull(suite, f"{reg.host}/test/race:keeper")
    layer_dir = os.path.join(store_dir(suite), "layers")
    inconsistent = []
    for rnd in range(60):
        pull(suite, ref)
        errors = []
        barrier = threading.Barrier(2)

        def puller():
            try:
                barrier.wait()
                pull(suite, ref)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        def remover(lag=rnd % 6):
            try:
                barrier.wait()
                for _ in range(lag):
                    status(suite, keeper)
                remove(suite, cd)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        threads = [threading.Thread(target=puller), threading.Thread(target=remover)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        # Every listed image is held in stored, with its layers present.
        refs = _stored_image_refs(suite)
        for img in images(suite):
            chains = _chain_ids(suite, img.id)
            if refs.get(img.id) != chains:
                inconsistent.append(rnd)
            for chain in chains:
                assert os.path.exists(os.path.join(layer_dir, chain[7:] + ".json")), rnd
    assert inconsistent == [], f"records stored does not hold after rounds {inconsistent}"
    # With the keeper gone too, nothing is left.
    remove(suite, cd)
    remove(suite, keeper)
    assert_store_empty(suite)


def test_image_for_another_platform_is_refused(suite, reg, bb_layer):
    host = _host_arch()
    if host is None:
        pytest.skip(f"test written for amd64 and arm64 hosts, not {os.uname().machine}")
    other = "s390x"
    # A single manifest whose config says s390x.
    reg.push_image("test/foreign", "single", [bb_layer], arch=other)
    code, msg = grpc_error(pull, suite, f"{reg.host}/test/foreign:single")
    assert code == grpc.StatusCode.FAILED_PRECONDITION, msg
    assert f"linux/{other}" in msg and f"linux/{host}" in msg, msg
    assert_store_empty(suite)
    # 32-bit arm on a 64-bit x86 host (the variant named).
    reg.push_image("test/foreign", "arm", [bb_layer], arch="arm", variant="v7")
    if host == "amd64":
        code, msg = grpc_error(pull, suite, f"{reg.host}/test/foreign:arm")
        assert code == grpc.StatusCode.FAILED_PRECONDITION, msg
        assert "linux/arm/v7" in msg, msg
    # An index entry without a platform whose config is foreign.
    md, ms, _ = reg.push_image("test/foreign", "unlabelled-child", [bb_layer], arch=other)
    doc = {"schemaVersion": 2, "mediaType": iu.OCI_INDEX,
           "manifests": [{"mediaType": iu.OCI_MANIFEST, "digest": md, "size": ms}]}
    reg.push_manifest("test/foreign", "unlabelled", doc, iu.OCI_INDEX)
    code, msg = grpc_error(pull, suite, f"{reg.host}/test/foreign:unlabelled")
    assert code == grpc.StatusCode.FAILED_PRECONDITION, msg
    assert f"linux/{other}" in msg, msg
    assert_store_empty(suite)
    # This host's own image still pulls.
    _, _, cd = reg.push_image("test/foreign", "native", [bb_layer], arch=host)
    assert pull(suite, f"{reg.host}/test/foreign:native") == cd
