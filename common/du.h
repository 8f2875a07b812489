/* Disk usage of a directory tree, counted as `du -s` (allocated blocks) and
 * `du --inodes` do: every inode once (hard links included), directories
 * included, nothing on another file system (a mount point inside is not
 * entered, nor counted).
 *
 * The walk goes by directory fds (openat, fdopendir, fstatat), so trees
 * deeper than PATH_MAX are measured; it holds one fd per level below the
 * top (at most DU_MAX_DEPTH levels, -ELOOP past that). Hard-linked inodes
 * are remembered in a hash set keyed by (dev, ino): time linear in the
 * number of entries, memory linear in the number of hard-linked inodes.
 *
 * The tree may change while it is walked (no lock is taken): an entry that
 * vanishes between its listing and its stat is skipped, as du does. Blocks
 * on I/O; reentrant. */
#pragma once

#include <stdint.h>

#include "common/error.h"

#define DU_MAX_DEPTH 65536

struct du_usage {
	uint64_t bytes;  /* st_blocks * 512, each inode once */
	uint64_t inodes; /* distinct inodes, the top directory included */
};

/* Measure the tree at dir_fd (not closed; its offset neither used nor moved). skip: the
 * name of one top-level entry to leave out (NULL: none). ret written only
 * on success. */
int du_measure(int dir_fd, const char *skip, struct du_usage *ret, struct cric_err *err);
