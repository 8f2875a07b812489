/* common/spawn.h: running a program with bounded output, a timeout that
 * kills its process group, a clean signal state and only fds 0-2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"
#include "testutil.h"

struct fixture {
	char *dir;
	char script[PATH_MAX];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = tmpdir_make("spawn");
	tpath(f->script, f->dir, "plugin");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void script(struct fixture *f, const char *body)
{
	char text[4096];
	snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
	write_bytes(f->script, text, strlen(text), 0755);
}

static char *env_plain[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=ADD", NULL };

static int run(struct fixture *f, const char *input, size_t len, unsigned timeout_ms,
	       struct spawn_result *res, struct cric_err *err)
{
	const struct spawn_req x = { .path = f->script,
				     .env = env_plain,
				     .input = input,
				     .input_len = len,
				     .timeout_ms = timeout_ms };
	return spawn_run(&x, res, err);
}

static void test_echo_large_input(void **state)
{
	struct fixture *f = *state;
	script(f, "exec cat");
	/* Far more than a pipe holds: stdin must be fed while stdout drains. */
	size_t n = 900 * 1024;
	char *in = malloc(n);
	for (size_t i = 0; i < n; i++)
		in[i] = (char)('a' + i % 26);
	struct spawn_result res;
	struct cric_err err = { "untouched" };
	assert_int_equal(run(f, in, n, 10000, &res, &err), 0);
	assert_string_equal(err.msg, "untouched");
	assert_true(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
	assert_int_equal(res.out_len, n);
	assert_memory_equal(res.out, in, n);
	assert_int_equal(res.out[n], '\0');
	assert_string_equal(res.errout, "");
	spawn_result_done(&res);
	spawn_result_done(&res); /* twice is fine */
	free(in);
}

static void test_exit_status_and_stderr(void **state)
{
	struct fixture *f = *state;
	script(f, "cat >/dev/null; echo '{\"code\":7,\"msg\":\"no\"}'; echo 'oops' >&2; exit 3");
	struct spawn_result res;
	assert_int_equal(run(f, "{}", 2, 10000, &res, NULL), 0);
	assert_true(WIFEXITED(res.status));
	assert_int_equal(WEXITSTATUS(res.status), 3);
	assert_string_equal(res.out, "{\"code\":7,\"msg\":\"no\"}\n");
	assert_string_equal(res.errout, "oops\n");
	spawn_result_done(&res);
}

static void test_output_bounded(void **state)
{
	struct fixture *f = *state;
	/* stdout: up to the limit is fine, one byte more kills it. */
	char body[256];
	snprintf(body, sizeof(body), "head -c %d /dev/zero", SPAWN_OUTPUT_MAX);
	script(f, body);
	struct spawn_result res;
	assert_int_equal(run(f, NULL, 0, 10000, &res, NULL), 0);
	assert_int_equal(res.out_len, SPAWN_OUTPUT_MAX);
	spawn_result_done(&res);

	script(f, "exec cat /dev/zero");
	struct cric_err err = { { 0 } };
	int64_t t0 = mono_ms();
	memset(&res, 0x5a, sizeof(res));
	assert_int_equal(run(f, NULL, 0, 10000, &res, &err), -EFBIG);
	assert_true(mono_ms() - t0 < 5000);
	assert_non_null(strstr(err.msg, "stdout"));
	assert_int_equal(res.status, 0x5a5a5a5a); /* untouched */

	/* stderr: kept up to its limit, the rest read and dropped. */
	script(f, "head -c 300000 /dev/zero | tr '\\0' e >&2; echo ok");
	assert_int_equal(run(f, NULL, 0, 10000, &res, NULL), 0);
	assert_int_equal(strlen(res.errout), SPAWN_STDERR_MAX);
	assert_string_equal(res.out, "ok\n");
	spawn_result_done(&res);
}

static bool pid_gone(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z'; /* a zombie is gone too */
}

