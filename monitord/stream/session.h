/* A streaming session: one upgraded HTTP connection carrying typed streams
 * between a client and a backend (exec here; attach and port-forward plug
 * in the same way). Three parts, each behind a small ops table:
 *
 *   transport  frames streams on the connection: SPDY/3.1 (spdy_transport,
 *              session.c); WebSocket (channel.k8s.io, websocket.c).
 *   backend    what the streams are connected to: exec (exec.c), attach
 *              (attach.c), port-forward (portforward.c).
 *   session    the loop that owns the connection's fd and moves bytes
 *              between the two (session_run()).
 *
 * Everything of a session runs on its own thread (session_run() is its
 * body): no locks, no callbacks from other threads. The transport and the
 * backend call back into the session with the functions at the end of this
 * header.
 *
 * Streams ("channels") are typed as the remotecommand and portforward
 * protocols type them; the transport says which it has seen (SPDY: the
 * streamType header of each SYN_STREAM; WebSocket: all of the protocol's
 * channels at once, after the handshake) with session_chan_open(). The
 * session counts the ones the request expects (error, plus stdin, stdout,
 * stderr as asked, plus resize with a tty on protocols of v3 and later) and
 * starts the backend when they are all there, or ends the session when
 * they are not within SESSION_STREAMS_WAIT_MS. A backend with an open hook
 * (port-forward) types the streams itself instead: it is started at once
 * and takes every stream the client opens, with its headers
 * (session_stream_open()), up to SESSION_PF_CHANS_MAX at a time; it
 * removes them when done with them (session_chan_remove()), so that a
 * session may carry any number of streams one after the other.
 *
 * Bounds: what the backend reads from the process is read only while the
 * transport has room and the connection's output buffer holds less than
 * SESSION_OUT_MAX (a client that stops reading stalls the process's
 * output: its pipe fills and the process blocks in write, as with the
 * peers); what the client sends for stdin is buffered up to
 * SESSION_STDIN_MAX, past which the connection is not read until the
 * process takes some. A session idle (no byte either way) for idle_ms ends.
 * A session ends when the backend is done (then the status goes on the
 * error stream and every stream is ended) or when the client goes (EOF,
 * reset, GOAWAY, error: the backend is stopped: for exec its processes
 * are killed). */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokens.h"

#define SESSION_STREAMS_WAIT_MS 30000 /* as the kubelet's streamCreationTimeout */
#define SESSION_OUT_MAX         (256 * 1024)
#define SESSION_STDIN_MAX       (256 * 1024)
#define SESSION_CHANS_MAX       8  /* exec, attach */
#define SESSION_PF_CHANS_MAX    64 /* port-forward, at a time (SPDY_STREAMS_MAX) */

/* The remotecommand protocol the client and we agreed on. */
enum stream_proto {
	PROTO_V1, /* channel.k8s.io (or no header) */
	PROTO_V2, /* v2.channel.k8s.io */
	PROTO_V3, /* v3.channel.k8s.io: resize */
	PROTO_V4, /* v4.channel.k8s.io: the status as JSON */
};

enum stream_type {
	ST_ERROR,
	ST_STDIN,
	ST_STDOUT,
	ST_STDERR,
	ST_RESIZE,
	ST_DATA, /* port-forward's */
	ST_N,
};

struct session;
struct monitors;

struct stream_chan {
	enum stream_type type;
	uint32_t handle; /* the transport's: SPDY stream id, WebSocket channel */
	bool remote_eof, local_eof;
	bool removed; /* session_chan_remove(): freed at the loop's next turn */
	void *ud;     /* the backend's */
};

/* What the client said of a stream it opened (SPDY: its headers). */
struct stream_hdrs {
	const char *type;       /* streamType */
	const char *port;       /* port-forward's port */
	const char *request_id; /* port-forward's requestID */
};

/* A transport. All called on the session's thread. */
struct transport_ops {
	/* Bytes read from the connection: the transport calls
	 * session_chan_*() for what they carry. <0 ends the session. */
	int (*input)(struct session *s, const uint8_t *p, size_t n);
	/* How many bytes send may take for c now (0: wait). */
	size_t (*room)(struct session *s, const struct stream_chan *c);
	int (*send)(struct session *s, struct stream_chan *c, const void *p, size_t n);
	/* End our side of c. */
	int (*end)(struct session *s, struct stream_chan *c);
	/* The client's data on c was consumed by the backend (flow control). */
	int (*consumed)(struct session *s, struct stream_chan *c, size_t n);
	/* The bytes queued for the connection, and how many were written. */
	void (*pending)(struct session *s, const uint8_t **p, size_t *n);
	void (*written)(struct session *s, size_t n);
	/* Going away: normal (0) or after an error (<0). */
	int (*close)(struct session *s, int error);
	/* Optional: reset c, both sides (SPDY: RST_STREAM CANCEL); without,
	 * c is only ended. */
	int (*reset)(struct session *s, struct stream_chan *c);
	/* Optional: bytes read after the session finished; true when they
	 * end the client's part (WebSocket: its close frame), so that the
	 * session need not wait for its EOF. */
	bool (*goodbye)(struct session *s, const uint8_t *p, size_t n);
	void (*free)(struct session *s);
};

