/* The gateway's container events hub: GetContainerEvents (server
 * streaming) for any number of subscribers, fed by one long poll of
 * runtimed (cric.runtimed.WatchEvents, proto/cric/runtimed.proto).
 *
 * Buffer: the events received are kept once, for every subscriber, in a
 * ring bounded in count (events_buffer), bytes and age (5 minutes, as
 * containerd keeps its events). A new subscriber gets the events still in
 * it first, then the new ones. Each subscriber has at most one message in
 * grpc at a time (grpc's HTTP/2 flow control holds a client that does not
 * read), the rest is its position in the ring: an event it has not been
 * sent that leaves the ring cuts it off with RESOURCE_EXHAUSTED. A slow
 * subscriber costs nobody else anything and memory stays bounded however
 * many are stuck. Order is the order runtimed published in.
 *
 * Never hiding a gap: when runtimed restarts (another epoch), cannot be
 * reached for 2 s, or its answer skips a sequence number, every stream is closed
 * (UNAVAILABLE for the first two, ABORTED for a loss) and the ring
 * emptied, so that the kubelet relists; a new subscription while runtimed
 * is unreachable is refused with UNAVAILABLE.
 *
 * Threads: the long poll runs on the hub's own thread; subscribe,
 * unsubscribe and sent run on the completion queue's thread. */
#pragma once

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ipc.h"

#define EVENTS_BUFFER_DEFAULT 1024
#define EVENTS_KEEP_SECONDS   300

struct ev_hub;
struct ev_sub;

struct ev_hub_config {
	struct cric_client *runtimed; /* outlives the hub's thread (ev_hub_stop) */
	size_t capacity;              /* events kept, and so a subscriber's backlog */
	size_t max_bytes;
	int64_t keep_ns;
};

int ev_hub_start(const struct ev_hub_config *cfg, struct ev_hub **ret);
/* Stop the long poll thread (before the runtimed client is closed). */
void ev_hub_stop(struct ev_hub *h);
/* After the client is closed and every subscriber is gone. Accepts NULL. */
void ev_hub_free(struct ev_hub *h);

/* Serve call (its request decoded) as a subscriber: on success the hub
 * holds its own reference to call and sends it the events; the caller
 * calls ev_hub_unsubscribe once the call has closed. On failure (-EAGAIN:
 * runtimed is unreachable; -ENOMEM) the caller answers the call with
 * *code and msg. */
int ev_hub_subscribe(struct ev_hub *h, grpc_call *call, const char *request_id, struct ev_sub **ret,
		     unsigned *code, char *msg, size_t size);
void ev_hub_unsubscribe(struct ev_sub *s);
/* The completion of a send (TAG_EVENT_SENT). */
void ev_hub_sent(struct ev_sub *s, bool ok);
