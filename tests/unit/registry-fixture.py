#!/usr/bin/python3
"""Helpers for test-imaged-registry: a docker-registry token server and the
secrets it needs. No network beyond loopback.

  registry-fixture.py certgen KEY CERT       EC P-256 key + self-signed cert
  registry-fixture.py bcrypt PASSWORD        an htpasswd line's hash
  registry-fixture.py token PORT KEY CERT SERVICE ISSUER USER PASSWORD LOG
      serve GET /token?service=&scope= on 127.0.0.1:PORT: with Basic
      USER:PASSWORD it grants what the scope asks; anonymous requests get a
      token granting nothing; wrong credentials get 401. Each token issued
      appends "token <user>" to LOG before the response is sent.
  registry-fixture.py redirect PORT FILE LOG
      serve a registry on 127.0.0.1:PORT whose only blob is FILE's content,
      behind Basic auth (any credentials), redirecting GET /v2/*/blobs/* to
      http://localhost:PORT/storage (another host name): what blob storage
      does. Each /storage request appends "storage auth=yes|no" to LOG.
  registry-fixture.py trickle PORT FILE
      serve a registry on 127.0.0.1:PORT whose only blob is FILE's content,
      sent 2 bytes every half second (the right Content-Length, the right
      bytes): a registry that holds a download without stalling outright.
      Its manifests want a bearer token from its own /token, which trickles
      the same way.
"""
import base64
import datetime
import json
import sys
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def certgen(key_path, cert_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cric-test-token")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def serve_tokens(port, key_path, cert_path, service, issuer, user, password, log):
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def token(subject, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
        claims = {"iss": issuer, "sub": subject, "aud": service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            got = self.headers.get("Authorization")
            if url.path != "/token":
                self.send_error(404)
                return
            if got is not None and got != want:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            access = []
            if got is not None:
                for scope in q.get("scope", []):
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    access.append({"type": kind, "name": name,
                                   "actions": actions.split(",")})
            subject = user if got is not None else ""
            body = json.dumps({"token": token(subject, access), "expires_in": 300}).encode()
            with open(log, "a") as f:
                f.write(f"token {subject or '-'}\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def serve_redirect(port, path, log):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/storage"):
                with open(log, "a") as f:
                    auth = "yes" if self.headers.get("Authorization") else "no"
                    f.write(f"storage auth={auth}\n")
                with open(path, "rb") as f:
                    body = f.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if "/blobs/" not in self.path:
                self.send_error(404)
                return
            if not self.headers.get("Authorization", "").startswith("Basic "):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="fixture"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{port}/storage")
            self.send_header("Content-Length", "0")
            self.end_headers()

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def serve_trickle(port, path):
    with open(path, "rb") as f:
        body = f.read()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            data = body
            if "/manifests/" in self.path:
                self.send_response(401)
                self.send_header("WWW-Authenticate",
                                 f'Bearer realm="http://127.0.0.1:{port}/token",'
                                 'service="trickle"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path.startswith("/token"):
                data = json.dumps({"token": "t" * 200, "expires_in": 300}).encode()
            elif "/blobs/" not in self.path:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(0, len(data), 2):
                    self.wfile.write(data[i:i + 2])
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def main():
    cmd = sys.argv[1]
    if cmd == "certgen":
        certgen(sys.argv[2], sys.argv[3])
    elif cmd == "bcrypt":
        import warnings
        warnings.simplefilter("ignore")
        import crypt
        h = crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))
        if not h or not h.startswith("$2"):
            sys.exit("no bcrypt in this libcrypt")
        print(h)
    elif cmd == "token":
        serve_tokens(*sys.argv[2:10])
    elif cmd == "redirect":
        serve_redirect(*sys.argv[2:5])
    elif cmd == "trickle":
        serve_trickle(*sys.argv[2:4])
    else:
        sys.exit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main()