static pid_t read_pid(struct fixture *f, const char *name)
{
	char p[PATH_MAX], buf[32] = "";
	FILE *fp = fopen(tpath(p, f->dir, name), "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	return (pid_t)atoi(buf);
}

static void test_timeout_kills_the_group(void **state)
{
	struct fixture *f = *state;
	char body[1024];
	/* A child of the plugin holds stdout open and would outlive it. */
	snprintf(body, sizeof(body), "sleep 60 & echo $! > %s/child\nexec sleep 60", f->dir);
	script(f, body);
	struct spawn_result res;
	memset(&res, 0x5a, sizeof(res));
	struct cric_err err = { { 0 } };
	int64_t t0 = mono_ms();
	assert_int_equal(run(f, NULL, 0, 300, &res, &err), -ETIMEDOUT);
	int64_t took = mono_ms() - t0;
	assert_true(took >= 300 && took < 5000);
	assert_non_null(strstr(err.msg, "timed out"));
	assert_int_equal(res.status, 0x5a5a5a5a);
	pid_t child = read_pid(f, "child");
	int64_t end = mono_ms() + 5000;
	while (!pid_gone(child) && mono_ms() < end)
		sleep_ms(10);
	assert_true(pid_gone(child));
}

static void test_exit_does_not_wait_for_leftovers(void **state)
{
	struct fixture *f = *state;
	char body[1024];
	/* The plugin exits; what it started keeps its stdout open. */
	snprintf(body, sizeof(body), "sleep 60 & echo $! > %s/child\necho '{}'", f->dir);
	script(f, body);
	struct spawn_result res;
	int64_t t0 = mono_ms();
	assert_int_equal(run(f, NULL, 0, 20000, &res, NULL), 0);
	assert_true(mono_ms() - t0 < 5000);
	assert_string_equal(res.out, "{}\n");
	spawn_result_done(&res);
	kill(read_pid(f, "child"), SIGKILL);
}

static void test_unread_input(void **state)
{
	struct fixture *f = *state;
	script(f, "echo done");
	size_t n = 4 * 1024 * 1024;
	char *in = calloc(1, n);
	struct spawn_result res;
	assert_int_equal(run(f, in, n, 10000, &res, NULL), 0);
	assert_true(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
	assert_string_equal(res.out, "done\n");
	spawn_result_done(&res);
	free(in);
}

static void test_clean_process_state(void **state)
{
	struct fixture *f = *state;
	/* What netd does before its threads start: block the stop signals,
	 * ignore SIGPIPE; and an fd leaked without O_CLOEXEC. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
	int fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 42), 42);

	script(f, "env | sort; grep -E '^Sig(Blk|Ign):' /proc/self/status; "
		  "test -e /proc/$$/fd/42 && echo fd42-leaked; "
		  "test \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" && echo own-group; true");
	char *env[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=abc", "PATH=/usr/bin:/bin", NULL };
	const struct spawn_req x = {
		.path = f->script, .env = env, .input = "", .input_len = 0, .timeout_ms = 10000
	};
	struct spawn_result res;
	assert_int_equal(spawn_run(&x, &res, NULL), 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, old_pipe);
	close(42);
	close(fd);

	/* Exactly the environment given (plus what sh itself sets). */
	assert_non_null(strstr(res.out, "CNI_COMMAND=DEL\nCNI_CONTAINERID=abc\n"));
	assert_null(strstr(res.out, "HOME="));
	assert_non_null(strstr(res.out, "SigBlk:\t0000000000000000\n"));
	/* No standard signal ignored. (glibc's posix_spawn leaves its two
	 * internal real-time signals, 32 and 33, ignored across the exec;
	 * every glibc program installs its handlers for them again.) */
	const char *ign = strstr(res.out, "SigIgn:\t");
	assert_non_null(ign);
	assert_int_equal(strtoull(ign + 8, NULL, 16) & 0x7fffffffull, 0);
	assert_null(strstr(res.out, "fd42-leaked"));
	assert_non_null(strstr(res.out, "own-group"));
	spawn_result_done(&res);
}

static void test_cannot_start(void **state)
{
	struct fixture *f = *state;
	struct spawn_result res;
	memset(&res, 0x5a, sizeof(res));
	struct cric_err err = { { 0 } };
	/* Missing. */
	assert_int_equal(run(f, "{}", 2, 1000, &res, &err), -ENOENT);
	assert_non_null(strstr(err.msg, f->script));
	/* Not executable. */
	write_bytes(f->script, "#!/bin/sh\n", 10, 0644);
	assert_int_equal(run(f, "{}", 2, 1000, &res, &err), -EACCES);
	assert_int_equal(res.status, 0x5a5a5a5a);
	/* No fd leaked by the failures: the next run works. */
	script(f, "echo ok");
	assert_int_equal(run(f, NULL, 0, 1000, &res, NULL), 0);
	assert_string_equal(res.out, "ok\n");
	spawn_result_done(&res);
}

static int count_fds(void)
{
	return dir_count("/proc/self/fd");
}

static void test_no_fd_leak(void **state)
{
	struct fixture *f = *state;
	int before = count_fds();
	script(f, "cat >/dev/null; echo x");
	for (int i = 0; i < 50; i++) {
		struct spawn_result res;
		assert_int_equal(run(f, "{}", 2, 5000, &res, NULL), 0);
		spawn_result_done(&res);
	}
	script(f, "exec sleep 10");
	struct spawn_result res;
	assert_int_equal(run(f, NULL, 0, 50, &res, NULL), -ETIMEDOUT);
	assert_int_equal(count_fds(), before);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_echo_large_input),
		T(test_exit_status_and_stderr),
		T(test_output_bounded),
		T(test_timeout_kills_the_group),
		T(test_exit_does_not_wait_for_leftovers),
		T(test_unread_input),
		T(test_clean_process_state),
		T(test_cannot_start),
		T(test_no_fd_leak),
	};
#undef T
	return cmocka_run_group_tests_name("spawn", tests, NULL, NULL);
}
