/* nng rep server with a worker pool; see ipc.h for the contract. */
#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "cleanup.h"
#include "ipc.h"
#include "ipc_listen.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "service.h"

/* How long no call starts or ends before the server trims the heap. */
#define IPC_TRIM_AFTER_MS 1000

/* Slots beyond cfg.workers: a request for a method declared nonblocking
 * (service.h) finds a slot to arrive in while every worker is busy. */
#define INLINE_SLOTS 2

/* One request at a time, from its arrival to its reply: an nng context
 * with its receive (whose callback runs on nng's thread, synchronously
 * with the arrival) and its send (no callback: nng completes it as it
 * hands the reply to the pipe). A nonblocking method is answered there
 * and then; any other waits in the work queue for a worker thread. */
struct slot {
	struct cric_server *server;
	nng_ctx ctx;
	nng_aio *recv_aio, *send_aio;
	struct slot *next; /* in the work queue */
	struct cric_peer peer;
	struct cric_envelope env; /* decoded; env.owner NULL when undecodable */
	const struct cric_route_entry *route;
	/* The call this slot serves, under the server's calls_lock (the
	 * in-flight table cric.Cancel looks in): its request id ("" when
	 * idle) and its cancel flag (atomic; struct cric_call points at it). */
	char request_id[IPC_REQUEST_ID_MAX + 1];
	int cancel;
};

struct cric_server {
	struct cric_server_config cfg;
	char bin_dir[PATH_MAX];         /* cfg.ids.bin_dir points here */
	struct cric_method_table table; /* cfg's services and cric.Health */
	char *daemon;
	char *version;
	nng_socket sock;
	struct ipc_listener *listener;
	/* cfg.workers + INLINE_SLOTS slots, each receiving. */
	struct slot *slots;
	unsigned n_slots;
	/* The work queue (under work_lock): slots whose request waits for a
	 * worker thread. Threads start on demand: one at first, another
	 * whenever a request is queued and no thread is free to take it, up
	 * to cfg.workers. A worker thread costs its stack pages, its TLS and
	 * its malloc cache (about 10 KiB idle, more once a deep handler ran
	 * on it): a daemon serving one call at a time keeps one. */
	pthread_t *threads;
	unsigned n_threads;
	pthread_mutex_t work_lock;
	pthread_cond_t work_cond;
	struct slot *queue, **queue_tail;
	unsigned idle; /* threads free to take a request, not yet claimed */
	/* A second after calls stopped starting and ending, malloc_trim():
	 * glibc gives back only the top of a heap by itself, so what a burst
	 * of pods or calls left free in the middle stayed resident (runtimed
	 * held 10 MiB after 100 pods came and went). Quiet, not idle: a long
	 * poll (the gateway's WatchEvents on runtimed) is always in flight.
	 * activity counts calls' starts and ends; trim_armed: the timer runs
	 * (on nng's task threads), trim_mark is activity when it was set
	 * (written by whoever set trim_armed). */
	nng_aio *trim_aio;
	atomic_bool trim_armed;
	atomic_ullong activity;
	unsigned long long trim_mark;
	atomic_uint trims; /* done so far */
	atomic_bool stopping;
	int64_t started_ns;
	pthread_mutex_t calls_lock;
	/* Who is at the other end of each open pipe, identified when it
	 * connects: SO_PEERCRED is the connecting process's and does not
	 * change for the connection's life, and reading its /proc entries
	 * for every request cost runtimed ~10% of a ListContainers (perf).
	 * Forgotten when the pipe closes. */
	pthread_mutex_t peers_lock;
	struct peer_slot {
		uint32_t pipe_id;
		struct cric_peer peer;
	} * peers;
	size_t n_peers, cap_peers;
};

bool cric_call_cancelled(const struct cric_call *call)
{
	return call && call->cancel && __atomic_load_n(call->cancel, __ATOMIC_ACQUIRE);
}

/* Enter slot w's call with request_id in the in-flight table. */
static void call_begin(struct slot *w, const char *request_id)
{
	pthread_mutex_lock(&w->server->calls_lock);
	snprintf(w->request_id, sizeof(w->request_id), "%s", request_id);
	__atomic_store_n(&w->cancel, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->server->calls_lock);
}

