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
#include "runtimed/oci.h"

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
	static const char *const want[] = { CKPT_CONFIG_DUMP,
					    CKPT_SPEC_DUMP,
					    CKPT_STATUS_DUMP,
					    CKPT_IMAGES_DIR,
					    CKPT_ROOTFS_DIFF,
					    CKPT_DELETED_FILES,
					    CKPT_DUMP_LOG,
					    CKPT_IMAGES_DIR "/inventory.img",
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

/* A tar at path of raw entries: type 'f' (data), 'l' (symlink to data),
 * 'd'. */
struct raw {
	const char *name;
	char type;
	const char *data;
};

static void write_raw_tar(const char *path, const struct raw *r, size_t n)
{
	struct archive *a = archive_write_new();
	assert_non_null(a);
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, r[i].name);
		archive_entry_set_perm(e, 0644);
		if (r[i].type == 'd') {
			archive_entry_set_filetype(e, AE_IFDIR);
		} else if (r[i].type == 'l') {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, r[i].data);
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)strlen(r[i].data));
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (r[i].type == 'f')
			assert_int_equal(archive_write_data(a, r[i].data, strlen(r[i].data)),
					 (la_ssize_t)strlen(r[i].data));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static bool exists(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	return lstat(tpath(p, dir, rel), &st) == 0;
}

static void test_extract(void **state)
{
	(void)state;
	char *base = tmpdir_make("ckpt-x");
	char *work = path_join(base, "work");
	char *dest = path_join(base, "c.tar");
	char *out = path_join(base, "out");
	mkd(base, "work");
	mkd(base, "out");
	mkd(work, CKPT_IMAGES_DIR);
	put(work, CKPT_IMAGES_DIR "/pages-1.img", "PAGES");
	put(work, CKPT_CONFIG_DUMP, "{\"id\":\"a\",\"rootfsImageName\":\"reg.test/img:1\"}");
	put(work, CKPT_SPEC_DUMP, "{}");
	struct cric_err e;
	assert_int_equal(ckpt_archive_write(work, dest, &e), 0);
	char *image = NULL;
	assert_int_equal(ckpt_archive_extract(dest, out, &image, &e), 0);
	assert_string_equal(image, "reg.test/img:1");
	free(image);
	image = NULL;
	assert_true(exists(out, CKPT_IMAGES_DIR "/pages-1.img"));
	assert_true(exists(out, CKPT_SPEC_DUMP));

	/* Hostile or broken archives: refused, naming the member. */
	static const struct {
		struct raw r[2];
		size_t n;
		const char *why;
	} bad[] = {
		{ { { "../evil", 'f', "x" } }, 1, "clean relative" },
		{ { { "/abs", 'f', "x" } }, 1, "clean relative" },
		{ { { "a/../../b", 'f', "x" } }, 1, "clean relative" },
		{ { { "lnk", 'l', "/etc" } }, 1, "neither a file" },
		{ { { "spec.dump", 'f', "{}" } }, 1, "config.dump" },
		{ { { "config.dump", 'f', "{\"id\":\"a\"}" } }, 1, "names no image" },
		{ { { "config.dump", 'f', "not json" } }, 1, "config.dump" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dir = NULL;
		assert_true(asprintf(&dir, "%s/bad%zu", base, i) > 0);
		assert_int_equal(mkdir(dir, 0700), 0);
		write_raw_tar(dest, bad[i].r, bad[i].n);
		assert_int_equal(ckpt_archive_extract(dest, dir, &image, &e), -EINVAL);
		assert_null(image);
		if (!strstr(e.msg, bad[i].why))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, bad[i].why);
		free(dir);
	}
	assert_false(exists(base, "evil"));
	assert_false(exists("/", "abs"));
	free(out);
	free(dest);
	free(work);
	tmpdir_remove(base);
}

