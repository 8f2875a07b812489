/* Content-addressed blob store: <root>/sha256/<64 hex>, one file per blob.
 *
 * imaged downloads and verifies blobs in its own staging dir, then hands one
 * over (an fd, or a path under a dir fd stored opened) together with the
 * digest it claims. stored trusts neither: the content is re-hashed while it
 * is copied into the store, and only a copy whose SHA-256 matches the digest
 * is published. Publishing is atomic: a temp file ".tmp-*" in the store dir,
 * fsync, rename over the final name, fsync of the dir. A blob is never
 * modified after that; removing it unlinks it (readers holding it open keep
 * reading the old inode).
 *
 * Threads: every function below may run concurrently with any other on the
 * same store (the store holds only an immutable dir fd and options). Two
 * imports of the same blob both succeed and leave one file. Imports and
 * reads block on disk I/O; nothing calls back.
 *
 * Errors: a negative errno; err (optional) is filled only on failure, with the
 * digest quoted. Outputs are written only on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/macro.h"

/* "sha256:" + 64 lowercase hex characters, and a buffer that holds one. */
#define BLOB_DIGEST_PREFIX "sha256:"
#define BLOB_DIGEST_LEN    71
#define BLOB_DIGEST_BUF    (BLOB_DIGEST_LEN + 1)
/* Default upper bound for one blob (0 in blob_store_opts.max_blob_size). */
#define BLOB_DEFAULT_MAX_SIZE (64ULL << 30)

struct blob_store;

struct blob_store_opts {
	uint64_t max_blob_size; /* imports larger than this fail -EFBIG; 0: default */
};

/* Open (creating it 0700 if missing) the store's "sha256" dir under root_fd,
 * which the caller keeps owning (the store holds its own fd). Temp files that
 * a killed process left behind are removed here, so open a given store dir
 * once per process, before any import. opts may be NULL. */
int blob_store_open(int root_fd, const struct blob_store_opts *opts, struct blob_store **ret,
		    struct cric_err *err);
/* Close the store. Accepts NULL, returns NULL. */
struct blob_store *blob_store_free(struct blob_store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct blob_store *, blob_store_free)
#define _cleanup_blob_store_ _cleanup_(blob_store_freep)

/* 0 if digest is exactly "sha256:" followed by 64 lowercase hex characters
 * (nothing else: no other algorithm, no upper case, no trailing bytes);
 * -EINVAL otherwise. */
int blob_digest_check(const char *digest, struct cric_err *err);

/* Import the content of fd, which must be a regular file. The content is read
 * with pread from offset 0 (the fd's file offset is neither used nor moved),
 * hashed while copied, and published only if it matches digest. A blob
 * already present is not read again: 0 and its size (idempotent).
 *  -EINVAL   bad digest, or fd is not a regular file
 *  -EBADMSG  content does not match digest (nothing is left in the store)
 *  -EFBIG    larger than max_blob_size
 * ret_size (optional): the blob's size. */
int blob_import_fd(struct blob_store *s, const char *digest, int fd, uint64_t *ret_size,
		   struct cric_err *err);

/* Same, for a file named by path under dir_fd (e.g. imaged's staging dir,
 * opened by stored). path is resolved beneath dir_fd only: no absolute path,
 * no "..", no symlink, no magic link (-EXDEV, -ELOOP, -EINVAL, -ENOENT); a
 * FIFO or device is refused without being opened for I/O. */
int blob_import_at(struct blob_store *s, const char *digest, int dir_fd, const char *path,
		   uint64_t *ret_size, struct cric_err *err);

/* Open a blob read-only (O_CLOEXEC). -ENOENT if absent. */
int blob_open(struct blob_store *s, const char *digest, int *ret_fd, struct cric_err *err);

struct blob_info {
	uint64_t size;       /* content bytes */
	uint64_t disk_bytes; /* allocated bytes (st_blocks * 512) */
};
/* Size of a blob. -ENOENT if absent. */
int blob_stat(struct blob_store *s, const char *digest, struct blob_info *ret,
	      struct cric_err *err);

/* Remove a blob. -ENOENT if absent (callers that want "remove is idempotent"
 * treat that as success). */
int blob_remove(struct blob_store *s, const char *digest, struct cric_err *err);

/* All blobs present, as a sorted NULL-terminated array of digests (free with
 * strv_free()). Temp files and foreign names are not listed. */
int blob_list(struct blob_store *s, char ***ret, struct cric_err *err);

struct blob_usage {
	uint64_t blobs;      /* number of blobs */
	uint64_t bytes;      /* sum of their sizes */
	uint64_t disk_bytes; /* sum of their allocated bytes */
};
/* Totals over the blobs present (temp files are not counted). */
int blob_usage(struct blob_store *s, struct blob_usage *ret, struct cric_err *err);

/* Streaming SHA-256 producing a digest in the store's format (also used by
 * layer unpacking for diff_ids). */
struct blob_hash;
/* NULL on OOM. */
struct blob_hash *blob_hash_new(void);
/* Feed bytes. -EIO if the crypto library fails. */
int blob_hash_update(struct blob_hash *h, const void *data, size_t len);
/* Write "sha256:<hex>" into out; the hash cannot be fed after this. */
int blob_hash_final(struct blob_hash *h, char out[BLOB_DIGEST_BUF]);
/* Accepts NULL, returns NULL. */
struct blob_hash *blob_hash_free(struct blob_hash *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct blob_hash *, blob_hash_free)
#define _cleanup_blob_hash_ _cleanup_(blob_hash_freep)
