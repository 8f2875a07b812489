/* Registry authentication: credentials, WWW-Authenticate challenges, the
 * bearer-token flow of the distribution spec (docs/spec/auth/token.md) and a
 * cache of tokens per (registry, scope, identity of the credentials).
 *
 * Flow (driven by registry.c): a request goes out anonymously, or with a
 * cached token; a 401 carries "WWW-Authenticate: Bearer realm=...,
 * service=..., scope=..." (or "Basic realm=..."). For Bearer the token is
 * fetched from the realm with auth_token_fetch() (basic credentials when the
 * caller has a username/password, an OAuth2 refresh-token POST for an
 * identity token, anonymous otherwise) and cached, for those credentials
 * only, until it expires; for Basic
 * the request is retried with the username/password.
 *
 * Secrets (passwords, tokens) never appear in an error message. Nothing here
 * logs. Errors: a negative errno, err (optional) filled only on failure,
 * outputs written only on success.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "common/macro.h"

struct fetch_pool;

#define AUTH_USER_MAX      255
#define AUTH_PASSWORD_MAX  4095
#define AUTH_TOKEN_MAX     (16 * 1024) /* a token response body, and one token */
#define AUTH_REALM_MAX     1023
#define AUTH_FIELD_MAX     511
#define AUTH_DEFAULT_TTL   60  /* seconds, when the token server does not say */
#define AUTH_CACHE_ENTRIES 128 /* tokens cached per client */

/* What PullImageRequest.auth carries (CRI AuthConfig). All optional, owned by
 * the caller. username/password win over auth (base64 "user:password");
 * registry_token is sent as a bearer token as is; identity_token is an
 * OAuth2 refresh token exchanged at the realm for an access token. */
struct registry_creds {
	const char *username;
	const char *password;
	const char *auth;
	const char *identity_token;
	const char *registry_token;
};

enum auth_scheme {
	AUTH_SCHEME_BASIC = 1,
	AUTH_SCHEME_BEARER,
};

struct auth_challenge {
	enum auth_scheme scheme;
	char realm[AUTH_REALM_MAX + 1];
	char service[AUTH_FIELD_MAX + 1]; /* "" when absent */
	char scope[AUTH_FIELD_MAX + 1];   /* "" when absent */
};

/* Parse one WWW-Authenticate header value ("Bearer realm=\"...\",
 * service=\"...\",scope=\"...\"" or "Basic realm=\"...\""), scheme names
 * case-insensitively, quoted or token values. A Bearer challenge needs a realm.
 * -EOPNOTSUPP for other schemes, -EINVAL if malformed or too long. */
int auth_challenge_parse(const char *header, struct auth_challenge *ret, struct cric_err *err);

/* The username and password of creds: username/password if set, else the
 * decoded "auth" field. -ENOENT when creds hold neither; -EINVAL for a
 * malformed "auth" (the message never includes it). */
int auth_creds_userpass(const struct registry_creds *creds, char user[static AUTH_USER_MAX + 1],
			char pass[static AUTH_PASSWORD_MAX + 1], struct cric_err *err);

#define AUTH_CREDS_FILE_MAX (1024 * 1024)

/* A registry's credentials from a docker config.json; owns its strings, c
 * points into them. */
struct auth_file_creds {
	char *auth, *username, *password, *identity_token, *registry_token;
	struct registry_creds c;
};

/* The credentials for domain in a docker config.json document of len bytes
 * (no NUL needed, at most AUTH_CREDS_FILE_MAX): the "auths" entry keyed
 * "<domain>", else "https://<domain>", else for docker.io
 * "https://index.docker.io/v1/"; its "auth", "username", "password",
 * "identitytoken", "registrytoken" strings (others ignored). -ENOENT when
 * there is no entry or it holds no credential; -EINVAL (err gives the line
 * and column, never the content: it holds secrets) for a document that is
 * not a JSON object, or has duplicate keys; -E2BIG; -ENOMEM. ret is written
 * only on success; release it with auth_file_creds_done(). */
