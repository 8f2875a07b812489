/* Fuzz the token server response parser (imaged/auth.c): auth_token_parse()
 * on arbitrary bytes. An accepted token must be non-empty printable ASCII
 * without spaces (it goes into an Authorization header) within
 * AUTH_TOKEN_MAX, with a sane lifetime; a refused response must leave the
 * outputs alone, say why, and never quote the body (it may hold secrets). */
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
	char *token = (char *)0x1;
	long ttl = -12345;
	struct cric_err err;
	memset(err.msg, 'x', sizeof(err.msg));
	int r = auth_token_parse(data, size, &token, &ttl, &err);
	if (r == 0) {
		size_t n = strlen(token);
		if (n == 0 || n > AUTH_TOKEN_MAX)
			abort();
		for (const char *q = token; *q; q++)
			if (*q <= ' ' || *q > '~')
				abort();
		if (ttl <= 0 || ttl >= 86400L * 366)
			abort();
		free(token);
	} else {
		if (r != -EPROTO && r != -ENOMEM)
			abort();
		if (token != (char *)0x1 || ttl != -12345 || !terminated(err.msg, sizeof(err.msg)))
			abort();
		if (strncmp(err.msg, "token response ", 15) != 0)
			abort(); /* a fixed message: nothing of the body */
	}
	return 0;
}
