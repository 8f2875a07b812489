/* stored/blobs.h: the content-addressed blob store and SHA-256 helper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "stored/blobs.h"
#include "testutil.h"

/* sha256("hello\n") and sha256("") */
#define HELLO_DIGEST "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define EMPTY_DIGEST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define OTHER_DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
	char *dir;   /* temp dir: root of the store, and "staging/" */
	int root_fd; /* the store root */
	char staging[PATH_MAX];
	int staging_fd;
	struct blob_store *s;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->dir = tmpdir_make("blobs");
	char p[PATH_MAX];
	assert_int_equal(mkdir(tpath(p, fx->dir, "store"), 0700), 0);
	fx->root_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->root_fd >= 0);
	assert_int_equal(mkdir(tpath(fx->staging, fx->dir, "staging"), 0700), 0);
	fx->staging_fd = open(fx->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->staging_fd >= 0);
	struct cric_err err = { "" };
	assert_int_equal(blob_store_open(fx->root_fd, NULL, &fx->s, &err), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	blob_store_free(fx->s);
	close(fx->root_fd);
	close(fx->staging_fd);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

/* Names in the store's sha256/ dir, temp files included. */
static int store_entries(struct fx *fx)
{
	char p[PATH_MAX], q[PATH_MAX];
	return dir_count(tpath(q, tpath(p, fx->dir, "store"), "sha256"));
}

static int staged(struct fx *fx, const char *name, const char *content)
{
	char p[PATH_MAX];
	write_text(tpath(p, fx->staging, name), content);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void test_digest_check(void **state)
{
	(void)state;
	struct cric_err err = { "" };
	assert_int_equal(blob_digest_check(HELLO_DIGEST, &err), 0);
	assert_int_equal(blob_digest_check(EMPTY_DIGEST, NULL), 0);
	static const char *const bad[] = {
		"",
		"sha256:",
		"sha256",
		"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		"sha256:5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03",
		"sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0",
		"sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be033",
		"sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n",
		"sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0g",
		"sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"SHA256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		"sha512:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		" sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		"sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0\x1b",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err.msg[0] = '\0';
		if (blob_digest_check(bad[i], &err) != -EINVAL)
			fail_msg("accepted bad digest #%zu", i);
		assert_non_null(strstr(err.msg, "invalid digest"));
		/* Control characters never reach the message raw. */
		for (const char *p = err.msg; *p; p++)
			assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	}
	assert_int_equal(blob_digest_check(NULL, &err), -EINVAL);
	assert_int_equal(blob_digest_check(bad[ARRAY_SIZE(bad) - 1], &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\\x1b"));
}

static void test_hash(void **state)
{
	(void)state;
	struct blob_hash *h = blob_hash_new();
	assert_non_null(h);
	assert_int_equal(blob_hash_update(h, "hel", 3), 0);
	assert_int_equal(blob_hash_update(h, "lo\n", 3), 0);
	char d[BLOB_DIGEST_BUF];
	assert_int_equal(blob_hash_final(h, d), 0);
	assert_string_equal(d, HELLO_DIGEST);
	assert_null(blob_hash_free(h));
	assert_null(blob_hash_free(NULL));
	h = blob_hash_new();
	assert_int_equal(blob_hash_final(h, d), 0);
	assert_string_equal(d, EMPTY_DIGEST);
	blob_hash_free(h);
}

static void test_import_fd_roundtrip(void **state)
{
	struct fx *fx = *state;
	struct cric_err err = { "" };
	int fd = staged(fx, "hello", "hello\n");
	/* The fd's offset is neither used nor moved. */
	assert_int_equal(lseek(fd, 3, SEEK_SET), 3);
	uint64_t size = 0;
	assert_int_equal(blob_import_fd(fx->s, HELLO_DIGEST, fd, &size, &err), 0);
	assert_int_equal(size, 6);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
	close(fd);

	struct blob_info info;
	assert_int_equal(blob_stat(fx->s, HELLO_DIGEST, &info, &err), 0);
	assert_int_equal(info.size, 6);
	assert_true(info.disk_bytes >= 6);

	int rfd = -1;
	assert_int_equal(blob_open(fx->s, HELLO_DIGEST, &rfd, &err), 0);
	char buf[16] = { 0 };
	assert_int_equal(read(rfd, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "hello\n");
	assert_true(fcntl(rfd, F_GETFD) & FD_CLOEXEC);
	close(rfd);

	/* Published read-only, in a 0700 dir, nothing else around. */
	char p[PATH_MAX], q[PATH_MAX];
	struct stat st;
	assert_int_equal(stat(tpath(q, tpath(p, fx->dir, "store"), "sha256"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(
	    stat(tpath(p, q, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
		 &st),
	    0);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(store_entries(fx), 1);

	/* Idempotent: present, so not even read (an fd of other content works). */
	fd = staged(fx, "other", "something else");
	size = 0;
	assert_int_equal(blob_import_fd(fx->s, HELLO_DIGEST, fd, &size, &err), 0);
	assert_int_equal(size, 6);
	close(fd);
	assert_int_equal(store_entries(fx), 1);

	/* The empty blob is a blob. */
	fd = staged(fx, "empty", "");
	assert_int_equal(blob_import_fd(fx->s, EMPTY_DIGEST, fd, NULL, &err), 0);
	close(fd);
	assert_int_equal(store_entries(fx), 2);
}

static void test_import_wrong_digest(void **state)
{
	struct fx *fx = *state;
	struct cric_err err = { "" };
	int fd = staged(fx, "hello", "hello, tampered\n");
	uint64_t size = 77;
	assert_int_equal(blob_import_fd(fx->s, HELLO_DIGEST, fd, &size, &err), -EBADMSG);
	print_message("  wrong digest: %s\n", err.msg);
	assert_non_null(strstr(err.msg, HELLO_DIGEST));
	assert_non_null(strstr(err.msg, "does not match"));
	assert_int_equal(size, 77);
	/* Nothing left behind, not even a temp file. */
	assert_int_equal(store_entries(fx), 0);
	assert_int_equal(blob_stat(fx->s, HELLO_DIGEST, &(struct blob_info){ 0 }, NULL), -ENOENT);
	close(fd);

	/* Invalid digests are refused before anything is read or created. */
	fd = staged(fx, "hello", "hello\n");
	assert_int_equal(blob_import_fd(fx->s, "sha256:../../x", fd, NULL, &err), -EINVAL);
	assert_int_equal(
	    blob_import_fd(fx->s, "md5:5891b5b522d5df086d0ff0b110fbd9d2", fd, NULL, &err), -EINVAL);
	close(fd);
	assert_int_equal(store_entries(fx), 0);
	int rfd = -1;
	assert_int_equal(blob_open(fx->s, "sha256:..", &rfd, &err), -EINVAL);
	assert_int_equal(blob_remove(fx->s, "sha256:/etc/passwd", &err), -EINVAL);
	assert_int_equal(blob_stat(fx->s, "", &(struct blob_info){ 0 }, &err), -EINVAL);
}

static void test_import_limits_and_types(void **state)
{
	struct fx *fx = *state;
	struct cric_err err = { "" };
	/* A store with a 4-byte limit. */
	char p[PATH_MAX];
	assert_int_equal(mkdir(tpath(p, fx->dir, "small"), 0700), 0);
	int sfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct blob_store *small = NULL;
	struct blob_store_opts o = { .max_blob_size = 4 };
	assert_int_equal(blob_store_open(sfd, &o, &small, &err), 0);
	int fd = staged(fx, "hello", "hello\n");
	assert_int_equal(blob_import_fd(small, HELLO_DIGEST, fd, NULL, &err), -EFBIG);
	print_message("  too big: %s\n", err.msg);
	close(fd);
	char q[PATH_MAX];
	assert_int_equal(dir_count(tpath(q, p, "sha256")), 0);
	blob_store_free(small);
	close(sfd);

	/* Not a regular file: a pipe, a directory. */
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(blob_import_fd(fx->s, HELLO_DIGEST, pfd[0], NULL, &err), -EINVAL);
	close(pfd[0]);
	close(pfd[1]);
	assert_int_equal(blob_import_fd(fx->s, HELLO_DIGEST, fx->staging_fd, NULL, &err), -EINVAL);
	assert_int_equal(store_entries(fx), 0);
}

static void test_import_at(void **state)
{
	struct fx *fx = *state;
	struct cric_err err = { "" };
	char p[PATH_MAX];
	write_text(tpath(p, fx->staging, "blob"), "hello\n");
	uint64_t size = 0;
	assert_int_equal(blob_import_at(fx->s, HELLO_DIGEST, fx->staging_fd, "blob", &size, &err),
			 0);
	assert_int_equal(size, 6);
	assert_int_equal(blob_remove(fx->s, HELLO_DIGEST, &err), 0);
	assert_int_equal(blob_remove(fx->s, HELLO_DIGEST, &err), -ENOENT);

	/* The peer names a file beneath the staging dir, nothing else. */
	write_text(tpath(p, fx->dir, "outside"), "hello\n");
	assert_int_equal(symlink(p, tpath(p, fx->staging, "link")), 0);
	assert_int_equal(symlink("blob", tpath(p, fx->staging, "rel-link")), 0);
	assert_int_equal(mkfifo(tpath(p, fx->staging, "fifo"), 0600), 0);
	static const struct {
		const char *path;
		int r;
	} bad[] = {
		{ "../outside", -EXDEV }, { "link", -ELOOP },
		{ "rel-link", -ELOOP },   { "/etc/passwd", -EXDEV },
		{ "fifo", -EINVAL },      { "missing", -ENOENT },
		{ "", -EINVAL },          { "/proc/self/fd/0", -EXDEV },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r =
		    blob_import_at(fx->s, HELLO_DIGEST, fx->staging_fd, bad[i].path, NULL, &err);
		if (r != bad[i].r)
			fail_msg("\"%s\": %d, want %d (%s)", bad[i].path, r, bad[i].r, err.msg);
	}
	assert_int_equal(store_entries(fx), 0);
}

static void test_list_usage_remove(void **state)
{
	struct fx *fx = *state;
	struct cric_err err = { "" };
	char **v = NULL;
	assert_int_equal(blob_list(fx->s, &v, &err), 0);
	assert_null(v[0]);
	strv_free(v);
	struct blob_usage u = { 9, 9, 9 };
	assert_int_equal(blob_usage(fx->s, &u, &err), 0);
	assert_int_equal(u.blobs, 0);
	assert_int_equal(u.bytes, 0);

	int fd = staged(fx, "hello", "hello\n");
	assert_int_equal(blob_import_fd(fx->s, HELLO_DIGEST, fd, NULL, &err), 0);
	close(fd);
	fd = staged(fx, "empty", "");
	assert_int_equal(blob_import_fd(fx->s, EMPTY_DIGEST, fd, NULL, &err), 0);
	close(fd);
	/* Foreign and temp-looking names are neither listed nor counted. */
	char p[PATH_MAX], q[PATH_MAX];
	tpath(q, tpath(p, fx->dir, "store"), "sha256");
	write_text(tpath(p, q, "README"), "x");
	write_text(
	    tpath(p, q, "0000000000000000000000000000000000000000000000000000000000000000.x"), "x");
	assert_int_equal(
	    mkdir(tpath(p, q, "1111111111111111111111111111111111111111111111111111111111111111"),
		  0700),
	    0);

	assert_int_equal(blob_list(fx->s, &v, &err), 0);
	assert_non_null(v[0]);
	assert_string_equal(v[0], HELLO_DIGEST);
	assert_string_equal(v[1], EMPTY_DIGEST);
	assert_null(v[2]);
	strv_free(v);
	assert_int_equal(blob_usage(fx->s, &u, &err), 0);
	assert_int_equal(u.blobs, 2);
	assert_int_equal(u.bytes, 6);
	assert_true(u.disk_bytes >= 4096);

	assert_int_equal(blob_remove(fx->s, EMPTY_DIGEST, &err), 0);
	assert_int_equal(blob_remove(fx->s, OTHER_DIGEST, &err), -ENOENT);
	assert_non_null(strstr(err.msg, OTHER_DIGEST));
	assert_int_equal(blob_usage(fx->s, &u, &err), 0);
	assert_int_equal(u.blobs, 1);
	int rfd = -1;
	assert_int_equal(blob_open(fx->s, EMPTY_DIGEST, &rfd, &err), -ENOENT);
	assert_int_equal(rfd, -1);
}

static void test_stale_temp_swept(void **state)
{
	struct fx *fx = *state;
	struct cric_err err = { "" };
	char p[PATH_MAX], q[PATH_MAX];
	tpath(q, tpath(p, fx->dir, "store"), "sha256");
	/* What a kill -9 during an import leaves behind. */
	write_text(tpath(p, q,
			 ".tmp-5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03-"
			 "0123456789abcdef"),
		   "half");
	assert_int_equal(store_entries(fx), 1);
	struct blob_store *again = NULL;
	assert_int_equal(blob_store_open(fx->root_fd, NULL, &again, &err), 0);
	assert_int_equal(store_entries(fx), 0);
	blob_store_free(again);
}

struct racer {
	struct blob_store *s;
	const char *path;
	pthread_barrier_t *barrier;
	int r;
	uint64_t size;
	struct cric_err err;
};

static char race_digest[BLOB_DIGEST_BUF];

static void *race_import(void *arg)
{
	struct racer *ra = arg;
	int fd = open(ra->path, O_RDONLY | O_CLOEXEC);
	pthread_barrier_wait(ra->barrier);
	ra->r = fd < 0 ? -errno : blob_import_fd(ra->s, race_digest, fd, &ra->size, &ra->err);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void test_concurrent_same_blob(void **state)
{
	struct fx *fx = *state;
	/* Big enough that the two copies overlap. */
	size_t n = 4 << 20;
	char *data = malloc(n);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 2654435761u >> 13);
	char p[PATH_MAX];
	write_bytes(tpath(p, fx->staging, "big"), data, n, 0644);
	struct blob_hash *h = blob_hash_new();
	assert_int_equal(blob_hash_update(h, data, n), 0);
	assert_int_equal(blob_hash_final(h, race_digest), 0);
	blob_hash_free(h);
	free(data);

	for (int round = 0; round < 5; round++) {
		pthread_barrier_t barrier;
		assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
		struct racer ra[2] = {
			{ .s = fx->s, .path = p, .barrier = &barrier, .r = 1 },
			{ .s = fx->s, .path = p, .barrier = &barrier, .r = 1 },
		};
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&t[i], NULL, race_import, &ra[i]), 0);
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_join(t[i], NULL), 0);
		pthread_barrier_destroy(&barrier);
		for (int i = 0; i < 2; i++) {
			if (ra[i].r != 0)
				fail_msg("thread %d: %d %s", i, ra[i].r, ra[i].err.msg);
			assert_int_equal(ra[i].size, n);
		}
		/* One file, no temp file. */
		assert_int_equal(store_entries(fx), 1);
		struct blob_info info;
		assert_int_equal(blob_stat(fx->s, race_digest, &info, NULL), 0);
		assert_int_equal(info.size, n);
		assert_int_equal(blob_remove(fx->s, race_digest, NULL), 0);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_digest_check),
		T(test_hash),
		T(test_import_fd_roundtrip),
		T(test_import_wrong_digest),
		T(test_import_limits_and_types),
		T(test_import_at),
		T(test_list_usage_remove),
		T(test_stale_temp_swept),
		T(test_concurrent_same_blob),
	};
#undef T
	return cmocka_run_group_tests_name("stored-blobs", tests, NULL, NULL);
}
