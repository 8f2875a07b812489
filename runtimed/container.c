/* Containers: the table, records, CreateContainer and recovery; see
 * container.h and container-int.h. */
#include "container-int.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "common/macro.h"
#include "cdi.h"
#include "checkpoint.h"
#include "ctrprop.h"
#include "podsnap.h"

static const char *const state_names[] = { "creating", "created", "running", "exited" };

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct container *container_alloc(void)
{
	struct container *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->op, NULL);
	c->refs = 1;
	c->stop_signal = SIGTERM;
	c->pidfd = -1;
	return c;
}

void container_free(struct container *c)
{
	if (!c)
		return;
	free(c->config);
	free(c->image_ref);
	free(c->entry);
	if (c->pidfd >= 0)
		close(c->pidfd);
	pthread_mutex_destroy(&c->op);
	free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct container *, container_free)

/* ---- records ---- */

static json_t *to_record(const struct container *c)
{
	_cleanup_free_ char *cfg = base64_encode(c->config, c->config_len);
	if (!cfg)
		return NULL;
	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:s, s:s, s:s, s:s, s:s?,"
	    " s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:b, s:b}",
	    "id", c->id, "pod_id", c->pod_id, "name", c->name, "state", state_names[c->state],
	    "created_at", (json_int_t)c->created_at, "started_at", (json_int_t)c->started_at,
	    "finished_at", (json_int_t)c->finished_at, "exit_code", c->exit_code, "reason",
	    c->reason, "message", c->message, "config", cfg, "image_id", c->image_id, "image_ref",
	    c->image_ref, "log_path", c->log_path, "bundle", c->bundle, "handler", c->handler,
	    "pid", (json_int_t)c->pid, "pid_start", (json_int_t)c->pid_start, "uid",
	    (json_int_t)c->uid, "gid", (json_int_t)c->gid, "stop_signal", c->stop_signal,
	    "rootfs_made", c->rootfs_made, "monitor_made", c->monitor_made);
}

/* Fields added since records began: absent in older ones. */
static json_t *to_record_full(const struct container *c)
{
	json_t *doc = to_record(c);
	if (doc && ((c->upper_dir[0] &&
		     json_object_set_new(doc, "upper_dir", json_string(c->upper_dir)) < 0) ||
		    (c->restore && json_object_set_new(doc, "restore", json_true()) < 0))) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

static int copy_str(char *dst, size_t size, const json_t *doc, const char *key)
{
	const char *v = json_string_value(json_object_get(doc, key));
	if (!v || strlen(v) >= size)
		return -EINVAL;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static json_int_t num(const json_t *doc, const char *key)
{
	return json_integer_value(json_object_get(doc, key));
}

static int from_record(const json_t *doc, struct container **ret)
{
	_cleanup_(container_freep) struct container *c = container_alloc();
	if (!c)
		return -ENOMEM;
	const char *state = json_string_value(json_object_get(doc, "state"));
	const char *cfg = json_string_value(json_object_get(doc, "config"));
	const char *ref = json_string_value(json_object_get(doc, "image_ref"));
	if (copy_str(c->id, sizeof(c->id), doc, "id") < 0 || !id_is_valid(c->id) ||
	    copy_str(c->pod_id, sizeof(c->pod_id), doc, "pod_id") < 0 ||
	    copy_str(c->name, sizeof(c->name), doc, "name") < 0 ||
	    copy_str(c->reason, sizeof(c->reason), doc, "reason") < 0 ||
	    copy_str(c->message, sizeof(c->message), doc, "message") < 0 ||
	    copy_str(c->image_id, sizeof(c->image_id), doc, "image_id") < 0 ||
	    copy_str(c->log_path, sizeof(c->log_path), doc, "log_path") < 0 ||
	    copy_str(c->bundle, sizeof(c->bundle), doc, "bundle") < 0 ||
	    copy_str(c->handler, sizeof(c->handler), doc, "handler") < 0 || !state || !cfg ||
	    base64_decode(cfg, CTR_RECORD_MAX, &c->config, &c->config_len) < 0)
		return -EINVAL;
	c->state = CTR_EXITED;
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++)
		if (strcmp(state, state_names[i]) == 0)
			c->state = (enum ctr_state)i;
	if (ref && !(c->image_ref = strdup(ref)))
		return -ENOMEM;
	c->created_at = num(doc, "created_at");
	c->started_at = num(doc, "started_at");
	c->finished_at = num(doc, "finished_at");
	c->exit_code = (int32_t)num(doc, "exit_code");
	c->pid = (pid_t)num(doc, "pid");
	c->pid_start = (unsigned long long)num(doc, "pid_start");
	c->uid = (uint32_t)num(doc, "uid");
	c->gid = (uint32_t)num(doc, "gid");
	c->stop_signal = (int)num(doc, "stop_signal");
	c->rootfs_made = json_is_true(json_object_get(doc, "rootfs_made"));
	c->monitor_made = json_is_true(json_object_get(doc, "monitor_made"));
	c->restore = json_is_true(json_object_get(doc, "restore"));
	if (json_object_get(doc, "upper_dir") &&
	    copy_str(c->upper_dir, sizeof(c->upper_dir), doc, "upper_dir") < 0)
		return -EINVAL;
	*ret = TAKE_PTR(c);
	return 0;
}

/* With the container's op lock held (its fields do not change under us). */
int ctr_record_save(struct ctr_mgr *m, struct container *c)
{
	pthread_mutex_lock(&m->lock);
	_cleanup_json_ json_t *doc = to_record_full(c);
	pthread_mutex_unlock(&m->lock);
	return doc ? record_store_save(m->records, c->id, doc) : -ENOMEM;
}

/* ---- the table ---- */

static int table_add_locked(struct ctr_mgr *m, struct container *c)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct container **items = realloc(m->items, cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		m->items = items;
		m->cap = cap;
	}
	m->items[m->n++] = c;
	return 0;
}

