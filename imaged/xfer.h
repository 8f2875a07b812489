/* One HTTP transfer of the registry client (registry.c): what the
 * transport's callbacks (fetch.h) record of a response (headers, a body
 * into memory or into a file being hashed, progress). Internal to
 * imaged/registry.c and imaged/xfer.c. Single threaded: one transfer, one
 * thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

#include "imaged/membuf.h"
#include "imaged/reference.h"
#include "imaged/registry.h"

#define ERRBODY_MAX 4096

enum sink {
	SINK_MEMORY,
	SINK_FILE,
};

struct xfer {
	/* request */
	char url[2048];
	const char *accept;
	bool insecure;

	/* response headers, reset at each status line (redirects, 401s) */
	long status;
	char content_type[256];
	char docker_digest[IMAGE_DIGEST_LEN + 2];
	char www_authenticate[2048];
	int64_t range_start; /* Content-Range's first byte, -1 if none */
	bool started;        /* body bytes of this response were seen */

	/* body of a non-2xx response, for the message */
	char errbody[ERRBODY_MAX + 1];
	size_t errlen;

	enum sink sink;
	/* SINK_MEMORY */
	struct membuf mem;
	/* SINK_FILE */
	int fd;
	uint64_t off, limit;
	struct sha256_ctx md;
	const struct registry_blob_opts *bopts;

	/* why the write callback stopped the transfer */
	int stop;

	/* progress (see registry.h): body bytes received over all responses,
	 * and when (CLOCK_MONOTONIC) the last progress_min_bytes of them were
	 * complete; past deadline_ns (CLOCK_REALTIME, 0: none) the caller no
	 * longer waits. */
	const char *what; /* "blob sha256:...", for messages */
	uint64_t received, mark_bytes;
	int64_t mark_ns, deadline_ns;
	const int *cancel, *caller_cancel;
	unsigned progress_timeout_sec;
	uint64_t progress_min_bytes;
	enum { STOPPED_NOT, STOPPED_STALLED, STOPPED_DEADLINE, STOPPED_CANCELLED } stopped;
};

/* The transport's tick (at least twice a second, and as data moves): a
 * transfer that took longer than progress_timeout_sec to receive the next
 * progress_min_bytes, or whose caller's deadline passed, stops (nonzero).
 * userdata is the struct xfer; its progress fields below. */
int xfer_on_tick(void *userdata);

/* CLOCK_MONOTONIC in ns. */
int64_t xfer_mono_ns(void);
/* Forget the response headers (a new status line: a redirect, a 401). */
void xfer_reset_response(struct xfer *x);
/* The transport's header and body callbacks (fetch.h's fetch_ops);
 * userdata is the struct xfer. < 0 stops the transfer (x->stop says why). */
int xfer_on_header(void *userdata, const char *line, size_t len);
int xfer_on_body(void *userdata, const char *data, size_t len);
