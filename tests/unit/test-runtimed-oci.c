/* runtimed/oci.h: runc's error extraction from many threads at once, and the
 * oom_score_adj clamp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>

#include "testutil.h"

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/macro.h"
#include "runtimed/oci.h"

#define N_THREADS 16
#define ROUNDS    300

struct reader {
	pthread_t t;
	char path[PATH_MAX];
	char want[64];
	int wrong;
};

static void *read_errors(void *arg)
{
	struct reader *r = arg;
	for (int i = 0; i < ROUNDS; i++) {
		char buf[256];
		oci_last_error(r->path, "fallback", buf, sizeof(buf));
		if (strcmp(buf, r->want) != 0)
			r->wrong++;
	}
	return NULL;
}

/* Each runc log has its own last error: 16 threads (runtimed's workers)
 * reading theirs at once each get exactly theirs. With strtok(3), which
 * keeps its place in one static pointer, they read each other's lines. */
static void test_last_error_is_thread_safe(void **state)
{
	(void)state;
	char *dir = tmpdir_make("oci");
	struct reader rd[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		snprintf(rd[i].path, sizeof(rd[i].path), "%s/runc-%d.log", dir, i);
		snprintf(rd[i].want, sizeof(rd[i].want), "container %d: exec failed", i);
		rd[i].wrong = 0;
		/* Many lines, so that a shared tokenizer is caught mid-file. */
		size_t cap = 64 * 1024, len = 0;
		char *text = malloc(cap);
		assert_non_null(text);
		for (int k = 0; k < 200; k++)
			len += (size_t)snprintf(text + len, cap - len,
						"{\"level\":\"info\",\"msg\":\"step %d of %d\"}\n",
						k, i);
		len += (size_t)snprintf(text + len, cap - len,
					"{\"level\":\"error\",\"msg\":\"%s\"}\n"
					"{\"level\":\"info\",\"msg\":\"bye\"}\n",
					rd[i].want);
		write_text(rd[i].path, text);
		free(text);
	}
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&rd[i].t, NULL, read_errors, &rd[i]), 0);
	int wrong = 0;
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(rd[i].t, NULL);
		wrong += rd[i].wrong;
	}
	if (wrong)
		fail_msg("%d of %d reads returned another log's error", wrong, N_THREADS * ROUNDS);

	char buf[64];
	oci_last_error(NULL, "no log", buf, sizeof(buf));
	assert_string_equal(buf, "no log");
	tmpdir_remove(dir);
}

static void test_oom_score_adj_clamp(void **state)
{
	(void)state;
	_cleanup_free_ char *own_s = NULL;
	size_t len;
	assert_int_equal(read_file("/proc/self/oom_score_adj", 64, &own_s, &len), 0);
	int own = atoi(own_s);
	_cleanup_cap_ cap_t caps = cap_get_proc();
	cap_flag_value_t v = CAP_CLEAR;
	assert_int_equal(cap_get_flag(caps, CAP_SYS_RESOURCE, CAP_EFFECTIVE, &v), 0);
	int floor = v == CAP_SET ? -1000 : own;

	assert_int_equal(oci_oom_score_adj(-998), -998 < floor ? floor : -998);
	assert_int_equal(oci_oom_score_adj(-5000), floor);
	assert_int_equal(oci_oom_score_adj(500 > floor ? 500 : floor), 500 > floor ? 500 : floor);
	assert_int_equal(oci_oom_score_adj(5000), 1000);
}

/* Id-mapped mounts from `runc features`: the JSON of runc 1.1 (none) and
 * 1.2 (linux.mountExtensions.idmap), and the host's real runc, whose
 * answer must match its version. */
static void test_features(void **state)
{
	(void)state;
	json_t *f = json_loads("{\"ociVersionMax\": \"1.0.2-dev\", \"linux\": "
			       "{\"namespaces\": [\"user\"]}}",
			       0, NULL);
	assert_false(oci_features_idmap(f));
	json_decref(f);
	f = json_loads("{\"linux\": {\"mountExtensions\": {\"idmap\": {\"enabled\": true}}}}", 0,
		       NULL);
	assert_true(oci_features_idmap(f));
	json_decref(f);
	assert_false(oci_features_idmap(NULL));
	f = json_loads("{\"linux\": {\"namespaces\": [\"pid\", \"user\"]}}", 0, NULL);
	assert_true(oci_features_userns(f));
	json_decref(f);
	f = json_loads("{\"linux\": {\"namespaces\": [\"pid\", 7]}}", 0, NULL);
	assert_false(oci_features_userns(f));
	json_decref(f);
	assert_false(oci_features_userns(NULL));

	struct oci_handler h = { .name = "runc", .path = "/usr/sbin/runc" };
	if (access(h.path, X_OK) != 0)
		skip();
	struct cric_err err = { { 0 } };
	h.idmap_mounts = true;
	assert_int_equal(oci_detect_features(&h, &err), 0);
	FILE *v = popen("/usr/sbin/runc --version", "r");
	assert_non_null(v);
	int major = 0, minor = 0;
	assert_int_equal(fscanf(v, "runc version %d.%d", &major, &minor), 2);
	pclose(v);
	assert_int_equal(h.idmap_mounts, major > 1 || (major == 1 && minor >= 2));
	assert_true(h.userns); /* every runc since 1.0 */

	struct oci_handler bad = { .name = "x", .path = "/bin/false" };
	assert_true(oci_detect_features(&bad, &err) < 0);
	assert_false(bad.idmap_mounts);
	assert_false(bad.userns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_last_error_is_thread_safe),
		cmocka_unit_test(test_oom_score_adj_clamp),
		cmocka_unit_test(test_features),
	};
	return cmocka_run_group_tests_name("runtimed-oci", tests, NULL, NULL);
}
