/* CreateContainer's plan; see ctrplan.h. */
#include "ctrplan.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/macro.h"
#include "seccomp-default.h"

static const json_t *image_cfg(const json_t *image_config, const char *key)
{
	return json_object_get(json_object_get(image_config, "config"), key);
}

int ctr_plan_check(const Runtime__V1__ContainerConfig *cfg, const struct ctr_pod *pod, char *name,
		   size_t name_size, char *log_path, size_t log_size, struct cric_err *err)
{
	if (!cfg)
		return err_set(err, -EINVAL, "config is required");
	if (!cfg->metadata || !cfg->metadata->name || !*cfg->metadata->name)
		return err_set(err, -EINVAL, "config.metadata.name is required");
	if (!k8s_name_is_valid(cfg->metadata->name, CTR_NAME_MAX))
		return err_set(err, -EINVAL, "config.metadata.name \"%.80s\" is not a valid name",
			       cfg->metadata->name);
	if (!cfg->image || !cfg->image->image || !*cfg->image->image)
		return err_set(err, -EINVAL, "config.image.image is required");
	int n = snprintf(name, name_size, "%s_%s_%s_%s_%u", cfg->metadata->name, pod->name,
			 pod->namespace, pod->uid, cfg->metadata->attempt);
	if (n < 0 || (size_t)n >= name_size)
		return err_set(err, -EINVAL, "config.metadata.name is too long");
	const char *lp = cfg->log_path ? cfg->log_path : "";
	log_path[0] = '\0';
	if (!*lp)
		return 0;
	if (!path_is_clean(lp, false, PATH_MAX))
		return err_set(err, -EINVAL,
			       "config.log_path \"%.200s\" must be a clean relative path (no "
			       "'..', no leading '/')",
			       lp);
	if (!pod->log_directory || !*pod->log_directory)
		return err_set(err, -EINVAL,
			       "config.log_path is set but the pod has no log_directory");
	n = snprintf(log_path, log_size, "%s/%s", pod->log_directory, lp);
	if (n < 0 || (size_t)n >= log_size)
		return err_set(err, -EINVAL, "config.log_path is too long");
	return 0;
}

/* ---- user ---- */

static bool parse_id(const char *s, uint32_t *v)
{
	if (!*s || strlen(s) > 10)
		return false;
	char *end;
	errno = 0;
	unsigned long x = strtoul(s, &end, 10);
	if (*end || errno || x > UINT32_MAX - 1 || *s == '-' || *s == '+')
		return false;
	*v = (uint32_t)x;
	return true;
}

static int image_user(const char *u, struct ctr_user_spec *s, struct cric_err *err)
{
	char buf[512];
	if (strlen(u) >= sizeof(buf))
		return err_set(err, -EINVAL, "image user \"%.80s\" is too long", u);
	snprintf(buf, sizeof(buf), "%s", u);
	char *grp = strchr(buf, ':');
	if (grp)
		*grp++ = '\0';
	if (!*buf)
		return err_set(err, -EINVAL, "image user \"%.80s\" names no user", u);
	s->has_uid = parse_id(buf, &s->uid);
	if (!s->has_uid)
		snprintf(s->name, sizeof(s->name), "%s", buf);
	if (grp && *grp) {
		s->has_gid = parse_id(grp, &s->gid);
		if (!s->has_gid)
			snprintf(s->group, sizeof(s->group), "%s", grp);
	}
	return 0;
}

int ctr_plan_user(const Runtime__V1__ContainerConfig *cfg, const json_t *image_config,
		  struct ctr_user_spec *ret, struct cric_err *err)
{
	struct ctr_user_spec s = { 0 };
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    cfg->linux ? cfg->linux->security_context : NULL;
	const char *username = sc && sc->run_as_username ? sc->run_as_username : "";
	if (sc && sc->run_as_group && !sc->run_as_user && !*username)
		return err_set(err, -EINVAL,
			       "linux.security_context.run_as_group needs run_as_user or "
			       "run_as_username");
	if (sc && sc->run_as_user) {
		if (sc->run_as_user->value < 0 || sc->run_as_user->value >= UINT32_MAX)
			return err_set(err, -EINVAL, "run_as_user %lld is out of range",
				       (long long)sc->run_as_user->value);
		s.has_uid = true;
		s.uid = (uint32_t)sc->run_as_user->value;
	} else if (*username) {
		if (strlen(username) >= sizeof(s.name) || strchr(username, ':') ||
		    strchr(username, '\n'))
			return err_set(err, -EINVAL, "run_as_username \"%.80s\" is not a user name",
				       username);
		snprintf(s.name, sizeof(s.name), "%s", username);
	} else {
		const char *u = json_string_value(image_cfg(image_config, "User"));
		int r = u && *u ? image_user(u, &s, err) : 0;
		if (r < 0)
			return r;
		if (!u || !*u)
			s.has_uid = true; /* root */
	}
	if (sc && sc->run_as_group) {
		if (sc->run_as_group->value < 0 || sc->run_as_group->value >= UINT32_MAX)
			return err_set(err, -EINVAL, "run_as_group %lld is out of range",
				       (long long)sc->run_as_group->value);
		s.has_gid = true;
		s.gid = (uint32_t)sc->run_as_group->value;
		s.group[0] = '\0';
		s.gid_override = true;
	}
	*ret = s;
	return 0;
}

