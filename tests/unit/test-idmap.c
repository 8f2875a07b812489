/* common/idmap.h: user namespaces carrying a mapping, id-mapped bind
 * mounts, the probe. Real mounts: the unit tests run as root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/macro.h"
#include "testutil.h"

static int setup_dir(void **state)
{
	*state = tmpdir_make("idmap");
	return 0;
}

static int teardown_dir(void **state)
{
	tmpdir_remove(*state);
	return 0;
}

static void test_userns_maps(void **state)
{
	(void)state;
	const struct idmap_range u = { .host_id = 300000, .length = 65536 };
	const struct idmap_range g = { .host_id = 400000, .length = 1000 };
	struct cric_err err;
	int fd = idmap_userns_open(&u, &g, &err);
	assert_true(fd >= 0);
	/* The namespace outlives its (killed) process: an nsfs file. */
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	const struct idmap_range zero = { .host_id = 1, .length = 0 };
	assert_int_equal(idmap_userns_open(&zero, &g, &err), -EINVAL);
	const struct idmap_range wrap = { .host_id = UINT32_MAX - 10, .length = 65536 };
	assert_int_equal(idmap_userns_open(&u, &wrap, &err), -EINVAL);
}

static void test_bind_maps_owners(void **state)
{
	const char *dir = *state;
	char src[PATH_MAX], dst[PATH_MAX], f[PATH_MAX + 16];
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	assert_int_equal(mkdir(src, 0755), 0);
	assert_int_equal(mkdir(dst, 0755), 0);
	snprintf(f, sizeof(f), "%s/root-file", src);
	write_text(f, "x");
	assert_int_equal(chown(f, 0, 0), 0);
	snprintf(f, sizeof(f), "%s/user-file", src);
	write_text(f, "x");
	assert_int_equal(chown(f, 7, 8), 0);
	const struct idmap_range m = { .host_id = 200000, .length = 65536 };
	struct cric_err err;
	int ns = idmap_userns_open(&m, &m, &err);
	assert_true(ns >= 0);
	assert_false(idmap_is_mount(dst));
	assert_int_equal(idmap_bind(ns, src, dst, &err), 0);
	close(ns);
	assert_true(idmap_is_mount(dst));
	struct stat st;
	snprintf(f, sizeof(f), "%s/root-file", dst);
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(st.st_uid, 200000);
	assert_int_equal(st.st_gid, 200000);
	snprintf(f, sizeof(f), "%s/user-file", dst);
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(st.st_uid, 200007);
	assert_int_equal(st.st_gid, 200008);
	/* Host root is outside the map: it cannot write through it. */
	snprintf(f, sizeof(f), "%s/new", dst);
	assert_true(open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) < 0);
	assert_int_equal(errno, EOVERFLOW);
	assert_int_equal(idmap_unmount(dst), 0);
	assert_false(idmap_is_mount(dst));
	assert_int_equal(idmap_unmount(dst), 0); /* idempotent */
	/* A missing source is an error naming it. */
	ns = idmap_userns_open(&m, &m, &err);
	assert_true(ns >= 0);
	assert_true(idmap_bind(ns, "/nonexistent-idmap-src", dst, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent-idmap-src"));
	close(ns);
}

static void test_probe(void **state)
{
	struct cric_err err;
	assert_int_equal(idmap_probe(*state, &err), 0);
	/* Nothing left behind. */
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%s/.idmap-probe-%d", (const char *)*state, (int)getpid());
	assert_int_equal(access(base, F_OK), -1);
	/* proc cannot be mapped: the probe says so. */
	assert_true(idmap_probe("/proc/self", &err) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_userns_maps),
		cmocka_unit_test_setup_teardown(test_bind_maps_owners, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_probe, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
