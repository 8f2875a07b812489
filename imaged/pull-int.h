/* imaged's pull, inside: the puller's state, shared by pull.c (the pull
 * itself), pull-config.c (its configuration) and downloads.c (the blob
 * downloads that concurrent pulls share, their slots and progress). Not
 * for use outside imaged/pull*.c and imaged/downloads.c. */
#pragma once

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/ipc.h"
#include "imaged/pull.h"
#include "imaged/reference.h"
#include "imaged/registry.h"

#define CONFIG_CACHE 8

/* A download of one blob from one registry, shared by the pulls that need
 * it (keyed by both: a slow registry's download is never waited for by a
 * pull from another). */
struct inflight {
	char domain[IMAGE_REF_NAME_MAX + 1];
	char digest[IMAGE_DIGEST_LEN + 1];
	unsigned waiters;
	bool done;
	bool stalled; /* failed for want of progress (not its caller's deadline) */
	int r;
	enum { INFLIGHT_QUEUED, INFLIGHT_DOWNLOADING, INFLIGHT_IMPORTING } phase;
	uint64_t received, mark_bytes;
	int64_t mark_ns; /* CLOCK_MONOTONIC: the phase began or mark_bytes came */
	struct inflight *next;
};

struct cached_config {
	char digest[IMAGE_DIGEST_LEN + 1];
	char *data;
	size_t len;
};

struct puller {
	struct pull_config cfg;
	char staging[PATH_MAX];
	struct registry_client *reg;
	struct cric_client *stored;
	struct image_store *images;
	pthread_mutex_t lock;   /* inflight, downloads, config cache */
	pthread_cond_t changed; /* on CLOCK_MONOTONIC */
	struct inflight *inflight;
	unsigned downloads;
	char (*slot_domain)[IMAGE_REF_NAME_MAX + 1]; /* max_downloads slots, "" free */
	int64_t slots_mark_ns;                       /* a slot was freed or a download progressed */
	struct cached_config configs[CONFIG_CACHE];
	unsigned next_config;
	pthread_mutex_t commit; /* stored commit/release + record change */
};

/* One place a repository is pulled from: a mirror or the registry itself. */
struct endpoint {
	struct image_ref ref; /* the repository on this endpoint */
	const struct registry_creds *creds;
	bool mirror;
};

/* The registry's entry in pc, NULL when it has none. */
const struct pull_registry *pull_registry_of(const struct pull_config *pc, const char *domain);

/* The download of digest from domain that concurrent pulls share: an
 * existing one (*owner false: wait for it with inflight_wait()) or a new
 * one (*owner true: the caller downloads, then calls inflight_finish()).
 * NULL on OOM. */
struct inflight *inflight_begin(struct puller *p, const char *domain, const char *digest,
				bool *owner);
/* The owner's result r (0 or a negative errno); wakes the waiters. */
void inflight_finish(struct puller *p, struct inflight *f, int r);

/* Wait for another pull's download f: 0 when it succeeded; -EAGAIN when it
 * failed for its own reasons (the caller may fetch it itself); -ETIMEDOUT
 * (err set) when it stalled (no progress_min_bytes within
 * progress_timeout_sec while downloading: the same rule as our own
 * downloads) or our caller's deadline passed. Waits while the other pull
 * queues for a slot or imports are bounded by that pull's own limits and
 * our deadline. Once *cancel (may be NULL) is nonzero or the caller
 * cancelled: -ECANCELED. */
int inflight_wait(struct puller *p, struct inflight *f, const struct cric_call *call,
		  const int *cancel, struct cric_err *err);

/* Fetch f's blob into a new staging file; its name into name. Bounded by
 * progress and by the caller's deadline; stopped once *cancel (may be
 * NULL) is nonzero. */
int fetch_to_staging(struct puller *p, const struct cric_call *call, const int *cancel,
		     const struct endpoint *ep, struct inflight *f, int64_t size, char name[128],
		     struct cric_err *err);
