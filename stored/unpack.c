#include "unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/archive-dl.h"
#include "common/cleanup.h"
#include "common/macro.h"
#include "stored/rmtree.h"
#include "stored/unpack-int.h"

/* ---- small helpers ---- */

/* openat2 beneath dirfd, no symlink anywhere, no magic link, no mount
 * crossing. Returns an fd or a negative errno. */
/* Quote a name from the archive: printable ASCII as is, anything else as
 * \xNN (messages stay one line of valid UTF-8), at most QUOTE_MAX bytes. */
const char *quote(const char *s, char out[QUOTE_BUF])
{
	size_t o = 0, i = 0;
	if (!s)
		s = "";
	for (; s[i] && i < QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, QUOTE_BUF - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (s[i])
		o += (size_t)snprintf(out + o, QUOTE_BUF - o, "...");
	out[o] = '\0';
	return out;
}

/* Normalise a path from the archive into out: empty and "." components
 * dropped, components joined by one '/'. "" is the layer root. -EINVAL for
 * an absolute path (image builders never write one: a layer that does is
 * aiming outside itself) and for "..", -ENAMETOOLONG for a component over NAME_MAX or a result
 * of PATH_MAX or more; *why says which. */
static int normalize_path(const char *raw, char out[PATH_MAX], const char **why)
{
	size_t o = 0;
	if (!raw || !*raw) {
		*why = "empty path";
		return -EINVAL;
	}
	if (raw[0] == '/') {
		*why = "absolute path";
		return -EINVAL;
	}
	for (const char *p = raw; *p;) {
		if (*p == '/') {
			p++;
			continue;
		}
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			*why = "path has a \"..\" component";
			return -EINVAL;
		}
		if (len > NAME_MAX) {
			*why = "a path component is longer than NAME_MAX (255 bytes)";
			return -ENAMETOOLONG;
		}
		if (!(len == 1 && p[0] == '.')) {
			if (o + (o ? 1 : 0) + len >= PATH_MAX) {
				*why = "path is PATH_MAX (4096 bytes) long or longer";
				return -ENAMETOOLONG;
			}
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = end;
	}
	out[o] = '\0';
	return 0;
}

/* Split a normalised, non-empty path in place: *parent ("" for the root) and
 * *name (the last component). */
static void split_path(char *path, const char **parent, const char **name)
{
	char *slash = strrchr(path, '/');
	if (!slash) {
		*parent = "";
		*name = path;
	} else {
		*slash = '\0';
		*parent = path;
		*name = slash + 1;
	}
}

static void ctx_done(struct unpack_ctx *c)
{
	archive_read_freep(&c->tar);
	archive_read_freep(&c->decomp);
	c->tar = c->decomp = NULL;
	c->hash = blob_hash_free(c->hash);
	closep(&c->parent_fd);
	closep(&c->root_fd);
	c->parent_fd = c->root_fd = -1;
	for (size_t i = 0; i < c->n_dirs; i++)
		free(c->dirs[i].path);
	free(c->dirs);
	c->dirs = NULL;
	c->n_dirs = 0;
}

/* Fail the current entry: 'entry #N "name": <what>' (just <what> between
 * entries, while a header is read). */
int entry_fail(struct unpack_ctx *c, int r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c->in_entry)
		return err_set(c->err, r, "%s", msg);
	return err_set(c->err, r, "entry #%llu \"%s\": %s", (unsigned long long)c->entries,
		       c->qname, msg);
}

/* ---- free space ---- */

/* -ENOSPC (err filled) when the layer's file system has less than
 * opts.min_free_bytes available. */
static int check_free(struct unpack_ctx *c)
{
	if (!c->opts.min_free_bytes)
		return 0;
	struct statvfs sv;
	if (fstatvfs(c->root_fd, &sv) < 0)
		return entry_fail(c, -errno, "statvfs: %m");
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (avail < c->opts.min_free_bytes)
		return entry_fail(c, -ENOSPC,
				  "the image file system has %llu bytes free, below the reserve of "
				  "%llu bytes",
				  (unsigned long long)avail,
				  (unsigned long long)c->opts.min_free_bytes);
	return 0;
}

