/* netd/cniresult.h: CNI results (1.0.0, 0.4.0, 0.3.x, 0.2.0), error
 * documents, versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "netd/cniresult.h"
#include "testutil.h"

/* What the Debian bridge plugin (containernetworking-plugins 1.1.1) prints
 * for a 1.0.0 network, chained through portmap. */
#define RESULT_1_0_0                                                                               \
	"{\"cniVersion\":\"1.0.0\",\"interfaces\":["                                               \
	"{\"name\":\"cni0\",\"mac\":\"ce:d5:7d:95:be:15\"},"                                       \
	"{\"name\":\"veth4e45d94a\",\"mac\":\"26:ba:b8:72:9e:18\"},"                               \
	"{\"name\":\"eth0\",\"mac\":\"fe:bc:59:62:e9:64\",\"sandbox\":\"/run/netns/x\"}],"         \
	"\"ips\":[{\"interface\":2,\"address\":\"198.18.99.2/24\",\"gateway\":\"198.18.99.1\"},"   \
	"{\"interface\":2,\"address\":\"fd00:198:18::2/64\",\"gateway\":\"fd00:198:18::1\"}],"     \
	"\"routes\":[{\"dst\":\"0.0.0.0/0\"},{\"dst\":\"::/0\",\"gw\":\"fd00:198:18::1\"}],"       \
	"\"dns\":{}}"

/* The same plugin for a 0.4.0 network: ips carry "version". */
#define RESULT_0_4_0                                                                               \
	"{\"cniVersion\":\"0.4.0\",\"interfaces\":["                                               \
	"{\"name\":\"cni0\",\"mac\":\"ce:d5:7d:95:be:15\"},"                                       \
	"{\"name\":\"eth0\",\"mac\":\"fe:bc:59:62:e9:64\",\"sandbox\":\"/run/netns/x\"}],"         \
	"\"ips\":[{\"version\":\"4\",\"interface\":1,\"address\":\"198.18.7.9/24\","               \
	"\"gateway\":\"198.18.7.1\"}],\"dns\":{\"nameservers\":[\"198.18.0.53\"]}}"

static json_t *load(const char *s)
{
	json_t *doc = NULL;
	struct cric_err err = { { 0 } };
	int r = cni_output_load(s, strlen(s), &doc, &err);
	if (r < 0)
		print_message("load(%.200s): %s\n", s, err.msg);
	assert_int_equal(r, 0);
	return doc;
}

static int parse(const char *s, const char *fallback, struct cni_result *res, struct cric_err *err)
{
	json_t *doc = load(s);
	int r = cni_result_parse(doc, fallback, res, err);
	json_decref(doc);
	return r;
}

static void parse_fails(const char *s, const char *needle)
{
	struct cni_result *res = malloc(sizeof(*res));
	assert_non_null(res);
	memset(res, 0x5a, sizeof(*res));
	struct cni_result *copy = malloc(sizeof(*res));
	memcpy(copy, res, sizeof(*res));
	struct cric_err err = { { 0 } };
	int r = parse(s, "1.0.0", res, &err);
	if (r != -EBADMSG || (needle && !strstr(err.msg, needle)))
		print_message("parse(%.300s): r=%d \"%s\", wanted \"%s\"\n", s, r, err.msg,
			      needle ? needle : "");
	assert_int_equal(r, -EBADMSG);
	if (needle)
		assert_non_null(strstr(err.msg, needle));
	assert_memory_equal(res, copy, sizeof(*res)); /* untouched on failure */
	free(res);
	free(copy);
}

static void test_result_1_0_0(void **state)
{
	(void)state;
	struct cni_result res;
	struct cric_err err = { "untouched" };
	assert_int_equal(parse(RESULT_1_0_0, "0.4.0", &res, &err), 0);
	assert_string_equal(err.msg, "untouched");
	assert_string_equal(res.cni_version, "1.0.0");
	assert_int_equal(res.n_ips, 2);
	assert_int_equal(res.ips[0].family, AF_INET);
	assert_string_equal(res.ips[0].address, "198.18.99.2");
	assert_int_equal(res.ips[0].prefix_len, 24);
	assert_int_equal(res.ips[0].interface, 2);
	assert_true(res.ips[0].in_sandbox);
	assert_int_equal(res.ips[1].family, AF_INET6);
	assert_string_equal(res.ips[1].address, "fd00:198:18::2");
	assert_int_equal(res.ips[1].prefix_len, 64);

	const struct cni_ip *ips[4];
	assert_int_equal(cni_result_pod_ips(&res, ips, 4), 2);
	assert_string_equal(ips[0]->address, "198.18.99.2");
	assert_string_equal(ips[1]->address, "fd00:198:18::2");
	assert_int_equal(cni_result_pod_ips(&res, ips, 1), 1);
}

