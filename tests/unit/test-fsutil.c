/* common/fsutil.h: mkdir_p, bounded reads, atomic writes, JSON files, path_join. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/macro.h"
#include "testutil.h"

#define SENTINEL ((char *)0x1)

static int setup_dir(void **state)
{
	*state = tmpdir_make("fsutil");
	return 0;
}

static int teardown_dir(void **state)
{
	tmpdir_remove(*state);
	return 0;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

/* ---- mkdir_p ---- */

static void test_mkdir_p_parents_and_leaf_mode(void **state)
{
	const char *d = *state;
	char p[PATH_MAX], q[PATH_MAX];
	mode_t old = umask(0);
	assert_int_equal(mkdir_p(tpath(p, d, "a/b/c"), 0700), 0);
	assert_int_equal(mode_of(tpath(q, d, "a")), 0755);
	assert_int_equal(mode_of(tpath(q, d, "a/b")), 0755);
	assert_int_equal(mode_of(tpath(q, d, "a/b/c")), 0700);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	/* Again: idempotent, and an existing leaf keeps its mode. */
	assert_int_equal(mkdir_p(p, 0711), 0);
	assert_int_equal(mode_of(p), 0700);

	/* A single new component under an existing dir. */
	assert_int_equal(mkdir_p(tpath(p, d, "single"), 0750), 0);
	assert_int_equal(mode_of(p), 0750);

	/* Repeated slashes are harmless. */
	assert_int_equal(mkdir_p(tpath(p, d, "x//y///z"), 0700), 0);
	assert_int_equal(mode_of(tpath(q, d, "x/y/z")), 0700);

	/* "/" exists. */
	assert_int_equal(mkdir_p("/", 0755), 0);
	umask(old);
}

static void test_mkdir_p_trailing_slash(void **state)
{
	const char *d = *state;
	char p[PATH_MAX], q[PATH_MAX];
	mode_t old = umask(0);
	int r = mkdir_p(tpath(p, d, "t/leaf/"), 0700);
	umask(old);
	assert_int_equal(r, 0);
	mode_t m = mode_of(tpath(q, d, "t/leaf"));
	if (m == 0755)
		FAIL_REGRESSION("mkdir_p(\"<dir>/t/leaf/\", 0700) creates leaf with 0755: the "
				"component before a trailing '/' is treated as a parent");
	assert_int_equal(m, 0700);
}

static void test_mkdir_p_not_a_directory(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	write_text(tpath(p, d, "file"), "x");
	/* The leaf exists as a file. */
	assert_int_equal(mkdir_p(p, 0755), -ENOTDIR);
	/* A file in the middle of the path. */
	assert_int_equal(mkdir_p(tpath(p, d, "file/sub"), 0755), -ENOTDIR);
	assert_int_equal(mkdir_p(tpath(p, d, "file/sub/deeper"), 0755), -ENOTDIR);
	/* A symlink to a directory counts as a directory; to a file, not. */
	char t[PATH_MAX];
	assert_int_equal(mkdir_p(tpath(t, d, "real"), 0755), 0);
	assert_int_equal(symlink(t, tpath(p, d, "link")), 0);
	assert_int_equal(mkdir_p(p, 0755), 0);
	assert_int_equal(mkdir_p(tpath(p, d, "link/under"), 0755), 0);
	assert_int_equal(symlink(tpath(t, d, "file"), tpath(p, d, "flink")), 0);
	assert_int_equal(mkdir_p(p, 0755), -ENOTDIR);
}

static void test_mkdir_p_bad_args(void **state)
{
	(void)state;
	assert_int_equal(mkdir_p(NULL, 0755), -EINVAL);
	assert_int_equal(mkdir_p("", 0755), -EINVAL);
	char *big = malloc(PATH_MAX + 10);
	assert_non_null(big);
	memset(big, 'a', PATH_MAX + 9);
	big[0] = '/';
	big[PATH_MAX + 9] = '\0';
	assert_int_equal(mkdir_p(big, 0755), -ENAMETOOLONG);
	big[PATH_MAX] = '\0'; /* exactly PATH_MAX chars: no room for the NUL */
	assert_int_equal(mkdir_p(big, 0755), -ENAMETOOLONG);
	free(big);
}

