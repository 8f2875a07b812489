#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/cleanup.h"

struct slot {
	uint64_t seq;
	uint8_t *data;
	size_t len;
};

struct event_log {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_REALTIME: deadlines are absolute realtime */
	uint64_t epoch;
	struct slot *ring;
	size_t capacity, max_bytes;
	size_t head, count; /* ring[head] is the oldest of count */
	size_t bytes;
	uint64_t next_seq;
	bool stopped;
};

int event_log_new(size_t capacity, size_t max_bytes, struct event_log **ret)
{
	if (capacity == 0)
		return -EINVAL;
	_cleanup_free_ struct event_log *l = calloc(1, sizeof(*l));
	if (!l || !(l->ring = calloc(capacity, sizeof(*l->ring))))
		return -ENOMEM;
	while (l->epoch == 0)
		if (getrandom(&l->epoch, sizeof(l->epoch), 0) != sizeof(l->epoch)) {
			free(l->ring);
			return -errno;
		}
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->capacity = capacity;
	l->max_bytes = max_bytes;
	l->next_seq = 1;
	*ret = TAKE_PTR(l);
	return 0;
}

struct event_log *event_log_free(struct event_log *l)
{
	if (!l)
		return NULL;
	for (size_t i = 0; i < l->capacity; i++)
		free(l->ring[i].data);
	free(l->ring);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
	return NULL;
}

uint64_t event_log_epoch(const struct event_log *l)
{
	return l->epoch; /* fixed at creation */
}

static void drop_oldest(struct event_log *l)
{
	struct slot *s = &l->ring[l->head];
	l->bytes -= s->len;
	free(s->data);
	*s = (struct slot){ 0 };
	l->head = (l->head + 1) % l->capacity;
	l->count--;
}

int event_log_publish(struct event_log *l, const void *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	pthread_mutex_lock(&l->lock);
	uint64_t seq = l->next_seq++;
	if (copy) {
		memcpy(copy, data, len);
		while (l->count == l->capacity || (l->count && l->bytes + len > l->max_bytes))
			drop_oldest(l);
		l->ring[(l->head + l->count) % l->capacity] = (struct slot){ seq, copy, len };
		l->count++;
		l->bytes += len;
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&l->lock);
	return copy ? 0 : -ENOMEM;
}

/* Index in the ring of the first event to answer, or count for none. */
static size_t first_after(const struct event_log *l, uint64_t epoch, uint64_t after)
{
	if (epoch != l->epoch || l->count == 0)
		return 0;
	uint64_t oldest = l->ring[l->head].seq;
	if (after < oldest)
		return 0; /* the reader lost some: it sees the gap */
	uint64_t k = after - oldest + 1;
	return k > l->count ? l->count : (size_t)k;
}

int event_log_read(struct event_log *l, uint64_t epoch, uint64_t after, size_t max,
		   size_t max_bytes, int64_t deadline_ns, const struct cric_call *call,
		   struct event_copy **ret, size_t *n)
{
	struct timespec ts = { .tv_sec = deadline_ns / 1000000000,
			       .tv_nsec = deadline_ns % 1000000000 };
	int r = 0;
	pthread_mutex_lock(&l->lock);
	size_t i = first_after(l, epoch, after);
	/* A reader of another epoch learns ours at once, events or not. */
	while (epoch == l->epoch && i == l->count && !l->stopped && !cric_call_cancelled(call) &&
	       pthread_cond_timedwait(&l->cond, &l->lock, &ts) != ETIMEDOUT)
		i = first_after(l, epoch, after);
	size_t k = 0, bytes = 0;
	while (i + k < l->count && k < max &&
	       (k == 0 || bytes + l->ring[(l->head + i + k) % l->capacity].len <= max_bytes))
		bytes += l->ring[(l->head + i + k++) % l->capacity].len;
	struct event_copy *v = calloc(k ? k : 1, sizeof(*v));
	for (size_t j = 0; v && j < k; j++) {
		const struct slot *s = &l->ring[(l->head + i + j) % l->capacity];
		v[j].seq = s->seq;
		v[j].len = s->len;
		if (!(v[j].data = malloc(s->len ? s->len : 1))) {
			for (size_t x = 0; x < j; x++)
				free(v[x].data);
			free(v);
			v = NULL;
			break;
		}
		memcpy(v[j].data, s->data, s->len);
	}
	pthread_mutex_unlock(&l->lock);
	if (!v)
		r = -ENOMEM;
	else {
		*ret = v;
		*n = k;
	}
	return r;
}

void event_log_wake(struct event_log *l)
{
	pthread_mutex_lock(&l->lock);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

void event_log_stop(struct event_log *l)
{
	pthread_mutex_lock(&l->lock);
	l->stopped = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}