static void unref_locked(struct container *c)
{
	if (--c->refs == 0)
		container_free(c);
}

void ctr_table_remove(struct ctr_mgr *m, struct container *c)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++)
		if (m->items[i] == c) {
			m->items[i] = m->items[--m->n];
			c->removed = true;
			unref_locked(c);
			break;
		}
	pthread_cond_broadcast(&m->created);
	pthread_mutex_unlock(&m->lock);
}

int ctr_lookup(struct ctr_mgr *m, const char *id, struct container **ret, struct cric_err *err)
{
	struct id_match im;
	if (id_match_begin(&im, "container", id, err) < 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++)
		if (m->items[i]->state != CTR_CREATING && id_match_step(&im, m->items[i]->id, i))
			break;
	if (im.matches == 1)
		m->items[im.index]->refs++;
	struct container *found = im.matches == 1 ? m->items[im.index] : NULL;
	pthread_mutex_unlock(&m->lock);
	int r = id_match_end(&im, err);
	if (r < 0)
		return r;
	*ret = found;
	return 0;
}

void ctr_put(struct ctr_mgr *m, struct container *c)
{
	pthread_mutex_lock(&m->lock);
	unref_locked(c);
	pthread_mutex_unlock(&m->lock);
}

const struct oci_handler *ctr_handler(struct ctr_mgr *m, const char *name)
{
	const char *want = name && *name ? name : m->default_handler;
	for (size_t i = 0; i < m->n_handlers; i++)
		if (strcmp(m->handlers[i].name, want) == 0)
			return &m->handlers[i];
	return NULL;
}

int ctr_call(struct cric_client *c, struct cric_method_ref meth, uint32_t cap_ms,
	     const struct cric_call *call, const ProtobufCMessage *req, ProtobufCMessage **out,
	     struct cric_err *err)
{
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(c, meth, call ? call->request_id : NULL, deadline_in_ms(cap_ms),
				  req, out, &msg);
	if (code == CODE_OK)
		return 0;
	const ProtobufCMethodDescriptor *md = cric_method_desc(meth);
	return err_set(err, errno_from_grpc_code(code), "%s: %s", md ? md->name : "call",
		       msg ? msg : grpc_code_name(code));
}

/* ---- CreateContainer ---- */

/* The holder of name among the table's containers, or NULL. */
static struct container *find_name_locked(struct ctr_mgr *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->items[i]->name, name) == 0)
			return m->items[i];
	return NULL;
}

/* Reserve c's name and put c in the table: 0; 1 with id when a creation of
 * the same name finished after its caller gave up (the retry takes it);
 * -EEXIST naming the holder. A creation of the name in progress is waited
 * for. */
