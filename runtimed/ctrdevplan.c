/* The devices, CDI edits and rootfs propagation of a container's spec;
 * see ctr_plan_devices_and_cdi in ctrplan.h. Pure: the host's device
 * nodes and the CDI spec files were read by the caller. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "ctrplan.h"

/* linux.devices gets dev, replacing an entry at the same path (a
 * privileged container has the host's nodes at their host paths). */
static int dev_put(json_t *devices, json_t *dev)
{
	const char *path = json_string_value(json_object_get(dev, "path"));
	size_t i;
	json_t *d;
	json_array_foreach (devices, i, d)
		if (path && strcmp(json_string_value(json_object_get(d, "path")) ?: "", path) == 0)
			return json_array_set_new(devices, i, dev);
	return json_array_append_new(devices, dev);
}

/* The device cgroup rule letting the container use the node: rules is
 * linux.resources.devices (created if missing). */
static int rule_add(json_t *resources, char type, int64_t major, int64_t minor, const char *access)
{
	json_t *rules = json_object_get(resources, "devices");
	if (!rules && (json_object_set_new(resources, "devices", json_array()) < 0 ||
		       !(rules = json_object_get(resources, "devices"))))
		return -ENOMEM;
	char t[2] = { type, '\0' };
	return json_array_append_new(
	    rules, json_pack("{s:b, s:s, s:I, s:I, s:s}", "allow", 1, "type", t, "major",
			     (json_int_t)major, "minor", (json_int_t)minor, "access", access));
}

/* "r", "w", "m" each at most once, in any order; "" means all three. */
static bool access_valid(const char *s)
{
	if (strlen(s) > 3)
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("rwm", *p) || strchr(p + 1, *p))
			return false;
	return true;
}

static int req_devices(const struct ctr_plan_in *in, json_t *devices, json_t *resources,
		       struct cric_err *err)
{
	const Runtime__V1__ContainerConfig *cfg = in->cfg;
	if (cfg->n_devices > CTR_MAX_DEVICES)
		return err_set(err, -E2BIG, "devices: more than %d", CTR_MAX_DEVICES);
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const Runtime__V1__Device *d = cfg->devices[i];
		const char *dst = d->container_path ? d->container_path : "";
		const char *perm = d->permissions ? d->permissions : "";
		if (!path_is_clean(dst, true, PATH_MAX) || strcmp(dst, "/") == 0)
			return err_set(err, -EINVAL,
				       "devices[%zu].container_path \"%.200s\" must be a clean "
				       "absolute path other than /",
				       i, dst);
		if (!access_valid(perm))
			return err_set(err, -EINVAL,
				       "devices[%zu].permissions \"%.20s\" must be letters of "
				       "\"rwm\"",
				       i, perm);
		if (!in->req_devices)
			return err_set(err, -EINVAL, "devices[%zu].host_path was not found", i);
	}
	/* Each node found, at its container path: the one named, or the
	 * directory's container_path with the node's path under host_path. */
	for (size_t k = 0; k < in->n_req_devices; k++) {
		const struct ctr_device *h = &in->req_devices[k];
		if (h->req >= cfg->n_devices || h->rel > strnlen(h->path, sizeof(h->path)))
			return err_set(err, -EINVAL, "devices: a host node of no request");
		const Runtime__V1__Device *d = cfg->devices[h->req];
		const char *perm = d->permissions ? d->permissions : "";
		char dst[PATH_MAX];
		if ((size_t)snprintf(dst, sizeof(dst), "%s%s", d->container_path,
				     h->path + h->rel) >= sizeof(dst))
			return err_set(err, -EINVAL,
				       "devices[%u]: container path of \"%s\" too long", h->req,
				       h->path);
		char type[2] = { h->type, '\0' };
		json_t *dev = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "path", dst, "type",
					type, "major", (json_int_t)h->major, "minor",
					(json_int_t)h->minor, "fileMode", (json_int_t)h->mode,
					"uid", (json_int_t)h->uid, "gid", (json_int_t)h->gid);
		if (!dev || dev_put(devices, dev) < 0 ||
		    rule_add(resources, h->type, h->major, h->minor, *perm ? perm : "rwm") < 0)
			return -ENOMEM;
	}
	return 0;
}

