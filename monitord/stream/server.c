/* The streaming server's HTTP part; see server.h. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "monitord/lazyhttp.h"
#include "monitord/mhd-dl.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "monitord/portfwd.h"
#include "session.h"
#include "websocket.h"

#define HEADERS_MAX         (16 * 1024)
#define REQUEST_TIMEOUT_S   30
#define IDLE_DEFAULT_S      (4 * 3600)
#define PAIR_WAIT_DEFAULT_S (SESSION_STREAMS_WAIT_MS / 1000)
#define SESSIONS_MAX_DEF    128
#define WS_PF_PORTS_MAX     (SESSION_PF_CHANS_MAX / 2)
#define TLS_FILE_MAX        (1024 * 1024)

struct stream_server {
	struct lazy_http *http; /* the listener, until mhd starts on it */
	struct MHD_Daemon *mhd; /* set by start_mhd(), on http's thread */
	struct tokens tokens;
	struct monitors *monitors;
	char *exec_helper;
	char *portfwd_helper;
	char address[INET6_ADDRSTRLEN];
	bool v6;
	uint16_t port;
	int64_t idle_ms;
	int64_t pair_wait_ms;
	size_t sessions_max;
	/* TLS: the PEM certificate (chain) and key, from the files configured;
	 * NULL: plain HTTP. */
	char *tls_cert, *tls_key;
	size_t tls_key_len;
	atomic_size_t sessions;
	pthread_mutex_t lock; /* with done: sessions reaching 0 */
	pthread_cond_t done;
	/* The launcher (from the first URL handed out): starts the session
	 * threads (the HTTP thread has no capabilities to hand down to them);
	 * launcher_started and stopping under qlock. */
	pthread_t launcher;
	bool launcher_started, stopping;
	pthread_mutex_t qlock;
	pthread_cond_t qcond, qdone;
	struct session_start *queue;
	struct priv_call *calls;
};

/* A call a session thread has the launcher make for it. */
struct priv_call {
	struct priv_call *next;
	int (*fn)(void *);
	void *arg;
	int r;
	bool done;
};

/* Per request (MHD's req_cls). */
struct request {
	struct stream_server *srv;
	struct session *session; /* made for the upgrade, until its thread runs it */
	bool upgraded;
};

struct session_start {
	struct session_start *next;
	struct session *session;
	struct MHD_UpgradeResponseHandle *urh;
	struct stream_server *srv;
	/* TLS: MHD's end of the socket pair it relays through, and the TCP
	 * connection (both MHD's: valid until the close action). */
	int app_sock, tcp_fd;
	size_t n_extra;
	uint8_t extra[];
};

static const char *const protocols[] = {
	[PROTO_V4] = "v4.channel.k8s.io",
	[PROTO_V3] = "v3.channel.k8s.io",
	[PROTO_V2] = "v2.channel.k8s.io",
	[PROTO_V1] = "channel.k8s.io",
};

/* ---- sessions ---- */

/* libmicrohttpd 0.9.75 relays an upgraded TLS connection through a socket
 * pair, and once the application closes its end it neither ends the TLS
 * connection nor drops it until the client closes: a client waiting for
 * the server to close first (WebSocket's rule) would wait forever, and the
 * connection would hold one of MHD's slots. So the session's end hangs the
 * TCP connection up itself, once MHD has relayed every byte: our socket
 * pair end has nothing unread by MHD and the TCP connection nothing
 * unacknowledged, seen twice 10 ms apart (bounded: 2 s). */
