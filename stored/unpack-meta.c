/* An entry's metadata: owner, mode (special bits included), times and the
 * xattrs a layer may carry; see unpack-int.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "stored/unpack-int.h"

/* The entry's numeric owner. Callers start from (uid_t)-1, chown's "leave
 * unchanged", which is never used: an error returns first. */
int entry_owner(struct unpack_ctx *c, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
	la_int64_t u = sym_archive_entry_uid(e), g = sym_archive_entry_gid(e);
	/* (uid_t)-1 would mean "leave unchanged" to chown: refused too. */
	if (u < 0 || u >= (la_int64_t)UINT32_MAX || g < 0 || g >= (la_int64_t)UINT32_MAX)
		return entry_fail(c, -EINVAL, "uid %lld / gid %lld out of range", (long long)u,
				  (long long)g);
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	if (sym_archive_entry_mtime_is_set(e)) {
		ts[1].tv_sec = sym_archive_entry_mtime(e);
		ts[1].tv_nsec = sym_archive_entry_mtime_nsec(e);
	} else {
		ts[1].tv_sec = 0;
		ts[1].tv_nsec = UTIME_OMIT;
	}
	if (sym_archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = sym_archive_entry_atime(e);
		ts[0].tv_nsec = sym_archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
	for (int i = 0; i < 2; i++)
		if (ts[i].tv_nsec != UTIME_OMIT && (ts[i].tv_nsec < 0 || ts[i].tv_nsec > 999999999))
			ts[i].tv_nsec = 0;
}

enum xattr_policy { XATTR_APPLY, XATTR_SKIP, XATTR_REJECT };

static enum xattr_policy xattr_policy(const char *name)
{
	/* What overlayfs reads from its layers is ours to set, not the image's. */
	if (strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "user.overlay.", 13) == 0)
		return XATTR_REJECT;
	if (strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0)
		return XATTR_APPLY;
	return XATTR_SKIP;
}

/* Apply the entry's xattrs to fd (a regular file or a directory), or with
 * fd < 0 only check them and count them as skipped (other file types). */
int apply_xattrs(struct unpack_ctx *c, int fd, struct archive_entry *e)
{
	int n = sym_archive_entry_xattr_reset(e);
	if (n <= 0)
		return 0;
	if (n > MAX_XATTRS)
		return entry_fail(c, -E2BIG, "more than %d xattrs", MAX_XATTRS);
	/* libarchive reports an xattr twice when the archive carries both its
	 * LIBARCHIVE.xattr and the SCHILY.xattr form: each name counts once. */
	const char *seen[MAX_XATTRS];
	int n_seen = 0;
	const char *name;
	const void *value;
	size_t size;
	while (sym_archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		char q[QUOTE_BUF];
		if (!name || !*name)
			return entry_fail(c, -EINVAL, "xattr with an empty name");
		bool dup = false;
		for (int i = 0; i < n_seen && !dup; i++)
			dup = strcmp(seen[i], name) == 0;
		if (!dup && n_seen < MAX_XATTRS)
			seen[n_seen++] = name;
		switch (xattr_policy(name)) {
		case XATTR_REJECT:
			return entry_fail(c, -EPERM, "xattr \"%s\" is reserved for overlayfs",
					  quote(name, q));
		case XATTR_SKIP:
			c->xattrs_skipped += !dup;
			continue;
		case XATTR_APPLY:
			break;
		}
		if (fd < 0) {
			c->xattrs_skipped += !dup;
			continue;
		}
		/* A repeated name is set again: the last value wins. */
		if (fsetxattr(fd, name, value, size, 0) < 0)
			return entry_fail(c, -errno, "set xattr \"%s\": %m", quote(name, q));
	}
	return 0;
}

/* Owner, mode, xattrs, times of a regular file, in the order that keeps
 * them: chown clears setuid/setgid and file capabilities, so it goes first. */
int apply_meta_fd(struct unpack_ctx *c, int fd, struct archive_entry *e)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int r = entry_owner(c, e, &uid, &gid);
	if (r < 0)
		return r;
	if (fchown(fd, uid, gid) < 0)
		return entry_fail(c, -errno, "chown: %m");
	if (fchmod(fd, sym_archive_entry_perm(e) & 07777) < 0)
		return entry_fail(c, -errno, "chmod: %m");
	r = apply_xattrs(c, fd, e);
	if (r < 0)
		return r;
	struct timespec ts[2];
	entry_times(e, ts);
	if (futimens(fd, ts) < 0)
		return entry_fail(c, -errno, "set times: %m");
	return 0;
}

/* The same for a name in dfd that is not opened (symlink, FIFO, device):
 * nothing here follows a symlink. */
int apply_meta_at(struct unpack_ctx *c, int dfd, const char *name, struct archive_entry *e,
		  bool is_symlink)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int r = entry_owner(c, e, &uid, &gid);
	if (r < 0)
		return r;
	if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_fail(c, -errno, "chown: %m");
	if (!is_symlink) {
		mode_t mode = sym_archive_entry_perm(e) & 07777;
		r = (int)syscall(SYS_fchmodat2, dfd, name, mode, AT_SYMLINK_NOFOLLOW);
		if (r < 0 && errno == ENOSYS) /* before Linux 6.6: glibc's O_PATH emulation */
			r = fchmodat(dfd, name, mode, AT_SYMLINK_NOFOLLOW);
		if (r < 0)
			return entry_fail(c, -errno, "chmod: %m");
	}
	r = apply_xattrs(c, -1, e);
	if (r < 0)
		return r;
	struct timespec ts[2];
	entry_times(e, ts);
	if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_fail(c, -errno, "set times: %m");
	return 0;
}