/* ---- args and env ---- */

static int append_strs(json_t *a, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, json_string(v[i] ? v[i] : "")) < 0)
			return -ENOMEM;
	return 0;
}

static int append_json_strs(json_t *a, const json_t *v)
{
	size_t i;
	const json_t *e;
	json_array_foreach (v, i, e)
		if (json_is_string(e) && json_array_append(a, (json_t *)e) < 0)
			return -ENOMEM;
	return 0;
}

int ctr_plan_args(const Runtime__V1__ContainerConfig *cfg, const json_t *image_config, json_t **ret,
		  struct cric_err *err)
{
	if (cfg->n_command + cfg->n_args > CTR_MAX_ARGS)
		return err_set(err, -E2BIG, "command and args: more than %d entries", CTR_MAX_ARGS);
	_cleanup_json_ json_t *a = json_array();
	if (!a)
		return -ENOMEM;
	int r;
	/* Kubernetes' rule: command replaces the Entrypoint and drops the
	 * Cmd; args alone replace the Cmd. */
	if (cfg->n_command > 0)
		r = append_strs(a, cfg->command, cfg->n_command);
	else
		r = append_json_strs(a, image_cfg(image_config, "Entrypoint"));
	if (r == 0 && cfg->n_args > 0)
		r = append_strs(a, cfg->args, cfg->n_args);
	else if (r == 0 && cfg->n_command == 0)
		r = append_json_strs(a, image_cfg(image_config, "Cmd"));
	if (r < 0)
		return r;
	if (json_array_size(a) == 0 || !*json_string_value(json_array_get(a, 0)))
		return err_set(err, -EINVAL, "no command specified");
	*ret = TAKE_PTR(a);
	return 0;
}

/* Set key=value in env (an array of "K=V"), replacing an entry of the same
 * key; only_if_absent keeps an existing one. */
static int env_set(json_t *env, const char *key, const char *value, bool only_if_absent)
{
	size_t klen = strlen(key), i;
	json_t *e;
	_cleanup_free_ char *kv = NULL;
	if (asprintf(&kv, "%s=%s", key, value) < 0)
		return -ENOMEM;
	json_array_foreach (env, i, e) {
		const char *s = json_string_value(e);
		if (s && strncmp(s, key, klen) == 0 && s[klen] == '=')
			return only_if_absent ? 0 : json_array_set_new(env, i, json_string(kv));
	}
	return json_array_append_new(env, json_string(kv));
}

static int plan_env(const struct ctr_plan_in *in, json_t **ret, struct cric_err *err)
{
	const Runtime__V1__ContainerConfig *cfg = in->cfg;
	if (cfg->n_envs > CTR_MAX_ENV)
		return err_set(err, -E2BIG, "envs: more than %d entries", CTR_MAX_ENV);
	_cleanup_json_ json_t *env = json_array();
	if (!env)
		return -ENOMEM;
	size_t i;
	const json_t *e;
	json_array_foreach (image_cfg(in->image_config, "Env"), i, e) {
		const char *s = json_string_value(e);
		const char *eq = s ? strchr(s, '=') : NULL;
		if (!eq || eq == s)
			continue;
		_cleanup_free_ char *k = strndup(s, (size_t)(eq - s));
		if (!k || env_set(env, k, eq + 1, false) < 0)
			return -ENOMEM;
	}
	for (i = 0; i < cfg->n_envs; i++) {
		const char *k = cfg->envs[i]->key ? cfg->envs[i]->key : "";
		if (!*k || strchr(k, '='))
			return err_set(err, -EINVAL, "envs[%zu]: invalid name \"%.80s\"", i, k);
		if (env_set(env, k, cfg->envs[i]->value ? cfg->envs[i]->value : "", false) < 0)
			return -ENOMEM;
	}
	if (env_set(env, "PATH", CTR_DEFAULT_PATH, true) < 0 ||
	    env_set(env, "HOSTNAME", in->pod->hostname ? in->pod->hostname : "", true) < 0 ||
	    (cfg->tty && env_set(env, "TERM", "xterm", true) < 0) ||
	    (in->user->home[0] && env_set(env, "HOME", in->user->home, true) < 0) ||
	    (!in->user->home[0] && env_set(env, "HOME", "/", true) < 0))
		return -ENOMEM;
	*ret = TAKE_PTR(env);
	return 0;
}

