/* The Prometheus endpoint: GET /metrics on an HTTP listener of its own
 * (libmicrohttpd, one polling thread), answered with the suite's metrics
 * in the text exposition format 0.0.4 (common/metrics.h).
 *
 * A scrape asks every other daemon cric.Metrics at once (imaged, stored,
 * netd, runtimed over their sockets; cri-gateway over the socket it serves
 * cric.Health and cric.Metrics on, <run_dir>/gateway/ipc.sock), waits at
 * most METRICS_CALL_MS for the answers, and writes them with monitord's own
 * as one page, each sample labelled daemon="<name>". Beside them:
 *   cric_daemon_up{daemon}            1 when the daemon answered, else 0 (its
 *                                     metrics are then missing; the scrape
 *                                     still succeeds)
 *   cric_daemon_restarts_total{daemon} restarts monitord saw (a new start
 *                                     time between two scrapes) since it
 *                                     started
 *
 * Config, section "monitord":
 *   "metrics_enabled": true           false: no listener
 *   "metrics_address": "127.0.0.1"    an IPv4 or IPv6 address
 *   "metrics_port": 9191              0: ephemeral (logged)
 * A port that cannot be bound is logged and ignored: metrics never stop
 * monitord.
 *
 * Privileges: the socket is bound with monitord's; the HTTP thread is made
 * by a thread that dropped every capability, and holds none (the calls to
 * the daemons run on nng's threads).
 */
#pragma once

#include <stdint.h>

#include "common/config.h"
#include "common/error.h"

#define METRICS_PORT_DEFAULT 9191
#define METRICS_CALL_MS      2000

struct metrics_http;

/* *ret NULL (and 0) when metrics are disabled or the listener could not be
 * made (logged); an error only for a wrong config or OOM. */
int metrics_http_open(const struct cric_config *cfg, struct metrics_http **ret,
		      struct cric_err *err);
/* Stops the listener, closes the clients. Accepts NULL. */
void metrics_http_free(struct metrics_http *mh);
uint16_t metrics_http_port(const struct metrics_http *mh);
