/* common/config.h: defaults, --root, main file, drop-ins, type checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/fsutil.h"
#include "testutil.h"

#define CFG_SENTINEL ((struct cric_config *)0x1)

/* Each test gets a fresh root directory. */
static int setup_root(void **state)
{
	*state = tmpdir_make("config");
	return 0;
}

static int teardown_root(void **state)
{
	tmpdir_remove(*state);
	return 0;
}

/* Write <root>/<rel> (creating parents). */
static void put(const char *root, const char *rel, const char *content)
{
	char p[PATH_MAX];
	tpath(p, root, rel);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	assert_int_equal(mkdir_p(p, 0755), 0);
	*slash = '/';
	write_text(p, content);
}

static char *under(const char *root, const char *rel)
{
	char *s = NULL;
	assert_true(asprintf(&s, "%s%s", root, rel) > 0);
	return s;
}

static void assert_under(const char *root, const char *path, const char *rel)
{
	char *want = under(root, rel);
	assert_string_equal(path, want);
	free(want);
}

static struct cric_config *load_ok(const char *root, const char *file)
{
	struct cric_config *c = NULL;
	struct cric_err err = { { 0 } };
	int r = config_load(root, file, &c, &err);
	if (r != 0)
		print_message("config_load: %d %s\n", r, err.msg);
	assert_int_equal(r, 0);
	assert_non_null(c);
	return c;
}

/* Load a main file with this content; expect failure r with every one of the
 * NULL-terminated needles in the message. */
static void load_fails(const char *root, const char *content, int want, ...)
{
	put(root, "etc/cric/cric.json", content);
	struct cric_config *c = CFG_SENTINEL;
	struct cric_err err = { { 0 } };
	int r = config_load(root, NULL, &c, &err);
	if (r != want)
		print_message("content %s: r=%d msg=%s\n", content, r, err.msg);
	assert_int_equal(r, want);
	assert_ptr_equal(c, CFG_SENTINEL);
	va_list ap;
	va_start(ap, want);
	for (const char *needle; (needle = va_arg(ap, const char *));) {
		if (!strstr(err.msg, needle))
			print_message("content %s: \"%s\" not in \"%s\"\n", content, needle,
				      err.msg);
		assert_non_null(strstr(err.msg, needle));
	}
	va_end(ap);
}

/* ---- defaults ---- */

static void check_builtin_values(const struct cric_config *c)
{
	assert_string_equal(c->log_level, "info");
	assert_string_equal(c->gateway_user, "cric-gateway");
	assert_string_equal(c->imaged_user, "cric-imaged");
	assert_string_equal(c->group, "cric");
	assert_int_equal(c->workers, 16);
	assert_int_equal(c->max_request_seconds, 600);
	assert_string_equal(c->cgroup_manager, "cgroupfs");
	assert_true(json_is_object(c->doc));
}

static void test_defaults_without_root(void **state)
{
	(void)state;
	REQUIRE(access("/etc/cric", F_OK) != 0,
		"/etc/cric exists here, its files would change the defaults");
	static const char *const roots[] = { NULL, "", "/" };
	for (size_t i = 0; i < 3; i++) {
		struct cric_config *c = load_ok(roots[i], NULL);
		assert_string_equal(c->root, roots[i] ? roots[i] : "");
		assert_string_equal(c->config_file, "/etc/cric/cric.json");
		assert_string_equal(c->state_dir, "/var/lib/cric");
		assert_string_equal(c->run_dir, "/run/cric");
		assert_string_equal(c->ipc_dir, "/run/cric/ipc");
		assert_string_equal(c->cri_socket, "/run/cric/cric.sock");
		assert_string_equal(c->cni_conf_dir, "/etc/cni/net.d");
		assert_string_equal(c->cni_bin_dirs[0], "/usr/lib/cni");
		assert_string_equal(c->cni_bin_dirs[1], "/opt/cni/bin");
		assert_null(c->cni_bin_dirs[2]);
		check_builtin_values(c);
		char *url = config_ipc_url(c, "runtimed");
		assert_string_equal(url, "ipc:///run/cric/ipc/runtimed.sock");
		free(url);
		assert_null(config_free(c));
	}
}

