/* runtimed/checkpoint.h: the location check, the writable layer's diff
 * and the checkpoint archive, on a fake CRIU image directory (what runc
 * checkpoint leaves, as files), read back with libarchive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "testutil.h"

#include "common/fsutil.h"
#include "runtimed/checkpoint.h"

static void put(const char *dir, const char *rel, const char *text)
{
	char *p = path_join(dir, rel);
	assert_non_null(p);
	assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
	free(p);
}

static void mkd(const char *dir, const char *rel)
{
	char *p = path_join(dir, rel);
	assert_int_equal(mkdir_p(p, 0755), 0);
	free(p);
}

struct member {
	char name[256];
	mode_t mode;
	char *data;
	size_t len;
	bool has_overlay_xattr;
};

/* Every member of the tar at path (at most 32). */
static size_t read_tar(const char *path, struct member *out, size_t max)
{
	struct archive *a = archive_read_new();
	assert_non_null(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 16384), ARCHIVE_OK);
	struct archive_entry *e;
	size_t n = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		assert_true(n < max);
		struct member *m = &out[n++];
		memset(m, 0, sizeof(*m));
		snprintf(m->name, sizeof(m->name), "%s", archive_entry_pathname(e));
		size_t nl = strlen(m->name);
		if (nl > 1 && m->name[nl - 1] == '/') /* tar names directories "d/" */
			m->name[nl - 1] = '\0';
		m->mode = archive_entry_mode(e);
		const char *xn;
		const void *xv;
		size_t xs;
		archive_entry_xattr_reset(e);
		while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK)
			m->has_overlay_xattr |= strncmp(xn, "trusted.overlay.", 16) == 0;
		la_int64_t size = archive_entry_size(e);
		m->data = calloc(1, (size_t)size + 1);
		assert_non_null(m->data);
		if (size > 0)
			assert_int_equal(archive_read_data(a, m->data, (size_t)size), size);
		m->len = (size_t)size;
	}
	archive_read_free(a);
	return n;
}

static const struct member *find(const struct member *m, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0)
			return &m[i];
	return NULL;
}

static void free_members(struct member *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].data);
}

static void test_location(void **state)
{
	(void)state;
	char *base = tmpdir_make("ckpt-loc");
	char *own = path_join(base, "cric");
	char *out = path_join(base, "out");
	mkd(base, "cric/runtimed");
	mkd(base, "out");
	const char *owns[] = { own, NULL };
	struct cric_err e;
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/a.tar", out);
	assert_int_equal(ckpt_location_check(p, owns, &e), 0);

	assert_int_equal(ckpt_location_check("", owns, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "required"));
	assert_int_equal(ckpt_location_check(NULL, owns, &e), -EINVAL);
	assert_int_equal(ckpt_location_check("rel/a.tar", owns, &e), -EINVAL);
	assert_int_equal(ckpt_location_check("/", owns, &e), -EINVAL);
	snprintf(p, sizeof(p), "%s/../out/a.tar", out);
	assert_int_equal(ckpt_location_check(p, owns, &e), -EINVAL);
	snprintf(p, sizeof(p), "%s/a.tar/", out);
	assert_int_equal(ckpt_location_check(p, owns, &e), -EINVAL);
	snprintf(p, sizeof(p), "%s/missing/a.tar", out);
	assert_int_equal(ckpt_location_check(p, owns, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "its directory"));

	/* Inside the runtime's own directory, directly or by a link. */
	snprintf(p, sizeof(p), "%s/runtimed/a.tar", own);
	assert_int_equal(ckpt_location_check(p, owns, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "own directory"));
	char link[PATH_MAX];
	snprintf(link, sizeof(link), "%s/sneaky", out);
	assert_int_equal(symlink(own, link), 0);
	snprintf(p, sizeof(p), "%s/sneaky/a.tar", out);
	assert_int_equal(ckpt_location_check(p, owns, &e), -EINVAL);
	/* An existing location that links into it. */
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/runtimed/victim", own);
	put(own, "runtimed/victim", "x");
	snprintf(p, sizeof(p), "%s/link.tar", out);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(ckpt_location_check(p, owns, &e), -EINVAL);

	free(own);
	free(out);
	tmpdir_remove(base);
}

