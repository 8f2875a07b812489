"""Images for the image tests, built here and pushed through the registry
HTTP API into Debian's docker-registry on loopback (random free ports,
temp storage); no network beyond 127.0.0.1.

Registry(tmp).start() serves open; .start(auth="token") and
.start(auth="basic") serve the same storage behind token (registry-fixture's
token server) or htpasswd auth, so content is pushed once, without auth,
and pulled through any of them. Each registry's access log lets tests count
the blob downloads.
"""
import base64
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

from conftest import REPO

REGISTRY_BIN = "/usr/bin/docker-registry"
FIXTURE = os.path.join(REPO, "tests", "unit", "registry-fixture.py")
PYTHON = "/usr/bin/python3"
USER, PASSWORD = "cric", "s3cret-pass"

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
    if not os.access(REGISTRY_BIN, os.X_OK):
        return "docker-registry is not installed"
    try:
        import cryptography  # noqa: F401  (the token server needs it)
    except ImportError:
        return "python3-cryptography is not installed"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_port(port, proc, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


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


def busybox_layer():
    with open("/bin/busybox", "rb") as f:
        bb = f.read()
    return tar_layer([("bin", "d"), ("bin/busybox", "f", bb, {"mode": 0o755}),
                      ("bin/sh", "l", "busybox"), ("etc", "d"),
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
    def __init__(self, tmp, storage=None):
        self.tmp = str(tmp)
        os.makedirs(self.tmp, exist_ok=True)
        self.storage = storage or os.path.join(self.tmp, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.procs = []
        self.port = None
        self.log = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self, auth=None, port=None):
        self.port = port or free_port()
        auth_cfg = ""
        if auth == "token":
            key, crt = os.path.join(self.tmp, "token.key"), os.path.join(self.tmp, "token.crt")
            subprocess.run([PYTHON, FIXTURE, "certgen", key, crt], check=True)
            tport = free_port()
            self.token_log = os.path.join(self.tmp, f"tokens-{self.port}.log")
            p = subprocess.Popen([PYTHON, FIXTURE, "token", str(tport), key, crt, "cric-test",
                                  "cric-issuer", USER, PASSWORD, self.token_log])
            self.procs.append(p)
            wait_port(tport, p)
            auth_cfg = (f"auth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n"
                        f"    service: cric-test\n    issuer: cric-issuer\n"
                        f"    rootcertbundle: {crt}\n")
        elif auth == "basic":
            h = subprocess.run([PYTHON, FIXTURE, "bcrypt", PASSWORD], capture_output=True,
                               text=True, check=True).stdout.strip()
            htp = os.path.join(self.tmp, "htpasswd")
            with open(htp, "w") as f:
                f.write(f"{USER}:{h}\n")
            auth_cfg = f"auth:\n  htpasswd:\n    realm: cric-basic\n    path: {htp}\n"
        cfg = os.path.join(self.tmp, f"registry-{self.port}.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n{auth_cfg}")
        self.log = os.path.join(self.tmp, f"registry-{self.port}.log")
        with open(self.log, "ab") as out:
            p = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=out,
                                 stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.proc = p
        wait_port(self.port, p)
        return self

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []

    def blob_gets(self, digest):
        """GET requests for a blob this registry answered (its access log)."""
        with open(self.log, errors="replace") as f:
            return sum(1 for line in f if f'"GET /v2/' in line and f"/blobs/{digest}" in line)

    # --- pushing (open registries only) ---

    def _req(self, method, path, data=None, headers=None):
        url = path if path.startswith("http") else f"http://{self.host}{path}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def push_blob(self, repo, data):
        digest = sha256(data)
        st, _, _ = self._req("HEAD", f"/v2/{repo}/blobs/{digest}")
        if st == 200:
            return digest
        st, h, body = self._req("POST", f"/v2/{repo}/blobs/uploads/")
        assert st == 202, (st, body)
        loc = h["Location"]
        if not loc.startswith("http"):
            loc = f"http://{self.host}{loc}"
        sep = "&" if "?" in loc else "?"
        st, _, body = self._req("PUT", f"{loc}{sep}digest={digest}", data=data,
                                headers={"Content-Type": "application/octet-stream"})
        assert st == 201, (st, body)
        return digest

    def push_manifest(self, repo, ref, doc, media_type):
        data = json.dumps(doc).encode()
        st, _, body = self._req("PUT", f"/v2/{repo}/manifests/{ref}", data=data,
                                headers={"Content-Type": media_type})
        assert st == 201, (st, body)
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


def auth_b64(user=USER, password=PASSWORD):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# --- a slow front for a registry ---

SLOW_PROXY = r"""
import sys, time, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, upstream, rate, marker = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
chunk, interval = int(sys.argv[5]), float(sys.argv[6])
only = set(sys.argv[7].split(",")) if len(sys.argv) > 7 else None
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def handle_one(self, head):
        req = urllib.request.Request(upstream + self.path, method=self.command,
                                     headers={k: v for k, v in self.headers.items()
                                              if k.lower() not in ("host", "connection")})
        try:
            r = urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as e:
            r = e
        body_slow = "/blobs/" in self.path and not head and (
            only is None or self.path.rsplit("/", 1)[-1] in only)
        self.send_response(r.status if hasattr(r, "status") else r.code)
        for k, v in r.headers.items():
            if k.lower() not in ("connection", "transfer-encoding"):
                self.send_header(k, v)
        self.end_headers()
        if head:
            return
        if body_slow:
            open(marker, "a").close()
            if rate == 0:  # stall: headers, then nothing
                time.sleep(120)
                return
        while True:
            data = r.read(chunk if body_slow else 65536)
            if not data:
                break
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                return
            if body_slow:
                time.sleep(interval)
    def do_GET(self):
        self.handle_one(False)
    def do_HEAD(self):
        self.handle_one(True)
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


class SlowProxy:
    """Serves a registry's content at `rate` bytes/s for blobs (touching
    `marker` when a blob download starts), so tests can act mid-pull; or,
    with chunk and interval, `chunk` bytes every `interval` seconds (a
    trickle: 2 bytes every 0.5 s); `only` (digests) limits the slowness to
    those blobs."""

    def __init__(self, tmp, upstream, rate=256 * 1024, port=None, chunk=None, interval=0.1,
                 only=None):
        self.port = port or free_port()
        self.marker = os.path.join(str(tmp), f"blob-started-{self.port}")
        self.args = [PYTHON, "-c", SLOW_PROXY, str(self.port), f"http://{upstream}",
                     str(rate), self.marker, str(chunk or rate // 10), str(interval)]
        if only:
            self.args.append(",".join(only))
        self.proc = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        if os.path.exists(self.marker):
            os.unlink(self.marker)
        self.proc = subprocess.Popen(self.args)
        wait_port(self.port, self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def started(self):
        return os.path.exists(self.marker)