static void call_end(struct slot *w)
{
	pthread_mutex_lock(&w->server->calls_lock);
	w->request_id[0] = '\0';
	pthread_mutex_unlock(&w->server->calls_lock);
}

/* Mark the calls in flight with request_id cancelled; how many. */
static unsigned calls_cancel(struct cric_server *s, const char *request_id)
{
	unsigned n = 0;
	pthread_mutex_lock(&s->calls_lock);
	for (unsigned i = 0; i < s->n_slots; i++) {
		struct slot *w = &s->slots[i];
		if (w->request_id[0] && strcmp(w->request_id, request_id) == 0) {
			__atomic_store_n(&w->cancel, 1, __ATOMIC_RELEASE);
			n++;
		}
	}
	pthread_mutex_unlock(&s->calls_lock);
	return n;
}

/* True when uid is a member of group gid (primary or supplementary). */
static bool user_in_group(uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	if (res->pw_gid == gid)
		return true;
	gid_t groups[256];
	int n = (int)ARRAY_SIZE(groups);
	if (getgrouplist(res->pw_name, res->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

static void peer_keep(struct cric_server *s, nng_pipe p);

/* Who may connect at all: root, the daemons' users, members of group cric
 * (the socket's permissions say the same; this holds when they are
 * loosened by mistake). */
static void pipe_check_peer(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)ev;
	struct cric_server *s = arg;
	const struct cric_identities *ids = &s->cfg.ids;
	ipc_listener_pipe_added(s->listener);
	uint64_t uid = (uint64_t)-1, gid = (uint64_t)-1;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0 ||
	    nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &gid) != 0) {
		log_warning("connection without peer credentials, dropping it");
		nng_pipe_close(p);
		return;
	}
	if (uid == 0 || uid == ids->gateway_uid || uid == ids->imaged_uid ||
	    (ids->group_gid != (gid_t)-1 &&
	     (gid == ids->group_gid || user_in_group((uid_t)uid, ids->group_gid)))) {
		peer_keep(s, p);
		return;
	}
	log_warning("connection from uid %llu refused: only root, the daemons' users and group "
		    "cric may call %s",
		    (unsigned long long)uid, s->daemon);
	nng_pipe_close(p);
}

/* Identify the caller on pipe p from its peer credentials. */
static void pipe_peer(struct cric_server *s, nng_pipe p, struct cric_peer *ret)
{
	uint64_t uid = (uint64_t)-1, gid = (uint64_t)-1, pid = 0;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0 ||
	    nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &gid) != 0) {
		memset(ret, 0, sizeof(*ret));
		ret->uid = (uid_t)-1;
		return; /* caller 0: nobody */
	}
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) != 0)
		pid = 0;
	peer_identify(&s->cfg.ids, (uid_t)uid, (gid_t)gid, (pid_t)pid, ret);
}

/* Keep the caller on pipe p (pipe_check_peer, before its first request);
 * without memory it is identified at each request instead. */
static void peer_keep(struct cric_server *s, nng_pipe p)
{
	struct peer_slot slot = { .pipe_id = (uint32_t)nng_pipe_id(p) };
	pipe_peer(s, p, &slot.peer);
	pthread_mutex_lock(&s->peers_lock);
	if (s->n_peers == s->cap_peers) {
		size_t cap = s->cap_peers ? 2 * s->cap_peers : 8;
		struct peer_slot *v = realloc(s->peers, cap * sizeof(*v));
		if (v) {
			s->peers = v;
			s->cap_peers = cap;
		}
	}
	if (s->n_peers < s->cap_peers)
		s->peers[s->n_peers++] = slot;
	pthread_mutex_unlock(&s->peers_lock);
}

/* The caller of a request received on pipe p. */
static void request_peer(struct cric_server *s, nng_pipe p, struct cric_peer *ret)
{
	uint32_t id = (uint32_t)nng_pipe_id(p);
	pthread_mutex_lock(&s->peers_lock);
	for (size_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].pipe_id == id) {
			*ret = s->peers[i].peer;
			pthread_mutex_unlock(&s->peers_lock);
			return;
		}
	pthread_mutex_unlock(&s->peers_lock);
	pipe_peer(s, p, ret);
}

