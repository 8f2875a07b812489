/* stored/unpack.h: layer import. Archives are built here with libarchive's
 * writer (tar; gzip and zstd filters). Runs as root (owners, devices,
 * whiteouts, overlay mounts); skips otherwise (fails under CI=true).
 *
 * Every hostile layer is unpacked into <tmp>/layer next to a canary tree
 * <tmp>/canary; a full listing of the canary (types, modes, owners, sizes,
 * mtimes, contents, link targets) and of <tmp> is taken before and compared
 * after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/macro.h"
#include "stored/caps.h"
#include "stored/unpack.h"
#include "testutil.h"

/* What the unpack tests need root for. */
#define UNPACK_NEEDS "owners, devices, trusted xattrs, mounts"

/* ---- archive builder ---- */

enum { F_NONE = ARCHIVE_FILTER_NONE, F_GZIP = ARCHIVE_FILTER_GZIP, F_ZSTD = ARCHIVE_FILTER_ZSTD };

struct tent {
	char type; /* f file, d dir, l symlink, h hardlink, p fifo, c/b device, z big zero file */
	const char *path; /* as stored in the archive */
	const char *data; /* file content, or link target */
	mode_t mode;      /* permission bits (0: 0644 files, 0755 dirs) */
	int64_t uid, gid;
	time_t mtime; /* 0: 1000000000 */
	unsigned major, minor;
	const char *xname[3];
	const char *xval[3];
	size_t xlen[3];
	uint64_t size; /* 'z': bytes of zeros */
};

static void filters(struct archive *a, int filter)
{
	if (filter == F_GZIP)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (filter == F_ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
}

/* Names that are not UTF-8 need pax hdrcharset=BINARY. */
static bool binary_names;

/* Names are written as UTF-8 (pax), whatever the process locale. */
static locale_t utf8_enter(void)
{
	locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	assert_non_null(l);
	uselocale(l);
	return l;
}

static void utf8_leave(locale_t l)
{
	uselocale(LC_GLOBAL_LOCALE);
	freelocale(l);
}

static void write_entry(struct archive *a, const struct tent *t)
{
	struct archive_entry *e = archive_entry_new();
	assert_non_null(e);
	archive_entry_set_pathname(e, t->path);
	archive_entry_set_uid(e, t->uid);
	archive_entry_set_gid(e, t->gid);
	archive_entry_set_mtime(e, t->mtime ? t->mtime : 1000000000, 0);
	mode_t perm = t->mode;
	size_t len = 0;
	switch (t->type) {
	case 'f':
		len = t->data ? strlen(t->data) : 0;
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)len);
		perm = perm ? perm : 0644;
		break;
	case 'z':
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)t->size);
		perm = perm ? perm : 0644;
		break;
	case 'd':
		archive_entry_set_filetype(e, AE_IFDIR);
		perm = perm ? perm : 0755;
		break;
	case 'l':
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, t->data);
		perm = 0777;
		break;
	case 'h':
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_hardlink(e, t->data);
		archive_entry_set_size(e, 0);
		perm = perm ? perm : 0644;
		break;
	case 'p':
		archive_entry_set_filetype(e, AE_IFIFO);
		perm = perm ? perm : 0644;
		break;
	case 'c':
	case 'b':
		archive_entry_set_filetype(e, t->type == 'c' ? AE_IFCHR : AE_IFBLK);
		archive_entry_set_rdevmajor(e, t->major);
		archive_entry_set_rdevminor(e, t->minor);
		perm = perm ? perm : 0600;
		break;
	default:
		fail_msg("bad type %c", t->type);
	}
	archive_entry_set_perm(e, perm);
	for (int i = 0; i < 3 && t->xname[i]; i++)
		archive_entry_xattr_add_entry(e, t->xname[i], t->xval[i],
					      t->xlen[i] ? t->xlen[i] : strlen(t->xval[i]));
	int r = archive_write_header(a, e);
	if (r != ARCHIVE_OK)
		fail_msg("write header \"%s\": %s", t->path, archive_error_string(a));
	if (len)
		assert_int_equal(archive_write_data(a, t->data, len), (la_ssize_t)len);
	if (t->type == 'z') {
		static char zeros[65536];
		for (uint64_t left = t->size; left > 0;) {
			size_t n = left < sizeof(zeros) ? (size_t)left : sizeof(zeros);
			assert_int_equal(archive_write_data(a, zeros, n), (la_ssize_t)n);
			left -= n;
		}
	}
	archive_entry_free(e);
}

/* Write entries as a pax tar (with filter) to path. */
static void build_tar(const char *path, int filter, const struct tent *ents, size_t n)
{
	locale_t l = utf8_enter();
	struct archive *a = archive_write_new();
	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
	if (binary_names)
		assert_int_equal(archive_write_set_options(a, "hdrcharset=BINARY"), ARCHIVE_OK);
	filters(a, filter);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++)
		write_entry(a, &ents[i]);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	utf8_leave(l);
}

/* Compress the bytes of in into out as they are (libarchive's raw format). */
static void compress_file(const char *in, const char *out, int filter)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(in, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(len ? len : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);

	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	filters(a, filter);
	assert_int_equal(archive_write_open_filename(a, out), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "raw");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, buf, len), (la_ssize_t)len);
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	free(buf);
}

