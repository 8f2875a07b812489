/* Registry HTTP API v2 client: manifests and blobs over the transport
 * helper (fetch.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nettle/sha2.h>

#include "common/cleanup.h"
#include "imaged/auth.h"
#include "imaged/fetch.h"
#include "imaged/manifest.h"
#include "imaged/registry.h"
#include "imaged/membuf.h"
#include "imaged/xfer.h"

struct registry_client {
	unsigned connect_timeout_sec;
	unsigned progress_timeout_sec;
	uint64_t progress_min_bytes;
	unsigned max_retries;
	unsigned retry_delay_ms;
	char **insecure;
	char *ca_file;
	char *user_agent;
	struct auth_cache *cache;
	struct fetch_pool *pool;
};

/* --- client --- */

int registry_client_new(const struct registry_client_opts *opts, struct registry_client **ret,
			struct cric_err *err)
{
	static const struct registry_client_opts defaults = { .max_retries = -1 };
	if (!opts)
		opts = &defaults;

	struct registry_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int r = fetch_pool_new(opts->fetch_helper, opts->fetch_idle_sec, &c->pool, err);
	if (r < 0) {
		free(c);
		return r;
	}
	c->connect_timeout_sec = opts->connect_timeout_sec ?: REGISTRY_DEFAULT_CONNECT_TIMEOUT;
	c->progress_timeout_sec = opts->progress_timeout_sec ?: REGISTRY_DEFAULT_PROGRESS_TIMEOUT;
	c->progress_min_bytes = opts->progress_min_bytes ?: REGISTRY_DEFAULT_PROGRESS_MIN_BYTES;
	c->max_retries =
	    opts->max_retries < 0 ? REGISTRY_DEFAULT_RETRIES : (unsigned)opts->max_retries;
	c->retry_delay_ms = opts->retry_delay_ms ?: 100;
	c->cache = auth_cache_new();
	size_t n = 0;
	while (opts->insecure && opts->insecure[n])
		n++;
	c->insecure = calloc(n + 1, sizeof(char *));
	c->user_agent = strdup(opts->user_agent ?: "cric");
	c->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
	bool oom = !c->cache || !c->insecure || !c->user_agent || (opts->ca_file && !c->ca_file);
	for (size_t i = 0; !oom && i < n; i++)
		oom = !(c->insecure[i] = strdup(opts->insecure[i]));
	if (oom) {
		registry_client_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

struct registry_client *registry_client_free(struct registry_client *c)
{
	if (!c)
		return NULL;
	strv_free(c->insecure);
	free(c->ca_file);
	free(c->user_agent);
	auth_cache_free(c->cache);
	fetch_pool_free(c->pool);
	free(c);
	return NULL;
}

/* localhost, 127.0.0.0/8 or [::1], with or without a port. */
static bool domain_is_loopback(const char *domain)
{
	char host[IMAGE_REF_NAME_MAX + 1];
	const char *end;

	if (domain[0] == '[') {
		end = strchr(domain, ']');
		if (!end)
			return false;
		domain++;
	} else {
		end = strchr(domain, ':');
		if (!end)
			end = domain + strlen(domain);
	}
	if ((size_t)(end - domain) >= sizeof(host))
		return false;
	memcpy(host, domain, (size_t)(end - domain));
	host[end - domain] = '\0';

	if (strcasecmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
	return false;
}

bool registry_is_insecure(const struct registry_client *c, const char *domain)
{
	for (char **i = c->insecure; i && *i; i++)
		if (strcmp(*i, domain) == 0)
			return true;
	return domain_is_loopback(domain);
}

enum authn_kind {
	AUTHN_NONE,
	AUTHN_BASIC,
	AUTHN_BEARER,
};

/* How requests of one call authenticate; carried across its retries. */
struct session {
	char domain[IMAGE_REF_NAME_MAX + 1];
	const char *host;
	char scope[IMAGE_REF_NAME_MAX + 32];
	const struct registry_creds *creds;
	enum authn_kind kind;
	bool answered;   /* we answered a challenge (or were given a token) */
	bool from_cache; /* the bearer token came from the cache */
	char *token;
	char identity[AUTH_IDENTITY_LEN + 1]; /* of creds, keying cached tokens */
	char user[AUTH_USER_MAX + 1];
	char pass[AUTH_PASSWORD_MAX + 1];
};

static void session_done(struct session *s)
{
	if (s->token)
		explicit_bzero(s->token, strlen(s->token));
	free(s->token);
	s->token = NULL;
	explicit_bzero(s->pass, sizeof(s->pass));
}

static int session_init(struct registry_client *c, const struct image_ref *ref,
			const struct registry_creds *creds, struct session *s, struct cric_err *err)
{
	*s = (struct session){ .creds = creds };
	snprintf(s->domain, sizeof(s->domain), "%s", ref->domain);
	s->host = registry_api_host(ref->domain);
	snprintf(s->scope, sizeof(s->scope), "repository:%s:pull", ref->path);
	if (creds && creds->registry_token && creds->registry_token[0]) {
		s->token = strdup(creds->registry_token);
		if (!s->token)
			return -ENOMEM;
		s->kind = AUTHN_BEARER;
		s->answered = true;
		return 0;
	}
	/* Only a token these very credentials earned. */
	int r = auth_cache_identity(c->cache, creds, s->identity, err);
	if (r < 0)
		return err_prefix(err, r, "registry \"%s\"", s->domain);
	r = auth_cache_get(c->cache, s->domain, s->scope, s->identity, &s->token);
	if (r == -ENOMEM)
		return r;
	if (r == 0) {
		s->kind = AUTHN_BEARER;
		s->from_cache = true;
	}
	return 0;
}

static const struct fetch_ops xfer_ops = {
	.header = xfer_on_header,
	.body = xfer_on_body,
	.tick = xfer_on_tick,
};

/* One request of x: 0 with x's response recorded; a stop of x's callbacks
 * (x->stop, x->stopped); or a transport failure (its message in msg). */
static int perform(struct registry_client *c, struct xfer *x, const struct session *s,
		   const char *range, char msg[static FETCH_MSG_MAX], struct cric_err *err)
{
	char accept[1024];
	struct fetch_req rq = {
		.url = x->url,
		.allow_http = x->insecure,
		.max_redirs = REGISTRY_MAX_REDIRECTS,
		.connect_timeout_sec = c->connect_timeout_sec,
		.user_agent = c->user_agent,
		.ca_file = c->ca_file,
	};
	size_t nh = 0;
	if (x->accept) {
		snprintf(accept, sizeof(accept), "Accept: %s", x->accept);
		rq.headers[nh++] = accept;
	}
	if (range)
		rq.headers[nh++] = range;
	if (s->kind == AUTHN_BEARER) {
		rq.bearer = s->token;
	} else if (s->kind == AUTHN_BASIC) {
		rq.user = s->user;
		rq.pass = s->pass;
	}
	xfer_reset_response(x);
	x->stop = 0;
	x->stopped = STOPPED_NOT;
	x->mark_bytes = x->received;
	x->mark_ns = xfer_mono_ns();
	x->progress_timeout_sec = c->progress_timeout_sec;
	x->progress_min_bytes = c->progress_min_bytes;
	struct fetch_done done;
	struct cric_err ferr = { "" };
	int r = fetch_perform(c->pool, &rq, &xfer_ops, x, &done, &ferr);
	if (r == -ECANCELED)
		return r; /* x says why */
	if (r < 0) {
		snprintf(msg, FETCH_MSG_MAX, "%s", ferr.msg[0] ? ferr.msg : strerror(-r));
		(void)err;
		return r;
	}
	snprintf(msg, FETCH_MSG_MAX, "%s", done.msg);
	return done.err;
}

/* Answer a 401: get a token or pick basic credentials. */
static int answer_challenge(struct registry_client *c, const struct xfer *x, struct session *s,
			    struct cric_err *err)
{
	struct auth_challenge ch;
	int r;

	if (!x->www_authenticate[0])
		return err_set(err, -EACCES, "registry \"%s\" requires authentication", s->domain);
	r = auth_challenge_parse(x->www_authenticate, &ch, err);
	if (r < 0)
		return err_prefix(err, r == -EOPNOTSUPP ? -EACCES : -EPROTO, "registry \"%s\"",
				  s->domain);

	if (ch.scheme == AUTH_SCHEME_BASIC) {
		r = auth_creds_userpass(s->creds, s->user, s->pass, err);
		if (r == -ENOENT)
			return err_set(err, -EACCES, "registry \"%s\" requires credentials",
				       s->domain);
		if (r < 0)
			return err_prefix(err, r, "registry \"%s\"", s->domain);
		s->kind = AUTHN_BASIC;
		s->answered = true;
		return 0;
	}

	struct auth_fetch_opts fo = {
		.connect_timeout_sec = c->connect_timeout_sec,
		.low_speed_time_sec = c->progress_timeout_sec,
		.allow_http = x->insecure,
		.ca_file = c->ca_file,
		.pool = c->pool,
		.user_agent = c->user_agent,
	};
	_cleanup_free_ char *token = NULL;
	long ttl = 0;
	r = auth_token_fetch(&ch, ch.scope[0] ? ch.scope : s->scope, s->creds, &fo, &token, &ttl,
			     err);
	if (r < 0)
		return err_prefix(err, r, "registry \"%s\"", s->domain);
	r = auth_cache_put(c->cache, s->domain, s->scope, s->identity, token, ttl);
	if (r < 0)
		return r;
	session_done(s);
	s->token = TAKE_PTR(token);
	s->kind = AUTHN_BEARER;
	s->answered = true;
	return 0;
}

/* Perform x, answering at most one challenge. 0 with x->status set, or a
 * transport/auth error. */
static int request(struct registry_client *c, struct xfer *x, struct session *s, const char *range,
		   struct cric_err *err)
{
	for (;;) {
		char msg[FETCH_MSG_MAX] = "";
		int rc = perform(c, x, s, range, msg, err);
		if (x->stopped == STOPPED_STALLED)
			return err_set(err, -ETIMEDOUT,
				       "registry \"%s\": %s stalled: fewer than %" PRIu64
				       " bytes in %u s (pull_progress_timeout_seconds), %" PRIu64
				       " received",
				       s->domain, x->what, c->progress_min_bytes,
				       c->progress_timeout_sec, x->received);
		if (x->stopped == STOPPED_CANCELLED)
			return err_set(err, -ECANCELED, "registry \"%s\": %s: cancelled", s->domain,
				       x->what);
		if (x->stopped == STOPPED_DEADLINE)
			return err_set(err, -ETIMEDOUT,
				       "registry \"%s\": %s: the caller's deadline passed, %" PRIu64
				       " bytes received",
				       s->domain, x->what, x->received);
		if (x->stop)
			return x->stop;
		if (rc < 0)
			return err_set(err, rc, "registry \"%s\": %s", s->domain, msg);
		if (x->status != 401)
			return 0;
		if (s->answered)
			return err_set(err, -EACCES,
				       "registry \"%s\" refused the credentials (HTTP 401)",
				       s->domain);
		if (s->from_cache) {
			auth_cache_drop(c->cache, s->domain, s->scope, s->identity);
			s->from_cache = false;
			session_done(s);
			s->kind = AUTHN_NONE;
		}
		int r = answer_challenge(c, x, s, err);
		if (r < 0)
			return r;
	}
}

/* The first error code of a registry's error body ("MANIFEST_UNKNOWN"). */
static void errbody_code(const struct xfer *x, char out[static 64])
{
	json_error_t jerr;
	out[0] = '\0';
	_cleanup_json_ json_t *root = json_loadb(x->errbody, x->errlen, 0, &jerr);
	json_t *code = json_object_get(json_array_get(json_object_get(root, "errors"), 0), "code");
	const char *s = json_string_value(code);
	if (!s || strlen(s) > 48)
		return;
	for (const char *p = s; *p; p++)
		if (!isupper((unsigned char)*p) && *p != '_')
			return;
	snprintf(out, 64, " %s", s);
}

static int status_error(const struct xfer *x, const struct session *s, const char *what,
			struct cric_err *err)
{
	char code[64];
	errbody_code(x, code);
	switch (x->status) {
	case 404:
		return err_set(err, -ENOENT, "registry \"%s\": %s not found (HTTP 404%s)",
			       s->domain, what, code);
	case 401:
	case 403:
		return err_set(err, -EACCES, "registry \"%s\": %s: access denied (HTTP %ld%s)",
			       s->domain, what, x->status, code);
	case 429:
		return err_set(err, -EAGAIN, "registry \"%s\": %s: too many requests (HTTP 429)",
			       s->domain, what);
	default:
		return err_set(err, x->status >= 500 ? -EIO : -EPROTO,
			       "registry \"%s\": %s: HTTP %ld%s", s->domain, what, x->status, code);
	}
}

static int build_url(struct registry_client *c, const struct session *s, struct xfer *x,
		     const char *path, const char *kind, const char *reference)
{
	x->insecure = registry_is_insecure(c, s->domain);
	int n = snprintf(x->url, sizeof(x->url), "%s://%s/v2/%s/%s/%s",
			 x->insecure ? "http" : "https", s->host, path, kind, reference);
	return n > 0 && (size_t)n < sizeof(x->url) ? 0 : -ENAMETOOLONG;
}

static void digest_hex(const unsigned char *md, unsigned n, char out[static IMAGE_DIGEST_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char *p = stpcpy(out, "sha256:");
	for (unsigned i = 0; i < n; i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 15];
	}
	*p = '\0';
}

/* A tag or a digest: safe to put in a URL path. */
static int reference_check(const char *s, struct cric_err *err)
{
	if (strncmp(s, "sha256:", 7) == 0)
		return image_digest_validate(s, err);
	size_t n = strlen(s);
	if (n == 0 || n > IMAGE_REF_TAG_MAX)
		return err_set(err, -EINVAL, "invalid tag \"%.*s\"", 130, s);
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return err_set(err, -EINVAL, "invalid tag \"%.*s\"", 130, s);
	return 0;
}

/* --- manifests --- */

struct registry_manifest *registry_manifest_free(struct registry_manifest *m)
{
	if (!m)
		return NULL;
	free(m->body);
	free(m->content_type);
	free(m);
	return NULL;
}

static void session_donep(struct session *s)
{
	session_done(s);
}

static void xfer_freep(struct xfer **x)
{
	if (*x)
		free((*x)->mem.data);
	free(*x);
}
#define _cleanup_xfer_ _cleanup_(xfer_freep)

int registry_fetch_manifest(struct registry_client *c, const struct image_ref *ref,
			    const char *reference, const char *accept,
			    const struct registry_creds *creds, struct registry_manifest **ret,
			    struct cric_err *err)
{
	_cleanup_(session_donep) struct session s = { 0 };
	_cleanup_xfer_ struct xfer *x = NULL;
	char what[IMAGE_REF_STRING_MAX + 32];
	int r;

	if (!reference)
		reference = ref->digest[0] ? ref->digest : ref->tag;
	r = reference_check(reference, err);
	if (r < 0)
		return r;
	bool by_digest = strncmp(reference, "sha256:", 7) == 0;
	snprintf(what, sizeof(what), "manifest %s:%s", ref->path, reference);

	r = session_init(c, ref, creds, &s, err);
	if (r < 0)
		return r;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->sink = SINK_MEMORY;
	x->what = what;
	x->mem.max = MANIFEST_MAX_BYTES;
	x->accept = accept ?: MANIFEST_ACCEPT;
	r = build_url(c, &s, x, ref->path, "manifests", reference);
	if (r < 0)
		return err_set(err, r, "registry \"%s\": URL too long", s.domain);

	r = request(c, x, &s, NULL, err);
	if (r == -E2BIG)
		return err_set(err, r, "registry \"%s\": %s over %d bytes", s.domain, what,
			       MANIFEST_MAX_BYTES);
	if (r < 0)
		return r;
	if (x->status != 200)
		return status_error(x, &s, what, err);

	uint8_t md[SHA256_DIGEST_SIZE];
	struct sha256_ctx sha;
	sha256_init(&sha);
	sha256_update(&sha, x->mem.len, (const uint8_t *)(x->mem.data ?: ""));
	sha256_digest(&sha, sizeof(md), md);
	char digest[IMAGE_DIGEST_LEN + 1];
	digest_hex(md, sizeof(md), digest);
	if (by_digest && strcmp(digest, reference) != 0)
		return err_set(err, -EBADMSG, "registry \"%s\": %s: content has digest %s",
			       s.domain, what, digest);
	if (x->docker_digest[0] && strcmp(x->docker_digest, digest) != 0)
		return err_set(err, -EBADMSG,
			       "registry \"%s\": %s: Docker-Content-Digest does not match the "
			       "content (%s)",
			       s.domain, what, digest);

	_cleanup_(registry_manifest_freep) struct registry_manifest *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->content_type = strdup(x->content_type);
	m->body = x->mem.data ? TAKE_PTR(x->mem.data) : calloc(1, 1);
	if (!m->content_type || !m->body)
		return -ENOMEM;
	m->len = x->mem.len;
	memcpy(m->digest, digest, sizeof(m->digest));
	*ret = TAKE_PTR(m);
	return 0;
}

/* --- blobs --- */

static bool retryable(int r)
{
	return r == -ECONNRESET || r == -ECONNREFUSED;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Request the blob into x->fd from x->off on, resuming after a dropped
 * connection (at most max_retries times, backing off): 0 once a 200 or
 * 206 response completed. */
static int fetch_resuming(struct registry_client *c, struct xfer *x, struct session *s,
			  const char *what, unsigned *resumes, struct cric_err *err)
{
	unsigned delay = c->retry_delay_ms;
	for (;;) {
		char range[64];
		snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)x->off);
		int r = request(c, x, s, x->off > 0 ? range : NULL, err);
		if (r == 0 && (x->status == 200 || x->status == 206))
			return 0;
		if (r == 0)
			return status_error(x, s, what, err);
		if (x->stopped != STOPPED_NOT)
			return r; /* request() said why */
		if (r == -EBADMSG)
			return err_set(err, r, "registry \"%s\": %s: larger than %llu bytes",
				       s->domain, what, (unsigned long long)x->limit);
		if (r == -EPROTO && x->stop == -EPROTO)
			return err_set(err, r, "registry \"%s\": %s: wrong Content-Range on resume",
				       s->domain, what);
		if (x->stop)
			return err_set(err, r, "registry \"%s\": %s: write: %s", s->domain, what,
				       strerror(-r));
		if (!retryable(r) || *resumes >= c->max_retries)
			return r;
		(*resumes)++;
		sleep_ms(delay);
		if (delay < 5000)
			delay *= 2;
	}
}

/* The fetched blob has the expected size (when known) and digest. */
static int blob_verify(const struct xfer *x, const struct session *s, const char *what,
		       const char *digest, int64_t expected_size, struct cric_err *err)
{
	uint8_t buf[SHA256_DIGEST_SIZE];
	char got[IMAGE_DIGEST_LEN + 1];
	struct sha256_ctx md = x->md;
	sha256_digest(&md, sizeof(buf), buf);
	digest_hex(buf, sizeof(buf), got);
	if (expected_size >= 0 && x->off != (uint64_t)expected_size)
		return err_set(err, -EBADMSG, "registry \"%s\": %s: got %llu bytes, expected %lld",
			       s->domain, what, (unsigned long long)x->off,
			       (long long)expected_size);
	if (strcmp(got, digest) != 0)
		return err_set(err, -EBADMSG, "registry \"%s\": %s: content has digest %s",
			       s->domain, what, got);
	return 0;
}

int registry_fetch_blob(struct registry_client *c, const struct image_ref *ref, const char *digest,
			int out_fd, int64_t expected_size, const struct registry_creds *creds,
			const struct registry_blob_opts *opts, uint64_t *ret_size,
			unsigned *ret_resumes, struct cric_err *err)
{
	_cleanup_(session_donep) struct session s = { 0 };
	_cleanup_xfer_ struct xfer *x = NULL;
	char what[IMAGE_DIGEST_LEN + 16];
	unsigned resumes = 0;
	int r;

	r = image_digest_validate(digest, err);
	if (r < 0)
		return r;
	if (expected_size > LAYER_MAX_BYTES)
		return err_set(err, -EFBIG, "blob %s: size %lld over the limit", digest,
			       (long long)expected_size);
	snprintf(what, sizeof(what), "blob %s", digest);

	r = session_init(c, ref, creds, &s, err);
	if (r < 0)
		return r;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	sha256_init(&x->md);
	x->sink = SINK_FILE;
	x->what = what;
	x->deadline_ns = opts ? opts->deadline_ns : 0;
	x->cancel = opts ? opts->cancel : NULL;
	x->caller_cancel = opts ? opts->caller_cancel : NULL;
	x->fd = out_fd;
	x->bopts = opts;
	x->limit = expected_size >= 0 ? (uint64_t)expected_size : (uint64_t)LAYER_MAX_BYTES;
	r = build_url(c, &s, x, ref->path, "blobs", digest);
	if (r < 0)
		return err_set(err, r, "registry \"%s\": URL too long", s.domain);

	r = fetch_resuming(c, x, &s, what, &resumes, err);
	if (r < 0)
		return r;
	r = blob_verify(x, &s, what, digest, expected_size, err);
	if (r < 0)
		return r;
	if (ret_size)
		*ret_size = x->off;
	if (ret_resumes)
		*ret_resumes = resumes;
	return 0;
}