/* ---- the uncompressed stream: hashed here, once ---- */

/* Next block of the uncompressed tar stream: its size, 0 at the end, or a
 * negative errno (err filled). Every byte of the stream passes here exactly
 * once, in order; this is where it is counted, bounded and hashed. */
static la_ssize_t pull_block(struct unpack_ctx *c, const void **buf)
{
	while (!c->decomp_eof) {
		size_t size = 0;
		la_int64_t off = 0;
		int r = sym_archive_read_data_block(c->decomp, buf, &size, &off);
		if (r == ARCHIVE_EOF) {
			c->decomp_eof = true;
			break;
		}
		if (r != ARCHIVE_OK)
			return entry_fail(c, -EBADMSG, "decompress: %s",
					  sym_archive_error_string(c->decomp));
		if ((uint64_t)off != c->tar_bytes)
			return entry_fail(c, -EBADMSG, "decompress: stream out of order");
		if (size == 0)
			continue;
		uint64_t before = c->tar_bytes;
		c->tar_bytes += size;
		if (c->tar_bytes > c->opts.max_bytes)
			return entry_fail(
			    c, -EFBIG, "layer is larger than the limit of %llu bytes uncompressed",
			    (unsigned long long)c->opts.max_bytes);
		if (before / UNPACK_FREE_CHECK_BYTES != c->tar_bytes / UNPACK_FREE_CHECK_BYTES &&
		    (r = check_free(c)) < 0)
			return r;
		r = blob_hash_update(c->hash, *buf, size);
		if (r < 0)
			return entry_fail(c, r, "sha256 failed");
		return (la_ssize_t)size;
	}
	return 0;
}

static la_ssize_t read_cb(struct archive *a, void *userdata, const void **buf)
{
	struct unpack_ctx *c = userdata;
	la_ssize_t n = pull_block(c, buf);
	if (n < 0) {
		c->cb_r = (int)n;
		sym_archive_set_error(a, (int)-n, "%s", c->err ? c->err->msg : "read failed");
		return -1;
	}
	return n;
}

/* After the tar reader's end: the rest of the stream (padding) is part of
 * the diff_id too. */
static int drain(struct unpack_ctx *c)
{
	const void *buf;
	la_ssize_t n;
	while ((n = pull_block(c, &buf)) > 0)
		;
	return (int)n;
}

/* ---- the tree ---- */

/* Remove what exists at name (st from fstatat NOFOLLOW): a directory with
 * its contents, anything else unlinked. */
static int remove_existing(struct unpack_ctx *c, int dfd, const char *name, const struct stat *st)
{
	c->parent_valid = false;
	int r = S_ISDIR(st->st_mode) ? rmtree_at(dfd, name) : 0;
	if (!S_ISDIR(st->st_mode) && unlinkat(dfd, name, 0) < 0)
		r = -errno;
	if (r < 0)
		return entry_fail(c, r, "replace the existing %s: %s",
				  S_ISDIR(st->st_mode) ? "directory" : "file", strerror(-r));
	return 0;
}

/* Make sure nothing is at name: -EEXIST handling for the creators. */
static int clear_name(struct unpack_ctx *c, int dfd, const char *name, struct stat *old)
{
	if (fstatat(dfd, name, old, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return entry_fail(c, -errno, "stat the existing file: %m");
	}
	return remove_existing(c, dfd, name, old);
}

/* Open (creating missing ones, 0755 root:root) each directory of parent,
 * one component at a time. */
static int make_parents(struct unpack_ctx *c, const char *parent)
{
	_cleanup_close_ int cur = -1;
	char comp[NAME_MAX + 1];
	for (const char *p = parent; *p;) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		memcpy(comp, p, len);
		comp[len] = '\0';
		int dfd = cur >= 0 ? cur : c->root_fd;
		int fd = openat2_strict(dfd, comp, O_RDONLY | O_DIRECTORY);
		if (fd == -ENOENT) {
			if (mkdirat(dfd, comp, 0700) < 0 && errno != EEXIST)
				return -errno;
			fd = openat2_strict(dfd, comp, O_RDONLY | O_DIRECTORY);
			if (fd >= 0 && (fchown(fd, 0, 0) < 0 || fchmod(fd, 0755) < 0)) {
				int r = -errno;
				close(fd);
				return r;
			}
		}
		if (fd < 0)
			return fd;
		closep(&cur);
		cur = fd;
		p = *end ? end + 1 : end;
	}
	return TAKE_FD(cur);
}