/* Compress in, followed by pad zero bytes, into out (raw format, streamed). */
static void compress_padded(const char *in, const char *out, int filter, uint64_t pad)
{
	struct stat st;
	assert_int_equal(stat(in, &st), 0);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	filters(a, filter);
	assert_int_equal(archive_write_open_filename(a, out), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "raw");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)((uint64_t)st.st_size + pad));
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_free(e);
	static char buf[65536];
	int fd = open(in, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(archive_write_data(a, buf, (size_t)n), n);
	close(fd);
	memset(buf, 0, sizeof(buf));
	for (uint64_t left = pad; left > 0;) {
		size_t k = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		assert_int_equal(archive_write_data(a, buf, k), (la_ssize_t)k);
		left -= k;
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* ---- fixture ---- */

struct fx {
	char *tmp;
	int tmp_fd;
	char layer[PATH_MAX];
	int layer_fd;
	char canary[PATH_MAX];
	char tarball[PATH_MAX];
	char mounts[4][PATH_MAX]; /* unmounted in teardown */
	int n_mounts;
};

static void make_canary(const char *dir)
{
	char p[PATH_MAX];
	assert_int_equal(mkdir(dir, 0755), 0);
	write_text(tpath(p, dir, "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
	assert_int_equal(chmod(p, 0644), 0);
	write_text(tpath(p, dir, "shadow"), "root:*:19000:0:99999:7:::\n");
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(chown(p, 0, 42), 0);
	assert_int_equal(mkdir(tpath(p, dir, "secret"), 0700), 0);
	write_text(tpath(p, dir, "secret/key"), "k3y");
	assert_int_equal(chown(p, 1234, 1234), 0);
	assert_int_equal(symlink("passwd", tpath(p, dir, "link")), 0);
	assert_int_equal(mkdir(tpath(p, dir, "sub"), 0755), 0);
	assert_int_equal(mkdir(tpath(p, dir, "sub/deep"), 0755), 0);
	write_text(tpath(p, dir, "sub/deep/file"), "deep");
	assert_int_equal(mkfifo(tpath(p, dir, "fifo"), 0600), 0);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->tmp = tmpdir_make("unpack");
	fx->tmp_fd = open(fx->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->tmp_fd >= 0);
	assert_int_equal(mkdir(tpath(fx->layer, fx->tmp, "layer"), 0755), 0);
	fx->layer_fd = open(fx->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->layer_fd >= 0);
	tpath(fx->tarball, fx->tmp, "layer.tar");
	if (geteuid() == 0)
		make_canary(tpath(fx->canary, fx->tmp, "canary"));
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	for (int i = fx->n_mounts - 1; i >= 0; i--)
		if (umount2(fx->mounts[i], MNT_DETACH) < 0 && errno != EINVAL)
			print_message("umount %s: %s\n", fx->mounts[i], strerror(errno));
	close(fx->layer_fd);
	close(fx->tmp_fd);
	tmpdir_remove(fx->tmp);
	free(fx);
	return 0;
}

/* Remove the layer dir (whatever a test left there) and make a fresh one at
 * the same fd number. */
static void reset_layer(struct fx *fx)
{
	struct cric_err err = { "" };
	int r = unpack_remove_tree(fx->tmp_fd, "layer", &err);
	if (r != 0 && r != -ENOENT)
		fail_msg("%s", err.msg);
	assert_int_equal(mkdir(fx->layer, 0755), 0);
	int fd = open(fx->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(dup3(fd, fx->layer_fd, O_CLOEXEC), fx->layer_fd);
	close(fd);
}

static void track_mount(struct fx *fx, const char *path)
{
	assert_true(fx->n_mounts < 4);
	snprintf(fx->mounts[fx->n_mounts++], PATH_MAX, "%s", path);
}

/* A new empty dir <tmp>/name, opened. */
static int new_dir(struct fx *fx, const char *name, char path[PATH_MAX])
{
	assert_int_equal(mkdir(tpath(path, fx->tmp, name), 0755), 0);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* ---- snapshots ---- */

static char *snap_buf;
static size_t snap_len, snap_cap;
static size_t snap_base;

static void snap_add(const char *s)
{
	size_t n = strlen(s);
	if (snap_len + n + 1 > snap_cap) {
		snap_cap = (snap_len + n + 1) * 2;
		snap_buf = realloc(snap_buf, snap_cap);
		assert_non_null(snap_buf);
	}
	memcpy(snap_buf + snap_len, s, n + 1);
	snap_len += n;
}

static uint64_t fnv(const char *path)
{
	uint64_t h = 1469598103934665603ULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	assert_true(fd >= 0);
	unsigned char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ULL;
	close(fd);
	return h;
}

static int snap_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	char line[PATH_MAX + 256], extra[PATH_MAX + 32] = "";
	if (S_ISREG(st->st_mode))
		snprintf(extra, sizeof(extra), "content=%016llx", (unsigned long long)fnv(p));
	if (S_ISLNK(st->st_mode)) {
		char t[PATH_MAX] = "";
		assert_true(readlink(p, t, sizeof(t) - 1) >= 0);
		snprintf(extra, sizeof(extra), "-> %s", t);
	}
	snprintf(line, sizeof(line),
		 "%s mode=%o uid=%u gid=%u size=%lld mtime=%lld.%09ld ino=%llu %s\n", p + snap_base,
		 st->st_mode, st->st_uid, st->st_gid, (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (unsigned long long)st->st_ino,
		 extra);
	snap_add(line);
	return 0;
}

/* A listing of the canary and of <tmp>'s top level (the layer itself, the
 * tarball and other test dirs excluded). Caller frees. */
static char *snapshot(struct fx *fx)
{
	snap_buf = NULL;
	snap_len = snap_cap = 0;
	snap_add("");
	snap_base = strlen(fx->tmp);
	assert_int_equal(nftw(fx->canary, snap_one, 16, FTW_PHYS), 0);
	DIR *d = opendir(fx->tmp);
	assert_non_null(d);
	struct dirent *de;
	char names[4096] = "top:";
	while ((de = readdir(d)))
		if (strcmp(de->d_name, "layer") != 0 && strcmp(de->d_name, "layer.tar") != 0 &&
		    strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    strncmp(de->d_name, "keep-", 5) != 0) {
			strcat(names, " ");
			strncat(names, de->d_name, 256);
		}
	closedir(d);
	snap_add(names);
	char *s = snap_buf;
	snap_buf = NULL;
	return s;
}

/* Also: nothing may appear next to the temp dir or at a few classic targets. */
static void assert_no_global_escape(void)
{
	static const char *const paths[] = { "/pwned", "/tmp/pwned", "/etc/pwned", "/root/pwned" };
	struct stat st;
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (lstat(paths[i], &st) == 0)
			fail_msg("%s exists", paths[i]);
}

/* ---- running an import ---- */

static int unpack_file(const char *tarball, int layer_fd, const struct unpack_opts *o,
		       struct unpack_result *res, struct cric_err *err)
{
	int in = open(tarball, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	int r = unpack_layer(in, layer_fd, o, res, err);
	close(in);
	return r;
}

/* Build ents, unpack into the layer, expect success. */
static void unpack_ok(struct fx *fx, const struct tent *ents, size_t n, int filter,
		      const struct unpack_opts *o, struct unpack_result *res)
{
	build_tar(fx->tarball, filter, ents, n);
	struct cric_err err = { "" };
	struct unpack_result tmp;
	int r = unpack_file(fx->tarball, fx->layer_fd, o, res ? res : &tmp, &err);
	if (r != 0)
		fail_msg("unpack failed: %d %s", r, err.msg);
}

/* A hostile layer: unpack fails with want_r and a message containing
 * want_msg (and the quoted entry name want_name, if given), the result is not
 * written, the canary and <tmp> are untouched, and the layer dir can be
 * removed safely afterwards. */
static void expect_hostile(struct fx *fx, const struct tent *ents, size_t n, int filter,
			   const struct unpack_opts *o, int want_r, const char *want_name,
			   const char *want_msg)
{
	char *before = snapshot(fx);
	build_tar(fx->tarball, filter, ents, n);
	struct cric_err err = { "" };
	struct unpack_result res, sentinel;
	memset(&res, 0x5a, sizeof(res));
	memcpy(&sentinel, &res, sizeof(res));
	int r = unpack_file(fx->tarball, fx->layer_fd, o, &res, &err);
	print_message("  -> %d (%s): %s\n", r, strerror(-r), err.msg);
	if (r != want_r)
		fail_msg("unpack returned %d, want %d (%s)", r, want_r, err.msg);
	assert_memory_equal(&res, &sentinel, sizeof(res));
	if (want_name) {
		char q[PATH_MAX + 8];
		snprintf(q, sizeof(q), "\"%s\"", want_name);
		if (!strstr(err.msg, q))
			fail_msg("message does not name %s: %s", q, err.msg);
	}
	if (want_msg && !strstr(err.msg, want_msg))
		fail_msg("message lacks \"%s\": %s", want_msg, err.msg);
	/* Messages are one line of printable ASCII. */
	for (const char *p = err.msg; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);

	char *after = snapshot(fx);
	assert_string_equal(before, after);
	assert_no_global_escape();

	/* What the failed import left is removable without harm. */
	assert_int_equal(unpack_remove_tree(fx->tmp_fd, "layer", &err), 0);
	free(after);
	after = snapshot(fx);
	assert_string_equal(before, after);
	free(before);
	free(after);
	reset_layer(fx);
}

/* ---- a normal layer ---- */

static void assert_stat(const char *dir, const char *rel, mode_t type, mode_t perm, uid_t uid,
			gid_t gid, time_t mtime)
{
	char p[PATH_MAX];
	struct stat st;
	if (lstat(tpath(p, dir, rel), &st) < 0)
		fail_msg("lstat %s: %s", rel, strerror(errno));
	if ((st.st_mode & S_IFMT) != type || (type != S_IFLNK && (st.st_mode & 07777) != perm) ||
	    st.st_uid != uid || st.st_gid != gid || (mtime && st.st_mtime != mtime))
		fail_msg("%s: mode 0%o uid %u gid %u mtime %lld; want type 0%o perm 0%o uid %u gid "
			 "%u mtime %lld",
			 rel, st.st_mode, st.st_uid, st.st_gid, (long long)st.st_mtime, type, perm,
			 uid, gid, (long long)mtime);
}

static void assert_content(const char *dir, const char *rel, const char *want)
{
	char p[PATH_MAX];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(tpath(p, dir, rel), "rb");
	assert_non_null(f);
	buf = malloc(strlen(want) + 2);
	len = fread(buf, 1, strlen(want) + 1, f);
	fclose(f);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	free(buf);
}

/* security.capability v2: cap_net_raw (13) permitted + effective. */
static const unsigned char cap_net_raw[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00,
					       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					       0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };

static void test_normal_layer(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'd', "./", .mode = 0755 },
		{ 'd', "etc", .mode = 0755, .mtime = 1100000000 },
		{ 'f', "etc/hostname", "box\n", .mtime = 1200000000 },
		{ 'l', "etc/localtime", "/usr/share/zoneinfo/UTC", .uid = 7, .gid = 8,
		  .mtime = 1300000000 },
		{ 'f', "usr/bin/sudo", "#!sudo", .mode = 04755, .mtime = 1400000000 },
		{ 'h', "usr/bin/sudoedit", "usr/bin/sudo" },
		{ 'f', "usr/bin/wall", "wall", .mode = 02755, .gid = 5 },
		{ 'f', "usr/bin/ping", "ping", .mode = 0755,
		  .xname = { "security.capability", "user.origin", "trusted.foo" },
		  .xval = { (const char *)cap_net_raw, "debian", "x" },
		  .xlen = { sizeof(cap_net_raw), 0, 0 } },
		{ 'd', "tmp", .mode = 01777, .mtime = 1500000000 },
		{ 'd', "home/u", .mode = 0750, .uid = 1000, .gid = 1000, .mtime = 1600000000,
		  .xname = { "user.dir" }, .xval = { "yes" } },
		{ 'f', "home/u/.profile", "PS1=$\n", .mode = 0600, .uid = 1000, .gid = 1000,
		  .mtime = 1700000000 },
		{ 'd', "home/u/sub", .uid = 1000, .gid = 1000 },
		{ 'f', "home/u/sub/empty", "", .uid = 1000, .gid = 1000 },
		{ 'p', "run/initctl", .mode = 0620, .uid = 0, .gid = 4, .mtime = 1110000000 },
		{ 'c', "dev/null", .mode = 0666, .major = 1, .minor = 3 },
		{ 'b', "dev/loop9", .mode = 0660, .gid = 6, .major = 7, .minor = 9 },
		{ 'f', "usr/share/caf\xc3\xa9/\xc3\xb1\xe6\x97\xa5.txt", "utf8" },
		{ 'l', "lib", "usr/lib" },
		{ 'f', "opt/dir/file-before-dir", "x" },
		{ 'd', "opt/dir", .mode = 0711, .mtime = 1234567890 },
	};
	struct unpack_opts o = { .allow_devices = true };
	struct unpack_result res;
	unpack_ok(fx, ents, ARRAY_SIZE(ents), F_GZIP, &o, &res);
	assert_int_equal(res.entries, ARRAY_SIZE(ents));
	assert_int_equal(res.compression, UNPACK_GZIP);
	assert_int_equal(res.xattrs_skipped, 1); /* trusted.foo */
	assert_int_equal(res.file_bytes, 4 + 6 + 4 + 4 + 6 + 0 + 4 + 1);

	const char *L = fx->layer;
	assert_stat(L, "etc", S_IFDIR, 0755, 0, 0, 1100000000);
	assert_stat(L, "etc/hostname", S_IFREG, 0644, 0, 0, 1200000000);
	assert_content(L, "etc/hostname", "box\n");
	assert_stat(L, "etc/localtime", S_IFLNK, 0, 7, 8, 1300000000);
	char t[PATH_MAX] = "", p[PATH_MAX];
	assert_true(readlink(tpath(p, L, "etc/localtime"), t, sizeof(t)) > 0);
	assert_string_equal(t, "/usr/share/zoneinfo/UTC");
	assert_stat(L, "usr/bin/sudo", S_IFREG, 04755, 0, 0, 1400000000);
	assert_stat(L, "usr/bin/wall", S_IFREG, 02755, 0, 5, 0);
	/* Implicit parents: 0755 root. */
	assert_stat(L, "usr", S_IFDIR, 0755, 0, 0, 0);
	assert_stat(L, "usr/bin", S_IFDIR, 0755, 0, 0, 0);
	struct stat a, b;
	assert_int_equal(lstat(tpath(p, L, "usr/bin/sudo"), &a), 0);
	assert_int_equal(lstat(tpath(p, L, "usr/bin/sudoedit"), &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);

	unsigned char cap[64];
	ssize_t n = getxattr(tpath(p, L, "usr/bin/ping"), "security.capability", cap, sizeof(cap));
	assert_int_equal(n, sizeof(cap_net_raw));
	assert_memory_equal(cap, cap_net_raw, sizeof(cap_net_raw));
	char v[64] = "";
	assert_int_equal(getxattr(p, "user.origin", v, sizeof(v)), 6);
	assert_memory_equal(v, "debian", 6);
	assert_int_equal(getxattr(p, "trusted.foo", v, sizeof(v)), -1);
	assert_int_equal(getxattr(tpath(p, L, "home/u"), "user.dir", v, sizeof(v)), 3);

	assert_stat(L, "tmp", S_IFDIR, 01777, 0, 0, 1500000000);
	/* Directory times after their contents. */
	assert_stat(L, "home/u", S_IFDIR, 0750, 1000, 1000, 1600000000);
	assert_stat(L, "home/u/.profile", S_IFREG, 0600, 1000, 1000, 1700000000);
	assert_stat(L, "home/u/sub/empty", S_IFREG, 0644, 1000, 1000, 0);
	assert_stat(L, "opt/dir", S_IFDIR, 0711, 0, 0, 1234567890);
	assert_stat(L, "run/initctl", S_IFIFO, 0620, 0, 4, 1110000000);
	assert_stat(L, "dev/null", S_IFCHR, 0666, 0, 0, 0);
	assert_int_equal(lstat(tpath(p, L, "dev/null"), &a), 0);
	assert_int_equal(a.st_rdev, makedev(1, 3));
	assert_stat(L, "dev/loop9", S_IFBLK, 0660, 0, 6, 0);
	assert_int_equal(lstat(tpath(p, L, "dev/loop9"), &a), 0);
	assert_int_equal(a.st_rdev, makedev(7, 9));
	assert_content(L, "usr/share/caf\xc3\xa9/\xc3\xb1\xe6\x97\xa5.txt", "utf8");
	assert_stat(L, "lib", S_IFLNK, 0, 0, 0, 0);
	/* The root entry applies to the layer dir. */
	assert_stat(fx->tmp, "layer", S_IFDIR, 0755, 0, 0, 1000000000);
}

/* The special mode bits and file capabilities of files and directories
 * owned by other users and groups survive an unpack run with exactly
 * stored's capabilities (stored_caps), no supplementary groups and
 * no_new_privs, as the daemon runs: without CAP_FSETID the kernel clears
 * setgid on chmod of a file whose group is not the caller's (Debian's chage,
 * 2755 root:shadow). The unpack runs in a forked child (capabilities cannot
 * be taken back); the parent, with every capability, checks the result. */
static void test_special_bits_with_stored_caps(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'f', "usr/bin/chage", "chage", .mode = 02755, .gid = 42 },
		{ 'f', "usr/bin/su", "su", .mode = 04755, .uid = 1000, .gid = 1000 },
		{ 'f', "usr/bin/both", "both", .mode = 06751, .uid = 1001, .gid = 1002 },
		{ 'f', "usr/bin/ping", "ping", .mode = 0755, .uid = 1003, .gid = 1004,
		  .xname = { "security.capability" }, .xval = { (const char *)cap_net_raw },
		  .xlen = { sizeof(cap_net_raw) } },
		{ 'f', "usr/bin/capsgid", "x", .mode = 02711, .uid = 1005, .gid = 1006,
		  .xname = { "security.capability" }, .xval = { (const char *)cap_net_raw },
		  .xlen = { sizeof(cap_net_raw) } },
		{ 'd', "srv/shared", .mode = 02775, .uid = 1000, .gid = 50 },
		{ 'd', "srv/tmp", .mode = 01777, .uid = 1000, .gid = 1000 },
		{ 'd', "srv/all", .mode = 07755, .uid = 1007, .gid = 1008 },
		{ 'f', "srv/all/f", "f", .mode = 07644, .uid = 1009, .gid = 1010 },
	};
	build_tar(fx->tarball, F_GZIP, ents, ARRAY_SIZE(ents));
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cric_err err = { "" };
		struct unpack_result res;
		int r = setgroups(0, NULL) < 0 ? -errno : 0;
		if (r == 0)
			r = caps_restrict(stored_caps, stored_n_caps, false, true, &err);
		if (r == 0)
			r = unpack_file(fx->tarball, fx->layer_fd, NULL, &res, &err);
		if (r < 0)
			fprintf(stderr, "child: %d %s\n", r, err.msg);
		_exit(r == 0 ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	const char *L = fx->layer;
	assert_stat(L, "usr/bin/chage", S_IFREG, 02755, 0, 42, 0);
	assert_stat(L, "usr/bin/su", S_IFREG, 04755, 1000, 1000, 0);
	assert_stat(L, "usr/bin/both", S_IFREG, 06751, 1001, 1002, 0);
	assert_stat(L, "usr/bin/ping", S_IFREG, 0755, 1003, 1004, 0);
	assert_stat(L, "usr/bin/capsgid", S_IFREG, 02711, 1005, 1006, 0);
	assert_stat(L, "srv/shared", S_IFDIR, 02775, 1000, 50, 0);
	assert_stat(L, "srv/tmp", S_IFDIR, 01777, 1000, 1000, 0);
	assert_stat(L, "srv/all", S_IFDIR, 07755, 1007, 1008, 0);
	assert_stat(L, "srv/all/f", S_IFREG, 07644, 1009, 1010, 0);
	const char *capped[] = { "usr/bin/ping", "usr/bin/capsgid" };
	for (size_t i = 0; i < ARRAY_SIZE(capped); i++) {
		char p[PATH_MAX];
		unsigned char cap[64];
		ssize_t n =
		    getxattr(tpath(p, L, capped[i]), "security.capability", cap, sizeof(cap));
		if (n != (ssize_t)sizeof(cap_net_raw))
			fail_msg("%s: security.capability: %zd bytes (%s)", capped[i], n,
				 n < 0 ? strerror(errno) : "");
		assert_memory_equal(cap, cap_net_raw, sizeof(cap_net_raw));
	}
}

/* Re-applying entries over existing ones: the last one wins, dirs merge. */
static void test_replace_and_merge(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'f', "a", "first" },
		{ 'f', "a", "second", .mode = 0600 },
		{ 'd', "d", .mode = 0700 },
		{ 'f', "d/x", "x" },
		{ 'd', "d", .mode = 0755, .mtime = 1300000000 }, /* merges */
		{ 'd', "f2d" },
		{ 'f', "f2d/in", "in" },
		{ 'f', "f2d", "now a file" }, /* replaces the directory and its content */
		{ 'l', "s", "target" },
		{ 'f', "s", "file over symlink" },
		{ 'h', "a2", "a" },
		{ 'h', "a2", "a" }, /* same file: nothing to do */
		{ 'p', "fifo" },
		{ 'p', "fifo" },
	};
	unpack_ok(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, NULL);
	const char *L = fx->layer;
	assert_content(L, "a", "second");
	assert_stat(L, "a", S_IFREG, 0600, 0, 0, 0);
	assert_content(L, "d/x", "x");
	assert_stat(L, "d", S_IFDIR, 0755, 0, 0, 1300000000);
	assert_content(L, "f2d", "now a file");
	assert_content(L, "s", "file over symlink");
	assert_stat(L, "s", S_IFREG, 0644, 0, 0, 0);
	assert_stat(L, "fifo", S_IFIFO, 0644, 0, 0, 0);
}

/* ---- diff_id ---- */

static void sha256sum(const char *path, char out[BLOB_DIGEST_BUF])
{
	char cmd[PATH_MAX + 32], line[256] = "";
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(pclose(f), 0);
	snprintf(out, BLOB_DIGEST_BUF, "sha256:%.64s", line);
}

static void test_diff_id(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	/* Several read blocks' worth, a long pax name, many small files. */
	size_t big_n = 3 * 1024 * 1024 + 17;
	char *big = malloc(big_n + 1);
	assert_non_null(big);
	for (size_t i = 0; i < big_n; i++)
		big[i] = (char)('a' + (i * 7919 % 26));
	big[big_n] = '\0';
	char longname[300];
	memset(longname, 'n', 200);
	strcpy(longname + 200, "/file");
	struct tent ents[64] = {
		{ 'f', "big", big },
		{ 'f', longname, "long" },
	};
	char names[60][16];
	for (int i = 0; i < 60; i++) {
		snprintf(names[i], sizeof(names[i]), "small/%02d", i);
		ents[2 + i] = (struct tent){ 'f', names[i], "small file\n" };
	}
	char plain[PATH_MAX], p[PATH_MAX];
	build_tar(tpath(plain, fx->tmp, "keep-plain.tar"), F_NONE, ents, 62);
	free(big);
	/* Extra zero blocks after the end-of-archive marker: part of the stream. */
	FILE *f = fopen(plain, "ab");
	assert_non_null(f);
	static const char pad[8192];
	assert_int_equal(fwrite(pad, 1, sizeof(pad), f), sizeof(pad));
	fclose(f);
	struct stat st;
	assert_int_equal(stat(plain, &st), 0);

	char want[BLOB_DIGEST_BUF];
	sha256sum(plain, want);
	print_message("  sha256sum of the uncompressed tar: %s (%lld bytes)\n", want,
		      (long long)st.st_size);

	static const struct {
		int filter;
		const char *name;
		enum unpack_compression comp;
	} cases[] = {
		{ F_NONE, NULL, UNPACK_NONE },
		{ F_GZIP, "keep-layer.tar.gz", UNPACK_GZIP },
		{ F_ZSTD, "keep-layer.tar.zst", UNPACK_ZSTD },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *in = plain;
		if (cases[i].name) {
			compress_file(plain, tpath(p, fx->tmp, cases[i].name), cases[i].filter);
			in = p;
		}
		char dir[PATH_MAX], dname[32];
		snprintf(dname, sizeof(dname), "keep-out%zu", i);
		int dfd = new_dir(fx, dname, dir);
		struct unpack_result res;
		struct cric_err err = { "" };
		int r = unpack_file(in, dfd, NULL, &res, &err);
		if (r)
			fail_msg("%s: %s", in, err.msg);
		close(dfd);
		print_message("  %-8s diff_id %s entries %llu tar_bytes %llu\n",
			      i == 0 ? "plain" : cases[i].name + 11, res.diff_id,
			      (unsigned long long)res.entries, (unsigned long long)res.tar_bytes);
		assert_string_equal(res.diff_id, want);
		assert_int_equal(res.tar_bytes, st.st_size);
		assert_int_equal(res.compression, cases[i].comp);
		assert_int_equal(res.entries, 62);
		char q[PATH_MAX];
		assert_int_equal(stat(tpath(q, dir, "big"), &st), 0);
		assert_int_equal(st.st_size, big_n);
		assert_int_equal(dir_count(tpath(q, dir, "small")), 60);
		assert_int_equal(stat(plain, &st), 0);
	}
}

struct feeder {
	int fd;
	const char *path;
};

static void *feed(void *arg)
{
	struct feeder *fd = arg;
	int in = open(fd->path, O_RDONLY | O_CLOEXEC);
	char buf[4096];
	ssize_t n;
	while (in >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd->fd, buf, (size_t)n) != n)
			break;
	if (in >= 0)
		close(in);
	close(fd->fd);
	return NULL;
}

/* A pipe works as input (stream, no seeking), and gives the same diff_id. */
static void test_pipe_input(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'f', "a", "aaa" }, { 'd', "b" }, { 'f', "b/c", "ccc" } };
	build_tar(fx->tarball, F_ZSTD, ents, ARRAY_SIZE(ents));
	struct unpack_result r1, r2;
	struct cric_err err = { "" };
	assert_int_equal(unpack_file(fx->tarball, fx->layer_fd, NULL, &r1, &err), 0);
	char dir[PATH_MAX];
	int dfd = new_dir(fx, "keep-pipe", dir);
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	struct feeder fd = { pfd[1], fx->tarball };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, feed, &fd), 0);
	int r = unpack_layer(pfd[0], dfd, NULL, &r2, &err);
	assert_int_equal(pthread_join(t, NULL), 0);
	close(pfd[0]);
	close(dfd);
	if (r)
		fail_msg("%s", err.msg);
	assert_string_equal(r1.diff_id, r2.diff_id);
	assert_content(dir, "b/c", "ccc");
}

