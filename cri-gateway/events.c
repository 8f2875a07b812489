#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/service.h"
#include "cq.h"

/* A failed poll is retried after this long (an unreachable runtimed already
 * makes each call wait a second for the connection). */
#define RETRY_MS 200
/* runtimed unreachable this long closes the streams: a connection that
 * drops and comes back to the same runtimed (same epoch) loses nothing. */
#define UNREACHABLE_GRACE_MS 2000

struct entry {
	uint64_t seq; /* the hub's own numbering, from 1, never reset */
	int64_t at_ns;
	grpc_slice data; /* a packed ContainerEventResponse */
};

struct ev_sub {
	struct ev_hub *hub;
	grpc_call *call;
	char request_id[IPC_REQUEST_ID_MAX + 1];
	uint64_t next; /* seq of the next event to send it */
	bool sending, metadata_sent, cut, gone;
	grpc_byte_buffer *send;
	struct tag t_sent;
	struct ev_sub *prev, *nextsub;
};

struct ev_hub {
	struct ev_hub_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC: the poll's answer, stop */
	pthread_t thread;
	bool thread_started, stopping;

	/* the ring */
	struct entry *ring;
	size_t head, count, bytes;
	uint64_t next_seq;

	/* runtimed's side */
	uint64_t epoch, last;  /* what we hold of runtimed's numbering */
	bool synced;           /* streams are whole (polls succeed, or failed only briefly) */
	int64_t failing_since; /* monotonic ns of the first failed poll in a row; 0: none */

	/* the poll in flight (its callback runs on nng's thread) */
	bool answered;
	struct cric_result res;

