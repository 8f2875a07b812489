/* The CRI streaming list calls (StreamPodSandboxes, StreamContainers,
 * StreamImages, StreamContainerStats, StreamPodSandboxStats,
 * StreamPodSandboxMetrics), relayed page by page from the owning daemon's
 * cric.<daemon>.ListPage (proto/cric/listpage.proto, common/listpage.h).
 *
 * A stream asks for one page, sends it as one message, and asks for the
 * next when grpc reports that message sent (its HTTP/2 flow control holds a
 * client that does not read): at most one page of a stream is in the
 * gateway at any time, and a slow client holds nothing but its own stream.
 * The last page goes with the status (OK); an empty list is no message and
 * OK. A daemon's error ends the stream with the daemon's status (a client
 * that already has some items must drop them, as the kubelet does). The
 * pages' calls carry the stream's deadline: the client's, capped by
 * max_request_seconds.
 *
 * Threads: ls_start, ls_sent and ls_close run on the completion queue's
 * thread, the daemon's answers on nng's; only one of the two has the stream
 * at a time (a page is asked for, or a message is being sent). */
#pragma once

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ipc.h"

struct ls_stream;

struct ls_config {
	struct cric_client *client; /* the owning daemon's */
	const char *page_method;    /* its "cric.<daemon>.ListPage" */
	uint32_t max_items, max_bytes;
};

/* Serve call (path, its request already decoded once) as a streaming
 * list: on success the stream holds its own reference to call and the
 * caller calls ls_close once the call has closed. On failure (-ENOMEM)
 * nothing is sent: the caller answers. */
int ls_start(const struct ls_config *cfg, grpc_call *call, const char *path, const char *request_id,
	     int64_t deadline_ns, const uint8_t *req, size_t len, struct ls_stream **ret);
/* The client's side closed: no further page is asked for. */
void ls_close(struct ls_stream *s);
/* The completion of a send (TAG_LIST_SENT). */
void ls_sent(struct ls_stream *s, bool ok);