/* Fail with why dir (a parent path, or a hardlink target's) could not be
 * opened as a directory: O_DIRECTORY|O_NOFOLLOW reports a symlink in last
 * place as -ENOTDIR, so on -ENOTDIR/-ELOOP walk the prefixes (opening
 * nothing but O_PATH fds, following nothing) and name the culprit. */
static int dir_error(struct unpack_ctx *c, const char *what, const char *dir, int r)
{
	char q[QUOTE_BUF], q2[QUOTE_BUF], prefix[PATH_MAX];
	for (const char *p = dir; (r == -ENOTDIR || r == -ELOOP) && *p;) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - dir);
		memcpy(prefix, dir, len);
		prefix[len] = '\0';
		int fd = openat2_strict(c->root_fd, prefix, O_PATH);
		if (fd < 0)
			break;
		struct stat st;
		int k = fstat(fd, &st);
		close(fd);
		if (k < 0)
			break;
		if (S_ISLNK(st.st_mode))
			return entry_fail(c, -ELOOP, "%s \"%s\" passes through a symlink (\"%s\")",
					  what, quote(dir, q), quote(prefix, q2));
		if (!S_ISDIR(st.st_mode))
			return entry_fail(c, -ENOTDIR, "%s \"%s\" is not a directory (\"%s\")",
					  what, quote(dir, q), quote(prefix, q2));
		p = *end ? end + 1 : end;
	}
	switch (r) {
	case -ELOOP:
		return entry_fail(c, r, "%s \"%s\" passes through a symlink", what, quote(dir, q));
	case -ENOTDIR:
		return entry_fail(c, r, "%s \"%s\" is not a directory", what, quote(dir, q));
	case -EXDEV:
		return entry_fail(c, r, "%s \"%s\" crosses a mount point", what, quote(dir, q));
	case -ENOENT:
		return entry_fail(c, r, "%s \"%s\" not found in this layer", what, quote(dir, q));
	default:
		return entry_fail(c, r, "%s \"%s\": %s", what, quote(dir, q), strerror(-r));
	}
}

/* The parent dir of the current entry, opened (borrowed: do not close). */
static int open_parent(struct unpack_ctx *c, const char *parent, int *ret_fd)
{
	if (!*parent) {
		*ret_fd = c->root_fd;
		return 0;
	}
	if (c->parent_valid && strcmp(c->parent_path, parent) == 0) {
		*ret_fd = c->parent_fd;
		return 0;
	}
	closep(&c->parent_fd);
	c->parent_fd = -1;
	c->parent_valid = false;

	int fd = openat2_strict(c->root_fd, parent, O_RDONLY | O_DIRECTORY);
	if (fd == -ENOENT)
		fd = make_parents(c, parent);
	if (fd < 0)
		return dir_error(c, "parent path", parent, fd);
	c->parent_fd = fd;
	strcpy(c->parent_path, parent); /* fits: a prefix of a normalised path */
	c->parent_valid = true;
	*ret_fd = fd;
	return 0;
}

