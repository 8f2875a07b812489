#!/usr/bin/env python3
"""Start each built daemon the way its unit would, without systemd.

usage: tests/systemd/startup.py BIN_DIR

PID 1 is not systemd on the test machines, so the units are never run here.
This checks the part of their contract that the daemons must honour under the
unit's own restrictions: with the unit's CapabilityBoundingSet=,
NoNewPrivileges= and User=/Group= applied (through setpriv(1)) each daemon must send READY=1
on $NOTIFY_SOCKET (Type=notify), survive SIGHUP (ExecReload=; if it sends
RELOADING=1, READY=1 must follow), and exit 0 on SIGTERM. Daemons run with --root under a
temporary directory, which is removed afterwards.

Exit status: 0 all passed, 1 a daemon failed, 2 usage, 77 skipped.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DAEMONS = ["gateway", "imaged", "stored", "netd", "runtimed", "monitord"]
UNIT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "systemd")
TIMEOUT = 10.0


def unit_settings(path):
    """CapabilityBoundingSet= (None if unset), NoNewPrivileges=, User= and
    Group= (None if unset) of a unit."""
    caps = None
    nnp = False
    user = group = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*(\w+)\s*=(.*)$", line)
            if not m:
                continue
            key, value = m.group(1), m.group(2).strip()
            if key == "CapabilityBoundingSet":
                if value.startswith("~"):
                    raise ValueError("inverted CapabilityBoundingSet= is not handled here")
                caps = [] if value == "" else (caps or []) + value.split()
            elif key == "NoNewPrivileges":
                nnp = value.lower() in ("yes", "true", "on", "1")
            elif key == "User":
                user = value
            elif key == "Group":
                group = value
    return caps, nnp, user, group


def wait_for(sock, proc, want, deadline):
    """Collect notify datagrams until one holds the line `want`."""
    seen = []
    while time.monotonic() < deadline:
        sock.settimeout(0.1)
        try:
            msg = sock.recv(4096).decode(errors="replace")
        except socket.timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"exited {proc.returncode} before {want}")
            continue
        lines = msg.split("\n")
        seen.extend(lines)
        if want in lines:
            return seen
    raise TimeoutError(f"no {want} within {TIMEOUT:.0f}s (got {seen})")


def check(daemon, binary, tmp):
    caps, nnp, user, group = unit_settings(os.path.join(UNIT_DIR, f"cric-{daemon}.service"))
    cmd = ["setpriv"]
    root = os.path.join(tmp, daemon)
    os.mkdir(root)
    notify_path = os.path.join(tmp, f"{daemon}.notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    if user is not None:
        # User=/Group= as systemd applies them (the user's groups too); the
        # directories systemd would make for it (State/RuntimeDirectory=)
        # are its whole --root here.
        try:
            pw = pwd.getpwnam(user)
            gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
        except KeyError as e:
            sock.close()
            return f"User={user}/Group={group} does not exist ({e}): run deploy/cric-users"
        cmd += [f"--reuid={pw.pw_uid}", f"--regid={gid}", "--init-groups"]
        os.chown(root, pw.pw_uid, gid)
        os.chown(notify_path, pw.pw_uid, gid)
    if caps is not None:
        cmd.append("--bounding-set=" + ",".join(["-all"] + ["+" + c.lower().removeprefix("cap_") for c in caps]))
    if nnp:
        cmd.append("--no-new-privs")
    cmd += ["--", binary, "--root", root]

    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    log_path = os.path.join(tmp, f"{daemon}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        try:
            wait_for(sock, proc, "READY=1", time.monotonic() + TIMEOUT)
            # systemd 252 does not require RELOADING=1 for ExecReload= of a
            # Type=notify unit; if a daemon sends it, READY=1 must follow.
            proc.send_signal(signal.SIGHUP)
            try:
                seen = wait_for(sock, proc, "RELOADING=1", time.monotonic() + 1.0)
            except TimeoutError:
                seen = []
            if "RELOADING=1" in seen and "READY=1" not in seen[seen.index("RELOADING=1"):]:
                wait_for(sock, proc, "READY=1", time.monotonic() + TIMEOUT)
            if proc.poll() is not None:
                raise RuntimeError(f"exited {proc.returncode} on SIGHUP")
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(TIMEOUT)
            if rc != 0:
                raise RuntimeError(f"exited {rc} on SIGTERM")
        except (TimeoutError, RuntimeError, subprocess.TimeoutExpired) as e:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read().strip().splitlines()[-5:]
            return f"{e}; log: " + " | ".join(tail)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    return None


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print(f"usage: {sys.argv[0]} BIN_DIR", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("SKIP: needs root (setpriv changes the bounding set)")
        return 77
    if shutil.which("setpriv") is None:
        print("SKIP: setpriv not found (util-linux)")
        return 77
    bin_dir = os.path.abspath(sys.argv[1])
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="cric-startup.") as tmp:
        os.chmod(tmp, 0o711)  # the daemons' users walk into their roots
        for d in DAEMONS:
            binary = os.path.join(bin_dir, f"cric-{d}")
            if not os.access(binary, os.X_OK):
                problem = f"{binary} is missing or not executable"
            else:
                problem = check(d, binary, tmp)
            if problem:
                failed += 1
                print(f"not ok cric-{d}.service: {problem}")
            else:
                passed += 1
                print(f"ok cric-{d}.service")
    print(f"systemd-startup: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
