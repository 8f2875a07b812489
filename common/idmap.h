/* Id-mapped mounts, made by cric itself (runc 1.1 cannot make them).
 *
 * A user namespace whose only use is to carry an id mapping for
 * mount_setattr(MOUNT_ATTR_IDMAP): idmap_userns_open() forks a child that
 * does nothing but wait, in a new user namespace whose uid_map and gid_map
 * the caller writes; the namespace is opened and the child killed and
 * reaped before it returns. The child runs no library code (raw clone, then
 * pause), so it is safe from a multi-threaded daemon. Writing maps of more
 * than one id takes CAP_SETUID and CAP_SETGID.
 *
 * idmap_bind() then clones the mount tree at a path and moves it, mapped,
 * onto another path: a file on disk owned by container id c shows as
 * host_id + c through it, and what a process of host id host_id + c writes
 * through it lands on disk as c. Not every file system can be mapped
 * (overlay, proc, mqueue cannot): then -EINVAL. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* One range of a mapping: container ids [0, length) are host ids
 * [host_id, host_id + length). */
struct idmap_range {
	uint32_t host_id;
	uint32_t length;
};

/* A user namespace with uid 0..len-1 -> uid_host.. and gid likewise: an
 * O_CLOEXEC fd, or -errno with err. */
int idmap_userns_open(const struct idmap_range *uid, const struct idmap_range *gid,
		      struct cric_err *err);

/* The child behind idmap_userns_open(): a process that only waits, in a
 * new user namespace of these maps and in new namespaces of flags
 * (CLONE_NEWNET, CLONE_NEWIPC, ...) owned by that user namespace. Its pid,
 * for /proc/<pid>/ns/..., or -errno with err. The caller ends it with
 * idmap_child_reap(); it also dies with the thread that made it. */
pid_t idmap_userns_child(const struct idmap_range *uid, const struct idmap_range *gid, int flags,
			 struct cric_err *err);

/* Kill and reap a child of idmap_userns_child(). */
void idmap_child_reap(pid_t pid);

/* Mount the tree at src (a directory or a file, with the mounts beneath
 * it) id-mapped through userns_fd on dst (which must exist and be of the
 * same kind). 0 or -errno with err. */
int idmap_bind(int userns_fd, const char *src, const char *dst, struct cric_err *err);

/* Whether this kernel maps mounts of the file system of dir: makes a
 * scratch directory in dir, maps it, checks a file's owner through the
 * map, and removes it all. 0 when it works, else -errno with err saying
 * which step failed. */
int idmap_probe(const char *dir, struct cric_err *err);

/* Detach the mount on path (and everything stacked on it); a path that is
 * no mount point is fine. 0 or -errno. */
int idmap_unmount(const char *path);

/* True when path is the root of a mount. */
bool idmap_is_mount(const char *path);
