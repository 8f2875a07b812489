/* Fuzz the credentials file parser (imaged/auth.c): auth_creds_file_parse()
 * on arbitrary bytes (a docker config.json) for a few registries. Accepted
 * credentials must hold at least one credential, each string owned and
 * pointed to by the registry_creds; a refused document must leave the output
 * alone and never quote its content. What it yields is fed to the decoder
 * and the cache identity, as a pull does. */
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
	static const char *const domains[] = { "docker.io", "127.0.0.1:5000", "quay.io",
					       "[::1]:443" };
	static char user[AUTH_USER_MAX + 1], pass[AUTH_PASSWORD_MAX + 1];
	struct auth_cache *cache = auth_cache_new();
	if (!cache)
		return 0;
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		struct auth_file_creds f, untouched;
		struct cric_err err;
		memset(&f, 0x5a, sizeof(f));
		untouched = f;
		memset(err.msg, 'x', sizeof(err.msg));
		int r = auth_creds_file_parse(data, size, domains[i], &f, &err);
		if (r == 0) {
			if (!f.auth && !f.username && !f.identity_token && !f.registry_token)
				abort();
			if (f.c.auth != f.auth || f.c.username != f.username ||
			    f.c.password != f.password || f.c.identity_token != f.identity_token ||
			    f.c.registry_token != f.registry_token)
				abort();
			char *const fields[] = { f.auth, f.username, f.password, f.identity_token,
						 f.registry_token };
			for (size_t k = 0; k < 5; k++)
				if (fields[k] && !fields[k][0])
					abort(); /* empty strings are absent */
			(void)auth_creds_userpass(&f.c, user, pass, NULL);
			char id[AUTH_IDENTITY_LEN + 1];
			(void)auth_cache_identity(cache, &f.c, id, NULL);
			auth_file_creds_done(&f);
		} else {
			if (r != -ENOENT && r != -EINVAL && r != -E2BIG && r != -ENOMEM)
				abort();
			if (memcmp(&f, &untouched, sizeof(f)) != 0)
				abort();
			if (r == -EINVAL && (!terminated(err.msg, sizeof(err.msg)) ||
					     strncmp(err.msg, "credentials file: ", 18) != 0 ||
					     strchr(err.msg, '"') ||
					     strchr(err.msg, '\''))) /* never a quote of it */
				abort();
		}
	}
	auth_cache_free(cache);
	return 0;
}
