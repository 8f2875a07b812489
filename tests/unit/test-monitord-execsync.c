/* monitord/execsync.h and its helper cric-exec: the answer's bounds, the
 * config, the checks before anything runs, and the helper's promises with
 * a stand-in runtime (a shell that writes its own pid file): the session
 * killed at the timeout and after the exec'd process ended, every child
 * reaped, the report. The real runc path is tests/integration/
 * test_execsync.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <poll.h>
#include <spawn.h>

#include "common/cleanup.h"
#include "monitord/exec/exec.h"
#include "monitord/execsync.h"

static void fit(size_t out, size_t err, size_t max, size_t want_out, size_t want_err)
{
	execsync_fit(&out, &err, max);
	assert_int_equal(out, want_out);
	assert_int_equal(err, want_err);
}

static void test_fit(void **state)
{
	(void)state;
	fit(10, 20, 100, 10, 20);   /* fits */
	fit(100, 0, 100, 100, 0);   /* exactly */
	fit(200, 10, 100, 90, 10);  /* the large one is cut */
	fit(10, 200, 100, 10, 90);  /* either */
	fit(200, 300, 100, 50, 50); /* both large: half each */
	fit(200, 40, 100, 60, 40);
	fit(60, 60, 100, 50, 50);
	fit(0, 0, 0, 0, 0);
}

/* build/tests/<this> -> build/bin/cric-exec */
static char *helper_path(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	char *p = NULL;
	assert_true(asprintf(&p, "%s/../bin/cric-exec", exe) > 0);
	return p;
}

static struct cric_config *config(const char *json)
{
	char *dir = tmpdir_make("execsync-cfg");
	char path[PATH_MAX];
	FILE *f = fopen(tpath(path, dir, "cric.json"), "w");
	assert_non_null(f);
	fputs(json, f);
	fclose(f);
	struct cric_config *c = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(config_load(dir, path, &c, &err), 0);
	tmpdir_remove(dir);
	return c;
}

static void test_config(void **state)
{
	(void)state;
	_cleanup_free_ char *helper = helper_path();
	char json[PATH_MAX + 200];
	struct execsync *x = NULL;
	struct cric_err err = { { 0 } };

	snprintf(json, sizeof(json), "{\"monitord\": {\"exec_helper\": \"%s\"}}", helper);
	struct cric_config *c = config(json);
	assert_int_equal(execsync_open(c, &x, &err), 0);
	assert_int_equal(x->output_max, 16u << 20);
	assert_string_equal(x->helper, helper);
	execsync_free(x);
	config_free(c);

	snprintf(json, sizeof(json),
		 "{\"monitord\": {\"exec_helper\": \"%s\", \"exec_output_max\": 4096}}", helper);
	c = config(json);
	assert_int_equal(execsync_open(c, &x, &err), 0);
	assert_int_equal(x->output_max, 4096);
	execsync_free(x);
	config_free(c);

	const char *bad[] = {
		"{\"monitord\": {\"exec_output_max\": -1}}",
		"{\"monitord\": {\"exec_output_max\": 16777216}}",
		"{\"monitord\": {\"exec_output_max\": \"16M\"}}",
		"{\"monitord\": {\"exec_helper\": \"cric-exec\"}}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		c = config(bad[i]);
		x = NULL;
		assert_int_equal(execsync_open(c, &x, &err), -EINVAL);
		assert_null(x);
		config_free(c);
	}
	c = config("{\"monitord\": {\"exec_helper\": \"/nonexistent/cric-exec\"}}");
	assert_int_equal(execsync_open(c, &x, &err), -ENOPKG);
	assert_non_null(strstr(err.msg, "/nonexistent/cric-exec"));
	config_free(c);
	execsync_free(NULL);
}

