#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"

/* The events' bytes live in one arena of their own (an anonymous mapping of
 * max_bytes), not one malloc each: spread through the heap, a thousand live
 * events kept pages of it resident long after a burst of work, whatever
 * glibc trimmed. The arena is a byte ring: an event is stored whole at the
 * write offset, or at 0 when it does not fit before the end (the tail of the
 * lap left unused); the oldest go until the new one fits. A page that holds
 * no live byte any more is handed back to the kernel (MADV_DONTNEED), so
 * the resident size follows the events held, not the bytes ever written. */
struct slot {
	uint64_t seq;
	size_t off, len; /* in the arena */
};

struct event_log {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_REALTIME: deadlines are absolute realtime */
	uint64_t epoch;
	struct slot *ring;
	size_t capacity;
	size_t head, count; /* ring[head] is the oldest of count */
	uint8_t *arena;
	size_t size;  /* of the arena */
	size_t wr;    /* where the next event goes (when it fits before size) */
	size_t top;   /* wrapped: where the lap before the last wrap ended */
	bool wrapped; /* the live bytes are [tail, top) and [0, wr) */
	size_t page;
	uint64_t next_seq;
	bool stopped;
};

int event_log_new(size_t capacity, size_t max_bytes, struct event_log **ret)
{
	if (capacity == 0 || max_bytes == 0)
		return -EINVAL;
	_cleanup_free_ struct event_log *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->page = (size_t)sysconf(_SC_PAGESIZE);
	if (max_bytes > SIZE_MAX - l->page)
		return -EINVAL;
	l->size = (max_bytes + l->page - 1) / l->page * l->page;
	while (l->epoch == 0)
		if (getrandom(&l->epoch, sizeof(l->epoch), 0) != sizeof(l->epoch))
			return -errno;
	if (!(l->ring = calloc(capacity, sizeof(*l->ring))))
		return -ENOMEM;
	l->arena = mmap(NULL, l->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (l->arena == MAP_FAILED) {
		int r = -errno;
		free(l->ring);
		return r;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->capacity = capacity;
	l->next_seq = 1;
	*ret = TAKE_PTR(l);
	return 0;
}

struct event_log *event_log_free(struct event_log *l)
{
	if (!l)
		return NULL;
	munmap(l->arena, l->size);
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

/* Whether [a, b) of the arena holds a byte of a held event. */
static bool live_in(const struct event_log *l, size_t a, size_t b)
{
	if (l->count == 0 || a >= b)
		return false;
	size_t tail = l->ring[l->head].off;
	if (!l->wrapped)
		return a < l->wr && tail < b;
	return (a < l->top && tail < b) || a < l->wr;
}

/* Hand back the pages of [a, b) (a dropped event's bytes) that hold no
 * live byte: those inside it, and its first and last when nothing else on
 * them is held. */
static void release(struct event_log *l, size_t a, size_t b)
{
	size_t p0 = a / l->page * l->page, p1 = (b + l->page - 1) / l->page * l->page;
	if (p0 >= p1)
		return;
	if (live_in(l, p0, p0 + l->page))
		p0 += l->page;
	if (p1 > p0 && live_in(l, p1 - l->page, p1))
		p1 -= l->page;
	if (p0 < p1)
		(void)madvise(l->arena + p0, p1 - p0, MADV_DONTNEED);
}

static void drop_oldest(struct event_log *l)
{
	struct slot s = l->ring[l->head];
	l->head = (l->head + 1) % l->capacity;
	l->count--;
	if (l->count == 0) {
		l->wr = 0;
		l->wrapped = false;
	} else if (l->wrapped && l->ring[l->head].off < s.off) {
		l->wrapped = false; /* the lap before the wrap is gone */
	}
	release(l, s.off, s.off + s.len);
}

/* Where an event of len bytes goes now, or SIZE_MAX if older ones must go
 * first. */
static size_t place(struct event_log *l, size_t len)
{
	if (l->count == l->capacity)
		return SIZE_MAX;
	if (l->count == 0)
		return 0;
	size_t tail = l->ring[l->head].off;
	if (l->wrapped)
		return tail - l->wr >= len ? l->wr : SIZE_MAX;
	if (l->size - l->wr >= len)
		return l->wr;
	if (tail >= len) {
		l->top = l->wr;
		l->wrapped = true;
		return 0;
	}
	return SIZE_MAX;
}

int event_log_publish(struct event_log *l, const void *data, size_t len)
{
	pthread_mutex_lock(&l->lock);
	uint64_t seq = l->next_seq++;
	if (len > l->size) {
		pthread_mutex_unlock(&l->lock);
		return -EMSGSIZE;
	}
	size_t off;
	while ((off = place(l, len)) == SIZE_MAX)
		drop_oldest(l);
	memcpy(l->arena + off, data, len);
	l->ring[(l->head + l->count) % l->capacity] = (struct slot){ seq, off, len };
	l->count++;
	l->wr = off + len;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return 0;
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
		memcpy(v[j].data, l->arena + s->off, s->len);
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
