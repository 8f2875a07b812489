#include "digest.h"

#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

void digest_sha256(const void *data, size_t len, char out[DIGEST_BUF])
{
	uint8_t md[SHA256_DIGEST_SIZE];
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, len, data);
	sha256_digest(&c, sizeof(md), md);
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

void digest_chain_id(const char *parent, const char *diff_id, char out[DIGEST_BUF])
{
	if (!parent || !*parent) {
		snprintf(out, DIGEST_BUF, "%s", diff_id);
		return;
	}
	char buf[2 * DIGEST_BUF];
	int n = snprintf(buf, sizeof(buf), "%s %s", parent, diff_id);
	digest_sha256(buf, n > 0 ? (size_t)n : 0, out);
}
