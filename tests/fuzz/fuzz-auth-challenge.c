/* Fuzz the registry's WWW-Authenticate challenge parser (imaged/auth.c):
 * auth_challenge_parse() on arbitrary bytes (up to the first NUL, as the
 * header arrives). An accepted challenge must have a known scheme, a realm
 * when it is Bearer, and terminated fields within their sizes; a refused one
 * must leave the output alone and say why, without control bytes. */
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
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	struct auth_challenge ch, untouched;
	struct cric_err err;
	memset(&ch, 0xa5, sizeof(ch));
	untouched = ch;
	memset(err.msg, 'x', sizeof(err.msg));
	int r = auth_challenge_parse(s, &ch, &err);
	if (r == 0) {
		if (ch.scheme != AUTH_SCHEME_BASIC && ch.scheme != AUTH_SCHEME_BEARER)
			abort();
		if (!terminated(ch.realm, sizeof(ch.realm)) ||
		    !terminated(ch.service, sizeof(ch.service)) ||
		    !terminated(ch.scope, sizeof(ch.scope)))
			abort();
		if (ch.scheme == AUTH_SCHEME_BEARER && !ch.realm[0])
			abort();
		/* What was parsed is in the header (values may be unescaped,
		 * so only their length is bounded by it). */
		if (strlen(ch.realm) > size || strlen(ch.service) > size || strlen(ch.scope) > size)
			abort();
	} else {
		if (r != -EINVAL && r != -EOPNOTSUPP)
			abort();
		if (memcmp(&ch, &untouched, sizeof(ch)) != 0 ||
		    !terminated(err.msg, sizeof(err.msg)))
			abort();
		for (const char *c = err.msg; *c; c++)
			if ((unsigned char)*c < 0x20)
				abort();
	}
	free(s);
	return 0;
}
