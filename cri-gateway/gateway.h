/* The CRI gateway: a grpc C core server on the CRI unix socket that forwards
 * each call's request bytes to the owning daemon over nng and relays its
 * answer. It holds no state of pods, containers or images.
 *
 * Threads: one thread drives the grpc completion queue (new calls, received
 * messages, finished sends); daemon answers arrive on nng's threads, which
 * start the reply batch directly. Nothing blocks on either, so no call waits
 * behind another.
 *
 * Status mapping: daemon not connected or lost mid-call -> UNAVAILABLE;
 * caller's deadline passed -> DEADLINE_EXCEEDED; undecodable request ->
 * INVALID_ARGUMENT; unknown method or streaming method not yet served ->
 * UNIMPLEMENTED; otherwise the daemon's own status.
 */
#pragma once

#include "common/config.h"
#include "common/error.h"

struct gateway;

/* Bind the CRI socket (mode 0660) and connect to the daemons (reconnecting
 * in the background). Fails if another gateway serves the socket. */
/* Serve CRI on the unix socket at listen_path (cfg->cri_socket, or where
 * that link points). */
int gateway_start(const struct cric_config *cfg, const char *listen_path, struct gateway **ret,
		  struct cric_err *err);
/* Stop accepting, cancel calls in flight, free. Accepts NULL. */
void gateway_stop(struct gateway *gw);
