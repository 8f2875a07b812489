/* The suite's messaging layer: nng req/rep over ipc:// sockets.
 *
 * Wire format: every request is a cric.internal.Envelope (method, request id,
 * absolute deadline, payload bytes); every answer a cric.internal.Reply
 * (gRPC status code, message, payload bytes). See proto/cric/internal.proto.
 *
 * Client (struct cric_client): one req socket dialing one daemon, with
 * automatic reconnect (and a watcher thread that replaces a dialer which has
 * stopped trying while there is no connection: nng 1.5.2's can give up for
 * good). Calls are independent nng contexts, so any number
 * may be in flight and none waits behind another. Contract:
 *   - no connection to the daemon right now: the call waits up to one second
 *     for the (re)connection, then completes with CODE_UNAVAILABLE; it is
 *     not queued until the deadline;
 *   - the connection drops while calls are in flight (the daemon died): each
 *     of them completes with CODE_UNAVAILABLE at once;
 *   - the deadline passes: CODE_DEADLINE_EXCEEDED.
 * Completion callbacks run on nng's threads: they must not block, and must
 * not start calls or close the client (resources of finished calls are
 * freed by the next call and by close, off nng's threads). They are
 * called exactly once per call that cric_client_call_async() accepted (that
 * returned 0), including when the client is closed.
 *
 * Server (struct cric_server): a rep socket listening on ipc:// with a socket
 * file of mode 0660 in group cric, a few more contexts than workers each
 * receiving (its callback decodes the envelope on nng's thread as the
 * request arrives), a pool of worker threads that run the handlers (a slow
 * handler holds one worker; the others keep serving; a handler declared
 * nonblocking in service.h runs on the receiving thread instead), a
 * check of the peer on every new connection (root, a daemon's user or a
 * member of group cric; others are dropped), and on every request, before
 * any work, the caller (peer.h) against the method's line: callers it does
 * not name get PERMISSION_DENIED. "cric.Health" is answered for every
 * daemon, to anyone who got through; "cric.Cancel" (the gateway's, and
 * root's tools') marks the calls in flight with a request id cancelled
 * (struct cric_call's cancel): the server keeps the request id of the
 * call each context serves. What it serves is a list of services
 * with one line per method (service.h).
 *
 * The client checks the listener before it sends anything: the peer of its
 * connection must be root, or the user the daemon runs as (imaged, the
 * gateway); another listener is disconnected, so that a process that took
 * a daemon's socket path never sees a request.
 *
 * The calls here take the method's name on the wire as a string: daemons
 * call through cric_call() (service.h), which derives the name and the
 * types from the service descriptor.
 */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define IPC_MAX_MESSAGE    (16u * 1024 * 1024)
#define IPC_METHOD_MAX     256
#define IPC_REQUEST_ID_MAX 64

/* ---- results ---- */

struct cric_result {
	unsigned code; /* enum cric_code */
	char *message; /* malloc'd, may be NULL when code == OK */
	uint8_t *payload;
	size_t len;
};
void cric_result_clear(struct cric_result *r);
/* Fill r with code and a formatted message (payload left empty). */
void cric_result_set(struct cric_result *r, unsigned code, const char *fmt, ...) _printf_(3, 4);

/* True when a unix socket file exists at path but nothing listens on it (a
 * killed daemon's leftover), so it may be replaced. */
bool unix_socket_is_stale(const char *path);

int64_t now_unix_ns(void);
/* Absolute deadline `ms` milliseconds from now. */
int64_t deadline_in_ms(int64_t ms);
/* A deadline that never comes: a call that may run as long as it runs
 * (ExecSync with timeout 0 and no gRPC deadline: the kubelet's lifecycle
 * hooks). Carried as is in the envelope. */
#define IPC_NO_DEADLINE INT64_MAX

/* ---- client ---- */

struct cric_client;
typedef void (*cric_client_cb)(void *arg, struct cric_result *res);

/* name is the peer daemon's name, for messages ("runtimed"). The listener
 * must be root. */
int cric_client_open(const char *name, const char *url, struct cric_client **ret,
		     struct cric_err *err);
/* The same for a daemon that runs as peer_uid (root is accepted as well:
 * that daemon may be configured to stay root); (uid_t)-1: root only. */
int cric_client_open_peer(const char *name, const char *url, uid_t peer_uid,
			  struct cric_client **ret, struct cric_err *err);
/* Aborts calls in flight (their callbacks run with CODE_UNAVAILABLE), waits
 * for their callbacks, frees. Accepts NULL. */
void cric_client_close(struct cric_client *c);
bool cric_client_connected(struct cric_client *c);
/* Fault injection for tests: close the client's dialer, as nng 1.5.2 stops
 * its own for good when a handshake is cut (bug #1518, client side). The
 * client's watcher replaces a dialer that has stopped trying within about
 * DIALER_QUIET_MS (600 ms) while it has no connection. */
void cric_client_kill_dialer(struct cric_client *c);
const char *cric_client_name(const struct cric_client *c);

/* Start a call. deadline_ns is absolute CLOCK_REALTIME, 0 for none (then
 * a 10 minute cap applies), IPC_NO_DEADLINE for none at all. request_id
 * may be NULL (one is generated). On success the callback owns nothing; it
 * must take what it needs out of res (it is cleared after the callback
 * returns). */
int cric_client_call_async(struct cric_client *c, const char *method, const char *request_id,
			   int64_t deadline_ns, const void *payload, size_t len, cric_client_cb cb,
			   void *arg);