static void tls_hang_up(const struct session_start *st)
{
	int quiet = 0;
	for (int i = 0; i < 200 && quiet < 2; i++) {
		int app = 0, tcp = 0;
		if (ioctl(st->app_sock, SIOCOUTQ, &app) < 0 ||
		    ioctl(st->tcp_fd, SIOCOUTQ, &tcp) < 0)
			break;
		quiet = app == 0 && tcp == 0 ? quiet + 1 : 0;
		if (quiet < 2)
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	shutdown(st->tcp_fd, SHUT_RDWR);
}

static void session_ended(void *ud)
{
	struct session_start *st = ud;
	struct stream_server *srv = st->srv;
	if (st->tcp_fd >= 0)
		tls_hang_up(st);
	sym_MHD_upgrade_action(st->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(st);
	pthread_mutex_lock(&srv->lock);
	if (atomic_fetch_sub(&srv->sessions, 1) == 1)
		pthread_cond_broadcast(&srv->done);
	pthread_mutex_unlock(&srv->lock);
}

static int drop_thread_caps(void);

/* Run fn(arg) on the launcher, with monitord's privileges; a session
 * thread (which has none) waits for it. */
static int run_privileged(void *ctx, int (*fn)(void *), void *arg)
{
	struct stream_server *srv = ctx;
	struct priv_call c = { .fn = fn, .arg = arg };
	pthread_mutex_lock(&srv->qlock);
	c.next = srv->calls;
	srv->calls = &c;
	pthread_cond_signal(&srv->qcond);
	while (!c.done)
		pthread_cond_wait(&srv->qdone, &srv->qlock);
	pthread_mutex_unlock(&srv->qlock);
	return c.r;
}

static void *session_thread(void *ud)
{
	struct session_start *st = ud;
	struct session *s = st->session;
	s->on_end = session_ended;
	s->on_end_ud = st;
	s->run_privileged = run_privileged;
	s->priv_ctx = st->srv;
	pthread_setname_np(pthread_self(), "cric-session");
	/* The session (the SPDY parsing, the streams) holds no capability;
	 * what needs monitord's (the backend's start: runc) runs on the
	 * launcher. */
	int r = drop_thread_caps();
	if (r < 0) {
		log_warning("streaming: drop a session's capabilities: %s", strerror(-r));
		s->client_gone = true;
	}
	session_run(s, st->extra, st->n_extra);
	return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra_in,
		       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	(void)cls;
	struct request *rq = req_cls;
	struct stream_server *srv = rq->srv;
	struct session *s = TAKE_PTR(rq->session);
	rq->upgraded = true;
	struct session_start *st = malloc(sizeof(*st) + extra_in_size);
	int fd = st && s ? fcntl(sock, F_DUPFD_CLOEXEC, 3) : -1;
	if (fd < 0) {
		log_warning("streaming: could not start a session: %m");
		free(st);
		if (s) {
			s->fd = -1;
			s->on_end = NULL;
			session_run(s, NULL, 0); /* nothing to do: frees it */
		}
		sym_MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		atomic_fetch_sub(&srv->sessions, 1);
		return;
	}
	s->fd = fd;
	st->session = s;
	st->urh = urh;
	st->srv = srv;
	st->app_sock = sock;
	st->tcp_fd = -1;
	if (srv->tls_cert) {
		const union MHD_ConnectionInfo *ci =
		    sym_MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci)
			st->tcp_fd = ci->connect_fd;
	}
	st->n_extra = extra_in_size;
	if (extra_in_size)
		memcpy(st->extra, extra_in, extra_in_size);
	pthread_mutex_lock(&srv->qlock);
	st->next = srv->queue;
	srv->queue = st;
	pthread_cond_signal(&srv->qcond);
	pthread_mutex_unlock(&srv->qlock);
}

/* Start a session's thread (on the launcher, which has monitord's
 * privileges: the session runs the runtime). */
static void launch(struct session_start *st)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int r = pthread_create(&t, &at, session_thread, st);
	pthread_attr_destroy(&at);
	if (r != 0) {
		struct session *s = st->session;
		log_warning("streaming: could not start a session thread: %s", strerror(r));
		s->client_gone = true;
		s->on_end = session_ended;
		s->on_end_ud = st;
		session_run(s, NULL, 0);
	}
}

static void *launcher_thread(void *ud)
{
	struct stream_server *srv = ud;
	pthread_mutex_lock(&srv->qlock);
	for (;;) {
		while (!srv->queue && !srv->calls && !srv->stopping)
			pthread_cond_wait(&srv->qcond, &srv->qlock);
		if (srv->calls) {
			struct priv_call *c = srv->calls;
			srv->calls = c->next;
			pthread_mutex_unlock(&srv->qlock);
			int r = c->fn(c->arg);
			pthread_mutex_lock(&srv->qlock);
			c->r = r;
			c->done = true;
			pthread_cond_broadcast(&srv->qdone);
			continue;
		}
		if (!srv->queue)
			break;
		struct session_start *st = srv->queue;
		srv->queue = st->next;
		pthread_mutex_unlock(&srv->qlock);
		launch(st);
		pthread_mutex_lock(&srv->qlock);
	}
	pthread_mutex_unlock(&srv->qlock);
	return NULL;
}