static void test_result_0_4_0(void **state)
{
	(void)state;
	struct cni_result res;
	assert_int_equal(parse(RESULT_0_4_0, "1.0.0", &res, NULL), 0);
	assert_string_equal(res.cni_version, "0.4.0");
	assert_int_equal(res.n_ips, 1);
	assert_string_equal(res.ips[0].address, "198.18.7.9");
	assert_true(res.ips[0].in_sandbox);

	/* version must match the address. */
	parse_fails("{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"6\","
		    "\"address\":\"198.18.7.9/24\"}]}",
		    "version");
	parse_fails("{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":4,"
		    "\"address\":\"198.18.7.9/24\"}]}",
		    "version");
	/* An IPAM plugin's result: no interfaces, no index: the pod's. */
	assert_int_equal(parse("{\"cniVersion\":\"0.3.1\",\"ips\":[{\"version\":\"4\","
			       "\"address\":\"198.18.7.10/16\",\"gateway\":\"198.18.0.1\"}]}",
			       NULL, &res, NULL),
			 0);
	assert_int_equal(res.ips[0].interface, -1);
	assert_true(res.ips[0].in_sandbox);
}

static void test_result_host_side_ips_are_not_the_pods(void **state)
{
	(void)state;
	struct cni_result res;
	/* The gateway's address on the host bridge comes first: not a pod IP. */
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"br0\"},"
			       "{\"name\":\"eth0\",\"sandbox\":\"/x\"}],\"ips\":["
			       "{\"interface\":0,\"address\":\"198.18.0.1/24\"},"
			       "{\"interface\":1,\"address\":\"198.18.0.5/24\"}]}",
			       NULL, &res, NULL),
			 0);
	const struct cni_ip *ips[4];
	assert_int_equal(cni_result_pod_ips(&res, ips, 4), 1);
	assert_string_equal(ips[0]->address, "198.18.0.5");
	/* An empty sandbox is the host. */
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"x\","
			       "\"sandbox\":\"\"}],\"ips\":[{\"interface\":0,"
			       "\"address\":\"198.18.0.1/24\"}]}",
			       NULL, &res, NULL),
			 0);
	assert_int_equal(cni_result_pod_ips(&res, ips, 4), 0);
}

static void test_result_old_form(void **state)
{
	(void)state;
	struct cni_result res;
	assert_int_equal(parse("{\"cniVersion\":\"0.2.0\",\"ip4\":{\"ip\":\"198.18.3.4/16\","
			       "\"gateway\":\"198.18.0.1\"},\"ip6\":{\"ip\":\"fd00::4/64\"},"
			       "\"dns\":{}}",
			       NULL, &res, NULL),
			 0);
	assert_int_equal(res.n_ips, 2);
	assert_string_equal(res.ips[0].address, "198.18.3.4");
	assert_string_equal(res.ips[1].address, "fd00::4");
	/* No cniVersion in the result: the config's decides the form. */
	assert_int_equal(parse("{\"ip4\":{\"ip\":\"198.18.3.5/16\"}}", "0.1.0", &res, NULL), 0);
	assert_string_equal(res.cni_version, "0.1.0");
	assert_string_equal(res.ips[0].address, "198.18.3.5");
	parse_fails("{\"cniVersion\":\"0.2.0\",\"ip4\":{\"ip\":\"fd00::4/64\"}}", "ip4");
	parse_fails("{\"cniVersion\":\"0.2.0\",\"ip4\":\"198.18.3.4/16\"}", "ip4");
}

static void test_result_empty_and_minimal(void **state)
{
	(void)state;
	struct cni_result res;
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\"}", NULL, &res, NULL), 0);
	assert_int_equal(res.n_ips, 0);
	assert_int_equal(parse("{}", "1.0.0", &res, NULL), 0);
	assert_string_equal(res.cni_version, "1.0.0");
	/* No version anywhere. */
	struct cric_err err = { { 0 } };
	assert_int_equal(parse("{}", NULL, &res, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "cniVersion"));
}

