#include "base64.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define BASE64_MAX_INPUT (1u << 30)

char *base64_encode(const void *data, size_t len)
{
	if (len > BASE64_MAX_INPUT)
		return NULL;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

int base64_decode(const char *s, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(s);
	if (n % 4 != 0 || n / 4 * 3 > max + 2 || n > BASE64_MAX_INPUT)
		return -EINVAL;
	/* The alphabet, then at most two '=' of padding (OpenSSL would take
	 * blanks and padding anywhere). */
	size_t body = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
	if (n - body > 2 || strspn(s + body, "=") != n - body)
		return -EINVAL;
	uint8_t *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	int k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	size_t len = k < 0 ? 0 : (size_t)k;
	for (size_t i = n; k >= 0 && i > 0 && s[i - 1] == '=' && len > 0; i--)
		len--;
	if (k < 0 || len > max) {
		free(out);
		return -EINVAL;
	}
	out[len] = '\0';
	*ret = out;
	*ret_len = len;
	return 0;
}
