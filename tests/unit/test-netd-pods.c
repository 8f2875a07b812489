/* netd/pods.h: pod networks end to end with real pinned namespaces and a
 * fake CNI plugin: setup, replay, teardown, status/CHECK, rollback of
 * failures, reconciliation after a crash, DEL after the namespace is gone.
 * Needs root (namespaces): skipped otherwise, a failure under CI=true. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/nspin.h"
#include "netd/netns.h"
#include "netd/pods.h"
#include "testutil.h"
#include "tests/tools/fakecni.h"

#define ID1 "1111111111111111111111111111111111111111111111111111111111111111"
#define ID2 "2222222222222222222222222222222222222222222222222222222222222222"
#define ID3 "3333333333333333333333333333333333333333333333333333333333333333"
#define ID4 "4444444444444444444444444444444444444444444444444444444444444444"

#define CONFLIST(b_extra)                                                                          \
	"{\"cniVersion\":\"1.0.0\",\"name\":\"testnet\",\"plugins\":["                             \
	"{\"type\":\"fakea\",\"addIp\":\"198.18.5.2/24\"},"                                        \
	"{\"type\":\"fakeb\",\"capabilities\":{\"portMappings\":true}" b_extra "}]}"

struct fixture {
	char *root;
	char state[PATH_MAX], run[PATH_MAX], conf[PATH_MAX], bin[PATH_MAX];
	char results[PATH_MAX], netns[PATH_MAX], userns[PATH_MAX];
	char *bins[2];
	struct cni_runtime rt;
	struct pods *pods;
};

static void write_conf(struct fixture *f, const char *content)
{
	char p[PATH_MAX];
	write_text(tpath(p, f->conf, "10-test.conflist"), content);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->root = tmpdir_make("pods");
	tpath(f->state, f->root, "state");
	tpath(f->run, f->root, "run");
	tpath(f->conf, f->root, "net.d");
	tpath(f->bin, f->root, "bin");
	tpath(f->results, f->state, "results");
	tpath(f->netns, f->run, "netns");
	tpath(f->userns, f->run, "userns");
	assert_int_equal(mkdir(f->conf, 0755), 0);
	assert_int_equal(mkdir(f->bin, 0755), 0);
	fake_cni_install(f->bin, "fakea");
	fake_cni_install(f->bin, "fakeb");
	write_conf(f, CONFLIST(""));
	f->bins[0] = f->bin;
	f->rt = (struct cni_runtime){ .bin_dirs = f->bins, .timeout_ms = 20000 };
	*state = f;
	return 0;
}

static void umount_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[PATH_MAX];
		if (e->d_name[0] != '.')
			netns_remove(tpath(p, dir, e->d_name), NULL);
	}
	if (d)
		closedir(d);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pods_free(f->pods);
	umount_all(f->netns);
	umount_all(f->userns);
	tmpdir_remove(f->root);
	free(f);
	return 0;
}

static void need_root(void)
{
	REQUIRE_ROOT("network namespaces");
}

static void open_pods(struct fixture *f)
{
	pods_free(f->pods);
	f->pods = NULL;
	struct cric_err err = { { 0 } };
	int r = pods_open(f->state, f->run, &f->rt, &f->pods, &err);
	if (r < 0)
		print_message("pods_open: %s\n", err.msg);
	assert_int_equal(r, 0);
}

static struct pod_net_spec spec_for(const char *id, const char *name)
{
	static const struct pod_port_mapping ports[] = { { "tcp", 80, 8080, NULL } };
	return (struct pod_net_spec){ .id = id,
				      .name = name,
				      .namespace_ = "default",
				      .uid = "uid-1",
				      .ports = ports,
				      .n_ports = 1 };
}

static char *seq(struct fixture *f)
{
	static char buf[1024];
	fake_cni_sequence(f->bin, buf, sizeof(buf));
	fake_cni_forget_calls(f->bin);
	return buf;
}

static bool exists(const char *dir, const char *name)
{
	char p[PATH_MAX];
	return access(tpath(p, dir, name), F_OK) == 0;
}

static bool has_record(struct fixture *f, const char *id)
{
	char name[80];
	snprintf(name, sizeof(name), "%s.json", id);
	return exists(f->results, name);
}

static struct pod_network *setup_ok(struct fixture *f, const char *id, const char *name)
{
	struct pod_net_spec s = spec_for(id, name);
	struct pod_network *n = NULL;
	struct cric_err err = { { 0 } };
	int r = pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err);
	if (r < 0)
		print_message("pods_setup: %s\n", err.msg);
	assert_int_equal(r, 0);
	return n;
}

static void test_setup_replay_teardown(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	struct pod_network *n = setup_ok(f, ID1, "web");
	assert_string_equal(seq(f), "fakea:ADD fakeb:ADD");
	char pin[PATH_MAX];
	tpath(pin, f->netns, ID1);
	assert_string_equal(n->pod_id, ID1);
	assert_string_equal(n->netns_path, pin);
	assert_true(n->netns_present);
	assert_true(netns_is_pinned(pin));
	assert_string_equal(n->ips[0], "198.18.5.2");
	assert_null(n->ips[1]);
	assert_string_equal(n->network_name, "testnet");
	assert_string_equal(n->cni_version, "1.0.0");
	assert_string_equal(n->ifname, "eth0");
	assert_non_null(strstr(n->result_json, "198.18.5.2/24"));
	assert_true(has_record(f, ID1));
	pod_network_free(n);

	/* A replay returns the same network and runs nothing. */
	n = setup_ok(f, ID1, "web");
	assert_string_equal(seq(f), "");
	assert_string_equal(n->ips[0], "198.18.5.2");
	pod_network_free(n);
	/* The same id for another pod is refused. */
	struct pod_net_spec other = spec_for(ID1, "db");
	struct cric_err err = { { 0 } };
	n = NULL;
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &other, &n, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "default/web"));
	assert_null(n);

	/* Status, with CHECK (a 1.0.0 network supports it). */
	bool checked = false;
	assert_int_equal(pods_status(f->pods, &f->rt, ID1, true, &n, &checked, &err), 0);
	assert_true(checked);
	assert_string_equal(seq(f), "fakea:CHECK fakeb:CHECK");
	assert_string_equal(n->ips[0], "198.18.5.2");
	pod_network_free(n);
	assert_int_equal(pods_status(f->pods, &f->rt, ID1, false, &n, &checked, &err), 0);
	assert_false(checked);
	assert_string_equal(seq(f), "");
	pod_network_free(n);

	/* Teardown: DEL in reverse with the cached result and runtimeConfig. */
	bool known = false;
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID1, &known, &err), 0);
	assert_true(known);
	json_t *calls = fake_cni_calls(f->bin);
	json_t *del_b = json_object_get(json_array_get(calls, 0), "conf");
	assert_non_null(strstr(json_string_value(json_object_get(
				   json_object_get(json_array_get(calls, 0), "env"), "CNI_NETNS")),
			       ID1));
	assert_non_null(json_object_get(del_b, "prevResult"));
	assert_non_null(json_object_get(json_object_get(del_b, "runtimeConfig"), "portMappings"));
	json_decref(calls);
	assert_string_equal(seq(f), "fakeb:DEL fakea:DEL");
	assert_false(netns_is_pinned(pin));
	assert_false(exists(f->netns, ID1));
	assert_false(has_record(f, ID1));

	/* Idempotent, and the pod is gone. */
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID1, &known, &err), 0);
	assert_false(known);
	assert_string_equal(seq(f), "");
	assert_int_equal(pods_status(f->pods, &f->rt, ID1, false, &n, NULL, &err), -ENOENT);
	assert_int_equal(pods_teardown(f->pods, &f->rt, "../etc", NULL, &err), -EINVAL);
	assert_int_equal(pods_status(f->pods, &f->rt, "x", false, &n, NULL, &err), -EINVAL);
}