static void test_defaults_with_root(void **state)
{
	const char *root = *state;
	/* With and without a trailing slash on --root. */
	for (int slash = 0; slash < 2; slash++) {
		char r[PATH_MAX];
		snprintf(r, sizeof(r), "%s%s", root, slash ? "/" : "");
		struct cric_config *c = load_ok(r, NULL);
		assert_string_equal(c->root, r);
		assert_under(root, c->config_file, "/etc/cric/cric.json");
		assert_under(root, c->state_dir, "/var/lib/cric");
		assert_under(root, c->run_dir, "/run/cric");
		assert_under(root, c->ipc_dir, "/run/cric/ipc");
		assert_under(root, c->cri_socket, "/run/cric/cric.sock");
		assert_under(root, c->cni_conf_dir, "/etc/cni/net.d");
		check_builtin_values(c);
		char *url = config_ipc_url(c, "netd");
		char *want = NULL;
		assert_true(asprintf(&want, "ipc://%s/run/cric/ipc/netd.sock", root) > 0);
		assert_string_equal(url, want);
		free(want);
		free(url);
		config_free(c);
	}
}

/* config.h: under --root the suite's own paths move, but the CNI plugin bin
 * dirs stay the system's (plugins are installed binaries, not suite state). */
static void test_defaults_with_root_bin_dirs(void **state)
{
	const char *root = *state;
	struct cric_config *c = load_ok(root, NULL);
	assert_non_null(c->cni_bin_dirs[0]);
	assert_string_equal(c->cni_bin_dirs[0], "/usr/lib/cni");
	assert_non_null(c->cni_bin_dirs[1]);
	assert_string_equal(c->cni_bin_dirs[1], "/opt/cni/bin");
	assert_null(c->cni_bin_dirs[2]);
	config_free(c);
}

static void test_config_free_null(void **state)
{
	(void)state;
	assert_null(config_free(NULL));
}

/* ---- merging ---- */

static void test_main_file_merge(void **state)
{
	const char *root = *state;
	char conf[PATH_MAX];
	snprintf(conf, sizeof(conf), "%s/cni-conf", root);
	char *content = NULL;
	assert_true(asprintf(&content,
			     "{\"workers\": 4, \"log_level\": \"debug\", \"imaged_user\": \"1234\","
			     " \"cgroup_manager\": \"systemd\", \"max_request_seconds\": 30,"
			     " \"cni\": {\"conf_dir\": \"%s\"},"
			     " \"imaged\": {\"registry_mirrors\": [\"m\"]}}",
			     conf) > 0);
	put(root, "etc/cric/cric.json", content);
	free(content);

	struct cric_config *c = load_ok(root, NULL);
	assert_int_equal(c->workers, 4);
	assert_string_equal(c->log_level, "debug");
	assert_int_equal(c->imaged_uid, 1234);
	assert_string_equal(c->cgroup_manager, "systemd");
	assert_int_equal(c->max_request_seconds, 30);
	assert_string_equal(c->cni_conf_dir, conf);
	/* cni merged key by key: bin_dirs still the default. */
	assert_string_equal(c->cni_bin_dirs[0], "/usr/lib/cni");
	/* Untouched keys keep their defaults. */
	assert_under(root, c->state_dir, "/var/lib/cric");
	/* Daemon sections stay in doc. */
	json_t *m = json_object_get(json_object_get(c->doc, "imaged"), "registry_mirrors");
	assert_true(json_is_array(m));
	assert_string_equal(json_string_value(json_array_get(m, 0)), "m");
	config_free(c);
}

static void test_dropins_lexical_order(void **state)
{
	const char *root = *state;
	put(root, "etc/cric/cric.json",
	    "{\"workers\": 2, \"imaged\": {\"a\": 0, \"keep\": true, \"deep\": {\"x\": 1}}}");
	/* Created out of order, so directory order is unlikely to be lexical. */
	put(root, "etc/cric/cric.d/20-b.json",
	    "{\"workers\": 8, \"imaged\": {\"b\": 2, \"deep\": {\"y\": 2}}}");
	put(root, "etc/cric/cric.d/10-a.json",
	    "{\"workers\": 4, \"max_request_seconds\": 30, \"imaged\": {\"a\": 1, \"b\": 1}}");
	put(root, "etc/cric/cric.d/100-c.json", "{\"log_level\": \"notice\", \"workers\": 6}");
	/* Not drop-ins: other suffixes and hidden files. */
	put(root, "etc/cric/cric.d/30-c.conf", "{\"workers\": 99}");
	put(root, "etc/cric/cric.d/40-d.json.bak", "{\"workers\": 98}");
	put(root, "etc/cric/cric.d/.50-hidden.json", "{\"workers\": 97}");
	put(root, "etc/cric/cric.d/json", "{\"workers\": 96}");

	struct cric_config *c = load_ok(root, NULL);
	/* "100-c" < "10-a" < "20-b" in byte order: 20-b wins. */
	assert_int_equal(c->workers, 8);
	assert_int_equal(c->max_request_seconds, 30);
	assert_string_equal(c->log_level, "notice");
	json_t *im = json_object_get(c->doc, "imaged");
	assert_int_equal(json_integer_value(json_object_get(im, "a")), 1);
	assert_int_equal(json_integer_value(json_object_get(im, "b")), 2);
	assert_true(json_is_true(json_object_get(im, "keep")));
	json_t *deep = json_object_get(im, "deep");
	assert_int_equal(json_integer_value(json_object_get(deep, "x")), 1);
	assert_int_equal(json_integer_value(json_object_get(deep, "y")), 2);
	config_free(c);
}