/* Not a layer at all. */
static void test_bad_streams(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	struct cric_err err = { "" };
	struct unpack_result res;
	static const struct {
		const char *data;
		size_t len;
	} bad[] = {
		{ "", 0 },
		{ "hello, this is not a tar file\n", 30 },
		{ "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", 18 }, /* broken gzip */
		{ "\x28\xb5\x2f\xfd garbage garbage", 20 },                /* broken zstd */
		{ "BZh91AY&SY", 10 },                                      /* bzip2: unsupported */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_bytes(fx->tarball, bad[i].data, bad[i].len, 0644);
		err.msg[0] = '\0';
		int r = unpack_file(fx->tarball, fx->layer_fd, NULL, &res, &err);
		print_message("  case %zu -> %d: %s\n", i, r, err.msg);
		assert_int_equal(r, -EBADMSG);
	}
	/* A tar truncated in the middle of a file. */
	const struct tent ents[] = { { 'z', "zeros", .size = 100000 } };
	build_tar(fx->tarball, F_NONE, ents, 1);
	assert_int_equal(truncate(fx->tarball, 50000), 0);
	int r = unpack_file(fx->tarball, fx->layer_fd, NULL, &res, &err);
	print_message("  truncated -> %d: %s\n", r, err.msg);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(err.msg, "\"zeros\""));
	/* gzip inside gzip. */
	build_tar(fx->tarball, F_GZIP, ents, 1);
	char p[PATH_MAX];
	compress_file(fx->tarball, tpath(p, fx->tmp, "keep-double.gz"), F_GZIP);
	r = unpack_file(p, fx->layer_fd, NULL, &res, &err);
	print_message("  nested -> %d: %s\n", r, err.msg);
	assert_int_equal(r, -EBADMSG);
}

