/* imaged's CRI adapter: ImageService calls turned into calls on the manager
 * (imaged.h) and results into replies. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/listpage.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "imaged/cri.h"
#include "imaged/imaged.h"
#include "imaged/rpc.h"

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
	p->pinned = img->pinned || imaged_is_pinned(d, img);
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

static const struct listpage_twin list_twins[] = {
	{ CRI_IMAGE(stream_images), CRI_IMAGE(list_images), list_images },
};

int imaged_list_page(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err)
{
	return listpage_serve(list_twins, ARRAY_SIZE(list_twins), ud, call, in, out, err);
}

static const struct cric_handler image_lines[] = {
	{ CRI_IMAGE(pull_image), pull_image_m, .callers = CALLER_GATEWAY },
	{ CRI_IMAGE(list_images), list_images, .callers = CALLER_GATEWAY },
	{ CRI_IMAGE(image_status), image_status, .callers = CALLER_GATEWAY },
	{ CRI_IMAGE(remove_image), remove_image, .callers = CALLER_GATEWAY },
};

const struct cric_service imaged_services[] = {
	{ &runtime__v1__image_service__descriptor, image_lines, ARRAY_SIZE(image_lines),
	  .partial = true },
	/* 2: imaged_n_rpc_lines (a static initialiser needs a constant). */
	{ &cric__imaged__imaged__descriptor, imaged_rpc_lines, 2 },
};

const size_t imaged_n_services = ARRAY_SIZE(imaged_services);