static int plan_user(const struct ctr_plan_in *in, json_t **ret, struct cric_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    in->cfg->linux ? in->cfg->linux->security_context : NULL;
	_cleanup_json_ json_t *groups = json_array();
	if (!groups)
		return -ENOMEM;
	size_t nsup = sc ? sc->n_supplemental_groups : 0;
	if (nsup > CTR_MAX_GROUPS)
		return err_set(err, -E2BIG, "supplemental_groups: more than %d", CTR_MAX_GROUPS);
	/* Strict: the image's /etc/group adds nothing. */
	bool strict =
	    sc && sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
	for (size_t i = 0; !strict && i < in->user->n_groups; i++)
		json_array_append_new(groups, json_integer(in->user->groups[i]));
	for (size_t i = 0; i < nsup; i++) {
		if (sc->supplemental_groups[i] < 0 || sc->supplemental_groups[i] >= UINT32_MAX)
			return err_set(err, -EINVAL, "supplemental_groups[%zu] is out of range", i);
		json_array_append_new(groups, json_integer(sc->supplemental_groups[i]));
	}
	*ret = json_pack("{s:I, s:I, s:o}", "uid", (json_int_t)in->user->uid, "gid",
			 (json_int_t)in->user->gid, "additionalGids", TAKE_PTR(groups));
	return *ret ? 0 : -ENOMEM;
}

/* ---- mounts ---- */

static json_t *mnt(const char *dst, const char *type, const char *src, json_t *opts)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", type, "source", src,
			 "options", opts);
}

static bool cri_mounts_target(const Runtime__V1__ContainerConfig *cfg, const char *dst)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (cfg->mounts[i]->container_path &&
		    strcmp(cfg->mounts[i]->container_path, dst) == 0)
			return true;
	return false;
}

static bool privileged(const struct ctr_plan_in *in)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    in->cfg->linux ? in->cfg->linux->security_context : NULL;
	return sc && sc->privileged;
}

static int base_mounts(const struct ctr_plan_in *in, json_t *ms)
{
	const struct ctr_pod *pod = in->pod;
	/* /sys and the cgroup fs: read-write for a privileged container. */
	const char *sys_rw = privileged(in) ? "rw" : "ro";
	int r = 0;
	r |= json_array_append_new(
	    ms, mnt("/proc", "proc", "proc", json_pack("[s,s,s]", "nosuid", "noexec", "nodev")));
	r |= json_array_append_new(
	    ms, mnt("/dev", "tmpfs", "tmpfs",
		    json_pack("[s,s,s,s]", "nosuid", "strictatime", "mode=755", "size=65536k")));
	r |= json_array_append_new(ms, mnt("/dev/pts", "devpts", "devpts",
					   json_pack("[s,s,s,s,s]", "nosuid", "noexec",
						     "newinstance", "ptmxmode=0666", "mode=0620")));
	/* The pod's own /dev/shm (podfiles.c), or the node's for host IPC;
	 * unless the kubelet mounts one. */
	char shm[PATH_MAX];
	snprintf(shm, sizeof(shm), "%s/shm", pod->dir);
	if (!cri_mounts_target(in->cfg, "/dev/shm"))
		r |= json_array_append_new(ms,
					   mnt("/dev/shm", "bind", pod->host_ipc ? "/dev/shm" : shm,
					       json_pack("[s,s,s,s,s]", "rbind", "rprivate",
							 "nosuid", "noexec", "nodev")));
	/* In a user namespace that owns none of the pod's (see struct
	 * ctr_pod): the host's /sys, no mqueue. */
	bool foreign = pod->userns && !(pod->userns_pin && pod->userns_pin[0]);
	if (!foreign)
		r |= json_array_append_new(ms,
					   mnt("/dev/mqueue", "mqueue", "mqueue",
					       json_pack("[s,s,s]", "nosuid", "noexec", "nodev")));
	if (foreign)
		r |= json_array_append_new(ms, mnt("/sys", "bind", "/sys",
						   json_pack("[s,s,s,s,s,s]", "rbind", "rprivate",
							     "nosuid", "noexec", "nodev", "ro")));
	else
		r |= json_array_append_new(
		    ms, mnt("/sys", "sysfs", "sysfs",
			    json_pack("[s,s,s,s]", "nosuid", "noexec", "nodev", sys_rw)));
	r |= json_array_append_new(
	    ms, mnt("/sys/fs/cgroup", "cgroup", "cgroup",
		    json_pack("[s,s,s,s,s]", "nosuid", "noexec", "nodev", "relatime", sys_rw)));
	static const char *const files[] = { "hostname", "hosts", "resolv.conf" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char dst[64], src[PATH_MAX];
		snprintf(dst, sizeof(dst), "/etc/%s", files[i]);
		if (cri_mounts_target(in->cfg, dst))
			continue; /* the kubelet mounts its own (hosts, usually) */
		snprintf(src, sizeof(src), "%s/%s", pod->dir, files[i]);
		r |= json_array_append_new(
		    ms, mnt(dst, "bind", src,
			    json_pack("[s,s,s,s]", "rbind", "rprivate", "nosuid", "nodev")));
	}
	return r ? -ENOMEM : 0;
}

