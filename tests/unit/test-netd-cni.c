/* netd/cni.h: the network read in full, per-plugin execution config and
 * environment, and the ADD/DEL/CHECK chains (run against a fake plugin that
 * records what it was given). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netd/cni.h"
#include "testutil.h"
#include "tests/tools/fakecni.h"

#define POD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fixture {
	char *root;
	char conf[PATH_MAX];
	char bin[PATH_MAX];
	char other_bin[PATH_MAX];
	char *bins[3];
	struct cni_runtime rt;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->root = tmpdir_make("cni");
	tpath(f->conf, f->root, "net.d");
	tpath(f->bin, f->root, "bin");
	tpath(f->other_bin, f->root, "bin0");
	assert_int_equal(mkdir(f->conf, 0755), 0);
	assert_int_equal(mkdir(f->bin, 0755), 0);
	assert_int_equal(mkdir(f->other_bin, 0755), 0);
	f->bins[0] = f->other_bin; /* searched first, empty */
	f->bins[1] = f->bin;
	f->rt = (struct cni_runtime){ .bin_dirs = f->bins, .timeout_ms = 20000 };
	fake_cni_install(f->bin, "fakea");
	fake_cni_install(f->bin, "fakeb");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tmpdir_remove(f->root);
	free(f);
	return 0;
}

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		print_message("bad test JSON: %s: %s\n", e.text, s);
	assert_non_null(j);
	return j;
}

static char *dump(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	return s;
}

static void assert_json(const json_t *j, const char *expected)
{
	json_t *e = parse(expected);
	char *a = dump(j), *b = dump(e);
	if (strcmp(a, b) != 0)
		print_message("got      %s\nexpected %s\n", a, b);
	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(e);
}

/* ---- execution config and environment ---- */

static void test_plugin_config(void **state)
{
	(void)state;
	json_t *list = parse(
	    "{\"cniVersion\":\"1.0.0\",\"name\":\"net\",\"plugins\":["
	    "{\"type\":\"bridge\",\"name\":\"ignored\",\"cniVersion\":\"0.1.0\",\"prevResult\":1,"
	    "\"ipam\":{\"type\":\"host-local\"}},"
	    "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true,\"bandwidth\":false,"
	    "\"ipRanges\":true},\"snat\":true},"
	    "{\"type\":\"custom\",\"runtimeConfig\":{\"static\":1}}]}");
	json_t *rc = parse("{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,"
			   "\"protocol\":\"tcp\"}],\"bandwidth\":{\"ingressRate\":1},"
			   "\"dns\":{\"servers\":[\"198.18.0.53\"]}}");
	json_t *prev = parse("{\"cniVersion\":\"1.0.0\",\"ips\":[]}");

	/* name and cniVersion from the list; a prevResult of the file dropped. */
	json_t *c = cni_plugin_config(list, 0, rc, NULL);
	assert_json(c, "{\"type\":\"bridge\",\"name\":\"net\",\"cniVersion\":\"1.0.0\","
		       "\"ipam\":{\"type\":\"host-local\"}}");
	json_decref(c);
	/* Only declared (and true) capabilities the runtime has data for; no
	 * "capabilities" key; prevResult. */
	c = cni_plugin_config(list, 1, rc, prev);
	assert_json(c, "{\"type\":\"portmap\",\"name\":\"net\",\"cniVersion\":\"1.0.0\","
		       "\"snat\":true,\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8080,"
		       "\"containerPort\":80,\"protocol\":\"tcp\"}]},"
		       "\"prevResult\":{\"cniVersion\":\"1.0.0\",\"ips\":[]}}");
	json_decref(c);
	/* No capability matched: a runtimeConfig written in the file stays. */
	c = cni_plugin_config(list, 2, rc, NULL);
	assert_json(c, "{\"type\":\"custom\",\"name\":\"net\",\"cniVersion\":\"1.0.0\","
		       "\"runtimeConfig\":{\"static\":1}}");
	json_decref(c);
	/* No runtime data at all. */
	c = cni_plugin_config(list, 1, NULL, NULL);
	assert_json(c, "{\"type\":\"portmap\",\"name\":\"net\",\"cniVersion\":\"1.0.0\","
		       "\"snat\":true}");
	json_decref(c);
	assert_null(cni_plugin_config(list, 3, rc, NULL));
	assert_null(cni_plugin_config(NULL, 0, rc, NULL));
	json_decref(list);
	json_decref(rc);
	json_decref(prev);
}

