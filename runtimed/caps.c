/* A container's capability sets from the CRI request: see caps.h. */
#include "caps.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

#include "common/cleanup.h"

/* Longest name accepted ("CAP_CHECKPOINT_RESTORE" is 22). */
#define CAP_NAME_MAX 32

const char *const ctr_caps_default_names[] = {
	"CHOWN",  "DAC_OVERRIDE", "FSETID",           "FOWNER", "SETGID",
	"SETUID", "SETPCAP",      "NET_BIND_SERVICE", "KILL",
};
const size_t ctr_caps_n_default_names = ARRAY_SIZE(ctr_caps_default_names);

static bool name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static bool is_all(const char *name)
{
	return name && strcasecmp(name, "ALL") == 0;
}

/* A printable copy of a hostile name for an error message. */
static void printable(char *buf, size_t size, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 1 < size; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
	buf[i] = '\0';
}

int ctr_caps_from_name(const char *name, int *cap, struct cric_err *err)
{
	if (!name || !*name)
		return err_set(err, -EINVAL, "empty capability name");
	size_t len = strlen(name);
	char shown[CAP_NAME_MAX + 1];
	printable(shown, sizeof(shown), name);
	if (len > CAP_NAME_MAX)
		return err_set(err, -EINVAL, "unknown capability \"%s...\" (name too long)", shown);
	for (size_t i = 0; i < len; i++)
		if (!name_char(name[i]))
			return err_set(err, -EINVAL, "unknown capability \"%s\"", shown);

	/* libcap's lookup is lenient (any case, a number, a known prefix of
	 * the string): build the canonical "cap_xxx" and insist that it names
	 * the capability exactly. */
	const char *rest = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
	char canon[4 + CAP_NAME_MAX + 1] = "cap_";
	size_t n = 4;
	for (; *rest; rest++)
		canon[n++] = (*rest >= 'A' && *rest <= 'Z') ? (char)(*rest - 'A' + 'a') : *rest;
	canon[n] = '\0';

	cap_value_t v;
	if (n == 4 || cap_from_name(canon, &v) < 0 || v < 0 || v >= 64)
		return err_set(err, -EINVAL, "unknown capability \"%s\"", shown);
	char *back = cap_to_name(v);
	bool same = back && strcmp(back, canon) == 0;
	cap_free(back);
	if (!same)
		return err_set(err, -EINVAL, "unknown capability \"%s\"", shown);
	*cap = (int)v;
	return 0;
}

/* Parse one CRI list: a mask of the named capabilities and whether "ALL"
 * was among them (only where allow_all). */
static int parse_list(char *const *names, size_t n, const char *what, bool allow_all,
		      uint64_t *mask, bool *all, struct cric_err *err)
{
	if (n > CTR_CAPS_MAX_NAMES)
		return err_set(err, -EINVAL, "%s: %zu names, at most %d", what, n,
			       CTR_CAPS_MAX_NAMES);
	uint64_t m = 0;
	bool a = false;
	for (size_t i = 0; i < n; i++) {
		if (is_all(names[i])) {
			if (!allow_all)
				return err_set(err, -EINVAL, "%s: \"ALL\" is not accepted here",
					       what);
			a = true;
			continue;
		}
		int c = 0;
		int r = ctr_caps_from_name(names[i], &c, err);
		if (r < 0)
			return err_prefix(err, r, "%s", what);
		m |= UINT64_C(1) << c;
	}
	*mask = m;
	if (all)
		*all = a;
	return 0;
}

int ctr_caps_mask_from_names(const char *const *names, size_t n, const char *what, uint64_t *mask,
			     struct cric_err *err)
{
	return parse_list((char *const *)names, n, what, false, mask, NULL, err);
}

uint64_t ctr_caps_host_grantable(void)
{
	uint64_t m = 0;
	int max = cap_max_bits();
	for (int c = 0; c < max && c < 64; c++) {
		if (cap_get_bound(c) != 1)
			continue;
		/* A capability newer than libcap has no name runc would take. */
		char *name = cap_to_name(c);
		bool named = name && strncmp(name, "cap_", 4) == 0;
		cap_free(name);
		if (named)
			m |= UINT64_C(1) << c;
	}
	return m;
}

static int lowest_bit(uint64_t m)
{
	return __builtin_ctzll(m);
}

int ctr_caps_resolve(const struct ctr_caps_input *in, struct ctr_caps *out, struct cric_err *err)
{
	uint64_t add = 0, drop = 0, amb = 0;
	bool add_all = false, drop_all = false;
	const Runtime__V1__Capability *q = in->req;
	if (q) {
		int r = parse_list(q->add_capabilities, q->n_add_capabilities, "add_capabilities",
				   true, &add, &add_all, err);
		if (r < 0)
			return r;
		r = parse_list(q->drop_capabilities, q->n_drop_capabilities, "drop_capabilities",
			       true, &drop, &drop_all, err);
		if (r < 0)
			return r;
		r = parse_list(q->add_ambient_capabilities, q->n_add_ambient_capabilities,
			       "add_ambient_capabilities", false, &amb, NULL, err);
		if (r < 0)
			return r;
	}

	uint64_t set;
	if (in->privileged) {
		set = in->grantable;
		amb = 0;
	} else {
		set = (add_all || drop_all) ? 0 : in->defaults;
		if (add_all)
			set = in->grantable;
		if (drop_all)
			set = 0;
		set |= add;
		set &= ~drop;
		amb &= ~drop;
		set |= amb;
		uint64_t missing = set & ~in->grantable;
		if (missing) {
			char *name = cap_to_name(lowest_bit(missing));
			for (char *p = name; p && *p; p++)
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
			int r = err_set(err, -ENOPKG,
					"capability %s is not available on this host (not in the "
					"runtime's bounding set)",
					name ? name : "?");
			cap_free(name);
			return r;
		}
	}

	*out = (struct ctr_caps){
		.bounding = set,
		.effective = in->root ? set : amb,
		.permitted = in->root ? set : amb,
		.inheritable = amb,
		.ambient = amb,
	};
	return 0;
}

json_t *ctr_caps_names_json(uint64_t mask)
{
	_cleanup_json_ json_t *a = json_array();
	if (!a)
		return NULL;
	for (int c = 0; c < 64; c++) {
		if (!(mask & (UINT64_C(1) << c)))
			continue;
		char *name = cap_to_name(c);
		if (!name)
			return NULL;
		char up[4 + CAP_NAME_MAX + 1];
		size_t i = 0;
		for (; name[i] && i + 1 < sizeof(up); i++)
			up[i] = (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 'a' + 'A')
								   : name[i];
		up[i] = '\0';
		cap_free(name);
		if (json_array_append_new(a, json_string(up)) < 0)
			return NULL;
	}
	return TAKE_PTR(a);
}

json_t *ctr_caps_to_oci(const struct ctr_caps *c)
{
	const struct {
		const char *key;
		uint64_t mask;
	} sets[] = {
		{ "bounding", c->bounding },   { "effective", c->effective },
		{ "permitted", c->permitted }, { "inheritable", c->inheritable },
		{ "ambient", c->ambient },
	};
	_cleanup_json_ json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		json_t *a = ctr_caps_names_json(sets[i].mask);
		if (!a || json_object_set_new(o, sets[i].key, a) < 0)
			return NULL;
	}
	return TAKE_PTR(o);
}
