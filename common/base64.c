#include "base64.h"

#include <errno.h>
#include <stdbool.h>
#include <nettle/base64.h>
#include <stdlib.h>
#include <string.h>

#define BASE64_MAX_INPUT (1u << 30)

char *base64_encode(const void *data, size_t len)
{
	if (len > BASE64_MAX_INPUT)
		return NULL;
	char *out = malloc(BASE64_ENCODE_RAW_LENGTH(len) + 1);
	if (!out)
		return NULL;
	base64_encode_raw(out, len, data);
	out[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return out;
}

int base64_decode(const char *s, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(s);
	if (n % 4 != 0 || n / 4 * 3 > max + 2 || n > BASE64_MAX_INPUT)
		return -EINVAL;
	/* The alphabet, then at most two '=' of padding (nettle would skip
	 * blanks). */
	size_t body = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
	if (n - body > 2 || strspn(s + body, "=") != n - body)
		return -EINVAL;
	uint8_t *out = malloc(BASE64_DECODE_LENGTH(n) + 1);
	if (!out)
		return -ENOMEM;
	struct base64_decode_ctx ctx;
	base64_decode_init(&ctx);
	size_t len = BASE64_DECODE_LENGTH(n);
	bool ok = base64_decode_update(&ctx, &len, out, n, s) && base64_decode_final(&ctx);
	if (!ok || len > max) {
		free(out);
		return -EINVAL;
	}
	out[len] = '\0';
	*ret = out;
	*ret_len = len;
	return 0;
}
