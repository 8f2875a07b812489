/* cric-imaged: registry client and image metadata. It talks to registries and
 * never mounts or chowns anything, so it keeps no capabilities at all. Serves
 * the CRI image calls PullImage, ListImages, ImageStatus and RemoveImage;
 * stored holds the layers (proto/cric/stored.proto).
 *
 * Config, section "imaged" (all optional):
 *   "default_registry": "docker.io"       for short names ("busybox")
 *   "registries": {"<domain>": {"mirrors": ["host:port", ...], "insecure": false}}
 *   "credentials_file": ""                 docker config.json ("auths")
 *   "max_concurrent_downloads": 3          blobs at once, over all pulls
 *   "pull_progress_timeout_seconds": 60    a pull with no byte for this long fails
 *   "pinned_images": []                    references reported pinned (never collected)
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/daemon.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "imaged/images.h"
#include "imaged/pull.h"

struct imaged {
	struct cric_client *stored;
	struct image_store *images;
	struct puller *puller;
	char **pinned; /* normalised references the kubelet must never collect */
};

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

static bool is_pinned(const struct imaged *d, const struct image *img)
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

static int strv_pb(char *const *v, char ***out, size_t *n)
{
	size_t k = 0;
	while (v && v[k])
		k++;
	if (k == 0)
		return 0;
	if (!(*out = calloc(k, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < k; i++) {
		if (pb_set_str(&(*out)[i], v[i]) < 0)
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

static Runtime__V1__Image *image_pb(const struct imaged *d, const struct image *img)
{
	_cleanup_pb_ Runtime__V1__Image *p = pb_new(&runtime__v1__image__descriptor);
	if (!p || pb_set_str(&p->id, img->id) < 0 ||
	    strv_pb(img->repo_tags, &p->repo_tags, &p->n_repo_tags) < 0 ||
	    strv_pb(img->repo_digests, &p->repo_digests, &p->n_repo_digests) < 0 ||
	    pb_set_str(&p->username, img->username) < 0 ||
	    !(p->spec = pb_new(&runtime__v1__image_spec__descriptor)) ||
	    pb_set_str(&p->spec->image, img->id) < 0)
		return NULL;
	p->size = img->size;
	p->pinned = img->pinned || is_pinned(d, img);
	_cleanup_json_ json_t *ann =
	    json_loads(img->annotations ? img->annotations : "{}", 0, NULL);
	const char *k;
	json_t *v;
	json_object_foreach (ann, k, v)
		if (pb_map_add(&p->spec->base, "annotations", k, json_string_value(v)) < 0)
			return NULL;
	if (img->has_uid) {
		if (!(p->uid = pb_new(&runtime__v1__int64_value__descriptor)))
			return NULL;
		p->uid->value = img->uid;
	}
	return TAKE_PTR(p);
}

static const char *spec_image(const Runtime__V1__ImageSpec *s)
{
	return s && s->image ? s->image : "";
}

static int pull_image_m(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	struct imaged *d = ud;
	const Runtime__V1__PullImageRequest *req = (const void *)in;
	const char *ref = spec_image(req->image);
	if (!*ref)
		return err_set(err, -EINVAL, "image.image is required");
	struct registry_creds creds = { 0 };
	if (req->auth)
		creds = (struct registry_creds){ .username = req->auth->username,
						 .password = req->auth->password,
						 .auth = req->auth->auth,
						 .identity_token = req->auth->identity_token,
						 .registry_token = req->auth->registry_token };
	if (req->image->n_annotations > 256)
		return err_set(err, -EINVAL, "image.annotations: more than 256");
	_cleanup_json_ json_t *ann = json_object();
	for (size_t i = 0; ann && i < req->image->n_annotations; i++)
		json_object_set_new(ann, req->image->annotations[i]->key,
				    json_string(req->image->annotations[i]->value));
	_cleanup_free_ char *ann_s = ann ? json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!ann_s)
		return -ENOMEM;
	char id[IMAGE_DIGEST_LEN + 1];
	int r = pull_image(d->puller, call, ref, req->auth ? &creds : NULL, ann_s, id, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Runtime__V1__PullImageResponse *resp =
	    pb_new(&runtime__v1__pull_image_response__descriptor);
	if (!resp || pb_set_str(&resp->image_ref, id) < 0)
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int list_images(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		       ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	struct imaged *d = ud;
	const Runtime__V1__ListImagesRequest *req = (const void *)in;
	const char *f = req->filter ? spec_image(req->filter->image) : "";
	_cleanup_pb_ Runtime__V1__ListImagesResponse *resp =
	    pb_new(&runtime__v1__list_images_response__descriptor);
	if (!resp)
		return -ENOMEM;
	if (*f) {
		bool bad;
		struct image *img =
		    image_store_find(d->images, f, puller_default_registry(d->puller), &bad, err);
		if (bad)
			return -EINVAL;
		if (img) {
			resp->images = calloc(1, sizeof(void *));
			if (!resp->images || !(resp->images[0] = image_pb(d, img))) {
				image_free(img);
				return -ENOMEM;
			}
			resp->n_images = 1;
			image_free(img);
		}
	} else {
		struct image **l = image_store_list(d->images);
		if (!l)
			return -ENOMEM;
		size_t n = 0;
		while (l[n])
			n++;
		if (n && !(resp->images = calloc(n, sizeof(void *)))) {
			image_list_free(l);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			if (!(resp->images[i] = image_pb(d, l[i]))) {
				image_list_free(l);
				return -ENOMEM;
			}
			resp->n_images++;
		}
		image_list_free(l);
	}
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int image_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	struct imaged *d = ud;
	const Runtime__V1__ImageStatusRequest *req = (const void *)in;
	const char *spec = spec_image(req->image);
	if (!*spec)
		return err_set(err, -EINVAL, "image.image is required");
	bool bad;
	struct image *img =
	    image_store_find(d->images, spec, puller_default_registry(d->puller), &bad, err);
	if (bad)
		return -EINVAL;
	_cleanup_pb_ Runtime__V1__ImageStatusResponse *resp =
	    pb_new(&runtime__v1__image_status_response__descriptor);
	if (!resp) {
		image_free(img);
		return -ENOMEM;
	}
	/* CRI: an unknown image is an empty answer, not an error. */
	if (img) {
		resp->image = image_pb(d, img);
		int r = resp->image ? 0 : -ENOMEM;
		if (r == 0 && req->verbose) {
			json_t *cfg = json_loads(img->config, 0, NULL);
			json_t *chains = json_array();
			for (size_t i = 0; chains && img->chain_ids && img->chain_ids[i]; i++)
				json_array_append_new(chains, json_string(img->chain_ids[i]));
			_cleanup_json_ json_t *doc =
			    json_pack("{s:o?, s:o?}", "imageSpec", cfg, "chainIDs", chains);
			_cleanup_free_ char *s =
			    doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
			if (!s || pb_map_add(&resp->base, "info", "info", s) < 0)
				r = -ENOMEM;
		}
		image_free(img);
		if (r < 0)
			return r;
	}
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int remove_image(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	struct imaged *d = ud;
	const Runtime__V1__RemoveImageRequest *req = (const void *)in;
	const char *spec = spec_image(req->image);
	if (!*spec)
		return err_set(err, -EINVAL, "image.image is required");
	bool found, removed;
	char id[IMAGE_DIGEST_LEN + 1];
	int r = puller_remove_image(d->puller, call, spec, &found, &removed, id, err);
	if (r < 0)
		return r;
	if (removed) {
		log_info("image %s removed", id);
	} else if (found) {
		log_info("name \"%s\" removed from image %s", spec, id);
	}
	*out = pb_new(&runtime__v1__remove_image_response__descriptor);
	return *out ? 0 : -ENOMEM;
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

static void imaged_free(struct imaged *d)
{
	if (!d)
		return;
	puller_free(d->puller);
	image_store_free(d->images);
	strv_free(d->pinned);
	cric_client_close(d->stored);
	free(d);
}

static int init(const struct cric_config *cfg, void **userdata, struct cric_err *err)
{
	struct imaged *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	struct pull_config pc;
	_cleanup_free_ char *state = path_join(cfg->state_dir, "imaged");
	_cleanup_free_ char *images = state ? path_join(state, "images") : NULL;
	_cleanup_free_ char *staging = state ? path_join(state, "staging") : NULL;
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
	*userdata = d;
	return 0;
}

static void done(void *userdata)
{
	imaged_free(userdata);
}

/* imaged serves CRI calls only (no other daemon calls it yet). */
static const struct cric_handler image_lines[] = {
	{ CRI_IMAGE(pull_image), pull_image_m, .callers = CALLER_GATEWAY },
	{ CRI_IMAGE(list_images), list_images, .callers = CALLER_GATEWAY },
	{ CRI_IMAGE(image_status), image_status, .callers = CALLER_GATEWAY },
	{ CRI_IMAGE(remove_image), remove_image, .callers = CALLER_GATEWAY },
};

static const struct cric_service services[] = {
	{ &runtime__v1__image_service__descriptor, image_lines, ARRAY_SIZE(image_lines),
	  .partial = true },
};

int main(int argc, char **argv)
{
	const struct cric_daemon_desc desc = {
		.name = "imaged",
		.no_new_privs = true,
		.services = services,
		.n_services = ARRAY_SIZE(services),
		.init = init,
		.done = done,
	};
	return daemon_main(&desc, argc, argv);
}
