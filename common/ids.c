#include "ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int random_bytes(void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom((unsigned char *)buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

int id_random_hex(char *buf, size_t bufsize, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	if (nbytes > sizeof(raw) || bufsize < 2 * nbytes + 1)
		return -EINVAL;
	int r = random_bytes(raw, nbytes);
	if (r < 0)
		return r;
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

bool token_chars_ok(const char *s, size_t n, const char *extra)
{
	if (!s || n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

bool id_is_safe_token(const char *s, size_t max)
{
	if (!s)
		return false;
	size_t n = strnlen(s, max + 1);
	return n <= max && token_chars_ok(s, n, "_.-") && s[0] != '.';
}

bool k8s_name_is_valid(const char *s, size_t max)
{
	if (!s)
		return false;
	size_t n = strnlen(s, max + 1);
	return n <= max && token_chars_ok(s, n, "._-") && token_chars_ok(s, 1, "");
}

int pod_metadata_validate(const char *name, const char *namespace_, const char *uid,
			  const char *prefix, struct cric_err *err)
{
	const struct {
		const char *field, *value;
		size_t max;
	} f[] = {
		{ "name", name, POD_NAME_MAX },
		{ "namespace", namespace_, POD_NAMESPACE_MAX },
		{ "uid", uid, POD_UID_MAX },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!k8s_name_is_valid(f[i].value, f[i].max))
			return err_set(err, -EINVAL,
				       "%s%s \"%.300s\": must be 1 to %zu of [A-Za-z0-9._-], "
				       "starting with a letter or digit",
				       prefix, f[i].field, f[i].value ? f[i].value : "", f[i].max);
	return 0;
}

int id_match_begin(struct id_match *m, const char *what, const char *id, struct cric_err *err)
{
	*m = (struct id_match){ .what = what, .want = id };
	if (!id || !*id)
		return err_set(err, -EINVAL, "%s id is empty", what);
	if (!id_is_safe_token(id, 64))
		return err_set(err, -EINVAL, "invalid %s id \"%.80s\"", what, id);
	m->len = strlen(id);
	return 0;
}

bool id_match_step(struct id_match *m, const char *id, size_t i)
{
	if (strncmp(id, m->want, m->len) != 0)
		return false;
	m->index = i;
	if (m->len == 64) {
		m->matches = 1;
		return true;
	}
	m->matches++;
	return false;
}

int id_match_end(const struct id_match *m, struct cric_err *err)
{
	if (m->matches == 0)
		return err_set(err, -ENOENT, "%s \"%s\" not found", m->what, m->want);
	if (m->matches > 1)
		return err_set(err, -EINVAL, "%s id prefix \"%s\" is ambiguous", m->what, m->want);
	return 0;
}