/* ---- requests ---- */

struct proto_pick {
	const char *const *list; /* ours */
	size_t n;
	int best; /* the client's first one we speak; -1 none */
	bool any; /* the client named one */
};

static const char *const pf_protocols[] = { "portforward.k8s.io" };

static enum MHD_Result pick_protocol(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	(void)kind;
	struct proto_pick *pp = cls;
	if (strcasecmp(key, "X-Stream-Protocol-Version") != 0 || !value)
		return MHD_YES;
	/* One value a header, or several separated by commas. */
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", value);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		pp->any = true;
		for (int i = 0; i < (int)pp->n && pp->best < 0; i++)
			if (strcmp(tok, pp->list[i]) == 0)
				pp->best = i;
	}
	return MHD_YES;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned int code, const char *text)
{
	struct MHD_Response *resp =
	    sym_MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	sym_MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	enum MHD_Result r = sym_MHD_queue_response(c, code, resp);
	sym_MHD_destroy_response(resp);
	return r;
}

static bool header_has(struct MHD_Connection *c, const char *name, const char *word)
{
	const char *v = sym_MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	if (!v)
		return false;
	size_t n = strlen(word);
	for (const char *p = v; *p; p++)
		if (strncasecmp(p, word, n) == 0 && (p == v || p[-1] == ' ' || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
	return false;
}

/* ---- WebSocket (RFC 6455 4.2) ---- */

struct ws_protocols {
	char list[512]; /* every Sec-WebSocket-Protocol header, joined */
	bool too_long;
};

static enum MHD_Result gather_ws_protocols(void *cls, enum MHD_ValueKind kind, const char *key,
					   const char *value)
{
	(void)kind;
	struct ws_protocols *wp = cls;
	if (strcasecmp(key, "Sec-WebSocket-Protocol") != 0 || !value)
		return MHD_YES;
	size_t l = strlen(wp->list);
	int n = snprintf(wp->list + l, sizeof(wp->list) - l, "%s%s", l ? "," : "", value);
	if (n < 0 || (size_t)n >= sizeof(wp->list) - l)
		wp->too_long = true;
	return MHD_YES;
}

static enum MHD_Result answer_ws_version(struct MHD_Connection *c)
{
	static const char text[] = "only WebSocket version 13\n";
	struct MHD_Response *resp = sym_MHD_create_response_from_buffer(
	    sizeof(text) - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	sym_MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
	enum MHD_Result r = sym_MHD_queue_response(c, MHD_HTTP_UPGRADE_REQUIRED, resp);
	sym_MHD_destroy_response(resp);
	return r;
}

/* A session slot and the token's request, for either transport; NULL with
 * the refusal answered in *refused when there is no slot or no such token
 * (the slot is given back). */
static struct stream_request *claim_session(struct stream_server *srv, struct MHD_Connection *c,
					    const char *token, enum stream_kind kind,
					    enum MHD_Result *refused)
{
	if (atomic_fetch_add(&srv->sessions, 1) >= srv->sessions_max) {
		atomic_fetch_sub(&srv->sessions, 1);
		*refused = answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many streaming sessions\n");
		return NULL;
	}
	struct stream_request *req = tokens_take(&srv->tokens, token, kind);
	if (!req) {
		atomic_fetch_sub(&srv->sessions, 1);
		*refused = answer(c, MHD_HTTP_NOT_FOUND, "unknown or expired token\n");
	}
	return req;
}

/* Port-forward's ?port= parameters (each one port or several separated by
 * commas, as the kubelet's NewV4Options reads them). */
struct query_ports {
	uint16_t v[WS_PF_PORTS_MAX];
	size_t n;
	int error;
	bool any;
};

static enum MHD_Result gather_ports(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	(void)kind;
	struct query_ports *qp = cls;
	if (strcmp(key, "port") != 0 || qp->error)
		return MHD_YES;
	qp->any = true;
	qp->error = ws_ports_parse(value, qp->v, ARRAY_SIZE(qp->v), &qp->n);
	return MHD_YES;
}

/* The ports a WebSocket port-forward forwards: those of ?port=, each one
 * the PortForward call named (when it named any); without ?port=, the
 * call's (as the kubelet's CRI streaming server, which forwards those).
 * NULL when fine, else why (to answer 400). */
static const char *pf_ports_of(const struct stream_request *req, enum ws_proto proto,
			       struct query_ports *qp, char *why, size_t why_size)
{
	if (!qp->any) {
		if (req->n_ports == 0)
			return "query parameter \"port\" is required: the PortForward call named "
			       "no port\n";
		if (req->n_ports > ARRAY_SIZE(qp->v)) {
			snprintf(why, why_size, "at most %zu ports in one connection\n",
				 ARRAY_SIZE(qp->v));
			return why;
		}
		memcpy(qp->v, req->ports, req->n_ports * sizeof(*req->ports));
		qp->n = req->n_ports;
	}
	for (size_t i = 0; i < qp->n && req->n_ports; i++) {
		bool named = false;
		for (size_t j = 0; j < req->n_ports && !named; j++)
			named = req->ports[j] == qp->v[i];
		if (!named) {
			snprintf(why, why_size, "port %u was not named in the PortForward call\n",
				 (unsigned)qp->v[i]);
			return why;
		}
	}
	/* The base64 protocols write the channel as one digit. */
	if (ws_proto_is_base64(proto) && qp->n > 5)
		return "at most 5 ports under v4.base64.channel.k8s.io\n";
	return NULL;
}

/* A streaming URL asked with Upgrade: websocket: checked as the RFC and
 * wsstream check it (the token is used only once the handshake is valid),
 * then answered 101 with the accept key and the subprotocol. */
static enum MHD_Result websocket_request(struct stream_server *srv, struct request *rq,
					 struct MHD_Connection *c, const char *method,
					 enum stream_kind kind, const char *token)
{
	bool pf = kind == STREAM_KIND_PORTFORWARD;
	if (strcmp(method, "GET") != 0)
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "a WebSocket upgrade is a GET\n");
	if (!header_has(c, "Connection", "upgrade"))
		return answer(c, MHD_HTTP_BAD_REQUEST, "Connection: Upgrade is required\n");
	const char *version =
	    sym_MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	if (!version || strcmp(version, "13") != 0)
		return answer_ws_version(c);
	char accept[WS_ACCEPT_LEN + 1];
	if (ws_accept_key(sym_MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key"),
			  accept) < 0)
		return answer(c, MHD_HTTP_BAD_REQUEST, "a valid Sec-WebSocket-Key is required\n");
	struct ws_protocols wp = { .list = "" };
	sym_MHD_get_connection_values(c, MHD_HEADER_KIND, gather_ws_protocols, &wp);
	if (wp.too_long)
		return answer(c, MHD_HTTP_BAD_REQUEST, "Sec-WebSocket-Protocol too long\n");
	struct query_ports qp = { .n = 0 };
	if (pf) {
		sym_MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, gather_ports, &qp);
		if (qp.error == -E2BIG)
			return answer(c, MHD_HTTP_BAD_REQUEST,
				      "too many ports in query parameter \"port\"\n");
		if (qp.error < 0)
			return answer(c, MHD_HTTP_BAD_REQUEST,
				      "query parameter \"port\": ports are 1 to 65535, separated "
				      "by commas\n");
	}
	struct stream_request *req;
	enum MHD_Result refused;
	if (!(req = claim_session(srv, c, token, kind, &refused)))
		return refused;
	enum ws_proto proto;
	if (ws_proto_negotiate_among(wp.list[0] ? wp.list : NULL,
				     pf ? WS_PROTOS_PORTFWD : WS_PROTOS_ALL, &proto) < 0) {
		stream_request_free(req);
		atomic_fetch_sub(&srv->sessions, 1);
		return answer(c, MHD_HTTP_FORBIDDEN,
			      pf ? "no common Sec-WebSocket-Protocol: v4.channel.k8s.io, "
				   "v4.base64.channel.k8s.io (or none)\n"
				 : "no common Sec-WebSocket-Protocol: v4.channel.k8s.io, "
				   "v4.base64.channel.k8s.io, channel.k8s.io, "
				   "base64.channel.k8s.io\n");
	}
	char why[96];
	const char *bad = pf ? pf_ports_of(req, proto, &qp, why, sizeof(why)) : NULL;
	if (bad) {
		stream_request_free(req);
		atomic_fetch_sub(&srv->sessions, 1);
		return answer(c, MHD_HTTP_BAD_REQUEST, bad);
	}
	struct session *s = calloc(1, sizeof(*s));
	if (s) {
		s->fd = -1;
		s->req = req;
	}
	if (!s || ws_transport_init(s, proto) < 0 ||
	    (kind == STREAM_KIND_EXEC     ? exec_backend_init(s)
	     : kind == STREAM_KIND_ATTACH ? attach_backend_init(s)
					  : portforward_backend_init_ws(s, qp.v, qp.n)) < 0) {
		if (s)
			session_run(s, NULL, 0); /* frees */
		else
			stream_request_free(req);
		atomic_fetch_sub(&srv->sessions, 1);
		return answer(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	s->idle_ms = srv->idle_ms;
	s->monitors = srv->monitors;
	s->exec_helper = srv->exec_helper;
	s->portfwd_helper = srv->portfwd_helper;
	rq->session = s;
	struct MHD_Response *resp = sym_MHD_create_response_for_upgrade(on_upgrade, srv);
	if (!resp)
		return MHD_NO;
	sym_MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	sym_MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	sym_MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	if (ws_proto_name(proto))
		sym_MHD_add_response_header(resp, "Sec-WebSocket-Protocol", ws_proto_name(proto));
	enum MHD_Result r = sym_MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	sym_MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	(void)version;
	(void)upload_data;
	struct stream_server *srv = cls;
	if (!*req_cls) {
		struct request *rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->srv = srv;
		*req_cls = rq;
		return MHD_YES; /* the headers are in; the body (none) next */
	}
	struct request *rq = *req_cls;
	if (*upload_data_size) {
		*upload_data_size = 0; /* a body is read and dropped */
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0 && strcmp(method, "GET") != 0)
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and POST\n");
	enum stream_kind kind;
	const char *token;
	if (strncmp(url, "/exec/", 6) == 0) {
		kind = STREAM_KIND_EXEC;
		token = url + 6;
	} else if (strncmp(url, "/attach/", 8) == 0) {
		kind = STREAM_KIND_ATTACH;
		token = url + 8;
	} else if (strncmp(url, "/portforward/", 13) == 0) {
		kind = STREAM_KIND_PORTFORWARD;
		token = url + 13;
	} else {
		return answer(c, MHD_HTTP_NOT_FOUND, "not found\n");
	}
	if (header_has(c, "Upgrade", "websocket"))
		return websocket_request(srv, rq, c, method, kind, token);
	if (!header_has(c, "Connection", "upgrade") || !header_has(c, "Upgrade", "SPDY/3.1"))
		return answer(c, MHD_HTTP_BAD_REQUEST, "an upgrade to SPDY/3.1 is required\n");
	struct stream_request *req;
	enum MHD_Result refused;
	if (!(req = claim_session(srv, c, token, kind, &refused)))
		return refused;
	bool pf = kind == STREAM_KIND_PORTFORWARD;
	struct proto_pick pp = { .list = pf ? pf_protocols : protocols,
				 .n = pf ? ARRAY_SIZE(pf_protocols) : ARRAY_SIZE(protocols),
				 .best = -1 };
	sym_MHD_get_connection_values(c, MHD_HEADER_KIND, pick_protocol, &pp);
	if (pp.any && pp.best < 0) {
		stream_request_free(req);
		atomic_fetch_sub(&srv->sessions, 1);
		return answer(c, MHD_HTTP_FORBIDDEN,
			      pf ? "no common X-Stream-Protocol-Version: portforward.k8s.io\n"
				 : "no common X-Stream-Protocol-Version: v4.channel.k8s.io, "
				   "v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io\n");
	}
	struct session *s = calloc(1, sizeof(*s));
	if (!s || spdy_transport_init(s) < 0 ||
	    (kind == STREAM_KIND_EXEC     ? exec_backend_init(s)
	     : kind == STREAM_KIND_ATTACH ? attach_backend_init(s)
					  : portforward_backend_init(s)) < 0) {
		if (s) {
			s->req = req;
			s->fd = -1;
			session_run(s, NULL, 0); /* frees */
		} else {
			stream_request_free(req);
		}
		atomic_fetch_sub(&srv->sessions, 1);
		return answer(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	s->fd = -1;
	s->req = req;
	s->proto = pp.best < 0 || pf ? PROTO_V1 : (enum stream_proto)pp.best;
	s->idle_ms = srv->idle_ms;
	s->monitors = srv->monitors;
	s->exec_helper = srv->exec_helper;
	s->portfwd_helper = srv->portfwd_helper;
	s->pair_wait_ms = srv->pair_wait_ms;
	rq->session = s;
	struct MHD_Response *resp = sym_MHD_create_response_for_upgrade(on_upgrade, srv);
	if (!resp)
		return MHD_NO;
	sym_MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "SPDY/3.1");
	sym_MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	if (pp.best >= 0)
		sym_MHD_add_response_header(resp, "X-Stream-Protocol-Version", pp.list[pp.best]);
	enum MHD_Result r = sym_MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	sym_MHD_destroy_response(resp);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)c;
	(void)toe;
	struct stream_server *srv = cls;
	struct request *rq = *req_cls;
	if (!rq)
		return;
	if (rq->session) {
		/* Answered 101 but never upgraded: the session never ran. */
		struct session *s = TAKE_PTR(rq->session);
		s->fd = -1;
		session_run(s, NULL, 0);
		atomic_fetch_sub(&srv->sessions, 1);
	}
	free(rq);
	*req_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) _printf_(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_info("streaming: http: %s", buf);
}

/* ---- open ---- */

/* stream_tls_cert and stream_tls_key: both or neither; read here (as
 * monitord, before any thread: the key may be readable by root alone). */
static int tls_config_of(const struct cric_config *cfg, struct stream_server *srv,
			 struct cric_err *err)
{
	const json_t *sec = json_object_get(cfg->doc, "monitord");
	const json_t *cert = json_object_get(sec, "stream_tls_cert");
	const json_t *key = json_object_get(sec, "stream_tls_key");
	if (cert && (!json_is_string(cert) || !*json_string_value(cert)))
		return config_bad_key(cfg, "monitord", "stream_tls_cert",
				      "the path of a PEM certificate", err);
	if (key && (!json_is_string(key) || !*json_string_value(key)))
		return config_bad_key(cfg, "monitord", "stream_tls_key",
				      "the path of a PEM private key", err);
	if (!cert != !key)
		return config_bad_key(cfg, "monitord", cert ? "stream_tls_key" : "stream_tls_cert",
				      cert ? "set with stream_tls_cert" : "set with stream_tls_key",
				      err);
	if (!cert)
		return 0;
	int r = mhd_dl_load(err);
	if (r < 0)
		return err_prefix(err, r, "streaming server");
	if (sym_MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return err_set(err, -ENOTSUP,
			       "config \"%s\": \"monitord.stream_tls_cert\" is set but this "
			       "libmicrohttpd was built without TLS",
			       cfg->config_file);
	size_t n;
	r = read_file(json_string_value(cert), TLS_FILE_MAX, &srv->tls_cert, &n);
	if (r < 0)
		return err_set(err, r, "streaming server: read the TLS certificate \"%s\": %s",
			       json_string_value(cert), strerror(-r));
	r = read_file(json_string_value(key), TLS_FILE_MAX, &srv->tls_key, &srv->tls_key_len);
	if (r < 0)
		return err_set(err, r, "streaming server: read the TLS key \"%s\": %s",
			       json_string_value(key), strerror(-r));
	return 0;
}

static int config_of(const struct cric_config *cfg, struct stream_server *srv, struct cric_err *err)
{
	const json_t *sec = json_object_get(cfg->doc, "monitord");
	const json_t *addr = json_object_get(sec, "stream_address");
	const json_t *port = json_object_get(sec, "stream_port");
	const json_t *idle = json_object_get(sec, "stream_idle_timeout_s");
	const json_t *max = json_object_get(sec, "stream_sessions_max");
	const char *a = "127.0.0.1";
	if (addr) {
		if (!json_is_string(addr))
			return config_bad_key(cfg, "monitord", "stream_address", "an IP address",
					      err);
		a = json_string_value(addr);
	}
	struct in6_addr tmp;
	if (inet_pton(AF_INET, a, &tmp) == 1)
		srv->v6 = false;
	else if (inet_pton(AF_INET6, a, &tmp) == 1)
		srv->v6 = true;
	else
		return config_bad_key(cfg, "monitord", "stream_address", "an IP address", err);
	snprintf(srv->address, sizeof(srv->address), "%s", a);
	if (port && (!json_is_integer(port) || json_integer_value(port) < 0 ||
		     json_integer_value(port) > 65535))
		return config_bad_key(cfg, "monitord", "stream_port", "a port (0: ephemeral)", err);
	srv->port = port ? (uint16_t)json_integer_value(port) : 0;
	if (idle && (!json_is_integer(idle) || json_integer_value(idle) < 0 ||
		     json_integer_value(idle) > 365LL * 86400))
		return config_bad_key(cfg, "monitord", "stream_idle_timeout_s", "seconds (0: none)",
				      err);
	srv->idle_ms = (idle ? json_integer_value(idle) : IDLE_DEFAULT_S) * 1000;
	if (max && (!json_is_integer(max) || json_integer_value(max) < 1 ||
		    json_integer_value(max) > 4096))
		return config_bad_key(cfg, "monitord", "stream_sessions_max", "1 to 4096", err);
	srv->sessions_max = max ? (size_t)json_integer_value(max) : SESSIONS_MAX_DEF;
	const json_t *pair = json_object_get(sec, "stream_pair_timeout_s");
	if (pair && (!json_is_integer(pair) || json_integer_value(pair) < 1 ||
		     json_integer_value(pair) > 3600))
		return config_bad_key(cfg, "monitord", "stream_pair_timeout_s", "1 to 3600 seconds",
				      err);
	srv->pair_wait_ms = (pair ? json_integer_value(pair) : PAIR_WAIT_DEFAULT_S) * 1000;
	return tls_config_of(cfg, srv, err);
}

/* The listening socket, bound here (with monitord's privileges: a port
 * below 1024 needs them). */
static int listen_on(struct stream_server *srv)
{
	struct sockaddr_in sa4 = { .sin_family = AF_INET, .sin_port = htons(srv->port) };
	struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(srv->port) };
	inet_pton(AF_INET, srv->address, &sa4.sin_addr);
	inet_pton(AF_INET6, srv->address, &sa6.sin6_addr);
	int fd = socket(srv->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (srv->v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, srv->v6 ? (struct sockaddr *)&sa6 : (struct sockaddr *)&sa4,
		 srv->v6 ? sizeof(sa6) : sizeof(sa4)) < 0 ||
	    listen(fd, 128) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Drop every capability of the calling thread (capabilities are per
 * thread; threads it makes inherit its sets). */
static int drop_thread_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* lazyhttp's start: the HTTP server on fd, made on a thread of no
 * capabilities, which it keeps: the HTTP parsing holds none of
 * monitord's. */
static int start_mhd(void *ud, int fd, struct cric_err *err)
{
	struct stream_server *srv = ud;
	int r = mhd_dl_load(err);
	if (r < 0)
		return r;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_UPGRADE |
			     MHD_USE_ERROR_LOG | (srv->v6 ? MHD_USE_IPv6 : 0) |
			     (srv->tls_cert ? MHD_USE_TLS : 0);
	/* Without TLS the key options end the list (MHD_OPTION_END). */
	srv->mhd = sym_MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)srv->sessions_max, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)REQUEST_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)HEADERS_MAX, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    srv->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, srv->tls_cert,
	    MHD_OPTION_HTTPS_MEM_KEY, srv->tls_key, MHD_OPTION_END);
	if (!srv->mhd)
		return err_set(err, -EIO, "%s",
			       srv->tls_cert ? "libmicrohttpd did not start: is the TLS key the "
					       "certificate's, both PEM? (see its message above)"
					     : "libmicrohttpd did not start");
	return 0;
}

int stream_server_open(const struct cric_config *cfg, struct monitors *m, const char *exec_helper,
		       struct stream_server **ret, struct cric_err *err)
{
	struct stream_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->done, NULL);
	pthread_mutex_init(&srv->qlock, NULL);
	pthread_cond_init(&srv->qcond, NULL);
	pthread_cond_init(&srv->qdone, NULL);
	srv->monitors = m;
	int r = config_of(cfg, srv, err);
	if (r == 0 && (!(srv->exec_helper = strdup(exec_helper)) ||
		       !(srv->portfwd_helper = portfwd_helper_default())))
		r = -ENOMEM;
	if (r == 0)
		r = tokens_init(&srv->tokens, TOKENS_MAX_DEF, TOKENS_TTL_MS);
	if (r < 0) {
		stream_server_free(srv);
		return r;
	}
	int fd = listen_on(srv);
	if (fd < 0) {
		r = err_set(err, fd, "streaming server: cannot listen on %s port %u: %s",
			    srv->address, (unsigned)srv->port, strerror(-fd));
		stream_server_free(srv);
		return r;
	}
	int port = lazy_http_port(fd);
	if (port > 0)
		srv->port = (uint16_t)port;
	/* Plain HTTP starts at the first connection (no exec, attach or
	 * port-forward: no libmicrohttpd); TLS now, to report a bad key. */
	if ((r = lazy_http_open(fd, "streaming server", srv->tls_cert != NULL, start_mhd, srv,
				&srv->http, err)) < 0) {
		r = err_prefix(err, r, "streaming server");
		stream_server_free(srv);
		return r;
	}
	log_info("streaming server on %s port %u%s", srv->address, (unsigned)srv->port,
		 srv->tls_cert ? " (TLS)" : "");
	*ret = srv;
	return 0;
}

