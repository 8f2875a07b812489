/* Checkpoint archives: see checkpoint.h. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/archive-dl.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"

/* Entries of an archive we look into before calling it a checkpoint. */
#define CKPT_SCAN_MAX 100000

static inline void archive_write_freep(struct archive **a)
{
	if (*a)
		sym_archive_write_free(*a);
}

static inline void archive_entry_freep(struct archive_entry **e)
{
	if (*e)
		sym_archive_entry_free(*e);
}

/* path is at or beneath dir (both absolute, resolved). */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int ckpt_location_check(const char *location, const char *const *own, struct cric_err *err)
{
	if (!location || !*location)
		return err_set(err, -EINVAL, "location is required");
	if (!path_is_clean(location, true, PATH_MAX) || strcmp(location, "/") == 0)
		return err_set(err, -EINVAL,
			       "location \"%.200s\" is not a clean absolute path of a file",
			       location);
	_cleanup_free_ char *dir = strdup(location);
	if (!dir)
		return -ENOMEM;
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	_cleanup_free_ char *real_dir = realpath(dir, NULL);
	if (!real_dir)
		return err_set(err, -EINVAL, "location \"%.200s\": its directory: %s", location,
			       strerror(errno));
	struct stat st;
	if (stat(real_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return err_set(err, -EINVAL, "location \"%.200s\": its directory is not one",
			       location);
	/* An existing location may be a symlink; where it points counts too. */
	_cleanup_free_ char *real_loc = realpath(location, NULL);
	for (size_t i = 0; own && own[i]; i++) {
		_cleanup_free_ char *real_own = realpath(own[i], NULL);
		const char *o = real_own ? real_own : own[i];
		if (path_within(real_dir, o) || path_within(location, own[i]) ||
		    (real_loc && path_within(real_loc, o)))
			return err_set(err, -EINVAL,
				       "location \"%.200s\" is inside the runtime's own directory "
				       "\"%s\"",
				       location, own[i]);
	}
	return 0;
}

/* ---- writing trees into a tar ---- */

/* Drop overlay's own xattrs (trusted.overlay.*: whiteout, opaque,
 * redirect marks that mean nothing outside this mount). */
static int strip_overlay_xattrs(struct archive_entry *e)
{
	size_t n = (size_t)sym_archive_entry_xattr_reset(e);
	if (n == 0)
		return 0;
	struct kept {
		char *name;
		void *value;
		size_t size;
	} *keep = calloc(n, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	size_t k = 0;
	int r = 0;
	const char *name;
	const void *value;
	size_t size;
	while (sym_archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK && k < n) {
		if (strncmp(name, "trusted.overlay.", 16) == 0)
			continue;
		keep[k].name = strdup(name);
		keep[k].value = malloc(size ? size : 1);
		keep[k].size = size;
		if (!keep[k].name || !keep[k].value) {
			free(keep[k].name);
			free(keep[k].value);
			r = -ENOMEM;
			break;
		}
		memcpy(keep[k].value, value, size);
		k++;
	}
	if (r == 0) {
		sym_archive_entry_xattr_clear(e);
		for (size_t i = 0; i < k; i++)
			sym_archive_entry_xattr_add_entry(e, keep[i].name, keep[i].value,
							  keep[i].size);
	}
	for (size_t i = 0; i < k; i++) {
		free(keep[i].name);
		free(keep[i].value);
	}
	free(keep);
	return r;
}

struct tree_walk {
	struct archive *out;
	/* The rootfs diff: whiteouts go to deleted (not to the tar), overlay
	 * xattrs are dropped. */
	bool upper;
	json_t *deleted;
};

static int copy_data(struct archive *in, struct archive *out, const char *path,
		     struct cric_err *err)
{
	char buf[64 * 1024];
	for (;;) {
		la_ssize_t n = sym_archive_read_data(in, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0)
			return err_set(err, -EIO, "read \"%s\": %s", path,
				       sym_archive_error_string(in));
		if (sym_archive_write_data(out, buf, (size_t)n) != n)
			return err_set(err, -EIO, "archive \"%s\": %s", path,
				       sym_archive_error_string(out));
	}
}

/* Every entry under dir into w->out, named relative to dir. */
static int tar_tree(const char *dir, struct tree_walk *w, struct cric_err *err)
{
	int r = archive_dl_load(err);
	if (r < 0)
		return r;
	_cleanup_archive_read_ struct archive *in = sym_archive_read_disk_new();
	_cleanup_(archive_entry_freep) struct archive_entry *e = sym_archive_entry_new();
	if (!in || !e)
		return -ENOMEM;
	sym_archive_read_disk_set_symlink_physical(in);
	if (sym_archive_read_disk_set_behavior(in, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS) !=
		ARCHIVE_OK ||
	    sym_archive_read_disk_open(in, dir) != ARCHIVE_OK)
		return err_set(err, -EIO, "read \"%s\": %s", dir, sym_archive_error_string(in));
	size_t skip = strlen(dir);
	for (;;) {
		sym_archive_entry_clear(e);
		r = sym_archive_read_next_header2(in, e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return err_set(err, -EIO, "read \"%s\": %s", dir,
				       sym_archive_error_string(in));
		const char *path = sym_archive_entry_pathname(e);
		if (!path || strncmp(path, dir, skip) != 0)
			return err_set(err, -EIO, "read \"%s\": an entry outside it", dir);
		const char *rel = path + skip;
		while (*rel == '/')
			rel++;
		mode_t type = sym_archive_entry_filetype(e);
		if (type == AE_IFDIR && sym_archive_read_disk_descend(in) != ARCHIVE_OK)
			return err_set(err, -EIO, "read \"%s\": %s", path,
				       sym_archive_error_string(in));
		if (!*rel)
			continue; /* dir itself */
		if (w->upper && type == AE_IFCHR && sym_archive_entry_rdev(e) == makedev(0, 0)) {
			_cleanup_free_ char *abs = NULL;
			if (asprintf(&abs, "/%s", rel) < 0)
				return -ENOMEM;
			if (json_array_append_new(w->deleted, json_string(abs)) < 0)
				return -ENOMEM;
			continue;
		}
		if (w->upper && strip_overlay_xattrs(e) < 0)
			return -ENOMEM;
		_cleanup_free_ char *name = strdup(rel);
		if (!name)
			return -ENOMEM;
		sym_archive_entry_copy_pathname(e, name);
		if (sym_archive_write_header(w->out, e) != ARCHIVE_OK)
			return err_set(err, -EIO, "archive \"%s\": %s", name,
				       sym_archive_error_string(w->out));
		if (type == AE_IFREG && sym_archive_entry_size(e) > 0 &&
		    (r = copy_data(in, w->out, name, err)) < 0)
			return r;
	}
}

static int tar_writer(int fd, const char *what, struct archive **ret, struct cric_err *err)
{
	int r = archive_dl_load(err);
	if (r < 0)
		return r;
	_cleanup_(archive_write_freep) struct archive *a = sym_archive_write_new();
	if (!a)
		return -ENOMEM;
	if (sym_archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    sym_archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    sym_archive_write_open_fd(a, fd) != ARCHIVE_OK)
		return err_set(err, -EIO, "write \"%s\": %s", what, sym_archive_error_string(a));
	*ret = TAKE_PTR(a);
	return 0;
}

/* Close the tar (its last blocks), then fsync the file. */
static int tar_finish(struct archive *a, int fd, const char *what, struct cric_err *err)
{
	if (sym_archive_write_close(a) != ARCHIVE_OK)
		return err_set(err, -EIO, "write \"%s\": %s", what, sym_archive_error_string(a));
	if (fsync(fd) < 0)
		return err_set(err, negative_errno(), "write \"%s\": %s", what, strerror(errno));
	return 0;
}

int ckpt_rootfs_diff(const char *upper, const char *dir, struct cric_err *err)
{
	_cleanup_free_ char *tar_path = path_join(dir, CKPT_ROOTFS_DIFF);
	_cleanup_free_ char *del_path = path_join(dir, CKPT_DELETED_FILES);
	_cleanup_json_ json_t *deleted = json_array();
	if (!tar_path || !del_path || !deleted)
		return -ENOMEM;
	_cleanup_close_ int fd =
	    open(tar_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", tar_path,
			       strerror(errno));
	_cleanup_(archive_write_freep) struct archive *a = NULL;
	int r = tar_writer(fd, tar_path, &a, err);
	if (r < 0)
		return r;
	struct tree_walk w = { .out = a, .upper = true, .deleted = deleted };
	if ((r = tar_tree(upper, &w, err)) < 0)
		return err_prefix(err, r, "the writable layer");
	if ((r = tar_finish(a, fd, tar_path, err)) < 0)
		return r;
	if ((r = json_save_atomic(del_path, deleted, 0600)) < 0)
		return err_set(err, r, "write \"%s\": %s", del_path, strerror(-r));
	return 0;
}

int ckpt_archive_write(const char *dir, const char *dest, struct cric_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	const char *slash = strrchr(dest, '/');
	if (!slash || asprintf(&tmp, "%.*s/.%s.XXXXXX", (int)(slash - dest), dest, slash + 1) < 0)
		return -ENOMEM;
	struct stat st;
	if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode))
		return err_set(err, -EINVAL, "location \"%.200s\" is a directory", dest);
	_cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_set(err, negative_errno(), "create a file beside \"%.200s\": %s", dest,
			       strerror(errno));
	int r = fchmod(fd, 0600) < 0 ? negative_errno() : 0;
	if (r < 0) {
		err_set(err, r, "chmod \"%s\": %s", tmp, strerror(-r));
	} else {
		_cleanup_(archive_write_freep) struct archive *a = NULL;
		r = tar_writer(fd, dest, &a, err);
		struct tree_walk w = { .out = a };
		if (r == 0)
			r = tar_tree(dir, &w, err);
		if (r == 0)
			r = tar_finish(a, fd, dest, err);
	}
	if (r == 0 && rename(tmp, dest) < 0)
		r = err_set(err, negative_errno(), "rename to \"%.200s\": %s", dest,
			    strerror(errno));
	if (r < 0)
		unlink(tmp);
	return r;
}

/* "./a/b" and "a/b" alike. */
static const char *member_name(const char *p)
{
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	while (*p == '/')
		p++;
	return p;
}

bool ckpt_archive_is_checkpoint(const char *path)
{
	if (!path || path[0] != '/')
		return false;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	struct cric_err err;
	if (archive_dl_load(&err) < 0) {
		log_warning("is \"%.200s\" a checkpoint: %s, ignoring", path, err.msg);
		return false;
	}
	_cleanup_archive_read_ struct archive *a = sym_archive_read_new();
	if (!a || sym_archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    sym_archive_read_support_filter_all(a) != ARCHIVE_OK ||
	    sym_archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK)
		return false;
	bool config = false, spec = false, images = false;
	struct archive_entry *e;
	for (size_t i = 0; i < CKPT_SCAN_MAX && sym_archive_read_next_header(a, &e) == ARCHIVE_OK;
	     i++) {
		const char *name = member_name(sym_archive_entry_pathname(e) ?: "");
		config |= strcmp(name, CKPT_CONFIG_DUMP) == 0;
		spec |= strcmp(name, CKPT_SPEC_DUMP) == 0;
		images |= strncmp(name, CKPT_IMAGES_DIR "/", strlen(CKPT_IMAGES_DIR) + 1) == 0 ||
			  strcmp(name, CKPT_IMAGES_DIR) == 0;
		if (config && spec && images)
			return true;
	}
	return false;
}

/* ---- restore ---- */

/* A member name of ours: clean, relative ("./" and a directory's trailing
 * "/" allowed), into buf. */
static bool clean_member(const char *name, char *buf, size_t size)
{
	if (name[0] == '/')
		return false;
	name = member_name(name);
	size_t n = strlen(name);
	while (n > 0 && name[n - 1] == '/')
		n--;
	if (n == 0 || n >= size)
		return false;
	memcpy(buf, name, n);
	buf[n] = '\0';
	return path_is_clean(buf, false, size);
}

static int extract_to(struct archive *in, struct archive *out, const char *root, bool any_type,
		      unsigned long long max, struct cric_err *err)
{
	struct archive_entry *e;
	unsigned long long total = 0;
	for (;;) {
		int r = sym_archive_read_next_header(in, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return err_set(err, -EINVAL, "read: %s", sym_archive_error_string(in));
		char rel[PATH_MAX], full[PATH_MAX * 2];
		const char *name = sym_archive_entry_pathname(e);
		if (!name || !clean_member(name, rel, sizeof(rel)))
			return err_set(err, -EINVAL,
				       "member \"%.200s\" is not a clean relative name",
				       name ? name : "");
		mode_t type = sym_archive_entry_filetype(e);
		if (!any_type && type != AE_IFREG && type != AE_IFDIR)
			return err_set(err, -EINVAL,
				       "member \"%.200s\" is neither a file nor a "
				       "directory",
				       rel);
		const char *link = sym_archive_entry_hardlink(e);
		if (link) {
			char lrel[PATH_MAX];
			if (!any_type || !clean_member(link, lrel, sizeof(lrel)))
				return err_set(err, -EINVAL, "member \"%.200s\": a bad hard link",
					       rel);
			snprintf(full, sizeof(full), "%s/%s", root, lrel);
			sym_archive_entry_copy_hardlink(e, full);
		}
		total +=
		    (unsigned long long)(sym_archive_entry_size(e) > 0 ? sym_archive_entry_size(e)
								       : 0);
		if (total > max)
			return err_set(err, -EFBIG, "more than %llu bytes", max);
		snprintf(full, sizeof(full), "%s/%s", root, rel);
		sym_archive_entry_copy_pathname(e, full);
		if (sym_archive_write_header(out, e) != ARCHIVE_OK)
			return err_set(err, -EIO, "extract \"%.200s\": %s", rel,
				       sym_archive_error_string(out));
		for (;;) {
			const void *buf;
			size_t len;
			la_int64_t off;
			r = sym_archive_read_data_block(in, &buf, &len, &off);
			if (r == ARCHIVE_EOF)
				break;
			if (r != ARCHIVE_OK)
				return err_set(err, -EINVAL, "read \"%.200s\": %s", rel,
					       sym_archive_error_string(in));
			if (sym_archive_write_data_block(out, buf, len, off) != ARCHIVE_OK)
				return err_set(err, -EIO, "extract \"%.200s\": %s", rel,
					       sym_archive_error_string(out));
		}
		if (sym_archive_write_finish_entry(out) != ARCHIVE_OK)
			return err_set(err, -EIO, "extract \"%.200s\": %s", rel,
				       sym_archive_error_string(out));
	}
}

/* The tar at path into root (resolved: no symlink in it). */
static int extract_tar(const char *path, const char *root, bool any_type, unsigned long long max,
		       struct cric_err *err)
{
	_cleanup_free_ char *real = realpath(root, NULL);
	if (!real)
		return err_set(err, negative_errno(), "\"%s\": %s", root, strerror(errno));
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set(err, negative_errno(), "open \"%.200s\": %s", path, strerror(errno));
	int r = archive_dl_load(err);
	if (r < 0)
		return r;
	_cleanup_archive_read_ struct archive *in = sym_archive_read_new();
	_cleanup_(archive_write_freep) struct archive *out = sym_archive_write_disk_new();
	if (!in || !out)
		return -ENOMEM;
	int flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		    ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME;
	if (any_type)
		flags |= ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK;
	if (sym_archive_read_support_format_tar(in) != ARCHIVE_OK ||
	    sym_archive_read_support_filter_all(in) != ARCHIVE_OK ||
	    sym_archive_write_disk_set_options(out, flags) != ARCHIVE_OK ||
	    sym_archive_read_open_fd(in, fd, 64 * 1024) != ARCHIVE_OK)
		return err_set(err, -EINVAL, "read \"%.200s\": %s", path,
			       sym_archive_error_string(in));
	r = extract_to(in, out, real, any_type, max, err);
	if (r == 0 && sym_archive_write_close(out) != ARCHIVE_OK)
		r = err_set(err, -EIO, "extract: %s", sym_archive_error_string(out));
	return r < 0 ? err_prefix(err, r, "\"%.200s\"", path) : 0;
}

int ckpt_archive_extract(const char *path, const char *dir, char **image, struct cric_err *err)
{
	int r = extract_tar(path, dir, false, CKPT_EXTRACT_MAX, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *cfg_path = path_join(dir, CKPT_CONFIG_DUMP);
	if (!cfg_path)
		return -ENOMEM;
	json_t *doc = NULL;
	char why[256];
	if ((r = json_load_path(cfg_path, 1 << 20, &doc, why, sizeof(why))) < 0)
		return err_set(err, -EINVAL, "checkpoint \"%.200s\": %s: %s", path,
			       CKPT_CONFIG_DUMP, why);
	_cleanup_json_ json_t *config = doc;
	const char *name = json_string_value(json_object_get(config, "rootfsImageName"));
	if (!name || !*name)
		name = json_string_value(json_object_get(config, "rootfsImageRef"));
	if (!name || !*name || strlen(name) > 4096)
		return err_set(err, -EINVAL, "checkpoint \"%.200s\": %s names no image", path,
			       CKPT_CONFIG_DUMP);
	*image = strdup(name);
	return *image ? 0 : -ENOMEM;
}

/* rm -r of name in dirfd, never following a link. */
static int remove_at(int dirfd, const char *name, int depth)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR || depth > 256)
		return negative_errno();
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	int dup_fd = dup(fd);
	DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return -ENOMEM;
	}
	int r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
			r = remove_at(fd, e->d_name, depth + 1);
	closedir(d);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = negative_errno();
	return r;
}

/* Remove path (absolute, inside the container) beneath root. */
static int remove_beneath(int rootfd, const char *path)
{
	if (!path_is_clean(path, true, PATH_MAX) || strcmp(path, "/") == 0)
		return -EINVAL;
	_cleanup_free_ char *parent = strdup(path);
	if (!parent)
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	const char *base = path + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, parent, &how, sizeof(how));
	if (fd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	return remove_at(fd, base, 0);
}

int ckpt_rootfs_apply(const char *dir, const char *rootfs, struct cric_err *err)
{
	_cleanup_free_ char *diff = path_join(dir, CKPT_ROOTFS_DIFF);
	_cleanup_free_ char *del = path_join(dir, CKPT_DELETED_FILES);
	if (!diff || !del)
		return -ENOMEM;
	int r;
	if (access(diff, F_OK) == 0 &&
	    (r = extract_tar(diff, rootfs, true, CKPT_EXTRACT_MAX, err)) < 0)
		return err_prefix(err, r, "apply the writable layer's changes");
	if (access(del, F_OK) < 0)
		return 0;
	json_t *doc = NULL;
	char why[256];
	if ((r = json_load_path(del, 64 << 20, &doc, why, sizeof(why))) < 0)
		return err_set(err, -EINVAL, "%s: %s", CKPT_DELETED_FILES, why);
	_cleanup_json_ json_t *list = doc;
	if (!json_is_array(list))
		return err_set(err, -EINVAL, "%s is not a list", CKPT_DELETED_FILES);
	_cleanup_close_ int rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_set(err, negative_errno(), "open \"%s\": %s", rootfs, strerror(errno));
	size_t i;
	json_t *v;
	json_array_foreach (list, i, v) {
		const char *p = json_string_value(v);
		if (!p || (r = remove_beneath(rootfd, p)) < 0)
			return err_set(err, p ? r : -EINVAL, "%s: remove \"%.200s\": %s",
				       CKPT_DELETED_FILES, p ? p : "(not a string)",
				       strerror(p ? -r : EINVAL));
	}
	return 0;
}