	struct ev_sub *subs;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The k-th entry from the oldest (k < capacity). */
static size_t ring_at(const struct ev_hub *h, size_t k)
{
	size_t i = h->head + k;
	return i >= h->cfg.capacity ? i - h->cfg.capacity : i;
}

static void drop_oldest(struct ev_hub *h)
{
	struct entry *e = &h->ring[h->head];
	h->bytes -= GRPC_SLICE_LENGTH(e->data);
	grpc_slice_unref(e->data);
	h->head = ring_at(h, 1);
	h->count--;
}

static uint64_t oldest_seq(const struct ev_hub *h)
{
	return h->count ? h->ring[h->head].seq : h->next_seq;
}

static void expire(struct ev_hub *h)
{
	int64_t now = mono_ns();
	while (h->count && now - h->ring[h->head].at_ns > h->cfg.keep_ns)
		drop_oldest(h);
}

static void sub_free(struct ev_sub *s)
{
	grpc_call_unref(s->call);
	free(s);
}

/* Close s's stream with code (under the lock). */
static void cut(struct ev_sub *s, unsigned code, const char *why)
{
	if (s->cut)
		return;
	s->cut = true;
	log_info("GetContainerEvents req=%s: closing the stream: %s: %s", s->request_id,
		 grpc_code_name(code), why);
	grpc_call_cancel_with_status(s->call, (grpc_status_code)code, why, NULL);
}

/* Send s its next event if it has one and nothing in flight (under the
 * lock); cut it off if its next event has left the ring. */
static void kick(struct ev_sub *s)
{
	struct ev_hub *h = s->hub;
	if (s->sending || s->cut || s->gone || s->next == h->next_seq)
		return;
	if (s->next < oldest_seq(h)) {
		char why[160];
		snprintf(why, sizeof(why),
			 "subscriber too slow: more than %zu events (or %lld s) not read",
			 h->cfg.capacity, (long long)(h->cfg.keep_ns / 1000000000));
		cut(s, CODE_RESOURCE_EXHAUSTED, why);
		return;
	}
	struct entry *e = &h->ring[ring_at(h, (size_t)(s->next - oldest_seq(h)))];
	s->send = grpc_raw_byte_buffer_create(&e->data, 1);
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (!s->metadata_sent)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = s->send;
	if (grpc_call_start_batch(s->call, ops, n, &s->t_sent, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(s->send);
		s->send = NULL;
		cut(s, CODE_INTERNAL, "cannot send");
		return;
	}
	s->metadata_sent = true;
	s->sending = true;
	s->next++;
}

static void kick_all(struct ev_hub *h)
{
	for (struct ev_sub *s = h->subs; s; s = s->nextsub)
		kick(s);
}

/* Every stream closed with code, the ring emptied (under the lock). */
static void close_all(struct ev_hub *h, unsigned code, const char *why)
{
	if (h->subs)
		log_warning("closing every GetContainerEvents stream: %s", why);
	for (struct ev_sub *s = h->subs; s; s = s->nextsub)
		cut(s, code, why);
	while (h->count)
		drop_oldest(h);
}

static void append(struct ev_hub *h, const uint8_t *data, size_t len)
{
	while (h->count == h->cfg.capacity || (h->count && h->bytes + len > h->cfg.max_bytes))
		drop_oldest(h);
	struct entry *e = &h->ring[ring_at(h, h->count)];
	e->seq = h->next_seq++;
	e->at_ns = mono_ns();
	e->data = grpc_slice_from_copied_buffer((const char *)data, len);
	h->count++;
	h->bytes += len;
}

/* A poll's answer (under the lock). */
static void take_answer(struct ev_hub *h, const struct cric_result *res)
{
	if (res->code != CODE_OK) {
		if (!h->failing_since) {
			h->failing_since = mono_ns();
			log_info("container events: cannot ask runtimed: %s: %s",
				 grpc_code_name(res->code), res->message ? res->message : "");
		}
		if (mono_ns() - h->failing_since < UNREACHABLE_GRACE_MS * 1000000LL)
			return;
		if (h->synced) {
			char why[300];
			snprintf(why, sizeof(why),
				 "runtimed is unreachable (%s): events may be lost, relist",
				 res->message ? res->message : grpc_code_name(res->code));
			close_all(h, CODE_UNAVAILABLE, why);
		}
		h->synced = false;
		return;
	}
	_cleanup_pb_ Cric__Runtimed__WatchEventsResponse *resp =
	    cric__runtimed__watch_events_response__unpack(NULL, res->len, res->payload);
	if (!resp) {
		log_warning("runtimed's WatchEvents answer does not decode, ignoring");
		return;
	}
	if (resp->epoch != h->epoch) {
		if (h->epoch)
			close_all(h, CODE_UNAVAILABLE,
				  "runtimed restarted: events may have been lost, relist");
		else
			close_all(h, CODE_UNAVAILABLE, "runtimed reachable again: relist");
		h->epoch = resp->epoch;
		h->last = 0;
	}
	for (size_t i = 0; i < resp->n_events; i++) {
		const Cric__Runtimed__Event *e = resp->events[i];
		if (h->last && e->seq != h->last + 1)
			close_all(h, CODE_ABORTED, "container events were lost: relist");
		h->last = e->seq;
		Runtime__V1__ContainerEventResponse *m =
		    runtime__v1__container_event_response__unpack(NULL, e->event.len,
								  e->event.data);
		if (!m) {
			log_warning("event %llu from runtimed does not decode, ignoring",
				    (unsigned long long)e->seq);
			continue;
		}
		protobuf_c_message_free_unpacked(&m->base, NULL);
		append(h, e->event.data, e->event.len);
	}
	h->failing_since = 0;
	if (!h->synced)
		log_info("container events: following runtimed (epoch %016llx, at %llu)",
			 (unsigned long long)h->epoch, (unsigned long long)h->last);
	h->synced = true;
	expire(h);
	kick_all(h);
}

static void answered(void *arg, struct cric_result *res)
{
	struct ev_hub *h = arg;
	pthread_mutex_lock(&h->lock);
	h->res = *res;
	*res = (struct cric_result){ 0 }; /* ours now */
	h->answered = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* Wait (under the lock) until the poll answers, ms pass (0: no limit) or
 * the hub stops. */
static void wait_for(struct ev_hub *h, bool for_answer, int64_t ms)
{
	int64_t until = mono_ns() + ms * 1000000;
	struct timespec ts = { .tv_sec = until / 1000000000, .tv_nsec = until % 1000000000 };
	while (!h->stopping && (!for_answer || !h->answered))
		if (ms && pthread_cond_timedwait(&h->cond, &h->lock, &ts) == ETIMEDOUT)
			break;
		else if (!ms)
			pthread_cond_wait(&h->cond, &h->lock);
}

static void *poll_loop(void *arg)
{
	struct ev_hub *h = arg;
	char method[IPC_METHOD_MAX + 1];
	if (cric_method_name(CRIC_RUNTIMED(watch_events), method, sizeof(method)) < 0)
		return NULL;
	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		Cric__Runtimed__WatchEventsRequest req = CRIC__RUNTIMED__WATCH_EVENTS_REQUEST__INIT;
		req.epoch = h->epoch;
		req.after = h->last;
		uint8_t buf[64];
		size_t len = cric__runtimed__watch_events_request__pack(&req, buf);
		h->answered = false;
		/* Started under the lock: ev_hub_stop waits for it to be in
		 * flight or not started at all. */
		int r = cric_client_call_async(h->cfg.runtimed, method, NULL,
					       deadline_in_ms(RUNTIMED_WATCH_CAP_MS), buf, len,
					       answered, h);
		if (r < 0) {
			struct cric_result res = { .code = CODE_UNAVAILABLE };
			take_answer(h, &res);
			wait_for(h, false, RETRY_MS);
			continue;
		}
		wait_for(h, true, 0);
		if (h->stopping)
			break;
		struct cric_result res = h->res;
		h->res = (struct cric_result){ 0 };
		take_answer(h, &res);
		bool failed = res.code != CODE_OK;
		cric_result_clear(&res);
		if (failed)
			wait_for(h, false, RETRY_MS);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int ev_hub_start(const struct ev_hub_config *cfg, struct ev_hub **ret)
{
	struct ev_hub *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->cfg = *cfg;
	if (!h->cfg.capacity)
		h->cfg.capacity = 1;
	h->next_seq = 1;
	if (!(h->ring = calloc(h->cfg.capacity, sizeof(*h->ring)))) {
		free(h);
		return -ENOMEM;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&h->thread, NULL, poll_loop, h) != 0) {
		ev_hub_free(h);
		return -EAGAIN;
	}
	h->thread_started = true;
	*ret = h;
	return 0;
}

void ev_hub_stop(struct ev_hub *h)
{
	if (!h || !h->thread_started)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	h->thread_started = false;
}

void ev_hub_free(struct ev_hub *h)
{
	if (!h)
		return;
	ev_hub_stop(h);
	cric_result_clear(&h->res);
	while (h->count)
		drop_oldest(h);
	while (h->subs) {
		struct ev_sub *s = h->subs;
		h->subs = s->nextsub;
		sub_free(s);
	}
	free(h->ring);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

int ev_hub_subscribe(struct ev_hub *h, grpc_call *call, const char *request_id, struct ev_sub **ret,
		     unsigned *code, char *msg, size_t size)
{
	struct ev_sub *s = calloc(1, sizeof(*s));
	if (!s) {
		*code = CODE_RESOURCE_EXHAUSTED;
		snprintf(msg, size, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&h->lock);
	if (!h->synced) {
		pthread_mutex_unlock(&h->lock);
		free(s);
		*code = CODE_UNAVAILABLE;
		snprintf(msg, size, "cric runtimed is not reachable: no container events");
		return -EAGAIN;
	}
	s->hub = h;
	s->call = call;
	grpc_call_ref(call);
	snprintf(s->request_id, sizeof(s->request_id), "%s", request_id);
	s->t_sent = (struct tag){ .kind = TAG_EVENT_SENT, .sub = s };
	expire(h);
	s->next = oldest_seq(h); /* the recent events first */
	s->nextsub = h->subs;
	if (h->subs)
		h->subs->prev = s;
	h->subs = s;
	kick(s);
	pthread_mutex_unlock(&h->lock);
	log_info("GetContainerEvents req=%s: subscribed", request_id);
	*ret = s;
	return 0;
}

void ev_hub_unsubscribe(struct ev_sub *s)
{
	struct ev_hub *h = s->hub;
	pthread_mutex_lock(&h->lock);
	if (s->prev)
		s->prev->nextsub = s->nextsub;
	else
		h->subs = s->nextsub;
	if (s->nextsub)
		s->nextsub->prev = s->prev;
	s->gone = true;
	bool free_now = !s->sending;
	pthread_mutex_unlock(&h->lock);
	log_info("GetContainerEvents req=%s: stream closed", s->request_id);
	if (free_now)
		sub_free(s);
}

void ev_hub_sent(struct ev_sub *s, bool ok)
{
	struct ev_hub *h = s->hub;
	pthread_mutex_lock(&h->lock);
	s->sending = false;
	grpc_byte_buffer_destroy(s->send);
	s->send = NULL;
	bool free_now = s->gone;
	if (!ok)
		s->cut = true; /* the call is over: its close comes */
	else
		kick(s);
	pthread_mutex_unlock(&h->lock);
	if (free_now)
		sub_free(s);
}