/* A pipe closed: forget its caller (its id is not reused by the socket). */
static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)ev;
	struct cric_server *s = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	pthread_mutex_lock(&s->peers_lock);
	for (size_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].pipe_id == id) {
			s->peers[i] = s->peers[--s->n_peers];
			break;
		}
	pthread_mutex_unlock(&s->peers_lock);
}

static int health(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		  ProtobufCMessage **resp, struct cric_err *err)
{
	(void)call;
	(void)req;
	(void)err;
	struct cric_server *s = userdata;
	Cric__HealthResponse *h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	cric__health_response__init(h);
	h->daemon = strdup(s->daemon);
	h->version = strdup(s->version);
	h->pid = getpid();
	h->started_at_unix_ns = s->started_ns;
	if (!h->daemon || !h->version) {
		protobuf_c_message_free_unpacked(&h->base, NULL);
		return -ENOMEM;
	}
	*resp = &h->base;
	return 0;
}

static int cancel(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		  ProtobufCMessage **resp, struct cric_err *err)
{
	(void)call;
	struct cric_server *s = userdata;
	const Cric__CancelRequest *in = (const void *)req;
	if (!in->request_id || !in->request_id[0])
		return err_set(err, -EINVAL, "cancel: no request id");
	if (strlen(in->request_id) > IPC_REQUEST_ID_MAX)
		return err_set(err, -EINVAL, "cancel: request id longer than %d bytes",
			       IPC_REQUEST_ID_MAX);
	unsigned n = calls_cancel(s, in->request_id);
	if (n > 0) {
		log_info("cancelled by the caller: request %s (%u call%s)", in->request_id, n,
			 n == 1 ? "" : "s");
		if (s->cfg.cancelled)
			s->cfg.cancelled(s->cfg.userdata);
	} else {
		log_debug("cancel of request %s: not in flight, ignoring", in->request_id);
	}
	Cric__CancelResponse *out = malloc(sizeof(*out));
	if (!out)
		return -ENOMEM;
	cric__cancel_response__init(out);
	out->cancelled = n;
	*resp = &out->base;
	return 0;
}

static int metrics(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		   ProtobufCMessage **resp, struct cric_err *err)
{
	(void)call;
	(void)req;
	(void)err;
	struct cric_server *s = userdata;
	Cric__MetricsResponse *m;
	int r = metrics_snapshot(s->daemon, s->started_ns, &m);
	if (r < 0)
		return r;
	*resp = &m->base;
	return 0;
}

/* Health: asked by cricctl health (cric-up waits on it) and cric-call.
 * Metrics: monitord's /metrics (and root's tools).
 * Cancel: the gateway's, for its clients' cancellations; root's tools may
 * send it too (root can stop any call anyway). Nonblocking, so that it
 * reaches calls that hold every worker. */
static const struct cric_handler health_line[] = {
	{ CRIC_HEALTH(health), health, .callers = CALLER_ANY, .cap_ms = HEALTH_CAP_MS,
	  .nonblocking = true },
	{ CRIC_HEALTH(cancel), cancel, .callers = CALLER_GATEWAY | CALLER_ADMIN,
	  .cap_ms = HEALTH_CAP_MS, .nonblocking = true },
	/* Not nonblocking: runtimed's collector takes container locks and may
	 * ask monitord. */
	{ CRIC_HEALTH(metrics), metrics, .callers = CALLER_MONITORD | CALLER_ADMIN,
	  .cap_ms = HEALTH_CAP_MS },
};

static int table_build(const struct cric_server_config *cfg, struct cric_method_table *ret,
		       struct cric_err *err)
{
	if (cfg->n_services > 16)
		return err_set(err, -E2BIG, "%s: %zu services", cfg->daemon, cfg->n_services);
	struct cric_service all[17];
	for (size_t i = 0; i < cfg->n_services; i++)
		all[i] = cfg->services[i];
	all[cfg->n_services] = (struct cric_service){ &cric__health__descriptor, health_line,
						      ARRAY_SIZE(health_line) };
	return cric_method_table_build(cfg->daemon, all, cfg->n_services + 1, ret, err);
}

