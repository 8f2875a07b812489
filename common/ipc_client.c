/* nng req client with per-call contexts; see ipc.h for the contract. */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "cleanup.h"
#include "ids.h"
#include "ipc.h"
#include "log.h"

#define DEFAULT_CALL_MS (10 * 60 * 1000)
/* A call made while the daemon is not connected waits this long for the
 * connection (the dialer retries every 5-250 ms, see RECONNECT_*): a
 * restarting daemon is bridged, a dead one is reported UNAVAILABLE long
 * before any deadline. */
#define CONNECT_GRACE_MS 1000
/* nng's dialer waits a random time below its current back-off before each
 * attempt, and doubles the back-off after each failed one, from
 * NNG_OPT_RECONNMINT (restored when it connects) up to NNG_OPT_RECONNMAXT.
 * A daemon restarting listens again tens of ms after it died: attempts
 * then come at most RECONNECT_FAST_MAX_MS apart, so the first call through
 * waits for the daemon, not for our back-off (a 100-250 ms back-off cost
 * 60-120 ms per restart). Once the daemon stayed away one DIALER_QUIET_MS
 * period the watcher raises the ceiling to RECONNECT_SLOW_MAX_MS (about 8
 * attempts a second, as before), and lowers it again once connected. */
#define RECONNECT_MIN_MS      5
#define RECONNECT_FAST_MAX_MS 50
#define RECONNECT_SLOW_MAX_MS 250
/* nng 1.5.2's dialer gives up for good when a handshake is cut in a certain
 * way (bug #1518, client side: the server dies or closes before our header
 * is written, EPIPE taken for "closed"). A healthy dialer of an unconnected
 * client attempts a connection at least every 250 ms, and each attempt
 * moves one of its statistics; a watcher starts a new dialer beside one
 * whose statistics have not moved for DIALER_QUIET_MS. A dialer in the
 * middle of a slow handshake moves no statistic either, and cutting it
 * would be the aborted handshake that wedges the server's listener (bug
 * #1518, server side, whose recovery cuts every other client's calls): so
 * the quiet dialer is not closed but kept as c->old_dialer (a slow
 * handshake then completes and simply adds a pipe), and only the one
 * before it, quiet for two periods, is closed. */
#define DIALER_QUIET_MS 600
/* Finished calls kept for the next ones, which reuse their nng context and
 * aio: opening and closing both for every call took nng's socket and aio
 * locks, which its task threads contend for (perf: a tenth of the
 * gateway's time per Version call was threads waiting on a lock). */
#define SPARE_CALLS 8

/* A call in flight. Two kinds of reference keep it alive: the operation
 * under way (dropped when the final callback has run) and, briefly, the
 * thread starting an operation (so that it may still look at the call after
 * nng has already completed it on another thread). */
struct pending {
	atomic_int refs;
	struct cric_client *client;
	nng_ctx ctx;
	nng_aio *aio;
	bool receiving;
	bool lost;        /* the connection dropped under this call */
	bool unconnected; /* no connection when the call was made */
	int64_t deadline_ns;
	cric_client_cb cb;
	void *arg;
	struct pending *prev, *next;
};

struct cric_client {
	nng_socket sock;
	uid_t peer_uid; /* the listener's user besides root; -1 none */
	char *name;
	char *url;
	pthread_mutex_t dial_lock; /* dialer; taken without lock held */
	nng_dialer dialer;
	nng_dialer old_dialer; /* the one replaced last (see DIALER_QUIET_MS) */
	bool dial_slow;        /* dialer's ceiling is RECONNECT_SLOW_MAX_MS */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int pipes;
	uint32_t pipe_ids[8];  /* the pipes counted in pipes; 0: free */
	struct pending *calls; /* calls whose callback has not run yet */
	struct pending *done;  /* finished calls, freed or reused off nng's threads */
	unsigned n_done;
	unsigned active; /* calls not yet on the done list */
	bool closing;
	pthread_cond_t unconnected; /* the watcher waits on it (with lock) */
	pthread_t watcher;
	bool watcher_started;
};

static void drain_done(struct cric_client *c, unsigned keep);

/* Before anything is sent on a new connection: the listener must be root
 * or the daemon's user. Another is a process that took the daemon's socket
 * path; it gets no request. */
static void pipe_check_listener(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)ev;
	struct cric_client *c = arg;
	uint64_t uid = (uint64_t)-1;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) == 0 &&
	    (uid == 0 || (c->peer_uid != (uid_t)-1 && uid == c->peer_uid)))
		return;
	log_warning("%s: the listener on %s is uid %lld, not %s's user: disconnecting", c->name,
		    c->url, uid == (uint64_t)-1 ? -1LL : (long long)uid, c->name);
	nng_pipe_close(p);
}