static void test_dropins_without_main_file(void **state)
{
	const char *root = *state;
	put(root, "etc/cric/cric.d/50-only.json", "{\"workers\": 3}");
	struct cric_config *c = load_ok(root, NULL);
	assert_int_equal(c->workers, 3);
	config_free(c);
}

static void test_explicit_config_and_its_dropins(void **state)
{
	const char *root = *state;
	char file[PATH_MAX];
	put(root, "elsewhere/my.json", "{\"workers\": 5}");
	put(root, "elsewhere/cric.d/1.json", "{\"max_request_seconds\": 7}");
	/* The default location is not read when --config names another file. */
	put(root, "etc/cric/cric.json", "{\"workers\": 99, \"log_level\": \"error\"}");
	struct cric_config *c = load_ok(root, tpath(file, root, "elsewhere/my.json"));
	assert_string_equal(c->config_file, file);
	assert_int_equal(c->workers, 5);
	assert_int_equal(c->max_request_seconds, 7);
	assert_string_equal(c->log_level, "info");
	config_free(c);

	/* A relative --config: drop-ins beside it, in ./cric.d. */
	char cwd[PATH_MAX], dir[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tpath(dir, root, "elsewhere")), 0);
	c = load_ok(NULL, "my.json");
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(c->workers, 5);
	assert_int_equal(c->max_request_seconds, 7);
	config_free(c);
}

static void test_explicit_config_missing(void **state)
{
	const char *root = *state;
	char file[PATH_MAX];
	struct cric_config *c = CFG_SENTINEL;
	struct cric_err err = { { 0 } };
	assert_int_equal(config_load(root, tpath(file, root, "nope.json"), &c, &err), -ENOENT);
	assert_ptr_equal(c, CFG_SENTINEL);
	assert_non_null(strstr(err.msg, file));
	/* The default file, by contrast, is optional (see the defaults tests). */
}

