/* imaged's image records: what the CRI ImageService reports and looks up.
 *
 * An image is identified by its config digest ("sha256:<hex>", the CRI
 * image id) and carries the repo tags ("docker.io/library/busybox:latest")
 * and repo digests ("docker.io/library/busybox@sha256:<manifest>") that
 * resolve to it, its size (config + compressed layers), its layer chain ids
 * (held in stored), the user from its config, and the config itself. A tag
 * names one image: pulling it again for another image moves it.
 *
 * Records live in <state_dir>/imaged/images/<hex>.json (written atomically
 * on every change) and are loaded at start.
 *
 * Thread-safety: every function may be called from any thread. Lookups
 * return deep copies (image_free()).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "imaged/reference.h"

struct image {
	char id[IMAGE_DIGEST_LEN + 1];
	char **repo_tags;    /* NULL-terminated, may be NULL */
	char **repo_digests; /* NULL-terminated, may be NULL */
	uint64_t size;
	char **chain_ids; /* base first */
	char *config;     /* the config blob (JSON) */
	bool has_uid;
	int64_t uid;
	char *username; /* "" when none */
	bool pinned;
	int64_t pulled_at; /* unix ns */
	char *annotations; /* JSON object: PullImageRequest.image.annotations */
};

struct image *image_free(struct image *img);
struct image *image_dup(const struct image *img);

struct image_store;

int image_store_open(const char *dir, struct image_store **ret, struct cric_err *err);
struct image_store *image_store_free(struct image_store *st);

/* Record a pulled image: merged with an existing record of the same id;
 * its tags taken from any other image that had them. */
int image_store_add(struct image_store *st, const struct image *img, struct cric_err *err);

/* Resolve what a CRI caller names an image by: an id ("sha256:<hex>", the
 * bare hex, or a unique prefix of at least 12 hex digits), or a reference
 * (normalised with default_domain) matching a repo tag or repo digest.
 * Returns a copy, or NULL (not found, or spec unparseable: then *bad is set
 * and err says why). */
struct image *image_store_find(struct image_store *st, const char *spec, const char *default_domain,
			       bool *bad, struct cric_err *err);

/* All images, copies, NULL-terminated. */
struct image **image_store_list(struct image_store *st);
void image_list_free(struct image **l);

/* The ids of every image (NULL-terminated, strv_free()). */
char **image_store_ids(struct image_store *st);

/* RemoveImage semantics for spec: when spec is a tag of an image that has
 * other tags, only that tag goes (*removed_image false). Otherwise the whole record goes
 * (*removed_image true, *id set): the caller then releases its layers. Unknown: 0 with *found
 * false. */
int image_store_remove(struct image_store *st, const char *spec, const char *default_domain,
		       bool *found, bool *removed_image, char id[IMAGE_DIGEST_LEN + 1],
		       struct cric_err *err);