/* ---- whiteouts and overlay ---- */

static void mount_overlay(struct fx *fx, const char *upper_layer, const char *lower_layer,
			  char merged[PATH_MAX])
{
	int fd = new_dir(fx, "keep-merged", merged);
	close(fd);
	char opts[3 * PATH_MAX];
	snprintf(opts, sizeof(opts), "lowerdir=%s:%s", upper_layer, lower_layer);
	if (mount("overlay", merged, "overlay", MS_RDONLY, opts) < 0)
		fail_msg("mount overlay %s: %s", opts, strerror(errno));
	track_mount(fx, merged);
}

static bool exists(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	return lstat(tpath(p, dir, rel), &st) == 0;
}

static void test_whiteouts_overlay(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent lower[] = {
		{ 'f', "a/keep", "keep" },     { 'f', "a/gone", "gone" },
		{ 'f', "opq/lower1", "l1" },   { 'f', "opq/sub/x", "x" },
		{ 'f', "wdir/inner", "i" },    { 'f', "rdir/oldfile", "old" },
		{ 'f', "same/file", "lower" },
	};
	unpack_ok(fx, lower, ARRAY_SIZE(lower), F_GZIP, NULL, NULL);

	char upper[PATH_MAX];
	int ufd = new_dir(fx, "keep-upper", upper);
	const struct tent up[] = {
		{ 'f', "a/.wh.gone", "" },
		{ 'f', "opq/.wh..wh..opq", "" },
		{ 'f', "opq/new", "new" },
		{ 'f', ".wh.wdir", "" },
		/* whiteout, then a directory of the same name: replaces the lower dir */
		{ 'f', ".wh.rdir", "" },
		{ 'd', "rdir" },
		{ 'f', "rdir/newfile", "new" },
		/* a file of this layer, then its whiteout: the file stays */
		{ 'f', "same/file", "upper" },
		{ 'f', "same/.wh.file", "" },
	};
	build_tar(fx->tarball, F_ZSTD, up, ARRAY_SIZE(up));
	struct cric_err err = { "" };
	struct unpack_result res;
	int r = unpack_file(fx->tarball, ufd, NULL, &res, &err);
	close(ufd);
	if (r)
		fail_msg("%s", err.msg);

	/* On disk: overlay's own representation. */
	char p[PATH_MAX];
	struct stat st;
	assert_int_equal(lstat(tpath(p, upper, "a/gone"), &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_false(exists(upper, "a/.wh.gone"));
	char v[8] = "";
	assert_int_equal(getxattr(tpath(p, upper, "opq"), "trusted.overlay.opaque", v, sizeof(v)),
			 1);
	assert_int_equal(v[0], 'y');
	assert_false(exists(upper, "opq/.wh..wh..opq"));
	assert_int_equal(getxattr(tpath(p, upper, "rdir"), "trusted.overlay.opaque", v, sizeof(v)),
			 1);
	assert_content(upper, "same/file", "upper");

	/* The merged view. */
	char merged[PATH_MAX];
	mount_overlay(fx, upper, fx->layer, merged);
	assert_true(exists(merged, "a/keep"));
	assert_false(exists(merged, "a/gone"));
	assert_true(exists(merged, "opq/new"));
	assert_false(exists(merged, "opq/lower1"));
	assert_false(exists(merged, "opq/sub"));
	assert_false(exists(merged, "wdir"));
	assert_true(exists(merged, "rdir/newfile"));
	assert_false(exists(merged, "rdir/oldfile"));
	assert_content(merged, "same/file", "upper");
	assert_content(merged, "a/keep", "keep");
}

/* ---- hostile layers ---- */

static void test_hostile_dotdot(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'f', "ok", "fine" }, { 'f', "../canary/passwd", "pwned" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -EINVAL, "../canary/passwd",
		       "\"..\" component");
}

static void test_hostile_dotdot_inner(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'd', "a/b" }, { 'f', "a/b/../../../canary/pwned", "x" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_GZIP, NULL, -EINVAL,
		       "a/b/../../../canary/pwned", "\"..\" component");
}

