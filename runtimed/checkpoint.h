/* Checkpoint archives: what CheckpointContainer writes, in the layout
 * checkpointctl reads and the peers (CRI-O, Podman) write:
 *
 *   config.dump      {"id", "name", "rootfsImageName", "rootfsImageRef",
 *                    "runtime", "createdTime", "checkpointedTime"}
 *   spec.dump        the container's OCI config.json
 *   status.dump      what ContainerStatus said of it when it was dumped
 *   checkpoint/      CRIU's images (runc checkpoint --image-path)
 *   rootfs-diff.tar  the files of its writable layer (the overlay upper dir)
 *   deleted.files    JSON list of the paths it deleted from its image
 *   dump.log         CRIU's log (runc checkpoint --work-path)
 *
 * An uncompressed tar; the archive holds all of the container's memory, so
 * it is created 0600 (root only) and appears at its location whole or not
 * at all (a temp file beside it, renamed).
 *
 * Everything here is plain file work on paths runtimed chose or checked;
 * it blocks the calling thread for the copy. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define CKPT_CONFIG_DUMP   "config.dump"
#define CKPT_SPEC_DUMP     "spec.dump"
#define CKPT_STATUS_DUMP   "status.dump"
#define CKPT_IMAGES_DIR    "checkpoint"
#define CKPT_ROOTFS_DIFF   "rootfs-diff.tar"
#define CKPT_DELETED_FILES "deleted.files"
#define CKPT_DUMP_LOG      "dump.log"

/* CheckpointContainerRequest.location: absolute, clean (no "." or ".."
 * component, no "//"), not ending in "/", its directory existing, and
 * neither it nor its directory (symlinks resolved) inside any of own (the
 * runtime's own directories, NULL-terminated). -EINVAL naming why. */
int ckpt_location_check(const char *location, const char *const *own, struct cric_err *err);

/* The writable layer upper (an overlay upper dir) as rootfs-diff.tar
 * (regular files, directories, symlinks, hard links and device nodes,
 * with owners, modes and xattrs other than overlay's own) and
 * deleted.files (its whiteouts: a JSON list of absolute paths), both
 * written into dir. */
int ckpt_rootfs_diff(const char *upper, const char *dir, struct cric_err *err);

/* Everything under dir (its members at the archive's root) as a tar at
 * dest, created 0600 through a temp file in dest's directory. -EEXIST
 * when dest is a directory. */
int ckpt_archive_write(const char *dir, const char *dest, struct cric_err *err);

/* Whether path names a regular file that is a tar in the layout above
 * (config.dump, spec.dump and checkpoint/ present): what CreateContainer
 * checks of an image reference that is a local path. Reads at most the
 * archive's headers. */
bool ckpt_archive_is_checkpoint(const char *path);

/* Restore (CreateContainer of a checkpoint archive, then StartContainer). */

/* The archive at path into dir (existing, empty): regular files and
 * directories only, clean relative names (anything else: -EINVAL naming
 * it), at most CKPT_EXTRACT_MAX bytes in all (-EFBIG). Modes kept, owned by
 * us. Then config.dump must be there and name its image: *image, malloc'd
 * (rootfsImageName, else rootfsImageRef). */
#define CKPT_EXTRACT_MAX (64ULL << 30)
int ckpt_archive_extract(const char *path, const char *dir, char **image, struct cric_err *err);

/* dir's rootfs-diff.tar written over rootfs (a container's mounted root
 * filesystem: its writes land in the writable layer), then each path of
 * dir's deleted.files removed beneath it (links resolved inside rootfs
 * only). Names are checked as in ckpt_archive_extract(); links, devices
 * and hard links are kept; nothing is extracted through a symlink. A
 * missing rootfs-diff.tar or deleted.files is nothing to apply. */
int ckpt_rootfs_apply(const char *dir, const char *rootfs, struct cric_err *err);
