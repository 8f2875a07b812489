/* UpdateContainerResources: see container.h. */
#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "container-int.h"
#include "ctrres.h"

/* runc's own test: the unified hierarchy mounted at /sys/fs/cgroup. */
static bool host_cgroup_v2(void)
{
	struct statfs fs;
	return statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

/* cfg with its linux.resources replaced by res (taken), packed. */
static int repack(Runtime__V1__ContainerConfig *cfg, Runtime__V1__LinuxContainerResources *res,
		  uint8_t **ret, size_t *ret_len)
{
	if (!cfg->linux &&
	    !(cfg->linux = pb_new(&runtime__v1__linux_container_config__descriptor))) {
		protobuf_c_message_free_unpacked(&res->base, NULL);
		return -ENOMEM;
	}
	if (cfg->linux->resources)
		protobuf_c_message_free_unpacked(&cfg->linux->resources->base, NULL);
	cfg->linux->resources = res;
	size_t len = protobuf_c_message_get_packed_size(&cfg->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&cfg->base, buf);
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* With the op lock held. */
static int update_locked(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
			 const Runtime__V1__LinuxContainerResources *upd, struct cric_err *err)
{
	if (c->state == CTR_CREATING)
		return err_set(err, -EBUSY, "container %s is being created", c->id);
	ctr_refresh(m, call, c);
	pthread_mutex_lock(&m->lock);
	_cleanup_pb_ Runtime__V1__ContainerConfig *cfg =
	    runtime__v1__container_config__unpack(NULL, c->config_len, c->config);
	pthread_mutex_unlock(&m->lock);
	if (!cfg)
		return err_set(err, -EIO, "container %s: its recorded config does not parse",
			       c->id);
	Runtime__V1__LinuxContainerResources *merged = NULL;
	int r = ctr_res_merge(cfg->linux ? cfg->linux->resources : NULL, upd, &merged);
	if (r < 0)
		return r;
	/* An exited container has no cgroup left: its record alone changes
	 * (containerd does the same; its status shows the values). */
	if (c->state == CTR_CREATED || c->state == CTR_RUNNING) {
		const struct oci_handler *h = ctr_handler(m, c->handler);
		_cleanup_json_ json_t *oci = ctr_res_oci(merged);
		r = !h     ? err_set(err, -ENOPKG, "runtime handler \"%s\" is not configured",
				     c->handler)
		    : !oci ? -ENOMEM
			   : oci_update(h, c->id, c->bundle, oci, err);
		if (r < 0) {
			/* runc may have written some files before the one the
			 * kernel refused: put back what the container had. */
			const Runtime__V1__LinuxContainerResources *was =
			    cfg->linux ? cfg->linux->resources : NULL;
			_cleanup_json_ json_t *back = h && was ? ctr_res_oci(was) : NULL;
			struct cric_err e2;
			if (back && oci_update(h, c->id, c->bundle, back, &e2) < 0)
				log_warning("container %s: restore its resources: %s, ignoring",
					    c->id, e2.msg);
			protobuf_c_message_free_unpacked(&merged->base, NULL);
			return r;
		}
	}
	uint8_t *buf = NULL;
	size_t len = 0;
	if ((r = repack(cfg, merged, &buf, &len)) < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	uint8_t *old = c->config;
	size_t old_len = c->config_len;
	c->config = buf;
	c->config_len = len;
	pthread_mutex_unlock(&m->lock);
	if ((r = ctr_record_save(m, c)) < 0) {
		pthread_mutex_lock(&m->lock);
		c->config = old;
		c->config_len = old_len;
		pthread_mutex_unlock(&m->lock);
		free(buf);
		return err_set(err, r, "save the container's record: %s", strerror(-r));
	}
	free(old);
	return 0;
}

int ctr_update_resources(struct ctr_mgr *m, const struct cric_call *call, const char *id,
			 const Runtime__V1__LinuxContainerResources *res, struct cric_err *err)
{
	int r = ctr_res_check(res, host_cgroup_v2(), err);
	if (r < 0)
		return err_prefix(err, r, "update container %s", id);
	struct container *c = NULL;
	if ((r = ctr_lookup(m, id, &c, err)) < 0 || !c)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&c->op);
	r = c->removed ? err_set(err, -ENOENT, "container %s was removed", c->id)
		       : update_locked(m, call, c, res, err);
	if (r == 0)
		log_info("container %s: resources updated", c->id);
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return r;
}
