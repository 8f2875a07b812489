/* runtimed/records.h and the pod record: what a restart finds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "common/fsutil.h"
#include "runtimed/records.h"
#include "runtimed/sandbox-int.h"

#define ID1 "1111111111111111111111111111111111111111111111111111111111111111"
#define ID2 "2222222222222222222222222222222222222222222222222222222222222222"

struct seen {
	int n;
	char ids[4][65];
};

static void collect(void *userdata, const char *id, json_t *doc)
{
	struct seen *s = userdata;
	assert_true(s->n < 4);
	assert_string_equal(json_string_value(json_object_get(doc, "id")), id);
	snprintf(s->ids[s->n++], 65, "%s", id);
}

static void test_store(void **state)
{
	(void)state;
	char *base = tmpdir_make("records");
	char dir[PATH_MAX], p[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/a/b", base);
	/* Left by a killed write before the store opens: swept. */
	assert_int_equal(mkdir_p(dir, 0700), 0);
	write_text(tpath(p, dir, ID1 ".json.tmpAbC123"), "{\"id\":");
	struct record_store *rs = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(record_store_open(dir, "test records", &rs, &err), 0);
	assert_int_equal(access(p, F_OK), -1);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	json_t *d1 = json_pack("{s:s, s:i}", "id", ID1, "n", 1);
	json_t *d2 = json_pack("{s:s}", "id", ID2);
	assert_int_equal(record_store_save(rs, ID1, d1), 0);
	assert_int_equal(record_store_save(rs, ID2, d2), 0);
	assert_int_equal(stat(tpath(p, dir, ID1 ".json"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Only full ids name records: nothing else can be written or removed. */
	assert_int_equal(record_store_save(rs, "../../etc/x", d1), -EINVAL);
	assert_int_equal(record_store_save(rs, "abc", d1), -EINVAL);
	assert_int_equal(record_store_delete(rs, "../" ID1), -EINVAL);
	/* Unreadable records and strangers are skipped. */
	write_text(
	    tpath(p, dir, "3333333333333333333333333333333333333333333333333333333333333333.json"),
	    "{not json");
	write_text(tpath(p, dir, "README"), "hello");

	struct seen s = { 0 };
	assert_int_equal(record_store_load_all(rs, 1 << 20, collect, &s), 2);
	assert_int_equal(s.n, 2);
	assert_true((strcmp(s.ids[0], ID1) == 0 && strcmp(s.ids[1], ID2) == 0) ||
		    (strcmp(s.ids[0], ID2) == 0 && strcmp(s.ids[1], ID1) == 0));
	/* A record over the bound is unreadable too. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(record_store_load_all(rs, 8, collect, &s), 0);

	assert_int_equal(record_store_delete(rs, ID1), 0);
	assert_int_equal(record_store_delete(rs, ID1), 0); /* idempotent */
	memset(&s, 0, sizeof(s));
	assert_int_equal(record_store_load_all(rs, 1 << 20, collect, &s), 1);
	assert_string_equal(s.ids[0], ID2);
	json_decref(d1);
	json_decref(d2);
	record_store_free(rs);
	record_store_free(NULL);
	tmpdir_remove(base);
}

/* Every field a restart needs comes back from the record. */
static void test_sandbox_round_trip(void **state)
{
	(void)state;
	struct sandbox *sb = sandbox_alloc();
	assert_non_null(sb);
	snprintf(sb->id, sizeof(sb->id), "%s", ID1);
	snprintf(sb->name, sizeof(sb->name), "web");
	snprintf(sb->namespace, sizeof(sb->namespace), "default");
	snprintf(sb->uid, sizeof(sb->uid), "u-1");
	sb->attempt = 3;
	sb->state = SB_READY;
	sb->created_at = 1700000000123456789LL;
	static const uint8_t cfg[] = { 0x0a, 0x00, 0xff, 0x10 };
	sb->config = malloc(sizeof(cfg));
	memcpy(sb->config, cfg, sizeof(cfg));
	sb->config_len = sizeof(cfg);
	snprintf(sb->handler, sizeof(sb->handler), "runc");
	sb->host_network = false;
	sb->host_ipc = true;
	sb->pid_mode = 1;
	sb->net_setup = true;
	snprintf(sb->netns, sizeof(sb->netns), "/run/cric/netd/netns/%s", ID1);
	sb->ips[0] = strdup("198.18.0.5");
	sb->ips[1] = strdup("fd00::5");
	sb->cni_result = strdup("{\"cniVersion\":\"1.0.0\"}");
	snprintf(sb->ipc_pin, sizeof(sb->ipc_pin), "/x/ipc");
	snprintf(sb->uts_pin, sizeof(sb->uts_pin), "/x/uts");
	sb->infra_pid = 4242;
	sb->infra_start = 987654321ULL;
	snprintf(sb->cgroup, sizeof(sb->cgroup), "/cric/pod-%s", ID1);
	snprintf(sb->cgroup_parent, sizeof(sb->cgroup_parent), "kubepods.slice");
	sb->cgroup_created = calloc(3, sizeof(char *));
	sb->cgroup_created[0] = strdup("/cric");
	sb->cgroup_created[1] = strdup("/cric/pod-x");
	snprintf(sb->dir, sizeof(sb->dir), "/run/x/%s", ID1);
	snprintf(sb->log_directory, sizeof(sb->log_directory), "/var/log/pods/default_web_u-1");

	json_t *doc = sandbox_to_record(sb);
	assert_non_null(doc);
	struct sandbox *back = NULL;
	assert_int_equal(sandbox_from_record(doc, &back), 0);
	assert_string_equal(back->id, sb->id);
	assert_string_equal(back->name, "web");
	assert_string_equal(back->namespace, "default");
	assert_string_equal(back->uid, "u-1");
	assert_int_equal(back->attempt, 3);
	assert_int_equal(back->state, SB_READY);
	assert_true(back->created_at == sb->created_at);
	assert_int_equal(back->config_len, sizeof(cfg));
	assert_memory_equal(back->config, cfg, sizeof(cfg));
	assert_string_equal(back->handler, "runc");
	assert_false(back->host_network);
	assert_true(back->host_ipc);
	assert_int_equal(back->pid_mode, 1);
	assert_true(back->net_setup);
	assert_string_equal(back->netns, sb->netns);
	assert_string_equal(back->ips[0], "198.18.0.5");
	assert_string_equal(back->ips[1], "fd00::5");
	assert_null(back->ips[2]);
	assert_string_equal(back->cni_result, sb->cni_result);
	assert_string_equal(back->ipc_pin, "/x/ipc");
	assert_string_equal(back->uts_pin, "/x/uts");
	assert_int_equal(back->infra_pid, 4242);
	assert_true(back->infra_start == 987654321ULL);
	assert_string_equal(back->cgroup, sb->cgroup);
	assert_string_equal(back->cgroup_parent, "kubepods.slice");
	assert_string_equal(back->cgroup_created[1], "/cric/pod-x");
	assert_null(back->cgroup_created[2]);
	assert_string_equal(back->dir, sb->dir);
	assert_string_equal(back->log_directory, sb->log_directory);
	sandbox_free(back);

	/* A record written before log_directory was kept reads as none. */
	json_t *old = json_deep_copy(doc);
	json_object_del(old, "log_directory");
	assert_int_equal(sandbox_from_record(old, &back), 0);
	assert_string_equal(back->log_directory, "");
	sandbox_free(back);
	json_decref(old);

	/* A record that is not one is refused, whatever is wrong with it. */
	static const char *const spoil[] = {
		"id", "name", "config", "state", "dir", "log_directory"
	};
	for (size_t i = 0; i < sizeof(spoil) / sizeof(spoil[0]); i++) {
		json_t *bad = json_deep_copy(doc);
		json_object_set_new(bad, spoil[i], json_integer(7));
		back = (struct sandbox *)0x1;
		assert_int_equal(sandbox_from_record(bad, &back), -EINVAL);
		assert_ptr_equal(back, (struct sandbox *)0x1);
		json_decref(bad);
	}
	json_t *bad = json_deep_copy(doc);
	json_object_set_new(bad, "id", json_string("../../etc"));
	assert_int_equal(sandbox_from_record(bad, &back), -EINVAL);
	json_decref(bad);
	json_decref(doc);
	sandbox_free(sb);
}

/* netd's answers name a network namespace: runtimed takes only one pinned
 * directly in netd's pin directory (it hands it to runc and setns()). */
static void test_netns_path_check(void **state)
{
	(void)state;
	const char *pins = "/run/cric/netd/netns";
	assert_true(podnet_netns_path_ok(pins, "/run/cric/netd/netns/" ID1));
	assert_true(podnet_netns_path_ok(pins, "/run/cric/netd/netns/cni-1234"));
	static const char *const bad[] = {
		"",
		"/run/cric/netd/netns",
		"/run/cric/netd/netns/",
		"/run/cric/netd/netns/.",
		"/run/cric/netd/netns/..",
		"/run/cric/netd/netns/../../../proc/1/ns/net",
		"/run/cric/netd/netns/a/b",
		"/run/cric/netd/netnsX/a",
		"/run/cric/netd/netns//a",
		"/proc/1/ns/net",
		"/var/run/netns/x",
		"run/cric/netd/netns/a",
		"/run/cric/netd/netns/a\nb",
		"/run/cric/netd/netns/a b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (podnet_netns_path_ok(pins, bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
	/* No pin directory configured: nothing is accepted. */
	assert_false(podnet_netns_path_ok("", "/a"));
	assert_false(podnet_netns_path_ok("relative", "relative/a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_sandbox_round_trip),
		cmocka_unit_test(test_netns_path_check),
	};
	return cmocka_run_group_tests_name("runtimed-records", tests, NULL, NULL);
}
