/* The streaming server: an HTTP/1.1 server (libmicrohttpd, its own polling
 * thread) at the configured address that takes the URLs Exec, Attach and
 * PortForward hand out, upgrades the connection and runs a session
 * (session.h) on a thread of its own.
 *
 *   POST or GET /exec/<token>, /attach/<token>   Upgrade: SPDY/3.1
 *   X-Stream-Protocol-Version: v4.channel.k8s.io, v3..., v2..., channel.k8s.io
 * or
 *   GET /exec/<token>, /attach/<token>   Upgrade: websocket (RFC 6455)
 *   Sec-WebSocket-Protocol: v4.channel.k8s.io, v4.base64.channel.k8s.io,
 *   channel.k8s.io, base64.channel.k8s.io (or none: channel.k8s.io)
 * and
 *   POST or GET /portforward/<token>             Upgrade: SPDY/3.1
 *   X-Stream-Protocol-Version: portforward.k8s.io
 * or
 *   GET /portforward/<token>?port=<p>[&port=...]  Upgrade: websocket
 *   Sec-WebSocket-Protocol: v4.channel.k8s.io, v4.base64.channel.k8s.io
 *   (or none: binary), as the kubelet's portforward/websocket.go: ports
 *   from ?port= (repeated, or separated by commas; each one the call named,
 *   when it named any; without ?port=, the call's ports), at most 32 (5
 *   under base64); 400 for a bad port list before the token is taken.
 *
 * Answers: 101 with the protocol chosen (the client's first we speak), 404
 * for an unknown, used or expired token, 403 when no protocol is common
 * (the token is used), 400 without an upgrade to SPDY/3.1 or WebSocket (or
 * a WebSocket upgrade without a valid key), 426 for a WebSocket version
 * but 13, 503 when sessions_max sessions run, 405 for other methods (and a
 * WebSocket upgrade but with GET).
 *
 * Config, section "monitord":
 *   "stream_address": "127.0.0.1"     an IPv4 or IPv6 address
 *   "stream_port": 0                  0: ephemeral (the URL has the port)
 *   "stream_idle_timeout_s": 14400    a session without a byte either way
 *                                     ends (0: never), the kubelet's 4 h
 *   "stream_sessions_max": 128        connections, upgraded or not
 *   "stream_pair_timeout_s": 30       port-forward over SPDY: how long a
 *                                     stream waits for its pair's other
 *   "stream_tls_cert": "/path.pem"    with "stream_tls_key", both or
 *   "stream_tls_key": "/path.pem"     neither: the server speaks TLS
 *                                     (https URLs); read at start, an
 *                                     unreadable file or a libmicrohttpd
 *                                     without TLS stops monitord
 * Limits on the HTTP part: request headers within 16 KiB, 30 s to send
 * the request.
 *
 * Privileges: the listening socket is bound with monitord's; libmicrohttpd's
 * thread (all the HTTP parsing, the upgrade) is made by a thread that
 * dropped every capability (capabilities are per thread) and holds none;
 * it hands each upgraded connection to a launcher thread, which starts the
 * session's thread; that thread drops every capability too (the SPDY and
 * WebSocket parsing, the streams) and has the launcher run the backend's
 * start (the container check, runc exec under cric-exec) and port-forward's
 * connects (cric-portfwd, beside monitord's binary) with monitord's. */
#pragma once

#include <stdint.h>

#include "common/config.h"
#include "common/error.h"
#include "tokens.h"

struct monitors;
struct stream_server;

int stream_server_open(const struct cric_config *cfg, struct monitors *m, const char *exec_helper,
		       struct stream_server **ret, struct cric_err *err);
/* Stops the HTTP server; running sessions are stopped first. Accepts NULL. */
void stream_server_free(struct stream_server *srv);

/* Keep req (taken, whatever the outcome) under a new token and answer the URL
 * (malloc'd) the client connects to. */
int stream_server_url(struct stream_server *srv, struct stream_request *req, char **url,
		      struct cric_err *err);
uint16_t stream_server_port(const struct stream_server *srv);
