/* imaged's HTTP(S) transport: libcurl runs in a helper process, cric-fetch
 * (imaged/fetch/cric-fetch.c), so that imaged maps neither libcurl nor a TLS
 * library while it is idle and does not parse TLS and HTTP framing from the
 * network itself. The helper is untrusted: it only moves bytes. imaged
 * parses the header lines, bounds and hashes the body, and keeps progress,
 * stall detection, deadlines and cancellation.
 *
 * A pool starts the helper on its first transfer (posix_spawn, as imaged's
 * user, with a control socket on its fd 3) and passes it one socketpair end
 * per transfer; the helper serves each on a thread of its own and exits
 * after idle_sec without a transfer, or when the pool is freed or imaged
 * exits (the control socket closes). A transfer that finds the helper gone
 * before receiving anything is retried once on a new helper; one that loses
 * it midway fails with -ECONNRESET (registry.c resumes blobs after that).
 *
 * Threads: fetch_perform() may run on many threads at once; it blocks the
 * calling thread for the transfer and calls the callbacks from it. The pool
 * reaps its helpers on a small thread per helper. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "imaged/fetchwire.h"

#define FETCH_DEFAULT_IDLE_SEC 10 /* a pull's manifests and blobs come closer than that */

struct fetch_pool;

/* helper: the cric-fetch executable (NULL: beside ours). */
int fetch_pool_new(const char *helper, unsigned idle_sec, struct fetch_pool **ret,
		   struct cric_err *err);
/* Ends the helpers and reaps them. No transfer may be running. */
struct fetch_pool *fetch_pool_free(struct fetch_pool *p);
/* The running helper's pid, 0 when there is none (for tests and logs). */
pid_t fetch_pool_helper_pid(struct fetch_pool *p);

struct fetch_req {
	const char *url;
	bool allow_http; /* http and https, else https only (redirects too) */
	int max_redirs;  /* < 0: redirects are not followed */
	unsigned connect_timeout_sec;
	unsigned timeout_sec;   /* the whole request, 0: none (the callbacks stop it) */
	const char *user_agent; /* may be NULL */
	const char *headers[4]; /* "Name: value", NULL-terminated */
	const char *ca_file;    /* NULL: the system's */
	const char *bearer;     /* or user and pass; sent to the URL's host only */
	const char *user, *pass;
	const char *post; /* a form body: POST */
};

/* Called on the caller's thread as the response comes. header gets one
 * header line (with its CRLF; status lines too); body gets body bytes of
 * any response (redirects' too). Each returns 0, or < 0 to stop the
 * transfer; tick is called at least every FETCH_TICK_MS and after each
 * event, and stops the transfer by returning nonzero. */
#define FETCH_TICK_MS 500
struct fetch_ops {
	int (*header)(void *userdata, const char *line, size_t len);
	int (*body)(void *userdata, const char *data, size_t len);
	int (*tick)(void *userdata);
};

/* Run one request. 0: the helper reported its end in *done (done->err is
 * the transport's result: 0 or a negative errno, done->msg says why);
 * -ECANCELED: a callback stopped it; -ECONNRESET: the helper died midway;
 * another negative errno (err set): no helper could serve it. */
int fetch_perform(struct fetch_pool *p, const struct fetch_req *rq, const struct fetch_ops *ops,
		  void *userdata, struct fetch_done *done, struct cric_err *err);