static void test_failed_add_rolls_back(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	write_conf(f, CONFLIST(",\"fail\":\"ADD\""));
	struct pod_net_spec s = spec_for(ID2, "web");
	struct pod_network *n = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), -EIO);
	assert_null(n);
	assert_string_equal(err.msg,
			    "network \"testnet\": plugin \"fakeb\" ADD: fakeb refuses ADD: "
			    "as configured (CNI error code 7)");
	/* Rolled back: DEL of the whole chain (no result), nothing left. */
	assert_string_equal(seq(f), "fakea:ADD fakeb:ADD fakeb:DEL fakea:DEL");
	assert_false(exists(f->netns, ID2));
	assert_false(has_record(f, ID2));
	assert_int_equal(dir_count(f->netns), 0);
	assert_int_equal(dir_count(f->results), 0);

	/* Even when DEL fails too during the rollback. */
	write_conf(f, "{\"cniVersion\":\"1.0.0\",\"name\":\"testnet\",\"plugins\":["
		      "{\"type\":\"fakea\",\"fail\":\"DEL\"},"
		      "{\"type\":\"fakeb\",\"fail\":\"ADD\"}]}");
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), -EIO);
	assert_non_null(strstr(err.msg, "fakeb refuses ADD"));
	assert_string_equal(seq(f), "fakea:ADD fakeb:ADD fakeb:DEL fakea:DEL");
	assert_int_equal(dir_count(f->netns), 0);
	assert_int_equal(dir_count(f->results), 0);
}

