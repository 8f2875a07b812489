/* The WebSocket (RFC 6455) transport of a streaming session: the channel
 * protocols of k8s.io/apiserver's wsstream (channel.k8s.io,
 * base64.channel.k8s.io, and their v4 forms), framed by monitord/ws.c.
 *
 * As wsstream does after its handshake, every stream the request asks for
 * is open at once (channel 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize
 * with a tty) and an empty message goes on the lowest one we write (stdout,
 * else stderr, else error) to tell the client the session is up. The v4
 * protocols carry the status as JSON on channel 3, the older ones its
 * message as text (as SPDY's v3). There is no end of one channel in these
 * protocols: stdin ends with the connection.
 *
 * Client messages are bounded (WS_STREAM_MESSAGE_MAX, all fragments):
 * past it the connection is closed with 1009; a protocol violation
 * (unmasked frame, bad opcode, a continuation without a message ...) closes
 * it with 1002, a base64 message that does not decode with 1007. Pings are
 * answered (while our output buffer is within SESSION_OUT_MAX: past it they
 * are dropped, as a flood would otherwise grow it); a close from the client
 * is answered and ends the session (its process is stopped, as wsstream's
 * end of the connection does). Our close at the end is 1000, or 1011 after
 * an internal failure. Data on a channel we do not read, and empty
 * messages, are ignored (as wsstream). Flow control is the TCP
 * connection's.
 *
 * Port-forward (only v4.channel.k8s.io, v4.base64.channel.k8s.io or none,
 * as the kubelet's): no opening message; the backend opens channel 2i
 * (data) and 2i+1 (error) for the i-th port and sends the port on each
 * first (portforward.c). */
#pragma once

#include "monitord/ws.h"
#include "session.h"

#define WS_STREAM_MESSAGE_MAX (128 * 1024)

/* Set up the WebSocket transport on s for the negotiated protocol p: sets
 * s->proto, opens the streams of s->req (set before) and queues the
 * opening message; for a port-forward, none of that (the backend,
 * portforward_backend_init_ws(), opens the channels of its ports and
 * sends their first frames). 0 or -ENOMEM. */
int ws_transport_init(struct session *s, enum ws_proto p);