static int reserve(struct ctr_mgr *m, struct container *c, char id[65], struct cric_err *err)
{
	pthread_mutex_lock(&m->lock);
	struct container *h;
	while ((h = find_name_locked(m, c->name)) && h->state == CTR_CREATING)
		pthread_cond_wait(&m->created, &m->lock);
	int r = 0;
	if (h && h->orphaned) {
		h->orphaned = false;
		memcpy(id, h->id, 65);
		r = 1;
	} else if (h) {
		r = err_set(err, -EEXIST, "container name \"%s\" is reserved for container %s",
			    c->name, h->id);
	} else if (table_add_locked(m, c) < 0) {
		r = -ENOMEM;
	} else {
		c->refs++;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* A host path as it is to be mounted: symlinks resolved; a missing one is
 * created as a directory (0755), as both peer runtimes do (hostPath volumes
 * without a type depend on it). */
static int host_path(size_t i, const char *p, char **ret, struct cric_err *err)
{
	if (!p || p[0] != '/' || strlen(p) >= PATH_MAX)
		return err_set(err, -EINVAL, "mounts[%zu].host_path \"%.200s\" must be absolute", i,
			       p ? p : "");
	char *real = realpath(p, NULL);
	if (!real && errno == ENOENT) {
		int r = mkdir_p(p, 0755);
		if (r < 0)
			return err_set(err, r, "mounts[%zu]: create \"%s\": %s", i, p,
				       strerror(-r));
		real = realpath(p, NULL);
	}
	if (!real)
		return err_set(err, negative_errno(), "mounts[%zu].host_path \"%s\": %s", i, p,
			       strerror(errno));
	*ret = real;
	return 0;
}

static int resolve_image(struct ctr_mgr *m, const struct cric_call *call, const char *image,
			 Cric__Imaged__ResolveImageResponse **ret, struct cric_err *err)
{
	Cric__Imaged__ResolveImageRequest req = CRIC__IMAGED__RESOLVE_IMAGE_REQUEST__INIT;
	req.image = (char *)image;
	ProtobufCMessage *out = NULL;
	int r = ctr_call(m->imaged, CRIC_IMAGED(resolve_image), CTR_CALL_CAP_MS, call, &req.base,
			 &out, err);
	if (r < 0)
		return err_prefix(err, r, "image \"%.200s\"", image);
	if (!out)
		return err_set(err, -EIO, "image \"%.200s\": imaged gave no answer", image);
	*ret = (Cric__Imaged__ResolveImageResponse *)out;
	return 0;
}

static int make_rootfs(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
		       const Cric__Imaged__ResolveImageResponse *img,
		       const struct pod_snapshot *pod, char **path, char **upper,
		       struct cric_err *err)
{
	/* From now on, remove it on failure. Not saved: the record says
	 * CREATING, which recovery takes apart whole (recover_one()). */
	c->rootfs_made = true;
	int r;
	Cric__Stored__CreateRootfsRequest req = CRIC__STORED__CREATE_ROOTFS_REQUEST__INIT;
	req.container_id = c->id;
	req.chain_id = img->n_chain_ids ? img->chain_ids[img->n_chain_ids - 1] : "";
	if (pod->userns) {
		req.uid_host = pod->uid_map.host_id;
		req.gid_host = pod->gid_map.host_id;
		req.id_length = pod->uid_map.length;
	}
	ProtobufCMessage *out = NULL;
	r = ctr_call(m->stored, CRIC_STORED(create_rootfs), CTR_CALL_CAP_MS, call, &req.base, &out,
		     err);
	if (r < 0)
		return err_prefix(err, r, "create the root filesystem");
	_cleanup_pb_ Cric__Stored__CreateRootfsResponse *resp = (void *)out;
	if (!resp->path || resp->path[0] != '/')
		return err_set(err, -EIO, "create the root filesystem: stored gave no path");
	*path = strdup(resp->path);
	*upper = strdup(resp->upper_dir ? resp->upper_dir : "");
	return *path && *upper ? 0 : -ENOMEM;
}

struct create_ctx {
	const Runtime__V1__CreateContainerRequest *req;
	const Runtime__V1__ContainerConfig *cfg;
	struct pod_snapshot pod;
	const struct oci_handler *h;
	char log_path[PATH_MAX];
	const char *upper_dir; /* the writable layer, for monitord's stats */
	const char *archive;   /* the checkpoint archive the image names, or NULL */
	bool restore;          /* the monitor restores (ctr_monitor_restore()) */
};

/* namespace_options.pid TARGET: the target's init, when it is a running
 * container of the same pod; else 0 (the plan refuses it). */
static pid_t target_pid(struct ctr_mgr *m, const struct create_ctx *x)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    x->cfg->linux ? x->cfg->linux->security_context : NULL;
	const Runtime__V1__NamespaceOption *no = sc ? sc->namespace_options : NULL;
	if (!no || no->pid != RUNTIME__V1__NAMESPACE_MODE__TARGET || !no->target_id)
		return 0;
	struct container *t = NULL;
	if (ctr_lookup(m, no->target_id, &t, NULL) < 0 || !t)
		return 0;
	pthread_mutex_lock(&m->lock);
	pid_t pid = t->state == CTR_RUNNING && strcmp(t->pod_id, x->pod.id) == 0 &&
			    proc_alive(t->pid, t->pid_start)
			? t->pid
			: 0;
	pthread_mutex_unlock(&m->lock);
	ctr_put(m, t);
	return pid;
}

/* The files the plan needs of the node: the Localhost seccomp profile the
 * container gets (if any) and, with AppArmor, its list of loaded profiles. */
static int read_security_files(struct ctr_mgr *m, const Runtime__V1__ContainerConfig *cfg,
			       const struct ctr_pod *pod, json_t **profile, char **apparmor,
			       struct cric_err *err)
{
	enum ctr_seccomp_kind kind;
	const char *ref = NULL;
	int r = ctr_plan_seccomp(cfg, pod, &kind, &ref, err);
	if (r < 0)
		return r;
	if (kind == CTR_SECCOMP_LOCALHOST && (r = ctr_seccomp_profile_read(ref, profile, err)) < 0)
		return r;
	if (m->lsm.apparmor && (r = ctr_lsm_apparmor_loaded(apparmor)) < 0)
		log_warning("read AppArmor's loaded profiles: %s, ignoring", strerror(-r));
	return 0;
}

/* The edits of the container's CDI_devices and cdi.k8s.io/ annotations
 * (cdi.h); *ret NULL when it asks for none. */
static int cdi_edits(struct ctr_mgr *m, const Runtime__V1__ContainerConfig *cfg, json_t **ret,
		     struct cric_err *err)
{
	if (cfg->n_cdi_devices > CDI_MAX_DEVICES)
		return err_set(err, -E2BIG, "CDI_devices: more than %d", CDI_MAX_DEVICES);
	if (cfg->n_annotations > CTR_MAX_LABELS)
		return err_set(err, -E2BIG, "annotations: more than %d", CTR_MAX_LABELS);
	char *field[CDI_MAX_DEVICES];
	for (size_t i = 0; i < cfg->n_cdi_devices; i++)
		field[i] = cfg->cdi_devices[i]->name ? cfg->cdi_devices[i]->name : "";
	_cleanup_free_ char **keys = calloc(cfg->n_annotations + 1, sizeof(*keys));
	_cleanup_free_ char **values = calloc(cfg->n_annotations + 1, sizeof(*values));
	if (!keys || !values)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_annotations; i++) {
		keys[i] = cfg->annotations[i]->key ? cfg->annotations[i]->key : "";
		values[i] = cfg->annotations[i]->value ? cfg->annotations[i]->value : "";
	}
	_cleanup_free_ struct cdi_request *req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	int r = cdi_request_collect(field, cfg->n_cdi_devices, keys, values, cfg->n_annotations,
				    req, err);
	if (r == 0 && req->n)
		r = cdi_resolve(m->cdi_dirs, req->names, req->sources, req->n, ret, err);
	cdi_request_done(req);
	return r;
}