static void test_plugin_env(void **state)
{
	(void)state;
	char *bins[] = { "/usr/lib/cni", "/opt/cni/bin", NULL };
	const struct cni_attachment a = { .container_id = POD,
					  .netns = "/run/x/netns/" POD,
					  .ifname = "eth0",
					  .cni_args = "IgnoreUnknown=1;K8S_POD_NAME=p" };
	setenv("PATH", "/sbin:/bin", 1);
	char **env = cni_plugin_env("ADD", &a, bins);
	assert_non_null(env);
	const char *expected[] = {
		"CNI_COMMAND=ADD",
		"CNI_CONTAINERID=" POD,
		"CNI_NETNS=/run/x/netns/" POD,
		"CNI_IFNAME=eth0",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=p",
		"CNI_PATH=/usr/lib/cni:/opt/cni/bin",
		"PATH=/sbin:/bin",
		NULL,
	};
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		if (!expected[i])
			assert_null(env[i]);
		else
			assert_string_equal(env[i], expected[i]);
	}
	for (char **e = env; *e; e++)
		free(*e);
	free(env);

	/* Namespace gone (DEL after a reboot): CNI_NETNS empty; no PATH in
	 * netd's environment: a standard one. */
	const struct cni_attachment gone = { .container_id = POD, .netns = "", .ifname = "eth0" };
	unsetenv("PATH");
	char *one[] = { "/usr/lib/cni", NULL };
	env = cni_plugin_env("DEL", &gone, one);
	assert_string_equal(env[2], "CNI_NETNS=");
	assert_string_equal(env[4], "CNI_ARGS=");
	assert_string_equal(env[5], "CNI_PATH=/usr/lib/cni");
	assert_non_null(strstr(env[6], "/usr/sbin"));
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
}

/* ---- network load and check ---- */

static void conf(struct fixture *f, const char *name, const char *content)
{
	char p[PATH_MAX];
	write_text(tpath(p, f->conf, name), content);
}

static void test_network_load(void **state)
{
	struct fixture *f = *state;
	json_t *list = NULL;
	char *file = NULL;
	struct cric_err err = { { 0 } };

	/* Nothing there. */
	assert_int_equal(cni_network_load(f->conf, f->bins, &list, &file, &err), -ENOENT);
	assert_non_null(strstr(err.msg, f->conf));
	assert_null(list);

	/* A single-plugin .conf becomes a one-plugin list. */
	conf(f, "50-single.conf",
	     "{\"cniVersion\":\"0.4.0\",\"name\":\"single\",\"type\":\"fakea\",\"x\":1}");
	assert_int_equal(cni_network_load(f->conf, f->bins, &list, &file, &err), 0);
	assert_json(list, "{\"cniVersion\":\"0.4.0\",\"name\":\"single\",\"plugins\":"
			  "[{\"cniVersion\":\"0.4.0\",\"name\":\"single\",\"type\":\"fakea\","
			  "\"x\":1}]}");
	char p[PATH_MAX];
	assert_string_equal(file, tpath(p, f->conf, "50-single.conf"));
	assert_int_equal(cni_network_check(list, NULL), 0);
	json_decref(list);
	free(file);

	/* The lexically first wins; disableCheck is kept, other list keys are
	 * not (they mean nothing to plugins). */
	conf(f, "10-list.conflist",
	     "{\"cniVersion\":\"1.0.0\",\"name\":\"lst\",\"disableCheck\":true,\"x\":2,"
	     "\"plugins\":[{\"type\":\"fakea\"},{\"type\":\"fakeb\",\"k\":[1,2]}]}");
	assert_int_equal(cni_network_load(f->conf, f->bins, &list, NULL, &err), 0);
	assert_json(list, "{\"cniVersion\":\"1.0.0\",\"name\":\"lst\",\"disableCheck\":true,"
			  "\"plugins\":[{\"type\":\"fakea\"},{\"type\":\"fakeb\",\"k\":[1,2]}]}");
	assert_int_equal(cni_network_check(list, NULL), 0);
	assert_false(cni_check_supported(list));
	json_decref(list);

	/* A plugin missing from every bin dir. */
	conf(f, "05-missing.conflist",
	     "{\"cniVersion\":\"1.0.0\",\"name\":\"m\",\"plugins\":[{\"type\":\"nope\"}]}");
	list = NULL;
	assert_int_equal(cni_network_load(f->conf, f->bins, &list, NULL, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "\"nope\""));
	assert_null(list);
}

