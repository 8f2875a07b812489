/* Helpers shared by the cmocka unit tests: temp directories under
 * $CRIC_TEST_TMP (or /tmp), small file writers, a monotonic clock.
 *
 * Include after <cmocka.h> (it needs assert_*). Everything is static inline so
 * that each test file stays a single translation unit.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A fresh directory "<$CRIC_TEST_TMP or /tmp>/cric-<tag>-XXXXXX"; malloc'd. */
static inline char *tmpdir_make(const char *tag)
{
	const char *base = getenv("CRIC_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	char *path = NULL;
	assert_true(asprintf(&path, "%s/cric-%s-XXXXXX", base, tag) > 0);
	assert_non_null(mkdtemp(path));
	return path;
}

static inline int tmpdir_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(p);
	return unlink(p);
}

/* rm -rf path; frees it. Accepts NULL. */
static inline void tmpdir_remove(char *path)
{
	if (!path)
		return;
	assert_int_equal(nftw(path, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(path);
}

/* "<dir>/<name>" in a caller buffer of PATH_MAX. */
static inline const char *tpath(char *buf, const char *dir, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", dir, name);
	assert_true(n > 0 && n < PATH_MAX);
	return buf;
}

/* Write len bytes to path (created/truncated) with mode. */
static inline void write_bytes(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static inline void write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text), 0644);
}

/* Number of entries in dir (without "." and ".."). */
static inline int dir_count(const char *dir)
{
	int n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static inline int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* True under CI=true: there every prerequisite of every test must be met. */
static inline bool test_in_ci(void)
{
	const char *ci = getenv("CI");
	return ci && strcmp(ci, "true") == 0;
}

/* A prerequisite of this test is missing: say which and skip the test; under
 * CI=true fail it instead (a CI machine that lacks one is broken, and a
 * skipped test there would hide it). */
#define SKIP_MISSING(...)                                                                          \
	do {                                                                                       \
		if (test_in_ci()) {                                                                \
			print_message("MISSING PREREQUISITE (%s:%d, a failure under CI=true): ",   \
				      __FILE__, __LINE__);                                         \
			print_message(__VA_ARGS__);                                                \
			print_message("\n");                                                       \
			fail();                                                                    \
		}                                                                                  \
		print_message("SKIP: ");                                                           \
		print_message(__VA_ARGS__);                                                        \
		print_message("\n");                                                               \
		skip();                                                                            \
	} while (0)

/* Skip (under CI=true: fail) unless cond holds; the message says what is
 * missing. */
#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			SKIP_MISSING(__VA_ARGS__);                                                 \
	} while (0)

/* why: what the test needs root for. */
#define REQUIRE_ROOT(why) REQUIRE(geteuid() == 0, "needs root (%s)", why)

/* Fail the test as a regression: for a check that once caught a bug in the
 * code under test, report what happened (file:line and the message) and
 * fail (a regression must never pass or be skipped). */
#define FAIL_REGRESSION(...)                                                                       \
	do {                                                                                       \
		print_message("REGRESSION (%s:%d): ", __FILE__, __LINE__);                         \
		print_message(__VA_ARGS__);                                                        \
		print_message("\n");                                                               \
		fail();                                                                            \
	} while (0)

/* Run fn(arg) in a child process with an alarm of timeout_s seconds (for code
 * that may crash or hang); returns the waitpid() status. Only for
 * single-threaded test programs. */
static inline int run_in_child(int (*fn)(void *), void *arg, unsigned timeout_s)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka catches these to fail the test; here they must kill. */
		static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM };
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		alarm(timeout_s);
		_exit(fn(arg));
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	return status;
}
