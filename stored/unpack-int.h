/* What unpack.c and unpack-meta.c share: the state of one import and the
 * way an entry fails. Internal to stored's unpacker. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "common/archive-dl.h"
#include "common/error.h"
#include "common/macro.h"
#include "stored/blobs.h"
#include "stored/unpack.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

#define RESOLVE_STRICT                                                                             \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

#define WH_PREFIX      ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE      ".wh..wh..opq"
#define OPAQUE_XATTR   "trusted.overlay.opaque"
#define READ_BLOCK     (128 * 1024)
#define QUOTE_MAX      200 /* bytes of a name shown in a message */
#define QUOTE_BUF      (QUOTE_MAX * 4 + 4)
#define MAX_DIR_MEMORY (128u << 20) /* pending directory metadata */
#define MAX_XATTRS     128          /* per entry (each may be reported twice) */

/* ---- state of one import ---- */

struct deferred_dir {
	char *path; /* normalised, "" for the root */
	mode_t mode;
	struct timespec times[2];
};

struct unpack_ctx {
	struct unpack_opts opts;
	struct cric_err *err;
	int root_fd;

	struct archive *decomp; /* filters + "raw" format: the uncompressed stream */
	struct archive *tar;    /* tar reader fed from decomp through read_cb() */
	bool decomp_eof;
	struct blob_hash *hash;
	int cb_r; /* error raised inside read_cb(), err already filled */

	uint64_t entries, tar_bytes, declared_bytes, file_bytes, xattrs_skipped;
	bool in_entry;         /* between an entry's header and the next header */
	char qname[QUOTE_BUF]; /* the current entry's name, quoted */

	/* The last parent dir opened: entries usually come grouped by dir. Any
	 * removal marks it stale (the fd is kept until the next lookup, as the
	 * current entry may still be using it). */
	int parent_fd;
	bool parent_valid;
	char parent_path[PATH_MAX];

	struct deferred_dir *dirs;
	size_t n_dirs, cap_dirs;
	size_t dirs_bytes; /* memory they hold, bounded by MAX_DIR_MEMORY */
};

/* open(2) beneath dirfd that never follows a symlink or a magic link and
 * never crosses a mount. -errno or the descriptor. */
static inline int openat2_strict(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_STRICT,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* unpack.c */
/* Fail the current entry: 'entry #N "name": <what>' (just <what> between
 * entries, while a header is read). */
int entry_fail(struct unpack_ctx *c, int r, const char *fmt, ...) _printf_(3, 4);
/* A name for a message: at most QUOTE_MAX bytes, control characters
 * escaped. */
const char *quote(const char *s, char out[QUOTE_BUF]);

/* unpack-meta.c: an entry's owner, mode, times and xattrs applied to what
 * was made for it (by descriptor, or by name under dfd for symlinks and
 * special files). */
int apply_meta_fd(struct unpack_ctx *c, int fd, struct archive_entry *e);
int apply_meta_at(struct unpack_ctx *c, int dfd, const char *name, struct archive_entry *e,
		  bool is_symlink);
void entry_times(struct archive_entry *e, struct timespec ts[2]);
int entry_owner(struct unpack_ctx *c, struct archive_entry *e, uid_t *uid, gid_t *gid);
int apply_xattrs(struct unpack_ctx *c, int fd, struct archive_entry *e);