static void test_network_check(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"[]",
		"{}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../../bin/"
		"sh\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n/x\",\"plugins\":[{\"type\":\"a\"}]}",
		"{\"name\":\"n\",\"plugins\":[{\"type\":\"a\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"disableCheck\":\"yes\","
		"\"plugins\":[{\"type\":\"a\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = parse(bad[i]);
		assert_int_equal(cni_network_check(j, NULL), -EINVAL);
		json_decref(j);
	}
	assert_int_equal(cni_network_check(NULL, NULL), -EINVAL);
	json_t *j =
	    parse("{\"cniVersion\":\"0.3.1\",\"name\":\"n\",\"plugins\":[{\"type\":\"a\"}]}");
	assert_int_equal(cni_network_check(j, NULL), 0);
	assert_false(cni_check_supported(j)); /* CHECK came with 0.4.0 */
	json_decref(j);
	j = parse("{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"a\"}]}");
	assert_true(cni_check_supported(j));
	json_decref(j);
}

/* ---- chains ---- */

#define LIST_AB(version, a_extra, b_extra)                                                         \
	"{\"cniVersion\":\"" version "\",\"name\":\"chain\",\"plugins\":["                         \
	"{\"type\":\"fakea\",\"addIp\":\"198.18.5.2/24\"" a_extra "},"                             \
	"{\"type\":\"fakeb\",\"capabilities\":{\"portMappings\":true}" b_extra "}]}"

static const struct cni_attachment attach = {
	.container_id = POD,
	.netns = "/nonexistent/netns",
	.ifname = "eth0",
	.cni_args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;"
		    "K8S_POD_INFRA_CONTAINER_ID=" POD ";K8S_POD_UID=u",
};

static json_t *call_n(struct fixture *f, size_t i)
{
	json_t *calls = fake_cni_calls(f->bin);
	json_t *c = json_incref(json_array_get(calls, i));
	json_decref(calls);
	assert_non_null(c);
	return c;
}

