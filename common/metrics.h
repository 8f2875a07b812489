/* A daemon's metrics: counters, gauges and histograms with labels, as
 * Prometheus defines them, and the Prometheus text exposition writer.
 *
 * Registry: one per process. A daemon is one process, and each module
 * counts into it where things happen (the gateway's call completion,
 * imaged's pull, runtimed's pod and container life cycle) without a handle
 * passed down every call chain, as Prometheus's own client libraries do.
 * A family is a static struct metric_family of the module that counts it;
 * it joins the registry at its first use (or at metric_register()). All
 * of it is guarded by one mutex: calls are cheap (a lookup in a short
 * array) and rare next to the work they count. Every function here may be
 * called from any thread; none blocks on anything but that mutex.
 *
 * Bounds: a family keeps at most METRIC_SERIES_MAX label sets; past that,
 * new label sets count into one series whose values are all "_other" (so a
 * caller that feeds an unbounded value in cannot grow memory). Label values
 * are cut at METRIC_VALUE_MAX bytes.
 *
 * Served: cric.Metrics (proto/cric/health.proto), answered by every
 * daemon's server (ipc_server.c) from metrics_snapshot(), which adds the
 * process's own gauges (RSS, open fds, start time, CPU seconds). monitord
 * asks every daemon and writes the answers as one page with
 * metrics_format() (monitord/metrics-http.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "proto/cric/health.pb-c.h"

enum metric_type {
	METRIC_COUNTER = CRIC__METRIC_FAMILY__TYPE__COUNTER,
	METRIC_GAUGE = CRIC__METRIC_FAMILY__TYPE__GAUGE,
	METRIC_HISTOGRAM = CRIC__METRIC_FAMILY__TYPE__HISTOGRAM,
};

#define METRIC_LABELS_MAX 4
#define METRIC_SERIES_MAX 256
#define METRIC_VALUE_MAX  128
#define METRIC_BOUNDS_MAX 32

struct metric_series;

struct metric_family {
	const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*, "cric_..." */
	const char *help;
	enum metric_type type;
	const char *labels[METRIC_LABELS_MAX]; /* label names; the unused ones NULL */
	const double *bounds;                  /* histogram: increasing upper bounds */
	size_t n_bounds;                       /* at most METRIC_BOUNDS_MAX */
	/* The registry's: leave zero. */
	struct metric_series *series_;
	size_t n_series_;
	size_t cap_series_;
	struct metric_family *next_;
	bool registered_;
};

/* Latency buckets in seconds, 5 ms to 5 min: a CRI call, a pull, a start. */
#define METRIC_N_LATENCY_BOUNDS 14
extern const double metric_latency_bounds[METRIC_N_LATENCY_BOUNDS];

/* Label values, one per label name of the family, in order:
 * metric_add(&f, METRIC_VALUES("PullImage", "OK"), 1). NULL for a family
 * without labels. A NULL value counts as "". */
#define METRIC_VALUES(...) ((const char *const[]){ __VA_ARGS__ })

/* Join the registry now (its samples appear once something is counted;
 * a family without labels shows 0 at once). */
void metric_register(struct metric_family *f);
/* Counter: add v (>= 0; a negative v is ignored). Gauge: add v. */
void metric_add(struct metric_family *f, const char *const *values, double v);
/* Gauge: set to v. */
void metric_set(struct metric_family *f, const char *const *values, double v);
/* Histogram: one observation of v. */
void metric_observe(struct metric_family *f, const char *const *values, double v);

/* Seconds between two CLOCK_MONOTONIC readings, for metric_observe. */
double metric_seconds_since(const struct timespec *start);

/* A collector: called by metrics_snapshot() first, on the thread that
 * answers cric.Metrics, to set gauges that are cheaper read when asked
 * than kept up to date (runtimed's pods and containers by state). It must
 * not take long (the scrape waits METRICS_CALL_MS for every daemon). Add
 * at start-up, remove before arg goes (remove waits for a collection in
 * progress). At most METRIC_COLLECTORS_MAX: -ENOSPC. */
#define METRIC_COLLECTORS_MAX 4
typedef void (*metric_collect_fn)(void *arg);
int metric_collector_add(metric_collect_fn fn, void *arg);
void metric_collector_remove(metric_collect_fn fn, void *arg);

/* This process's metrics: every registered family and the process gauges
 * (cric_process_*; started_ns: when the daemon started, unix ns). The
 * answer is heap-built (free it with protobuf_c_message_free_unpacked).
 * -ENOMEM. */
int metrics_snapshot(const char *daemon, int64_t started_ns, Cric__MetricsResponse **ret);

/* The Prometheus text exposition (version 0.0.4) of several daemons'
 * answers, one HELP and TYPE per family name (families of the same name
 * from several daemons are written together; a later one of another type
 * is dropped). Every sample of an answer whose daemon is set gets the label
 * daemon="<daemon>" first (an answer without daemon is written as it is).
 * What a peer sent is checked as input: invalid metric or label names,
 * duplicate label names and histograms whose buckets do not match their
 * bounds are left out. Returns a malloc'd NUL-terminated page and its
 * length in *len, NULL on OOM. */
char *metrics_format(Cric__MetricsResponse *const *answers, size_t n, size_t *len);

/* Escaping as the text format wants it, exposed for tests: a label value
 * (backslash, double quote, newline) or a HELP text (backslash, newline),
 * written to f. */
void metrics_escape(FILE *f, const char *s, bool label_value);