static void test_not_ready_and_invalid(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	char p[PATH_MAX];
	assert_int_equal(unlink(tpath(p, f->conf, "10-test.conflist")), 0);
	struct pod_net_spec s = spec_for(ID3, "web");
	struct pod_network *n = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), -EAGAIN);
	assert_non_null(strstr(err.msg, "pod network not ready"));
	/* A plugin missing. */
	write_conf(f,
		   "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"nope\"}]}");
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), -EAGAIN);
	assert_non_null(strstr(err.msg, "\"nope\""));
	/* Bad input never reaches a plugin or the disk. */
	s.name = "a;b";
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), -EINVAL);
	s = spec_for("../../etc/passwd", "web");
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), -EINVAL);
	assert_string_equal(seq(f), "");
	assert_int_equal(dir_count(f->netns), 0);
	assert_int_equal(dir_count(f->results), 0);
}

static void test_teardown_failure_keeps_state(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	write_conf(f, CONFLIST(",\"fail\":\"DEL\""));
	pod_network_free(setup_ok(f, ID1, "web"));
	seq(f);
	struct cric_err err = { { 0 } };
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID1, NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "network \"testnet\": plugin \"fakeb\" DEL"));
	assert_string_equal(seq(f), "fakeb:DEL fakea:DEL");
	char pin[PATH_MAX];
	assert_true(netns_is_pinned(tpath(pin, f->netns, ID1)));
	assert_true(has_record(f, ID1));

	/* The plugin gets fixed (here: the cached config is): the retry
	 * completes. */
	char p[PATH_MAX], name[80];
	snprintf(name, sizeof(name), "%s.json", ID1);
	json_t *rec = json_load_file(tpath(p, f->results, name), 0, NULL);
	assert_non_null(rec);
	json_object_del(
	    json_array_get(json_object_get(json_object_get(rec, "network"), "plugins"), 1), "fail");
	assert_int_equal(json_save_atomic(p, rec, 0600), 0);
	json_decref(rec);
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID1, NULL, &err), 0);
	assert_false(netns_is_pinned(pin));
	assert_false(has_record(f, ID1));
}