static void test_add_chain(void **state)
{
	struct fixture *f = *state;
	json_t *list = parse(LIST_AB("1.0.0", "", ""));
	json_t *rc = parse("{\"portMappings\":[{\"hostPort\":1,\"containerPort\":2}]}");
	struct cni_attachment a = attach;
	a.runtime_config = rc;
	json_t *result = NULL;
	struct cric_err err = { "untouched" };
	assert_int_equal(cni_add(&f->rt, list, &a, &result, &err), 0);
	assert_string_equal(err.msg, "untouched");
	char seq[256];
	fake_cni_sequence(f->bin, seq, sizeof(seq));
	assert_string_equal(seq, "fakea:ADD fakeb:ADD");

	/* The first plugin: no prevResult, no runtimeConfig (no capability);
	 * the environment of the spec. */
	json_t *c = call_n(f, 0);
	json_t *env = json_object_get(c, "env");
	assert_null(json_object_get(json_object_get(c, "conf"), "prevResult"));
	assert_null(json_object_get(json_object_get(c, "conf"), "runtimeConfig"));
	assert_string_equal(json_string_value(json_object_get(env, "CNI_CONTAINERID")), POD);
	assert_string_equal(json_string_value(json_object_get(env, "CNI_NETNS")),
			    "/nonexistent/netns");
	assert_string_equal(json_string_value(json_object_get(env, "CNI_IFNAME")), "eth0");
	assert_string_equal(json_string_value(json_object_get(env, "CNI_ARGS")), attach.cni_args);
	char path[2 * PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s:%s", f->other_bin, f->bin);
	assert_string_equal(json_string_value(json_object_get(env, "CNI_PATH")), path);
	json_decref(c);

	/* The second: the first one's result as prevResult, its capability. */
	c = call_n(f, 1);
	json_t *conf = json_object_get(c, "conf");
	assert_json(json_object_get(conf, "prevResult"),
		    "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\","
		    "\"sandbox\":\"/nonexistent/netns\"}],\"ips\":[{\"address\":\"198.18.5.2/24\","
		    "\"interface\":0}]}");
	assert_json(json_object_get(conf, "runtimeConfig"), "{\"portMappings\":[{\"hostPort\":1,"
							    "\"containerPort\":2}]}");
	assert_null(json_object_get(conf, "capabilities"));
	assert_string_equal(json_string_value(json_object_get(conf, "name")), "chain");
	json_decref(c);

	/* The result is the last plugin's. */
	assert_json(result, "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\","
			    "\"sandbox\":\"/nonexistent/netns\"}],\"ips\":[{\"address\":"
			    "\"198.18.5.2/24\",\"interface\":0}]}");
	json_decref(result);
	json_decref(list);
	json_decref(rc);
}

static void test_add_failure(void **state)
{
	struct fixture *f = *state;
	json_t *list = parse(LIST_AB("1.0.0", "", ",\"fail\":\"ADD\""));
	json_t *result = (json_t *)0x1;
	struct cric_err err = { { 0 } };
	assert_int_equal(cni_add(&f->rt, list, &attach, &result, &err), -EIO);
	assert_ptr_equal(result, (json_t *)0x1);
	assert_string_equal(err.msg, "plugin \"fakeb\" ADD: fakeb refuses ADD: as configured (CNI "
				     "error code 7)");
	char seq[256];
	fake_cni_sequence(f->bin, seq, sizeof(seq));
	assert_string_equal(seq, "fakea:ADD fakeb:ADD"); /* nothing undone here */
	json_decref(list);

	/* A plugin that prints garbage, or nothing, on ADD. */
	static const struct {
		const char *raw, *needle;
	} cases[] = {
		{ "not json", "plugin \"fakea\" ADD: invalid result: not JSON" },
		{ "", "plugin \"fakea\" ADD printed no result" },
		{ "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"x\"}]}",
		  "plugin \"fakea\" ADD: invalid result: ips[0]" },
		{ "[1]", "invalid result: not a JSON object" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *raw = json_string(cases[i].raw);
		list = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":"
			     "[{\"type\":\"fakea\"}]}");
		json_object_set_new(json_array_get(json_object_get(list, "plugins"), 0), "printRaw",
				    raw);
		assert_int_equal(cni_add(&f->rt, list, &attach, &result, &err), -EBADMSG);
		if (!strstr(err.msg, cases[i].needle))
			print_message("\"%s\" not in \"%s\"\n", cases[i].needle, err.msg);
		assert_non_null(strstr(err.msg, cases[i].needle));
		json_decref(list);
	}

	/* A plugin missing since the network was loaded. */
	list = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"gone\"}]}");
	assert_int_equal(cni_add(&f->rt, list, &attach, &result, &err), -ENOENT);
	assert_string_equal(err.msg, "plugin \"gone\" ADD: not found in the CNI bin dirs");
	json_decref(list);
}