static int cri_mount(const struct ctr_plan_in *in, size_t i, json_t *ms, struct cric_err *err)
{
	const Runtime__V1__Mount *m = in->cfg->mounts[i];
	const char *dst = m->container_path ? m->container_path : "";
	if (!path_is_clean(dst, true, PATH_MAX) || strcmp(dst, "/") == 0)
		return err_set(err, -EINVAL,
			       "mounts[%zu].container_path \"%.200s\" must be a clean absolute "
			       "path other than /",
			       i, dst);
	if (!in->host_paths || !in->host_paths[i])
		return err_set(err, -EINVAL, "mounts[%zu].host_path is required", i);
	if (m->image && m->image->image && *m->image->image)
		return err_set(err, -EOPNOTSUPP, "mounts[%zu]: image volumes are not supported yet",
			       i);
	if (m->n_uidmappings || m->n_gidmappings)
		return err_set(err, -EOPNOTSUPP, "mounts[%zu]: id-mapped mounts are not supported",
			       i);
	if (m->recursive_read_only)
		return err_set(err, -EOPNOTSUPP,
			       "mounts[%zu]: recursive read-only mounts are not supported yet", i);
	const char *prop;
	switch (m->propagation) {
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE:
		prop = "rprivate";
		break;
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
		prop = "rslave";
		break;
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
		prop = "rshared";
		break;
	default:
		return err_set(err, -EINVAL, "mounts[%zu].propagation %d is unknown", i,
			       (int)m->propagation);
	}
	json_t *opts = json_pack("[s,s,s]", "rbind", prop, m->readonly ? "ro" : "rw");
	if (json_array_append_new(ms, mnt(dst, "bind", in->host_paths[i], opts)) < 0)
		return -ENOMEM;
	return 0;
}

