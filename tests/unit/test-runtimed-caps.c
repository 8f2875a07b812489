/* runtimed/caps.h: the CRI capability lists resolved into the OCI sets:
 * names, ALL, defaults, privileged, the host's grantable set, non-root
 * users, ambient capabilities, refusals naming the list and the name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/macro.h"
#include "runtimed/caps.h"

#define BIT(c) (UINT64_C(1) << (c))
/* Capability numbers used below (linux/capability.h). */
enum {
	CHOWN = 0,
	DAC_OVERRIDE = 1,
	FOWNER = 3,
	FSETID = 4,
	KILL = 5,
	SETGID = 6,
	SETUID = 7,
	SETPCAP = 8,
	NET_BIND_SERVICE = 10,
	NET_ADMIN = 12,
	NET_RAW = 13,
	SYS_ADMIN = 21,
	SYS_RESOURCE = 24,
	CHECKPOINT_RESTORE = 40,
};

#define DEFAULTS                                                                                   \
	(BIT(CHOWN) | BIT(DAC_OVERRIDE) | BIT(FSETID) | BIT(FOWNER) | BIT(SETGID) | BIT(SETUID) |  \
	 BIT(SETPCAP) | BIT(NET_BIND_SERVICE) | BIT(KILL))
/* A host like this one: 41 capabilities, CAP_SYS_RESOURCE not grantable. */
#define GRANTABLE ((BIT(41) - 1) & ~BIT(SYS_RESOURCE))

struct lists {
	Runtime__V1__Capability c;
	char *add[8], *drop[8], *amb[8];
};

/* Fill from NULL-terminated argument groups: add..., NULL, drop..., NULL,
 * ambient..., NULL. */
static const Runtime__V1__Capability *mk(struct lists *l, ...)
{
	memset(l, 0, sizeof(*l));
	runtime__v1__capability__init(&l->c);
	va_list ap;
	va_start(ap, l);
	char **dst[3] = { l->add, l->drop, l->amb };
	size_t *n[3] = { &l->c.n_add_capabilities, &l->c.n_drop_capabilities,
			 &l->c.n_add_ambient_capabilities };
	for (int k = 0; k < 3; k++) {
		const char *s;
		while ((s = va_arg(ap, const char *)))
			dst[k][(*n[k])++] = (char *)s;
	}
	va_end(ap);
	l->c.add_capabilities = l->add;
	l->c.drop_capabilities = l->drop;
	l->c.add_ambient_capabilities = l->amb;
	return &l->c;
}

static int resolve(const Runtime__V1__Capability *req, bool privileged, bool root,
		   struct ctr_caps *out, struct cric_err *err)
{
	const struct ctr_caps_input in = {
		.req = req,
		.privileged = privileged,
		.root = root,
		.defaults = DEFAULTS,
		.grantable = GRANTABLE,
	};
	memset(err, 0, sizeof(*err));
	return ctr_caps_resolve(&in, out, err);
}