/* An overlay upper dir: a new file, a changed dir, a symlink, a whiteout
 * (a 0:0 character device), an opaque dir's xattr. */
static void make_upper(const char *upper)
{
	mkd(upper, "etc");
	put(upper, "etc/new.conf", "hello\n");
	mkd(upper, "var/lib/app");
	put(upper, "var/lib/app/counter", "42\n");
	char *p = path_join(upper, "etc/link");
	assert_int_equal(symlink("new.conf", p), 0);
	free(p);
	p = path_join(upper, "etc/gone");
	assert_int_equal(mknod(p, S_IFCHR | 0000, makedev(0, 0)), 0);
	free(p);
	p = path_join(upper, "var/lib/app");
	/* trusted.* needs CAP_SYS_ADMIN and a filesystem that takes it. */
	if (setxattr(p, "trusted.overlay.opaque", "y", 1, 0) < 0)
		print_message("(no trusted xattr here: %s; the strip is untested)\n",
			      strerror(errno));
	assert_int_equal(setxattr(p, "user.kept", "v", 1, 0) == 0 || errno == ENOTSUP, true);
	free(p);
}

static void test_rootfs_diff(void **state)
{
	(void)state;
	char *base = tmpdir_make("ckpt-diff");
	char *upper = path_join(base, "upper");
	char *work = path_join(base, "work");
	mkd(base, "upper");
	mkd(base, "work");
	make_upper(upper);
	struct cric_err e;
	assert_int_equal(ckpt_rootfs_diff(upper, work, &e), 0);

	char *tar = path_join(work, CKPT_ROOTFS_DIFF);
	struct member m[32];
	size_t n = read_tar(tar, m, 32);
	const struct member *f = find(m, n, "etc/new.conf");
	assert_non_null(f);
	assert_string_equal(f->data, "hello\n");
	assert_non_null(find(m, n, "etc"));
	assert_non_null(find(m, n, "etc/link"));
	f = find(m, n, "var/lib/app/counter");
	assert_non_null(f);
	assert_string_equal(f->data, "42\n");
	f = find(m, n, "var/lib/app");
	assert_non_null(f);
	assert_false(f->has_overlay_xattr);
	/* The whiteout is no member: it is a deleted file. */
	assert_null(find(m, n, "etc/gone"));
	for (size_t i = 0; i < n; i++)
		assert_true(m[i].name[0] != '/' && strncmp(m[i].name, "../", 3) != 0);
	free_members(m, n);

	char *del = path_join(work, CKPT_DELETED_FILES);
	json_t *doc = json_load_file(del, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_array_size(doc), 1);
	assert_string_equal(json_string_value(json_array_get(doc, 0)), "/etc/gone");
	json_decref(doc);

	/* A second diff into the same dir does not overwrite the first. */
	assert_int_equal(ckpt_rootfs_diff(upper, work, &e), -EEXIST);
	free(del);
	free(tar);
	free(upper);
	free(work);
	tmpdir_remove(base);
}

/* What runc checkpoint and runtimed leave in the work dir. */
static void make_work(const char *work)
{
	mkd(work, CKPT_IMAGES_DIR);
	put(work, CKPT_IMAGES_DIR "/inventory.img", "INV");
	put(work, CKPT_IMAGES_DIR "/pages-1.img", "PAGES");
	put(work, CKPT_IMAGES_DIR "/core-1.img", "CORE");
	put(work, CKPT_DUMP_LOG, "(00.000001) Dumping finished successfully\n");
	put(work, CKPT_CONFIG_DUMP, "{\"id\":\"abc\",\"name\":\"counter\"}");
	put(work, CKPT_SPEC_DUMP, "{\"ociVersion\":\"1.0.2\"}");
	put(work, CKPT_STATUS_DUMP, "{\"id\":\"abc\"}");
	put(work, CKPT_ROOTFS_DIFF, "");
	put(work, CKPT_DELETED_FILES, "[]");
}