static int defer_dir(struct unpack_ctx *c, const char *path, struct archive_entry *e)
{
	c->dirs_bytes += sizeof(struct deferred_dir) + strlen(path) + 1;
	if (c->dirs_bytes > MAX_DIR_MEMORY)
		return entry_fail(
		    c, -E2BIG, "too many directories: their pending modes and times exceed %u MiB",
		    MAX_DIR_MEMORY >> 20);
	if (c->n_dirs == c->cap_dirs) {
		size_t cap = c->cap_dirs ? c->cap_dirs * 2 : 64;
		struct deferred_dir *d = realloc(c->dirs, cap * sizeof(*d));
		if (!d)
			return entry_fail(c, -ENOMEM, "out of memory");
		c->dirs = d;
		c->cap_dirs = cap;
	}
	struct deferred_dir *d = &c->dirs[c->n_dirs];
	d->path = strdup(path);
	if (!d->path)
		return entry_fail(c, -ENOMEM, "out of memory");
	d->mode = sym_archive_entry_perm(e) & 07777;
	entry_times(e, d->times);
	c->n_dirs++;
	return 0;
}

/* Directory modes and times, once everything inside them is written. A
 * directory replaced later in the layer (by a file, a symlink) is skipped;
 * records are applied in archive order, so the last one of a path wins. */
static int apply_deferred_dirs(struct unpack_ctx *c)
{
	for (size_t i = 0; i < c->n_dirs; i++) {
		const struct deferred_dir *d = &c->dirs[i];
		char q[QUOTE_BUF];
		_cleanup_close_ int fd = -1;
		if (d->path[0])
			fd = openat2_strict(c->root_fd, d->path, O_RDONLY | O_DIRECTORY);
		else if ((fd = fcntl(c->root_fd, F_DUPFD_CLOEXEC, 3)) < 0)
			fd = -errno;
		if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
			continue;
		if (fd < 0)
			return err_set(c->err, fd, "directory \"%s\": open: %s", quote(d->path, q),
				       strerror(-fd));
		if (fchmod(fd, d->mode) < 0 || futimens(fd, d->times) < 0)
			return err_set(c->err, -errno, "directory \"%s\": set mode and times: %m",
				       quote(d->path, q));
	}
	return 0;
}

/* ---- one entry per file type ---- */

static int extract_dir(struct unpack_ctx *c, int dfd, const char *name, const char *path,
		       struct archive_entry *e)
{
	bool opaque = false;
	_cleanup_close_ int fd = -1;
	if (!*path) {
		if ((fd = fcntl(c->root_fd, F_DUPFD_CLOEXEC, 3)) < 0)
			fd = -errno;
	} else {
		if (mkdirat(dfd, name, 0700) < 0) {
			if (errno != EEXIST)
				return entry_fail(c, -errno, "mkdir: %m");
			struct stat st;
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return entry_fail(c, -errno, "stat the existing file: %m");
			if (!S_ISDIR(st.st_mode)) {
				/* A directory over this layer's whiteout replaces the
				 * lower one: it must not merge with it. */
				opaque = S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
				int r = remove_existing(c, dfd, name, &st);
				if (r < 0)
					return r;
				if (mkdirat(dfd, name, 0700) < 0)
					return entry_fail(c, -errno, "mkdir: %m");
			}
		}
		fd = openat2_strict(dfd, name, O_RDONLY | O_DIRECTORY);
	}
	if (fd < 0)
		return entry_fail(c, fd, "open the directory: %s", strerror(-fd));
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int r = entry_owner(c, e, &uid, &gid);
	if (r < 0)
		return r;
	if (fchown(fd, uid, gid) < 0)
		return entry_fail(c, -errno, "chown: %m");
	r = apply_xattrs(c, fd, e);
	if (r < 0)
		return r;
	if (opaque && fsetxattr(fd, OPAQUE_XATTR, "y", 1, 0) < 0)
		return entry_fail(c, -errno, "set " OPAQUE_XATTR ": %m");
	return defer_dir(c, path, e);
}

