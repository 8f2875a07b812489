/* imaged's manager: the image records, the puller (registries, stored),
 * the pinned references, and the start-up sync with stored.
 *
 * Config, section "imaged" (all optional):
 *   "default_registry": "docker.io"       for short names ("busybox")
 *   "registries": {"<domain>": {"mirrors": ["host:port", ...], "insecure": false}}
 *   "credentials_file": ""                 docker config.json ("auths")
 *   "max_concurrent_downloads": 3          blobs at once, over all pulls (one
 *                                          registry: all but one of them)
 *   "pull_progress_timeout_seconds": 300   a request that takes longer than this
 *   "pull_progress_min_bytes": 1048576     to receive the next this many bytes
 *                                          fails the pull (pull.h, registry.h)
 *   "pinned_images": []                    references reported pinned (never collected)
 */
#pragma once

#include <stdbool.h>

#include "common/config.h"
#include "common/ipc.h"
#include "imaged/images.h"
#include "imaged/pull.h"

struct imaged {
	struct cric_client *stored;
	struct image_store *images;
	struct puller *puller;
	char **pinned; /* normalised references the kubelet must never collect */
};

/* Load the config, open the records, dial stored (after the config is
 * known good), start the puller and sync stored's references. */
int imaged_new(const struct cric_config *cfg, struct imaged **ret, struct cric_err *err);
/* Accepts NULL. */
void imaged_free(struct imaged *d);
/* True when a tag or digest of img is in pinned_images. */
bool imaged_is_pinned(const struct imaged *d, const struct image *img);