int auth_creds_file_parse(const void *data, size_t len, const char *domain,
			  struct auth_file_creds *ret, struct cric_err *err);
/* Free (and wipe) what f holds; f is zeroed. */
void auth_file_creds_done(struct auth_file_creds *f);

/* Parse a token server's response body of len bytes (no NUL needed): a JSON
 * object with "token" (or "access_token"), printable ASCII without spaces,
 * and optionally "expires_in" (seconds; ignored unless 1 ... 366 days).
 * ret_token malloc'd, ret_ttl AUTH_DEFAULT_TTL when not said. -EPROTO for
 * anything else (the message never quotes the body), -ENOMEM. */
int auth_token_parse(const void *data, size_t len, char **ret_token, long *ret_ttl,
		     struct cric_err *err);

struct auth_fetch_opts {
	long connect_timeout_sec;
	long low_speed_time_sec; /* the whole request, connect included */
	bool allow_http;         /* the realm may be plain http (insecure registries) */
	const char *ca_file;     /* NULL: the system's CAs */
	const char *user_agent;  /* may be NULL */
	struct fetch_pool *pool; /* the transport (fetch.h) */
};

/* Get a token from ch's realm (ch->scheme must be Bearer) for scope (NULL: the
 * challenge's). ret_token is malloc'd; ret_ttl in seconds (AUTH_DEFAULT_TTL
 * when the server does not say). Blocks on the network.
 *  -EACCES     the token server refused the credentials (401/403)
 *  -EPROTO     a response that is not a token
 *  -ETIMEDOUT, -ECONNREFUSED, -EIO: transport failures */
int auth_token_fetch(const struct auth_challenge *ch, const char *scope,
		     const struct registry_creds *creds, const struct auth_fetch_opts *opts,
		     char **ret_token, long *ret_ttl, struct cric_err *err);

/* Tokens per (registry, scope, identity). A token is the grant of the
 * credentials that earned it: a pull finds only tokens earned with its own
 * credentials (anonymous is an identity of its own), never another caller's.
 * Thread-safe; bounded (oldest entries go). */
struct auth_cache;
/* NULL on OOM (or when no random key can be had). */
struct auth_cache *auth_cache_new(void);
struct auth_cache *auth_cache_free(struct auth_cache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct auth_cache *, auth_cache_free)
#define _cleanup_auth_cache_ _cleanup_(auth_cache_freep)

#define AUTH_IDENTITY_LEN 64 /* hex of an HMAC-SHA256 */

/* The identity creds present to a token server, as auth_token_fetch() sends
 * them: the identity token if set, else the username and password (or the
 * decoded "auth"), else none (anonymous). In ret as the hex HMAC-SHA256 of
 * that credential under a random key of c, made by auth_cache_new() and never
 * leaving the process: never the secret, and useless outside it. The
 * registry_token is not an identity (it is sent as is, never cached).
 * -EINVAL for a malformed "auth" (err says so, never quoting it). */
int auth_cache_identity(const struct auth_cache *c, const struct registry_creds *creds,
			char ret[static AUTH_IDENTITY_LEN + 1], struct cric_err *err);

/* A malloc'd copy of the unexpired token of (registry, scope, identity) in
 * ret; -ENOENT if none. */
int auth_cache_get(struct auth_cache *c, const char *registry, const char *scope,
		   const char *identity, char **ret);
/* Store token for ttl seconds (a token expiring within 5 s is not stored). */
int auth_cache_put(struct auth_cache *c, const char *registry, const char *scope,
		   const char *identity, const char *token, long ttl);
/* Forget the token of (registry, scope, identity), e.g. after the registry
 * refused it. */
void auth_cache_drop(struct auth_cache *c, const char *registry, const char *scope,
		     const char *identity);
