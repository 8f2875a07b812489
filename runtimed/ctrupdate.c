/* UpdateContainerResources: see container.h. */
#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <stdio.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbutil.h"
#include "container-int.h"
#include "ctrres.h"

/* runc's own test: the unified hierarchy mounted at /sys/fs/cgroup. */
static bool host_cgroup_v2(void)
{
	struct statfs fs;
	return statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

/* The hugetlb controller: mounted on v1, enabled at the root on v2. */
static bool host_hugetlb(bool v2)
{
	if (!v2)
		return access("/sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes", F_OK) == 0 ||
		       access("/sys/fs/cgroup/hugetlb", F_OK) == 0;
	_cleanup_free_ char *ctl = NULL;
	size_t len = 0;
	if (read_file("/sys/fs/cgroup/cgroup.subtree_control", 4096, &ctl, &len) < 0)
		return false;
	for (char *t = strtok(ctl, " \n"); t; t = strtok(NULL, " \n"))
		if (strcmp(t, "hugetlb") == 0)
			return true;
	return false;
}

/* Hugepages of kb KiB the host has or may make (reserved or overcommit). */
static int host_hugepages(uint64_t kb, uint64_t *n)
{
	static const char *const files[] = { "nr_hugepages", "nr_overcommit_hugepages" };
	*n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[128];
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/%s",
			 (unsigned long long)kb, files[i]);
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		int r = read_file(path, 4096, &text, &len);
		if (r < 0)
			return r;
		*n += strtoull(text, NULL, 10);
	}
	return 0;
}

int ctr_res_host_check(const Runtime__V1__LinuxContainerResources *res, bool *hugetlb,
		       struct cric_err *err)
{
	bool v2 = host_cgroup_v2();
	*hugetlb = host_hugetlb(v2);
	int r = ctr_res_check(res, v2, err);
	for (size_t i = 0; r == 0 && res && i < res->n_hugepage_limits; i++) {
		const Runtime__V1__HugepageLimit *h = res->hugepage_limits[i];
		uint64_t kb = 0, n = 0;
		ctr_hugepage_kb(h->page_size, &kb); /* checked above */
		if ((r = host_hugepages(kb, &n)) < 0)
			return err_set(err, -EINVAL,
				       "hugepage_limits[%zu].page_size \"%s\": this host has no "
				       "such hugepages",
				       i, h->page_size);
		/* Without the controller nothing can hold a container to its
		 * limit, but a limit of 0 holds by itself where the host has
		 * no such pages to give (the kubelet sends 0 for every size
		 * the host knows when the pod asks for none). */
		if (!*hugetlb && (h->limit || n))
			return err_set(err, -ENOPKG,
				       "hugepage_limits[%zu] (%s): this host's cgroups have no "
				       "hugetlb controller to enforce it",
				       i, h->page_size);
	}
	return r;
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
	/* A restore not yet started has no runc container either. */
	if ((c->state == CTR_CREATED && c->monitor_made) || c->state == CTR_RUNNING) {
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
	free(c->entry); /* made from the config */
	c->entry = NULL;
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
	bool hugetlb = false;
	int r = ctr_res_host_check(res, &hugetlb, err);
	if (r == 0 && hugetlb && res && res->n_hugepage_limits)
		r = err_set(err, -EOPNOTSUPP,
			    "hugepage_limits cannot change on a container (runc update does not "
			    "apply them)");
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
