/* A client of the Docker Registry HTTP API v2 / OCI distribution spec
 * (libcurl, in the helper process of fetch.h): manifests into memory, blobs
 * streamed into a file.
 *
 * Transport: https, or plain http for insecure registries only: those named
 * in registry_client_opts.insecure, and loopback ones (localhost,
 * 127.0.0.0/8, [::1]) as Docker treats them. A registry's API host comes
 * from registry_api_host() (docker.io -> registry-1.docker.io).
 *
 * Auth (see auth.h): requests go out anonymously or with a cached bearer
 * token; a 401 is answered once, with a bearer token from the challenge's
 * realm or with basic credentials; a 401 after that is -EACCES naming the
 * registry. Credentials are sent to the registry's host only: on a redirect
 * to another host (blob storage) libcurl drops them.
 *
 * Integrity: a manifest's digest is computed over the body received and,
 * when fetched by digest, must equal it; Docker-Content-Digest, when sent,
 * must equal it too. A blob is hashed while it is written (no second pass)
 * and must match its digest and, when given, its size.
 *
 * Threads: a client may be used from several threads at once (each request
 * is a transfer of its own in the helper; the token cache is locked). Every fetch blocks on the
 * network; the progress callback is called from the calling thread. Nothing
 * here logs; secrets never appear in error messages.
 *
 * Errors: a negative errno, err (optional) filled only on failure; outputs
 * written only on success.
 *  -ENOENT     the registry does not have it (404)
 *  -EACCES     refused (401 after authenticating, 403, or bad credentials)
 *  -EBADMSG    content does not match its digest or size
 *  -E2BIG      a manifest over MANIFEST_MAX_BYTES
 *  -ETIMEDOUT  no progress (below), the caller's deadline passed
 *              (registry_blob_opts.deadline_ns), or the connect timeout
 *  -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -EIO: transport failures
 *  -EPROTO     anything else the registry answered that makes no sense
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/macro.h"
#include "imaged/auth.h"
#include "imaged/reference.h"

#define REGISTRY_DEFAULT_CONNECT_TIMEOUT 30 /* seconds */
#define REGISTRY_DEFAULT_PROGRESS_TIMEOUT                                                          \
	300 /* seconds: containerd's image_pull_progress_timeout */
#define REGISTRY_DEFAULT_PROGRESS_MIN_BYTES (1u << 20)
#define REGISTRY_DEFAULT_RETRIES            3 /* blob resumes after a dropped connection */
#define REGISTRY_MAX_REDIRECTS              5

/* Progress: every request (manifest, blob, from its first byte on the wire
 * to its last, across a redirect) must receive progress_min_bytes of body
 * within progress_timeout_sec, then the next progress_min_bytes within
 * progress_timeout_sec of that, and so on; a registry that trickles (say 2
 * bytes every half second) or stalls fails with -ETIMEDOUT naming the
 * registry and the blob or manifest. A response shorter than
 * progress_min_bytes must be complete within progress_timeout_sec. A
 * stalled blob is not resumed. */
struct registry_client_opts {
	unsigned connect_timeout_sec;  /* 0: default */
	unsigned progress_timeout_sec; /* 0: default */
	uint64_t progress_min_bytes;   /* 0: default */
	int max_retries;               /* < 0: default; 0: no resume */
	unsigned retry_delay_ms;       /* before the first resume, doubling; 0: 100 */
	const char *const *insecure;   /* NULL-terminated domains ("reg.local:5000") */
	const char *ca_file;           /* NULL: the system's CAs */
	const char *user_agent;        /* NULL: "cric" */
	const char *fetch_helper;      /* cric-fetch; NULL: beside our executable */
	unsigned fetch_idle_sec;       /* the helper exits after so long unused; 0: default */
};

struct registry_client;

/* Copies opts (may be NULL). */
int registry_client_new(const struct registry_client_opts *opts, struct registry_client **ret,
			struct cric_err *err);
/* Accepts NULL, returns NULL. No call may be running. */
struct registry_client *registry_client_free(struct registry_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct registry_client *, registry_client_free)
#define _cleanup_registry_client_ _cleanup_(registry_client_freep)

/* Whether domain is spoken to over plain http. */
bool registry_is_insecure(const struct registry_client *c, const char *domain);

struct registry_manifest {
	char *body; /* len bytes and a NUL */
	size_t len;
	char *content_type; /* the response's Content-Type, "" if none */
	char digest[IMAGE_DIGEST_LEN + 1];
};
struct registry_manifest *registry_manifest_free(struct registry_manifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct registry_manifest *, registry_manifest_free)
#define _cleanup_registry_manifest_ _cleanup_(registry_manifest_freep)

/* GET /v2/<ref->path>/manifests/<reference> with Accept: accept (NULL:
 * MANIFEST_ACCEPT). reference NULL: ref's digest if it has one, else its
 * tag; otherwise a tag or digest of the same repository (an index's child).
 * The body is bounded by MANIFEST_MAX_BYTES. creds may be NULL. */
int registry_fetch_manifest(struct registry_client *c, const struct image_ref *ref,
			    const char *reference, const char *accept,
			    const struct registry_creds *creds, struct registry_manifest **ret,
			    struct cric_err *err);

/* Called as bytes of a blob arrive: total is the bytes of the blob held so
 * far (it can go back to 0 if the server ignores a Range request). */
typedef void (*registry_progress_fn)(void *userdata, uint64_t total);

struct registry_blob_opts {
	registry_progress_fn progress; /* may be NULL */
	void *userdata;
	int64_t deadline_ns;      /* absolute CLOCK_REALTIME, 0: none: the fetch stops
				     there with -ETIMEDOUT (the caller no longer waits) */
	const int *cancel;        /* may be NULL; once nonzero (read atomically, at least
				     once a second) the fetch stops with -ECANCELED */
	const int *caller_cancel; /* the same, for the caller's cancellation
				     (struct cric_call's cancel) */
};

/* GET /v2/<ref->path>/blobs/<digest> into out_fd (an empty regular file opened
 * for writing; written with pwrite from offset 0). expected_size < 0: not
 * known (then bounded by LAYER_MAX_BYTES). After a dropped connection the
 * download resumes with a Range request, up to max_retries times. On
 * -EBADMSG and any other failure the file holds garbage: the caller removes
 * it. ret_size, ret_resumes optional. */
int registry_fetch_blob(struct registry_client *c, const struct image_ref *ref, const char *digest,
			int out_fd, int64_t expected_size, const struct registry_creds *creds,
			const struct registry_blob_opts *opts, uint64_t *ret_size,
			unsigned *ret_resumes, struct cric_err *err);
