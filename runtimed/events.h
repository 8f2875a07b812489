/* runtimed's event log: the container events (CRI GetContainerEvents) it
 * publishes, numbered and kept in a bounded buffer for the gateway's long
 * poll (proto/cric/runtimed.proto, cric.runtimed.WatchEvents).
 *
 * Each event is an opaque byte string (a packed ContainerEventResponse)
 * with a sequence number, consecutive from 1, and the log has an epoch
 * drawn at random when it is made: a reader that holds (epoch, seq) sees a
 * restart (another epoch) and a loss (the first event it gets is not
 * seq + 1). The buffer keeps at most `capacity` events and `max_bytes`
 * bytes; the oldest go first. Nothing is replayed from disk. The bytes live
 * in a mapping of their own, whose pages go back to the kernel as the
 * events on them go: the log's resident size follows what it holds.
 *
 * Thread-safety: every function may be called from any thread; publish
 * never blocks on a reader. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ipc.h"

struct event_log;

struct event_copy {
	uint64_t seq;
	uint8_t *data; /* malloc'd */
	size_t len;
};

int event_log_new(size_t capacity, size_t max_bytes, struct event_log **ret);
/* Wakes waiters first (see event_log_stop). Accepts NULL. */
struct event_log *event_log_free(struct event_log *l);
uint64_t event_log_epoch(const struct event_log *l);

/* Append a copy of data as the next event. -EMSGSIZE for one longer than
 * max_bytes (the event is lost: the next one gets a seq after it, so readers
 * see the gap). */
int event_log_publish(struct event_log *l, const void *data, size_t len);

/* The events after `after` (all those held when epoch is not the log's),
 * at most max of them and (beyond the first) max_bytes bytes, oldest first, into a malloc'd array
 * *ret of *n copies (the caller frees each data and the array). When there are none (and epoch is
 * the log's: another epoch is answered at once), waits until
 * one comes, deadline_ns (absolute CLOCK_REALTIME) passes, call is
 * cancelled (checked at each wake, see event_log_wake) or the log stops; then
 * answers 0 with *n == 0. */
int event_log_read(struct event_log *l, uint64_t epoch, uint64_t after, size_t max,
		   size_t max_bytes, int64_t deadline_ns, const struct cric_call *call,
		   struct event_copy **ret, size_t *n);

/* Wake every reader to look at its cancel flag. */
void event_log_wake(struct event_log *l);
/* Stop: readers answer at once from now on. */
void event_log_stop(struct event_log *l);