static int plan_mounts(const struct ctr_plan_in *in, json_t **ret, struct cric_err *err)
{
	if (in->cfg->n_mounts > CTR_MAX_MOUNTS)
		return err_set(err, -E2BIG, "mounts: more than %d", CTR_MAX_MOUNTS);
	_cleanup_json_ json_t *ms = json_array();
	if (!ms || base_mounts(in, ms) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < in->cfg->n_mounts; i++) {
		int r = cri_mount(in, i, ms, err);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(ms);
	return 0;
}

/* ---- namespaces ---- */

static int ns_add(json_t *ns, const char *type, const char *path)
{
	json_t *e = path ? json_pack("{s:s, s:s}", "type", type, "path", path)
			 : json_pack("{s:s}", "type", type);
	return json_array_append_new(ns, e);
}

static int plan_namespaces(const struct ctr_plan_in *in, json_t **ret, struct cric_err *err)
{
	const struct ctr_pod *pod = in->pod;
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    in->cfg->linux ? in->cfg->linux->security_context : NULL;
	const Runtime__V1__NamespaceOption *no = sc ? sc->namespace_options : NULL;
	int pid = no ? (int)no->pid : pod->pid_mode;
	_cleanup_json_ json_t *ns = json_array();
	if (!ns || ns_add(ns, "mount", NULL) < 0)
		return -ENOMEM;
	int r = 0;
	char path[64];
	switch (pid) {
	case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
		r = ns_add(ns, "pid", NULL);
		break;
	case RUNTIME__V1__NAMESPACE_MODE__POD:
		if (pod->infra_pid <= 0)
			return err_set(err, -EINVAL,
				       "namespace_options.pid POD: the pod has no shared PID "
				       "namespace (its pid mode is %d)",
				       pod->pid_mode);
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pod->infra_pid);
		r = ns_add(ns, "pid", path);
		break;
	case RUNTIME__V1__NAMESPACE_MODE__NODE:
		break;
	case RUNTIME__V1__NAMESPACE_MODE__TARGET:
		/* Another container's (the caller found it running in this pod). */
		if (in->target_pid <= 0)
			return err_set(err, -EINVAL,
				       "namespace_options.pid TARGET: target_id names no running "
				       "container of this pod");
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)in->target_pid);
		r = ns_add(ns, "pid", path);
		break;
	default:
		return err_set(err, -EINVAL, "namespace_options.pid %d is unknown", pid);
	}
	/* The pod's user namespace, joined first (runc does), so that the
	 * pod's namespaces it owns can be joined; or, for a pod whose user
	 * namespace owns none, a new one that runc makes after it joined the
	 * others. */
	if (pod->userns &&
	    ns_add(ns, "user", pod->userns_pin && pod->userns_pin[0] ? pod->userns_pin : NULL) < 0)
		return -ENOMEM;
	/* Network, IPC and UTS are the pod's, whatever the container says. */
	if (r == 0 && !pod->host_network)
		r = ns_add(ns, "network", pod->netns) | ns_add(ns, "uts", pod->uts_pin);
	if (r == 0 && !pod->host_ipc)
		r = ns_add(ns, "ipc", pod->ipc_pin);
	if (r < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(ns);
	return 0;
}

/* ---- resources ---- */

static int plan_resources(const struct ctr_plan_in *in, json_t **ret, struct cric_err *err)
{
	const Runtime__V1__LinuxContainerResources *res =
	    in->cfg->linux ? in->cfg->linux->resources : NULL;
	_cleanup_json_ json_t *r = json_object();
	if (!r)
		return -ENOMEM;
	if (privileged(in) &&
	    json_object_set_new(r, "devices",
				json_pack("[{s:b, s:s}]", "allow", 1, "access", "rwm")) < 0)
		return -ENOMEM;
	if (!res) {
		*ret = TAKE_PTR(r);
		return 0;
	}
	if (res->cpu_shares < 0 || res->cpu_quota < -1 || res->cpu_period < 0 ||
	    res->memory_limit_in_bytes < 0 || res->memory_swap_limit_in_bytes < 0)
		return err_set(err, -EINVAL, "linux.resources: negative values");
	if (ctr_plan_hugepages_unified(in, res, r) < 0)
		return -ENOMEM;
	json_t *cpu = json_object();
	json_object_set_new(r, "cpu", cpu);
	if (res->cpu_shares > 0)
		json_object_set_new(cpu, "shares", json_integer(res->cpu_shares));
	if (res->cpu_quota > 0)
		json_object_set_new(cpu, "quota", json_integer(res->cpu_quota));
	if (res->cpu_period > 0)
		json_object_set_new(cpu, "period", json_integer(res->cpu_period));
	if (res->cpuset_cpus && *res->cpuset_cpus)
		json_object_set_new(cpu, "cpus", json_string(res->cpuset_cpus));
	if (res->cpuset_mems && *res->cpuset_mems)
		json_object_set_new(cpu, "mems", json_string(res->cpuset_mems));
	if (res->memory_limit_in_bytes > 0) {
		json_t *mem = json_pack("{s:I}", "limit", (json_int_t)res->memory_limit_in_bytes);
		if (res->memory_swap_limit_in_bytes > 0)
			json_object_set_new(mem, "swap",
					    json_integer(res->memory_swap_limit_in_bytes));
		json_object_set_new(r, "memory", mem);
	}
	*ret = TAKE_PTR(r);
	return 0;
}

/* ---- the spec ---- */

