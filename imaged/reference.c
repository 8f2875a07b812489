#include "reference.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define streq(a, b) (strcmp((a), (b)) == 0)

#define DOCKER_DOMAIN        "docker.io"
#define DOCKER_LEGACY_DOMAIN "index.docker.io"
#define DOCKER_API_HOST      "registry-1.docker.io"
#define OFFICIAL_PREFIX      "library/"
#define DEFAULT_TAG          "latest"
/* Longest input looked at: a canonical string plus room for the longer
 * spellings normalisation shortens ("index.docker.io/"). */
#define INPUT_MAX (IMAGE_REF_STRING_MAX + 16)
#define QUOTE_MAX 200

/* A user-supplied string fit for a message: at most QUOTE_MAX bytes, bytes
 * outside printable ASCII (and '"' and '\') shown as '?', "..." if cut. */
static const char *quote(const char *s, size_t n, char buf[static QUOTE_MAX + 4])
{
	size_t i = 0;
	for (; i < n && i < QUOTE_MAX; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
	buf[i] = '\0';
	if (i < n)
		memcpy(buf + i, "...", 4);
	return buf;
}

static int invalid(struct cric_err *err, const char *s, const char *fmt, ...) _printf_(3, 4);
static int invalid(struct cric_err *err, const char *s, const char *fmt, ...)
{
	if (err) {
		char reason[512], q[QUOTE_MAX + 4];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(reason, sizeof(reason), fmt, ap);
		va_end(ap);
		err_set(err, -EINVAL, "invalid reference \"%s\": %s", quote(s, strlen(s), q),
			reason);
	}
	return -EINVAL;
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_hex(char c)
{
	return is_hex_lower(c) || (c >= 'A' && c <= 'F');
}

static bool has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

static bool is_hex64(const char *s, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_hex_lower(s[i]))
			return false;
	return true;
}

/* [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool path_component_ok(const char *c, size_t n)
{
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < n && is_lower_alnum(c[i]))
			i++;
		if (i == start)
			return false;
		if (i == n)
			return true;
		if (c[i] == '.') {
			i++;
		} else if (c[i] == '_') {
			i++;
			if (i < n && c[i] == '_')
				i++;
		} else if (c[i] == '-') {
			while (i < n && c[i] == '-')
				i++;
		} else {
			return false;
		}
	}
}

static bool path_ok(const char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++)
		if (i == n || p[i] == '/') {
			if (!path_component_ok(p + start, i - start))
				return false;
			start = i + 1;
		}
	return true;
}

/* host [":" port]; host is a DNS-style name (components of letters, digits
 * and inner '-', joined by '.'; IPv4 fits) or "[" hex digits and ':' "]". */
static bool domain_ok(const char *d, size_t n)
{
	size_t i = 0;
	if (n > 0 && d[0] == '[') {
		i = 1;
		while (i < n && (is_hex(d[i]) || d[i] == ':'))
			i++;
		if (i == 1 || i >= n || d[i] != ']')
			return false;
		i++;
	} else {
		for (;;) {
			size_t start = i;
			while (i < n && (is_alnum(d[i]) || d[i] == '-'))
				i++;
			if (i == start || d[start] == '-' || d[i - 1] == '-')
				return false;
			if (i < n && d[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	if (i == n)
		return true;
	if (d[i] != ':')
		return false;
	unsigned port = 0;
	size_t digits = 0;
	for (i++; i < n; i++, digits++) {
		if (d[i] < '0' || d[i] > '9' || digits >= 5)
			return false;
		port = port * 10 + (unsigned)(d[i] - '0');
	}
	return digits > 0 && port >= 1 && port <= 65535;
}

/* [\w][\w.-]{0,127} */
static bool tag_ok(const char *t, size_t n)
{
	if (n == 0 || n > IMAGE_REF_TAG_MAX || !is_word(t[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

/* Digest algorithms as the grammars allow them: components of letters and
 * digits joined by one of "+._-". */
static bool algorithm_ok(const char *a, size_t n)
{
	if (n == 0 || !is_alnum(a[0]) || !is_alnum(a[n - 1]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(a[i]) && (!strchr("+._-", a[i]) || !is_alnum(a[i - 1])))
			return false;
	return true;
}

int image_digest_validate(const char *s, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	if (!s)
		s = "";
	const char *colon = strchr(s, ':');
	if (!colon || !algorithm_ok(s, (size_t)(colon - s)))
		return err_set(err, -EINVAL, "invalid digest \"%s\": want <algorithm>:<hex>",
			       quote(s, strlen(s), q));
	if ((size_t)(colon - s) != 6 || strncmp(s, "sha256", 6) != 0)
		return err_set(err, -EINVAL,
			       "unsupported digest algorithm \"%s\" (only sha256 is supported)",
			       quote(s, (size_t)(colon - s), q));
	const char *hex = colon + 1;
	size_t n = strlen(hex);
	for (size_t i = 0; i < n; i++)
		if (!is_hex_lower(hex[i]))
			return err_set(
			    err, -EINVAL, "invalid sha256 digest \"%s\": %s at position %zu",
			    quote(s, strlen(s), q),
			    is_hex(hex[i]) ? "upper case hex digit" : "not a hex digit", i + 1);
	if (n != 64)
		return err_set(err, -EINVAL,
			       "invalid sha256 digest \"%s\": %zu hex digits instead of 64",
			       quote(s, strlen(s), q), n);
	return 0;
}

int image_id_parse(const char *s, char ret[static IMAGE_DIGEST_LEN + 1])
{
	if (!s)
		return -EINVAL;
	if (strncmp(s, "sha256:", 7) == 0 && is_hex64(s + 7, strlen(s + 7))) {
		memcpy(ret, s, IMAGE_DIGEST_LEN + 1);
		return 0;
	}
	if (is_hex64(s, strlen(s))) {
		snprintf(ret, IMAGE_DIGEST_LEN + 1, "sha256:%s", s);
		return 0;
	}
	return -EINVAL;
}

static bool is_domain_candidate(const char *first, size_t n)
{
	return (n == 9 && strncmp(first, "localhost", 9) == 0) || memchr(first, '.', n) ||
	       memchr(first, ':', n) || has_upper(first, n);
}

/* The registry that completes short names: docker.io when none (or the
 * legacy index.docker.io), and one that reads back as a registry. */
static int default_domain_check(const char **dd, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	if (!*dd || streq(*dd, DOCKER_LEGACY_DOMAIN))
		*dd = DOCKER_DOMAIN;
	size_t n = strlen(*dd);
	if (n >= IMAGE_REF_NAME_MAX || !domain_ok(*dd, n))
		return err_set(err, -EINVAL, "invalid default registry \"%s\"", quote(*dd, n, q));
	/* Else "<default>/x:tag" would not read back as the same name. */
	if (!is_domain_candidate(*dd, n) || has_upper(*dd, n))
		return err_set(
		    err, -EINVAL,
		    "invalid default registry \"%s\": a registry needs a '.' or a ':port' "
		    "(or is localhost)",
		    quote(*dd, n, q));
	return 0;
}

/* The repository path (lowercase components) and the tag, if any, of the
 * reference s. */
static int path_tag_check(const char *s, const char *path, size_t path_len, const char *tag,
			  size_t tag_len, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	if (has_upper(path, path_len))
		return invalid(err, s, "repository name \"%s\" must be lowercase",
			       quote(path, path_len, q));
	if (!path_ok(path, path_len))
		return invalid(err, s,
			       "invalid repository name \"%s\" (components of [a-z0-9] joined "
			       "by '.', '_', '__' or '-', separated by '/')",
			       quote(path, path_len, q));
	if (tag && !tag_ok(tag, tag_len))
		return invalid(err, s,
			       "invalid tag \"%s\" ([A-Za-z0-9_] then up to 127 of "
			       "[A-Za-z0-9_.-])",
			       quote(tag, tag_len, q));
	return 0;
}

/* A reference's parts, pointing into the string parsed. */
struct ref_parts {
	const char *domain, *path, *tag, *digest; /* tag, digest: NULL if none */
	size_t domain_len, path_len, tag_len;
};

/* The domain of name (the first name_len bytes of s): its first element
 * when that looks like one, else default_domain; the rest into *rest. */
static int split_domain(const char *s, size_t name_len, const char *default_domain,
			struct ref_parts *p, const char **rest, size_t *rest_len,
			struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	p->domain = default_domain;
	p->domain_len = strlen(default_domain);
	*rest = s;
	*rest_len = name_len;
	const char *slash = memchr(s, '/', name_len);
	if (!slash || !is_domain_candidate(s, (size_t)(slash - s)))
		return 0;
	p->domain = s;
	p->domain_len = (size_t)(slash - s);
	*rest = slash + 1;
	*rest_len = name_len - p->domain_len - 1;
	if (p->domain_len == strlen(DOCKER_LEGACY_DOMAIN) &&
	    strncmp(p->domain, DOCKER_LEGACY_DOMAIN, p->domain_len) == 0) {
		p->domain = DOCKER_DOMAIN;
		p->domain_len = strlen(DOCKER_DOMAIN);
	}
	if (!domain_ok(p->domain, p->domain_len))
		return invalid(err, s, "invalid registry domain \"%s\"",
			       quote(p->domain, p->domain_len, q));
	return 0;
}

/* The normalised reference of s from its parts. */
static int ref_assemble(const char *s, const struct ref_parts *p, struct image_ref *ret,
			struct cric_err *err)
{
	bool official = p->domain_len == strlen(DOCKER_DOMAIN) &&
			strncmp(p->domain, DOCKER_DOMAIN, p->domain_len) == 0 &&
			!memchr(p->path, '/', p->path_len);
	size_t full = p->domain_len + 1 + (official ? strlen(OFFICIAL_PREFIX) : 0) + p->path_len;
	if (full > IMAGE_REF_NAME_MAX)
		return invalid(err, s, "repository name longer than %d characters",
			       IMAGE_REF_NAME_MAX);

	struct image_ref out;
	memset(&out, 0, sizeof(out));
	snprintf(out.domain, sizeof(out.domain), "%.*s", (int)p->domain_len, p->domain);
	snprintf(out.path, sizeof(out.path), "%s%.*s", official ? OFFICIAL_PREFIX : "",
		 (int)p->path_len, p->path);
	if (p->tag)
		snprintf(out.tag, sizeof(out.tag), "%.*s", (int)p->tag_len, p->tag);
	else if (!p->digest)
		snprintf(out.tag, sizeof(out.tag), "%s", DEFAULT_TAG);
	if (p->digest)
		snprintf(out.digest, sizeof(out.digest), "%s", p->digest);
	snprintf(out.name, sizeof(out.name), "%s/%s", out.domain, out.path);
	snprintf(out.string, sizeof(out.string), "%s%s%s%s%s", out.name, out.tag[0] ? ":" : "",
		 out.tag, out.digest[0] ? "@" : "", out.digest);
	*ret = out;
	return 0;
}

int image_ref_parse(const char *s, const char *default_domain, struct image_ref *ret,
		    struct cric_err *err)
{
	if (!s || !*s)
		return invalid(err, "", "empty reference");
	size_t len = strlen(s);
	if (len > INPUT_MAX)
		return invalid(err, s, "longer than %d characters", INPUT_MAX);
	if (is_hex64(s, len))
		return invalid(err, s,
			       "cannot specify 64-byte hexadecimal strings (an image id is not a "
			       "reference)");

	int r = default_domain_check(&default_domain, err);
	if (r < 0)
		return r;

	/* name [":" tag] ["@" digest] */
	struct ref_parts p = { 0 };
	const char *at = strchr(s, '@');
	size_t name_len = at ? (size_t)(at - s) : len;
	p.digest = at ? at + 1 : NULL;
	if (p.digest) {
		struct cric_err derr;
		if (strchr(p.digest, '@'))
			return invalid(err, s, "more than one '@'");
		if (image_digest_validate(p.digest, &derr) < 0)
			return invalid(err, s, "%s", derr.msg);
	}
	if (name_len == 0)
		return invalid(err, s, "no repository name");

	const char *rest;
	size_t rest_len;
	if ((r = split_domain(s, name_len, default_domain, &p, &rest, &rest_len, err)) < 0)
		return r;

	/* The path holds no ':', so the first one starts the tag. */
	const char *colon = memchr(rest, ':', rest_len);
	p.path = rest;
	p.path_len = colon ? (size_t)(colon - rest) : rest_len;
	p.tag = colon ? colon + 1 : NULL;
	p.tag_len = colon ? rest_len - p.path_len - 1 : 0;
	if (p.path_len == 0)
		return invalid(err, s, "no repository name");
	if ((r = path_tag_check(s, p.path, p.path_len, p.tag, p.tag_len, err)) < 0)
		return r;
	return ref_assemble(s, &p, ret, err);
}

int image_ref_repo_tag(const struct image_ref *r, char buf[static IMAGE_REF_STRING_MAX + 1])
{
	if (!r->tag[0])
		return -ENOENT;
	snprintf(buf, IMAGE_REF_STRING_MAX + 1, "%s:%s", r->name, r->tag);
	return 0;
}

int image_ref_repo_digest(const struct image_ref *r, const char *digest,
			  char buf[static IMAGE_REF_STRING_MAX + 1], struct cric_err *err)
{
	int k = image_digest_validate(digest, err);
	if (k < 0)
		return k;
	snprintf(buf, IMAGE_REF_STRING_MAX + 1, "%s@%s", r->name, digest);
	return 0;
}

void image_ref_familiar(const struct image_ref *r, char buf[static IMAGE_REF_STRING_MAX + 1])
{
	const char *name = r->name;
	if (streq(r->domain, DOCKER_DOMAIN)) {
		const char *rest = r->path + strlen(OFFICIAL_PREFIX);
		const char *slash = strchr(r->path, '/');
		if (strncmp(r->path, OFFICIAL_PREFIX, strlen(OFFICIAL_PREFIX)) == 0 &&
		    !strchr(rest, '/'))
			name = rest;
		/* Docker drops the domain even when the path's first element
		 * then reads as one ("docker.io/a.b/c" -> "a.b/c"); keep it. */
		else if (!slash || !is_domain_candidate(r->path, (size_t)(slash - r->path)))
			name = r->path;
	}
	snprintf(buf, IMAGE_REF_STRING_MAX + 1, "%s%s%s%s%s", name, r->tag[0] ? ":" : "", r->tag,
		 r->digest[0] ? "@" : "", r->digest);
}

const char *registry_api_host(const char *domain)
{
	if (streq(domain, DOCKER_DOMAIN) || streq(domain, DOCKER_LEGACY_DOMAIN))
		return DOCKER_API_HOST;
	return domain;
}