static void test_bad_files(void **state)
{
	const char *root = *state;
	char p[PATH_MAX];
	/* Main file: syntax error, duplicate key, not an object. */
	load_fails(root, "{\"workers\": ", -EBADMSG, "cric.json", "line", NULL);
	load_fails(root, "{\"workers\": 1, \"workers\": 2}", -EBADMSG, "cric.json", NULL);
	load_fails(root, "[1, 2]", -EINVAL, "cric.json", "object", NULL);
	load_fails(root, "\"x\"", -EBADMSG, "cric.json", NULL);
	load_fails(root, "", -EBADMSG, "cric.json", NULL);

	/* A drop-in that is broken fails the load and is named. */
	put(root, "etc/cric/cric.json", "{}");
	put(root, "etc/cric/cric.d/10-ok.json", "{\"workers\": 3}");
	put(root, "etc/cric/cric.d/20-bad.json", "{oops}");
	struct cric_config *c = CFG_SENTINEL;
	struct cric_err err = { { 0 } };
	assert_int_equal(config_load(root, NULL, &c, &err), -EBADMSG);
	assert_ptr_equal(c, CFG_SENTINEL);
	assert_non_null(strstr(err.msg, "20-bad.json"));
	put(root, "etc/cric/cric.d/20-bad.json", "[]");
	assert_int_equal(config_load(root, NULL, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "20-bad.json"));
	unlink(tpath(p, root, "etc/cric/cric.d/20-bad.json"));

	/* A directory where the main file should be. */
	unlink(tpath(p, root, "etc/cric/cric.json"));
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(config_load(root, NULL, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cric.json"));
	assert_int_equal(rmdir(p), 0);

	/* Over the 1 MiB bound. */
	size_t n = 1024 * 1024 + 16;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	write_text(p, big);
	free(big);
	assert_int_equal(config_load(root, NULL, &c, &err), -EFBIG);
	assert_ptr_equal(c, CFG_SENTINEL);

	/* Nesting deeper than the parser allows. */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 16);
	assert_non_null(deep);
	strcpy(deep, "{\"imaged\":");
	size_t k = strlen(deep);
	for (size_t i = 0; i < depth; i++)
		deep[k++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[k++] = ']';
	deep[k++] = '}';
	deep[k] = '\0';
	write_text(p, deep);
	free(deep);
	assert_int_equal(config_load(root, NULL, &c, &err), -EBADMSG);
	assert_ptr_equal(c, CFG_SENTINEL);
}

static void test_too_many_dropins(void **state)
{
	const char *root = *state;
	char rel[64];
	for (int i = 0; i < 257; i++) {
		snprintf(rel, sizeof(rel), "etc/cric/cric.d/%03d.json", i);
		put(root, rel, "{}");
	}
	struct cric_config *c = CFG_SENTINEL;
	struct cric_err err = { { 0 } };
	assert_int_equal(config_load(root, NULL, &c, &err), -E2BIG);
	assert_ptr_equal(c, CFG_SENTINEL);
	assert_non_null(strstr(err.msg, "cric.d"));
	/* 256 is fine. */
	char p[PATH_MAX];
	assert_int_equal(unlink(tpath(p, root, "etc/cric/cric.d/256.json")), 0);
	c = load_ok(root, NULL);
	config_free(c);
}

/* ---- type checks ---- */

static void test_wrong_types(void **state)
{
	const char *root = *state;
	static const struct {
		const char *json, *key;
	} cases[] = {
		{ "{\"state_dir\": 5}", "state_dir" },
		{ "{\"run_dir\": null}", "run_dir" },
		{ "{\"ipc_dir\": []}", "ipc_dir" },
		{ "{\"cri_socket\": {}}", "cri_socket" },
		{ "{\"log_level\": 1}", "log_level" },
		{ "{\"gateway_user\": true}", "gateway_user" },
		{ "{\"imaged_user\": 7}", "imaged_user" },
		{ "{\"group\": []}", "group" },
		{ "{\"cgroup_manager\": 0}", "cgroup_manager" },
		{ "{\"workers\": \"4\"}", "workers" },
		{ "{\"workers\": 4.0}", "workers" },
		{ "{\"workers\": 0}", "workers" },
		{ "{\"workers\": 257}", "workers" },
		{ "{\"workers\": -1}", "workers" },
		{ "{\"workers\": 4294967297}", "workers" },
		{ "{\"workers\": null}", "workers" },
		{ "{\"max_request_seconds\": 0}", "max_request_seconds" },
		{ "{\"max_request_seconds\": 86401}", "max_request_seconds" },
		{ "{\"max_request_seconds\": 1e3}", "max_request_seconds" },
		{ "{\"max_request_seconds\": true}", "max_request_seconds" },
		{ "{\"cni\": \"x\"}", "cni" },
		{ "{\"cni\": null}", "cni" },
		{ "{\"cni\": {\"conf_dir\": 1}}", "conf_dir" },
		{ "{\"cni\": {\"bin_dirs\": \"/opt/cni/bin\"}}", "bin_dirs" },
		{ "{\"cni\": {\"bin_dirs\": [\"relative\"]}}", "bin_dirs[0]" },
		{ "{\"cni\": {\"bin_dirs\": [\"/ok\", 1]}}", "bin_dirs[1]" },
		{ "{\"cni\": {\"bin_dirs\": [\"/ok\", \"\"]}}", "bin_dirs[1]" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		load_fails(root, cases[i].json, -EINVAL, cases[i].key, NULL);

	/* Too many bin dirs. */
	char big[65 * 8 + 64] = "{\"cni\": {\"bin_dirs\": [";
	for (int i = 0; i < 65; i++)
		strcat(big, i ? ",\"/b\"" : "\"/b\"");
	strcat(big, "]}}");
	load_fails(root, big, -EINVAL, "bin_dirs", NULL);
}

/* config.h: "a wrong type fails the load with the file and key named". */
static void test_wrong_type_names_file(void **state)
{
	const char *root = *state;
	put(root, "etc/cric/cric.d/70-typo.json", "{\"workers\": \"many\"}");
	struct cric_config *c = CFG_SENTINEL;
	struct cric_err err = { { 0 } };
	assert_int_equal(config_load(root, NULL, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "workers"));
	if (!strstr(err.msg, "70-typo.json"))
		FAIL_REGRESSION("a type error does not name the file it came from: \"%s\"",
				err.msg);
}

static void test_bounds_accepted(void **state)
{
	const char *root = *state;
	put(root, "etc/cric/cric.json",
	    "{\"workers\": 1, \"max_request_seconds\": 86400, \"cni\": {\"bin_dirs\": []}}");
	struct cric_config *c = load_ok(root, NULL);
	assert_int_equal(c->workers, 1);
	assert_int_equal(c->max_request_seconds, 86400);
	assert_null(c->cni_bin_dirs[0]);
	config_free(c);
	put(root, "etc/cric/cric.json", "{\"workers\": 256, \"max_request_seconds\": 1}");
	c = load_ok(root, NULL);
	assert_int_equal(c->workers, 256);
	assert_int_equal(c->max_request_seconds, 1);
	config_free(c);
}

static void test_enums(void **state)
{
	const char *root = *state;
	static const char *const levels[] = { "debug", "info", "notice", "warning", "error" };
	for (size_t i = 0; i < 5; i++) {
		char j[128];
		snprintf(j, sizeof(j), "{\"log_level\": \"%s\", \"cgroup_manager\": \"%s\"}",
			 levels[i], i % 2 ? "systemd" : "cgroupfs");
		put(root, "etc/cric/cric.json", j);
		struct cric_config *c = load_ok(root, NULL);
		assert_string_equal(c->log_level, levels[i]);
		config_free(c);
	}
	load_fails(root, "{\"log_level\": \"loud\"}", -EINVAL, "log_level", "loud", NULL);
	load_fails(root, "{\"log_level\": \"\"}", -EINVAL, "log_level", NULL);
	load_fails(root, "{\"log_level\": \"INFO\"}", -EINVAL, "log_level", NULL);
	load_fails(root, "{\"cgroup_manager\": \"cgroupv2\"}", -EINVAL, "cgroup_manager",
		   "cgroupv2", NULL);
	load_fails(root, "{\"cgroup_manager\": \"\"}", -EINVAL, "cgroup_manager", NULL);
	load_fails(root, "{\"cgroup_manager\": \"systemd \"}", -EINVAL, "cgroup_manager", NULL);
}

static void test_relative_root(void **state)
{
	(void)state;
	static const char *const bad[] = { "relative/root", "./x", "x", "../tmp" };
	for (size_t i = 0; i < 4; i++) {
		struct cric_config *c = CFG_SENTINEL;
		struct cric_err err = { { 0 } };
		assert_int_equal(config_load(bad[i], NULL, &c, &err), -EINVAL);
		assert_ptr_equal(c, CFG_SENTINEL);
		assert_non_null(strstr(err.msg, "--root"));
		assert_non_null(strstr(err.msg, bad[i]));
	}
}

static void test_derived_paths(void **state)
{
	const char *root = *state;
	char j[1024];
	snprintf(j, sizeof(j), "{\"run_dir\": \"%s/r\"}", root);
	put(root, "etc/cric/cric.json", j);
	struct cric_config *c = load_ok(root, NULL);
	assert_under(root, c->run_dir, "/r");
	assert_under(root, c->ipc_dir, "/r/ipc");
	assert_under(root, c->cri_socket, "/r/cric.sock");
	char *url = config_ipc_url(c, "stored");
	char *want = NULL;
	assert_true(asprintf(&want, "ipc://%s/r/ipc/stored.sock", root) > 0);
	assert_string_equal(url, want);
	free(want);
	free(url);
	config_free(c);

	/* Explicit values win over derivation. */
	snprintf(j, sizeof(j),
		 "{\"run_dir\": \"%s/r\", \"ipc_dir\": \"%s/i\", \"cri_socket\": \"%s/c.sock\"}",
		 root, root, root);
	put(root, "etc/cric/cric.json", j);
	c = load_ok(root, NULL);
	assert_under(root, c->ipc_dir, "/i");
	assert_under(root, c->cri_socket, "/c.sock");
	config_free(c);

	/* Relative or too long (unix socket paths) is refused, key named. */
	load_fails(root, "{\"run_dir\": \"run\"}", -EINVAL, "run_dir", NULL);
	load_fails(root, "{\"state_dir\": \"\"}", -EINVAL, "state_dir", NULL);
	load_fails(root, "{\"ipc_dir\": \"ipc\"}", -EINVAL, "ipc_dir", NULL);
	load_fails(root, "{\"cri_socket\": \"c.sock\"}", -EINVAL, "cri_socket", NULL);
	char longp[200];
	memset(longp, 'x', sizeof(longp));
	longp[0] = '/';
	longp[80] = '\0';
	snprintf(j, sizeof(j), "{\"run_dir\": \"%s\"}", longp);
	load_fails(root, j, -EINVAL, "run_dir", NULL);
	/* A long run_dir whose derived ipc_dir is what overflows. */
	longp[73] = '\0';
	snprintf(j, sizeof(j), "{\"run_dir\": \"%s\"}", longp);
	load_fails(root, j, -EINVAL, "ipc_dir", NULL);
}

/* The daemons' users: by name or number, "" for root, never root itself;
 * one that does not exist loads (its id -1): the daemon that must become it
 * refuses to start, naming it. */
static void test_daemon_users(void **state)
{
	const char *root = *state;
	put(root, "etc/cric/cric.json",
	    "{\"gateway_user\": \"nobody\", \"imaged_user\": \"4321\", \"group\": \"root\"}");
	struct cric_config *c = load_ok(root, NULL);
	assert_int_equal(c->gateway_uid, 65534);
	assert_int_equal(c->imaged_uid, 4321);
	assert_int_equal(c->imaged_gid, 4321); /* no such user: its number */
	assert_int_equal(c->group_gid, 0);
	uid_t uid;
	gid_t gid;
	assert_true(config_daemon_user(c, "gateway", &uid, &gid));
	assert_int_equal(uid, 65534);
	assert_false(config_daemon_user(c, "runtimed", &uid, &gid));
	assert_int_equal(config_daemon_peer_uid(c, "imaged"), 4321);
	assert_int_equal(config_daemon_peer_uid(c, "netd"), (uid_t)-1);
	config_free(c);

	put(root, "etc/cric/cric.json",
	    "{\"gateway_user\": \"\", \"imaged_user\": \"no-such-user-cric-test\", "
	    "\"group\": \"no-such-group-cric-test\"}");
	c = load_ok(root, NULL);
	assert_false(config_daemon_user(c, "gateway", &uid, &gid));
	assert_int_equal(c->gateway_uid, (uid_t)-1);
	assert_true(config_daemon_user(c, "imaged", &uid, &gid));
	assert_int_equal(uid, (uid_t)-1);
	assert_int_equal(c->group_gid, (gid_t)-1);
	config_free(c);

	load_fails(root, "{\"imaged_user\": \"root\"}", -EINVAL, "imaged_user", NULL);
	load_fails(root, "{\"gateway_user\": \"0\"}", -EINVAL, "gateway_user", NULL);
}

static void test_unknown_keys_ignored(void **state)
{
	const char *root = *state;
	put(root, "etc/cric/cric.json",
	    "{\"bogus\": 1, \"imaged\": 5, \"netd\": {\"x\": 1}, \"workers\": 9}");
	struct cric_config *c = load_ok(root, NULL);
	assert_int_equal(c->workers, 9);
	assert_int_equal(json_integer_value(json_object_get(c->doc, "bogus")), 1);
	config_free(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_root, teardown_root)
	const struct CMUnitTest tests[] = {
		T(test_defaults_without_root),
		T(test_defaults_with_root),
		T(test_defaults_with_root_bin_dirs),
		T(test_config_free_null),
		T(test_main_file_merge),
		T(test_dropins_lexical_order),
		T(test_dropins_without_main_file),
		T(test_explicit_config_and_its_dropins),
		T(test_explicit_config_missing),
		T(test_bad_files),
		T(test_too_many_dropins),
		T(test_wrong_types),
		T(test_wrong_type_names_file),
		T(test_bounds_accepted),
		T(test_enums),
		T(test_relative_root),
		T(test_derived_paths),
		T(test_daemon_users),
		T(test_unknown_keys_ignored),
	};
#undef T
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