/* The Reply as an nng message, the answer packed straight into it. */
static int reply_msg(unsigned code, const char *message, const ProtobufCMessage *payload,
		     nng_msg **ret)
{
	nng_msg *m = NULL;
	if (nng_msg_alloc(&m, reply_packed_size(code, message, payload)) != 0)
		return -ENOMEM;
	reply_pack_into(code, message, payload, nng_msg_body(m));
	*ret = m;
	return 0;
}

/* Run slot w's decoded request; returns the Reply (never NULL unless
 * OOM). */
static int dispatch(struct slot *w, nng_msg **ret)
{
	struct cric_server *s = w->server;
	struct cric_err err = { { 0 } };
	struct cric_envelope *env = &w->env;
	const struct cric_peer *peer = &w->peer;
	struct log_ctx lctx = { .method = env->method, .request_id = env->request_id };
	log_ctx_set(&lctx);

	const struct cric_route_entry *m = w->route;
	void *userdata = m && m->method.service == &cric__health__descriptor ? s : s->cfg.userdata;
	unsigned code = CODE_OK;
	_cleanup_free_ char *msg = NULL;
	_cleanup_pb_ ProtobufCMessage *resp = NULL;
	int r;

	if (!m) {
		code = CODE_UNIMPLEMENTED;
		if (asprintf(&msg, "%s is not a method cric's %s serves", env->method, s->daemon) <
		    0)
			msg = NULL;
	} else if (!m->handler || !m->handler->fn) {
		code = CODE_UNIMPLEMENTED;
		if (asprintf(&msg, "%s is not implemented by cric's %s yet", env->method,
			     s->daemon) < 0)
			msg = NULL;
	} else if (!(m->handler->callers & peer->caller)) {
		code = CODE_PERMISSION_DENIED;
		log_warning("refused: %s may not be called by uid %ld pid %ld exe \"%s\" comm "
			    "\"%s\" (%s)",
			    env->method, peer->uid == (uid_t)-1 ? -1L : (long)peer->uid,
			    (long)peer->pid, peer->exe[0] ? peer->exe : "?",
			    peer->comm[0] ? peer->comm : "?", caller_name(peer->caller));
		if (asprintf(&msg, "%s may not be called by %s (uid %ld)", env->method,
			     caller_name(peer->caller),
			     peer->uid == (uid_t)-1 ? -1L : (long)peer->uid) < 0)
			msg = NULL;
	} else if (env->deadline_ns > 0 && env->deadline_ns <= now_unix_ns()) {
		code = CODE_DEADLINE_EXCEEDED;
		msg = strdup("deadline passed before the request was handled");
	} else {
		ProtobufCMessage *in =
		    protobuf_c_message_unpack(m->md->input, NULL, env->len, env->payload);
		if (!in) {
			code = CODE_INVALID_ARGUMENT;
			if (asprintf(&msg, "cannot decode %s request as %s", env->method,
				     m->md->input->name) < 0)
				msg = NULL;
		} else {
			struct cric_call call = { .daemon = s->daemon,
						  .method = env->method,
						  .request_id = env->request_id,
						  .deadline_ns = env->deadline_ns,
						  .callers = m->handler->callers,
						  .cap_ms = m->handler->cap_ms,
						  .caller = peer->caller,
						  .peer_uid = peer->uid,
						  .peer_pid = peer->pid,
						  .cancel = &w->cancel };
			call_begin(w, env->request_id);
			r = m->handler->fn(userdata, &call, in, &resp, &err);
			call_end(w);
			protobuf_c_message_free_unpacked(in, NULL);
			if (r < 0) {
				code = grpc_code_from_errno(r);
				msg = strdup(err.msg[0] ? err.msg : strerror(-r));
				log_info("failed: %s (%s)", msg ? msg : "", grpc_code_name(code));
			}
		}
	}
	log_debug("done: %s", grpc_code_name(code));
	r = reply_msg(code, msg, code == CODE_OK ? resp : NULL, ret);
	if (r < 0 && code == CODE_OK && resp) /* the answer does not fit in memory */
		r = reply_msg(CODE_RESOURCE_EXHAUSTED, "out of memory packing the answer", NULL,
			      ret);
	envelope_done(env);
	log_ctx_set(NULL);
	return r;
}