/* Resolve as root and return the bounding set (all three equal for root). */
static uint64_t root_set(const Runtime__V1__Capability *req)
{
	struct ctr_caps c;
	struct cric_err err;
	int r = resolve(req, false, true, &c, &err);
	if (r < 0)
		print_message("unexpected refusal: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_true(c.effective == c.bounding && c.permitted == c.bounding);
	assert_true(c.inheritable == 0 && c.ambient == 0);
	return c.bounding;
}

static void refused(const Runtime__V1__Capability *req, bool privileged, int code,
		    const char *needle1, const char *needle2)
{
	struct ctr_caps c = { 0 }, zero = { 0 };
	struct cric_err err;
	assert_int_equal(resolve(req, privileged, true, &c, &err), code);
	assert_memory_equal(&c, &zero, sizeof(c)); /* outputs only on success */
	if (!strstr(err.msg, needle1) || (needle2 && !strstr(err.msg, needle2))) {
		print_message("message \"%s\" lacks \"%s\"/\"%s\"\n", err.msg, needle1,
			      needle2 ? needle2 : "");
		fail();
	}
}

static void test_names(void **state)
{
	(void)state;
	static const char *const net_admin[] = { "NET_ADMIN", "CAP_NET_ADMIN", "net_admin",
						 "cap_Net_Admin" };
	for (size_t i = 0; i < ARRAY_SIZE(net_admin); i++) {
		int c = -1;
		assert_int_equal(ctr_caps_from_name(net_admin[i], &c, NULL), 0);
		assert_int_equal(c, NET_ADMIN);
	}
	int c = -1;
	assert_int_equal(ctr_caps_from_name("CHECKPOINT_RESTORE", &c, NULL), 0);
	assert_int_equal(c, CHECKPOINT_RESTORE);

	/* libcap's lookup alone would take several of these (numbers, a known
	 * prefix followed by junk). */
	static const char *const bad[] = {
		"",
		"FOO",
		"CAP_",
		"12",
		"CAP_12",
		"CHOWN;rm",
		"CHOWN ",
		" CHOWN",
		"CAP_CAP_CHOWN",
		"ALL",
		"CAP_ALL",
		"NET-ADMIN",
		"NET_ADMIN\n",
		"CHOWNX",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct cric_err err = { { 0 } };
		c = -7;
		assert_int_equal(ctr_caps_from_name(bad[i], &c, &err), -EINVAL);
		assert_int_equal(c, -7);
		assert_non_null(strstr(err.msg, "capability"));
	}
	struct cric_err err = { { 0 } };
	assert_int_equal(ctr_caps_from_name(NULL, &c, &err), -EINVAL);
	/* A hostile name is shown, but not its control characters or quotes. */
	assert_int_equal(ctr_caps_from_name("X\"\x1b[2J", &c, &err), -EINVAL);
	assert_null(strchr(err.msg, '\x1b'));
	assert_non_null(strstr(err.msg, "\"X??[2J\""));
}

static void test_defaults(void **state)
{
	(void)state;
	struct lists l;
	/* No message, an empty message, empty lists: the default set. */
	assert_true(root_set(NULL) == DEFAULTS);
	assert_true(root_set(mk(&l, NULL, NULL, NULL)) == DEFAULTS);

	/* The configured list is what we are given, parsed once. */
	uint64_t m = 0;
	assert_int_equal(ctr_caps_mask_from_names(ctr_caps_default_names, ctr_caps_n_default_names,
						  "default_capabilities", &m, NULL),
			 0);
	assert_true(m == DEFAULTS);
	assert_int_equal(ctr_caps_n_default_names, 9);
	const char *const cfg[] = { "CAP_NET_RAW", "chown" };
	assert_int_equal(ctr_caps_mask_from_names(cfg, 2, "default_capabilities", &m, NULL), 0);
	assert_true(m == (BIT(NET_RAW) | BIT(CHOWN)));
	struct cric_err err = { { 0 } };
	const char *const bad[] = { "CHOWN", "ALL" };
	assert_int_equal(ctr_caps_mask_from_names(bad, 2, "default_capabilities", &m, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "default_capabilities"));
	const char *const bad2[] = { "CHOWN", "SYS_FOO" };
	assert_int_equal(ctr_caps_mask_from_names(bad2, 2, "default_capabilities", &m, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "default_capabilities: unknown capability \"SYS_FOO\""));

	/* Another configured default set is used as given. */
	const struct ctr_caps_input in = {
		.req = NULL, .root = true, .defaults = BIT(NET_RAW), .grantable = GRANTABLE
	};
	struct ctr_caps c;
	assert_int_equal(ctr_caps_resolve(&in, &c, NULL), 0);
	assert_true(c.bounding == BIT(NET_RAW) && c.effective == BIT(NET_RAW));
}

static void test_add_drop(void **state)
{
	(void)state;
	struct lists l;
	assert_true(root_set(mk(&l, "NET_ADMIN", NULL, NULL, NULL)) == (DEFAULTS | BIT(NET_ADMIN)));
	assert_true(root_set(mk(&l, "CAP_NET_ADMIN", NULL, NULL, NULL)) ==
		    (DEFAULTS | BIT(NET_ADMIN)));
	/* Dropping what is not there changes nothing. */
	assert_true(root_set(mk(&l, NULL, "NET_RAW", NULL, NULL)) == DEFAULTS);
	assert_true(root_set(mk(&l, NULL, "KILL", "CAP_CHOWN", NULL, NULL)) ==
		    (DEFAULTS & ~BIT(KILL) & ~BIT(CHOWN)));
	/* Both added and dropped: dropped (drops come last). */
	assert_true(root_set(mk(&l, "NET_ADMIN", NULL, "NET_ADMIN", NULL, NULL)) == DEFAULTS);
	assert_true(root_set(mk(&l, "KILL", NULL, "cap_kill", NULL, NULL)) ==
		    (DEFAULTS & ~BIT(KILL)));
	/* Repeats are harmless. */
	assert_true(root_set(mk(&l, "NET_ADMIN", "NET_ADMIN", NULL, NULL, NULL)) ==
		    (DEFAULTS | BIT(NET_ADMIN)));
}

static void test_all(void **state)
{
	(void)state;
	struct lists l;
	/* add ALL: every grantable capability (never one the host lacks). */
	assert_true(root_set(mk(&l, "ALL", NULL, NULL, NULL)) == GRANTABLE);
	assert_true(root_set(mk(&l, "all", NULL, NULL, NULL)) == GRANTABLE);
	assert_true(root_set(mk(&l, "ALL", NULL, "NET_RAW", NULL, NULL)) ==
		    (GRANTABLE & ~BIT(NET_RAW)));
	/* drop ALL: nothing, defaults included; named adds come back. */
	assert_true(root_set(mk(&l, NULL, "ALL", NULL, NULL)) == 0);
	assert_true(root_set(mk(&l, "NET_BIND_SERVICE", NULL, "ALL", NULL, NULL)) ==
		    BIT(NET_BIND_SERVICE));
	assert_true(
	    root_set(mk(&l, "NET_BIND_SERVICE", NULL, "ALL", "NET_BIND_SERVICE", NULL, NULL)) == 0);
	/* Both ALL: drop ALL wins, named adds still apply. */
	assert_true(root_set(mk(&l, "ALL", NULL, "ALL", NULL, NULL)) == 0);
	assert_true(root_set(mk(&l, "ALL", "SYS_ADMIN", NULL, "ALL", NULL, NULL)) ==
		    BIT(SYS_ADMIN));
	/* ALL anywhere in the list, in any case. */
	assert_true(root_set(mk(&l, "NET_ADMIN", "aLl", NULL, NULL, NULL)) == GRANTABLE);
}

static void test_refusals(void **state)
{
	(void)state;
	struct lists l;
	refused(mk(&l, "NET_ADMIN", "BOGUS", NULL, NULL, NULL), false, -EINVAL, "add_capabilities",
		"\"BOGUS\"");
	refused(mk(&l, NULL, "CAP_BOGUS", NULL, NULL), false, -EINVAL, "drop_capabilities",
		"\"CAP_BOGUS\"");
	refused(mk(&l, NULL, NULL, "NET_BIND_SERVICE", "WHAT", NULL), false, -EINVAL,
		"add_ambient_capabilities", "\"WHAT\"");
	refused(mk(&l, NULL, NULL, "ALL", NULL), false, -EINVAL, "add_ambient_capabilities", "ALL");
	refused(mk(&l, "", NULL, NULL, NULL), false, -EINVAL, "add_capabilities", "empty");
	/* Privileged ignores the lists but still refuses bad input. */
	refused(mk(&l, "BOGUS", NULL, NULL, NULL), true, -EINVAL, "add_capabilities", "BOGUS");
	/* What the host cannot grant is refused by name, not left to runc. */
	refused(mk(&l, "SYS_RESOURCE", NULL, NULL, NULL), false, -ENOPKG, "CAP_SYS_RESOURCE",
		"not available on this host");
	refused(mk(&l, NULL, "ALL", NULL, "SYS_RESOURCE", NULL), false, -ENOPKG, "CAP_SYS_RESOURCE",
		NULL);
	/* ... unless it is dropped again. */
	assert_true(root_set(mk(&l, "SYS_RESOURCE", NULL, "SYS_RESOURCE", NULL, NULL)) == DEFAULTS);

	/* A list longer than any real one. */
	static char *many[CTR_CAPS_MAX_NAMES + 1];
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = "CHOWN";
	Runtime__V1__Capability c;
	runtime__v1__capability__init(&c);
	c.add_capabilities = many;
	c.n_add_capabilities = CTR_CAPS_MAX_NAMES;
	assert_true(root_set(&c) == DEFAULTS);
	c.n_add_capabilities = CTR_CAPS_MAX_NAMES + 1;
	refused(&c, false, -EINVAL, "add_capabilities", "at most");
}

static void test_privileged(void **state)
{
	(void)state;
	struct lists l;
	struct ctr_caps c;
	struct cric_err err;
	assert_int_equal(resolve(NULL, true, true, &c, &err), 0);
	assert_true(c.bounding == GRANTABLE && c.effective == GRANTABLE &&
		    c.permitted == GRANTABLE && c.inheritable == 0 && c.ambient == 0);
	/* drop lists do not narrow a privileged container. */
	assert_int_equal(resolve(mk(&l, NULL, "ALL", NULL, NULL), true, true, &c, &err), 0);
	assert_true(c.bounding == GRANTABLE && c.effective == GRANTABLE);
	/* Privileged but not root: the kernel would clear them at exec. */
	assert_int_equal(resolve(NULL, true, false, &c, &err), 0);
	assert_true(c.bounding == GRANTABLE && c.effective == 0 && c.permitted == 0);
}

static void test_non_root(void **state)
{
	(void)state;
	struct lists l;
	struct ctr_caps c;
	struct cric_err err;
	/* The bounding set is the container's; nothing effective. */
	assert_int_equal(resolve(mk(&l, "NET_ADMIN", NULL, NULL, NULL), false, false, &c, &err), 0);
	assert_true(c.bounding == (DEFAULTS | BIT(NET_ADMIN)));
	assert_true(c.effective == 0 && c.permitted == 0 && c.inheritable == 0 && c.ambient == 0);
	/* Asked for: ambient, hence permitted, effective and inheritable. */
	assert_int_equal(
	    resolve(mk(&l, NULL, "ALL", NULL, "NET_BIND_SERVICE", NULL), false, false, &c, &err),
	    0);
	const uint64_t nbs = BIT(NET_BIND_SERVICE);
	assert_true(c.bounding == nbs && c.effective == nbs && c.permitted == nbs &&
		    c.inheritable == nbs && c.ambient == nbs);
	/* Root with an ambient one: root keeps its set, ambient is extra. */
	assert_int_equal(resolve(mk(&l, NULL, NULL, "NET_ADMIN", NULL), false, true, &c, &err), 0);
	assert_true(c.bounding == (DEFAULTS | BIT(NET_ADMIN)) && c.effective == c.bounding &&
		    c.ambient == BIT(NET_ADMIN) && c.inheritable == BIT(NET_ADMIN));
	/* Dropped wins over ambient too. */
	assert_int_equal(
	    resolve(mk(&l, NULL, "NET_ADMIN", NULL, "NET_ADMIN", NULL), false, false, &c, &err), 0);
	assert_true(c.bounding == DEFAULTS && c.ambient == 0 && c.effective == 0);
}

/* The kernel's own view: CapBnd of /proc/self/status. */
static uint64_t proc_capbnd(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	assert_non_null(f);
	char line[256];
	unsigned long long v = 0;
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapBnd: %llx", &v) == 1)
			found = true;
	fclose(f);
	assert_true(found);
	return v;
}

static void test_host_grantable(void **state)
{
	(void)state;
	uint64_t g = ctr_caps_host_grantable();
	/* Exactly the bounding set, as far as libcap has names (CAP_LAST_CAP
	 * of this libcap is 40). */
	assert_true(g == (proc_capbnd() & (BIT(41) - 1)));
	assert_true(g & BIT(CHOWN));
	/* On this host CAP_SYS_RESOURCE is missing: add ALL must not ask for it. */
	if (!(proc_capbnd() & BIT(SYS_RESOURCE))) {
		struct lists l;
		const struct ctr_caps_input in = { .req = mk(&l, "ALL", NULL, NULL, NULL),
						   .root = true,
						   .defaults = DEFAULTS,
						   .grantable = g };
		struct ctr_caps c;
		assert_int_equal(ctr_caps_resolve(&in, &c, NULL), 0);
		assert_false(c.bounding & BIT(SYS_RESOURCE));
	}
}

static void test_oci_json(void **state)
{
	(void)state;
	struct ctr_caps c;
	struct cric_err err;
	assert_int_equal(resolve(NULL, false, true, &c, &err), 0);
	_cleanup_json_ json_t *o = ctr_caps_to_oci(&c);
	assert_non_null(o);
	_cleanup_free_ char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	/* Capability-number order, upper case, every set present. */
	const char *want_set = "[\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FOWNER\","
			       "\"CAP_FSETID\",\"CAP_KILL\",\"CAP_SETGID\",\"CAP_SETUID\","
			       "\"CAP_SETPCAP\",\"CAP_NET_BIND_SERVICE\"]";
	char want[1024];
	snprintf(want, sizeof(want),
		 "{\"ambient\":[],\"bounding\":%s,\"effective\":%s,\"inheritable\":[],"
		 "\"permitted\":%s}",
		 want_set, want_set, want_set);
	assert_string_equal(s, want);

	/* The highest capability has its name too. */
	_cleanup_json_ json_t *a = ctr_caps_names_json(BIT(CHECKPOINT_RESTORE) | BIT(0));
	_cleanup_free_ char *t = json_dumps(a, JSON_COMPACT);
	assert_string_equal(t, "[\"CAP_CHOWN\",\"CAP_CHECKPOINT_RESTORE\"]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),    cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_add_drop), cmocka_unit_test(test_all),
		cmocka_unit_test(test_refusals), cmocka_unit_test(test_privileged),
		cmocka_unit_test(test_non_root), cmocka_unit_test(test_host_grantable),
		cmocka_unit_test(test_oci_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