/* process.env gets each "KEY=value" of edits, replacing the same KEY. */
static int cdi_env(json_t *env, const json_t *add)
{
	size_t i, j;
	json_t *e, *o;
	json_array_foreach (add, i, e) {
		const char *s = json_string_value(e);
		size_t klen = strcspn(s, "=");
		bool replaced = false;
		json_array_foreach (env, j, o) {
			const char *os = json_string_value(o);
			if (os && strncmp(os, s, klen) == 0 && os[klen] == '=') {
				if (json_array_set(env, j, e) < 0)
					return -ENOMEM;
				replaced = true;
				break;
			}
		}
		if (!replaced && json_array_append(env, e) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int cdi_nodes(json_t *devices, json_t *resources, const json_t *nodes)
{
	size_t i;
	json_t *n;
	json_array_foreach (nodes, i, n) {
		const char *type = json_string_value(json_object_get(n, "type"));
		if (!type || !*type)
			return -EINVAL; /* cdi_resolve completes every node */
		const char *perm = json_string_value(json_object_get(n, "permissions"));
		json_int_t major = json_integer_value(json_object_get(n, "major"));
		json_int_t minor = json_integer_value(json_object_get(n, "minor"));
		json_t *dev = json_pack("{s:O, s:s, s:I, s:I}", "path", json_object_get(n, "path"),
					"type", type, "major", major, "minor", minor);
		static const char *const opt[] = { "fileMode", "uid", "gid" };
		for (size_t k = 0; dev && k < sizeof(opt) / sizeof(*opt); k++)
			if (json_object_get(n, opt[k]))
				json_object_set(dev, opt[k], json_object_get(n, opt[k]));
		if (!dev || dev_put(devices, dev) < 0 ||
		    rule_add(resources, type[0], major, minor, perm && *perm ? perm : "rwm") < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Each mount as cdi.c left it: hostPath, containerPath, type and options
 * all there. */
static int cdi_mounts(json_t *mounts, const json_t *add)
{
	size_t i;
	json_t *m;
	json_array_foreach (add, i, m) {
		json_t *o = json_pack(
		    "{s:O, s:O, s:O, s:O}", "destination", json_object_get(m, "containerPath"),
		    "source", json_object_get(m, "hostPath"), "type", json_object_get(m, "type"),
		    "options", json_object_get(m, "options"));
		if (!o || json_array_append_new(mounts, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* hooks: {"hookName": "prestart"|..., "path", "args", "env", "timeout"}
 * into spec.hooks.<hookName>[]. */
static int cdi_hooks(json_t *spec, const json_t *add)
{
	size_t i;
	json_t *h;
	json_array_foreach (add, i, h) {
		const char *name = json_string_value(json_object_get(h, "hookName"));
		json_t *hooks = json_object_get(spec, "hooks");
		if (!hooks && (json_object_set_new(spec, "hooks", json_object()) < 0 ||
			       !(hooks = json_object_get(spec, "hooks"))))
			return -ENOMEM;
		json_t *list = json_object_get(hooks, name);
		if (!list && (json_object_set_new(hooks, name, json_array()) < 0 ||
			      !(list = json_object_get(hooks, name))))
			return -ENOMEM;
		json_t *o = json_deep_copy(h);
		if (!o || json_object_del(o, "hookName") < 0 || json_array_append_new(list, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

static const char *rootfs_propagation(const Runtime__V1__ContainerConfig *cfg)
{
	const char *p = NULL;
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		if (cfg->mounts[i]->propagation ==
		    RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL)
			return "rshared";
		if (cfg->mounts[i]->propagation ==
		    RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER)
			p = "rslave";
	}
	return p;
}

int ctr_plan_devices_and_cdi(const struct ctr_plan_in *in, json_t *spec, struct cric_err *err)
{
	json_t *lx = json_object_get(spec, "linux");
	json_t *devices = json_object_get(lx, "devices");
	json_t *resources = json_object_get(lx, "resources");
	json_t *env = json_object_get(json_object_get(spec, "process"), "env");
	json_t *mounts = json_object_get(spec, "mounts");
	if (!devices || !resources || !env || !mounts)
		return err_set(err, -EINVAL, "the spec lacks linux.devices/resources/env/mounts");
	const char *prop = rootfs_propagation(in->cfg);
	if (prop && json_object_set_new(lx, "rootfsPropagation", json_string(prop)) < 0)
		return -ENOMEM;
	int r = req_devices(in, devices, resources, err);
	if (r < 0 || !in->cdi_edits)
		return r;
	const json_t *e = in->cdi_edits;
	if ((r = cdi_nodes(devices, resources, json_object_get(e, "deviceNodes"))) < 0)
		return err_set(err, r, "CDI_devices: a device node %s",
			       r == -EINVAL ? "lacks its type" : "could not be added");
	if (cdi_env(env, json_object_get(e, "env")) < 0 ||
	    cdi_mounts(mounts, json_object_get(e, "mounts")) < 0 ||
	    cdi_hooks(spec, json_object_get(e, "hooks")) < 0)
		return -ENOMEM;
	return 0;
}

int ctr_plan_hugepages_unified(const struct ctr_plan_in *in,
			       const Runtime__V1__LinuxContainerResources *res, json_t *oci)
{
	if (in->hugetlb && res->n_hugepage_limits) {
		json_t *a = json_array();
		if (!a || json_object_set_new(oci, "hugepageLimits", a) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < res->n_hugepage_limits; i++)
			if (json_array_append_new(
				a, json_pack("{s:s, s:I}", "pageSize",
					     res->hugepage_limits[i]->page_size, "limit",
					     (json_int_t)res->hugepage_limits[i]->limit)) < 0)
				return -ENOMEM;
	}
	if (res->n_unified) {
		json_t *u = json_object();
		if (!u || json_object_set_new(oci, "unified", u) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < res->n_unified; i++)
			if (json_object_set_new(u, res->unified[i]->key,
						json_string(res->unified[i]->value)) < 0)
				return -ENOMEM;
	}
	return 0;
}