/* nng runs REM_POST for every pipe that saw ADD_PRE, also one closed
 * before ADD_POST (refused by pipe_check_listener, or cut by a dialer
 * being replaced): only pipes that were added count. */
static bool pipe_forget(struct cric_client *c, uint32_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(c->pipe_ids); i++)
		if (c->pipe_ids[i] == id) {
			c->pipe_ids[i] = 0;
			return true;
		}
	return false;
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct cric_client *c = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	pthread_mutex_lock(&c->lock);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		/* One dialer, so one pipe, two while a dialer is replaced. */
		for (size_t i = 0; i < ARRAY_SIZE(c->pipe_ids); i++)
			if (c->pipe_ids[i] == 0) {
				c->pipe_ids[i] = id;
				c->pipes++;
				break;
			}
	} else if (ev == NNG_PIPE_EV_REM_POST && pipe_forget(c, id)) {
		c->pipes--;
		/* One pipe per daemon: when it is gone, so is the daemon that
		 * held our requests. Fail them now instead of letting req
		 * resend them to whoever comes next, at the deadline. */
		if (c->pipes <= 0) {
			c->pipes = 0;
			pthread_cond_signal(&c->unconnected);
			for (struct pending *q = c->calls; q; q = q->next) {
				q->lost = true;
				nng_aio_abort(q->aio, NNG_ECONNRESET);
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* LeakSanitizer's interface, present only in sanitized builds. */
extern void __lsan_disable(void) __attribute__((weak));
extern void __lsan_enable(void) __attribute__((weak));

/* Start a dialer on c->url into c->dialer. */
static int dial(struct cric_client *c)
{
	/* Non-blocking: the daemon may start after us; the dialer retries,
	 * backing off as RECONNECT_* say. nng 1.5.2 may never free a
	 * dialer that gave up (see DIALER_QUIET_MS): known and bounded, so
	 * LeakSanitizer takes its allocations as reachable. */
	if (__lsan_disable)
		__lsan_disable();
	nng_dialer d;
	int rv = nng_dialer_create(&d, c->sock, c->url);
	if (rv == 0) {
		nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
		nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, RECONNECT_FAST_MAX_MS);
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	}
	if (__lsan_enable)
		__lsan_enable();
	if (rv == 0) {
		c->dialer = d;
		c->dial_slow = false;
	}
	return rv;
}

/* The dialer's back-off ceiling (see RECONNECT_*). With dial_lock. */
static void dial_pace(struct cric_client *c, bool slow)
{
	if (c->dial_slow == slow || nng_dialer_id(c->dialer) <= 0)
		return;
	nng_dialer_set_ms(c->dialer, NNG_OPT_RECONNMAXT,
			  slow ? RECONNECT_SLOW_MAX_MS : RECONNECT_FAST_MAX_MS);
	c->dial_slow = slow;
}

/* The sum of the dialer's connection statistics (attempts that connected,
 * were refused, failed...); -1 when it has none (closed). With dial_lock
 * held. */
static int64_t dialer_activity(struct cric_client *c)
{
	static const char *const names[] = { "connect", "refused", "disconnect", "canceled",
					     "other",   "timeout", "proto",      "auth",
					     "oom",     "reject" };
	nng_stat *all = NULL;
	if (nng_dialer_id(c->dialer) <= 0 || nng_stats_get(&all) != 0)
		return -1;
	nng_stat *ds = nng_stat_find_dialer(all, c->dialer);
	int64_t sum = ds ? 0 : -1;
	for (size_t i = 0; ds && i < ARRAY_SIZE(names); i++) {
		nng_stat *st = nng_stat_find(ds, names[i]);
		if (st)
			sum += (int64_t)nng_stat_value(st);
	}
	nng_stats_free(all);
	return sum;
}

/* While the client has no connection, replace a dialer that has stopped
 * trying (see DIALER_QUIET_MS). */
static void *watch_dialer(void *arg)
{
	struct cric_client *c = arg;
	pthread_mutex_lock(&c->lock);
	while (!c->closing) {
		if (c->pipes > 0) {
			/* Connected: the next loss is answered promptly. */
			pthread_mutex_unlock(&c->lock);
			pthread_mutex_lock(&c->dial_lock);
			dial_pace(c, false);
			pthread_mutex_unlock(&c->dial_lock);
			pthread_mutex_lock(&c->lock);
			while (!c->closing && c->pipes > 0)
				pthread_cond_wait(&c->unconnected, &c->lock);
			continue;
		}
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_lock(&c->dial_lock);
		int64_t before = dialer_activity(c);
		pthread_mutex_unlock(&c->dial_lock);

		pthread_mutex_lock(&c->lock);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(DIALER_QUIET_MS % 1000) * 1000000L;
		until.tv_sec += DIALER_QUIET_MS / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!c->closing && c->pipes <= 0 &&
		       pthread_cond_timedwait(&c->unconnected, &c->lock, &until) == 0)
			;
		if (c->closing || c->pipes > 0)
			continue;
		pthread_mutex_unlock(&c->lock);

		pthread_mutex_lock(&c->dial_lock);
		int64_t after = dialer_activity(c);
		if (after < 0 || after == before) {
			log_debug("%s: the dialer of %s stopped trying, dialling again", c->name,
				  c->url);
			if (nng_dialer_id(c->old_dialer) > 0)
				nng_dialer_close(c->old_dialer);
			c->old_dialer = c->dialer;
			int rv = dial(c);
			if (rv != 0)
				log_warning("%s: dial %s: %s, retrying", c->name, c->url,
					    nng_strerror(rv));
		} else {
			/* Away for a whole period: not restarting, down. */
			dial_pace(c, true);
		}
		pthread_mutex_unlock(&c->dial_lock);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void cric_client_kill_dialer(struct cric_client *c)
{
	pthread_mutex_lock(&c->dial_lock);
	nng_dialer_close(c->dialer);
	pthread_mutex_unlock(&c->dial_lock);
}

int cric_client_open(const char *name, const char *url, struct cric_client **ret,
		     struct cric_err *err)
{
	return cric_client_open_peer(name, url, (uid_t)-1, ret, err);
}

int cric_client_open_peer(const char *name, const char *url, uid_t peer_uid,
			  struct cric_client **ret, struct cric_err *err)
{
	struct cric_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->peer_uid = peer_uid;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->dial_lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	pthread_cond_init(&c->unconnected, NULL);
	c->name = strdup(name);
	c->url = strdup(url);
	if (!c->name || !c->url) {
		cric_client_close(c);
		return -ENOMEM;
	}
	int rv = nng_req0_open(&c->sock);
	if (rv != 0) {
		free(c->name);
		free(c->url);
		free(c);
		return err_set(err, -ENOMEM, "%s: open req socket: %s", name, nng_strerror(rv));
	}
	/* No resend: a lost connection fails the call (pipe_event). */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, IPC_MAX_MESSAGE + 4096);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE, pipe_check_listener, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c);
	rv = dial(c);
	if (rv != 0) {
		cric_client_close(c);
		return err_set(err, -EINVAL, "%s: dial %s: %s", name, url, nng_strerror(rv));
	}
	if (pthread_create(&c->watcher, NULL, watch_dialer, c) != 0) {
		cric_client_close(c);
		return err_set(err, -EAGAIN, "%s: start the dialer's watcher", name);
	}
	c->watcher_started = true;
	*ret = c;
	return 0;
}

void cric_client_close(struct cric_client *c)
{
	if (!c)
		return;
	/* Abort the calls in flight, wait until each is finished, free them,
	 * and only then close the socket (see pending_unref). */
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	for (struct pending *q = c->calls; q; q = q->next)
		nng_aio_abort(q->aio, NNG_ECLOSED);
	while (c->active > 0)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_cond_broadcast(&c->unconnected);
	pthread_mutex_unlock(&c->lock);
	if (c->watcher_started)
		pthread_join(c->watcher, NULL);
	drain_done(c, 0);
	if (nng_socket_id(c->sock) > 0)
		nng_close(c->sock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->dial_lock);
	pthread_cond_destroy(&c->idle);
	pthread_cond_destroy(&c->unconnected);
	free(c->name);
	free(c->url);
	free(c);
}

bool cric_client_connected(struct cric_client *c)
{
	pthread_mutex_lock(&c->lock);
	bool ok = c->pipes > 0;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

const char *cric_client_name(const struct cric_client *c)
{
	return c->name;
}

static nng_duration remaining_ms(int64_t deadline_ns)
{
	if (deadline_ns == IPC_NO_DEADLINE)
		return NNG_DURATION_INFINITE;
	int64_t left = (deadline_ns - now_unix_ns()) / 1000000;
	if (left <= 0)
		return 1;
	return left > INT32_MAX ? INT32_MAX : (nng_duration)left;
}

/* The last reference: hand the call to the done list. Its context and aio
 * are not closed here, on nng's thread (maybe inside the aio's own
 * callback): with nng 1.5.2, nng_ctx_close() racing nng_close() panics, and
 * nng_aio_reap() frees too late to be seen by a process that exits. */
static void pending_unref(struct pending *p)
{
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	struct cric_client *c = p->client;
	pthread_mutex_lock(&c->lock);
	p->next = c->done;
	c->done = p;
	c->n_done++;
	if (--c->active == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock); /* c may be freed from here on */
}

/* Free finished calls but the first keep (kept for reuse). Never from a
 * completion callback (nng_aio_free waits for the callback of the aio it
 * frees). */
static void drain_done(struct cric_client *c, unsigned keep)
{
	pthread_mutex_lock(&c->lock);
	struct pending **tail = &c->done;
	for (unsigned i = 0; i < keep && *tail; i++)
		tail = &(*tail)->next;
	struct pending *list = *tail;
	*tail = NULL;
	if (c->n_done > keep)
		c->n_done = keep;
	pthread_mutex_unlock(&c->lock);
	while (list) {
		struct pending *next = list->next;
		nng_ctx_close(list->ctx);
		nng_aio_free(list->aio);
		free(list);
		list = next;
	}
}

/* Start the next operation and close the race with pipe_event: a call marked
 * lost before its operation was queued is aborted here. The operation may
 * complete (and drop its reference) on another thread before nng_ctx_*()
 * returns, hence our own reference around it. */
static void pending_start(struct pending *p, bool recv)
{
	atomic_fetch_add(&p->refs, 1);
	nng_duration timeout = remaining_ms(p->deadline_ns);
	if (!recv && p->unconnected && (timeout < 0 || timeout > CONNECT_GRACE_MS))
		timeout = CONNECT_GRACE_MS;
	nng_aio_set_timeout(p->aio, timeout);
	if (recv)
		nng_ctx_recv(p->ctx, p->aio);
	else
		nng_ctx_send(p->ctx, p->aio);
	pthread_mutex_lock(&p->client->lock);
	if (p->lost)
		nng_aio_abort(p->aio, NNG_ECONNRESET);
	else if (p->client->closing)
		nng_aio_abort(p->aio, NNG_ECLOSED);
	pthread_mutex_unlock(&p->client->lock);
	pending_unref(p);
}

static void pending_finish(struct pending *p, struct cric_result *res)
{
	struct cric_client *c = p->client;
	p->cb(p->arg, res);
	cric_result_clear(res);

	pthread_mutex_lock(&c->lock);
	if (p->prev)
		p->prev->next = p->next;
	else
		c->calls = p->next;
	if (p->next)
		p->next->prev = p->prev;
	pthread_mutex_unlock(&c->lock);
	pending_unref(p); /* the operation's reference */
}

static void pending_cb(void *arg)
{
	struct pending *p = arg;
	struct cric_result res = { 0 };
	int rv = nng_aio_result(p->aio);

	if (rv == 0 && !p->receiving) {
		p->receiving = true;
		pending_start(p, true);
		return;
	}
	if (rv == 0) {
		nng_msg *msg = nng_aio_get_msg(p->aio);
		if (reply_unpack(nng_msg_body(msg), nng_msg_len(msg), &res) < 0)
			cric_result_set(&res, CODE_UNAVAILABLE, "%s: undecodable reply",
					p->client->name);
		nng_msg_free(msg);
	} else {
		if (!p->receiving) {
			nng_msg *msg = nng_aio_get_msg(p->aio);
			if (msg)
				nng_msg_free(msg);
			nng_aio_set_msg(p->aio, NULL);
		}
		if (rv == NNG_ETIMEDOUT && !p->receiving && p->unconnected &&
		    now_unix_ns() < p->deadline_ns)
			cric_result_set(&res, CODE_UNAVAILABLE,
					"%s is not running (no connection to %s)", p->client->name,
					p->client->url);
		else if (rv == NNG_ETIMEDOUT)
			cric_result_set(&res, CODE_DEADLINE_EXCEEDED,
					"%s did not answer before the deadline", p->client->name);
		else if (p->lost || rv == NNG_ECONNRESET)
			cric_result_set(&res, CODE_UNAVAILABLE,
					"%s went away during the call (connection lost)",
					p->client->name);
		else
			cric_result_set(&res, CODE_UNAVAILABLE, "%s: %s", p->client->name,
					nng_strerror(rv));
	}
	pending_finish(p, &res);
}

/* A call's state: a finished one's, its context and aio reused (a context
 * starts over with each request it sends), or a new one. */
static int pending_new(struct cric_client *c, struct pending **ret)
{
	pthread_mutex_lock(&c->lock);
	struct pending *p = c->done;
	if (p) {
		c->done = p->next;
		c->n_done--;
	}
	pthread_mutex_unlock(&c->lock);
	if (p) {
		nng_ctx ctx = p->ctx;
		nng_aio *aio = p->aio;
		memset(p, 0, sizeof(*p));
		p->ctx = ctx;
		p->aio = aio;
		p->client = c;
		*ret = p;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->client = c;
	if (nng_ctx_open(&p->ctx, c->sock) != 0) {
		free(p);
		return -ENOTCONN; /* socket closed */
	}
	if (nng_aio_alloc(&p->aio, pending_cb, p) != 0) {
		nng_ctx_close(p->ctx);
		free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

int cric_client_call_async(struct cric_client *c, const char *method, const char *request_id,
			   int64_t deadline_ns, const void *payload, size_t len, cric_client_cb cb,
			   void *arg)
{
	drain_done(c, SPARE_CALLS);
	char rid[IPC_REQUEST_ID_MAX + 1];
	if (!request_id || !*request_id) {
		int r = id_random_hex(rid, sizeof(rid), 8);
		if (r < 0)
			return r;
		request_id = rid;
	}
	if (deadline_ns <= 0)
		deadline_ns = deadline_in_ms(DEFAULT_CALL_MS);
	if (deadline_ns <= now_unix_ns())
		return -ETIMEDOUT;

	_cleanup_free_ uint8_t *buf = NULL;
	size_t n;
	int r = envelope_pack(method, request_id, deadline_ns, payload, len, &buf, &n);
	if (r < 0)
		return r;
	_cleanup_nng_msg_ nng_msg *msg = NULL;
	if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, n) != 0)
		return -ENOMEM;

	struct pending *p;
	r = pending_new(c, &p);
	if (r < 0)
		return r;
	atomic_init(&p->refs, 1);
	p->cb = cb;
	p->arg = arg;
	p->deadline_ns = deadline_ns;

	pthread_mutex_lock(&c->lock);
	p->unconnected = c->pipes <= 0;
	p->next = c->calls;
	if (c->calls)
		c->calls->prev = p;
	c->calls = p;
	c->active++;
	pthread_mutex_unlock(&c->lock);

	nng_aio_set_msg(p->aio, TAKE_PTR(msg));
	pending_start(p, false);
	return 0;
}

struct sync_call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct cric_result res;
};

static void sync_cb(void *arg, struct cric_result *res)
{
	struct sync_call *s = arg;
	pthread_mutex_lock(&s->lock);
	s->res = *res;
	memset(res, 0, sizeof(*res)); /* moved */
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void cric_client_call(struct cric_client *c, const char *method, const char *request_id,
		      int64_t deadline_ns, const void *payload, size_t len, struct cric_result *res)
{
	struct sync_call s = { .lock = PTHREAD_MUTEX_INITIALIZER,
			       .cond = PTHREAD_COND_INITIALIZER };
	memset(res, 0, sizeof(*res));
	int r =
	    cric_client_call_async(c, method, request_id, deadline_ns, payload, len, sync_cb, &s);
	if (r == -ENOTCONN) {
		cric_result_set(res, CODE_UNAVAILABLE, "%s is not running (no connection to %s)",
				c->name, c->url);
		return;
	}
	if (r == -ETIMEDOUT) {
		cric_result_set(res, CODE_DEADLINE_EXCEEDED, "deadline passed before calling %s",
				c->name);
		return;
	}
	if (r < 0) {
		cric_result_set(res, grpc_code_from_errno(r), "call %s: %s", c->name, strerror(-r));
		return;
	}
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	*res = s.res;
}

unsigned cric_client_call_pb(struct cric_client *c, const char *method, const char *request_id,
			     int64_t deadline_ns, const ProtobufCMessage *req,
			     const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out,
			     char **message)
{
	*out = NULL;
	if (message)
		*message = NULL;
	size_t n = protobuf_c_message_get_packed_size(req);
	_cleanup_free_ uint8_t *buf = malloc(n ? n : 1);
	struct cric_result res = { 0 };
	if (!buf) {
		cric_result_set(&res, CODE_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		protobuf_c_message_pack(req, buf);
		cric_client_call(c, method, request_id, deadline_ns, buf, n, &res);
	}
	if (res.code == CODE_OK) {
		*out = protobuf_c_message_unpack(out_desc, NULL, res.len, res.payload);
		if (!*out)
			cric_result_set(&res, CODE_INTERNAL, "%s: undecodable %s answer", c->name,
					method);
	}
	unsigned code = res.code;
	if (message && code != CODE_OK)
		*message = TAKE_PTR(res.message);
	cric_result_clear(&res);
	return code;
}