static void test_result_invalid(void **state)
{
	(void)state;
	parse_fails("{\"cniVersion\":1}", "cniVersion");
	parse_fails("{\"cniVersion\":\"one\"}", "cniVersion");
	parse_fails("{\"cniVersion\":\"1.0.0.0\"}", "cniVersion");
	parse_fails("{\"cniVersion\":\"99999.0.0\"}", "cniVersion");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":{}}", "ips");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{}]}", "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[\"198.18.0.1/24\"]}", "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.1\"}]}", "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.1/33\"}]}",
		    "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.1/-1\"}]}",
		    "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.1/ 24\"}]}",
		    "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.256/24\"}]}",
		    "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"fd00::1/129\"}]}",
		    "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"a.b.c.d/8\"}]}", "address");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.2/24\","
		    "\"gateway\":\"fd00::1\"}]}",
		    "gateway");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.2/24\","
		    "\"gateway\":5}]}",
		    "gateway");
	/* interface index: in range, and only with interfaces. */
	parse_fails("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.0.2/24\","
		    "\"interface\":0}]}",
		    "interface");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"a\"}],"
		    "\"ips\":[{\"address\":\"198.18.0.2/24\",\"interface\":1}]}",
		    "interface");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"a\"}],"
		    "\"ips\":[{\"address\":\"198.18.0.2/24\",\"interface\":-1}]}",
		    "interface");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"a\"}],"
		    "\"ips\":[{\"address\":\"198.18.0.2/24\",\"interface\":\"0\"}]}",
		    "interface");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"interfaces\":{}}", "interfaces");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{}]}", "interfaces[0]");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"\"}]}", "interfaces[0]");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"a\",\"sandbox\":1}]}",
		    "interfaces[0]");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"routes\":[{\"dst\":\"x\"}]}", "routes[0]");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":"
		    "\"fd00::1\"}]}",
		    "routes[0]");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"routes\":{}}", "routes");
	parse_fails("{\"cniVersion\":\"1.0.0\",\"dns\":[]}", "dns");
}

static void test_result_limits(void **state)
{
	(void)state;
	/* CNI_RESULT_MAX_IPS fit, one more does not. */
	for (int n = CNI_RESULT_MAX_IPS; n <= CNI_RESULT_MAX_IPS + 1; n++) {
		size_t cap = 64 + (size_t)n * 48;
		char *doc = malloc(cap);
		size_t k = (size_t)snprintf(doc, cap, "{\"cniVersion\":\"1.0.0\",\"ips\":[");
		for (int i = 0; i < n; i++)
			k +=
			    (size_t)snprintf(doc + k, cap - k, "%s{\"address\":\"198.18.1.%d/24\"}",
					     i ? "," : "", i + 1);
		snprintf(doc + k, cap - k, "]}");
		if (n == CNI_RESULT_MAX_IPS) {
			struct cni_result res;
			assert_int_equal(parse(doc, NULL, &res, NULL), 0);
			assert_int_equal(res.n_ips, CNI_RESULT_MAX_IPS);
		} else {
			parse_fails(doc, "ips");
		}
		free(doc);
	}
	/* Not an object at all. */
	struct cni_result res;
	assert_int_equal(cni_result_parse(NULL, "1.0.0", &res, NULL), -EBADMSG);
	json_t *arr = json_array();
	assert_int_equal(cni_result_parse(arr, "1.0.0", &res, NULL), -EBADMSG);
	json_decref(arr);
}

static void test_output_load_garbage(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"   ",
		"not json",
		"{",
		"[]",
		"\"str\"",
		"42",
		"null",
		"{\"a\":1} {\"b\":2}",
		"{\"a\":1,\"a\":2}",
		"\xff\xfe",
		"{\"a\":\"\\u0000\"}x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *doc = (json_t *)0x1;
		struct cric_err err = { { 0 } };
		assert_int_equal(cni_output_load(bad[i], strlen(bad[i]), &doc, &err), -EBADMSG);
		assert_ptr_equal(doc, (json_t *)0x1);
		assert_true(err.msg[0] != '\0');
	}
	/* Only len bytes are read. */
	const char *s = "{\"cniVersion\":\"1.0.0\"}GARBAGE";
	json_t *doc = NULL;
	assert_int_equal(cni_output_load(s, strlen(s) - 7, &doc, NULL), 0);
	json_decref(doc);
}

static int exited(int code)
{
	return code << 8; /* a waitpid() status of exit(code) */
}

static void test_error_document(void **state)
{
	(void)state;
	struct cric_err err = { { 0 } };
	const char *out = "{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"invalid CIDR\","
			  "\"details\":\"198.18.0.0/33\"}";
	assert_int_equal(cni_error_describe(out, strlen(out), "", exited(1), &err), -EIO);
	assert_string_equal(err.msg, "invalid CIDR: 198.18.0.0/33 (CNI error code 7)");

	/* Without details; code 11 is "try again later". */
	out = "{\"code\":11,\"msg\":\"busy\"}";
	assert_int_equal(cni_error_describe(out, strlen(out), "", exited(1), &err), -EAGAIN);
	assert_string_equal(err.msg, "busy (CNI error code 11)");

	/* What the reference plugins print for their own errors. */
	out = "{\n    \"code\": 999,\n    \"msg\": \"container veth name provided (eth0) "
	      "already exists\"\n}";
	assert_int_equal(cni_error_describe(out, strlen(out), "", exited(1), &err), -EIO);
	assert_string_equal(err.msg,
			    "container veth name provided (eth0) already exists (CNI error code "
			    "999)");

	/* Control characters from a hostile plugin do not reach logs raw, and
	 * the message stops at the first line. */
	out = "{\"code\":7,\"msg\":\"bad \\u001b[31mthing\\r\\nsecond line\",\"details\":\"d\"}";
	assert_int_equal(cni_error_describe(out, strlen(out), "", exited(1), &err), -EIO);
	assert_string_equal(err.msg, "bad ?[31mthing: d (CNI error code 7)");
}