/* selinux_relabel of the mounts (lsm.h): nothing without SELinux. */
static int relabel_mounts(const Runtime__V1__ContainerConfig *cfg, char *const *host_paths,
			  const struct ctr_lsm *lsm, struct cric_err *err)
{
	if (!lsm->selinux || !cfg->n_mounts)
		return 0;
	struct ctr_lsm_plan lp;
	int r =
	    ctr_lsm_plan_container(cfg->linux ? cfg->linux->security_context : NULL, lsm, &lp, err);
	if (r < 0)
		return r;
	_cleanup_free_ struct ctr_relabel *rl = calloc(cfg->n_mounts, sizeof(*rl));
	size_t n = 0;
	if (!rl)
		return -ENOMEM;
	if ((r = ctr_lsm_plan_relabels(cfg, host_paths, lsm, &lp, rl, &n, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if ((r = ctr_lsm_relabel(&rl[i], err)) < 0)
			return err_prefix(err, r, "mounts: selinux_relabel");
	return 0;
}

static int write_bundle(struct ctr_mgr *m, struct container *c, struct create_ctx *x,
			const json_t *image_config, const char *rootfs, struct cric_err *err)
{
	struct ctr_user_spec us;
	struct ctr_user user;
	int r = ctr_plan_user(x->cfg, image_config, &us, err);
	if (r == 0)
		r = ctr_user_read(rootfs, &us, &user, err);
	if (r < 0)
		return r;
	size_t n = x->cfg->n_mounts;
	if (n > CTR_MAX_MOUNTS)
		return err_set(err, -E2BIG, "mounts: more than %d", CTR_MAX_MOUNTS);
	_cleanup_strv_free_ char **paths = calloc(n + 1, sizeof(char *));
	if (!paths)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((r = host_path(i, x->cfg->mounts[i]->host_path, &paths[i], err)) < 0)
			return r;
	if ((r = ctr_check_propagation(x->cfg, paths, err)) < 0)
		return r;
	const Runtime__V1__LinuxContainerResources *res =
	    x->cfg->linux ? x->cfg->linux->resources : NULL;
	struct rlimit rl = { 0 };
	uint64_t nofile = CTR_DEFAULT_NOFILE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < nofile)
		nofile = rl.rlim_max;
	int64_t oom = res ? res->oom_score_adj : 0;
	const struct ctr_pod pod = {
		.id = x->pod.id,
		.name = x->pod.name,
		.namespace = x->pod.namespace,
		.uid = x->pod.uid,
		.hostname = x->pod.hostname,
		.dir = x->pod.dir,
		.log_directory = x->pod.log_directory,
		.host_network = x->pod.host_network,
		.host_ipc = x->pod.host_ipc,
		.privileged = x->pod.privileged,
		.pid_mode = x->pod.pid_mode,
		.infra_pid = x->pod.infra_pid,
		.netns = x->pod.netns,
		.ipc_pin = x->pod.ipc_pin,
		.uts_pin = x->pod.uts_pin,
		.cgroup = x->pod.cgroup,
		.cgroup_parent = x->pod.cgroup_parent,
		.systemd_cgroup = x->h->systemd_cgroup,
		.seccomp_kind = (enum ctr_seccomp_kind)x->pod.seccomp_kind,
		.seccomp_ref = x->pod.seccomp_ref,
		.userns = x->pod.userns,
		.uid_map = x->pod.uid_map,
		.gid_map = x->pod.gid_map,
		.userns_pin = x->pod.userns_pin,
	};
	_cleanup_json_ json_t *profile = NULL;
	_cleanup_free_ char *apparmor = NULL;
	struct ctr_lsm lsm = m->lsm;
	if ((r = read_security_files(m, x->cfg, &pod, &profile, &apparmor, err)) < 0)
		return r;
	lsm.apparmor_profiles = apparmor;
	const Runtime__V1__LinuxContainerSecurityContext *sc =
	    x->cfg->linux ? x->cfg->linux->security_context : NULL;
	_cleanup_free_ struct ctr_device *devs = NULL;
	size_t n_devs = 0;
	if (sc && sc->privileged && (r = ctr_host_devices("/dev", &devs, &n_devs, err)) < 0)
		return r;
	_cleanup_free_ struct ctr_device *req_devs = NULL;
	size_t n_req_devs = 0;
	if ((r = ctr_req_devices(x->cfg, &req_devs, &n_req_devs, err)) < 0)
		return r;
	bool hugetlb = false;
	if ((r = ctr_res_host_check(res, &hugetlb, err)) < 0)
		return err_prefix(err, r, "linux.resources");
	_cleanup_json_ json_t *cdi = NULL;
	if ((r = cdi_edits(m, x->cfg, &cdi, err)) < 0)
		return r;
	const struct ctr_plan_in in = {
		.id = c->id,
		.cfg = x->cfg,
		.pod = &pod,
		.image_config = image_config,
		.rootfs = rootfs,
		.user = &user,
		.host_paths = paths,
		.nofile = nofile,
		.target_pid = target_pid(m, x),
		.caps_defaults = m->caps_defaults,
		.caps_grantable = m->caps_grantable,
		.host_devices = devs,
		.n_host_devices = n_devs,
		.seccomp_profile = profile,
		.seccomp_host = &m->seccomp_host,
		.lsm = &lsm,
		.req_devices = req_devs,
		.n_req_devices = n_req_devs,
		.hugetlb = hugetlb,
		.cdi_edits = cdi,
		.oom_score_adj = oci_oom_score_adj(oom < -1000  ? -1000
						   : oom > 1000 ? 1000
								: (int)oom),
	};
	_cleanup_json_ json_t *spec = NULL;
	if ((r = ctr_plan_spec(&in, &spec, err)) < 0)
		return r;
	if ((r = relabel_mounts(x->cfg, paths, &lsm, err)) < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	c->uid = user.uid;
	c->gid = user.gid;
	pthread_mutex_unlock(&m->lock);
	if (mkdir(c->bundle, 0700) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", c->bundle,
			       strerror(errno));
	if (pod.userns &&
	    (r = ctr_idmap_mounts(c->bundle, &pod.uid_map, &pod.gid_map, spec, err)) < 0)
		return r;
	/* The bundle is volatile state (the run dir): no fsync. */
	_cleanup_free_ char *path = path_join(c->bundle, "config.json");
	r = path ? json_save_volatile(path, spec, 0600) : -ENOMEM;
	if (r < 0)
		return err_set(err, r, "write the container's config.json: %s", strerror(-r));
	return 0;
}

static int create_monitor(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
			  struct create_ctx *x, struct cric_err *err)
{
	c->monitor_made = true;
	/* A creation's record says CREATING, which recovery takes apart
	 * whole; a restore's monitor comes later, at StartContainer. */
	int r = c->state == CTR_CREATING ? 0 : ctr_record_save(m, c);
	if (r < 0)
		return err_set(err, r, "save the container's record: %s", strerror(-r));
	Cric__Monitord__CreateMonitorRequest req = CRIC__MONITORD__CREATE_MONITOR_REQUEST__INIT;
	req.container_id = c->id;
	req.bundle = c->bundle;
	req.runtime_path = (char *)x->h->path;
	req.runtime_root = (char *)x->h->root;
	req.log_path = c->log_path;
	req.tty = x->cfg->tty;
	req.stdin = x->cfg->stdin;
	req.stdin_once = x->cfg->stdin_once;
	req.cgroup_parent = x->pod.cgroup;
	req.pod_sandbox_id = c->pod_id;
	req.name = x->cfg->metadata ? x->cfg->metadata->name : "";
	req.attempt = x->cfg->metadata ? x->cfg->metadata->attempt : 0;
	req.upper_dir = (char *)(x->upper_dir ? x->upper_dir : "");
	req.restore = x->restore;
	ProtobufCMessage *out = NULL;
	r = pb_map_copy(&req.base, "labels", &x->cfg->base, "labels");
	if (r == 0)
		r = pb_map_copy(&req.base, "annotations", &x->cfg->base, "annotations");
	if (r == 0)
		r = ctr_call(m->monitord, CRIC_MONITORD(create_monitor), MONITORD_CREATE_CAP_MS,
			     call, &req.base, &out, err);
	else
		r = err_set(err, r, "create the container: %s", strerror(-r));
	pb_map_clear(&req.base, "labels");
	pb_map_clear(&req.base, "annotations");
	/* A definite refusal leaves no monitor (monitord's contract); a lost
	 * answer (deadline, unavailable, internal) may have left one. */
	if (r < 0 && r != -ETIMEDOUT && r != -EAGAIN && r != -EIO && r != -ECANCELED)
		c->monitor_made = false;
	if (r < 0)
		return err_prefix(err, r, "create the container");
	if (!out)
		return -EIO;
	_cleanup_pb_ Cric__Monitord__CreateMonitorResponse *resp = (void *)out;
	pthread_mutex_lock(&m->lock);
	c->pid = resp->pid;
	c->pid_start = proc_start_time(resp->pid);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Every step after the record: image, rootfs, bundle, monitor. */
static int create_steps(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
			struct create_ctx *x, struct cric_err *err)
{
	_cleanup_pb_ Cric__Imaged__ResolveImageResponse *img = NULL;
	_cleanup_free_ char *ckpt_image = NULL;
	int r = x->archive ? ctr_restore_unpack(c, x->archive, &ckpt_image, err) : 0;
	if (r < 0)
		return r;
	r = resolve_image(m, call, ckpt_image ? ckpt_image : x->cfg->image->image, &img, err);
	if (r < 0 || !img)
		return r < 0 ? r : -EIO;
	_cleanup_json_ json_t *image_config = json_loads(img->config ? img->config : "{}", 0, NULL);
	if (!image_config)
		return err_set(err, -EIO, "image %s: its config is not JSON", img->id);
	int sig = ctr_plan_stop_signal(x->cfg, image_config);
	if (sig < 0)
		return err_set(err, -EINVAL, "config.stop_signal %d is not a signal here",
			       (int)x->cfg->stop_signal);
	pthread_mutex_lock(&m->lock);
	snprintf(c->image_id, sizeof(c->image_id), "%s", img->id ? img->id : "");
	free(c->image_ref);
	c->image_ref = strdup(img->n_repo_digests && img->repo_digests[0] ? img->repo_digests[0]
			      : img->id                                   ? img->id
									  : "");
	c->stop_signal = sig;
	pthread_mutex_unlock(&m->lock);
	if (!c->image_ref)
		return -ENOMEM;
	_cleanup_free_ char *rootfs = NULL, *upper = NULL;
	if ((r = make_rootfs(m, call, c, img, &x->pod, &rootfs, &upper, err)) < 0)
		return r;
	x->upper_dir = upper; /* borrowed until create_monitor() returns */
	pthread_mutex_lock(&m->lock);
	snprintf(c->upper_dir, sizeof(c->upper_dir), "%s", upper);
	pthread_mutex_unlock(&m->lock);
	if ((r = write_bundle(m, c, x, image_config, rootfs, err)) < 0)
		return r;
	/* A restore's monitor runs `runc restore` at StartContainer. */
	if (c->restore)
		return 0;
	r = create_monitor(m, call, c, x, err);
	/* The container holds its id-mapped mounts now (or never will). */
	struct cric_err e;
	if (x->pod.userns && ctr_idmap_release(c->bundle, &e) < 0)
		log_warning("container %s: %s; left for its removal", c->id, e.msg);
	return r;
}

int ctr_monitor_restore(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
			struct cric_err *err)
{
	_cleanup_pb_ Runtime__V1__ContainerConfig *cfg =
	    runtime__v1__container_config__unpack(NULL, c->config_len, c->config);
	if (!cfg)
		return err_set(err, -EIO, "container %s: its recorded config does not parse",
			       c->id);
	struct create_ctx x = { .cfg = cfg, .upper_dir = c->upper_dir, .restore = true };
	int r = pod_snapshot_get(m->sandboxes, call, c->pod_id, &x.pod, err);
	if (r < 0)
		return r;
	if (!(x.h = ctr_handler(m, c->handler)))
		return err_set(err, -ENOPKG, "runtime handler \"%s\" is not configured",
			       c->handler);
	r = create_monitor(m, call, c, &x, err);
	struct cric_err e;
	if (x.pod.userns && ctr_idmap_release(c->bundle, &e) < 0)
		log_warning("container %s: %s; left for its removal", c->id, e.msg);
	return r;
}

/* ---- teardown ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = flag == FTW_DP ? rmdir(path) : unlink(path);
	return r < 0 && errno != ENOENT ? -1 : 0;
}

static int remove_monitor(struct ctr_mgr *m, const struct cric_call *call, const char *id,
			  struct cric_err *err)
{
	Cric__Monitord__RemoveMonitorRequest req = CRIC__MONITORD__REMOVE_MONITOR_REQUEST__INIT;
	req.container_id = (char *)id;
	ProtobufCMessage *out = NULL;
	int r = ctr_call(m->monitord, CRIC_MONITORD(remove_monitor), MONITORD_REMOVE_CAP_MS, call,
			 &req.base, &out, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return err_prefix(err, r, "remove the monitor");
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

static int remove_rootfs(struct ctr_mgr *m, const struct cric_call *call, const char *id,
			 struct cric_err *err)
{
	Cric__Stored__RemoveRootfsRequest req = CRIC__STORED__REMOVE_ROOTFS_REQUEST__INIT;
	req.container_id = (char *)id;
	ProtobufCMessage *out = NULL;
	int r = ctr_call(m->stored, CRIC_STORED(remove_rootfs), CTR_CALL_CAP_MS, call, &req.base,
			 &out, err);
	if (r < 0)
		return err_prefix(err, r, "remove the root filesystem");
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

/* stored's part of a teardown, on a thread of its own. */
struct rootfs_job {
	struct ctr_mgr *m;
	const struct cric_call *call;
	const char *id;
	int r;
	struct cric_err err;
};

static void *rootfs_job_run(void *arg)
{
	struct rootfs_job *j = arg;
	j->r = remove_rootfs(j->m, j->call, j->id, &j->err);
	return NULL;
}

int ctr_teardown(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
		 struct cric_err *err)
{
	int r = proc_kill_wait(c->pid, c->pid_start, 10000);
	if (r < 0)
		return err_set(err, r, "kill the container's process %d: %s", (int)c->pid,
			       strerror(-r));
	/* runc's delete first: it kills what is left in the container's
	 * cgroup (an exec's process in a shared PID namespace outlives the
	 * init), so nothing uses the root filesystem from then on. The
	 * monitor (the container's init reaped, its exit recorded) and the
	 * root filesystem then go at once: monitord and stored each wait
	 * (a process's exit, an unmount and a directory's fsync) while the
	 * other works. */
	const struct oci_handler *h = c->monitor_made ? ctr_handler(m, c->handler) : NULL;
	if (h && (r = oci_delete(h, c->id, err)) < 0)
		return r;
	struct rootfs_job job = { .m = m, .call = call, .id = c->id };
	pthread_t t;
	bool threaded = c->rootfs_made && c->monitor_made &&
			pthread_create(&t, NULL, rootfs_job_run, &job) == 0;
	if (c->monitor_made)
		r = remove_monitor(m, call, c->id, err);
	if (threaded) {
		pthread_join(t, NULL);
		if (r == 0 && job.r < 0) {
			if (err)
				*err = job.err;
			r = job.r;
		}
	} else if (r == 0 && c->rootfs_made) {
		r = remove_rootfs(m, call, c->id, err);
	}
	if (r < 0)
		return r;
	/* Never remove through a mount still on the bundle. */
	if (c->bundle[0] && (r = ctr_idmap_release(c->bundle, err)) < 0)
		return r;
	if (c->bundle[0] && nftw(c->bundle, rm_entry, 8, FTW_DEPTH | FTW_PHYS) < 0 &&
	    errno != ENOENT)
		return err_set(err, negative_errno(), "remove \"%s\": %s", c->bundle,
			       strerror(errno));
	r = record_store_delete(m->records, c->id);
	if (r < 0)
		return err_set(err, r, "remove the container's record: %s", strerror(-r));
	return 0;
}

static struct container *container_new(struct ctr_mgr *m, const struct create_ctx *x,
				       const char *name)
{
	_cleanup_(container_freep) struct container *c = container_alloc();
	if (!c || id_random_hex(c->id, sizeof(c->id), 32) < 0)
		return NULL;
	snprintf(c->pod_id, sizeof(c->pod_id), "%s", x->pod.id);
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->log_path, sizeof(c->log_path), "%s", x->log_path);
	snprintf(c->handler, sizeof(c->handler), "%s", x->h->name);
	snprintf(c->bundle, sizeof(c->bundle), "%s/%s", m->bundles_dir, c->id);
	c->created_at = now_ns();
	c->config_len = protobuf_c_message_get_packed_size(&x->cfg->base);
	if (c->config_len > CTR_RECORD_MAX / 2 || !(c->config = malloc(c->config_len + 1)))
		return NULL;
	protobuf_c_message_pack(&x->cfg->base, c->config);
	return TAKE_PTR(c);
}

static void roll_back(struct ctr_mgr *m, const struct cric_call *call, struct container *c)
{
	struct cric_err e;
	int r = ctr_teardown(m, call, c, &e);
	if (r < 0)
		log_warning("roll back container %s: %s; left for the next start", c->id, e.msg);
	ctr_table_remove(m, c);
}

int ctr_create(struct ctr_mgr *m, const struct cric_call *call,
	       const Runtime__V1__CreateContainerRequest *req, char id[65], struct cric_err *err)
{
	struct create_ctx x = { .req = req, .cfg = req->config };
	char name[1024];
	int r = pod_snapshot_get(m->sandboxes, call, req->pod_sandbox_id, &x.pod, err);
	if (r < 0)
		return r;
	if (!x.pod.ready)
		return err_set(err, -EBUSY, "pod sandbox %s is not ready", x.pod.id);
	if ((r = ctr_plan_check(x.cfg,
				&(struct ctr_pod){ .name = x.pod.name,
						   .namespace = x.pod.namespace,
						   .uid = x.pod.uid,
						   .log_directory = x.pod.log_directory },
				name, sizeof(name), x.log_path, sizeof(x.log_path), err)) < 0)
		return r;
	if (!(x.h = ctr_handler(m, x.pod.handler)))
		return err_set(err, -ENOPKG, "runtime handler \"%s\" is not configured",
			       x.pod.handler);
	/* CRI-O's restore: an image that is a local checkpoint archive. */
	if (x.cfg->image->image[0] == '/' && ckpt_archive_is_checkpoint(x.cfg->image->image)) {
		if (x.cfg->tty)
			return err_set(
			    err, -EOPNOTSUPP,
			    "a container with a tty cannot be restored from a checkpoint");
		x.archive = x.cfg->image->image;
	}
	struct container *c = container_new(m, &x, name);
	if (!c)
		return -ENOMEM;
	c->restore = x.archive != NULL;
	c->state = CTR_CREATING;
	if ((r = reserve(m, c, id, err)) != 0) {
		container_free(c);
		return r < 0 ? r : 0;
	}
	pthread_mutex_lock(&c->op);
	if ((r = ctr_record_save(m, c)) < 0)
		err_set(err, r, "save the container's record: %s", strerror(-r));
	if (r == 0)
		r = create_steps(m, call, c, &x, err);
	if (r == 0) {
		pthread_mutex_lock(&m->lock);
		c->state = CTR_CREATED;
		c->orphaned =
		    call && call->deadline_ns > 0 && deadline_in_ms(0) > call->deadline_ns;
		pthread_mutex_unlock(&m->lock);
		if ((r = ctr_record_save(m, c)) < 0)
			err_set(err, r, "save the container's record: %s", strerror(-r));
	}
	if (r < 0) {
		log_warning("create container \"%s\" failed: %s", name, err ? err->msg : "");
		roll_back(m, call, c);
	} else {
		memcpy(id, c->id, 65);
		log_info("container %s (%s) created", c->id, name);
	}
	pthread_mutex_lock(&m->lock);
	pthread_cond_broadcast(&m->created);
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return r;
}

/* ---- recovery ---- */

struct recover_ctx {
	struct ctr_mgr *m;
	struct container **half; /* creations a kill -9 cut short */
	size_t n_half;
};

static void recover_one(void *userdata, const char *id, json_t *doc)
{
	struct recover_ctx *x = userdata;
	struct container *c = NULL;
	if (from_record(doc, &c) < 0 || strcmp(c->id, id) != 0) {
		log_warning("container record %s is not one, ignoring", id);
		container_free(c);
		return;
	}
	if (c->state == CTR_CREATING) {
		/* Its record is saved once before the first step and once
		 * after the last: whatever a step may have made is taken
		 * apart (each teardown step is idempotent). */
		c->rootfs_made = true;
		c->monitor_made = !c->restore;
		struct container **h = realloc(x->half, (x->n_half + 1) * sizeof(*h));
		if (!h) {
			container_free(c);
			return;
		}
		x->half = h;
		x->half[x->n_half++] = c;
		return;
	}
	pthread_mutex_lock(&x->m->lock);
	if (table_add_locked(x->m, c) < 0)
		container_free(c);
	pthread_mutex_unlock(&x->m->lock);
}

/* Half-made creations are taken apart off the start-up path: stored and
 * monitord may not answer yet. Their names are free meanwhile. */
static void *roll_back_half(void *arg)
{
	struct recover_ctx *x = arg;
	for (size_t i = 0; i < x->n_half; i++) {
		struct container *c = x->half[i];
		struct cric_err e;
		if (ctr_teardown(x->m, NULL, c, &e) < 0)
			log_warning("roll back the half-made container %s: %s; left for the next "
				    "start",
				    c->id, e.msg);
		else
			log_info("half-made container %s rolled back", c->id);
		container_free(c);
	}
	free(x->half);
	free(x);
	return NULL;
}

int ctr_mgr_new(const struct ctr_mgr_config *cfg, struct ctr_mgr **ret, struct cric_err *err)
{
	struct ctr_mgr *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->created, NULL);
	m->sandboxes = cfg->sandboxes;
	m->imaged = cfg->imaged;
	m->stored = cfg->stored;
	m->monitord = cfg->monitord;
	snprintf(m->default_handler, sizeof(m->default_handler), "%s", cfg->default_handler);
	_cleanup_free_ char *records_dir = path_join(cfg->state_dir, "containers");
	m->bundles_dir = path_join(cfg->run_dir, "containers");
	m->ckpt_dir = path_join(cfg->state_dir, "checkpoints");
	m->own_dirs[0] = strdup(cfg->state_dir);
	m->own_dirs[1] = strdup(cfg->run_dir);
	for (size_t i = 0; i < 2 && m->own_dirs[i]; i++) {
		/* <root>/runtimed: the whole of cric's root is ours. */
		char *slash = strrchr(m->own_dirs[i], '/');
		if (slash && slash != m->own_dirs[i])
			*slash = '\0';
	}
	m->handlers = calloc(cfg->n_handlers ? cfg->n_handlers : 1, sizeof(*m->handlers));
	if (!records_dir || !m->bundles_dir || !m->handlers || !m->ckpt_dir || !m->own_dirs[0] ||
	    !m->own_dirs[1]) {
		ctr_mgr_free(m);
		return -ENOMEM;
	}
	memcpy(m->handlers, cfg->handlers, cfg->n_handlers * sizeof(*m->handlers));
	m->n_handlers = cfg->n_handlers;
	if (cfg->cdi_dirs && !(m->cdi_dirs = strv_copy(cfg->cdi_dirs))) {
		ctr_mgr_free(m);
		return -ENOMEM;
	}
	m->caps_grantable = ctr_caps_host_grantable();
	ctr_seccomp_host_detect(&m->seccomp_host);
	ctr_lsm_detect(&m->lsm);
	snprintf(m->lsm.default_error, sizeof(m->lsm.default_error), "%s",
		 cfg->apparmor_default_error ? cfg->apparmor_default_error : "");
	int r = ctr_caps_mask_from_names(ctr_caps_default_names, ctr_caps_n_default_names,
					 "default capabilities", &m->caps_defaults, err);
	if (r == 0)
		r = mkdir_p(m->bundles_dir, 0700);
	if (r < 0) {
		ctr_mgr_free(m);
		return err_set(err, r, "create \"%s\": %s", m->bundles_dir, strerror(-r));
	}
	ctr_checkpoint_sweep(m);
	if ((r = record_store_open(records_dir, "container records", &m->records, err)) < 0) {
		ctr_mgr_free(m);
		return r;
	}
	struct recover_ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		ctr_mgr_free(m);
		return -ENOMEM;
	}
	x->m = m;
	size_t n = record_store_load_all(m->records, CTR_RECORD_MAX, recover_one, x);
	log_info("%zu container records, %zu half-made", n, x->n_half);
	if (x->n_half == 0) {
		free(x->half);
		free(x);
	} else if (pthread_create(&m->recover_thread, NULL, roll_back_half, x) != 0) {
		roll_back_half(x);
	} else {
		m->recovering = true;
	}
	*ret = m;
	return 0;
}

struct ctr_mgr *ctr_mgr_free(struct ctr_mgr *m)
{
	if (!m)
		return NULL;
	if (m->recovering)
		pthread_join(m->recover_thread, NULL);
	for (size_t i = 0; i < m->n; i++)
		container_free(m->items[i]);
	free(m->items);
	record_store_free(m->records);
	free(m->bundles_dir);
	free(m->ckpt_dir);
	for (size_t i = 0; i < ARRAY_SIZE(m->own_dirs); i++)
		free(m->own_dirs[i]);
	free(m->handlers);
	strv_free(m->cdi_dirs);
	pthread_cond_destroy(&m->created);
	pthread_mutex_destroy(&m->lock);
	free(m);
	return NULL;
}