/* Absolute paths fail the layer (builders never write them), whatever
 * they point at; nothing is written anywhere. */
static void test_hostile_absolute(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char abs[PATH_MAX];
	snprintf(abs, sizeof(abs), "%s/pwned", fx->canary);
	const struct tent ents[] = { { 'f', abs, "pwned" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -EINVAL, abs, "absolute path");
	const struct tent ents2[] = { { 'd', "etc" }, { 'f', "//etc///./hosts", "h" } };
	expect_hostile(fx, ents2, ARRAY_SIZE(ents2), F_GZIP, NULL, -EINVAL, "//etc///./hosts",
		       "absolute path");
}

static void test_hostile_symlink_to_root(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char through[PATH_MAX];
	snprintf(through, sizeof(through), "root%s/passwd", fx->canary);
	const struct tent ents[] = { { 'l', "root", "/" }, { 'f', through, "pwned" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -ELOOP, through,
		       "passes through a symlink");
}

static void test_hostile_symlink_then_file(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'l', "d", fx->canary },
		{ 'f', "d/pwned", "x" },
	};
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_ZSTD, NULL, -ELOOP, "d/pwned",
		       "parent path \"d\" passes through a symlink");
}

/* Also as a directory entry, and deeper: "d/sub/x" with d a symlink. */
static void test_hostile_symlink_then_dir(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'l', "d", fx->canary },
		{ 'd', "d/sub/newdir", .mode = 0777 },
	};
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -ELOOP, "d/sub/newdir/",
		       "passes through a symlink");
}

