/* Registry authentication: challenges, credentials, bearer tokens. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <nettle/hmac.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "common/ids.h"
#include "imaged/auth.h"
#include "imaged/fetch.h"
#include "imaged/membuf.h"
#include "imaged/reference.h"
#include "imaged/registry.h"

/* --- challenges --- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Copy a token or quoted-string value at *pp into out (size n). */
static int parse_value(const char **pp, char *out, size_t n)
{
	const char *p = *pp;
	size_t len = 0;

	if (*p == '"') {
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			if (len + 1 >= n)
				return -EINVAL;
			out[len++] = *p++;
		}
		if (*p != '"')
			return -EINVAL;
		p++;
	} else {
		while (*p && *p != ',' && *p != ' ' && *p != '\t') {
			if (len + 1 >= n)
				return -EINVAL;
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	*pp = p;
	return 0;
}

int auth_challenge_parse(const char *header, struct auth_challenge *ret, struct cric_err *err)
{
	struct auth_challenge ch = { 0 };
	const char *p = skip_ws(header);

	if (strncasecmp(p, "bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\t' || !p[6]))
		ch.scheme = AUTH_SCHEME_BEARER, p += 6;
	else if (strncasecmp(p, "basic", 5) == 0 && (p[5] == ' ' || p[5] == '\t' || !p[5]))
		ch.scheme = AUTH_SCHEME_BASIC, p += 5;
	else
		return err_set(err, -EOPNOTSUPP, "unsupported authentication scheme");

	for (;;) {
		char key[32], value[AUTH_REALM_MAX + 1];
		size_t klen = 0;

		p = skip_ws(p);
		while (*p == ',')
			p = skip_ws(p + 1);
		if (!*p)
			break;
		while (*p && *p != '=' && *p != ' ' && *p != ',') {
			if (klen + 1 >= sizeof(key))
				return err_set(err, -EINVAL, "malformed authentication challenge");
			key[klen++] = (char)tolower((unsigned char)*p++);
		}
		key[klen] = '\0';
		p = skip_ws(p);
		if (*p != '=')
			return err_set(err, -EINVAL, "malformed authentication challenge");
		p = skip_ws(p + 1);
		if (parse_value(&p, value, sizeof(value)) < 0)
			return err_set(err, -EINVAL,
				       "malformed or too long authentication challenge");

		char *dst = NULL;
		size_t dstn = 0;
		if (strcmp(key, "realm") == 0)
			dst = ch.realm, dstn = sizeof(ch.realm);
		else if (strcmp(key, "service") == 0)
			dst = ch.service, dstn = sizeof(ch.service);
		else if (strcmp(key, "scope") == 0)
			dst = ch.scope, dstn = sizeof(ch.scope);
		if (dst) {
			if (strlen(value) >= dstn)
				return err_set(err, -EINVAL,
					       "authentication challenge: %s too long", key);
			strcpy(dst, value);
		}
	}
	if (ch.scheme == AUTH_SCHEME_BEARER && !ch.realm[0])
		return err_set(err, -EINVAL, "bearer challenge without realm");
	*ret = ch;
	return 0;
}

/* --- credentials --- */

/* A decoded secret, wiped before it is freed. */
struct secret {
	uint8_t *p;
	size_t n;
};

static void secret_wipe(struct secret *s)
{
	if (s->p) {
		explicit_bzero(s->p, s->n);
		free(s->p);
	}
}

int auth_creds_userpass(const struct registry_creds *creds, char user[static AUTH_USER_MAX + 1],
			char pass[static AUTH_PASSWORD_MAX + 1], struct cric_err *err)
{
	if (!creds)
		return -ENOENT;
	if (creds->username && creds->username[0]) {
		const char *pw = creds->password ? creds->password : "";
		if (strlen(creds->username) > AUTH_USER_MAX || strlen(pw) > AUTH_PASSWORD_MAX)
			return err_set(err, -EINVAL, "credentials too long");
		strcpy(user, creds->username);
		strcpy(pass, pw);
		return 0;
	}
	if (!creds->auth || !creds->auth[0])
		return -ENOENT;

	_cleanup_(secret_wipe) struct secret dec = { 0 };
	int r = base64_decode(creds->auth, AUTH_USER_MAX + AUTH_PASSWORD_MAX + 1, &dec.p, &dec.n);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return err_set(err, -EINVAL, "malformed \"auth\" credentials (not base64)");
	uint8_t *buf = dec.p;
	if (memchr(buf, '\0', dec.n))
		return err_set(err, -EINVAL, "malformed \"auth\" credentials");
	char *colon = strchr((char *)buf, ':');
	if (!colon || colon == (char *)buf)
		return err_set(err, -EINVAL, "malformed \"auth\" credentials (no \"user:\")");
	*colon = '\0';
	if (strlen((char *)buf) > AUTH_USER_MAX || strlen(colon + 1) > AUTH_PASSWORD_MAX)
		return err_set(err, -EINVAL, "credentials too long");
	strcpy(user, (char *)buf);
	strcpy(pass, colon + 1);
	return 0;
}

/* --- credentials file (docker's config.json "auths") --- */

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void auth_file_creds_done(struct auth_file_creds *f)
{
	free_secret(f->auth);
	free_secret(f->username);
	free_secret(f->password);
	free_secret(f->identity_token);
	free_secret(f->registry_token);
	memset(f, 0, sizeof(*f));
}

/* A copy of o's string k, NULL when absent, empty or not a string; *oom set
 * when it could not be copied. */
static char *dup_field(const json_t *o, const char *k, bool *oom)
{
	const char *s = json_string_value(json_object_get(o, k));
	if (!s || !*s)
		return NULL;
	char *c = strdup(s);
	*oom |= !c;
	return c;
}

int auth_creds_file_parse(const void *data, size_t len, const char *domain,
			  struct auth_file_creds *ret, struct cric_err *err)
{
	if (len > AUTH_CREDS_FILE_MAX)
		return err_set(err, -E2BIG, "credentials file over %d bytes", AUTH_CREDS_FILE_MAX);
	json_error_t jerr;
	_cleanup_json_ json_t *doc =
	    json_loadb(data ? data : "", data ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
	/* jerr.text may quote the document: only where it broke. */
	if (!doc)
		return err_set(err, -EINVAL,
			       "credentials file: malformed JSON at line %d column %d", jerr.line,
			       jerr.column);
	if (!json_is_object(doc))
		return err_set(err, -EINVAL, "credentials file: not a JSON object");

	const json_t *auths = json_object_get(doc, "auths");
	char k2[IMAGE_REF_NAME_MAX + 16];
	snprintf(k2, sizeof(k2), "https://%s", domain);
	const json_t *e = json_object_get(auths, domain);
	if (!e)
		e = json_object_get(auths, k2);
	if (!e && strcmp(domain, "docker.io") == 0)
		e = json_object_get(auths, "https://index.docker.io/v1/");
	if (!json_is_object(e))
		return -ENOENT;

	struct auth_file_creds f = { 0 };
	bool oom = false;
	f.auth = dup_field(e, "auth", &oom);
	f.username = dup_field(e, "username", &oom);
	f.password = dup_field(e, "password", &oom);
	f.identity_token = dup_field(e, "identitytoken", &oom);
	f.registry_token = dup_field(e, "registrytoken", &oom);
	if (oom || !(f.auth || f.username || f.identity_token || f.registry_token)) {
		auth_file_creds_done(&f);
		return oom ? -ENOMEM : -ENOENT;
	}
	f.c = (struct registry_creds){ .auth = f.auth,
				       .username = f.username,
				       .password = f.password,
				       .identity_token = f.identity_token,
				       .registry_token = f.registry_token };
	*ret = f;
	return 0;
}

/* --- token fetch --- */

struct body {
	struct membuf mem;
	bool too_big;
	bool started;        /* body bytes of the last response came */
	long status;         /* of the last status line */
	int64_t deadline_ns; /* CLOCK_MONOTONIC: the whole request's end */
	bool timed_out;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int body_header(void *userdata, const char *line, size_t len)
{
	struct body *b = userdata;
	/* A new response (the token server answers at once: no redirects are
	 * followed, but "100 Continue" may come before the answer). */
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		b->mem.len = 0;
		b->status = 0;
		const char *sp = memchr(line, ' ', len);
		if (sp && line + len - sp > 3 && isdigit((unsigned char)sp[1]) &&
		    isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
			b->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
	}
	return 0;
}

static int body_write(void *userdata, const char *ptr, size_t n)
{
	struct body *b = userdata;
	int r = membuf_append(&b->mem, ptr, n);
	b->too_big |= r == -E2BIG;
	return r < 0 ? -1 : 0;
}

static int body_tick(void *userdata)
{
	struct body *b = userdata;
	b->timed_out = mono_ns() >= b->deadline_ns;
	return b->timed_out;
}

static const struct fetch_ops body_ops = {
	.header = body_header,
	.body = body_write,
	.tick = body_tick,
};

int auth_token_parse(const void *data, size_t len, char **ret_token, long *ret_ttl,
		     struct cric_err *err)
{
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(data ? data : "", data ? len : 0, 0, &jerr);
	if (!json_is_object(root))
		return err_set(err, -EPROTO, "token response is not a JSON object");
	json_t *t = json_object_get(root, "token");
	if (!json_is_string(t) || !json_string_length(t))
		t = json_object_get(root, "access_token");
	if (!json_is_string(t) || !json_string_length(t))
		return err_set(err, -EPROTO, "token response without a token");
	const char *tok = json_string_value(t);
	if (json_string_length(t) > AUTH_TOKEN_MAX || strlen(tok) != json_string_length(t))
		return err_set(err, -EPROTO, "token response with a malformed token");
	for (const char *q = tok; *q; q++)
		if (*q <= ' ' || *q > '~')
			return err_set(err, -EPROTO, "token response with a malformed token");
	long ttl = AUTH_DEFAULT_TTL;
	json_t *e = json_object_get(root, "expires_in");
	if (json_is_integer(e) && json_integer_value(e) > 0 && json_integer_value(e) < 86400 * 366)
		ttl = (long)json_integer_value(e);
	char *copy = strdup(tok);
	if (!copy)
		return -ENOMEM;
	*ret_token = copy;
	*ret_ttl = ttl;
	return 0;
}

/* s with every byte but RFC 3986's unreserved ones as %XX (a query value). */
static char *url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(3 * strlen(s) + 1), *p = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return out;
}

/* The token request: a GET of the realm with service and scope, or, with
 * a refresh token, an OAuth2 POST of it (*post, a secret: wiped by the
 * caller). */
static int token_request(const struct auth_challenge *ch, const char *scope,
			 const char *refresh_token, char **url, char **post)
{
	_cleanup_free_ char *esc_service = url_escape(ch->service);
	_cleanup_free_ char *esc_scope = url_escape(scope);
	if (!esc_service || !esc_scope)
		return -ENOMEM;
	if (!refresh_token) {
		const char *sep = strchr(ch->realm, '?') ? "&" : "?";
		return asprintf(url, "%s%sservice=%s%s%s", ch->realm, sep, esc_service,
				scope[0] ? "&scope=" : "", scope[0] ? esc_scope : "") < 0
			   ? -ENOMEM
			   : 0;
	}
	_cleanup_free_ char *esc_tok = url_escape(refresh_token);
	if (!esc_tok)
		return -ENOMEM;
	int n = asprintf(post,
			 "grant_type=refresh_token&client_id=cric&service=%s&scope=%s"
			 "&refresh_token=%s",
			 esc_service, esc_scope, esc_tok);
	explicit_bzero(esc_tok, strlen(esc_tok));
	if (n < 0)
		return -ENOMEM;
	return (*url = strdup(ch->realm)) ? 0 : -ENOMEM;
}

/* The token server's answer to a performed request (r: fetch_perform()'s
 * result, done its report): the token and its lifetime. Frees (and wipes)
 * b's data. */
static int token_answer(int r, const struct fetch_done *done, const struct auth_challenge *ch,
			struct body *b, bool with_creds, char **ret_token, long *ret_ttl,
			struct cric_err *err)
{
	if (r == 0 && done->err < 0)
		r = err_set(err, done->err, "token server \"%s\": %s", ch->realm, done->msg);
	else if (r == -ECANCELED && b->too_big)
		r = err_set(err, -EPROTO, "token response over %d bytes", AUTH_TOKEN_MAX);
	else if (r == -ECANCELED && b->timed_out)
		r = err_set(err, -ETIMEDOUT, "token server \"%s\": no answer in time", ch->realm);
	else if (r < 0)
		r = err_prefix(err, r, "token server \"%s\"", ch->realm);
	if (r < 0) {
		free(b->mem.data);
		return r;
	}
	long status = b->status;
	if (status == 401 || status == 403) {
		free(b->mem.data);
		return err_set(err, -EACCES, "token server \"%s\" refused the %s (HTTP %ld)",
			       ch->realm, with_creds ? "credentials" : "anonymous request", status);
	}
	if (status != 200) {
		free(b->mem.data);
		return err_set(err, -EPROTO, "token server \"%s\": HTTP %ld", ch->realm, status);
	}
	r = auth_token_parse(b->mem.data, b->mem.len, ret_token, ret_ttl, err);
	if (b->mem.data)
		explicit_bzero(b->mem.data, b->mem.len);
	free(b->mem.data);
	if (r < 0)
		return err_prefix(err, r, "token server \"%s\"", ch->realm);
	return 0;
}

int auth_token_fetch(const struct auth_challenge *ch, const char *scope,
		     const struct registry_creds *creds, const struct auth_fetch_opts *opts,
		     char **ret_token, long *ret_ttl, struct cric_err *err)
{
	char user[AUTH_USER_MAX + 1] = "", pass[AUTH_PASSWORD_MAX + 1] = "";
	_cleanup_free_ char *url = NULL, *post = NULL;
	struct body b = { .mem = { .max = AUTH_TOKEN_MAX } };
	int r;

	if (ch->scheme != AUTH_SCHEME_BEARER)
		return err_set(err, -EINVAL, "not a bearer challenge");
	if (!scope)
		scope = ch->scope;
	if (strncmp(ch->realm, "https://", 8) != 0 &&
	    !(opts->allow_http && strncmp(ch->realm, "http://", 7) == 0))
		return err_set(err, -EPROTO, "token realm \"%s\" is not an https URL", ch->realm);

	r = auth_creds_userpass(creds, user, pass, err);
	if (r < 0 && r != -ENOENT)
		return r;
	bool have_basic = r == 0;
	bool refresh = creds && creds->identity_token && creds->identity_token[0];

	if ((r = token_request(ch, scope, refresh ? creds->identity_token : NULL, &url, &post)) < 0)
		return r;
	/* A token response is at most AUTH_TOKEN_MAX bytes, less than a pull's
	 * progress_min_bytes: the whole of it must come within the progress
	 * timeout (registry.h), a trickle cannot hold the pull. We keep that
	 * time ourselves; the helper is told it too. */
	struct fetch_req rq = {
		.url = url,
		.allow_http = opts->allow_http,
		.max_redirs = -1,
		.connect_timeout_sec = (unsigned)opts->connect_timeout_sec,
		.timeout_sec = (unsigned)opts->low_speed_time_sec,
		.user_agent = opts->user_agent,
		.ca_file = opts->ca_file,
		.post = refresh ? post : NULL,
		.user = !refresh && have_basic ? user : NULL,
		.pass = !refresh && have_basic ? pass : NULL,
	};
	b.deadline_ns = mono_ns() + (int64_t)opts->low_speed_time_sec * 1000000000LL;
	struct fetch_done done = { 0 };
	if (!opts->pool)
		return err_set(err, -EINVAL, "token fetch without a transport");
	r = fetch_perform(opts->pool, &rq, &body_ops, &b, &done, err);
	explicit_bzero(pass, sizeof(pass));
	if (post)
		explicit_bzero(post, strlen(post));
	return token_answer(r, &done, ch, &b, have_basic || refresh, ret_token, ret_ttl, err);
}

/* --- cache --- */

#define CACHE_KEY_BYTES 32

struct auth_cache_entry {
	char *registry;
	char *scope;
	char identity[AUTH_IDENTITY_LEN + 1];
	char *token;
	struct timespec expires; /* CLOCK_MONOTONIC */
	uint64_t stamp;          /* insertion order, to evict the oldest */
};

struct auth_cache {
	pthread_mutex_t lock;
	uint64_t next_stamp;
	unsigned char key[CACHE_KEY_BYTES]; /* of the identities' HMAC */
	struct auth_cache_entry e[AUTH_CACHE_ENTRIES];
};

static void entry_clear(struct auth_cache_entry *e)
{
	free(e->registry);
	if (e->token)
		explicit_bzero(e->token, strlen(e->token));
	free(e->token);
	free(e->scope);
	*e = (struct auth_cache_entry){ 0 };
}

struct auth_cache *auth_cache_new(void)
{
	struct auth_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	/* The kernel's, not OpenSSL's generator: imaged makes its cache at
	 * start, and RAND_bytes() would set up OpenSSL's providers and DRBG
	 * then (190 KiB of heap, heaptrack) for a daemon that may only ever
	 * pull over plain HTTP. */
	if (random_bytes(c->key, sizeof(c->key)) < 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

struct auth_cache *auth_cache_free(struct auth_cache *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < AUTH_CACHE_ENTRIES; i++)
		entry_clear(&c->e[i]);
	explicit_bzero(c->key, sizeof(c->key));
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

/* One field of the MAC's input: its length first, so that no two
 * credentials ("a:b" + "c" and "a" + "b:c") read the same. */
static void mac_field(struct hmac_sha256_ctx *ctx, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);
	uint8_t len[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
	hmac_sha256_update(ctx, sizeof(len), len);
	hmac_sha256_update(ctx, n, (const uint8_t *)s);
}

int auth_cache_identity(const struct auth_cache *c, const struct registry_creds *creds,
			char ret[static AUTH_IDENTITY_LEN + 1], struct cric_err *err)
{
	char user[AUTH_USER_MAX + 1] = "", pass[AUTH_PASSWORD_MAX + 1] = "";
	const char *kind;
	int r;

	/* What auth_token_fetch() presents: the refresh token wins. */
	if (creds && creds->identity_token && creds->identity_token[0]) {
		kind = "refresh-token";
	} else {
		r = auth_creds_userpass(creds, user, pass, err);
		if (r < 0 && r != -ENOENT)
			return r;
		kind = r == 0 ? "basic" : "anonymous";
	}

	struct hmac_sha256_ctx ctx;
	uint8_t md[SHA256_DIGEST_SIZE];
	size_t mdlen = sizeof(md);
	hmac_sha256_set_key(&ctx, sizeof(c->key), c->key);
	mac_field(&ctx, kind);
	if (strcmp(kind, "refresh-token") == 0)
		mac_field(&ctx, creds->identity_token);
	else if (strcmp(kind, "basic") == 0) {
		mac_field(&ctx, user);
		mac_field(&ctx, pass);
	}
	explicit_bzero(pass, sizeof(pass));
	hmac_sha256_digest(&ctx, sizeof(md), md);
	explicit_bzero(&ctx, sizeof(ctx));

	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < mdlen; i++) {
		ret[2 * i] = hex[md[i] >> 4];
		ret[2 * i + 1] = hex[md[i] & 15];
	}
	ret[AUTH_IDENTITY_LEN] = '\0';
	return 0;
}

static bool expired(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static struct auth_cache_entry *find(struct auth_cache *c, const char *registry, const char *scope,
				     const char *identity)
{
	for (size_t i = 0; i < AUTH_CACHE_ENTRIES; i++) {
		struct auth_cache_entry *e = &c->e[i];
		if (e->token && strcmp(e->registry, registry) == 0 &&
		    strcmp(e->scope, scope) == 0 && strcmp(e->identity, identity) == 0)
			return e;
	}
	return NULL;
}

int auth_cache_get(struct auth_cache *c, const char *registry, const char *scope,
		   const char *identity, char **ret)
{
	int r = -ENOENT;

	pthread_mutex_lock(&c->lock);
	struct auth_cache_entry *e = find(c, registry, scope, identity);
	if (e && expired(&e->expires))
		entry_clear(e);
	else if (e) {
		char *t = strdup(e->token);
		if (t) {
			*ret = t;
			r = 0;
		} else
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int auth_cache_put(struct auth_cache *c, const char *registry, const char *scope,
		   const char *identity, const char *token, long ttl)
{
	if (ttl <= 5)
		return 0;
	if (strlen(identity) != AUTH_IDENTITY_LEN)
		return -EINVAL;
	struct auth_cache_entry n = { 0 };
	n.registry = strdup(registry);
	n.scope = strdup(scope);
	n.token = strdup(token);
	if (!n.registry || !n.scope || !n.token) {
		entry_clear(&n);
		return -ENOMEM;
	}
	memcpy(n.identity, identity, sizeof(n.identity));
	clock_gettime(CLOCK_MONOTONIC, &n.expires);
	n.expires.tv_sec += ttl - 5; /* a margin for the request in flight */

	pthread_mutex_lock(&c->lock);
	struct auth_cache_entry *slot = find(c, registry, scope, identity);
	for (size_t i = 0; !slot && i < AUTH_CACHE_ENTRIES; i++)
		if (!c->e[i].token || expired(&c->e[i].expires))
			slot = &c->e[i];
	if (!slot) {
		slot = &c->e[0];
		for (size_t i = 1; i < AUTH_CACHE_ENTRIES; i++)
			if (c->e[i].stamp < slot->stamp)
				slot = &c->e[i];
	}
	entry_clear(slot);
	n.stamp = c->next_stamp++;
	*slot = n;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void auth_cache_drop(struct auth_cache *c, const char *registry, const char *scope,
		     const char *identity)
{
	pthread_mutex_lock(&c->lock);
	struct auth_cache_entry *e = find(c, registry, scope, identity);
	if (e)
		entry_clear(e);
	pthread_mutex_unlock(&c->lock);
}
