/* Layer import: unpack one OCI image layer (a tar stream, uncompressed, gzip
 * or zstd, detected from its content) into a layer directory, in one pass,
 * returning the layer's diff_id.
 *
 * Layers are hostile input. The contract, whatever the archive holds:
 *  - nothing outside the layer directory is created, modified, chmod'ed,
 *    chown'ed, linked to or removed. Every path is resolved beneath the layer
 *    dir fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 *    RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV); the last component is checked
 *    (no '/', not "." or "..", at most NAME_MAX) and handled with *at()
 *    calls on that parent fd, never following a symlink (no owner, mode,
 *    time or xattr is ever applied through one).
 *  - "." components (a leading "./" included) are dropped; an absolute path
 *    (a leading "/": image builders never write one, a layer that does is
 *    aiming outside itself) and any ".." component fail the import (-EINVAL,
 *    as the test test_hostile_absolute checks); so do a parent path through
 *    a symlink (one from an earlier entry, or one already in the dir),
 *    a parent that is not a directory, a hardlink whose target is outside,
 *    missing, through a symlink or a directory, names over NAME_MAX, paths of
 *    PATH_MAX or more, char/block devices unless allow_devices, sockets, more
 *    than max_entries entries, more than max_bytes of uncompressed tar or of
 *    declared file sizes, uid/gid that do not fit a uid_t, more than 128
 *    xattr records on one entry, and xattrs in the overlay's own namespaces
 *    (trusted.overlay.*, user.overlay.*).
 *  - a failed import returns an error naming the bad entry (its number and
 *    its name, quoted, with control and non-ASCII bytes as \xNN) and leaves
 *    what it wrote so far: the caller removes the layer dir, e.g. with
 *    unpack_remove_tree().
 *
 * What is applied: regular files (sparse holes kept), directories (merged
 * when one already exists), symlinks, hardlinks, FIFOs, devices (when
 * allowed); numeric uid/gid (names are ignored), permissions including
 * setuid/setgid/sticky, mtime (atime = the entry's atime, else its mtime;
 * directories get theirs after all their contents are written), xattrs
 * "user.*" and "security.capability" on regular files and directories
 * (file capabilities are set after chown, which clears them). Other xattrs
 * (trusted.*, security.selinux, ACLs, ...) and xattrs on other file types are
 * skipped and counted. Existing paths: an entry replaces what is there
 * (a directory only merges into a directory); hardlink entries change no
 * metadata of their target.
 *
 * OCI whiteouts become overlayfs ones: ".wh.<name>" is a char device 0/0
 * named <name> (unless <name> already exists in this layer: a whiteout only
 * hides lower layers), ".wh..wh..opq" sets trusted.overlay.opaque="y" on its
 * directory, and a directory that replaces a whiteout of this layer is made
 * opaque. Other ".wh..wh." names and ".wh." parent components are refused.
 *
 * The diff_id is the SHA-256 of the uncompressed tar stream, every byte of it
 * (trailing padding after the end-of-archive blocks included), each hashed
 * exactly once as it streams from the decompressor to the tar reader.
 *
 * Memory stays bounded: no file or layer is buffered whole (libarchive holds
 * one header, at most 1 MiB); the modes and times of directories, applied at
 * the end, are kept per directory entry and capped at 128 MiB (-E2BIG past
 * that). Nothing is fsync'ed: call syncfs() on the layer dir before recording
 * the layer as complete.
 *
 * Needs openat2 (Linux 5.6); without it the import fails with -ENOSYS rather
 * than fall back to weaker checks. Applying owners, modes, devices,
 * whiteouts and file capabilities needs CAP_CHOWN, CAP_FOWNER, CAP_FSETID
 * (setgid on a file of a group not ours), CAP_MKNOD, CAP_SYS_ADMIN
 * (trusted.* xattrs) and CAP_SETFCAP: stored_caps (caps.h). Blocks on I/O;
 * calls nothing back;
 * reentrant (several layers may be unpacked in parallel threads).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "stored/blobs.h"

#define UNPACK_DEFAULT_MAX_ENTRIES (1ULL << 20)
#define UNPACK_DEFAULT_MAX_BYTES   (64ULL << 30)

/* Free space is checked every UNPACK_FREE_CHECK_BYTES of uncompressed tar. */
#define UNPACK_FREE_CHECK_BYTES (64ULL << 20)

struct unpack_opts {
	uint64_t max_entries; /* tar entries (whiteouts included); 0: default */
	uint64_t max_bytes;   /* uncompressed tar bytes, and sum of file sizes; 0: default */
	/* Fail with -ENOSPC when the layer dir's file system has fewer bytes
	 * free for unprivileged users (statvfs f_bavail) than this, checked
	 * at the start and every UNPACK_FREE_CHECK_BYTES; 0: no check. */
	uint64_t min_free_bytes;
	bool allow_devices; /* char/block device entries (whiteouts are always allowed) */
};

enum unpack_compression {
	UNPACK_NONE,
	UNPACK_GZIP,
	UNPACK_ZSTD,
};

struct unpack_result {
	char diff_id[BLOB_DIGEST_BUF];       /* "sha256:<hex>" of the uncompressed tar */
	enum unpack_compression compression; /* as detected */
	uint64_t entries;                    /* tar entries applied */
	uint64_t tar_bytes;                  /* uncompressed tar stream length */
	uint64_t file_bytes;                 /* regular file content (apparent sizes) */
	uint64_t xattrs_skipped;             /* xattrs not applied by policy */
};

/* Unpack the layer read from in_fd (read sequentially from its current
 * offset; any readable fd: a blob, a pipe) into the directory layer_fd (not
 * closed, not moved; expected empty - anything already in it is treated like
 * an earlier entry of this layer and never followed). opts may be NULL
 * (defaults). ret is written only on success. Errors include -EINVAL (bad
 * path, bad archive), -ELOOP (through a symlink), -EXDEV (across a mount),
 * -ENOTDIR, -ENOENT (hardlink target), -EPERM (device, hardlink to a dir,
 * overlay xattr), -ENAMETOOLONG, -E2BIG (entries), -EFBIG (bytes), -ENOSPC
 * (below min_free_bytes),
 * -EBADMSG (not a tar, corrupt compression), -ENOSYS (no openat2). */
int unpack_layer(int in_fd, int layer_fd, const struct unpack_opts *opts, struct unpack_result *ret,
		 struct cric_err *err);

/* rm -rf of the directory name under dir_fd, safe against what a layer or a
 * container may have put there: it never follows a symlink (name itself
 * included: a symlink is unlinked), never crosses into another mount (a mount
 * point inside fails the removal with -EXDEV, what is under it untouched),
 * holds O(1) fds at any depth (trees deeper than PATH_MAX too), and fails
 * with -ESTALE if the tree is moved while it walks it. -ENOENT if absent. */
int unpack_remove_tree(int dir_fd, const char *name, struct cric_err *err);