static void test_hostile_symlink_dotdot_chain(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'l', "up", ".." },
		{ 'l', "up2", "up/.." },
		{ 'd', "x" },
		{ 'l', "x/up3", "../up2/../.." },
		{ 'f', "up/canary/passwd", "pwned" },
	};
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -ELOOP, "up/canary/passwd",
		       "symlink");
	const struct tent ents2[] = {
		{ 'l', "up", ".." },
		{ 'd', "x" },
		{ 'l', "x/up3", "../up/.." },
		{ 'f', "x/up3/canary/passwd", "pwned" },
	};
	expect_hostile(fx, ents2, ARRAY_SIZE(ents2), F_NONE, NULL, -ELOOP, "x/up3/canary/passwd",
		       "symlink");
}

static void test_hostile_hardlink_outside_absolute(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/passwd", fx->canary);
	const struct tent ents[] = { { 'h', "etc/passwd", target } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -EINVAL, "etc/passwd",
		       "absolute path");
}

static void test_hostile_hardlink_outside_dotdot(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'h', "passwd", "../canary/passwd" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_GZIP, NULL, -EINVAL, "passwd",
		       "hardlink target \"../canary/passwd\"");
}

static void test_hostile_hardlink_through_symlink(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'l', "c", fx->canary },
		{ 'h', "pw", "c/passwd" },
	};
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -ELOOP, "pw",
		       "passes through a symlink");
}

static void test_hostile_hardlink_to_dir(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'd', "dir" }, { 'h', "x", "dir" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -EPERM, "x", "is a directory");
	const struct tent root[] = { { 'h', "x", "./" } };
	expect_hostile(fx, root, 1, F_NONE, NULL, -EPERM, "x", "layer root");
}

/* A symlink already in the layer dir (as an earlier layer's copy would have)
 * is not followed either; a directory entry replaces it instead. */
static void test_hostile_preexisting_symlink(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char p[PATH_MAX];
	assert_int_equal(symlink(fx->canary, tpath(p, fx->layer, "etc")), 0);
	const struct tent ents[] = { { 'f', "etc/pwned", "x" } };
	expect_hostile(fx, ents, 1, F_NONE, NULL, -ELOOP, "etc/pwned", "passes through a symlink");

	/* "etc/" as a directory entry first: the symlink is replaced, nothing
	 * lands in the canary. */
	assert_int_equal(symlink(fx->canary, tpath(p, fx->layer, "etc")), 0);
	char *before = snapshot(fx);
	const struct tent ok[] = { { 'd', "etc" }, { 'f', "etc/passwd", "inside" } };
	unpack_ok(fx, ok, 2, F_NONE, NULL, NULL);
	char *after = snapshot(fx);
	assert_string_equal(before, after);
	assert_stat(fx->layer, "etc", S_IFDIR, 0755, 0, 0, 0);
	assert_content(fx->layer, "etc/passwd", "inside");
	free(before);
	free(after);
}

/* A directory replaced by a symlink mid-layer, then used as a parent. */
static void test_hostile_symlink_replaces_dir(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'd', "d" },
		{ 'f', "d/f", "f" },
		{ 'f', "d/g", "g" }, /* the parent fd of "d" is cached here */
		{ 'l', "d", fx->canary },
		{ 'f', "d/passwd", "pwned" },
	};
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -ELOOP, "d/passwd",
		       "passes through a symlink");
}

/* A mount point inside the layer dir is not crossed. */
static void test_hostile_mount_inside(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char p[PATH_MAX];
	assert_int_equal(mkdir(tpath(p, fx->layer, "mnt"), 0755), 0);
	assert_int_equal(mount(fx->canary, p, NULL, MS_BIND, NULL), 0);
	track_mount(fx, p);
	char *before = snapshot(fx);
	const struct tent ents[] = { { 'f', "mnt/pwned", "x" } };
	build_tar(fx->tarball, F_NONE, ents, 1);
	struct cric_err err = { "" };
	struct unpack_result res;
	int r = unpack_file(fx->tarball, fx->layer_fd, NULL, &res, &err);
	print_message("  -> %d: %s\n", r, err.msg);
	assert_int_equal(r, -EXDEV);
	assert_non_null(strstr(err.msg, "crosses a mount point"));
	/* The remover refuses too, and leaves what is under the mount alone. */
	r = unpack_remove_tree(fx->tmp_fd, "layer", &err);
	print_message("  remove -> %d: %s\n", r, err.msg);
	assert_int_equal(r, -EXDEV);
	char *after = snapshot(fx);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(umount2(p, MNT_DETACH), 0);
	fx->n_mounts--;
	assert_int_equal(unpack_remove_tree(fx->tmp_fd, "layer", &err), 0);
}

static void test_hostile_device(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'd', "dev" }, { 'c', "dev/mem", .major = 1, .minor = 1 } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -EPERM, "dev/mem",
		       "device nodes are not allowed");
	const struct tent blk[] = { { 'b', "sda", .major = 8, .minor = 0 } };
	expect_hostile(fx, blk, 1, F_NONE, NULL, -EPERM, "sda", "device nodes are not allowed");
}