static void *worker(void *arg);

/* The trim timer fired (or was stopped): trim if no call started or
 * ended since it was set, else look again a second later. */
static void trim_when_quiet(void *arg)
{
	struct cric_server *s = arg;
	if (nng_aio_result(s->trim_aio) != 0 || atomic_load(&s->stopping)) {
		atomic_store(&s->trim_armed, false);
		return;
	}
	unsigned long long now = atomic_load(&s->activity);
	if (now != s->trim_mark) {
		s->trim_mark = now;
		nng_sleep_aio(IPC_TRIM_AFTER_MS, s->trim_aio);
		return;
	}
	malloc_trim(0);
	atomic_fetch_add(&s->trims, 1);
	atomic_store(&s->trim_armed, false);
}

unsigned cric_server_trims(struct cric_server *s)
{
	return atomic_load(&s->trims);
}

unsigned cric_server_workers(struct cric_server *s)
{
	pthread_mutex_lock(&s->work_lock);
	unsigned n = s->n_threads;
	pthread_mutex_unlock(&s->work_lock);
	return n;
}

/* Start the next worker thread unless all run or the server stops; it is
 * claimed from birth (takes the request that made it). With work_lock.
 * Threads a worker makes inherit its credentials, capabilities and
 * namespaces: the daemon's, as handlers change a thread's only on threads
 * of their own (nspin.h). */
static int worker_spawn(struct cric_server *s)
{
	if (atomic_load(&s->stopping) || s->n_threads == s->cfg.workers)
		return 0;
	int rv = pthread_create(&s->threads[s->n_threads], NULL, worker, s);
	if (rv != 0)
		return -rv;
	s->n_threads++;
	return 0;
}

/* Wait for slot w's next request. */
static void slot_listen(struct slot *w)
{
	if (!atomic_load(&w->server->stopping))
		nng_ctx_recv(w->ctx, w->recv_aio);
}

/* Send the Reply (built by dispatch) and take the next request. The send
 * completes as nng hands the reply to the pipe: at once, or once the reply
 * before it on the pipe went out. */
static void slot_reply(struct slot *w, int r, nng_msg *rep)
{
	struct cric_server *s = w->server;
	atomic_fetch_add(&s->activity, 1);
	if (!atomic_exchange(&s->trim_armed, true)) {
		s->trim_mark = atomic_load(&s->activity);
		nng_sleep_aio(IPC_TRIM_AFTER_MS, s->trim_aio);
	}
	if (r == 0 && atomic_load(&s->stopping)) {
		nng_msg_free(rep); /* as before the slots: the caller sees the server go */
	} else if (r == 0) {       /* else out of memory: the caller times out */
		nng_aio_set_msg(w->send_aio, rep);
		nng_ctx_send(w->ctx, w->send_aio);
		nng_aio_wait(w->send_aio);
		if (nng_aio_result(w->send_aio) != 0)
			nng_msg_free(rep);
	}
	slot_listen(w);
}

/* Hand slot w's request to a worker thread: a free one, or a new one. */
static void queue_work(struct slot *w)
{
	struct cric_server *s = w->server;
	pthread_mutex_lock(&s->work_lock);
	w->next = NULL;
	*s->queue_tail = w;
	s->queue_tail = &w->next;
	int r = 0;
	if (s->idle > 0)
		s->idle--;
	else
		r = worker_spawn(s);
	pthread_cond_signal(&s->work_cond);
	pthread_mutex_unlock(&s->work_lock);
	if (r < 0)
		log_warning("start another worker: %s, ignoring", strerror(-r));
}

/* A request arrived in slot w (on nng's thread, as it arrived): decode
 * its envelope; answer it here if its method is nonblocking, else queue
 * it for a worker. */
