#include "imaged/imaged.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/service.h"

/* "pinned_images": references (tags or digests) of images the kubelet's
 * image garbage collection must keep (a pause image, for instance). */
static int load_pinned(struct imaged *d, const struct cric_config *cfg, const char *default_domain,
		       struct cric_err *err)
{
	const json_t *v = json_object_get(json_object_get(cfg->doc, "imaged"), "pinned_images");
	if (v && (!json_is_array(v) || json_array_size(v) > 1024))
		return config_bad_key(cfg, "imaged", "pinned_images", "a list of image references",
				      err);
	if (!(d->pinned = calloc(json_array_size(v) + 1, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0, k = 0; i < json_array_size(v); i++) {
		struct image_ref ref;
		const char *s = json_string_value(json_array_get(v, i));
		if (!s || image_ref_parse(s, default_domain, &ref, err) < 0)
			return err_prefix(err, -EINVAL, "config \"%s\": imaged.pinned_images[%zu]",
					  cfg->config_file, i);
		if (!(d->pinned[k++] = strdup(ref.string)))
			return -ENOMEM;
	}
	return 0;
}

bool imaged_is_pinned(const struct imaged *d, const struct image *img)
{
	for (size_t i = 0; d->pinned && d->pinned[i]; i++) {
		for (size_t k = 0; img->repo_tags && img->repo_tags[k]; k++)
			if (strcmp(img->repo_tags[k], d->pinned[i]) == 0)
				return true;
		for (size_t k = 0; img->repo_digests && img->repo_digests[k]; k++)
			if (strcmp(img->repo_digests[k], d->pinned[i]) == 0)
				return true;
	}
	return false;
}

/* What a killed imaged left in stored: references of images it has no
 * record of, and leases of pulls that never finished. */
static void sync_stored(struct imaged *d)
{
	_cleanup_strv_free_ char **ids = image_store_ids(d->images);
	if (!ids)
		return;
	Cric__Stored__SyncImagesRequest req = CRIC__STORED__SYNC_IMAGES_REQUEST__INIT;
	while (ids[req.n_image_ids])
		req.n_image_ids++;
	req.image_ids = ids;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(d->stored, CRIC_STORED(sync_images), NULL,
				  deadline_in_ms(STORED_SYNC_CAP_MS), &req.base, &out, &msg);
	if (code != CODE_OK) {
		log_warning("sync image references with stored: %s",
			    msg ? msg : grpc_code_name(code));
		return;
	}
	Cric__Stored__SyncImagesResponse *r = (void *)out;
	if (r->images_dropped || r->layers_removed)
		log_notice("stored dropped %u unknown images and %u layers", r->images_dropped,
			   r->layers_removed);
	protobuf_c_message_free_unpacked(out, NULL);
}

void imaged_free(struct imaged *d)
{
	if (!d)
		return;
	puller_free(d->puller);
	image_store_free(d->images);
	strv_free(d->pinned);
	cric_client_close(d->stored);
	free(d);
}

int imaged_new(const struct cric_config *cfg, struct imaged **ret, struct cric_err *err)
{
	struct imaged *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	struct pull_config pc;
	_cleanup_free_ char *state = path_join(cfg->state_dir, "imaged");
	_cleanup_free_ char *images = state ? path_join(state, "images") : NULL;
	_cleanup_free_ char *staging = config_staging_dir(cfg);
	_cleanup_free_ char *url = config_ipc_url(cfg, "stored");
	int r = state && images && staging && url ? 0 : -ENOMEM;
	if (r == 0 && (r = pull_config_load(cfg, &pc, err)) < 0)
		pull_config_done(&pc);
	if (r == 0)
		r = image_store_open(images, &d->images, err);
	if (r == 0 && (r = load_pinned(d, cfg, pc.default_registry, err)) < 0)
		pull_config_done(&pc);
	/* Only a daemon that will run dials its peers: one that exits on a
	 * bad config must not leave stored with a handshake cut short. */
	if (r == 0 && (r = cric_client_open("stored", url, &d->stored, err)) < 0)
		pull_config_done(&pc);
	if (r == 0 && (r = puller_new(&pc, staging, d->stored, d->images, &d->puller, err)) < 0)
		pull_config_done(&pc);
	if (r < 0) {
		imaged_free(d);
		return r;
	}
	sync_stored(d);
	*ret = d;
	return 0;
}