/* ---- read_file ---- */

static void test_read_file_content(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	static const char data[] = "line 1\n\0binary\xff\n";
	write_bytes(tpath(p, d, "f"), data, sizeof(data) - 1, 0644);

	char *buf = SENTINEL;
	size_t len = 12345;
	assert_int_equal(read_file(p, 1024, &buf, &len), 0);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(buf, data, len);
	assert_int_equal(buf[len], '\0');
	free(buf);

	/* ret_len is optional. */
	assert_int_equal(read_file(p, 1024, &buf, NULL), 0);
	assert_string_equal(buf, "line 1\n");
	free(buf);

	/* An empty file is an empty string. */
	write_text(tpath(p, d, "empty"), "");
	assert_int_equal(read_file(p, 1024, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
}

static void test_read_file_bounds(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	char data[100];
	memset(data, 'q', sizeof(data));
	write_bytes(tpath(p, d, "f100"), data, sizeof(data), 0644);

	char *buf = SENTINEL;
	size_t len = 7;
	assert_int_equal(read_file(p, 99, &buf, &len), -EFBIG);
	assert_int_equal(read_file(p, 0, &buf, &len), -EFBIG);
	/* Outputs untouched on failure. */
	assert_ptr_equal(buf, SENTINEL);
	assert_int_equal(len, 7);

	assert_int_equal(read_file(p, 101, &buf, &len), 0);
	assert_int_equal(len, 100);
	free(buf);
	buf = SENTINEL;
	assert_int_equal(read_file(p, SIZE_MAX, &buf, &len), 0);
	assert_int_equal(len, 100);
	free(buf);
	buf = SENTINEL;

	/* "At most max bytes": a file of exactly max bytes is accepted. */
	int r = read_file(p, 100, &buf, &len);
	if (r == -EFBIG)
		FAIL_REGRESSION("read_file() of a 100-byte file with max=100 fails -EFBIG: the "
				"buffer is full before EOF is seen and growing it is refused");
	assert_int_equal(r, 0);
	assert_int_equal(len, 100);
	free(buf);
	/* Also at 0: an empty file with max 0. */
	write_text(tpath(p, d, "empty"), "");
	assert_int_equal(read_file(p, 0, &buf, &len), 0);
	assert_int_equal(len, 0);
	free(buf);
}

static void test_read_file_unsized(void **state)
{
	(void)state;
	/* procfs files report size 0: the growth path. */
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(read_file("/proc/self/status", 1 << 20, &buf, &len), 0);
	assert_true(len > 0);
	assert_int_equal(strlen(buf), len);
	assert_non_null(strstr(buf, "Pid:"));
	free(buf);
	buf = SENTINEL;
	assert_int_equal(read_file("/proc/self/status", 16, &buf, &len), -EFBIG);
	assert_ptr_equal(buf, SENTINEL);
}

static void test_read_file_not_regular(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	char *buf = SENTINEL;
	size_t len = 7;
	assert_int_equal(read_file(d, 1024, &buf, &len), -EINVAL);
	assert_int_equal(read_file("/dev/null", 1024, &buf, &len), -EINVAL);
	assert_int_equal(read_file(tpath(p, d, "missing"), 1024, &buf, &len), -ENOENT);

	/* A FIFO with a writer present (so open does not block). */
	assert_int_equal(mkfifo(tpath(p, d, "fifo"), 0600), 0);
	int w = open(p, O_RDWR | O_CLOEXEC);
	assert_true(w >= 0);
	assert_int_equal(read_file(p, 1024, &buf, &len), -EINVAL);
	close(w);
	assert_ptr_equal(buf, SENTINEL);
	assert_int_equal(len, 7);
}

static int read_fifo_child(void *arg)
{
	char *buf = NULL;
	return read_file(arg, 1024, &buf, NULL) == -EINVAL ? 0 : 1;
}

/* A FIFO planted where a config is expected (cric.d/, CNI conf dir) must be
 * refused, not block the daemon forever in open(2). */
static void test_read_file_fifo_no_writer(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	assert_int_equal(mkfifo(tpath(p, d, "fifo2"), 0600), 0);
	int st = run_in_child(read_fifo_child, p, 2);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		FAIL_REGRESSION("read_file() on a FIFO without a writer blocks in open(2) "
				"(killed after 2 s) instead of returning -EINVAL");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- write_file_atomic ---- */

static void test_write_atomic_new(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	mode_t old = umask(077); /* the mode is exact, whatever the umask */
	assert_int_equal(write_file_atomic(tpath(p, d, "state.json"), "hello\n", 6, 0644), 0);
	umask(old);
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(read_file(p, 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "hello\n");
	free(buf);
	assert_int_equal(mode_of(p), 0644);
	assert_int_equal(dir_count(d), 1);

	assert_int_equal(write_file_atomic(tpath(p, d, "secret"), "k", 1, 0600), 0);
	assert_int_equal(mode_of(p), 0600);
	/* Zero bytes is a valid content. */
	assert_int_equal(write_file_atomic(tpath(p, d, "zero"), "", 0, 0640), 0);
	assert_int_equal(read_file(p, 100, &buf, &len), 0);
	assert_int_equal(len, 0);
	free(buf);
	assert_int_equal(mode_of(p), 0640);
	assert_int_equal(dir_count(d), 3);
}

static void test_write_atomic_replaces(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	write_bytes(tpath(p, d, "f"), "old content, longer", 19, 0666);
	/* A reader holding the old file keeps seeing all of the old content. */
	int rfd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);

	assert_int_equal(write_file_atomic(p, "new", 3, 0600), 0);
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(read_file(p, 100, &buf, &len), 0);
	assert_int_equal(len, 3);
	assert_string_equal(buf, "new");
	free(buf);
	assert_int_equal(mode_of(p), 0600);

	char old[64] = { 0 };
	assert_int_equal(read(rfd, old, sizeof(old) - 1), 19);
	assert_string_equal(old, "old content, longer");
	close(rfd);
	assert_int_equal(dir_count(d), 1);

	/* Large content round-trips. */
	size_t n = 3 * 1024 * 1024 + 7;
	char *big = malloc(n);
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 131 + 7);
	assert_int_equal(write_file_atomic(p, big, n, 0644), 0);
	assert_int_equal(read_file(p, n + 1, &buf, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(buf, big, n);
	free(buf);
	free(big);
	assert_int_equal(dir_count(d), 1);
}

static void test_write_atomic_failures(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	/* Missing directory. */
	assert_int_equal(write_file_atomic(tpath(p, d, "nodir/f"), "x", 1, 0644), -ENOENT);
	/* The target is a directory: rename fails, the temp file is removed. */
	char sub[PATH_MAX];
	assert_int_equal(mkdir(tpath(sub, d, "sub"), 0755), 0);
	write_text(tpath(p, d, "sub/keep"), "k");
	assert_true(write_file_atomic(sub, "x", 1, 0644) < 0);
	assert_int_equal(dir_count(d), 1);
	assert_int_equal(dir_count(sub), 1);
}

/* The volatile variants (no fsync, for the run dir) replace alike: same
 * content, exact mode, no temp file left, a failure leaves none either. */
static void test_write_volatile(void **state)
{
	const char *d = *state;
	char p[PATH_MAX], q[PATH_MAX];
	write_bytes(tpath(p, d, "f"), "old content", 11, 0666);
	int rfd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	mode_t old = umask(077);
	assert_int_equal(write_file_volatile(p, "new", 3, 0644), 0);
	umask(old);
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(read_file(p, 100, &buf, &len), 0);
	assert_int_equal(len, 3);
	assert_string_equal(buf, "new");
	free(buf);
	assert_int_equal(mode_of(p), 0644);
	char was[32] = { 0 };
	assert_int_equal(read(rfd, was, sizeof(was) - 1), 11);
	assert_string_equal(was, "old content");
	close(rfd);
	assert_int_equal(dir_count(d), 1);

	json_t *doc = json_pack("{s:i, s:s}", "b", 2, "a", "x");
	assert_non_null(doc);
	assert_int_equal(json_save_volatile(tpath(p, d, "v.json"), doc, 0600), 0);
	assert_int_equal(json_save_atomic(tpath(q, d, "a.json"), doc, 0600), 0);
	char *vb = NULL, *ab = NULL;
	size_t vl = 0, al = 0;
	assert_int_equal(read_file(p, 4096, &vb, &vl), 0);
	assert_int_equal(read_file(q, 4096, &ab, &al), 0);
	assert_string_equal(vb, "{\"a\":\"x\",\"b\":2}\n");
	assert_string_equal(vb, ab);
	free(vb);
	free(ab);
	assert_int_equal(mode_of(p), 0600);
	json_decref(doc);
	assert_int_equal(dir_count(d), 3);

	assert_int_equal(write_file_volatile(tpath(p, d, "nodir/f"), "x", 1, 0644), -ENOENT);
	char sub[PATH_MAX];
	assert_int_equal(mkdir(tpath(sub, d, "sub"), 0755), 0);
	assert_true(write_file_volatile(sub, "x", 1, 0644) < 0);
	assert_int_equal(dir_count(d), 4);
	assert_int_equal(dir_count(sub), 0);
}

/* ---- JSON ---- */

static void test_json_save_load(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	json_t *doc = json_pack("{s:i, s:[b,n], s:s, s:{s:s}}", "zeta", 1, "alpha", 1, "mid",
				"caf\xc3\xa9 \"q\"", "obj", "k", "v");
	assert_non_null(doc);
	assert_int_equal(json_save_atomic(tpath(p, d, "doc.json"), doc, 0640), 0);
	assert_int_equal(mode_of(p), 0640);
	assert_int_equal(dir_count(d), 1);

	/* Compact, sorted keys, one trailing newline. */
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(read_file(p, 4096, &buf, &len), 0);
	assert_string_equal(buf, "{\"alpha\":[true,null],\"mid\":\"caf\xc3\xa9 \\\"q\\\"\","
				 "\"obj\":{\"k\":\"v\"},\"zeta\":1}\n");
	free(buf);

	json_t *back = NULL;
	char err[128] = "untouched";
	assert_int_equal(json_load_path(p, 4096, &back, err, sizeof(err)), 0);
	assert_true(json_equal(doc, back));
	json_decref(back);
	back = NULL;
	/* err may be NULL. */
	assert_int_equal(json_load_path(p, 4096, &back, NULL, 0), 0);
	json_decref(back);

	/* Over max. */
	back = (json_t *)SENTINEL;
	assert_int_equal(json_load_path(p, 10, &back, err, sizeof(err)), -EFBIG);
	assert_ptr_equal(back, SENTINEL);
	assert_string_equal(err, strerror(EFBIG));
	json_decref(doc);

	/* Any JSON value may be saved and loaded back. */
	json_t *arr = json_pack("[i,s]", 5, "x");
	assert_int_equal(json_save_atomic(p, arr, 0600), 0);
	assert_int_equal(json_load_path(p, 4096, &back, NULL, 0), 0);
	assert_true(json_equal(arr, back));
	json_decref(back);
	json_decref(arr);
}

static void test_json_load_errors(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	static const struct {
		const char *content;
		size_t len;
	} bad[] = {
		{ "", 0 },
		{ "{", 1 },
		{ "{\"a\":1,}", 8 },
		{ "{\"a\":1}x", 8 },
		{ "{\"a\":1,\"a\":2}", 13 }, /* duplicate keys */
		{ "{\"a\":\"x\0y\"}", 11 },  /* raw NUL byte */
		{ "{\"a\":\"\xff\"}", 9 },   /* not UTF-8 */
		{ "nul", 3 },
		{ "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 72 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_bytes(tpath(p, d, "bad.json"), bad[i].content, bad[i].len, 0644);
		json_t *doc = (json_t *)SENTINEL;
		char err[256] = "";
		int r = json_load_path(p, 4096, &doc, err, sizeof(err));
		if (r != -EBADMSG)
			print_message("case %zu: r=%d\n", i, r);
		assert_int_equal(r, -EBADMSG);
		assert_ptr_equal(doc, SENTINEL);
		assert_non_null(strstr(err, "line "));
		/* Without an err buffer, too. */
		assert_int_equal(json_load_path(p, 4096, &doc, NULL, 0), -EBADMSG);
		/* A tiny err buffer is truncated, not overrun. */
		char tiny[4] = "xyz";
		assert_int_equal(json_load_path(p, 4096, &doc, tiny, sizeof(tiny)), -EBADMSG);
		assert_int_equal(strlen(tiny), 3);
	}

	json_t *doc = (json_t *)SENTINEL;
	char err[256] = "";
	assert_int_equal(json_load_path(tpath(p, d, "missing.json"), 4096, &doc, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, strerror(ENOENT));
	assert_int_equal(json_load_path(d, 4096, &doc, err, sizeof(err)), -EINVAL);
	assert_ptr_equal(doc, SENTINEL);
}

/* ---- path_join ---- */

static void test_path_join(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b, *want;
	} cases[] = {
		{ "/", "x", "/x" },
		{ "/", "/x", "/x" },
		{ "//", "x", "/x" },
		{ "/a", "b", "/a/b" },
		{ "/a/", "b", "/a/b" },
		{ "/a", "/b", "/a/b" },
		{ "/a///", "///b", "/a/b" },
		{ "/a", "b/c/", "/a/b/c/" },
		{ "a", "b", "a/b" },
		{ ".", "cric.d", "./cric.d" },
		{ "/a", "", "/a" },
		{ "/a/", "", "/a" },
		{ "/", "", "/" },
		{ "/", "/", "/" },
		{ "/run/cric", "ipc", "/run/cric/ipc" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = path_join(cases[i].a, cases[i].b);
		assert_non_null(s);
		if (strcmp(s, cases[i].want) != 0)
			print_message("path_join(\"%s\", \"%s\") = \"%s\"\n", cases[i].a,
				      cases[i].b, s);
		assert_string_equal(s, cases[i].want);
		free(s);
	}
	/* Long parts are joined whole. */
	char *a = malloc(5000), *b = malloc(5000);
	assert_non_null(a);
	assert_non_null(b);
	memset(a, 'a', 4999);
	memset(b, 'b', 4999);
	a[4999] = b[4999] = '\0';
	char *s = path_join(a, b);
	assert_non_null(s);
	assert_int_equal(strlen(s), 4999 * 2 + 1);
	assert_int_equal(s[4999], '/');
	free(s);
	free(a);
	free(b);
}

/* What a kill -9 between mkostemp and rename leaves is swept; nothing
 * else is. */
static void test_sweep_atomic_temps(void **state)
{
	const char *d = *state;
	char p[PATH_MAX];
	static const char *const temps[] = { "a.json.tmpAbC123", "refs.json.tmp000000",
					     "x.tmpzzzzzz" };
	static const char *const kept[] = {
		"a.json",   "a.tmp", "a.json.tmpAB", "a.json.tmpAbC12-", "b.json.tmpAbC1234",
		"tmpAbC123"
	};
	for (size_t i = 0; i < ARRAY_SIZE(temps); i++) {
		write_text(tpath(p, d, temps[i]), "{");
		assert_true(atomic_temp_name(temps[i]));
	}
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++) {
		write_text(tpath(p, d, kept[i]), "{}");
		assert_false(atomic_temp_name(kept[i]));
	}
	/* A real one, as write_file_atomic names it. */
	char tmpl[PATH_MAX];
	snprintf(tmpl, sizeof(tmpl), "%s/rec.json.tmpXXXXXX", d);
	int fd = mkostemp(tmpl, O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sweep_atomic_temps(d, "test"), (int)ARRAY_SIZE(temps) + 1);
	assert_int_equal(dir_count(d), (int)ARRAY_SIZE(kept));
	assert_int_equal(sweep_atomic_temps(d, "test"), 0);
	assert_true(sweep_atomic_temps(tpath(p, d, "missing"), "test") < 0);
}

static void test_path_is_clean(void **state)
{
	(void)state;
	static const char *const good_abs[] = { "/", "/var/log/pods/ns_name_uid", "/a",
						"/a/b.c/..d/.e" };
	static const char *const bad_abs[] = { "",          "var/log",   "/var/log/pods/x/..",
					       "/var/../x", "/var//log", "/var/./log",
					       "/var/log/", "//",        "/a/\x01b",
					       "/..",       "/.",        "/a/b/." };
	for (size_t i = 0; i < ARRAY_SIZE(good_abs); i++)
		if (!path_is_clean(good_abs[i], true, PATH_MAX))
			fail_msg("\"%s\" refused", good_abs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad_abs); i++)
		if (path_is_clean(bad_abs[i], true, PATH_MAX))
			fail_msg("\"%s\" accepted", bad_abs[i]);
	assert_true(path_is_clean("ctr/0.log", false, PATH_MAX));
	assert_false(path_is_clean("/ctr/0.log", false, PATH_MAX));
	assert_false(path_is_clean("../0.log", false, PATH_MAX));
	assert_false(path_is_clean("ctr/../../0.log", false, PATH_MAX));
	assert_true(path_is_clean("/abc", true, 5));
	assert_false(path_is_clean("/abcd", true, 5));
}

/* chown_tree: everything below, and never through a symlink (a daemon that
 * ran as root before leaves its files to its user; a link there must not
 * give the user the file it points to). */
static void test_chown_tree(void **state)
{
	const char *dir = *state;
	if (geteuid() != 0)
		skip(); /* chown to another user */
	char top[PATH_MAX], sub[PATH_MAX], f[PATH_MAX], g[PATH_MAX], link[PATH_MAX],
	    target[PATH_MAX];
	snprintf(top, sizeof(top), "%s/state", dir);
	snprintf(sub, sizeof(sub), "%s/state/a/b", dir);
	snprintf(f, sizeof(f), "%s/state/file", dir);
	snprintf(g, sizeof(g), "%s/state/a/b/deep", dir);
	snprintf(link, sizeof(link), "%s/state/a/link", dir);
	snprintf(target, sizeof(target), "%s/outside", dir);
	assert_int_equal(mkdir_p(sub, 0700), 0);
	write_text(f, "x");
	write_text(g, "y");
	write_text(target, "not theirs");
	assert_int_equal(symlink(target, link), 0);

	assert_int_equal(chown_tree(top, 65534, 65533), 0);
	const char *const mine[] = { top, sub, f, g, link };
	struct stat st;
	for (size_t i = 0; i < ARRAY_SIZE(mine); i++) {
		assert_int_equal(lstat(mine[i], &st), 0);
		if (st.st_uid != 65534 || st.st_gid != 65533)
			fail_msg("\"%s\" is %u:%u", mine[i], st.st_uid, st.st_gid);
	}
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_uid, 0);
	/* a symlink as the top is refused, not followed */
	char top_link[PATH_MAX];
	snprintf(top_link, sizeof(top_link), "%s/toplink", dir);
	assert_int_equal(symlink(target, top_link), 0);
	assert_int_equal(chown_tree(top_link, 65534, 65533), -ENOTDIR);
	assert_int_equal(chown_tree(target, 65534, 65533), -ENOTDIR);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_uid, 0);
}

static void test_path_beside_exe(void **state)
{
	(void)state;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	char want[PATH_MAX + 16];
	snprintf(want, sizeof(want), "%s/cric-helper", exe);
	char *got = path_beside_exe("cric-helper");
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)
	const struct CMUnitTest tests[] = {
		T(test_mkdir_p_parents_and_leaf_mode),
		cmocka_unit_test(test_path_beside_exe),
		T(test_mkdir_p_trailing_slash),
		T(test_mkdir_p_not_a_directory),
		T(test_mkdir_p_bad_args),
		T(test_read_file_content),
		T(test_read_file_bounds),
		T(test_read_file_unsized),
		T(test_read_file_not_regular),
		T(test_read_file_fifo_no_writer),
		T(test_write_atomic_new),
		T(test_write_atomic_replaces),
		T(test_write_atomic_failures),
		T(test_write_volatile),
		T(test_json_save_load),
		T(test_json_load_errors),
		T(test_path_join),
		T(test_path_is_clean),
		T(test_sweep_atomic_temps),
		T(test_chown_tree),
	};
#undef T
	return cmocka_run_group_tests_name("fsutil", tests, NULL, NULL);
}
