/* stored's adapter: its internal service (proto/cric/stored.proto) and CRI
 * ImageFsInfo turned into calls on the layer store (layers.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/macro.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "stored/layers.h"
#include "stored/rpc.h"

static int import_layer(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__ImportLayerRequest *req = (const void *)in;
	char chain[BLOB_DIGEST_BUF];
	uint64_t size = 0;
	bool already = false;
	int r = layer_import(ud, req->file, req->blob_digest, req->diff_id, req->parent_chain_id,
			     req->lease, chain, &size, &already, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Cric__Stored__ImportLayerResponse *resp =
	    pb_new(&cric__stored__import_layer_response__descriptor);
	if (!resp || pb_set_str(&resp->chain_id, chain) < 0)
		return -ENOMEM;
	resp->size = size;
	resp->already_present = already;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int layer_status_m(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__LayerStatusRequest *req = (const void *)in;
	if (req->n_chain_ids > 4096)
		return err_set(err, -EINVAL, "too many chain ids");
	_cleanup_pb_ Cric__Stored__LayerStatusResponse *resp =
	    pb_new(&cric__stored__layer_status_response__descriptor);
	if (!resp || !(resp->present = calloc(req->n_chain_ids + 1, sizeof(protobuf_c_boolean))))
		return -ENOMEM;
	bool *present = calloc(req->n_chain_ids + 1, sizeof(bool));
	if (!present)
		return -ENOMEM;
	int r = layer_status(ud, req->chain_ids, req->n_chain_ids, req->lease, present, err);
	for (size_t i = 0; r == 0 && i < req->n_chain_ids; i++)
		resp->present[i] = present[i];
	free(present);
	if (r < 0)
		return r;
	resp->n_present = req->n_chain_ids;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int commit_image(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__CommitImageRequest *req = (const void *)in;
	int r = layer_commit_image(ud, req->image_id, req->chain_ids, req->n_chain_ids, req->lease,
				   err);
	if (r < 0)
		return r;
	*out = pb_new(&cric__stored__commit_image_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

static int release_image(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__ReleaseImageRequest *req = (const void *)in;
	unsigned removed = 0;
	int r = layer_release_image(ud, req->image_id, &removed, err);
	if (r < 0)
		return r;
	Cric__Stored__ReleaseImageResponse *resp =
	    pb_new(&cric__stored__release_image_response__descriptor);
	if (!resp)
		return -ENOMEM;
	resp->layers_removed = removed;
	*out = &resp->base;
	return 0;
}

static int sync_images(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		       ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__SyncImagesRequest *req = (const void *)in;
	unsigned dropped = 0, removed = 0;
	int r = layer_sync_images(ud, req->image_ids, req->n_image_ids, &dropped, &removed, err);
	if (r < 0)
		return r;
	Cric__Stored__SyncImagesResponse *resp =
	    pb_new(&cric__stored__sync_images_response__descriptor);
	if (!resp)
		return -ENOMEM;
	resp->images_dropped = dropped;
	resp->layers_removed = removed;
	*out = &resp->base;
	return 0;
}

static int drop_lease(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		      ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__DropLeaseRequest *req = (const void *)in;
	int r = layer_drop_lease(ud, req->lease, err);
	if (r < 0)
		return r;
	*out = pb_new(&cric__stored__drop_lease_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

static int create_rootfs(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__CreateRootfsRequest *req = (const void *)in;
	_cleanup_free_ char *path = NULL;
	const struct idmap_range uid = { req->uid_host, req->id_length };
	const struct idmap_range gid = { req->gid_host, req->id_length };
	int r = layer_create_rootfs(ud, req->container_id, req->chain_id, &uid, &gid, &path, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Cric__Stored__CreateRootfsResponse *resp =
	    pb_new(&cric__stored__create_rootfs_response__descriptor);
	_cleanup_free_ char *upper = layer_upper_dir(ud, req->container_id);
	if (!resp || !upper || pb_set_str(&resp->path, path) < 0 ||
	    pb_set_str(&resp->upper_dir, upper) < 0)
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int remove_rootfs(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Cric__Stored__RemoveRootfsRequest *req = (const void *)in;
	int r = layer_remove_rootfs(ud, req->container_id, err);
	if (r < 0)
		return r;
	*out = pb_new(&cric__stored__remove_rootfs_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

static Runtime__V1__FilesystemUsage *usage_pb(const struct fs_usage *u, int64_t now)
{
	_cleanup_pb_ Runtime__V1__FilesystemUsage *f =
	    pb_new(&runtime__v1__filesystem_usage__descriptor);
	if (!f || !(f->fs_id = pb_new(&runtime__v1__filesystem_identifier__descriptor)) ||
	    pb_set_str(&f->fs_id->mountpoint, u->mountpoint) < 0 ||
	    !(f->used_bytes = pb_new(&runtime__v1__uint64_value__descriptor)) ||
	    !(f->inodes_used = pb_new(&runtime__v1__uint64_value__descriptor)))
		return NULL;
	f->timestamp = now;
	f->used_bytes->value = u->used_bytes;
	f->inodes_used->value = u->inodes;
	return TAKE_PTR(f);
}

static int image_fs_info(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	(void)in;
	struct fs_usage images, containers;
	int r = layer_fs_usage(ud, &images, &containers, err);
	if (r < 0)
		return r;
	int64_t now = now_unix_ns();
	_cleanup_pb_ Runtime__V1__ImageFsInfoResponse *resp =
	    pb_new(&runtime__v1__image_fs_info_response__descriptor);
	if (!resp || !(resp->image_filesystems = calloc(1, sizeof(void *))) ||
	    !(resp->container_filesystems = calloc(1, sizeof(void *))))
		return -ENOMEM;
	if (!(resp->image_filesystems[resp->n_image_filesystems++] = usage_pb(&images, now)) ||
	    !(resp->container_filesystems[resp->n_container_filesystems++] =
		  usage_pb(&containers, now)))
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* imaged imports and collects layers (a pull's calls are capped as its
 * own wait for them); runtimed will ask for root filesystems (the
 * containers issue; the integration tests do through cric-call). */
