/* netd/podspec.h: validation of SetupPodNetwork input, CNI_ARGS and the
 * runtimeConfig capabilities built from it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "netd/podspec.h"
#include "testutil.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct pod_net_spec base(void)
{
	return (struct pod_net_spec){ .id = ID,
				      .name = "web-0",
				      .namespace_ = "default",
				      .uid = "6f1c9b2e-1d2a-4c1e-9a51-0c6b7f0e2a11" };
}

static void invalid(const struct pod_net_spec *s, const char *needle)
{
	struct cric_err err = { { 0 } };
	int r = pod_net_spec_validate(s, &err);
	if (r != -EINVAL || !strstr(err.msg, needle))
		print_message("validate: r=%d \"%s\", wanted \"%s\"\n", r, err.msg, needle);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.msg, needle));
}

static void test_identity(void **state)
{
	(void)state;
	struct pod_net_spec s = base();
	struct cric_err err = { "untouched" };
	assert_int_equal(pod_net_spec_validate(&s, &err), 0);
	assert_string_equal(err.msg, "untouched");

	static const char *const bad_ids[] = {
		"",
		"0123",
		ID "0",
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		"../456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		s = base();
		s.id = bad_ids[i];
		invalid(&s, "pod_id");
	}
	s = base();
	s.id = NULL;
	invalid(&s, "pod_id");

	/* Anything that could break "K=V;K=V", a path or a log line. */
	static const char *const bad[] = {
		"",     "a;b",         "a=b",  "a b",   "-a",   ".a",  "_a",    "a/b",
		"a\nb", "caf\xc3\xa9", "a\\b", "$(id)", "a\"b", "a:b", "a\x01",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = base();
		s.name = bad[i];
		invalid(&s, "name");
		s = base();
		s.namespace_ = bad[i];
		invalid(&s, "namespace");
		s = base();
		s.uid = bad[i];
		invalid(&s, "uid");
	}
	s = base();
	s.name = NULL;
	invalid(&s, "name");
	s = base();
	s.uid = NULL;
	invalid(&s, "uid");

	/* Lengths: 253 / 63 / 128 fit, one more does not. */
	char longs[300];
	memset(longs, 'a', sizeof(longs));
	longs[POD_NAME_MAX] = '\0';
	s = base();
	s.name = longs;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	longs[POD_NAME_MAX] = 'a';
	longs[POD_NAME_MAX + 1] = '\0';
	invalid(&s, "name");
	s = base();
	longs[POD_NAMESPACE_MAX] = '\0';
	s.namespace_ = longs;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	longs[POD_NAMESPACE_MAX] = 'a';
	invalid(&s, "namespace");
	s = base();
	longs[POD_UID_MAX] = '\0';
	s.uid = longs;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	longs[POD_UID_MAX] = 'a';
	invalid(&s, "uid");
}

static void test_ports(void **state)
{
	(void)state;
	struct pod_port_mapping ports[POD_MAX_PORTS + 1];
	for (size_t i = 0; i < POD_MAX_PORTS + 1; i++)
		ports[i] = (struct pod_port_mapping){ .container_port = 80,
						      .host_port = (int32_t)(8000 + i) };
	struct pod_net_spec s = base();
	s.ports = ports;
	s.n_ports = POD_MAX_PORTS;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	s.n_ports = POD_MAX_PORTS + 1;
	invalid(&s, "port mappings");

	s.n_ports = 1;
	const struct {
		struct pod_port_mapping m;
		const char *needle; /* NULL: valid */
	} cases[] = {
		{ { "TCP", 80, 8080, NULL }, NULL },
		{ { "udp", 53, 0, "" }, NULL },
		{ { "Sctp", 1, 65535, "198.18.0.1" }, NULL },
		{ { NULL, 65535, 1, "fd00::1" }, NULL },
		{ { "icmp", 80, 8080, NULL }, "protocol" },
		{ { "tcp;x", 80, 8080, NULL }, "protocol" },
		{ { "tcp", 0, 8080, NULL }, "container_port" },
		{ { "tcp", 65536, 8080, NULL }, "container_port" },
		{ { "tcp", -80, 8080, NULL }, "container_port" },
		{ { "tcp", 80, -1, NULL }, "host_port" },
		{ { "tcp", 80, 65536, NULL }, "host_port" },
		{ { "tcp", 80, 8080, "localhost" }, "host_ip" },
		{ { "tcp", 80, 8080, "198.18.0.256" }, "host_ip" },
		{ { "tcp", 80, 8080, "198.18.0.1/32" }, "host_ip" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ports[0] = cases[i].m;
		if (cases[i].needle)
			invalid(&s, cases[i].needle);
		else
			assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	}
}

static void test_bandwidth_dns_ranges(void **state)
{
	(void)state;
	struct pod_net_spec s = base();
	struct pod_bandwidth bw = { .ingress_rate = POD_BANDWIDTH_MAX };
	s.bandwidth = &bw;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	bw.egress_burst = POD_BANDWIDTH_MAX + 1;
	invalid(&s, "bandwidth");

	s = base();
	const char *servers[POD_DNS_MAX_SERVERS + 1];
	for (size_t i = 0; i <= POD_DNS_MAX_SERVERS; i++)
		servers[i] = "198.18.0.53";
	const char *searches[] = { "svc.cluster.local", "example.com" };
	const char *options[] = { "ndots:5", "edns0" };
	struct pod_dns dns = { servers, POD_DNS_MAX_SERVERS, searches, 2, options, 2 };
	s.dns = &dns;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	dns.n_servers = POD_DNS_MAX_SERVERS + 1;
	invalid(&s, "servers");
	dns.n_servers = 1;
	servers[0] = "ns.example.com";
	invalid(&s, "servers[0]");
	servers[0] = "198.18.0.53";
	searches[1] = "a b";
	invalid(&s, "searches[1]");
	searches[1] = "";
	invalid(&s, "searches[1]");
	searches[1] = "example.com";
	options[0] = "ndots:5\nnameserver 1.2.3.4";
	invalid(&s, "options[0]");
	options[0] = "ndots:5";
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);

	s = base();
	struct pod_ip_range ranges[POD_MAX_IP_RANGES + 1];
	for (size_t i = 0; i <= POD_MAX_IP_RANGES; i++)
		ranges[i] = (struct pod_ip_range){ .subnet = "198.18.64.0/18" };
	s.ip_ranges = ranges;
	s.n_ip_ranges = POD_MAX_IP_RANGES;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	s.n_ip_ranges = POD_MAX_IP_RANGES + 1;
	invalid(&s, "ip_ranges");
	s.n_ip_ranges = 1;
	ranges[0] = (struct pod_ip_range){ "198.18.64.0/18", "198.18.64.10", "198.18.64.20",
					   "198.18.64.1" };
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	ranges[0].gateway = "fd00::1";
	invalid(&s, "ip_ranges[0]");
	ranges[0] = (struct pod_ip_range){ .subnet = "198.18.64.0" };
	invalid(&s, "subnet");
	ranges[0] = (struct pod_ip_range){ .subnet = NULL };
	invalid(&s, "subnet");
}

