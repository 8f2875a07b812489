/* netd/netns.h: pinned network namespaces, also in a pod's own user
 * namespace (common/nspin.h) (needs root: skipped
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
#include <linux/nsfs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/nspin.h"
#include "netd/netns.h"
#include "netd/podspec.h"
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

static ino_t owner_of(const char *pin)
{
	int fd = open(pin, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	int u = ioctl(fd, NS_GET_USERNS);
	assert_true(u >= 0);
	struct stat st;
	assert_int_equal(fstat(u, &st), 0);
	close(u);
	close(fd);
	return st.st_ino;
}

/* In a child: join the user namespace pinned at user, then the network
 * and IPC namespaces (what runc and runc exec do), and check the map. */
static int join_all(const char *user, const char *net, const char *ipc)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int u = open(user, O_RDONLY | O_CLOEXEC), n = open(net, O_RDONLY | O_CLOEXEC),
		    i = open(ipc, O_RDONLY | O_CLOEXEC);
		if (u < 0 || n < 0 || i < 0 || setns(u, CLONE_NEWUSER) < 0 ||
		    setns(n, CLONE_NEWNET) < 0 || setns(i, CLONE_NEWIPC) < 0)
			_exit(1);
		char map[128] = "";
		int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
		ssize_t len = fd >= 0 ? read(fd, map, sizeof(map) - 1) : -1;
		unsigned a, b, c;
		_exit(len > 0 && sscanf(map, "%u %u %u", &a, &b, &c) == 3 && a == 0 &&
			      b == 1u << 20 && c == 65536
			  ? 0
			  : 2);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_userns_pod(void **state)
{
	struct fixture *f = *state;
	need_root();
	char user[PATH_MAX], ipc[PATH_MAX];
	tpath(user, f->dir, "user");
	tpath(ipc, f->dir, "ipc");
	const struct pod_userns u = { .uid_host_id = 1u << 20,
				      .gid_host_id = 1u << 20,
				      .length = 65536 };
	struct cric_err err = { "untouched" };
	assert_int_equal(netns_create_userns(user, f->pin, &u, &err), 0);
	assert_true(nspin_is_pinned(user, CLONE_NEWUSER));
	assert_true(netns_is_pinned(f->pin));
	/* The network namespace is the pod's user namespace's, lo up. */
	assert_true(owner_of(f->pin) == ino_of(user));
	struct probe p = { .pin = f->pin };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, probe_thread, &p), 0);
	pthread_join(t, NULL);
	assert_true(p.flags >= 0 && (p.flags & IFF_UP));
	/* An IPC namespace made inside it (runtimed's) is its too. */
	assert_int_equal(nspin_create_owned(CLONE_NEWIPC, user, ipc, NULL, NULL, &err), 0);
	assert_true(owner_of(ipc) == ino_of(user));
	/* A process of the user namespace may join both. */
	assert_int_equal(join_all(user, f->pin, ipc), 0);
	/* Not a user namespace: refused, nothing made. */
	char other[PATH_MAX];
	tpath(other, f->dir, "other");
	assert_int_equal(nspin_create_owned(CLONE_NEWUTS, f->pin, other, NULL, NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "not a pinned user namespace"));
	assert_int_equal(access(other, F_OK), -1);
	/* Existing pins are not replaced, and nothing is left by the try. */
	assert_int_equal(netns_create_userns(user, other, &u, &err), -EEXIST);
	assert_int_equal(access(other, F_OK), -1);
	assert_int_equal(nspin_remove(ipc, NULL), 0);
	assert_int_equal(nspin_remove(user, NULL), 0);
	assert_int_equal(netns_remove(f->pin, NULL), 0);
	assert_int_equal(mounts_under(f->dir), 0);
	/* The start-up probe leaves nothing either. */
	assert_int_equal(nspin_probe_userns(f->dir, &err), 0);
	assert_int_equal(mounts_under(f->dir), 0);
	assert_int_equal(dir_count(f->dir), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_and_remove),
		T(test_remove_odd_states),
		T(test_many_cycles_leave_nothing),
		T(test_userns_pod),
	};
#undef T
	return cmocka_run_group_tests_name("netd-netns", tests, NULL, NULL);
}