static void test_apply(void **state)
{
	(void)state;
	char *base = tmpdir_make("ckpt-apply");
	char *rootfs = path_join(base, "rootfs");
	char *upper = path_join(base, "upper");
	char *work = path_join(base, "work");
	char *outside = path_join(base, "outside");
	mkd(base, "rootfs/etc");
	mkd(base, "rootfs/var/old/deep");
	mkd(base, "upper");
	mkd(base, "work");
	mkd(base, "outside");
	put(rootfs, "etc/group", "root:x:0:\n");
	put(rootfs, "etc/passwd", "root:x:0:0::/:/bin/sh\n");
	put(rootfs, "var/old/deep/f", "old");
	put(outside, "keep", "host file");
	char p[PATH_MAX];
	/* Links in the image that point out of it: absolute and relative. */
	assert_int_equal(symlink("/", tpath(p, rootfs, "escape")), 0);
	assert_int_equal(symlink(outside, tpath(p, rootfs, "out")), 0);

	/* The checkpointed container's changes: new files, a changed one,
	 * a symlink, deleted files (whiteouts), one through a link. */
	make_upper(upper);
	put(upper, "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
	assert_int_equal(mknod(tpath(p, upper, "etc/group"), S_IFCHR, makedev(0, 0)), 0);
	mkd(upper, "var");
	assert_int_equal(mknod(tpath(p, upper, "var/old"), S_IFCHR, makedev(0, 0)), 0);
	struct cric_err e;
	assert_int_equal(ckpt_rootfs_diff(upper, work, &e), 0);
	/* deleted.files through the links resolves inside rootfs. */
	char del[PATH_MAX];
	snprintf(del, sizeof(del),
		 "[\"/etc/group\", \"/var/old\", \"/out/keep\", "
		 "\"/escape%s/keep\", \"/etc/gone\", \"/never/was\"]",
		 outside);
	put(work, CKPT_DELETED_FILES, del);

	assert_int_equal(ckpt_rootfs_apply(work, rootfs, &e), 0);
	char *text = NULL;
	size_t len;
	assert_int_equal(read_file(tpath(p, rootfs, "etc/new.conf"), 100, &text, &len), 0);
	assert_string_equal(text, "hello\n");
	free(text);
	assert_int_equal(read_file(tpath(p, rootfs, "etc/passwd"), 100, &text, &len), 0);
	assert_string_equal(text, "root:x:0:0::/root:/bin/sh\n");
	free(text);
	assert_true(exists(rootfs, "etc/link"));
	assert_true(exists(rootfs, "var/lib/app/counter"));
	assert_false(exists(rootfs, "etc/group"));
	assert_false(exists(rootfs, "var/old"));
	assert_true(exists(outside, "keep")); /* the host's file stays */

	/* A diff that writes through a link of the image: refused. */
	struct raw through[] = { { "out/pwned", 'f', "x" } };
	write_raw_tar(tpath(p, work, CKPT_ROOTFS_DIFF), through, 1);
	/* (libarchive with UNLINK replaces such a link by a directory:
	 * either way nothing lands outside.) */
	(void)ckpt_rootfs_apply(work, rootfs, &e);
	assert_false(exists(outside, "pwned"));
	struct raw dotdot[] = { { "../pwned", 'f', "x" } };
	write_raw_tar(tpath(p, work, CKPT_ROOTFS_DIFF), dotdot, 1);
	assert_int_equal(ckpt_rootfs_apply(work, rootfs, &e), -EINVAL);
	assert_false(exists(base, "pwned"));
	/* A deleted path that is not clean. */
	unlink(tpath(p, work, CKPT_ROOTFS_DIFF));
	put(work, CKPT_DELETED_FILES, "[\"/etc/../..\"]");
	assert_int_equal(ckpt_rootfs_apply(work, rootfs, &e), -EINVAL);
	put(work, CKPT_DELETED_FILES, "{}");
	assert_int_equal(ckpt_rootfs_apply(work, rootfs, &e), -EINVAL);
	free(outside);
	free(work);
	free(upper);
	free(rootfs);
	tmpdir_remove(base);
}

/* A runtime that stands in for runc: `checkpoint` either fails as runc
 * does when CRIU fails (a JSON log error, CRIU's errors in dump.log) or
 * hangs; every subcommand is noted in <dir>/calls. */
static char *fake_runtime(const char *dir, bool hang)
{
	char *path = path_join(dir, "fake-runc");
	char script[2048];
	snprintf(
	    script, sizeof(script),
	    "#!/bin/sh\n"
	    "log=; work=; cmd=\n"
	    "while [ $# -gt 0 ]; do case \"$1\" in\n"
	    "  --log) log=$2; shift;; --work-path) work=$2; shift;;\n"
	    "  --root|--log-format|--image-path) shift;;\n"
	    "  checkpoint|resume) cmd=$1;; esac; shift; done\n"
	    "echo $cmd >> %s/calls\n"
	    "[ \"$cmd\" = resume ] && exit 0\n"
	    "%s"
	    "echo '(00.01) Error (criu/a.c:1): first' > $work/dump.log\n"
	    "echo '(00.02) Warn nothing' >> $work/dump.log\n"
	    "echo '(00.03) Error (criu/b.c:2): second' >> $work/dump.log\n"
	    "echo '{\"level\":\"error\",\"msg\":\"criu failed: type DUMP errno 0\\\\nlog file: "
	    "x\"}' > $log\n"
	    "exit 1\n",
	    dir, hang ? "exec sleep 30\n" : "");
	write_bytes(path, script, strlen(script), 0755);
	return path;
}

static void test_oci_checkpoint(void **state)
{
	(void)state;
	char *base = tmpdir_make("ckpt-oci");
	char *work = path_join(base, "work");
	mkd(base, "work");
	struct oci_handler h = { .name = "runc" };
	char *fake = fake_runtime(base, false);
	snprintf(h.path, sizeof(h.path), "%s", fake);
	snprintf(h.root, sizeof(h.root), "%s", base);
	struct cric_err e;
	int r = oci_checkpoint(&h, "abc", work, 10000, &e);
	if (!oci_criu_installed()) {
		assert_int_equal(r, -ENOPKG);
		assert_non_null(strstr(e.msg, "\"criu\" package"));
		print_message("(criu is not installed: the rest needs it)\n");
	} else {
		/* runc's message without the log it names, and CRIU's errors. */
		assert_int_equal(r, -EIO);
		assert_non_null(strstr(e.msg, "criu failed: type DUMP errno 0; CRIU: Error "
					      "(criu/a.c:1): first; Error (criu/b.c:2): second"));
		assert_null(strstr(e.msg, "log file"));
		/* A dump past its time: killed, the container thawed. */
		free(fake);
		fake = fake_runtime(base, true);
		int64_t t0 = mono_ms();
		assert_int_equal(oci_checkpoint(&h, "abc", work, 300, &e), -ETIMEDOUT);
		assert_true(mono_ms() - t0 < 10000);
		assert_non_null(strstr(e.msg, "not done in 300 ms"));
		char p[PATH_MAX];
		char *calls = NULL;
		size_t len;
		assert_int_equal(read_file(tpath(p, base, "calls"), 4096, &calls, &len), 0);
		assert_string_equal(calls, "checkpoint\ncheckpoint\nresume\n");
		free(calls);
	}
	free(fake);
	free(work);
	tmpdir_remove(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_location),       cmocka_unit_test(test_rootfs_diff),
		cmocka_unit_test(test_archive),        cmocka_unit_test(test_is_checkpoint),
		cmocka_unit_test(test_extract),        cmocka_unit_test(test_apply),
		cmocka_unit_test(test_oci_checkpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