void stream_server_free(struct stream_server *srv)
{
	if (!srv)
		return;
	if (atomic_load(&srv->sessions) > 0) {
		/* monitord is going away and its sessions with it (their
		 * helpers see their report pipes close and kill the execs):
		 * the server stays for them until the process ends. */
		log_info("streaming: %zu sessions still running at exit",
			 (size_t)atomic_load(&srv->sessions));
		return;
	}
	lazy_http_free(srv->http); /* after it, mhd is set or never will be */
	if (srv->mhd)
		sym_MHD_stop_daemon(srv->mhd);
	pthread_mutex_lock(&srv->qlock);
	srv->stopping = true;
	bool launcher = srv->launcher_started;
	pthread_cond_signal(&srv->qcond);
	pthread_mutex_unlock(&srv->qlock);
	if (launcher)
		pthread_join(srv->launcher, NULL);
	tokens_done(&srv->tokens);
	if (srv->tls_key)
		explicit_bzero(srv->tls_key, srv->tls_key_len);
	free(srv->tls_key);
	free(srv->tls_cert);
	free(srv->exec_helper);
	free(srv->portfwd_helper);
	free(srv);
}

uint16_t stream_server_port(const struct stream_server *srv)
{
	return srv->port;
}

/* The launcher starts with the first URL handed out, on the worker thread
 * of that call (monitord's privileges, which it inherits): sessions come
 * only with a token. */
