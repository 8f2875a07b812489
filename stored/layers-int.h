/* What the files of stored's layer store share (layers.c: refs, imports,
 * collection, usage; rootfs.c: containers' root filesystems). Internal to
 * stored. Everything below is read and written with ls->lock held unless a
 * function says otherwise. */
#pragma once

#include <jansson.h>
#include <pthread.h>

#include "common/error.h"
#include "stored/blobs.h"
#include "stored/layers.h"

#define REFS_MAX_BYTES (64 * 1024 * 1024)
#define MIN_U64(a, b)  ((a) < (b) ? (a) : (b))
#define HEX(d)         ((d) + 7) /* "sha256:<hex>" -> "<hex>" */

/* An import in progress: from import_begin() to import_end_locked() it
 * holds its chain (collection skips it, so a layer found present or just
 * published cannot go before the import's lease holds it) and its blob (no
 * collection removes a blob an import is reading). */
struct import {
	char chain[BLOB_DIGEST_BUF];
	char blob[BLOB_DIGEST_BUF];
};

struct layer_store {
	pthread_mutex_t lock; /* refs, imports, and publishing/removing layers */
	pthread_cond_t changed;
	json_t *refs;
	char *dir, *layers_dir, *containers_dir, *rootfs_dir, *refs_path;
	char *staging_dir; /* imaged's, from the configuration; NULL: none */
	int layers_fd, containers_fd;
	struct blob_store *blobs;
	struct import *importing;
	size_t n_importing, cap_importing;
	struct layer_limits limits;
	/* lease -> [tar bytes, entries] its imports unpacked (in memory: a
	 * restart of stored starts the count of a pull in progress again). */
	json_t *lease_usage;
	/* This kernel id-maps mounts of stored's file system (probed at open):
	 * what a user-namespaced container's rootfs needs. */
	bool can_idmap;
};

/* layers.c */
int refs_save(struct layer_store *ls, struct cric_err *err);
/* The refs document's object name ("images", "rootfs", ...), created. */
json_t *refs_section(struct layer_store *ls, const char *name);
/* Remove every published layer nothing holds, and the blobs only they
 * used; how many layers went. */
unsigned collect(struct layer_store *ls);
/* A layer's record, or NULL. */
json_t *meta_load(struct layer_store *ls, const char *chain);

/* rootfs.c: mount what the refs say is mounted and remove what they do not
 * know (at open, before any call). */
void rootfs_reconcile(struct layer_store *ls);
