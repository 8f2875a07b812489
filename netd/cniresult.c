#include "cniresult.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "ipaddr.h"

int cni_output_load(const char *data, size_t len, json_t **ret, struct cric_err *err)
{
	json_error_t jerr;
	json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return err_set(err, -EBADMSG, "not JSON (line %d: %s)", jerr.line, jerr.text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return err_set(err, -EBADMSG, "not a JSON object");
	}
	*ret = doc;
	return 0;
}

static bool parse_version(const char *v, unsigned out[3])
{
	unsigned parts[3] = { 0, 0, 0 };
	int n = 0;
	const char *p = v;
	if (!v || !*v)
		return false;
	for (;;) {
		if (n == 3 || *p < '0' || *p > '9')
			return false;
		unsigned x = 0;
		int digits = 0;
		while (*p >= '0' && *p <= '9') {
			if (++digits > 4)
				return false;
			x = x * 10 + (unsigned)(*p++ - '0');
		}
		parts[n++] = x;
		if (*p == '\0')
			break;
		if (*p++ != '.')
			return false;
	}
	if (n < 2)
		return false;
	memcpy(out, parts, sizeof(parts));
	return true;
}

bool cni_version_valid(const char *v)
{
	unsigned x[3];
	return parse_version(v, x);
}

int cni_version_cmp(const char *a, const char *b)
{
	unsigned x[3] = { 0, 0, 0 }, y[3] = { 0, 0, 0 };
	parse_version(a, x);
	parse_version(b, y);
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

/* "addr/len" of the expected family (0: either) into ip. */
static int parse_cidr(const char *s, int want_family, struct cni_ip *ip)
{
	struct ip_cidr c;
	if (ip_parse_cidr(s, want_family, &c) < 0)
		return -EBADMSG;
	ip->family = c.family;
	ip->prefix_len = c.prefix_len;
	memcpy(ip->address, c.address, sizeof(ip->address));
	return 0;
}

static bool is_ip(const char *s, int family)
{
	return ip_is_valid(s, family);
}

static bool opt_string(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return !v || json_is_string(v);
}

/* The 0.3.0+ form: interfaces[], ips[], routes[], dns{}. */
static int parse_ips_form(const json_t *doc, struct cni_result *res, struct cric_err *err)
{
	const json_t *ifaces = json_object_get(doc, "interfaces");
	size_t n_ifaces = 0;
	bool sandbox[CNI_RESULT_MAX_IFACES] = { false };
	if (ifaces) {
		if (!json_is_array(ifaces))
			return err_set(err, -EBADMSG, "\"interfaces\" is not an array");
		n_ifaces = json_array_size(ifaces);
		if (n_ifaces > CNI_RESULT_MAX_IFACES)
			return err_set(err, -EBADMSG, "more than %d interfaces",
				       CNI_RESULT_MAX_IFACES);
		for (size_t i = 0; i < n_ifaces; i++) {
			const json_t *f = json_array_get(ifaces, i);
			const char *name = json_string_value(json_object_get(f, "name"));
			if (!json_is_object(f) || !name || !*name || strlen(name) > 255 ||
			    !opt_string(f, "mac") || !opt_string(f, "sandbox"))
				return err_set(err, -EBADMSG, "interfaces[%zu] is invalid", i);
			const char *sb = json_string_value(json_object_get(f, "sandbox"));
			sandbox[i] = sb && *sb;
		}
	}

	const json_t *ips = json_object_get(doc, "ips");
	if (ips && !json_is_array(ips))
		return err_set(err, -EBADMSG, "\"ips\" is not an array");
	if (json_array_size(ips) > CNI_RESULT_MAX_IPS)
		return err_set(err, -EBADMSG, "more than %d ips", CNI_RESULT_MAX_IPS);
	for (size_t i = 0; i < json_array_size(ips); i++) {
		const json_t *o = json_array_get(ips, i);
		struct cni_ip *ip = &res->ips[res->n_ips];
		if (!json_is_object(o) ||
		    parse_cidr(json_string_value(json_object_get(o, "address")), 0, ip) < 0)
			return err_set(err, -EBADMSG, "ips[%zu]: missing or invalid \"address\"",
				       i);
		const json_t *ver = json_object_get(o, "version");
		if (ver && !(json_is_string(ver) && strcmp(json_string_value(ver),
							   ip->family == AF_INET ? "4" : "6") == 0))
			return err_set(err, -EBADMSG,
				       "ips[%zu]: \"version\" does not match the address", i);
		const json_t *gw = json_object_get(o, "gateway");
		if (gw && !is_ip(json_string_value(gw), ip->family))
			return err_set(err, -EBADMSG, "ips[%zu]: invalid \"gateway\"", i);
		const json_t *idx = json_object_get(o, "interface");
		ip->interface = -1;
		ip->in_sandbox = true;
		if (idx) {
			json_int_t k = json_is_integer(idx) ? json_integer_value(idx) : -1;
			if (k < 0 || (size_t)k >= n_ifaces)
				return err_set(err, -EBADMSG, "ips[%zu]: invalid \"interface\"", i);
			ip->interface = (int)k;
			ip->in_sandbox = sandbox[k];
		}
		res->n_ips++;
	}

	const json_t *routes = json_object_get(doc, "routes");
	if (routes && !json_is_array(routes))
		return err_set(err, -EBADMSG, "\"routes\" is not an array");
	for (size_t i = 0; i < json_array_size(routes); i++) {
		const json_t *o = json_array_get(routes, i);
		struct cni_ip scratch;
		const json_t *gw = json_object_get(o, "gw");
		if (!json_is_object(o) ||
		    parse_cidr(json_string_value(json_object_get(o, "dst")), 0, &scratch) < 0 ||
		    (gw && !is_ip(json_string_value(gw), scratch.family)))
			return err_set(err, -EBADMSG, "routes[%zu] is invalid", i);
	}
	const json_t *dns = json_object_get(doc, "dns");
	if (dns && !json_is_object(dns))
		return err_set(err, -EBADMSG, "\"dns\" is not an object");
	return 0;
}

/* The 0.1.0/0.2.0 form: "ip4": {"ip": cidr, "gateway", "routes"}, "ip6". */
static int parse_old_form(const json_t *doc, struct cni_result *res, struct cric_err *err)
{
	static const struct {
		const char *key;
		int family;
	} fams[] = { { "ip4", AF_INET }, { "ip6", AF_INET6 } };
	for (size_t i = 0; i < ARRAY_SIZE(fams); i++) {
		const json_t *o = json_object_get(doc, fams[i].key);
		if (!o)
			continue;
		struct cni_ip *ip = &res->ips[res->n_ips];
		if (!json_is_object(o) ||
		    parse_cidr(json_string_value(json_object_get(o, "ip")), fams[i].family, ip) < 0)
			return err_set(err, -EBADMSG, "\"%s\": missing or invalid \"ip\"",
				       fams[i].key);
		const json_t *gw = json_object_get(o, "gateway");
		if (gw && !is_ip(json_string_value(gw), fams[i].family))
			return err_set(err, -EBADMSG, "\"%s\": invalid \"gateway\"", fams[i].key);
		ip->interface = -1;
		ip->in_sandbox = true;
		res->n_ips++;
	}
	return 0;
}

int cni_result_parse(const json_t *doc, const char *fallback_version, struct cni_result *res,
		     struct cric_err *err)
{
	if (!json_is_object(doc))
		return err_set(err, -EBADMSG, "result is not a JSON object");
	const json_t *v = json_object_get(doc, "cniVersion");
	const char *version = v ? json_string_value(v) : fallback_version;
	if (!version || strlen(version) >= CNI_VERSION_MAX || !cni_version_valid(version))
		return err_set(err, -EBADMSG, "result has an invalid \"cniVersion\"");

	_cleanup_free_ struct cni_result *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	snprintf(r->cni_version, sizeof(r->cni_version), "%s", version);
	int k = cni_version_cmp(version, "0.3.0") < 0 ? parse_old_form(doc, r, err)
						      : parse_ips_form(doc, r, err);
	if (k < 0)
		return k;
	*res = *r;
	return 0;
}

size_t cni_result_pod_ips(const struct cni_result *res, const struct cni_ip **out, size_t max)
{
	size_t n = 0;
	for (unsigned i = 0; i < res->n_ips && n < max; i++)
		if (res->ips[i].in_sandbox)
			out[n++] = &res->ips[i];
	return n;
}

/* The first non-blank line of s (at most len bytes of it, up to a NUL) into
 * dst: carriage returns dropped, other control characters replaced by '?',
 * trailing blanks trimmed, cut to fit. */
static void first_line(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t i = 0, n = 0;
	while (s && i < len && (s[i] == '\n' || s[i] == '\r' || s[i] == ' '))
		i++;
	for (; s && i < len && s[i] && s[i] != '\n' && n + 1 < dstlen; i++) {
		if (s[i] == '\r')
			continue;
		dst[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

static void describe_status(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "wait status 0x%x", (unsigned)status);
}

int cni_error_describe(const char *out, size_t out_len, const char *errout, int status,
		       struct cric_err *err)
{
	char st[64];
	describe_status(st, sizeof(st), status);

	_cleanup_json_ json_t *doc = NULL;
	if (out_len > 0 && cni_output_load(out, out_len, &doc, NULL) == 0) {
		const json_t *code = json_object_get(doc, "code");
		const char *msg = json_string_value(json_object_get(doc, "msg"));
		const char *details = json_string_value(json_object_get(doc, "details"));
		if (json_is_integer(code) && msg) {
			char m[512], d[400];
			first_line(m, sizeof(m), msg, SIZE_MAX);
			first_line(d, sizeof(d), details, SIZE_MAX);
			json_int_t c = json_integer_value(code);
			return err_set(err, c == 11 ? -EAGAIN : -EIO,
				       "%s%s%s (CNI error code %lld)", m, d[0] ? ": " : "", d,
				       (long long)c);
		}
	}
	/* Not a CNI error document: what it said on stderr, else stdout. */
	char line[512];
	first_line(line, sizeof(line), errout, SIZE_MAX);
	if (!line[0])
		first_line(line, sizeof(line), out, out_len);
	if (line[0])
		return err_set(err, -EIO, "%s (%s)", line, st);
	return err_set(err, -EIO, "failed with %s and no message", st);
}