static void slot_received(void *arg)
{
	struct slot *w = arg;
	struct cric_server *s = w->server;
	int rv = nng_aio_result(w->recv_aio);
	if (rv != 0) {
		if (rv != NNG_ECLOSED && rv != NNG_ECANCELED)
			slot_listen(w);
		return;
	}
	nng_msg *msg = nng_aio_get_msg(w->recv_aio);
	nng_aio_set_msg(w->recv_aio, NULL);
	if (atomic_load(&s->stopping)) {
		nng_msg_free(msg);
		return;
	}
	atomic_fetch_add(&s->activity, 1);
	request_peer(s, nng_msg_get_pipe(msg), &w->peer);
	struct cric_err err = { { 0 } };
	int r = envelope_unpack(nng_msg_body(msg), nng_msg_len(msg), &w->env, &err);
	nng_msg_free(msg);
	nng_msg *rep = NULL;
	if (r < 0) {
		log_warning("bad request: %s", err.msg);
		slot_reply(w, reply_msg(CODE_INVALID_ARGUMENT, err.msg, NULL, &rep), rep);
		return;
	}
	w->route = cric_method_table_find(&s->table, w->env.method);
	if (w->route && w->route->handler && w->route->handler->nonblocking) {
		r = dispatch(w, &rep);
		slot_reply(w, r, rep);
		return;
	}
	queue_work(w);
}

static void *worker(void *arg)
{
	struct cric_server *s = arg;
	pthread_mutex_lock(&s->work_lock);
	for (;;) {
		while (!s->queue && !atomic_load(&s->stopping))
			pthread_cond_wait(&s->work_cond, &s->work_lock);
		if (atomic_load(&s->stopping))
			break;
		struct slot *w = s->queue;
		s->queue = w->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		pthread_mutex_unlock(&s->work_lock);

		nng_msg *rep = NULL;
		int r = dispatch(w, &rep);
		/* Free again before the reply leaves: the caller's next call,
		 * sent once it has it, finds this thread counted. */
		pthread_mutex_lock(&s->work_lock);
		s->idle++;
		pthread_mutex_unlock(&s->work_lock);
		slot_reply(w, r, rep);
		pthread_mutex_lock(&s->work_lock);
	}
	pthread_mutex_unlock(&s->work_lock);
	return NULL;
}

static void server_free(struct cric_server *s)
{
	if (s->trim_aio)
		nng_aio_free(s->trim_aio); /* waits for its callback */
	ipc_listener_free(s->listener);
	cric_method_table_done(&s->table);
	free(s->slots);
	free(s->threads);
	pthread_mutex_destroy(&s->calls_lock);
	pthread_mutex_destroy(&s->peers_lock);
	free(s->peers);
	pthread_mutex_destroy(&s->work_lock);
	pthread_cond_destroy(&s->work_cond);
	free(s->daemon);
	free(s->version);
	free(s);
}

/* Open cfg.workers + INLINE_SLOTS slots (s->n_slots counts those open). */
static int slots_open(struct cric_server *s)
{
	for (unsigned i = 0; i < s->cfg.workers + INLINE_SLOTS; i++) {
		struct slot *w = &s->slots[i];
		w->server = s;
		if (nng_ctx_open(&w->ctx, s->sock) != 0)
			return -ENOMEM;
		if (nng_aio_alloc(&w->recv_aio, slot_received, w) != 0) {
			nng_ctx_close(w->ctx);
			return -ENOMEM;
		}
		if (nng_aio_alloc(&w->send_aio, NULL, NULL) != 0) {
			nng_aio_free(w->recv_aio);
			nng_ctx_close(w->ctx);
			return -ENOMEM;
		}
		s->n_slots++;
	}
	return 0;
}

