/* Id-mapped mounts; see idmap.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idmap.h"
#include "macro.h"

static int write_map(pid_t pid, const char *which, const struct idmap_range *m,
		     struct cric_err *err)
{
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
	int n = snprintf(line, sizeof(line), "0 %u %u\n", m->host_id, m->length);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, line, (size_t)n) != n)
		return err_set(err, negative_errno(), "write %s \"0 %u %u\": %s", which, m->host_id,
			       m->length, strerror(errno));
	return 0;
}

pid_t idmap_userns_child(const struct idmap_range *uid, const struct idmap_range *gid, int flags,
			 struct cric_err *err)
{
	if (!uid->length || !gid->length || uid->host_id > UINT32_MAX - uid->length ||
	    gid->host_id > UINT32_MAX - gid->length)
		return err_set(err, -EINVAL, "id mapping out of range");
	/* A raw clone: no atfork handlers, nothing of libc's state touched in
	 * the child, which only waits to be killed (or dies with us). The
	 * user namespace is made first: the others of flags are its. */
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | flags | SIGCHLD),
				   NULL, NULL, NULL, NULL);
	if (pid < 0)
		return err_set(err, negative_errno(), "create a user namespace: %s",
			       strerror(errno));
	if (pid == 0) {
		syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (;;)
			syscall(SYS_pause);
	}
	int r = write_map(pid, "uid_map", uid, err);
	if (r == 0)
		r = write_map(pid, "gid_map", gid, err);
	if (r < 0) {
		idmap_child_reap(pid);
		return r;
	}
	return pid;
}

void idmap_child_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int idmap_userns_open(const struct idmap_range *uid, const struct idmap_range *gid,
		      struct cric_err *err)
{
	pid_t pid = idmap_userns_child(uid, gid, 0, err);
	if (pid < 0)
		return pid;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = fd < 0
		    ? err_set(err, negative_errno(), "open the user namespace: %s", strerror(errno))
		    : fd;
	idmap_child_reap(pid);
	return r;
}

int idmap_bind(int userns_fd, const char *src, const char *dst, struct cric_err *err)
{
	_cleanup_close_ int fd =
	    open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (fd < 0)
		return err_set(err, negative_errno(), "clone the mount of \"%s\": %s", src,
			       strerror(errno));
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP,
		.userns_fd = (uint64_t)userns_fd,
	};
	if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return err_set(err, negative_errno(), "map ids of the mount of \"%s\": %s", src,
			       strerror(errno));
	if (move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return err_set(err, negative_errno(), "mount \"%s\" id-mapped on \"%s\": %s", src,
			       dst, strerror(errno));
	return 0;
}

bool idmap_is_mount(const char *path)
{
	struct statx sx;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) < 0)
		return false;
	return (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

int idmap_unmount(const char *path)
{
	for (int i = 0; i < 16 && idmap_is_mount(path); i++)
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL)
			return negative_errno();
	return idmap_is_mount(path) ? -EBUSY : 0;
}

/* The probe's scratch tree: <dir>/.idmap-probe-<pid>/{src/f,dst}. */
static int probe_in(const char *base, struct cric_err *err)
{
	char src[PATH_MAX], dst[PATH_MAX], f[PATH_MAX + 8];
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(dst, sizeof(dst), "%s/dst", base);
	snprintf(f, sizeof(f), "%s/f", src);
	if (mkdir(src, 0700) < 0 || mkdir(dst, 0700) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", base, strerror(errno));
	_cleanup_close_ int ffd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ffd < 0 || fchown(ffd, 0, 0) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", f, strerror(errno));
	const struct idmap_range m = { .host_id = 1u << 30, .length = 65536 };
	_cleanup_close_ int ns = idmap_userns_open(&m, &m, err);
	if (ns < 0)
		return ns;
	int r = idmap_bind(ns, src, dst, err);
	if (r < 0)
		return r;
	char g[PATH_MAX + 8];
	snprintf(g, sizeof(g), "%s/f", dst);
	struct stat st;
	if (stat(g, &st) < 0)
		r = err_set(err, negative_errno(), "stat \"%s\": %s", g, strerror(errno));
	else if (st.st_uid != m.host_id || st.st_gid != m.host_id)
		r = err_set(err, -EOPNOTSUPP,
			    "a file owned by 0 shows as %u:%u through the map, not %u:%u",
			    (unsigned)st.st_uid, (unsigned)st.st_gid, m.host_id, m.host_id);
	int u = idmap_unmount(dst);
	if (u < 0 && r == 0)
		r = err_set(err, u, "unmount \"%s\": %s", dst, strerror(-u));
	return r;
}

/* Remove the scratch tree, whatever of it there is. */
static void probe_clean(const char *base)
{
	char p[PATH_MAX + 8];
	snprintf(p, sizeof(p), "%s/dst", base);
	idmap_unmount(p);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/src/f", base);
	unlink(p);
	snprintf(p, sizeof(p), "%s/src", base);
	rmdir(p);
	rmdir(base);
}

int idmap_probe(const char *dir, struct cric_err *err)
{
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%s/.idmap-probe-%d", dir, (int)getpid());
	probe_clean(base); /* a crashed probe's */
	if (mkdir(base, 0700) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", base, strerror(errno));
	int r = probe_in(base, err);
	probe_clean(base);
	if (r == 0 && access(base, F_OK) == 0)
		r = err_set(err, -EBUSY, "remove \"%s\": it stays", base);
	return r;
}