static void test_archive(void **state)
{
	(void)state;
	char *base = tmpdir_make("ckpt-ar");
	char *work = path_join(base, "work");
	mkd(base, "work");
	mkd(base, "out");
	make_work(work);
	char *dest = path_join(base, "out/ckpt.tar");
	struct cric_err e;
	mode_t old = umask(0);
	assert_int_equal(ckpt_archive_write(work, dest, &e), 0);
	umask(old);

	struct stat st;
	assert_int_equal(stat(dest, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	struct member m[32];
	size_t n = read_tar(dest, m, 32);
	static const char *const want[] = { CKPT_CONFIG_DUMP,   CKPT_SPEC_DUMP,
					    CKPT_STATUS_DUMP,   CKPT_IMAGES_DIR,
					    CKPT_ROOTFS_DIFF,   CKPT_DELETED_FILES,
					    CKPT_DUMP_LOG,      CKPT_IMAGES_DIR "/inventory.img",
					    CKPT_IMAGES_DIR "/pages-1.img" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_non_null(find(m, n, want[i]));
	assert_int_equal(n, 10);
	assert_string_equal(find(m, n, CKPT_IMAGES_DIR "/pages-1.img")->data, "PAGES");
	free_members(m, n);
	assert_true(ckpt_archive_is_checkpoint(dest));

	/* Written again: replaced whole, no temp file left beside it. */
	put(work, CKPT_DUMP_LOG, "second\n");
	assert_int_equal(ckpt_archive_write(work, dest, &e), 0);
	n = read_tar(dest, m, 32);
	assert_string_equal(find(m, n, CKPT_DUMP_LOG)->data, "second\n");
	free_members(m, n);
	char *outdir = path_join(base, "out");
	assert_int_equal(dir_count(outdir), 1);

	/* A directory at the location is refused, nothing is left. */
	assert_int_equal(ckpt_archive_write(work, outdir, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "is a directory"));
	/* An unreadable work dir: an error, and no temp file left. */
	char *gone = path_join(base, "nope");
	assert_true(ckpt_archive_write(gone, dest, &e) < 0);
	assert_int_equal(dir_count(outdir), 1);
	free(gone);
	free(outdir);
	free(dest);
	free(work);
	tmpdir_remove(base);
}

static void test_is_checkpoint(void **state)
{
	(void)state;
	char *base = tmpdir_make("ckpt-is");
	char *work = path_join(base, "work");
	mkd(base, "work");
	put(work, CKPT_CONFIG_DUMP, "{}");
	put(work, CKPT_SPEC_DUMP, "{}");
	char *dest = path_join(base, "partial.tar");
	struct cric_err e;
	/* No checkpoint/ directory: not one. */
	assert_int_equal(ckpt_archive_write(work, dest, &e), 0);
	assert_false(ckpt_archive_is_checkpoint(dest));
	put(base, "plain", "not a tar at all");
	char *plain = path_join(base, "plain");
	assert_false(ckpt_archive_is_checkpoint(plain));
	assert_false(ckpt_archive_is_checkpoint(base)); /* a directory */
	assert_false(ckpt_archive_is_checkpoint("docker.io/library/busybox:latest"));
	assert_false(ckpt_archive_is_checkpoint("/nonexistent/x.tar"));
	assert_false(ckpt_archive_is_checkpoint(NULL));
	free(plain);
	free(dest);
	free(work);
	tmpdir_remove(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_location),
		cmocka_unit_test(test_rootfs_diff),
		cmocka_unit_test(test_archive),
		cmocka_unit_test(test_is_checkpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
