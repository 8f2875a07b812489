#!/usr/bin/python3
"""A hostile stand-in for cric-fetch (test-imaged-fetchwire): takes each
transfer's socket from the control socket on fd 3 like the real helper, then
answers as $HOSTILE_MODE says: "garbage" (an unknown frame type), "huge" (a
length over the limit), "baddone" (a DONE with a non-printable message),
"midway" (a header, then it dies), "ok" (a well-formed 200 with body "hi")."""
import os
import socket
import struct
import sys

mode = os.environ.get("HOSTILE_MODE", "ok")
ctl = socket.socket(fileno=3)


def frame(t, data=b""):
    return struct.pack(">BI", t, len(data)) + data


while True:
    try:
        msg, fds, _, _ = socket.recv_fds(ctl, 1, 1)
    except OSError:
        sys.exit(0)
    if not msg:
        sys.exit(0)
    conn = socket.socket(fileno=fds[0])
    # Read the request up to its END frame (type 13, empty).
    buf = b""
    while not buf.endswith(b"\x0d\x00\x00\x00\x00"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    if mode == "garbage":
        conn.sendall(b"\x07\x00\x00\x00\x01x")
    elif mode == "huge":
        conn.sendall(struct.pack(">BI", 33, 0x7FFFFFFF) + b"x" * 100)
    elif mode == "baddone":
        conn.sendall(frame(34, b"\x00\x00\x00\xc8bad\x01msg"))
    elif mode == "midway":
        conn.sendall(frame(32, b"HTTP/1.1 200 OK\r\n"))
        os._exit(9)
    else:
        conn.sendall(frame(32, b"HTTP/1.1 200 OK\r\n") + frame(33, b"hi") +
                     frame(34, b"\x00\x00\x00\xc8"))
    conn.close()
