/* netd/netns.h: pinned network namespaces (needs root: skipped
 * otherwise, and a failure under CI=true). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netd/netns.h"
#include "testutil.h"

struct fixture {
	char *dir;
	char pin[PATH_MAX];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = tmpdir_make("netns");
	tpath(f->pin, f->dir, "pod");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	netns_remove(f->pin, NULL);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void need_root(void)
{
	REQUIRE_ROOT("network namespaces");
}

static ino_t ino_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

/* Mount lines naming dir. */
static int mounts_under(const char *dir)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	assert_non_null(fp);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, dir))
			n++;
	fclose(fp);
	return n;
}

struct probe {
	const char *pin;
	int flags; /* of lo inside, -1 on failure */
};

static void *probe_thread(void *arg)
{
	struct probe *p = arg;
	p->flags = -1;
	int fd = open(p->pin, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		return NULL;
	close(fd);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0)
		p->flags = ifr.ifr_flags;
	if (s >= 0)
		close(s);
	return NULL; /* the thread and its namespace switch end here */
}

static void test_create_and_remove(void **state)
{
	struct fixture *f = *state;
	need_root();
	ino_t ours = ino_of("/proc/thread-self/ns/net");
	struct cric_err err = { "untouched" };
	assert_int_equal(netns_create(f->pin, &err), 0);
	assert_string_equal(err.msg, "untouched");
	assert_true(netns_is_pinned(f->pin));
	/* A new namespace, and ours (this thread's) unchanged. */
	assert_true(ino_of(f->pin) != ours);
	assert_true(ino_of("/proc/thread-self/ns/net") == ours);
	assert_int_equal(mounts_under(f->dir), 1);
	/* Loopback is up inside. */
	struct probe p = { .pin = f->pin };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, probe_thread, &p), 0);
	pthread_join(t, NULL);
	assert_true(p.flags >= 0);
	assert_true(p.flags & IFF_UP);

	/* An existing pin is not replaced. */
	ino_t ino = ino_of(f->pin);
	assert_int_equal(netns_create(f->pin, &err), -EEXIST);
	assert_non_null(strstr(err.msg, f->pin));
	assert_true(netns_is_pinned(f->pin));
	assert_true(ino_of(f->pin) == ino);

	assert_int_equal(netns_remove(f->pin, &err), 0);
	assert_false(netns_is_pinned(f->pin));
	assert_int_equal(access(f->pin, F_OK), -1);
	assert_int_equal(mounts_under(f->dir), 0);
	/* Idempotent. */
	assert_int_equal(netns_remove(f->pin, NULL), 0);
}

static void test_remove_odd_states(void **state)
{
	struct fixture *f = *state;
	need_root();
	/* A plain file (a crash between create and mount, or a reboot). */
	write_text(f->pin, "");
	assert_false(netns_is_pinned(f->pin));
	assert_int_equal(netns_remove(f->pin, NULL), 0);
	assert_int_equal(access(f->pin, F_OK), -1);
	/* Stacked mounts: all go. */
	assert_int_equal(netns_create(f->pin, NULL), 0);
	assert_int_equal(mount("/proc/self/ns/net", f->pin, NULL, MS_BIND, NULL), 0);
	assert_int_equal(mounts_under(f->dir), 2);
	assert_int_equal(netns_remove(f->pin, NULL), 0);
	assert_int_equal(mounts_under(f->dir), 0);
	assert_int_equal(access(f->pin, F_OK), -1);
	/* A missing directory. */
	char p[PATH_MAX];
	tpath(p, f->dir, "no/such/pin");
	assert_int_equal(netns_remove(p, NULL), 0);
	struct cric_err err = { { 0 } };
	assert_int_equal(netns_create(p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, p));
	assert_false(netns_is_pinned("/proc/self/status"));
	assert_false(netns_is_pinned("/nonexistent"));
}

static void test_many_cycles_leave_nothing(void **state)
{
	struct fixture *f = *state;
	need_root();
	int fds = dir_count("/proc/self/fd");
	int threads = dir_count("/proc/self/task");
	for (int i = 0; i < 100; i++) {
		char p[PATH_MAX], name[32];
		snprintf(name, sizeof(name), "pod%d", i % 7);
		tpath(p, f->dir, name);
		assert_int_equal(netns_create(p, NULL), 0);
		assert_int_equal(netns_remove(p, NULL), 0);
	}
	assert_int_equal(mounts_under(f->dir), 0);
	assert_int_equal(dir_count(f->dir), 0);
	assert_int_equal(dir_count("/proc/self/fd"), fds);
	assert_int_equal(dir_count("/proc/self/task"), threads);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_and_remove),
		T(test_remove_odd_states),
		T(test_many_cycles_leave_nothing),
	};
#undef T
	return cmocka_run_group_tests_name("netd-netns", tests, NULL, NULL);
}
