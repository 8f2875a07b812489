/* PullImage: resolve, fetch and verify an image from a registry (or its
 * mirrors), hand its layers to stored, record it.
 *
 *  1. the reference is normalised (short names get the default registry);
 *  2. each endpoint is tried in order (the registry's mirrors, then the
 *     registry itself) until one serves the manifest; the rest of the pull
 *     uses that endpoint;
 *  3. an index is resolved to this host's platform; Docker schema 2 and OCI
 *     manifests are taken, schema 1 refused;
 *  4. the config blob is fetched and verified, its diff_ids give the layer
 *     chain ids; stored says which layers it already has;
 *  5. missing layers download in parallel (at most max_downloads at once
 *     over all pulls, one registry at most max_downloads - 1 of them when
 *     that is more than 0) into the staging dir, each verified while it
 *     streams; a blob another pull is already downloading from the same
 *     registry is waited for, not fetched twice; each downloaded blob goes
 *     to stored (ImportLayer, by its name in the staging dir), which checks
 *     it again and unpacks it; the layers are held by a lease meanwhile;
 *  6. stored commits the image's layers; the record is written.
 * A failure anywhere drops the lease (stored removes what only it held),
 * and removes the staging files: nothing half-pulled stays.
 *
 * Bounds: a pull is bounded by progress, not by a fixed time: every
 * request must receive progress_min_bytes within progress_timeout_sec, and
 * the next as many within as long again (registry.h); a wait for another
 * pull's download of the blob gives up by the same rule, a wait for a
 * download slot when for twice that time no slot came free and no download
 * progressed; all of them, and the downloads, end at the caller's deadline
 * (crictl sets one; the kubelet none, and the gateway's max_request_seconds
 * cap on such a call does not stop the pull). Those failures are
 * -ETIMEDOUT (DEADLINE_EXCEEDED) naming the registry and blob. A pull
 * whose caller cancelled (cric_call_cancelled(), ipc.h: the CRI client
 * cancelled or went away) stops within about a second, downloads and waits
 * alike, with -ECANCELED (CANCELLED), and frees its slots.
 *
 * Thread-safety: pulls run concurrently. */
#pragma once

#include <stdbool.h>

#include "common/config.h"
#include "common/error.h"
#include "common/ipc.h"
#include "imaged/auth.h"
#include "imaged/images.h"

#define PULL_MAX_MIRRORS 8

struct pull_registry {
	char domain[IMAGE_REF_NAME_MAX + 1];
	char *mirrors[PULL_MAX_MIRRORS + 1]; /* domains ("host:port"), tried in order */
	bool insecure;
};

struct pull_config {
	char default_registry[IMAGE_REF_NAME_MAX + 1];
	struct pull_registry *registries;
	size_t n_registries;
	char *credentials_file; /* docker config.json format, may be NULL */
	unsigned max_downloads;
	unsigned progress_timeout_sec; /* with progress_min_bytes: registry.h */
	uint64_t progress_min_bytes;
	unsigned max_request_seconds; /* the suite's, see pull_image() */
	char *fetch_helper;           /* the transport helper (fetch.h), NULL: beside us */
	unsigned fetch_idle_sec;      /* it exits after so long unused */
};

/* Parse the "imaged" section of the config. */
int pull_config_load(const struct cric_config *cfg, struct pull_config *ret, struct cric_err *err);
void pull_config_done(struct pull_config *pc);

struct puller;

/* staging_dir: imaged's own (emptied here). stored: the client to stored. */
int puller_new(const struct pull_config *pc, const char *staging_dir, struct cric_client *stored,
	       struct image_store *images, struct puller **ret, struct cric_err *err);
struct puller *puller_free(struct puller *p);

/* creds: from PullImageRequest.auth (NULL or all-empty: the credentials
 * file's, if any, for the registry); annotations: the request's image
 * annotations as a JSON object (kept with the image). id gets the image id. */
int pull_image(struct puller *p, const struct cric_call *call, const char *reference,
	       const struct registry_creds *creds, const char *annotations,
	       char id[IMAGE_DIGEST_LEN + 1], struct cric_err *err);

/* RemoveImage: image_store_remove() of spec (see images.h for found,
 * removed_image and id) and, when the whole record went, the release of the
 * image's layers in stored. Both happen under the lock a pull commits with
 * (stored's references, then the record), so a pull's commit of the same
 * image comes wholly before or wholly after: never a record whose layers
 * were released. A failed release is logged: the record is gone and stored
 * is told again at imaged's next start (SyncImages). Blocks on stored. */
int puller_remove_image(struct puller *p, const struct cric_call *call, const char *spec,
			bool *found, bool *removed_image, char id[IMAGE_DIGEST_LEN + 1],
			struct cric_err *err);
/* Wake the pulls' waits (for a slot, for a concurrent pull's download) so
 * that they look at their call's cancel flag (ipc.h) now. Never blocks
 * long; accepts NULL. */
void puller_wake(struct puller *p);
const char *puller_default_registry(struct puller *p);