/* A privileged container's linux.devices: the host's nodes at their paths. */
static json_t *plan_devices(const struct ctr_plan_in *in)
{
	json_t *a = json_array();
	for (size_t i = 0; a && privileged(in) && i < in->n_host_devices; i++) {
		const struct ctr_device *d = &in->host_devices[i];
		char type[2] = { d->type, '\0' };
		if (json_array_append_new(
			a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "path", d->path, "type",
				     type, "major", (json_int_t)d->major, "minor",
				     (json_int_t)d->minor, "fileMode", (json_int_t)d->mode, "uid",
				     (json_int_t)d->uid, "gid", (json_int_t)d->gid)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* User namespaces are the pod's: a container says the same or nothing. */
static int check_userns(const Runtime__V1__LinuxContainerSecurityContext *sc,
			const struct ctr_pod *pod, struct cric_err *err)
{
	const Runtime__V1__UserNamespace *u =
	    sc->namespace_options ? sc->namespace_options->userns_options : NULL;
	if (!u)
		return 0;
	if (u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE && pod->userns)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options NODE: the pod has a user "
			       "namespace of its own (POD)");
	if (u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
		return 0;
	if (u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options.mode must be POD or NODE");
	if (!pod->userns)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options POD: the pod has no user "
			       "namespace (its userns_options were not POD)");
	return 0;
}

static int check_security(const struct ctr_plan_in *in, struct cric_err *err)
{
	const Runtime__V1__ContainerConfig *cfg = in->cfg;
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    cfg->linux ? cfg->linux->security_context : NULL;
	if (!sc)
		return 0;
	if (sc->privileged && !in->pod->privileged)
		return err_set(err, -EINVAL,
			       "privileged: a privileged container needs a privileged pod "
			       "(linux.security_context.privileged of PodSandboxConfig)");
	if (sc->n_masked_paths > CTR_MAX_PATHS || sc->n_readonly_paths > CTR_MAX_PATHS)
		return err_set(err, -E2BIG, "masked_paths/readonly_paths: more than %d",
			       CTR_MAX_PATHS);
	for (size_t i = 0; i < sc->n_masked_paths; i++)
		if (!path_is_clean(sc->masked_paths[i], true, PATH_MAX))
			return err_set(err, -EINVAL, "masked_paths[%zu] is not an absolute path",
				       i);
	for (size_t i = 0; i < sc->n_readonly_paths; i++)
		if (!path_is_clean(sc->readonly_paths[i], true, PATH_MAX))
			return err_set(err, -EINVAL, "readonly_paths[%zu] is not an absolute path",
				       i);
	return check_userns(sc, in->pod, err);
}

static int plan_cwd(const struct ctr_plan_in *in, const char **ret, struct cric_err *err)
{
	const char *cwd = in->cfg->working_dir && *in->cfg->working_dir
			      ? in->cfg->working_dir
			      : json_string_value(image_cfg(in->image_config, "WorkingDir"));
	if (!cwd || !*cwd)
		cwd = "/";
	if (cwd[0] != '/' || strlen(cwd) >= PATH_MAX || strchr(cwd, '\n'))
		return err_set(err, -EINVAL, "working_dir \"%.200s\" must be an absolute path",
			       cwd);
	*ret = cwd;
	return 0;
}

static int plan_process(const struct ctr_plan_in *in, const struct ctr_caps *cp, json_t **ret,
			struct cric_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    in->cfg->linux ? in->cfg->linux->security_context : NULL;
	json_t *args = NULL, *env = NULL, *user = NULL, *caps = NULL;
	const char *cwd = "/";
	int r = plan_cwd(in, &cwd, err);
	if (r == 0)
		r = ctr_plan_args(in->cfg, in->image_config, &args, err);
	if (r == 0)
		r = plan_env(in, &env, err);
	if (r == 0)
		r = plan_user(in, &user, err);
	if (r == 0 && !(caps = ctr_caps_to_oci(cp)))
		r = -ENOMEM;
	if (r < 0) {
		json_decref(args);
		json_decref(env);
		json_decref(user);
		return r;
	}
	/* RLIMIT_NOFILE: see container.h. */
	*ret =
	    json_pack("{s:b, s:o, s:o, s:o, s:s, s:o, s:b, s:i,"
		      " s:[{s:s, s:I, s:I}]}",
		      "terminal", (int)in->cfg->tty, "user", user, "args", args, "env", env, "cwd",
		      cwd, "capabilities", caps, "noNewPrivileges", (int)(sc && sc->no_new_privs),
		      "oomScoreAdj", in->oom_score_adj, "rlimits", "type", "RLIMIT_NOFILE", "hard",
		      (json_int_t)in->nofile, "soft", (json_int_t)in->nofile);
	return *ret ? 0 : -ENOMEM;
}

static json_t *strs(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

int ctr_plan_seccomp(const Runtime__V1__ContainerConfig *cfg, const struct ctr_pod *pod,
		     enum ctr_seccomp_kind *kind, const char **ref, struct cric_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    cfg->linux ? cfg->linux->security_context : NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	const char *path = sc ? sc->seccomp_profile_path : NULL;
#pragma GCC diagnostic pop
	if (sc && (sc->seccomp || (path && *path)))
		return ctr_seccomp_kind(sc->seccomp, path, sc->privileged, kind, ref, err);
	bool priv = sc && sc->privileged;
	*kind = priv ? CTR_SECCOMP_UNCONFINED : pod->seccomp_kind;
	*ref = *kind == CTR_SECCOMP_LOCALHOST ? pod->seccomp_ref : NULL;
	return 0;
}

/* RuntimeDefault, Unconfined, or a Localhost file the caller read. */
static int plan_seccomp(const struct ctr_plan_in *in, const struct ctr_caps *cp, json_t **ret,
			struct cric_err *err)
{
	enum ctr_seccomp_kind kind = CTR_SECCOMP_UNCONFINED;
	const char *ref = NULL;
	*ret = NULL;
	int r = ctr_plan_seccomp(in->cfg, in->pod, &kind, &ref, err);
	if (r < 0)
		return r;
	if (kind == CTR_SECCOMP_LOCALHOST) {
		if (!in->seccomp_profile)
			return err_set(err, -EINVAL, "seccomp profile \"%.200s\": not read",
				       ref ? ref : "");
		return ctr_seccomp_profile_build(in->seccomp_profile, ref, cp->bounding,
						 in->seccomp_host, ret, err);
	}
	if (kind == CTR_SECCOMP_RUNTIME_DEFAULT)
		return ctr_seccomp_default(cp->bounding, NULL, ret, err);
	return 0;
}

static int plan_caps(const struct ctr_plan_in *in, struct ctr_caps *ret, struct cric_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    in->cfg->linux ? in->cfg->linux->security_context : NULL;
	const struct ctr_caps_input ci = {
		.req = sc ? sc->capabilities : NULL,
		.privileged = sc && sc->privileged,
		.root = in->user->uid == 0,
		.defaults = in->caps_defaults,
		.grantable = in->caps_grantable,
	};
	return ctr_caps_resolve(&ci, ret, err);
}

static int plan_linux(const struct ctr_plan_in *in, const struct ctr_caps *cp, json_t **ret,
		      struct cric_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    in->cfg->linux ? in->cfg->linux->security_context : NULL;
	json_t *ns = NULL, *res = NULL;
	int r = plan_namespaces(in, &ns, err);
	if (r == 0)
		r = plan_resources(in, &res, err);
	if (r < 0) {
		json_decref(ns);
		return r;
	}
	char cgpath[PATH_MAX];
	if (in->pod->systemd_cgroup)
		snprintf(cgpath, sizeof(cgpath), "%s:cric:%s", in->pod->cgroup_parent, in->id);
	else
		snprintf(cgpath, sizeof(cgpath), "%s/cric-%s", in->pod->cgroup, in->id);
	/* The lists the kubelet sends are the lists used; a direct client that
	 * sends none gets none (proto3 cannot tell empty from absent). A
	 * privileged container gets none (the kubelet sends its defaults
	 * anyway; the peers drop them). */
	bool priv = privileged(in);
	json_t *seccomp = NULL;
	if ((r = plan_seccomp(in, cp, &seccomp, err)) < 0) {
		json_decref(ns);
		json_decref(res);
		return r;
	}
	const struct ctr_pod *pod = in->pod;
	json_t *uidm = pod->userns ? json_pack("[{s:i, s:I, s:I}]", "containerID", 0, "hostID",
					       (json_int_t)pod->uid_map.host_id, "size",
					       (json_int_t)pod->uid_map.length)
				   : NULL;
	json_t *gidm = pod->userns ? json_pack("[{s:i, s:I, s:I}]", "containerID", 0, "hostID",
					       (json_int_t)pod->gid_map.host_id, "size",
					       (json_int_t)pod->gid_map.length)
				   : NULL;
	*ret = json_pack(
	    "{s:o*, s:o*, s:o, s:s, s:o, s:o, s:o, s:o, s:o*}", "uidMappings", uidm, "gidMappings",
	    gidm, "namespaces", ns, "cgroupsPath", cgpath, "resources", res, "devices",
	    plan_devices(in), "maskedPaths",
	    strs(sc && !priv ? sc->masked_paths : NULL, sc && !priv ? sc->n_masked_paths : 0),
	    "readonlyPaths",
	    strs(sc && !priv ? sc->readonly_paths : NULL, sc && !priv ? sc->n_readonly_paths : 0),
	    "seccomp", seccomp);
	return *ret ? 0 : -ENOMEM;
}

static json_t *plan_annotations(const struct ctr_plan_in *in)
{
	json_t *a = json_pack("{s:s, s:s, s:s, s:s}", "io.kubernetes.cri.container-type",
			      "container", "io.kubernetes.cri.sandbox-id", in->pod->id,
			      "io.kubernetes.cri.container-name", in->cfg->metadata->name,
			      "io.kubernetes.cri.image-name", in->cfg->image->image);
	for (size_t i = 0; a && i < in->cfg->n_annotations; i++)
		json_object_set_new(a, in->cfg->annotations[i]->key,
				    json_string(in->cfg->annotations[i]->value));
	return a;
}

/* AppArmor and SELinux (lsm.h) into the spec. */
static int plan_lsm(const struct ctr_plan_in *in, json_t *spec, struct cric_err *err)
{
	const struct ctr_lsm none = { 0 };
	struct ctr_lsm_plan p;
	int r = ctr_lsm_plan_container(in->cfg->linux ? in->cfg->linux->security_context : NULL,
				       in->lsm ? in->lsm : &none, &p, err);
	if (r < 0)
		return r;
	json_t *process = json_object_get(spec, "process"), *lx = json_object_get(spec, "linux");
	if ((p.apparmor[0] &&
	     json_object_set_new(process, "apparmorProfile", json_string(p.apparmor)) < 0) ||
	    (p.process_label[0] &&
	     json_object_set_new(process, "selinuxLabel", json_string(p.process_label)) < 0) ||
	    (p.mount_label[0] &&
	     json_object_set_new(lx, "mountLabel", json_string(p.mount_label)) < 0))
		return err_set(err, -ENOMEM, "build config.json");
	return 0;
}

int ctr_plan_spec(const struct ctr_plan_in *in, json_t **ret, struct cric_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    in->cfg->linux ? in->cfg->linux->security_context : NULL;
	if (in->cfg->n_labels > CTR_MAX_LABELS || in->cfg->n_annotations > CTR_MAX_LABELS)
		return err_set(err, -E2BIG, "labels/annotations: more than %d", CTR_MAX_LABELS);
	int r = check_security(in, err);
	if (r < 0)
		return r;
	json_t *process = NULL, *mounts = NULL, *lx = NULL;
	struct ctr_caps caps;
	r = plan_caps(in, &caps, err);
	if (r == 0)
		r = plan_process(in, &caps, &process, err);
	if (r == 0)
		r = plan_mounts(in, &mounts, err);
	if (r == 0)
		r = plan_linux(in, &caps, &lx, err);
	if (r < 0) {
		json_decref(process);
		json_decref(mounts);
		return r;
	}
	_cleanup_json_ json_t *spec = json_pack(
	    "{s:s, s:o, s:{s:s, s:b}, s:o, s:o, s:o}", "ociVersion", "1.0.2", "process", process,
	    "root", "path", in->rootfs, "readonly", (int)(sc && sc->readonly_rootfs), "mounts",
	    mounts, "linux", lx, "annotations", plan_annotations(in));
	if (!spec)
		return err_set(err, -ENOMEM, "build config.json");
	if ((r = plan_lsm(in, spec, err)) < 0 || (r = ctr_plan_devices_and_cdi(in, spec, err)) < 0)
		return r;
	*ret = TAKE_PTR(spec);
	return 0;
}

/* A signal name ("SIGTERM", "TERM") or number as its number; 0 if none. */
static int signal_by_name(const char *s)
{
	if (!s || !*s)
		return 0;
	if (strspn(s, "0123456789") == strlen(s)) {
		int v = atoi(s);
		return v > 0 && v < 65 ? v : 0;
	}
	const char *n = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (int i = 1; i < 32; i++) {
		const char *a = sigabbrev_np(i);
		if (a && strcmp(a, n) == 0)
			return i;
	}
	return 0;
}

int ctr_plan_stop_signal(const Runtime__V1__ContainerConfig *cfg, const json_t *image_config)
{
	if (cfg->stop_signal != RUNTIME__V1__SIGNAL__RUNTIME_DEFAULT) {
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		    &runtime__v1__signal__descriptor, (int)cfg->stop_signal);
		int s = v ? signal_by_name(v->name) : 0;
		return s ? s : -EINVAL;
	}
	int s = signal_by_name(json_string_value(image_cfg(image_config, "StopSignal")));
	return s ? s : SIGTERM;
}