static void test_reconcile_after_crash(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	pod_network_free(setup_ok(f, ID1, "web")); /* a pod that is up */
	pod_network_free(setup_ok(f, ID2, "web2"));
	seq(f);

	/* ID2: crashed in the middle of its setup. */
	char p[PATH_MAX], name[80];
	snprintf(name, sizeof(name), "%s.json", ID2);
	json_t *rec = json_load_file(tpath(p, f->results, name), 0, NULL);
	json_object_set_new(rec, "state", json_string("adding"));
	json_object_del(rec, "result");
	assert_int_equal(json_save_atomic(p, rec, 0600), 0);
	json_decref(rec);
	/* ID3: a pin nobody knows. */
	char pin3[PATH_MAX];
	assert_int_equal(netns_create(tpath(pin3, f->netns, ID3), NULL), 0);
	/* ID4: a record that cannot be read; and an interrupted write. */
	snprintf(name, sizeof(name), "%s.json", ID4);
	write_text(tpath(p, f->results, name), "{\"version\":");
	write_text(tpath(p, f->results, "x.json.tmpAbC123"), "{");

	open_pods(f);                                       /* netd restarts */
	assert_string_equal(seq(f), "fakeb:DEL fakea:DEL"); /* ID2 rolled back */
	assert_false(has_record(f, ID2));
	assert_false(exists(f->netns, ID2));
	assert_false(exists(f->netns, ID3));
	assert_false(exists(f->results, "x.json.tmpAbC123"));
	assert_true(has_record(f, ID4)); /* kept for its teardown */
	assert_true(has_record(f, ID1));
	char pin1[PATH_MAX];
	assert_true(netns_is_pinned(tpath(pin1, f->netns, ID1)));

	/* The surviving pod still works. */
	struct pod_network *n = NULL;
	assert_int_equal(pods_status(f->pods, &f->rt, ID1, false, &n, NULL, NULL), 0);
	assert_string_equal(n->ips[0], "198.18.5.2");
	pod_network_free(n);
	/* The unreadable one: status says so, teardown drops it. */
	struct cric_err err = { { 0 } };
	assert_int_equal(pods_status(f->pods, &f->rt, ID4, false, &n, NULL, &err), -EUCLEAN);
	bool known = false;
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID4, &known, &err), 0);
	assert_true(known);
	assert_false(has_record(f, ID4));
	assert_string_equal(seq(f), "");
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID1, NULL, &err), 0);
	assert_int_equal(dir_count(f->netns), 0);
	assert_int_equal(dir_count(f->results), 0);
}

static void test_namespace_gone(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	pod_network_free(setup_ok(f, ID1, "web"));
	seq(f);
	char pin[PATH_MAX];
	tpath(pin, f->netns, ID1);
	/* What a reboot does to /run. */
	assert_int_equal(netns_remove(pin, NULL), 0);
	open_pods(f);
	struct pod_network *n = NULL;
	assert_int_equal(pods_status(f->pods, &f->rt, ID1, false, &n, NULL, NULL), 0);
	assert_false(n->netns_present);
	pod_network_free(n);
	struct cric_err err = { { 0 } };
	assert_int_equal(pods_status(f->pods, &f->rt, ID1, true, &n, NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "gone"));
	/* DEL still runs, without a namespace. */
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID1, NULL, &err), 0);
	json_t *calls = fake_cni_calls(f->bin);
	assert_int_equal(json_array_size(calls), 2);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_array_get(calls, 0), "env"), "CNI_NETNS")),
			    "");
	json_decref(calls);
	assert_false(has_record(f, ID1));
}

struct worker {
	struct fixture *f;
	const char *id;
	int rounds;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->rounds; i++) {
		struct pod_net_spec s = spec_for(w->id, "web");
		struct pod_network *n = NULL;
		if (pods_setup(w->f->pods, &w->f->rt, w->f->conf, &s, &n, NULL) < 0)
			w->failures++;
		pod_network_free(n);
		if (pods_teardown(w->f->pods, &w->f->rt, w->id, NULL, NULL) < 0)
			w->failures++;
	}
	return NULL;
}

static void test_parallel_calls(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	/* Two pods, two workers each: one pod's calls are serialised, the
	 * pods' calls interleave. Whatever the order, nothing is left. */
	struct worker w[4] = {
		{ f, ID1, 3, 0 }, { f, ID1, 3, 0 }, { f, ID2, 3, 0 }, { f, ID2, 3, 0 }
	};
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	/* Never an ADD on a pod that was already added (the CNI rule). */
	json_t *calls = fake_cni_calls(f->bin);
	const char *ids[] = { ID1, ID2 };
	for (size_t k = 0; k < 2; k++) {
		int added = 0;
		size_t i;
		json_t *c;
		json_array_foreach (calls, i, c) {
			const char *cmd = json_string_value(json_object_get(c, "cmd"));
			const char *plugin = json_string_value(json_object_get(c, "plugin"));
			const char *cid = json_string_value(
			    json_object_get(json_object_get(c, "env"), "CNI_CONTAINERID"));
			if (strcmp(cid, ids[k]) != 0 || strcmp(plugin, "fakea") != 0)
				continue;
			if (strcmp(cmd, "ADD") == 0)
				assert_int_equal(added++, 0);
			else if (strcmp(cmd, "DEL") == 0)
				added = 0;
		}
		assert_int_equal(added, 0);
	}
	json_decref(calls);
	assert_int_equal(dir_count(f->netns), 0);
	assert_int_equal(dir_count(f->results), 0);
}

