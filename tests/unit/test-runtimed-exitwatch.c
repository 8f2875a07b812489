/* runtimed/exitwatch.h: real child processes watched through pidfds: an
 * exit is called back once, a "not yet" answer is called again, a process
 * already gone is called back at once, a forgotten one never. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "runtimed/exitwatch.h"
#include "runtimed/oci.h"

struct seen {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char keys[16][65];
	size_t n;
	int not_yet; /* answer false this many times */
};

static bool on_exit_cb(void *ud, const char *key)
{
	struct seen *s = ud;
	pthread_mutex_lock(&s->lock);
	bool done = s->not_yet == 0;
	if (s->not_yet > 0)
		s->not_yet--;
	if (s->n < 16)
		snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", key);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return done;
}

/* Wait (up to 10 s) until n callbacks were seen; their count. */
static size_t wait_calls(struct seen *s, size_t n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&s->lock);
	while (s->n < n && pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
		;
	size_t k = s->n;
	pthread_mutex_unlock(&s->lock);
	return k;
}

static pid_t sleeper(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static void kill_reap(pid_t pid)
{
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* The threads of this process. */
static size_t threads(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* No thread until there is something to watch; one from the first add. */
static void test_thread_starts_at_first_add(void **state)
{
	(void)state;
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { { 0 } }, 0, 0 };
	size_t before = threads();
	struct exit_watch *w = NULL;
	assert_int_equal(exit_watch_new(on_exit_cb, &s, &w), 0);
	assert_int_equal(threads(), before);
	exit_watch_forget(w, "none");
	assert_int_equal(threads(), before);
	pid_t a = sleeper();
	assert_int_equal(exit_watch_add(w, "a", a, proc_start_time(a)), 0);
	assert_int_equal(exit_watch_add(w, "b", a, proc_start_time(a)), 0);
	assert_int_equal(threads(), before + 1);
	kill_reap(a);
	assert_int_equal(wait_calls(&s, 2), 2);
	exit_watch_free(w);
	assert_int_equal(threads(), before);
	/* Never started: free has no thread to stop. */
	assert_int_equal(exit_watch_new(on_exit_cb, &s, &w), 0);
	exit_watch_free(w);
}

static void test_exit_called_back_once(void **state)
{
	(void)state;
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { { 0 } }, 0, 0 };
	struct exit_watch *w = NULL;
	assert_int_equal(exit_watch_new(on_exit_cb, &s, &w), 0);
	pid_t a = sleeper(), b = sleeper();
	assert_int_equal(exit_watch_add(w, "a", a, proc_start_time(a)), 0);
	assert_int_equal(exit_watch_add(w, "b", b, proc_start_time(b)), 0);
	kill_reap(b);
	assert_int_equal(wait_calls(&s, 1), 1);
	assert_string_equal(s.keys[0], "b");
	/* a still runs: nothing more, even after a while. */
	usleep(300 * 1000);
	assert_int_equal(wait_calls(&s, 1), 1);
	kill_reap(a);
	assert_int_equal(wait_calls(&s, 2), 2);
	assert_string_equal(s.keys[1], "a");
	usleep(300 * 1000);
	assert_int_equal(wait_calls(&s, 2), 2);
	exit_watch_free(w);
}

static void test_not_yet_is_asked_again(void **state)
{
	(void)state;
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { { 0 } }, 0, 2 };
	struct exit_watch *w = NULL;
	assert_int_equal(exit_watch_new(on_exit_cb, &s, &w), 0);
	pid_t a = sleeper();
	assert_int_equal(exit_watch_add(w, "a", a, 0), 0);
	kill_reap(a);
	/* false, false, then true: three calls, then no more. */
	assert_int_equal(wait_calls(&s, 3), 3);
	usleep(500 * 1000);
	assert_int_equal(wait_calls(&s, 3), 3);
	exit_watch_free(w);
}

static void test_gone_or_reused_pid_at_once(void **state)
{
	(void)state;
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { { 0 } }, 0, 0 };
	struct exit_watch *w = NULL;
	assert_int_equal(exit_watch_new(on_exit_cb, &s, &w), 0);
	pid_t a = sleeper();
	unsigned long long start = proc_start_time(a);
	kill_reap(a);
	assert_int_equal(exit_watch_add(w, "gone", a, start), 0);
	assert_int_equal(wait_calls(&s, 1), 1);
	assert_string_equal(s.keys[0], "gone");
	/* A live process that is not the one started then (another start
	 * time): the one watched is gone. */
	pid_t b = sleeper();
	assert_int_equal(exit_watch_add(w, "reused", b, proc_start_time(b) + 1), 0);
	assert_int_equal(wait_calls(&s, 2), 2);
	assert_string_equal(s.keys[1], "reused");
	assert_int_equal(exit_watch_add(w, "", b, 0), -EINVAL);
	kill_reap(b);
	exit_watch_free(w);
}

static void test_forgotten_is_never_called(void **state)
{
	(void)state;
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { { 0 } }, 0, 0 };
	struct exit_watch *w = NULL;
	assert_int_equal(exit_watch_new(on_exit_cb, &s, &w), 0);
	pid_t a = sleeper(), b = sleeper();
	assert_int_equal(exit_watch_add(w, "a", a, 0), 0);
	assert_int_equal(exit_watch_add(w, "b", b, 0), 0);
	exit_watch_forget(w, "a");
	exit_watch_forget(w, "none");
	kill_reap(a);
	kill_reap(b);
	assert_int_equal(wait_calls(&s, 1), 1);
	assert_string_equal(s.keys[0], "b");
	usleep(300 * 1000);
	assert_int_equal(wait_calls(&s, 1), 1);
	/* Freed with watches left: the thread stops, their fds close. */
	pid_t c = sleeper();
	assert_int_equal(exit_watch_add(w, "c", c, 0), 0);
	exit_watch_free(w);
	kill_reap(c);
	assert_null(exit_watch_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thread_starts_at_first_add),
		cmocka_unit_test(test_exit_called_back_once),
		cmocka_unit_test(test_not_yet_is_asked_again),
		cmocka_unit_test(test_gone_or_reused_pid_at_once),
		cmocka_unit_test(test_forgotten_is_never_called),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
