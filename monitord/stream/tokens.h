/* The streaming server's tokens: what an Exec, Attach or PortForward
 * call asked for, kept under an unguessable token until the client
 * connects to http://<address>:<port>/<kind>/<token>.
 *
 * A token is 32 lowercase hex digits from getrandom() (128 bits); it is
 * taken once (tokens_take() removes it) and expires TOKENS_TTL_MS after it
 * was made; at most `max` are outstanding (a further put: -EAGAIN,
 * UNAVAILABLE: retry once some are used or expired).
 * Expired ones are dropped on every call. Thread-safe: the CRI calls put,
 * the HTTP thread takes. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKENS_TTL_MS  60000
#define TOKEN_LEN      32
#define TOKENS_MAX_DEF 1024

enum stream_kind { STREAM_KIND_EXEC, STREAM_KIND_ATTACH, STREAM_KIND_PORTFORWARD };

/* What a session needs to run: owned by whoever holds it. */
struct stream_request {
	enum stream_kind kind;
	char id[65]; /* the full container id (port-forward: the pod's) */
	char **cmd;  /* exec: NULL-terminated */
	bool tty, stdin, stdout, stderr;
	/* port-forward: the pod's pinned network namespace (NULL: a
	 * host-network pod, the host's), the ports the call named (none:
	 * any). */
	char *netns;
	uint16_t *ports;
	size_t n_ports;
};

void stream_request_free(struct stream_request *r);

struct tokens {
	pthread_mutex_t lock;
	size_t max, n;
	size_t cap; /* v's length: grown as tokens are put, up to max */
	int64_t ttl_ms;
	struct token_entry {
		char token[TOKEN_LEN + 1];
		int64_t expires_ms; /* CLOCK_MONOTONIC */
		struct stream_request *req;
	} * v;
};

int tokens_init(struct tokens *t, size_t max, int64_t ttl_ms);
void tokens_done(struct tokens *t);
/* Keep req (taken on success) under a new token, written to token. */
int tokens_put(struct tokens *t, struct stream_request *req, char token[TOKEN_LEN + 1]);
/* The request of a valid, unexpired token, removed; NULL otherwise (unknown,
 * malformed, used, expired, or of another kind). */
struct stream_request *tokens_take(struct tokens *t, const char *token, enum stream_kind kind);
