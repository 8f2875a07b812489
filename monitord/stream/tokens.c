/* Tokens of the streaming server; see tokens.h. */
#include "tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void stream_request_free(struct stream_request *r)
{
	if (!r)
		return;
	for (char **p = r->cmd; p && *p; p++)
		free(*p);
	free(r->cmd);
	free(r->netns);
	free(r->ports);
	free(r);
}

int tokens_init(struct tokens *t, size_t max, int64_t ttl_ms)
{
	memset(t, 0, sizeof(*t));
	/* Grown as needed (tokens_put): a table for max (56 KiB for the
	 * default 1024) is held idle for as long as monitord runs. */
	t->cap = 4;
	t->v = calloc(t->cap, sizeof(*t->v));
	if (!t->v)
		return -ENOMEM;
	t->max = max;
	t->ttl_ms = ttl_ms;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void tokens_done(struct tokens *t)
{
	if (!t->v)
		return;
	for (size_t i = 0; i < t->n; i++)
		stream_request_free(t->v[i].req);
	free(t->v);
	t->v = NULL;
	pthread_mutex_destroy(&t->lock);
}

/* Under the lock. */
static void drop_expired(struct tokens *t, int64_t now)
{
	for (size_t i = 0; i < t->n;) {
		if (t->v[i].expires_ms > now) {
			i++;
			continue;
		}
		stream_request_free(t->v[i].req);
		t->v[i] = t->v[--t->n];
	}
}

int tokens_put(struct tokens *t, struct stream_request *req, char token[TOKEN_LEN + 1])
{
	char tok[TOKEN_LEN + 1];
	int r = id_random_hex(tok, sizeof(tok), TOKEN_LEN / 2);
	if (r < 0)
		return r;
	pthread_mutex_lock(&t->lock);
	int64_t now = mono_ms();
	drop_expired(t, now);
	if (t->n >= t->max) {
		pthread_mutex_unlock(&t->lock);
		return -EAGAIN;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap * 2 < t->max ? t->cap * 2 : t->max;
		struct token_entry *v = reallocarray(t->v, cap, sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&t->lock);
			return -ENOMEM;
		}
		t->v = v;
		t->cap = cap;
	}
	struct token_entry *e = &t->v[t->n++];
	memcpy(e->token, tok, sizeof(tok));
	e->expires_ms = now + t->ttl_ms;
	e->req = req;
	pthread_mutex_unlock(&t->lock);
	memcpy(token, tok, sizeof(tok));
	return 0;
}

/* Compare all of a and b (TOKEN_LEN each) whatever differs first. */
static bool same_token(const char *a, const char *b)
{
	unsigned char d = 0;
	for (size_t i = 0; i < TOKEN_LEN; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

struct stream_request *tokens_take(struct tokens *t, const char *token, enum stream_kind kind)
{
	if (!token || strlen(token) != TOKEN_LEN)
		return NULL;
	struct stream_request *req = NULL;
	pthread_mutex_lock(&t->lock);
	drop_expired(t, mono_ms());
	for (size_t i = 0; i < t->n; i++) {
		if (!same_token(t->v[i].token, token))
			continue;
		if (t->v[i].req->kind == kind) {
			req = t->v[i].req;
			t->v[i] = t->v[--t->n];
		}
		break;
	}
	pthread_mutex_unlock(&t->lock);
	return req;
}