static const struct cric_handler stored_lines[] = {
	{ CRIC_STORED(import_layer), import_layer, .callers = CALLER_IMAGED,
	  .cap_ms = STORED_IMPORT_CAP_MS },
	{ CRIC_STORED(layer_status), layer_status_m, .callers = CALLER_IMAGED,
	  .cap_ms = STORED_IMPORT_CAP_MS },
	{ CRIC_STORED(commit_image), commit_image, .callers = CALLER_IMAGED,
	  .cap_ms = STORED_IMPORT_CAP_MS },
	{ CRIC_STORED(release_image), release_image, .callers = CALLER_IMAGED,
	  .cap_ms = STORED_IMPORT_CAP_MS },
	{ CRIC_STORED(sync_images), sync_images, .callers = CALLER_IMAGED,
	  .cap_ms = STORED_SYNC_CAP_MS },
	{ CRIC_STORED(drop_lease), drop_lease, .callers = CALLER_IMAGED,
	  .cap_ms = STORED_IMPORT_CAP_MS },
	{ CRIC_STORED(create_rootfs), create_rootfs, .callers = CALLER_RUNTIMED | CALLER_ADMIN },
	{ CRIC_STORED(remove_rootfs), remove_rootfs, .callers = CALLER_RUNTIMED | CALLER_ADMIN },
};

/* The gateway routes ImageFsInfo here (cri-gateway/routes.c). */
static const struct cric_handler image_lines[] = {
	{ CRI_IMAGE(image_fs_info), image_fs_info, .callers = CALLER_GATEWAY },
};

const struct cric_service stored_services[] = {
	{ &cric__stored__stored__descriptor, stored_lines, ARRAY_SIZE(stored_lines) },
	{ &runtime__v1__image_service__descriptor, image_lines, ARRAY_SIZE(image_lines),
	  .partial = true },
};

const size_t stored_n_services = ARRAY_SIZE(stored_services);