static int write_data(struct unpack_ctx *c, int fd, uint64_t size)
{
	uint64_t end = 0;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = sym_archive_read_data_block(c->tar, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			if (c->cb_r < 0)
				return c->cb_r;
			return entry_fail(c, -EBADMSG, "read data: %s",
					  sym_archive_error_string(c->tar));
		}
		if (off < 0 || (uint64_t)off < end || (uint64_t)off + len > size)
			return entry_fail(c, -EBADMSG, "data block outside the file's size");
		const char *p = buf;
		uint64_t pos = (uint64_t)off;
		while (len > 0) {
			ssize_t n = pwrite(fd, p, len, (off_t)pos);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return entry_fail(c, -errno, "write: %m");
			}
			p += n;
			pos += (uint64_t)n;
			len -= (size_t)n;
		}
		end = pos;
	}
	/* A trailing hole of a sparse file. */
	if (end < size && ftruncate(fd, (off_t)size) < 0)
		return entry_fail(c, -errno, "truncate: %m");
	return 0;
}

static int extract_file(struct unpack_ctx *c, int dfd, const char *name, struct archive_entry *e)
{
	la_int64_t size = sym_archive_entry_size(e);
	if (size < 0)
		return entry_fail(c, -EBADMSG, "negative size");
	/* declared_bytes <= max_bytes always holds: no overflow here. */
	if ((uint64_t)size > c->opts.max_bytes - c->declared_bytes)
		return entry_fail(c, -EFBIG,
				  "files add up to more than the limit of %llu bytes (this one "
				  "declares %lld)",
				  (unsigned long long)c->opts.max_bytes, (long long)size);

	c->declared_bytes += (uint64_t)size;

	static const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
	_cleanup_close_ int fd = openat(dfd, name, flags, 0600);
	if (fd < 0 && errno == EEXIST) {
		struct stat old;
		int r = clear_name(c, dfd, name, &old);
		if (r < 0)
			return r;
		fd = openat(dfd, name, flags, 0600);
	}
	if (fd < 0)
		return entry_fail(c, -errno, "create: %m");
	int r = write_data(c, fd, (uint64_t)size);
	if (r < 0)
		return r;
	r = apply_meta_fd(c, fd, e);
	if (r < 0)
		return r;
	if (close(TAKE_FD(fd)) < 0)
		return entry_fail(c, -errno, "close: %m");
	c->file_bytes += (uint64_t)size;
	return 0;
}

static int extract_symlink(struct unpack_ctx *c, int dfd, const char *name, struct archive_entry *e)
{
	const char *target = sym_archive_entry_symlink(e);
	if (!target || !*target)
		return entry_fail(c, -EINVAL, "symlink with an empty target");
	if (strlen(target) >= PATH_MAX)
		return entry_fail(c, -ENAMETOOLONG, "symlink target is PATH_MAX bytes or longer");
	/* The target is stored, never resolved by us: any value is harmless here. */
	if (symlinkat(target, dfd, name) < 0) {
		if (errno != EEXIST)
			return entry_fail(c, -errno, "symlink: %m");
		struct stat old;
		int r = clear_name(c, dfd, name, &old);
		if (r < 0)
			return r;
		if (symlinkat(target, dfd, name) < 0)
			return entry_fail(c, -errno, "symlink: %m");
	}
	return apply_meta_at(c, dfd, name, e, true);
}

static int extract_special(struct unpack_ctx *c, int dfd, const char *name, struct archive_entry *e,
			   mode_t type)
{
	if ((type == S_IFCHR || type == S_IFBLK) && !c->opts.allow_devices)
		return entry_fail(c, -EPERM, "device nodes are not allowed in this layer");
	dev_t dev = type == S_IFIFO
			? 0
			: makedev(sym_archive_entry_rdevmajor(e), sym_archive_entry_rdevminor(e));
	if (mknodat(dfd, name, type | 0600, dev) < 0) {
		if (errno != EEXIST)
			return entry_fail(c, -errno, "mknod: %m");
		struct stat old;
		int r = clear_name(c, dfd, name, &old);
		if (r < 0)
			return r;
		if (mknodat(dfd, name, type | 0600, dev) < 0)
			return entry_fail(c, -errno, "mknod: %m");
	}
	return apply_meta_at(c, dfd, name, e, false);
}