static void test_hostile_long_name(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char name[300];
	memset(name, 'a', 256);
	name[256] = '\0';
	const struct tent ents[] = { { 'f', name, "x" } };
	expect_hostile(fx, ents, 1, F_NONE, NULL, -ENAMETOOLONG, NULL, "longer than NAME_MAX");
	/* 255 is fine. */
	name[255] = '\0';
	unpack_ok(fx, ents, 1, F_NONE, NULL, NULL);
}

static void test_hostile_long_path(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char *path = malloc(8192);
	assert_non_null(path);
	path[0] = '\0';
	for (int i = 0; i < 45; i++)
		strcat(path,
		       "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
		       "ddddddddddddddddddddddddddddd/");
	strcat(path, "f");
	const struct tent ents[] = { { 'f', path, "x" } };
	expect_hostile(fx, ents, 1, F_NONE, NULL, -ENAMETOOLONG, NULL, "PATH_MAX");
	/* Deep rather than long: 2100 one-letter levels. */
	path[0] = '\0';
	for (int i = 0; i < 2100; i++)
		strcat(path, "d/");
	strcat(path, "f");
	expect_hostile(fx, ents, 1, F_NONE, NULL, -ENAMETOOLONG, NULL, "PATH_MAX");
	free(path);
}

static void test_hostile_entry_bomb(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	static struct tent ents[300];
	static char names[300][16];
	for (int i = 0; i < 300; i++) {
		snprintf(names[i], sizeof(names[i]), "f%03d", i);
		ents[i] = (struct tent){ 'f', names[i], "" };
	}
	struct unpack_opts o = { .max_entries = 100 };
	expect_hostile(fx, ents, 300, F_GZIP, &o, -E2BIG, "f100", "limit of 100 entries");
	/* Exactly at the limit is fine. */
	unpack_ok(fx, ents, 100, F_GZIP, &o, NULL);
}

static void test_hostile_size_bomb(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	/* 256 MiB of zeros compress to ~250 KiB; the limit is 1 MiB. */
	const struct tent ents[] = { { 'z', "bomb", .size = 256ULL << 20 } };
	struct unpack_opts o = { .max_bytes = 1 << 20 };
	expect_hostile(fx, ents, 1, F_GZIP, &o, -EFBIG, "bomb", "limit of 1048576 bytes");
	struct stat st;
	assert_int_equal(stat(fx->tarball, &st), 0);
	print_message("  (compressed size %lld bytes)\n", (long long)st.st_size);

	/* Many files, each small, adding up past the limit; the stream limit
	 * trips while reading (the size check of the declared size as well). */
	static struct tent many[40];
	static char names[40][16];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "m%02d", i);
		many[i] = (struct tent){ 'z', names[i], .size = 64 << 10 };
	}
	expect_hostile(fx, many, 40, F_ZSTD, &o, -EFBIG, NULL, "limit of 1048576 bytes");

	/* A small tar followed by 256 MiB of zero padding: nothing declares it,
	 * the stream limit stops it. */
	const struct tent one[] = { { 'f', "small", "s" } };
	char plain[PATH_MAX], p[PATH_MAX];
	build_tar(tpath(plain, fx->tmp, "keep-small.tar"), F_NONE, one, 1);
	compress_padded(plain, tpath(p, fx->tmp, "keep-padded.tar.gz"), F_GZIP, 256ULL << 20);
	assert_int_equal(stat(p, &st), 0);
	char *before = snapshot(fx);
	struct cric_err err = { "" };
	struct unpack_result res;
	int r = unpack_file(p, fx->layer_fd, &o, &res, &err);
	print_message("  padded (%lld bytes compressed) -> %d: %s\n", (long long)st.st_size, r,
		      err.msg);
	assert_int_equal(r, -EFBIG);
	assert_non_null(strstr(err.msg, "larger than the limit of 1048576 bytes uncompressed"));
	char *after = snapshot(fx);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_hostile_whiteout_names(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent dotdot[] = { { 'f', ".wh...", "" } };
	expect_hostile(fx, dotdot, 1, F_NONE, NULL, -EINVAL, ".wh...", "whiteout of an invalid");
	const struct tent dot[] = { { 'f', "a/.wh..", "" } };
	expect_hostile(fx, dot, 1, F_NONE, NULL, -EINVAL, "a/.wh..", "whiteout of an invalid");
	const struct tent empty[] = { { 'f', ".wh.", "" } };
	expect_hostile(fx, empty, 1, F_NONE, NULL, -EINVAL, ".wh.", "whiteout of an invalid");
	const struct tent meta[] = { { 'f', ".wh..wh.plnk", "" } };
	expect_hostile(fx, meta, 1, F_NONE, NULL, -EINVAL, ".wh..wh.plnk", "special whiteout");
	const struct tent parent[] = { { 'f', ".wh.x/y", "" } };
	expect_hostile(fx, parent, 1, F_NONE, NULL, -EINVAL, ".wh.x/y", "whiteout name");
}

static void test_hostile_whiteout_through_symlink(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'l', "c", fx->canary }, { 'f', "c/.wh.passwd", "" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -ELOOP, "c/.wh.passwd",
		       "passes through a symlink");
	const struct tent opq[] = { { 'l', "c", fx->canary }, { 'f', "c/.wh..wh..opq", "" } };
	expect_hostile(fx, opq, ARRAY_SIZE(opq), F_NONE, NULL, -ELOOP, "c/.wh..wh..opq",
		       "passes through a symlink");
}

/* Owner and mode of a symlink entry apply to the link, never its target. */
static void test_hostile_symlink_meta(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char *before = snapshot(fx);
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/passwd", fx->canary);
	const struct tent ents[] = {
		{ 'l', "s", target, .uid = 4242, .gid = 4242, .mtime = 1111111111,
		  .xname = { "user.evil" }, .xval = { "1" } },
		{ 'h', "h", "s" }, /* a hardlink to the symlink itself */
		{ 'l', "sd", fx->canary, .uid = 4242 },
		{ 'd', "sd", .mode = 0777, .uid = 4242 }, /* replaces the link */
	};
	struct unpack_result res;
	unpack_ok(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, &res);
	char *after = snapshot(fx);
	assert_string_equal(before, after);
	assert_stat(fx->layer, "s", S_IFLNK, 0, 4242, 4242, 1111111111);
	assert_stat(fx->layer, "h", S_IFLNK, 0, 4242, 4242, 0);
	assert_stat(fx->layer, "sd", S_IFDIR, 0777, 4242, 0, 0);
	assert_int_equal(res.xattrs_skipped, 1);
	free(before);
	free(after);
}

/* Directory records whose modes and times wait for the end: memory capped.
 * One 4000-byte path, repeated as a directory entry (each one a merge). */
static void test_hostile_dir_records_bomb(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char path[4100];
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		memset(path + o, 'a' + i, 249);
		o += 249;
		path[o++] = '/';
	}
	path[o] = '\0';
	assert_int_equal(strlen(path), 4000);
	size_t n = 34000; /* 34000 * (4001 + 48) bytes > 128 MiB */
	struct tent *ents = calloc(n, sizeof(*ents));
	assert_non_null(ents);
	for (size_t i = 0; i < n; i++)
		ents[i] = (struct tent){ 'd', path };
	expect_hostile(fx, ents, n, F_GZIP, NULL, -E2BIG, NULL, "exceed 128 MiB");
	free(ents);
}

