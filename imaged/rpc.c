/* imaged's internal service (cric.imaged.Imaged): what runtimed needs of an
 * image to make a container of it, from the image records (images.h). An
 * adapter: it only translates. */
#include <errno.h>
#include <stdlib.h>

#include "common/cleanup.h"
#include "common/macro.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "imaged/cri.h"
#include "imaged/imaged.h"
#include "imaged/rpc.h"

static int strv_pb_copy(char *const *v, char ***out, size_t *n)
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

static int resolve_image(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	struct imaged *d = ud;
	const Cric__Imaged__ResolveImageRequest *req = (const void *)in;
	if (!req->image || !*req->image)
		return err_set(err, -EINVAL, "image is required");
	bool bad = false;
	struct image *img =
	    image_store_find(d->images, req->image, puller_default_registry(d->puller), &bad, err);
	if (bad)
		return -EINVAL;
	if (!img)
		return err_set(err, -ENOENT, "image \"%s\" not found", req->image);
	_cleanup_pb_ Cric__Imaged__ResolveImageResponse *resp =
	    pb_new(&cric__imaged__resolve_image_response__descriptor);
	int r = resp ? 0 : -ENOMEM;
	if (r == 0 &&
	    (pb_set_str(&resp->id, img->id) < 0 ||
	     strv_pb_copy(img->repo_tags, &resp->repo_tags, &resp->n_repo_tags) < 0 ||
	     strv_pb_copy(img->repo_digests, &resp->repo_digests, &resp->n_repo_digests) < 0 ||
	     strv_pb_copy(img->chain_ids, &resp->chain_ids, &resp->n_chain_ids) < 0 ||
	     pb_set_str(&resp->config, img->config ? img->config : "{}") < 0))
		r = -ENOMEM;
	image_free(img);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

const struct cric_handler imaged_rpc_lines[] = {
	{ CRIC_IMAGED(resolve_image), resolve_image, .callers = CALLER_RUNTIMED | CALLER_ADMIN },
	{ CRIC_IMAGED(list_page), imaged_list_page, .callers = CALLER_GATEWAY | CALLER_ADMIN },
};
const size_t imaged_n_rpc_lines = ARRAY_SIZE(imaged_rpc_lines);