int cric_server_start(const struct cric_server_config *cfg, struct cric_server **ret,
		      struct cric_err *err)
{
	struct cric_method_table table = { 0 };
	int r = table_build(cfg, &table, err);
	if (r < 0)
		return r;
	struct cric_server *s = calloc(1, sizeof(*s));
	if (!s) {
		cric_method_table_done(&table);
		return -ENOMEM;
	}
	s->cfg = *cfg;
	pthread_mutex_init(&s->calls_lock, NULL);
	pthread_mutex_init(&s->peers_lock, NULL);
	pthread_mutex_init(&s->work_lock, NULL);
	pthread_cond_init(&s->work_cond, NULL);
	s->queue_tail = &s->queue;
	if (!cfg->ids.bin_dir) {
		if (self_bin_dir(s->bin_dir, sizeof(s->bin_dir)) < 0)
			s->bin_dir[0] = '\0';
	} else {
		snprintf(s->bin_dir, sizeof(s->bin_dir), "%s", cfg->ids.bin_dir);
	}
	s->cfg.ids.bin_dir = s->bin_dir;
	s->table = table;
	s->daemon = strdup(cfg->daemon);
	s->version = strdup(cfg->version);
	s->slots = calloc(cfg->workers + INLINE_SLOTS, sizeof(struct slot));
	s->threads = calloc(cfg->workers ? cfg->workers : 1, sizeof(pthread_t));
	s->started_ns = now_unix_ns();
	if (!s->daemon || !s->version || !s->slots || !s->threads) {
		server_free(s);
		return -ENOMEM;
	}
	if (nng_aio_alloc(&s->trim_aio, trim_when_quiet, s) != 0) {
		server_free(s);
		return -ENOMEM;
	}
	int rv = nng_rep0_open(&s->sock);
	if (rv != 0) {
		server_free(s);
		return err_set(err, -ENOMEM, "open rep socket: %s", nng_strerror(rv));
	}
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, IPC_MAX_MESSAGE + 4096);
	if (strncmp(cfg->url, "ipc://", 6) != 0) {
		nng_close(s->sock);
		server_free(s);
		return err_set(err, -EINVAL, "listen on %s: only ipc:// URLs are served", cfg->url);
	}
	s->listener =
	    ipc_listener_new(s->sock, cfg->url + 6, 0660, cfg->ids.group_gid, cfg->daemon);
	if (!s->listener) {
		nng_close(s->sock);
		server_free(s);
		return -ENOMEM;
	}
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_check_peer, s);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_removed, s);
	r = ipc_listener_start(s->listener, err);
	if (r < 0) {
		nng_close(s->sock);
		server_free(s);
		return r;
	}
	if ((r = slots_open(s)) < 0) {
		cric_server_stop(s);
		return err_set(err, r, "open the request contexts: %s", strerror(-r));
	}
	/* One thread waits at first. */
	pthread_mutex_lock(&s->work_lock);
	r = worker_spawn(s);
	if (r == 0)
		s->idle = 1;
	pthread_mutex_unlock(&s->work_lock);
	if (r < 0) {
		cric_server_stop(s);
		return err_set(err, r, "start a worker thread: %s", strerror(-r));
	}
	for (unsigned i = 0; i < s->n_slots; i++)
		slot_listen(&s->slots[i]);
	*ret = s;
	return 0;
}

void cric_server_stop(struct cric_server *s)
{
	if (!s)
		return;
	/* Quiesce the slots and workers before closing the socket: with nng
	 * 1.5.2, nng_close() racing context operations that are still
	 * completing hung about once in a few thousand stops
	 * (tests/unit/test-ipc.c). nng_aio_stop() aborts a slot's pending
	 * receive, waits for a callback under way (a nonblocking call being
	 * answered) and makes the next receive fail at once. */
	atomic_store(&s->stopping, true);
	ipc_listener_stop(s->listener);
	for (unsigned i = 0; i < s->n_slots; i++)
		nng_aio_stop(s->slots[i].recv_aio);
	/* No request is queued and no worker starts after this (the
	 * callbacks are done; worker_spawn() looks at stopping). The workers
	 * finish the calls they serve; those still queued are dropped. */
	pthread_mutex_lock(&s->work_lock);
	pthread_cond_broadcast(&s->work_cond);
	unsigned n = s->n_threads;
	pthread_mutex_unlock(&s->work_lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(s->threads[i], NULL);
	for (struct slot *w = s->queue; w; w = w->next)
		envelope_done(&w->env);
	for (unsigned i = 0; i < s->n_slots; i++) {
		struct slot *w = &s->slots[i];
		nng_aio_stop(w->send_aio);
		nng_ctx_close(w->ctx);
		nng_aio_free(w->recv_aio);
		nng_aio_free(w->send_aio);
	}
	/* No worker left to arm the timer again. */
	if (s->trim_aio)
		nng_aio_stop(s->trim_aio);
	nng_close(s->sock);
	server_free(s);
}
