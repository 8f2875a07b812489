/* runtimed's pod helpers: sysctl names (which are namespaced, how they map
 * under /proc/sys, what is refused), cgroup_parent resolution for both
 * drivers (systemd slice expansion included), pod cgroups created, limited
 * and removed in the host's real hierarchies (v1 and, where mounted, v2
 * controller delegation), and the protobuf -> JSON rendering of verbose
 * status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "testutil.h"

#include "common/fsutil.h"
#include "common/macro.h"
#include "common/pbjson.h"
#include "proto/cri/api.pb-c.h"
#include "runtimed/cgroup-ops.h"
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

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *slurp(const char *dir, const char *file)
{
	_cleanup_free_ char *path = path_join(dir, file);
	char *buf = NULL;
	size_t n;
	return path && read_file(path, 4096, &buf, &n) == 0 ? buf : NULL;
}

static const struct cgroup_write *find_write(const struct cgroup_write *w, size_t n,
					     const char *file)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w[i].file, file) == 0)
			return &w[i];
	return NULL;
}

/* Each version's control files for the same limits. */
static void test_cgroup_ops_files(void **state)
{
	(void)state;
	struct cgroup_limits l = { .cpu_shares = 1024,
				   .cpu_quota = 50000,
				   .cpu_period = 200000,
				   .memory_limit = 64 << 20,
				   .cpuset_cpus = "0-1",
				   .cpuset_mems = "0" };
	struct cgroup_write w[CGROUP_MAX_WRITES];
	size_t n = cgroup_v1_ops.limit_files(&l, w, ARRAY_SIZE(w));
	assert_int_equal(n, 6);
	assert_string_equal(find_write(w, n, "cpu.shares")->value, "1024");
	assert_string_equal(find_write(w, n, "cpu.cfs_period_us")->value, "200000");
	assert_string_equal(find_write(w, n, "cpu.cfs_quota_us")->value, "50000");
	assert_string_equal(find_write(w, n, "memory.limit_in_bytes")->value, "67108864");
	assert_string_equal(find_write(w, n, "cpuset.cpus")->value, "0-1");
	assert_null(find_write(w, n, "cpu.max"));

	n = cgroup_v2_ops.limit_files(&l, w, ARRAY_SIZE(w));
	assert_int_equal(n, 5);
	/* 1 + (1024 - 2) * 9999 / 262142 = 39, the kubelet's mapping */
	assert_string_equal(find_write(w, n, "cpu.weight")->value, "39");
	assert_string_equal(find_write(w, n, "cpu.max")->value, "50000 200000");
	assert_string_equal(find_write(w, n, "memory.max")->value, "67108864");
	assert_null(find_write(w, n, "cpu.shares"));

	/* Extremes of the weight, a quota with the default period, nothing set. */
	struct cgroup_limits big = { .cpu_shares = 262144, .cpu_quota = 1000 };
	n = cgroup_v2_ops.limit_files(&big, w, ARRAY_SIZE(w));
	assert_string_equal(find_write(w, n, "cpu.weight")->value, "10000");
	assert_string_equal(find_write(w, n, "cpu.max")->value, "1000 100000");
	struct cgroup_limits none = { 0 };
	assert_int_equal(cgroup_v1_ops.limit_files(&none, w, ARRAY_SIZE(w)), 0);
	assert_int_equal(cgroup_v2_ops.limit_files(&none, w, ARRAY_SIZE(w)), 0);
	/* Bounded by max. */
	assert_int_equal(cgroup_v1_ops.limit_files(&l, w, 2), 2);
}

/* Real cgroups: cgroup_create makes the whole path in every hierarchy and
 * lists what it made; on cgroup v2 it enables the parent's controllers
 * down the path (here only hugetlb is free for v2 on a hybrid host, which
 * is enough to see delegation); limits land in v1 files; removal removes
 * exactly what was made and leaves a cgroup with a process in it. */
static void test_cgroup_real(void **state)
{
	(void)state;
	char *const *h = cgroup_hierarchies();
	REQUIRE_ROOT("cgroups");
	REQUIRE(h[0], "no cgroup hierarchy is mounted");
	char top[64], pod[96];
	snprintf(top, sizeof(top), "/cric-unit-%d", (int)getpid());
	snprintf(pod, sizeof(pod), "%s/pod", top);
	char **made = NULL;
	struct cric_err err = { 0 };
	assert_int_equal(cgroup_create(pod, &made, &err), 0);
	assert_non_null(made);
	assert_string_equal(made[0], top);
	assert_string_equal(made[1], pod);
	assert_null(made[2]);
	assert_true(cgroup_exists(pod));

	char dir[4096];
	bool saw_memory = false;
	struct cgroup_limits l = { .memory_limit = 64 << 20, .cpu_shares = 512 };
	assert_int_equal(cgroup_apply(pod, &l, &err), 0);
	for (size_t i = 0; h[i]; i++) {
		snprintf(dir, sizeof(dir), "%s%s", h[i], pod);
		assert_true(is_dir(dir));
		char *v = slurp(dir, "memory.limit_in_bytes");
		if (v) {
			saw_memory = true;
			assert_int_equal(strtoll(v, NULL, 10), 64 << 20);
			free(v);
		}
		struct statfs sf;
		assert_int_equal(statfs(h[i], &sf), 0);
		if (sf.f_type != CGROUP2_SUPER_MAGIC)
			continue;
		/* Every controller the root offers reaches the pod. */
		_cleanup_free_ char *root_has = slurp(h[i], "cgroup.controllers");
		_cleanup_free_ char *pod_has = slurp(dir, "cgroup.controllers");
		assert_non_null(root_has);
		assert_non_null(pod_has);
		for (char *save = NULL, *c = strtok_r(root_has, " \n", &save); c;
		     c = strtok_r(NULL, " \n", &save))
			assert_non_null(strstr(pod_has, c));
		v = slurp(dir, "memory.max");
		if (v) {
			saw_memory = true;
			assert_int_equal(strtoll(v, NULL, 10), 64 << 20);
			free(v);
		}
	}
	if (!saw_memory)
		print_message("no memory controller mounted: limit not checked\n");

	/* A process in the pod cgroup keeps it (and its parent). */
	snprintf(dir, sizeof(dir), "%s%s", h[0], pod);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
		pause();
		_exit(0);
	}
	char pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)child);
	char procs[4200];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	FILE *f = fopen(procs, "we");
	assert_non_null(f);
	fputs(pidstr, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cgroup_remove_created(made, &err), 0);
	assert_true(is_dir(dir));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(cgroup_remove_created(made, &err), 0);
	for (size_t i = 0; h[i]; i++) {
		snprintf(dir, sizeof(dir), "%s%s", h[i], top);
		assert_false(is_dir(dir));
	}
	for (size_t i = 0; made[i]; i++)
		free(made[i]);
	free(made);
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
		cmocka_unit_test(test_sysctl_names), cmocka_unit_test(test_cgroup_parent),
		cmocka_unit_test(test_cgroup_real),  cmocka_unit_test(test_cgroup_ops_files),
		cmocka_unit_test(test_pb_to_json),
	};
	return cmocka_run_group_tests_name("runtimed-pod", tests, NULL, NULL);
}
