#include "ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int id_random_hex(char *buf, size_t bufsize, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	if (nbytes > sizeof(raw) || bufsize < 2 * nbytes + 1)
		return -EINVAL;
	size_t got = 0;
	while (got < nbytes) {
		ssize_t n = getrandom(raw + got, nbytes - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < nbytes; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	buf[2 * nbytes] = '\0';
	return 0;
}

bool id_is_valid(const char *id)
{
	if (!id || strlen(id) != 64)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

bool id_is_safe_token(const char *s, size_t max)
{
	if (!s || !*s || *s == '.')
		return false;
	size_t n = 0;
	for (const char *p = s; *p; p++, n++) {
		if (n >= max)
			return false;
		char c = *p;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}
