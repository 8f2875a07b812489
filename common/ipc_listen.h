/* The ipc:// listener of a cric_server, made to survive nng 1.5.2's bug #1518.
 *
 * The bug (nanomsg/nng#1518, fixed upstream after 1.5.2 by PR #1519, not in
 * Debian 12): the ipc transport writes its SP header as soon as it accepts a
 * connection. When the peer has already gone (a bare connect(2) + close(2),
 * a handshake cut short, a client killed mid-connect), the write fails with
 * EPIPE, which nng maps to NNG_ECLOSED and hands to the core listener's
 * accept callback; that takes it for "listener closed" and never asks the
 * transport for another connection. The transport keeps accepting and
 * negotiating, so new clients believe they are connected, but their pipes
 * never reach the socket: their requests vanish. Established pipes keep
 * working.
 *
 * What this does instead of patching nng: a guard thread reads the
 * listener's "other" error counter (nng's statistics) every
 * IPC_GUARD_CHECK_MS; the wedge always bumps it, and so does a harmless
 * accept error that nng recovers from after a 100 ms cool-down. When it
 * moved, the guard probes: it connects to its own socket and completes the
 * handshake as a client would (and never leaves before nng has answered,
 * which would be one more aborted handshake). A live listener hands that
 * pipe (or any other) to the socket, which the server's ADD_PRE callback
 * reports here; a wedged one never does. Only when none arrives within
 * IPC_GUARD_PROBE_MS of nng's answer (generous: a loaded machine delays
 * the callback, and a false verdict cuts every connection) does the guard
 * close the nng listener and listen again on the same path. The probe's
 * own close bumps the counter once more: that one is not probed for.
 * Closing cuts the connections of the old listener (established ones too:
 * their calls in flight fail UNAVAILABLE and the clients redial at once); it
 * is the only way to free the clients stuck in it.
 */
#pragma once

#include <nng/nng.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

#define IPC_GUARD_CHECK_MS  100
#define IPC_GUARD_PROBE_MS  2000
#define IPC_GUARD_ANSWER_MS 5000
#define IPC_GUARD_SETTLE_MS 200

struct ipc_listener;

/* A listener for sock on path (a filesystem path, not a URL), socket file
 * of the given mode and group (gid (gid_t)-1: the process's); daemon names
 * it in logs. NULL on OOM. Make it before the socket's pipe callbacks can
 * see a pipe, start it after. */
struct ipc_listener *ipc_listener_new(nng_socket sock, const char *path, mode_t mode, gid_t gid,
				      const char *daemon);
/* Start listening and the guard. A live listener already at path:
 * -EADDRINUSE; anything at path that is not a socket: -EEXIST, left alone.
 * A stale socket there (a killed daemon's) is replaced. */
int ipc_listener_start(struct ipc_listener *l, struct cric_err *err);

/* From the socket's NNG_PIPE_EV_ADD_PRE callback, for every pipe: a pipe
 * that reaches the socket proves the listener alive. */
void ipc_listener_pipe_added(struct ipc_listener *l);

/* How many times the listener was found wedged and replaced. */
unsigned ipc_listener_recoveries(const struct ipc_listener *l);

/* Stop the guard (before nng_close() of the socket, which closes the nng
 * listener and removes the socket file). */
void ipc_listener_stop(struct ipc_listener *l);
/* Accepts NULL; returns NULL. */
struct ipc_listener *ipc_listener_free(struct ipc_listener *l);
