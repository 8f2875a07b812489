/* UpdatePodSandboxResources: see sandbox.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "sandbox-int.h"

/* A copy of src into *dst (freeing what was there); src NULL: unchanged. */
static int replace(Runtime__V1__LinuxContainerResources **dst,
		   const Runtime__V1__LinuxContainerResources *src)
{
	if (!src)
		return 0;
	size_t len = protobuf_c_message_get_packed_size(&src->base);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&src->base, buf);
	Runtime__V1__LinuxContainerResources *copy =
	    runtime__v1__linux_container_resources__unpack(NULL, len, buf);
	if (!copy)
		return -ENOMEM;
	if (*dst)
		protobuf_c_message_free_unpacked(&(*dst)->base, NULL);
	*dst = copy;
	return 0;
}

/* With the op lock held. */
static int update_locked(struct sandbox_mgr *m, struct sandbox *sb,
			 const Runtime__V1__LinuxContainerResources *overhead,
			 const Runtime__V1__LinuxContainerResources *resources,
			 struct cric_err *err)
{
	pthread_mutex_lock(&m->lock);
	_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg =
	    runtime__v1__pod_sandbox_config__unpack(NULL, sb->config_len, sb->config);
	pthread_mutex_unlock(&m->lock);
	if (!cfg)
		return err_set(err, -EIO, "pod sandbox %s: its stored config does not decode",
			       sb->id);
	if (!cfg->linux &&
	    !(cfg->linux = pb_new(&runtime__v1__linux_pod_sandbox_config__descriptor)))
		return -ENOMEM;
	if (replace(&cfg->linux->overhead, overhead) < 0 ||
	    replace(&cfg->linux->resources, resources) < 0)
		return -ENOMEM;
	size_t len = protobuf_c_message_get_packed_size(&cfg->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&cfg->base, buf);
	pthread_mutex_lock(&m->lock);
	uint8_t *old = sb->config;
	size_t old_len = sb->config_len;
	sb->config = buf;
	sb->config_len = len;
	pthread_mutex_unlock(&m->lock);
	int r = record_save(m, sb);
	if (r < 0) {
		pthread_mutex_lock(&m->lock);
		sb->config = old;
		sb->config_len = old_len;
		pthread_mutex_unlock(&m->lock);
		free(buf);
		return err_set(err, r, "save the pod's record: %s", strerror(-r));
	}
	free(old);
	return 0;
}

int sandbox_update_resources(struct sandbox_mgr *m, const char *id,
			     const Runtime__V1__LinuxContainerResources *overhead,
			     const Runtime__V1__LinuxContainerResources *resources,
			     struct cric_err *err)
{
	struct sandbox *sb = NULL;
	int r = lookup(m, id, &sb, err);
	if (r < 0 || !sb)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&sb->op);
	r = sb->removed ? err_set(err, -ENOENT, "pod sandbox %s was removed", sb->id)
			: update_locked(m, sb, overhead, resources, err);
	if (r == 0)
		log_info("pod sandbox %s: resources recorded", sb->id);
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	return r;
}
