/* runtimed's pod helpers: sysctl names (which are namespaced, how they map
 * under /proc/sys, what is refused), cgroup_parent resolution for both
 * drivers (systemd slice expansion included), and the protobuf -> JSON
 * rendering of verbose status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "common/pbjson.h"
#include "proto/cri/api.pb-c.h"
#include "runtimed/cgroup.h"
#include "runtimed/sysctl.h"

static void test_sysctl_names(void **state)
{
	(void)state;
	static const struct {
		const char *name, *path;
		enum sysctl_ns ns;
	} ok[] = {
		{ "net.ipv4.ip_forward", "net/ipv4/ip_forward", SYSCTL_NS_NET },
		{ "net/ipv4/conf/eth0.100/forwarding", "net/ipv4/conf/eth0.100/forwarding",
		  SYSCTL_NS_NET },
		{ "kernel.shmmax", "kernel/shmmax", SYSCTL_NS_IPC },
		{ "kernel.shm_rmid_forced", "kernel/shm_rmid_forced", SYSCTL_NS_IPC },
		{ "kernel.msgmnb", "kernel/msgmnb", SYSCTL_NS_IPC },
		{ "kernel.sem", "kernel/sem", SYSCTL_NS_IPC },
		{ "fs.mqueue.msg_max", "fs/mqueue/msg_max", SYSCTL_NS_IPC },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char path[SYSCTL_NAME_MAX];
		enum sysctl_ns ns;
		struct cric_err err;
		assert_int_equal(sysctl_parse(ok[i].name, "1", path, sizeof(path), &ns, &err), 0);
		assert_string_equal(path, ok[i].path);
		assert_int_equal(ns, ok[i].ns);
	}
	static const char *const bad[] = {
		"",
		"kernel.panic",
		"vm.swappiness",
		"kernel.semx",
		"kernel.shm/../panic",
		"net/../kernel/panic",
		"net/./ipv4",
		"net..ipv4",
		"net.ipv4.",
		"/net/ipv4",
		"net.ipv4 x",
		"net.ipv4.*",
		"kernel.hostname",
		"fs.file-max",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[SYSCTL_NAME_MAX];
		enum sysctl_ns ns;
		assert_int_equal(sysctl_parse(bad[i], "1", path, sizeof(path), &ns, NULL), -EINVAL);
	}
	char path[SYSCTL_NAME_MAX];
	enum sysctl_ns ns;
	struct cric_err err;
	assert_int_equal(
	    sysctl_parse("net.ipv4.ip_forward", "1\nkernel.panic=1", path, sizeof(path), &ns, &err),
	    -EINVAL);
	assert_non_null(strstr(err.msg, "control characters"));
	char longname[SYSCTL_NAME_MAX + 10];
	memset(longname, 'a', sizeof(longname) - 1);
	memcpy(longname, "net.", 4);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sysctl_parse(longname, "1", path, sizeof(path), &ns, NULL), -EINVAL);
}

static void test_cgroup_parent(void **state)
{
	(void)state;
	char out[CGROUP_PATH_MAX];
	assert_int_equal(
	    cgroup_resolve_parent("cgroupfs", "/kubepods/burstable/pod1", out, sizeof(out), NULL),
	    0);
	assert_string_equal(out, "/kubepods/burstable/pod1");
	assert_int_equal(
	    cgroup_resolve_parent("cgroupfs", "kubepods/pod2/", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "/kubepods/pod2");
	assert_int_equal(cgroup_resolve_parent("systemd", "kubepods-burstable-pod1.slice", out,
					       sizeof(out), NULL),
			 0);
	assert_string_equal(
	    out, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice");
	assert_int_equal(cgroup_resolve_parent("systemd", "machine.slice", out, sizeof(out), NULL),
			 0);
	assert_string_equal(out, "/machine.slice");

	static const char *const bad_fs[] = {
		"/", "", "/a/../b", "/a/./b", "/a//b", "/a b", "/a/\n"
	};
	for (size_t i = 0; i < sizeof(bad_fs) / sizeof(bad_fs[0]); i++)
		assert_int_equal(
		    cgroup_resolve_parent("cgroupfs", bad_fs[i], out, sizeof(out), NULL), -EINVAL);
	static const char *const bad_sd[] = { "/kubepods", "kubepods", "a--b.slice", "-a.slice",
					      "a-.slice",  ".slice",   "a/b.slice",  "../x.slice" };
	for (size_t i = 0; i < sizeof(bad_sd) / sizeof(bad_sd[0]); i++)
		assert_int_equal(
		    cgroup_resolve_parent("systemd", bad_sd[i], out, sizeof(out), NULL), -EINVAL);
}

static void test_pb_to_json(void **state)
{
	(void)state;
	Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	md.name = "web";
	md.attempt = 3;
	Runtime__V1__PodSandboxConfig__LabelsEntry l1 =
	    RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
	l1.key = "app";
	l1.value = "x";
	Runtime__V1__PodSandboxConfig__LabelsEntry *labels[] = { &l1 };
	Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
	char *servers[] = { "198.18.0.10", "198.18.0.11" };
	dns.n_servers = 2;
	dns.servers = servers;
	Runtime__V1__PortMapping pm = RUNTIME__V1__PORT_MAPPING__INIT;
	pm.protocol = RUNTIME__V1__PROTOCOL__UDP;
	pm.container_port = 53;
	Runtime__V1__PortMapping *pms[] = { &pm };
	Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	cfg.metadata = &md;
	cfg.n_labels = 1;
	cfg.labels = labels;
	cfg.dns_config = &dns;
	cfg.n_port_mappings = 1;
	cfg.port_mappings = pms;

	json_t *j = pb_to_json(&cfg.base);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(
	    s, "{\"dns_config\":{\"servers\":[\"198.18.0.10\",\"198.18.0.11\"]},\"hostname\":\"\","
	       "\"labels\":{\"app\":\"x\"},\"log_directory\":\"\",\"metadata\":{\"attempt\":3,"
	       "\"name\":\"web\",\"namespace\":\"\",\"uid\":\"\"},\"port_mappings\":[{"
	       "\"container_port\":53,\"host_ip\":\"\",\"host_port\":0,\"protocol\":\"UDP\"}]}");
	free(s);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sysctl_names),
		cmocka_unit_test(test_cgroup_parent),
		cmocka_unit_test(test_pb_to_json),
	};
	return cmocka_run_group_tests_name("runtimed-pod", tests, NULL, NULL);
}
