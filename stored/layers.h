/* The layer store: unpacked image layers by chain id, the references that
 * keep them (images, pull leases, container root filesystems), collection
 * of the unreferenced ones, and container root filesystems as overlay
 * mounts.
 *
 * On disk, under <state_dir>/stored:
 *   blobs/sha256/<hex>        the compressed layer blobs (blobs.h)
 *   layers/<hex>/             a layer's tree (an overlay lower dir)
 *   layers/<hex>.json         its record, written after the tree is complete
 *   refs.json                 {"images": {id: [chain...]}, "leases": {...},
 *                              "rootfs": {container: {"chain": c, "layers": [...]}}}
 *   containers/<id>/{upper,work}
 * and <run_dir>/stored/rootfs/<container id> the mount points.
 *
 * A layer is published by renaming its finished tree into place and then
 * writing its record; at open, trees without a record and temp dirs are
 * removed, mounts are reconciled with refs.json (missing ones mounted
 * again, unknown ones unmounted), and nothing half-made survives.
 *
 * Thread-safety: every function may be called from any worker; imports of
 * different layers run in parallel, two imports of one layer wait for each
 * other. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/idmap.h"
#include "stored/blobs.h"

struct layer_store;

/* What one import may cost (config keys "stored.<name>", README). The
 * image figures count what one pull (its lease) decompresses: layers it
 * finds present cost nothing. An import past a limit fails with -EFBIG
 * (bytes) or -E2BIG (entries); with less than min_free_bytes available on
 * the store's file system (checked before and during each unpack) with
 * -ENOSPC. Every field > 0 but min_free_bytes (0: no reserve). */
struct layer_limits {
	uint64_t max_layer_bytes;   /* uncompressed tar bytes of one layer */
	uint64_t max_layer_entries; /* tar entries of one layer */
	uint64_t max_image_bytes;   /* uncompressed tar bytes of one pull */
	uint64_t max_image_entries; /* tar entries of one pull */
	uint64_t min_free_bytes;    /* free space imports leave on the store's fs */
};

#define LAYER_DEFAULT_MAX_LAYER_BYTES   (32ULL << 30)
#define LAYER_DEFAULT_MAX_LAYER_ENTRIES (1ULL << 20)
#define LAYER_DEFAULT_MAX_IMAGE_BYTES   (64ULL << 30)
#define LAYER_DEFAULT_MAX_IMAGE_ENTRIES (4ULL << 20)
#define LAYER_DEFAULT_MIN_FREE_BYTES    (1ULL << 30)

void layer_limits_default(struct layer_limits *l);
/* Applies to imports that start afterwards. */
void layer_store_set_limits(struct layer_store *ls, const struct layer_limits *l);

/* staging_dir: imaged's (config_staging_dir()), where layer_import() takes
 * its files from; it need not exist yet; NULL: imports of absent layers
 * fail. */
int layer_store_open(const char *state_dir, const char *run_dir, const char *staging_dir,
		     struct layer_store **ret, struct cric_err *err);
struct layer_store *layer_store_free(struct layer_store *ls);

/* Import the layer blob_digest from file, a plain name of a regular file in
 * the staging dir (see stored.proto's ImportLayer): -EINVAL for any other
 * name, a symlink, FIFO or device (none opened for reading); -ENOPKG while
 * the staging dir does not exist. A layer already present takes no file. */
int layer_import(struct layer_store *ls, const char *file, const char *blob_digest,
		 const char *diff_id, const char *parent, const char *lease,
		 char chain_id[BLOB_DIGEST_BUF], uint64_t *size, bool *already,
		 struct cric_err *err);
int layer_status(struct layer_store *ls, char *const *chains, size_t n, const char *lease,
		 bool *present, struct cric_err *err);
int layer_commit_image(struct layer_store *ls, const char *image_id, char *const *chains, size_t n,
		       const char *lease, struct cric_err *err);
int layer_release_image(struct layer_store *ls, const char *image_id, unsigned *removed,
			struct cric_err *err);
int layer_sync_images(struct layer_store *ls, char *const *ids, size_t n, unsigned *dropped,
		      unsigned *removed, struct cric_err *err);
int layer_drop_lease(struct layer_store *ls, const char *lease, struct cric_err *err);

/* *path malloc'd. uid->length 0: no mapping; else the layers are mounted
 * id-mapped through uid/gid (whose length is uid's) beneath the overlay
 * and the upper dir belongs to their host ids (see CreateRootfsRequest). */
int layer_create_rootfs(struct layer_store *ls, const char *container_id, const char *chain_id,
			const struct idmap_range *uid, const struct idmap_range *gid, char **path,
			struct cric_err *err);
int layer_remove_rootfs(struct layer_store *ls, const char *container_id, struct cric_err *err);
/* The container's writable layer (its overlay upperdir); malloc'd, NULL on
 * OOM. container_id must be valid. */
char *layer_upper_dir(const struct layer_store *ls, const char *container_id);

struct fs_usage {
	char mountpoint[4096];
	uint64_t used_bytes; /* allocated blocks, hard links once (du) */
	uint64_t inodes;     /* distinct inodes (du --inodes) */
};
/* The image store (blobs, layers, records) and the containers' writable
 * layers. */
int layer_fs_usage(struct layer_store *ls, struct fs_usage *images, struct fs_usage *containers,
		   struct cric_err *err);