static void test_error_not_a_document(void **state)
{
	(void)state;
	struct cric_err err = { { 0 } };
	/* stderr's first line. */
	assert_int_equal(
	    cni_error_describe("", 0, "\n  panic: oops\ngoroutine 1\n", exited(2), &err), -EIO);
	assert_string_equal(err.msg, "panic: oops (exit status 2)");
	/* stdout when stderr is empty; a JSON object without code/msg is not
	 * an error document. */
	const char *out = "{\"cniVersion\":\"1.0.0\"}";
	assert_int_equal(cni_error_describe(out, strlen(out), "", exited(1), &err), -EIO);
	assert_string_equal(err.msg, "{\"cniVersion\":\"1.0.0\"} (exit status 1)");
	/* stdout is len bytes, not a C string (ASan sees an overread). */
	char *raw = malloc(7);
	memcpy(raw, "\n oops!", 7);
	assert_int_equal(cni_error_describe(raw, 7, NULL, exited(1), &err), -EIO);
	assert_string_equal(err.msg, "oops! (exit status 1)");
	assert_int_equal(cni_error_describe(raw, 0, "", exited(1), &err), -EIO);
	assert_string_equal(err.msg, "failed with exit status 1 and no message");
	free(raw);
	/* Nothing at all. */
	assert_int_equal(cni_error_describe("", 0, "", exited(3), &err), -EIO);
	assert_string_equal(err.msg, "failed with exit status 3 and no message");
	assert_int_equal(cni_error_describe(NULL, 0, NULL, 9 /* SIGKILL */, &err), -EIO);
	assert_string_equal(err.msg, "failed with killed by signal 9 and no message");
	/* Bounded. */
	char *big = malloc(100000);
	memset(big, 'x', 99999);
	big[99999] = '\0';
	assert_int_equal(cni_error_describe("", 0, big, exited(1), &err), -EIO);
	assert_true(strlen(err.msg) < sizeof(err.msg));
	free(big);
	/* err is optional. */
	assert_int_equal(cni_error_describe("", 0, "", exited(1), NULL), -EIO);
}

static void test_versions(void **state)
{
	(void)state;
	assert_true(cni_version_valid("1.0.0"));
	assert_true(cni_version_valid("0.4.0"));
	assert_true(cni_version_valid("0.3"));
	assert_true(cni_version_valid("10.20.30"));
	static const char *const bad[] = { "",      "1",         "1.",     ".1",
					   "1..0",  "1.0.0.0",   "v1.0.0", "1.0.0-rc1",
					   "1.0.a", "12345.0.0", " 1.0.0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cni_version_valid(bad[i]));
	assert_false(cni_version_valid(NULL));

	assert_true(cni_version_cmp("0.4.0", "1.0.0") < 0);
	assert_true(cni_version_cmp("1.0.0", "0.4.0") > 0);
	assert_true(cni_version_cmp("0.3.1", "0.4.0") < 0);
	assert_true(cni_version_cmp("0.10.0", "0.4.0") > 0); /* numeric, not lexical */
	assert_int_equal(cni_version_cmp("1.0", "1.0.0"), 0);
	assert_int_equal(cni_version_cmp("0.4.0", "0.4.0"), 0);
	assert_int_equal(cni_version_cmp("junk", "0.0.0"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_1_0_0),
		cmocka_unit_test(test_result_0_4_0),
		cmocka_unit_test(test_result_host_side_ips_are_not_the_pods),
		cmocka_unit_test(test_result_old_form),
		cmocka_unit_test(test_result_empty_and_minimal),
		cmocka_unit_test(test_result_invalid),
		cmocka_unit_test(test_result_limits),
		cmocka_unit_test(test_output_load_garbage),
		cmocka_unit_test(test_error_document),
		cmocka_unit_test(test_error_not_a_document),
		cmocka_unit_test(test_versions),
	};
	return cmocka_run_group_tests_name("netd-cniresult", tests, NULL, NULL);
}