static ino_t ino_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

/* A pod of its own user namespace: netd pins it beside the network
 * namespace, which it owns; a replay, a restart and teardown keep both
 * pins together, and an orphan one goes at start. */
static void test_userns_pod(void **state)
{
	struct fixture *f = *state;
	need_root();
	open_pods(f);
	const struct pod_userns u = { .uid_host_id = 1u << 20,
				      .gid_host_id = 2u << 20,
				      .length = 65536 };
	struct pod_net_spec s = spec_for(ID1, "web");
	s.userns = &u;
	struct pod_network *n = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), 0);
	char upin[PATH_MAX], npin[PATH_MAX];
	tpath(upin, f->userns, ID1);
	tpath(npin, f->netns, ID1);
	assert_string_equal(n->userns_path, upin);
	assert_true(nspin_is_pinned(upin, CLONE_NEWUSER));
	int fd = open(npin, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	int owner = ioctl(fd, NS_GET_USERNS);
	assert_true(owner >= 0);
	struct stat st;
	assert_int_equal(fstat(owner, &st), 0);
	assert_true(st.st_ino == ino_of(upin));
	close(owner);
	close(fd);
	pod_network_free(n);
	/* The replay and a restart answer the same pins. */
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), 0);
	assert_string_equal(n->userns_path, upin);
	pod_network_free(n);
	/* An orphan pair (a crash before the record) goes at start. */
	char orphan_u[PATH_MAX], orphan_n[PATH_MAX];
	assert_int_equal(netns_create_userns(tpath(orphan_u, f->userns, ID3),
					     tpath(orphan_n, f->netns, ID3), &u, NULL),
			 0);
	open_pods(f);
	assert_false(exists(f->userns, ID3));
	assert_false(exists(f->netns, ID3));
	assert_int_equal(pods_status(f->pods, &f->rt, ID1, false, &n, NULL, &err), 0);
	assert_string_equal(n->userns_path, upin);
	assert_true(n->netns_present);
	pod_network_free(n);
	/* A pod without one answers "". */
	pod_network_free((n = setup_ok(f, ID2, "db")));
	assert_int_equal(pods_status(f->pods, &f->rt, ID2, false, &n, NULL, &err), 0);
	assert_string_equal(n->userns_path, "");
	pod_network_free(n);
	/* A bad mapping is refused naming it, nothing made. */
	const struct pod_userns bad = { .uid_host_id = 0, .gid_host_id = 1, .length = 65536 };
	s = spec_for(ID4, "bad");
	s.userns = &bad;
	assert_int_equal(pods_setup(f->pods, &f->rt, f->conf, &s, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "userns"));
	assert_false(exists(f->userns, ID4));
	seq(f);
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID1, NULL, &err), 0);
	assert_int_equal(pods_teardown(f->pods, &f->rt, ID2, NULL, &err), 0);
	assert_int_equal(dir_count(f->userns), 0);
	assert_int_equal(dir_count(f->netns), 0);
	assert_int_equal(dir_count(f->results), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_setup_replay_teardown), T(test_failed_add_rolls_back),
		T(test_not_ready_and_invalid), T(test_teardown_failure_keeps_state),
		T(test_reconcile_after_crash), T(test_namespace_gone),
		T(test_parallel_calls),        T(test_userns_pod),
	};
#undef T
	log_set_level(LOG_WARNING); /* what pods.c reports as going wrong */
	return cmocka_run_group_tests_name("netd-pods", tests, NULL, NULL);
}
