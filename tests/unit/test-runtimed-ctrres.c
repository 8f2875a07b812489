/* runtimed/ctrres.h: what UpdateContainerResources accepts, how an update
 * merges onto a container's resources, and the OCI form runc reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "testutil.h"

#include "common/cleanup.h"
#include "common/pbutil.h"
#include "runtimed/ctrres.h"

static void test_cpuset_syntax(void **state)
{
	(void)state;
	const char *good[] = { "0", "0-3", "0,2,4", "0-1,3,5-7", "8191" };
	const char *bad[] = { "",  "-1",   "3-1", "0,,1", "0-",   "1,0",
			      "a", "0-3a", "0 1", "8192", "0,1,", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		assert_true(ctr_cpuset_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (ctr_cpuset_valid(bad[i]))
			fail_msg("cpuset \"%s\" accepted", bad[i]);
	}
}

static void check_bad(Runtime__V1__LinuxContainerResources *r, bool v2, const char *word)
{
	struct cric_err e = { 0 };
	assert_int_equal(ctr_res_check(r, v2, &e), -EINVAL);
	if (!strstr(e.msg, word))
		fail_msg("\"%s\" does not name \"%s\"", e.msg, word);
}

static void test_check(void **state)
{
	(void)state;
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	assert_int_equal(ctr_res_check(NULL, false, NULL), 0);
	assert_int_equal(ctr_res_check(&r, false, NULL), 0);
	r.cpu_quota = -1; /* no limit */
	r.cpu_period = 100000;
	r.cpu_shares = 2;
	r.memory_limit_in_bytes = 1 << 20;
	r.oom_score_adj = -1000;
	r.cpuset_cpus = "0-1";
	assert_int_equal(ctr_res_check(&r, false, NULL), 0);

	Runtime__V1__LinuxContainerResources b = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	b.memory_limit_in_bytes = -1;
	check_bad(&b, false, "memory_limit_in_bytes");
	b = r;
	b.cpu_quota = -2;
	check_bad(&b, false, "cpu_quota");
	b = r;
	b.cpu_quota = 999;
	check_bad(&b, false, "cpu_quota");
	b = r;
	b.cpu_period = 999;
	check_bad(&b, false, "cpu_period");
	b = r;
	b.cpu_shares = -1;
	check_bad(&b, false, "cpu_shares");
	b = r;
	b.oom_score_adj = 1001;
	check_bad(&b, false, "oom_score_adj");
	b = r;
	b.memory_swap_limit_in_bytes = -1;
	check_bad(&b, false, "memory_swap");
	b = r;
	b.cpuset_mems = "0-";
	check_bad(&b, false, "cpuset_mems");

	/* unified: v2 only, keys "<controller>.<file>" */
	Runtime__V1__LinuxContainerResources__UnifiedEntry ok =
	    RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
	ok.key = "memory.high";
	ok.value = "1000000";
	Runtime__V1__LinuxContainerResources__UnifiedEntry *ents[] = { &ok };
	b = r;
	b.n_unified = 1;
	b.unified = ents;
	check_bad(&b, false, "cgroup v2");
	assert_int_equal(ctr_res_check(&b, true, NULL), 0);
	ok.key = "../memory.max";
	check_bad(&b, true, "unified key");
	ok.key = "nodot";
	check_bad(&b, true, "unified key");
}

static void test_merge_and_oci(void **state)
{
	(void)state;
	Runtime__V1__LinuxContainerResources old = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	old.cpu_period = 100000;
	old.cpu_quota = 50000;
	old.cpu_shares = 256;
	old.memory_limit_in_bytes = 64 << 20;
	old.memory_swap_limit_in_bytes = 64 << 20;
	old.cpuset_cpus = "0";
	Runtime__V1__LinuxContainerResources upd = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	upd.cpu_quota = 20000;
	upd.memory_limit_in_bytes = 128 << 20;
	upd.cpuset_cpus = "";
	upd.oom_score_adj = 500;

	_cleanup_pb_ Runtime__V1__LinuxContainerResources *m = NULL;
	assert_int_equal(ctr_res_merge(&old, &upd, &m), 0);
	assert_int_equal(m->cpu_period, 100000);
	assert_int_equal(m->cpu_quota, 20000);
	assert_int_equal(m->cpu_shares, 256);
	assert_int_equal(m->memory_limit_in_bytes, 128 << 20);
	/* No swap allowed before (swap == memory): none after either. */
	assert_int_equal(m->memory_swap_limit_in_bytes, 128 << 20);
	assert_string_equal(m->cpuset_cpus, "0");
	assert_int_equal(m->oom_score_adj, 0); /* as created: runc cannot change it */

	_cleanup_json_ json_t *oci = ctr_res_oci(m);
	assert_non_null(oci);
	json_t *cpu = json_object_get(oci, "cpu"), *mem = json_object_get(oci, "memory");
	assert_int_equal(json_integer_value(json_object_get(cpu, "quota")), 20000);
	assert_int_equal(json_integer_value(json_object_get(cpu, "period")), 100000);
	assert_int_equal(json_integer_value(json_object_get(cpu, "shares")), 256);
	assert_string_equal(json_string_value(json_object_get(cpu, "cpus")), "0");
	assert_int_equal(json_integer_value(json_object_get(mem, "limit")), 128 << 20);
	assert_int_equal(json_integer_value(json_object_get(mem, "swap")), 128 << 20);
	assert_null(json_object_get(oci, "unified"));

	/* From nothing; unified merged by key. */
	_cleanup_pb_ Runtime__V1__LinuxContainerResources *fresh = NULL;
	assert_int_equal(ctr_res_merge(NULL, &upd, &fresh), 0);
	assert_int_equal(fresh->memory_swap_limit_in_bytes, 0);
	assert_int_equal(pb_map_add(&fresh->base, "unified", "memory.high", "1"), 0);
	Runtime__V1__LinuxContainerResources__UnifiedEntry e1 =
	    RUNTIME__V1__LINUX_CONTAINER_RESOURCES__UNIFIED_ENTRY__INIT;
	e1.key = "memory.high";
	e1.value = "2";
	Runtime__V1__LinuxContainerResources__UnifiedEntry e2 = e1;
	e2.key = "pids.max";
	e2.value = "10";
	Runtime__V1__LinuxContainerResources__UnifiedEntry *ents[] = { &e1, &e2 };
	Runtime__V1__LinuxContainerResources u2 = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	u2.n_unified = 2;
	u2.unified = ents;
	_cleanup_pb_ Runtime__V1__LinuxContainerResources *m2 = NULL;
	assert_int_equal(ctr_res_merge(fresh, &u2, &m2), 0);
	assert_int_equal(m2->n_unified, 2);
	_cleanup_json_ json_t *oci2 = ctr_res_oci(m2);
	json_t *uni = json_object_get(oci2, "unified");
	assert_string_equal(json_string_value(json_object_get(uni, "memory.high")), "2");
	assert_string_equal(json_string_value(json_object_get(uni, "pids.max")), "10");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuset_syntax),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_merge_and_oci),
	};
	return cmocka_run_group_tests_name("runtimed-ctrres", tests, NULL, NULL);
}