/* Blocking call; fills res (caller clears it). Always returns with res set:
 * transport failures become CODE_UNAVAILABLE / CODE_DEADLINE_EXCEEDED. */
void cric_client_call(struct cric_client *c, const char *method, const char *request_id,
		      int64_t deadline_ns, const void *payload, size_t len,
		      struct cric_result *res);

/* Blocking call with protobuf-c messages: packs req, unpacks the answer with
 * out_desc into *out on CODE_OK. Returns the code; *out NULL on failure. */
unsigned cric_client_call_pb(struct cric_client *c, const char *method, const char *request_id,
			     int64_t deadline_ns, const ProtobufCMessage *req,
			     const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out,
			     char **message);

/* ---- server ---- */

struct cric_call {
	const char *daemon;
	const char *method;
	const char *request_id;
	int64_t deadline_ns; /* absolute, 0 for none */
	/* The method's line in the daemon's table (service.h): who may call
	 * it (enum cric_caller bits, checked before the handler runs), its
	 * deadline cap (not enforced yet). */
	unsigned callers;
	uint32_t cap_ms;
	unsigned caller; /* who called: one enum cric_caller bit */
	uid_t peer_uid;
	pid_t peer_pid;
	/* Set (atomically, to nonzero) by the server when a cric.Cancel names
	 * this call's request id: its caller gave up. Owned by the server,
	 * valid while the handler runs; a copy of the call carries the same
	 * flag. Read it with cric_call_cancelled(). NULL: never cancelled. */
	const int *cancel;
};

/* True once the call's caller cancelled it (cric.Cancel, sent by the
 * gateway when the CRI client cancelled or went away). Accepts NULL. A
 * handler that looks stops with -ECANCELED (CANCELLED); one that does not
 * simply finishes. */
bool cric_call_cancelled(const struct cric_call *call);

/* A handler returns 0 with *resp set to a heap-built message (freed by the
 * server with protobuf_c_message_free_unpacked, so every string, array and
 * submessage in it must be malloc'd or the descriptor's default), or a
 * negative errno with err filled; the server maps it to a gRPC code. */
typedef int (*cric_handler_fn)(void *userdata, const struct cric_call *call,
			       const ProtobufCMessage *req, ProtobufCMessage **resp,
			       struct cric_err *err);

/* The identities the suite's daemons run as (peer.h). */
struct cric_identities {
	uid_t gateway_uid;   /* (uid_t)-1: the gateway runs as root */
	uid_t imaged_uid;    /* (uid_t)-1: imaged runs as root */
	gid_t group_gid;     /* group cric, may reach the sockets; (gid_t)-1: none */
	const char *bin_dir; /* the suite's binaries; NULL: the server's own dir */
};

struct cric_service;
struct cric_server_config {
	const char *daemon;
	const char *version;
	const char *url;
	/* Who is who. The socket file is made mode 0660, group ids.group_gid
	 * (when set). */
	struct cric_identities ids;
	/* At most this many requests are handled at once, each on a worker
	 * thread of its own; threads start as calls overlap (one waits at
	 * first), never more than this. Nonblocking methods (service.h) are
	 * answered on nng's thread, outside this count. */
	unsigned workers;
	const struct cric_service *services; /* service.h; cric.Health is added */
	size_t n_services;
	void *userdata;
	/* Called (on nng's thread that ran cric.Cancel, may be NULL) after it marked
	 * calls cancelled, with userdata: wakes the daemon's waits so that
	 * handlers blocked on condition variables look at their flag now. Must
	 * not block. */
	void (*cancelled)(void *userdata);
};

struct cric_server;
/* Fails, serving nothing, when the services' table is wrong (service.h). */
int cric_server_start(const struct cric_server_config *cfg, struct cric_server **ret,
		      struct cric_err *err);
/* Stop accepting, wait for handlers in progress, free. Accepts NULL. */
void cric_server_stop(struct cric_server *s);
/* How many times the server trimmed its heap (malloc_trim) since it
 * started: it does once no call started or ended for a second. */
unsigned cric_server_trims(struct cric_server *s);
/* How many worker threads it started so far (at most cfg.workers). */
unsigned cric_server_workers(struct cric_server *s);

/* ---- envelope codec (exposed for tests and fuzzers) ---- */

struct cric_envelope {
	char method[IPC_METHOD_MAX + 1];
	char request_id[IPC_REQUEST_ID_MAX + 1];
	int64_t deadline_ns;
	const uint8_t *payload; /* points into the decoded message */
	size_t len;
	void *owner; /* the unpacked protobuf message */
};
int envelope_pack(const char *method, const char *request_id, int64_t deadline_ns,
		  const void *payload, size_t len, uint8_t **ret, size_t *ret_len);
/* Decode and validate (method printable, request id a safe token). */
int envelope_unpack(const uint8_t *data, size_t len, struct cric_envelope *env,
		    struct cric_err *err);
void envelope_done(struct cric_envelope *env);
int reply_pack(unsigned code, const char *message, const void *payload, size_t len, uint8_t **ret,
	       size_t *ret_len);
/* The same Reply with the message payload packed straight into buf (no
 * packed copy of it first): reply_packed_size() bytes, the same as
 * reply_pack of payload's packed bytes (NULL: none). */
size_t reply_packed_size(unsigned code, const char *message, const ProtobufCMessage *payload);
void reply_pack_into(unsigned code, const char *message, const ProtobufCMessage *payload,
		     uint8_t *buf);
/* Decode into res (its payload the one copy the decoder makes). */
int reply_unpack(const uint8_t *data, size_t len, struct cric_result *res);
