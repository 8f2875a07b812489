/* Fuzz the CRI credentials decoder (imaged/auth.c): auth_creds_userpass()
 * and auth_cache_identity() on credentials cut from arbitrary bytes. The
 * input is the "auth" field (base64 "user:password"); when it holds '\n' it
 * is split into username, password, auth and identity_token, in that order.
 * Decoded credentials must fit their limits with a non-empty user; a refused
 * "auth" must leave the outputs alone and never be quoted; the cache
 * identity must refuse exactly what the decoder refuses. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/auth.h"

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char user[AUTH_USER_MAX + 1], pass[AUTH_PASSWORD_MAX + 1];
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	struct registry_creds creds = { .auth = s };
	if (strchr(s, '\n')) {
		char *f[4] = { NULL, NULL, NULL, NULL }, *p = s;
		for (size_t i = 0; i < 4 && p; i++) {
			f[i] = p;
			p = strchr(p, '\n');
			if (p)
				*p++ = '\0';
		}
		creds = (struct registry_creds){
			.username = f[0], .password = f[1], .auth = f[2], .identity_token = f[3]
		};
	}

	struct cric_err err;
	memset(err.msg, 'x', sizeof(err.msg));
	memset(user, 'u', sizeof(user));
	memset(pass, 'p', sizeof(pass));
	int r = auth_creds_userpass(&creds, user, pass, &err);
	if (r == 0) {
		if (!terminated(user, sizeof(user)) || !terminated(pass, sizeof(pass)) || !user[0])
			abort();
		if (!(creds.username && creds.username[0]) && strchr(user, ':'))
			abort(); /* "auth" splits at the first ':' */
	} else if (r == -ENOENT || r == -EINVAL) {
		if (user[0] != 'u' || pass[0] != 'p')
			abort();
		if (r == -EINVAL) {
			if (!terminated(err.msg, sizeof(err.msg)))
				abort();
			/* The secret never appears in the message. (Short ones
			 * may be words of it: "enti" is in "credentials".) */
			if (creds.auth && strlen(creds.auth) >= 12 && strstr(err.msg, creds.auth))
				abort();
		}
	} else if (r != -ENOMEM) {
		abort();
	}

	struct auth_cache *c = auth_cache_new();
	if (c) {
		char id[AUTH_IDENTITY_LEN + 1];
		int k = auth_cache_identity(c, &creds, id, NULL);
		bool refresh = creds.identity_token && creds.identity_token[0];
		if (k == 0 && strlen(id) != AUTH_IDENTITY_LEN)
			abort();
		if (!refresh && r != -ENOMEM && k != -ENOMEM && (k == -EINVAL) != (r == -EINVAL))
			abort();
		auth_cache_free(c);
	}
	free(s);
	return 0;
}