static int extract_hardlink(struct unpack_ctx *c, int dfd, const char *name,
			    struct archive_entry *e)
{
	char q[QUOTE_BUF], tpath[PATH_MAX];
	const char *raw = sym_archive_entry_hardlink(e), *why = NULL;
	int r = normalize_path(raw, tpath, &why);
	if (r < 0)
		return entry_fail(c, r, "hardlink target \"%s\": %s", quote(raw, q), why);
	if (!tpath[0])
		return entry_fail(c, -EPERM, "hardlink to the layer root");
	const char *tparent, *tname;
	split_path(tpath, &tparent, &tname);

	_cleanup_close_ int tdfd = -1;
	if (*tparent) {
		tdfd = openat2_strict(c->root_fd, tparent, O_PATH | O_DIRECTORY);
		if (tdfd < 0)
			return dir_error(c, "hardlink target's directory", tparent, tdfd);
	}
	int tfd = tdfd >= 0 ? tdfd : c->root_fd;
	struct stat tst;
	if (fstatat(tfd, tname, &tst, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_fail(c, -errno, "hardlink target \"%s\": %s", quote(raw, q),
				  errno == ENOENT ? "not found in this layer" : strerror(errno));
	if (S_ISDIR(tst.st_mode))
		return entry_fail(c, -EPERM, "hardlink target \"%s\" is a directory",
				  quote(raw, q));
	if (linkat(tfd, tname, dfd, name, 0) < 0) {
		if (errno != EEXIST)
			return entry_fail(c, -errno, "link to \"%s\": %m", quote(raw, q));
		struct stat old;
		if (fstatat(dfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 &&
		    old.st_dev == tst.st_dev && old.st_ino == tst.st_ino)
			return 0; /* already that file */
		r = clear_name(c, dfd, name, &old);
		if (r < 0)
			return r;
		if (linkat(tfd, tname, dfd, name, 0) < 0)
			return entry_fail(c, -errno, "link to \"%s\": %m", quote(raw, q));
	}
	return 0;
}

static int extract_whiteout(struct unpack_ctx *c, int dfd, const char *name)
{
	if (strcmp(name, WH_OPAQUE) == 0) {
		if (fsetxattr(dfd, OPAQUE_XATTR, "y", 1, 0) < 0)
			return entry_fail(c, -errno, "set " OPAQUE_XATTR ": %m");
		return 0;
	}
	if (strncmp(name, WH_META_PREFIX, strlen(WH_META_PREFIX)) == 0)
		return entry_fail(c, -EINVAL, "unsupported special whiteout");
	const char *target = name + strlen(WH_PREFIX);
	if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
		return entry_fail(c, -EINVAL, "whiteout of an invalid name");
	if (mknodat(dfd, target, S_IFCHR, makedev(0, 0)) < 0) {
		if (errno == EEXIST)
			return 0; /* present in this layer: a whiteout only hides lower ones */
		return entry_fail(c, -errno, "mknod whiteout: %m");
	}
	return 0;
}

static int apply_entry(struct unpack_ctx *c, struct archive_entry *e)
{
	char path[PATH_MAX];
	const char *raw = sym_archive_entry_pathname(e), *why = NULL;
	quote(raw, c->qname);
	c->in_entry = true;
	if (c->entries > c->opts.max_entries)
		return entry_fail(c, -E2BIG, "layer has more than the limit of %llu entries",
				  (unsigned long long)c->opts.max_entries);
	int r = normalize_path(raw, path, &why);
	if (r < 0)
		return entry_fail(c, r, "%s", why);

	mode_t type = sym_archive_entry_filetype(e);
	bool hardlink = sym_archive_entry_hardlink(e) != NULL;
	if (!path[0]) { /* "/" or "./": the layer root itself */
		if (type != AE_IFDIR || hardlink)
			return entry_fail(c, -EINVAL, "only a directory may stand for the root");
		return extract_dir(c, c->root_fd, "", "", e);
	}
	char full[PATH_MAX];
	strcpy(full, path);
	const char *parent, *name;
	split_path(path, &parent, &name);
	/* No directory of the layer may be a whiteout name. */
	for (const char *p = parent; *p; p = strchrnul(p, '/'), p += !!*p)
		if (strncmp(p, WH_PREFIX, strlen(WH_PREFIX)) == 0)
			return entry_fail(c, -EINVAL, "a parent directory has a whiteout name");

	int dfd = -1;
	r = open_parent(c, parent, &dfd);
	if (r < 0)
		return r;
	if (strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0)
		return extract_whiteout(c, dfd, name);
	if (hardlink)
		return extract_hardlink(c, dfd, name, e);
	switch (type) {
	case AE_IFDIR:
		return extract_dir(c, dfd, name, full, e);
	case AE_IFREG:
		return extract_file(c, dfd, name, e);
	case AE_IFLNK:
		return extract_symlink(c, dfd, name, e);
	case AE_IFIFO:
	case AE_IFCHR:
	case AE_IFBLK:
		return extract_special(c, dfd, name, e, type);
	default:
		return entry_fail(c, -EINVAL, "unsupported file type 0%o", (unsigned)type);
	}
}

/* ---- the import ---- */

/* libarchive converts pax (UTF-8) names to the thread's locale charset; in
 * the "C" locale of a daemon it flags every non-ASCII name. The import runs
 * with a UTF-8 LC_CTYPE on its own thread only. */
struct locale_guard {
	locale_t mine, old;
};

static void locale_guard_done(struct locale_guard *g)
{
	if (g->mine) {
		uselocale(g->old);
		freelocale(g->mine);
	}
}

static int open_streams(struct unpack_ctx *c, int in_fd, enum unpack_compression *compression)
{
	c->decomp = sym_archive_read_new();
	c->tar = sym_archive_read_new();
	if (!c->decomp || !c->tar)
		return err_set(c->err, -ENOMEM, "out of memory");
	/* ARCHIVE_WARN here would mean an external program: refused. */
	if (sym_archive_read_support_filter_gzip(c->decomp) != ARCHIVE_OK ||
	    sym_archive_read_support_filter_zstd(c->decomp) != ARCHIVE_OK ||
	    sym_archive_read_support_format_raw(c->decomp) != ARCHIVE_OK ||
	    sym_archive_read_support_format_tar(c->tar) != ARCHIVE_OK)
		return err_set(c->err, -EOPNOTSUPP, "libarchive lacks built-in gzip/zstd/tar");
	if (sym_archive_read_open_fd(c->decomp, in_fd, READ_BLOCK) != ARCHIVE_OK)
		return err_set(c->err, -EBADMSG, "open stream: %s",
			       sym_archive_error_string(c->decomp));
	struct archive_entry *raw;
	int r = sym_archive_read_next_header(c->decomp, &raw);
	if (r == ARCHIVE_EOF)
		return err_set(c->err, -EBADMSG, "empty stream");
	if (r != ARCHIVE_OK)
		return err_set(c->err, -EBADMSG, "decompress: %s",
			       sym_archive_error_string(c->decomp));
	/* One compression at most (plus libarchive's pass-through). */
	if (sym_archive_filter_count(c->decomp) > 2)
		return err_set(c->err, -EBADMSG, "nested compression is not supported");
	switch (sym_archive_filter_code(c->decomp, 0)) {
	case ARCHIVE_FILTER_NONE:
		*compression = UNPACK_NONE;
		break;
	case ARCHIVE_FILTER_GZIP:
		*compression = UNPACK_GZIP;
		break;
	case ARCHIVE_FILTER_ZSTD:
		*compression = UNPACK_ZSTD;
		break;
	default:
		return err_set(c->err, -EBADMSG, "unsupported compression \"%s\"",
			       sym_archive_filter_name(c->decomp, 0));
	}
	if (sym_archive_read_open(c->tar, c, NULL, read_cb, NULL) != ARCHIVE_OK) {
		if (c->cb_r < 0)
			return c->cb_r;
		return err_set(c->err, -EBADMSG, "%s", sym_archive_error_string(c->tar));
	}
	return 0;
}

static int unpack_entries(struct unpack_ctx *c)
{
	for (;;) {
		struct archive_entry *e;
		c->in_entry = false;
		int r = sym_archive_read_next_header(c->tar, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		c->entries++;
		if (r != ARCHIVE_OK) {
			if (c->cb_r < 0)
				return c->cb_r;
			/* A warning still comes with a usable name. */
			char q[QUOTE_BUF];
			return err_set(c->err, -EBADMSG, "entry #%llu \"%s\": bad tar header: %s",
				       (unsigned long long)c->entries,
				       r == ARCHIVE_WARN ? quote(sym_archive_entry_pathname(e), q)
							 : "",
				       sym_archive_error_string(c->tar));
		}
		r = apply_entry(c, e);
		if (r < 0)
			return r;
	}
}

static int unpack(struct unpack_ctx *c, int in_fd, int layer_fd, struct unpack_result *ret)
{
	/* Fail closed: without openat2 there is no safe resolution. */
	c->root_fd = openat2_strict(layer_fd, ".", O_RDONLY | O_DIRECTORY);
	if (c->root_fd == -ENOSYS)
		return err_set(c->err, -ENOSYS, "openat2() is not available (Linux >= 5.6 needed)");
	if (c->root_fd < 0)
		return err_set(c->err, c->root_fd, "open layer dir: %s", strerror(-c->root_fd));
	int r = check_free(c);
	if (r < 0)
		return r;
	c->hash = blob_hash_new();
	if (!c->hash)
		return err_set(c->err, -ENOMEM, "out of memory");

	enum unpack_compression compression = UNPACK_NONE;
	r = open_streams(c, in_fd, &compression);
	if (r < 0)
		return r;
	r = unpack_entries(c);
	if (r < 0)
		return r;
	r = drain(c);
	if (r < 0)
		return r;
	r = apply_deferred_dirs(c);
	if (r < 0)
		return r;
	r = blob_hash_final(c->hash, ret->diff_id);
	if (r < 0)
		return err_set(c->err, r, "sha256 failed");
	ret->compression = compression;
	ret->entries = c->entries;
	ret->tar_bytes = c->tar_bytes;
	ret->file_bytes = c->file_bytes;
	ret->xattrs_skipped = c->xattrs_skipped;
	return 0;
}

int unpack_layer(int in_fd, int layer_fd, const struct unpack_opts *opts, struct unpack_result *ret,
		 struct cric_err *err)
{
	int r = archive_dl_load(err);
	if (r < 0)
		return err_prefix(err, r, "unpack layer");
	_cleanup_(locale_guard_done) struct locale_guard lg = { 0 };
	lg.mine = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (lg.mine)
		lg.old = uselocale(lg.mine);

	_cleanup_(ctx_done) struct unpack_ctx c = {
		.err = err,
		.root_fd = -1,
		.parent_fd = -1,
	};
	if (opts)
		c.opts = *opts;
	if (!c.opts.max_entries)
		c.opts.max_entries = UNPACK_DEFAULT_MAX_ENTRIES;
	if (!c.opts.max_bytes)
		c.opts.max_bytes = UNPACK_DEFAULT_MAX_BYTES;

	struct unpack_result res = { 0 };
	r = unpack(&c, in_fd, layer_fd, &res);
	if (r < 0)
		return err_prefix(err, r, "unpack layer");
	*ret = res;
	return 0;
}

int unpack_remove_tree(int dir_fd, const char *name, struct cric_err *err)
{
	char q[QUOTE_BUF];
	if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return err_set(err, -EINVAL, "remove tree \"%s\": not a plain name",
			       quote(name, q));
	int r = rmtree_at(dir_fd, name);
	if (r < 0)
		return err_set(err, r, "remove tree \"%s\": %s", quote(name, q),
			       r == -EXDEV ? "a mount point is inside it" : strerror(-r));
	return 0;
}