static void test_del_reverse_and_keeps_going(void **state)
{
	struct fixture *f = *state;
	json_t *prev =
	    parse("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.5.2/24\"}]}");
	json_t *list = parse(LIST_AB("1.0.0", "", ""));
	struct cric_err err = { "untouched" };
	assert_int_equal(cni_del(&f->rt, list, &attach, prev, &err), 0);
	assert_string_equal(err.msg, "untouched");
	char seq[256];
	fake_cni_sequence(f->bin, seq, sizeof(seq));
	assert_string_equal(seq, "fakeb:DEL fakea:DEL");
	/* Every plugin gets the cached result. */
	for (size_t i = 0; i < 2; i++) {
		json_t *c = call_n(f, i);
		assert_json(json_object_get(json_object_get(c, "conf"), "prevResult"),
			    "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.5.2/24\"}]}");
		json_decref(c);
	}
	json_decref(list);

	/* fakeb fails: fakea still runs, fakeb's error is returned. */
	fake_cni_forget_calls(f->bin);
	list = parse(LIST_AB("1.0.0", "", ",\"fail\":\"DEL\""));
	assert_int_equal(cni_del(&f->rt, list, &attach, NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "plugin \"fakeb\" DEL: fakeb refuses DEL"));
	fake_cni_sequence(f->bin, seq, sizeof(seq));
	assert_string_equal(seq, "fakeb:DEL fakea:DEL");
	/* Without a cached result: no prevResult. */
	json_t *c = call_n(f, 1);
	assert_null(json_object_get(json_object_get(c, "conf"), "prevResult"));
	json_decref(c);
	json_decref(list);
	json_decref(prev);
}

static void test_check(void **state)
{
	struct fixture *f = *state;
	json_t *prev = parse("{\"cniVersion\":\"1.0.0\",\"ips\":[]}");
	char seq[256];
	struct cric_err err = { { 0 } };

	/* Before 0.4.0 there is no CHECK: nothing runs. */
	json_t *list = parse(LIST_AB("0.3.1", "", ""));
	assert_int_equal(cni_check(&f->rt, list, &attach, prev, &err), -EOPNOTSUPP);
	fake_cni_sequence(f->bin, seq, sizeof(seq));
	assert_string_equal(seq, "");
	json_decref(list);

	list = parse(LIST_AB("0.4.0", "", ""));
	assert_int_equal(cni_check(&f->rt, list, &attach, prev, &err), 0);
	fake_cni_sequence(f->bin, seq, sizeof(seq));
	assert_string_equal(seq, "fakea:CHECK fakeb:CHECK");
	json_t *c = call_n(f, 1);
	assert_json(json_object_get(json_object_get(c, "conf"), "prevResult"),
		    "{\"cniVersion\":\"1.0.0\",\"ips\":[]}");
	json_decref(c);
	json_decref(list);

	/* Stops at the first failure. */
	fake_cni_forget_calls(f->bin);
	list = parse(LIST_AB("1.0.0", ",\"fail\":\"CHECK\"", ""));
	assert_int_equal(cni_check(&f->rt, list, &attach, prev, &err), -EIO);
	assert_non_null(strstr(err.msg, "plugin \"fakea\" CHECK: fakea refuses CHECK"));
	fake_cni_sequence(f->bin, seq, sizeof(seq));
	assert_string_equal(seq, "fakea:CHECK");
	json_decref(list);
	json_decref(prev);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	json_t *list = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":"
			     "[{\"type\":\"fakea\",\"sleep\":30}]}");
	struct cni_runtime rt = f->rt;
	rt.timeout_ms = 500;
	json_t *result = NULL;
	struct cric_err err = { { 0 } };
	int64_t t0 = mono_ms();
	assert_int_equal(cni_add(&rt, list, &attach, &result, &err), -ETIMEDOUT);
	assert_true(mono_ms() - t0 < 5000);
	assert_string_equal(err.msg, "plugin \"fakea\" ADD: timed out after 500 ms, killed");
	assert_null(result);
	json_decref(list);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plugin_config),
		cmocka_unit_test(test_plugin_env),
		T(test_network_load),
		cmocka_unit_test(test_network_check),
		T(test_add_chain),
		T(test_add_failure),
		T(test_del_reverse_and_keeps_going),
		T(test_check),
		T(test_timeout),
	};
#undef T
	return cmocka_run_group_tests_name("netd-cni", tests, NULL, NULL);
}
