"""Images for the image tests, built here and pushed through the registry
HTTP API into Debian's docker-registry on loopback (random free ports,
temp storage); no network beyond 127.0.0.1. The building and pushing are
deploy/ociimage.py's (which `make demo` uses too); auth and slow fronts are
the tests' own.

Registry(tmp).start() serves open; .start(auth="token") and
.start(auth="basic") serve the same storage behind token (registry-fixture's
token server) or htpasswd auth, so content is pushed once, without auth,
and pulled through any of them. Each registry's access log lets tests count
the blob downloads.
"""
import base64
import os
import subprocess
import sys

from conftest import REPO

# The image building and pushing `make demo` uses too (standard library only).
sys.path.insert(0, os.path.join(REPO, "deploy"))
from ociimage import (  # noqa: E402,F401  (re-exported for the tests)
    DOCKER_CONFIG, DOCKER_LIST, DOCKER_MANIFEST, LAYER_TYPES, OCI_CONFIG, OCI_INDEX,
    OCI_MANIFEST, REGISTRY_BIN, Layer, busybox_layer, compress, free_port, sha256,
    tar_layer, wait_port)
import ociimage  # noqa: E402

FIXTURE = os.path.join(REPO, "tests", "unit", "registry-fixture.py")
PYTHON = "/usr/bin/python3"
USER, PASSWORD = "cric", "s3cret-pass"


def missing():
    why = ociimage.missing()
    if why:
        return why
    try:
        import cryptography  # noqa: F401  (the token server needs it)
    except ImportError:
        return "python3-cryptography is not installed"
    return None


# --- registry ---

class Registry(ociimage.Registry):
    """ociimage's registry, open or behind token or basic auth, with its
    access log counted."""

    def start(self, auth=None, port=None):
        port = port or free_port()
        auth_cfg = ""
        if auth == "token":
            key, crt = os.path.join(self.tmp, "token.key"), os.path.join(self.tmp, "token.crt")
            subprocess.run([PYTHON, FIXTURE, "certgen", key, crt], check=True)
            tport = free_port()
            self.token_log = os.path.join(self.tmp, f"tokens-{port}.log")
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
        return self.serve(port, auth_cfg)

    def blob_gets(self, digest):
        """GET requests for a blob this registry answered (its access log)."""
        with open(self.log, errors="replace") as f:
            return sum(1 for line in f if f'"GET /v2/' in line and f"/blobs/{digest}" in line)


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