/* A backend. All called on the session's thread. */
struct backend_ops {
	/* The expected streams are all open: start (exec: run the process).
	 * <0: the session ends with that error in the status. */
	int (*start)(struct session *s);
	/* Add the fds to poll (up to max) and answer how many. */
	int (*poll_fds)(struct session *s, struct pollfd *p, int max);
	/* What poll saw on them (the same order). */
	int (*on_poll)(struct session *s, const struct pollfd *p, int n);
	/* Optional (port-forward): the client opened a stream: the backend
	 * adds it (session_chan_add()) or answers NULL (the transport resets
	 * it). The backend is started before any stream comes. */
	struct stream_chan *(*open)(struct session *s, const struct stream_hdrs *h,
				    uint32_t handle);
	/* Optional: the client reset c (without: a reset ends the session). */
	void (*reset)(struct session *s, struct stream_chan *c);
	/* The client's data on stdin, resize or data. Takes it all (buffers). */
	int (*data)(struct session *s, struct stream_chan *c, const uint8_t *p, size_t n);
	/* The client ended its side of c. */
	void (*eof)(struct session *s, struct stream_chan *c);
	/* Whether the connection may be read now (false: buffers full). */
	bool (*wants_input)(struct session *s);
	/* Done: *exit_code is the process's; the session sends the status. */
	bool (*done)(struct session *s, int *exit_code);
	/* The client went or the session failed: stop and release all. */
	void (*stop)(struct session *s);
	void (*free)(struct session *s);
};

struct session {
	int fd; /* the upgraded connection, owned */
	struct stream_request *req;
	enum stream_proto proto;
	const struct transport_ops *tr;
	void *tr_data;
	const struct backend_ops *be;
	void *be_data;
	struct stream_chan **chans; /* each malloc'd: pointers stay valid */
	size_t n_chans, cap_chans;
	struct stream_chan *by_type[ST_N];
	size_t expected;
	bool started, finished, client_gone;
	int64_t idle_ms;
	/* Port-forward over SPDY: how long the second stream of a pair may
	 * keep its first waiting (0: SESSION_STREAMS_WAIT_MS). */
	int64_t pair_wait_ms;
	struct monitors *monitors;  /* monitord's manager (monitors.h) */
	const char *exec_helper;    /* cric-exec */
	const char *portfwd_helper; /* cric-portfwd */
	void (*on_end)(void *ud);   /* the server's: release the connection */
	void *on_end_ud;
	/* The server's: run fn(arg) with monitord's privileges (the session's
	 * thread has none) and answer its result; NULL: run it here. The
	 * backend's start goes through it. */
	int (*run_privileged)(void *ctx, int (*fn)(void *), void *arg);
	void *priv_ctx;
};

/* The body of the session's thread: runs until the end, then closes the
 * fd, frees the transport, the backend, the request and s itself, and
 * calls on_end. extra/n_extra: what the HTTP server read past the request. */
void session_run(struct session *s, const uint8_t *extra, size_t n_extra);

/* Free s's channels (session_run() does at its end; for sessions built
 * by hand: tests, fuzzers). */
void session_free_chans(struct session *s);

/* Set up the SPDY/3.1 transport on s (session.c). */
int spdy_transport_init(struct session *s);
/* Set up the exec backend on s (exec.c). */
int exec_backend_init(struct session *s);
/* Set up the attach backend on s (attach.c). */
int attach_backend_init(struct session *s);
/* Set up the port-forward backend on s (portforward.c). */
int portforward_backend_init(struct session *s);
/* The same for a WebSocket connection (portforward.c): one pair for each
 * of ports[0..n) (1 to SESSION_PF_CHANS_MAX / 2), channels 2i and 2i+1,
 * made and connected at the start; -EINVAL for a bad n. */
int portforward_backend_init_ws(struct session *s, const uint16_t *ports, size_t n);

/* ---- for transports ---- */

/* The client opened a stream of type (a name of the streamType header);
 * NULL: unknown or duplicate type (the transport resets it). */
struct stream_chan *session_chan_open(struct session *s, const char *type, uint32_t handle);
/* The same with all the client said: to the backend's open when it has
 * one, else session_chan_open(). */
struct stream_chan *session_stream_open(struct session *s, const struct stream_hdrs *h,
					uint32_t handle);
struct stream_chan *session_chan_find(struct session *s, uint32_t handle);
int session_chan_data(struct session *s, struct stream_chan *c, const uint8_t *p, size_t n);
void session_chan_eof(struct session *s, struct stream_chan *c);
/* The client reset c (the backend's reset, or the session ends). */
void session_chan_reset(struct session *s, struct stream_chan *c);
/* The client went away. */
void session_client_gone(struct session *s);

/* ---- for backends ---- */

/* Send to the client on the stream of type t if it is open; answers the
 * room there (0: none, stop reading). */
size_t session_room(struct session *s, enum stream_type t);
int session_send(struct session *s, enum stream_type t, const void *p, size_t n);
/* Resize messages ({"Width":w,"Height":h} JSON objects, one after the
 * other) gathered in buf (*len bytes): the complete ones are taken out of
 * it; true with the last valid size in *width, *height. */
/* The same on one channel (port-forward's streams have no type of their
 * own). */
size_t session_chan_room(struct session *s, struct stream_chan *c);
int session_chan_send(struct session *s, struct stream_chan *c, const void *p, size_t n);
/* End our side of c (once). */
int session_chan_end(struct session *s, struct stream_chan *c);
/* A new channel of type for the client's stream handle; NULL when
 * SESSION_PF_CHANS_MAX are open or out of memory. */
struct stream_chan *session_chan_add(struct session *s, enum stream_type type, uint32_t handle);
/* Done with c: our side ended if it is not yet; c is freed at the loop's
 * next turn (a caller up the stack may still hold it) and found no more. */
void session_chan_remove(struct session *s, struct stream_chan *c);
/* Done with c, abruptly: reset (both sides gone), then as
 * session_chan_remove(). */
void session_chan_cancel(struct session *s, struct stream_chan *c);
bool session_take_resizes(char *buf, size_t *len, unsigned short *width, unsigned short *height);