static void test_cni_args(void **state)
{
	(void)state;
	struct pod_net_spec s = base();
	char *args = pod_net_spec_cni_args(&s);
	assert_string_equal(args, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
				  "K8S_POD_INFRA_CONTAINER_ID=" ID
				  ";K8S_POD_UID=6f1c9b2e-1d2a-4c1e-9a51-0c6b7f0e2a11");
	free(args);
}

static char *dump(json_t *j)
{
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

static void test_runtime_config(void **state)
{
	(void)state;
	struct pod_net_spec s = base();
	char *rc = dump(pod_net_spec_runtime_config(&s));
	assert_string_equal(rc, "{}");
	free(rc);

	struct pod_port_mapping ports[] = {
		{ "TCP", 80, 8080, NULL },
		{ "udp", 53, 0, NULL }, /* not published: left out */
		{ NULL, 443, 8443, "198.18.0.1" },
	};
	struct pod_bandwidth bw = { .ingress_rate = 1000000,
				    .egress_rate = 2000000,
				    .egress_burst = 4000 };
	const char *servers[] = { "198.18.0.53" };
	const char *searches[] = { "svc.cluster.local" };
	struct pod_dns dns = { servers, 1, searches, 1, NULL, 0 };
	struct pod_ip_range ranges[] = { { "198.18.64.0/18", NULL, NULL, "198.18.64.1" },
					 { "fd00:198::/64", "", "", "" } };
	s.ports = ports;
	s.n_ports = 3;
	s.bandwidth = &bw;
	s.dns = &dns;
	s.ip_ranges = ranges;
	s.n_ip_ranges = 2;
	assert_int_equal(pod_net_spec_validate(&s, NULL), 0);
	rc = dump(pod_net_spec_runtime_config(&s));
	assert_string_equal(
	    rc, "{\"bandwidth\":{\"egressBurst\":4000,\"egressRate\":2000000,\"ingressBurst\":"
		"2147483647,\"ingressRate\":1000000},"
		"\"dns\":{\"searches\":[\"svc.cluster.local\"],\"servers\":[\"198.18.0.53\"]},"
		"\"ipRanges\":[[{\"gateway\":\"198.18.64.1\",\"subnet\":\"198.18.64.0/18\"}],"
		"[{\"subnet\":\"fd00:198::/64\"}]],"
		"\"portMappings\":[{\"containerPort\":80,\"hostPort\":8080,\"protocol\":\"tcp\"},"
		"{\"containerPort\":443,\"hostIP\":\"198.18.0.1\",\"hostPort\":8443,"
		"\"protocol\":\"tcp\"}]}");
	free(rc);

	/* Nothing to say: no keys. */
	struct pod_bandwidth none = { .ingress_burst = 5 };
	struct pod_dns empty = { 0 };
	struct pod_port_mapping unpublished[] = { { "tcp", 80, 0, NULL } };
	s = base();
	s.bandwidth = &none;
	s.dns = &empty;
	s.ports = unpublished;
	s.n_ports = 1;
	rc = dump(pod_net_spec_runtime_config(&s));
	assert_string_equal(rc, "{}");
	free(rc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_bandwidth_dns_ranges),
		cmocka_unit_test(test_cni_args),
		cmocka_unit_test(test_runtime_config),
	};
	return cmocka_run_group_tests_name("netd-podspec", tests, NULL, NULL);
}