static void test_hostile_parent_is_file(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'f', "f", "x" }, { 'f', "f/x", "y" } };
	expect_hostile(fx, ents, ARRAY_SIZE(ents), F_NONE, NULL, -ENOTDIR, "f/x",
		       "is not a directory");
}

static void test_hostile_overlay_xattr(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = {
		{ 'd', "d", .xname = { "trusted.overlay.redirect" }, .xval = { "/etc" } },
	};
	expect_hostile(fx, ents, 1, F_NONE, NULL, -EPERM, "d/", "reserved for overlayfs");
	const struct tent f[] = {
		{ 'f', "f", "x", .xname = { "user.ok", "user.overlay.metacopy" },
		  .xval = { "1", "" } },
	};
	expect_hostile(fx, f, 1, F_NONE, NULL, -EPERM, "f", "reserved for overlayfs");
}

static void test_hostile_ids(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	/* 4294967295 is (uid_t)-1: "leave the owner unchanged" to chown. */
	const struct tent ents[] = { { 'f', "f", "x", .uid = 4294967295LL } };
	expect_hostile(fx, ents, 1, F_NONE, NULL, -EINVAL, "f", "out of range");
	const struct tent big[] = { { 'f', "f", "x", .gid = 1LL << 40 } };
	expect_hostile(fx, big, 1, F_NONE, NULL, -EINVAL, "f", "out of range");
}

/* Names with control characters are quoted, not written raw into messages. */
static void test_hostile_name_escaped(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	const struct tent ents[] = { { 'f', "\x1b[31mred\n/../x\xff", "x" } };
	binary_names = true;
	expect_hostile(fx, ents, 1, F_NONE, NULL, -EINVAL, "\\x1b[31mred\\x0a/../x\\xff",
		       "\"..\" component");
	binary_names = false;
}

/* Two layers: a symlink in layer 1 and a file "through" it in layer 2. Each
 * unpacks into its own dir (nothing follows layer 1's link), and in the
 * overlay the file is in a directory of layer 2 that covers the link. */
static void test_symlink_across_layers(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char *before = snapshot(fx);
	const struct tent l1[] = { { 'l', "lib", fx->canary } };
	unpack_ok(fx, l1, 1, F_NONE, NULL, NULL);
	char l2dir[PATH_MAX];
	int l2 = new_dir(fx, "keep-l2", l2dir);
	const struct tent l2e[] = { { 'f', "lib/passwd", "pwned?" } };
	build_tar(fx->tarball, F_NONE, l2e, 1);
	struct cric_err err = { "" };
	struct unpack_result res;
	assert_int_equal(unpack_file(fx->tarball, l2, NULL, &res, &err), 0);
	close(l2);
	char merged[PATH_MAX];
	mount_overlay(fx, l2dir, fx->layer, merged);
	assert_stat(merged, "lib", S_IFDIR, 0755, 0, 0, 0);
	assert_content(merged, "lib/passwd", "pwned?");
	char *after = snapshot(fx);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* ---- unpack_remove_tree ---- */

static void test_remove_tree(void **state)
{
	REQUIRE_ROOT(UNPACK_NEEDS);
	struct fx *fx = *state;
	char *before = snapshot(fx);
	struct cric_err err = { "" };
	char p[PATH_MAX];
	/* Links out, unreadable dirs, a FIFO, an overlay whiteout. */
	assert_int_equal(symlink(fx->canary, tpath(p, fx->layer, "out")), 0);
	assert_int_equal(symlink("/", tpath(p, fx->layer, "root")), 0);
	assert_int_equal(mkdir(tpath(p, fx->layer, "locked"), 0), 0);
	write_text(tpath(p, fx->layer, "locked/f"), "f");
	assert_int_equal(chmod(tpath(p, fx->layer, "locked"), 0), 0);
	assert_int_equal(mkfifo(tpath(p, fx->layer, "fifo"), 0600), 0);
	assert_int_equal(mknod(tpath(p, fx->layer, "wh"), S_IFCHR, makedev(0, 0)), 0);
	char q[PATH_MAX];
	assert_int_equal(link(tpath(q, fx->canary, "passwd"), tpath(p, fx->layer, "hard")), 0);

	/* Deeper than PATH_MAX, with few fds allowed: O(1) fds at any depth. */
	int fd = dup(fx->layer_fd);
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(mkdirat(fd, "dddd", 0755), 0);
		int nfd = openat(fd, "dddd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(nfd >= 0);
		close(fd);
		fd = nfd;
		if (i % 1000 == 0)
			assert_int_equal(symlinkat(fx->canary, fd, "escape"), 0);
	}
	close(fd);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = old;
	lim.rlim_cur = 32;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	int r = unpack_remove_tree(fx->tmp_fd, "layer", &err);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (r)
		fail_msg("%s", err.msg);
	assert_false(exists(fx->tmp, "layer"));
	char *after = snapshot(fx);
	assert_string_equal(before, after);
	free(after);

	/* A symlink given as the name is unlinked, its target untouched. */
	assert_int_equal(symlink(fx->canary, tpath(p, fx->tmp, "keep-link")), 0);
	assert_int_equal(unpack_remove_tree(fx->tmp_fd, "keep-link", &err), 0);
	assert_false(exists(fx->tmp, "keep-link"));
	after = snapshot(fx);
	assert_string_equal(before, after);
	free(after);
	free(before);

	assert_int_equal(unpack_remove_tree(fx->tmp_fd, "missing", &err), -ENOENT);
	assert_int_equal(unpack_remove_tree(fx->tmp_fd, "canary/secret", &err), -EINVAL);
	assert_int_equal(unpack_remove_tree(fx->tmp_fd, "..", &err), -EINVAL);
	assert_int_equal(unpack_remove_tree(fx->tmp_fd, "", &err), -EINVAL);
	assert_true(exists(fx->canary, "secret/key"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_normal_layer),
		T(test_replace_and_merge),
		T(test_diff_id),
		T(test_pipe_input),
		T(test_bad_streams),
		T(test_whiteouts_overlay),
		T(test_symlink_across_layers),
		T(test_hostile_dotdot),
		T(test_hostile_dotdot_inner),
		T(test_special_bits_with_stored_caps),
		T(test_hostile_absolute),
		T(test_hostile_symlink_to_root),
		T(test_hostile_symlink_then_file),
		T(test_hostile_symlink_then_dir),
		T(test_hostile_symlink_dotdot_chain),
		T(test_hostile_hardlink_outside_absolute),
		T(test_hostile_hardlink_outside_dotdot),
		T(test_hostile_hardlink_through_symlink),
		T(test_hostile_hardlink_to_dir),
		T(test_hostile_preexisting_symlink),
		T(test_hostile_symlink_replaces_dir),
		T(test_hostile_mount_inside),
		T(test_hostile_device),
		T(test_hostile_long_name),
		T(test_hostile_long_path),
		T(test_hostile_entry_bomb),
		T(test_hostile_size_bomb),
		T(test_hostile_whiteout_names),
		T(test_hostile_whiteout_through_symlink),
		T(test_hostile_symlink_meta),
		T(test_hostile_dir_records_bomb),
		T(test_hostile_parent_is_file),
		T(test_hostile_overlay_xattr),
		T(test_hostile_ids),
		T(test_hostile_name_escaped),
		T(test_remove_tree),
	};
#undef T
	return cmocka_run_group_tests_name("stored-unpack", tests, NULL, NULL);
}