static int launcher_start(struct stream_server *srv)
{
	pthread_mutex_lock(&srv->qlock);
	int r = 0;
	if (!srv->launcher_started && !srv->stopping) {
		r = -pthread_create(&srv->launcher, NULL, launcher_thread, srv);
		srv->launcher_started = r == 0;
	}
	pthread_mutex_unlock(&srv->qlock);
	return r;
}

int stream_server_url(struct stream_server *srv, struct stream_request *req, char **url,
		      struct cric_err *err)
{
	int r = launcher_start(srv);
	if (r < 0) {
		stream_request_free(req);
		return err_set(err, r, "streaming server: start its launcher thread: %s",
			       strerror(-r));
	}
	char token[TOKEN_LEN + 1];
	const char *kind = req->kind == STREAM_KIND_EXEC     ? "exec"
			   : req->kind == STREAM_KIND_ATTACH ? "attach"
							     : "portforward";
	r = tokens_put(&srv->tokens, req, token);
	if (r < 0)
		stream_request_free(req);
	if (r == -EAGAIN)
		return err_set(err, -EAGAIN,
			       "too many streaming requests outstanding, retry later");
	if (r < 0)
		return err_set(err, r, "make a token: %s", strerror(-r));
	if (asprintf(url, srv->v6 ? "%s://[%s]:%u/%s/%s" : "%s://%s:%u/%s/%s",
		     srv->tls_cert ? "https" : "http", srv->address, (unsigned)srv->port, kind,
		     token) < 0)
		return -ENOMEM; /* the token stays until it expires */
	return 0;
}
