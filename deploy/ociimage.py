"""Small OCI images built from files on this host, pushed through the
registry HTTP API into Debian's docker-registry on loopback: no network
beyond 127.0.0.1, Python's standard library only.

`make demo` (deploy/cric-demo) and the integration tests
(tests/integration/imageutil.py, which adds auth and slow fronts) share it.

    reg = Registry(dir).start()          # a free port on 127.0.0.1
    reg.push_image("demo/busybox", "1", [Layer(busybox_layer())])
    ... pull f"{reg.host}/demo/busybox:1" ...
    reg.stop()
"""
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request

REGISTRY_BIN = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "zstd"): "application/vnd.docker.image.rootfs.diff.tar.zstd",
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
}


def missing():
    """What this module needs and the host lacks, or None."""
    if not os.access(REGISTRY_BIN, os.X_OK):
        return f"{REGISTRY_BIN} is not installed (Debian package docker-registry)"
    if not os.access(BUSYBOX, os.X_OK):
        return f"{BUSYBOX} is not installed (Debian package busybox-static)"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    """True when nothing listens on port of 127.0.0.1 (a closed listener's
    TIME_WAIT connections do not count: the registry reuses the address)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_port(port, proc, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# --- layers ---

def tar_layer(entries):
    """entries: (name, kind, arg, extra) with kind f (arg: bytes), d, l (symlink
    target), h (hardlink target), c (char device (major, minor)), p (fifo);
    extra: dict of TarInfo attributes (mode, uid, ...)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            name, kind = e[0], e[1]
            arg = e[2] if len(e) > 2 else None
            extra = e[3] if len(e) > 3 else {}
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.mode = 0o755 if kind == "d" else 0o644
            data = None
            if kind == "f":
                data = arg or b""
                ti.size = len(data)
            elif kind == "d":
                ti.type = tarfile.DIRTYPE
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
            elif kind == "c":
                ti.type, (ti.devmajor, ti.devminor) = tarfile.CHRTYPE, arg
            elif kind == "p":
                ti.type = tarfile.FIFOTYPE
            for k, v in extra.items():
                setattr(ti, k, v)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(tar, how):
    if how == "gzip":
        return gzip.compress(tar, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True,
                              check=True).stdout
    return tar


def busybox_layer(applets=()):
    """/bin/busybox, /bin/sh, a root-only /etc/passwd, and a symlink
    /bin/<applet> for each of applets."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    return tar_layer([("bin", "d"), ("bin/busybox", "f", bb, {"mode": 0o755}),
                      ("bin/sh", "l", "busybox"),
                      *[(f"bin/{a}", "l", "busybox") for a in applets],
                      ("etc", "d"),
                      ("etc/passwd", "f", b"root:x:0:0:root:/root:/bin/sh\n")])


class Layer:
    def __init__(self, tar, how="gzip", flavour="oci"):
        self.tar = tar
        self.blob = compress(tar, how)
        self.diff_id = sha256(tar)
        self.digest = sha256(self.blob)
        self.media_type = LAYER_TYPES[(flavour, how)]


# --- registry ---

class Registry:
    """Debian's docker-registry serving `storage` on 127.0.0.1, its config
    file and log in `tmp`."""

    def __init__(self, tmp, storage=None):
        self.tmp = str(tmp)
        os.makedirs(self.tmp, exist_ok=True)
        self.storage = storage or os.path.join(self.tmp, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.procs = []
        self.proc = None
        self.port = None
        self.log = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def serve(self, port=None, auth_cfg=""):
        """Start serving on port (a free one when None); auth_cfg: the
        config's `auth:` section, if any."""
        self.port = port or free_port()
        cfg = os.path.join(self.tmp, f"registry-{self.port}.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n{auth_cfg}")
        self.log = os.path.join(self.tmp, f"registry-{self.port}.log")
        with open(self.log, "ab") as out:
            p = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        self.proc = p
        wait_port(self.port, p)
        return self

    def start(self, port=None):
        return self.serve(port)

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []

    # --- pushing (open registries only) ---

    def _req(self, method, path, data=None, headers=None):
        url = path if path.startswith("http") else f"http://{self.host}{path}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def _expect(self, what, got, want, body):
        if got != want:
            raise RuntimeError(f"{what}: registry answered {got}, not {want}: {body[:200]!r}")

    def push_blob(self, repo, data):
        digest = sha256(data)
        st, _, _ = self._req("HEAD", f"/v2/{repo}/blobs/{digest}")
        if st == 200:
            return digest
        st, h, body = self._req("POST", f"/v2/{repo}/blobs/uploads/")
        self._expect(f"start upload to {repo}", st, 202, body)
        loc = h["Location"]
        if not loc.startswith("http"):
            loc = f"http://{self.host}{loc}"
        sep = "&" if "?" in loc else "?"
        st, _, body = self._req("PUT", f"{loc}{sep}digest={digest}", data=data,
                                headers={"Content-Type": "application/octet-stream"})
        self._expect(f"upload {digest} to {repo}", st, 201, body)
        return digest

    def push_manifest(self, repo, ref, doc, media_type):
        data = json.dumps(doc).encode()
        st, _, body = self._req("PUT", f"/v2/{repo}/manifests/{ref}", data=data,
                                headers={"Content-Type": media_type})
        self._expect(f"put manifest {repo}:{ref}", st, 201, body)
        return sha256(data), len(data)

    def push_image(self, repo, tag, layers, flavour="oci", arch="amd64", variant=None,
                   user="", config_extra=None, diff_ids=None):
        """An image of these Layers; returns (manifest digest, size, config digest)."""
        for layer in layers:
            self.push_blob(repo, layer.blob)
        config = {"architecture": arch, "os": "linux",
                  "config": {"User": user, "Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers",
                             "diff_ids": diff_ids or [layer.diff_id for layer in layers]}}
        if variant:
            config["variant"] = variant
        config.update(config_extra or {})
        cdata = json.dumps(config).encode()
        cdigest = self.push_blob(repo, cdata)
        oci = flavour == "oci"
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
                       "digest": cdigest, "size": len(cdata)},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest,
                        "size": len(layer.blob)} for layer in layers],
        }
        mdigest, msize = self.push_manifest(repo, tag, manifest, manifest["mediaType"])
        return mdigest, msize, cdigest

    def push_index(self, repo, tag, entries, flavour="oci"):
        """entries: (manifest digest, size, os/arch[/variant])."""
        oci = flavour == "oci"
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX if oci else DOCKER_LIST,
               "manifests": []}
        for digest, size, plat in entries:
            parts = plat.split("/")
            p = {"os": parts[0], "architecture": parts[1]}
            if len(parts) > 2:
                p["variant"] = parts[2]
            doc["manifests"].append({"mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
                                     "digest": digest, "size": size, "platform": p})
        return self.push_manifest(repo, tag, doc, doc["mediaType"])