/* A monitors manager over a directory of ours (no monitor runs). */
static void test_refused_before_running(void **state)
{
	(void)state;
	char *dir = tmpdir_make("execsync-mon");
	struct monitors m = { .dir = dir, .monitor_bin = "/nonexistent/cric-monitor" };
	pthread_mutex_init(&m.lock, NULL);
	pthread_cond_init(&m.idle, NULL);
	_cleanup_free_ char *helper = helper_path();
	struct execsync x = { .helper = helper, .output_max = 1024 };
	const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const char *id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdee";
	char *cmd[] = { "true", NULL };
	struct execsync_result res = { 0 };
	struct cric_err err = { { 0 } };
	struct execsync_req req = { .id = id, .cmd = cmd, .n_cmd = 1 };

	assert_int_equal(execsync_run(&x, &m, &req, &res, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "not found"));
	req.id = "0123";
	assert_int_equal(execsync_run(&x, &m, &req, &res, &err), -ENOENT);
	const char *bad[] = { "", "../x", "0123456789ABCDEF", "0123 ", NULL };
	for (size_t i = 0; bad[i]; i++) {
		req.id = bad[i];
		assert_int_equal(execsync_run(&x, &m, &req, &res, &err), -EINVAL);
	}
	char path[PATH_MAX];
	assert_int_equal(mkdir(tpath(path, dir, id), 0700), 0);
	/* A directory without a live monitor: not running. */
	req.id = "0123456";
	assert_int_equal(execsync_run(&x, &m, &req, &res, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "not running"));
	req.n_cmd = 0;
	assert_int_equal(execsync_run(&x, &m, &req, &res, &err), -EINVAL);
	req.n_cmd = 1;
	req.timeout_s = -1;
	assert_int_equal(execsync_run(&x, &m, &req, &res, &err), -EINVAL);
	req.timeout_s = 0;
	/* Two containers share the prefix. */
	assert_int_equal(mkdir(tpath(path, dir, id2), 0700), 0);
	assert_int_equal(execsync_run(&x, &m, &req, &res, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "ambiguous"));
	assert_null(res.out);
	pthread_mutex_destroy(&m.lock);
	pthread_cond_destroy(&m.idle);
	tmpdir_remove(dir);
}

/* Run the helper with a shell for runtime; returns its report, *took_ms. */
static char *helper_run(const char *pid_file, long timeout_ms, const char *script, int *took_ms)
{
	_cleanup_free_ char *helper = helper_path();
	char tmo[32];
	snprintf(tmo, sizeof(tmo), "%ld", timeout_ms);
	char *argv[] = { helper, tmo, (char *)pid_file, "/bin/sh", "-c", (char *)script, NULL };
	int rep[2], out[2];
	assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, rep[1], EXEC_REPORT_FD);
	pid_t pid;
	int64_t t0 = mono_ms();
	assert_int_equal(posix_spawn(&pid, helper, &fa, NULL, argv, NULL), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(rep[1]);
	close(out[1]);
	char *buf = calloc(1, 512);
	size_t len = 0;
	ssize_t n;
	while ((n = read(rep[0], buf + len, 511 - len)) > 0)
		len += (size_t)n;
	/* The helper's own stdio no longer holds the pipe, nor does the
	 * session: its end is there. */
	char c;
	assert_int_equal(read(out[0], &c, 1), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	*took_ms = (int)(mono_ms() - t0);
	close(rep[0]);
	close(out[0]);
	/* Every child reaped by the helper: none of ours is left. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	return buf;
}

static bool pid_live(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *e = strrchr(buf, ')');
	return e && e[2] != 'Z' && e[2] != 'X';
}

static pid_t read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int v = 0;
	assert_int_equal(fscanf(f, "%d", &v), 1);
	fclose(f);
	return v;
}

static void test_helper(void **state)
{
	(void)state;
	char *dir = tmpdir_make("execsync-helper");
	char pid_file[PATH_MAX], bg_file[PATH_MAX], script[3 * PATH_MAX];
	tpath(pid_file, dir, "exec.pid");
	tpath(bg_file, dir, "bg.pid");
	int took;

	/* The timeout: the command and its background child, killed. */
	snprintf(script, sizeof(script), "echo $$ > %s; sleep 300 & echo $! > %s; exec sleep 301",
		 pid_file, bg_file);
	_cleanup_free_ char *r1 = helper_run(pid_file, 300, script, &took);
	assert_string_equal(r1, "timeout\n");
	assert_in_range(took, 300, 2000);
	pid_t bg = read_pid(bg_file);
	assert_true(bg > 1);
	assert_false(pid_live(bg));
	assert_int_equal(access(pid_file, F_OK), -1); /* removed */

	/* The command ends, its background child holds stdout: killed, the
	 * status is the command's, at once. */
	snprintf(script, sizeof(script), "echo $$ > %s; sleep 300 & echo $! > %s; exit 3", pid_file,
		 bg_file);
	_cleanup_free_ char *r2 = helper_run(pid_file, 0, script, &took);
	assert_string_equal(r2, "exit 768\n"); /* wait status of exit(3) */
	assert_true(took < 2000);
	assert_false(pid_live(read_pid(bg_file)));

	/* A child that made a session of its own on the host's side is
	 * reparented to the helper (with runc, such a child lives in the
	 * container and goes to its init): killed and reaped too. */
	snprintf(script, sizeof(script),
		 "echo $$ > %s; setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > %s",
		 pid_file, bg_file);
	_cleanup_free_ char *r3 = helper_run(pid_file, 5000, script, &took);
	assert_string_equal(r3, "exit 0\n");
	assert_false(pid_live(read_pid(bg_file)));
	assert_true(took < 2000);
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_refused_before_running),
		cmocka_unit_test(test_helper),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
