#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apparmor.h"
#include "cgroup.h"
#include "events.h"
#include "exitwatch.h"
#include "common/fsutil.h"
#include "common/idmap.h"
#include "common/nspin.h"
#include "common/macro.h"

#include "common/cleanup.h"
#include "common/log.h"
#include "common/service.h"

/* netd answers NetworkStatus from a directory scan: it is fast or it is stuck. */

/* The events kept for the gateway's long poll: it asks again as soon as it
 * has an answer, so these cover a gateway that is slow or restarting; a
 * longer gap is a loss the gateway sees (events.h). */
#define EVENT_LOG_CAPACITY 1024
#define EVENT_LOG_BYTES    (16u * 1024 * 1024)

struct runtimed {
	struct cric_client *netd;
	pthread_mutex_t lock;
	char cgroup_manager[16];
	struct oci_handler handlers[RUNTIME_MAX_HANDLERS];
	size_t n_handlers;
	char default_handler[64];
	struct sandbox_mgr *sandboxes;
	struct cric_client *imaged, *stored, *monitord;
	struct ctr_mgr *containers;
	struct event_log *events;
	pthread_mutex_t stop_events;
	struct exit_watch *exits, *pod_exits;
	char apparmor_default_error[256]; /* apparmor.h: why it is not loaded */
};

static const char *const runc_candidates[] = {
	"/usr/local/sbin/runc", "/usr/local/bin/runc", "/usr/sbin/runc",
	"/usr/bin/runc",        "/sbin/runc",          "/bin/runc",
};

static int bad_key(const struct cric_config *cfg, const char *key, const char *want,
		   struct cric_err *err)
{
	return config_bad_key(cfg, "runtimed", key, want, err);
}

static int add_handler(struct runtimed *rt, const struct cric_config *cfg, const char *name,
		       const json_t *spec, struct cric_err *err)
{
	if (rt->n_handlers == RUNTIME_MAX_HANDLERS)
		return err_set(err, -EINVAL, "config \"%s\": more than %d runtimes",
			       cfg->config_file, RUNTIME_MAX_HANDLERS);
	if (!*name || strlen(name) >= sizeof(rt->handlers[0].name) || strchr(name, '/'))
		return bad_key(cfg, "runtimes", "an object of names (no '/') to runtimes", err);
	struct oci_handler *h = &rt->handlers[rt->n_handlers];
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	const json_t *path = json_object_get(spec, "path");
	const json_t *root = json_object_get(spec, "root");
	const json_t *sd = json_object_get(spec, "systemd_cgroup");
	if ((spec && !json_is_object(spec)) || (path && !json_is_string(path)) ||
	    (root && !json_is_string(root)) || (sd && !json_is_boolean(sd)))
		return bad_key(cfg, "runtimes",
			       "an object of {\"path\": string, \"root\": string, "
			       "\"systemd_cgroup\": bool}",
			       err);
	if (path) {
		snprintf(h->path, sizeof(h->path), "%s", json_string_value(path));
	} else {
		snprintf(h->path, sizeof(h->path), "%s", runc_candidates[2]);
		for (size_t i = 0; i < ARRAY_SIZE(runc_candidates); i++)
			if (access(runc_candidates[i], X_OK) == 0) {
				snprintf(h->path, sizeof(h->path), "%s", runc_candidates[i]);
				break;
			}
	}
	if (h->path[0] != '/')
		return bad_key(cfg, "runtimes.<name>.path", "an absolute path", err);
	if (root)
		snprintf(h->root, sizeof(h->root), "%s", json_string_value(root));
	else
		snprintf(h->root, sizeof(h->root), "%s/runtimed/runtimes/%s", cfg->run_dir, name);
	h->systemd_cgroup = sd ? json_is_true(sd) : false;
	rt->n_handlers++;
	return 0;
}

static int load_handlers(struct runtimed *rt, const struct cric_config *cfg, struct cric_err *err)
{
	const json_t *sec = json_object_get(cfg->doc, "runtimed");
	if (sec && !json_is_object(sec))
		return err_set(err, -EINVAL, "config \"%s\": \"runtimed\" must be an object",
			       cfg->config_file);
	const json_t *def = json_object_get(sec, "default_runtime");
	const json_t *rts = json_object_get(sec, "runtimes");
	if (def && !json_is_string(def))
		return bad_key(cfg, "default_runtime", "a string", err);
	if (rts && !json_is_object(rts))
		return bad_key(cfg, "runtimes", "an object", err);
	snprintf(rt->default_handler, sizeof(rt->default_handler), "%s",
		 def ? json_string_value(def) : "runc");
	const char *name;
	json_t *spec;
	int r;
	json_object_foreach ((json_t *)rts, name, spec)
		if ((r = add_handler(rt, cfg, name, spec, err)) < 0)
			return r;
	/* "runc" is always there unless configured otherwise. */
	bool have_runc = false;
	for (size_t i = 0; i < rt->n_handlers; i++)
		have_runc |= strcmp(rt->handlers[i].name, "runc") == 0;
	if (!have_runc && (r = add_handler(rt, cfg, "runc", NULL, err)) < 0)
		return r;
	for (size_t i = 0; i < rt->n_handlers; i++)
		if (strcmp(rt->handlers[i].name, rt->default_handler) == 0)
			return 0;
	return err_set(err, -EINVAL, "config \"%s\": default_runtime \"%s\" is not in runtimes",
		       cfg->config_file, rt->default_handler);
}

static int string_key(const struct cric_config *cfg, const char *key, const char *def, char *buf,
		      size_t size, struct cric_err *err)
{
	const json_t *v = json_object_get(json_object_get(cfg->doc, "runtimed"), key);
	if (v && !json_is_string(v))
		return bad_key(cfg, key, "a string", err);
	snprintf(buf, size, "%s", v ? json_string_value(v) : def);
	return 0;
}

static int open_client(const struct cric_config *cfg, const char *daemon, struct cric_client **ret,
		       struct cric_err *err)
{
	_cleanup_free_ char *url = config_ipc_url(cfg, daemon);
	/* imaged runs as its own user: its listener is that user, not root. */
	return url ? cric_client_open_peer(daemon, url, config_daemon_peer_uid(cfg, daemon), ret,
					   err)
		   : -ENOMEM;
}

/* The containers: imaged, stored and monitord's clients, the manager. */
static int open_container_half(struct runtimed *rt, const struct cric_config *cfg,
			       const char *state, const char *run, struct cric_err *err)
{
	int r = open_client(cfg, "imaged", &rt->imaged, err);
	if (r == 0)
		r = open_client(cfg, "stored", &rt->stored, err);
	if (r == 0)
		r = open_client(cfg, "monitord", &rt->monitord, err);
	if (r < 0)
		return r;
	/* CDI spec directories: a later one's devices win (cdi.h); by
	 * default /etc/cdi and /var/run/cdi under --root, as the CNI dir. */
	_cleanup_free_ char *cdi_etc = path_join(*cfg->root ? cfg->root : "/", "etc/cdi");
	_cleanup_free_ char *cdi_run = path_join(*cfg->root ? cfg->root : "/", "var/run/cdi");
	if (!cdi_etc || !cdi_run)
		return -ENOMEM;
	char *const cdi_default[] = { cdi_etc, cdi_run, NULL };
	const json_t *dirs =
	    json_object_get(json_object_get(cfg->doc, "runtimed"), "cdi_spec_dirs");
	_cleanup_strv_free_ char **cdi_cfg = dirs ? strv_from_json(dirs) : NULL;
	if (dirs &&
	    (!json_is_array(dirs) || !cdi_cfg || strv_len(cdi_cfg) != json_array_size(dirs)))
		return bad_key(cfg, "cdi_spec_dirs", "a list of absolute paths", err);
	for (size_t i = 0; cdi_cfg && cdi_cfg[i]; i++)
		if (cdi_cfg[i][0] != '/')
			return bad_key(cfg, "cdi_spec_dirs", "a list of absolute paths", err);
	char *const *cdi_dirs = cdi_cfg ? cdi_cfg : cdi_default;
	const struct ctr_mgr_config cc = {
		.state_dir = state,
		.run_dir = run,
		.sandboxes = rt->sandboxes,
		.imaged = rt->imaged,
		.stored = rt->stored,
		.monitord = rt->monitord,
		.handlers = rt->handlers,
		.n_handlers = rt->n_handlers,
		.default_handler = rt->default_handler,
		.cdi_dirs = cdi_dirs,
		.apparmor_default_error = rt->apparmor_default_error,
	};
	return ctr_mgr_new(&cc, &rt->containers, err);
}

/* The pod's containers go before the pod (the container manager is made
 * after the pods': none yet, nothing to do). */
static int pod_stop_hook(void *ud, const char *pod_id, const struct cric_call *call,
			 struct cric_err *err)
{
	struct runtimed *rt = ud;
	return rt->containers ? ctr_stop_pod(rt->containers, call, pod_id, err) : 0;
}

static int pod_remove_hook(void *ud, const char *pod_id, const struct cric_call *call,
			   struct cric_err *err)
{
	struct runtimed *rt = ud;
	return rt->containers ? ctr_remove_pod(rt->containers, call, pod_id, err) : 0;
}

/* cric-default into the kernel where AppArmor is on (apparmor.h); a
 * failure is kept as the reason RuntimeDefault is refused. */
static void load_apparmor_default(struct runtimed *rt, const char *run_dir)
{
	struct ctr_lsm lsm;
	ctr_lsm_detect(&lsm);
	if (!ctr_apparmor_should_load(&lsm))
		return;
	_cleanup_free_ char *dir = path_join(run_dir, "apparmor");
	struct cric_err e = { { 0 } };
	int r = dir ? ctr_apparmor_install(CTR_APPARMOR_PARSER, dir, CTR_APPARMOR_LOAD, &e)
		    : err_set(&e, -ENOMEM, "out of memory");
	if (r < 0) {
		log_warning("AppArmor profile %s not loaded: %s; containers asking for "
			    "RuntimeDefault will be refused",
			    CTR_APPARMOR_DEFAULT, e.msg);
		snprintf(rt->apparmor_default_error, sizeof(rt->apparmor_default_error),
			 "loading it at start failed: %s", e.msg);
	} else {
		log_info("AppArmor profile %s loaded", CTR_APPARMOR_DEFAULT);
	}
}

/* Pods of their own user namespace need a handler with user namespaces,
 * id-mapped mounts of runtimed's files (pod files, bundles) and volumes,
 * which cric makes itself (common/idmap.h), and namespaces owned by a user
 * namespace (the pod's network, IPC and UTS namespaces are its, so that
 * runc, which joins the user namespace first, may join them: also for
 * `runc exec`): both probed once, on the run dir where pods' files live.
 * On unless runtimed.userns_pods is false. */
static void probe_userns(struct runtimed *rt, const char *run, bool enabled)
{
	struct cric_err e;
	/* Searchable by all (not listable): the infra of a user-namespaced
	 * pod, root of the pod's user namespace, is a host id of its own that
	 * runc walks to the infra's rootfs and the pod's files. */
	int r = mkdir_p(run, 0711);
	if (r == 0 && chmod(run, 0711) < 0)
		r = negative_errno();
	bool ok =
	    (r < 0 ? err_set(&e, r, "create it: %s", strerror(-r)) : idmap_probe(run, &e)) == 0;
	if (!ok)
		log_notice("no id-mapped mounts on \"%s\" (user-namespaced pods refused): %s", run,
			   e.msg);
	if (ok && !(ok = nspin_probe_userns(run, &e) == 0))
		log_notice("no namespaces owned by a pod's user namespace (user-namespaced pods "
			   "refused): %s",
			   e.msg);
	for (size_t i = 0; i < rt->n_handlers; i++) {
		bool can = ok && rt->handlers[i].userns;
		rt->handlers[i].userns_pods = can && enabled;
		rt->handlers[i].userns_pods_off = can && !enabled;
		log_info("runtime handler \"%s\": user-namespaced pods %s", rt->handlers[i].name,
			 rt->handlers[i].userns_pods ? "supported"
			 : can                       ? "off (runtimed.userns_pods is false)"
						     : "not supported");
	}
}

int runtimed_new(const struct cric_config *cfg, struct runtimed **ret, struct cric_err *err)
{
	struct runtimed *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->stop_events, NULL);
	snprintf(rt->cgroup_manager, sizeof(rt->cgroup_manager), "%s", cfg->cgroup_manager);
	/* The whole configuration is checked before anyone is dialled: a
	 * daemon that exits on a bad config must not leave a peer with a
	 * handshake cut short (see common/ipc_listen.h). */
	int r = load_handlers(rt, cfg, err);
	for (size_t i = 0; r == 0 && i < rt->n_handlers; i++) {
		struct cric_err e;
		if (oci_detect_features(&rt->handlers[i], &e) < 0)
			log_warning(
			    "runtime \"%s\": %s; taking it for one without id-mapped mounts",
			    rt->handlers[i].name, e.msg);
	}
	if (r == 0 && (r = event_log_new(EVENT_LOG_CAPACITY, EVENT_LOG_BYTES, &rt->events)) < 0)
		err_set(err, r, "event log: %s", strerror(-r));

	/* The infra binary is installed beside cric-runtimed. */
	_cleanup_free_ char *pause_default = path_beside_exe("cric-pause");
	if (!pause_default && r == 0)
		r = err_set(err, -ENOMEM, "out of memory");
	char pause[PATH_MAX], cgroot[CGROUP_PATH_MAX];
	if (r == 0)
		r = string_key(cfg, "pause_binary", pause_default, pause, sizeof(pause), err);
	if (r == 0)
		r = string_key(cfg, "cgroup_root", "/cric", cgroot, sizeof(cgroot), err);
	/* Each pod's /dev/shm, bytes (the peers' 64 MiB by default). */
	const json_t *shm = json_object_get(json_object_get(cfg->doc, "runtimed"), "shm_size");
	if (r == 0 && shm && (!json_is_integer(shm) || json_integer_value(shm) < 4096))
		r = bad_key(cfg, "shm_size", "a size in bytes of at least 4096", err);
	/* Pods of their own user namespace (probe_userns): on by default. */
	const json_t *uns = json_object_get(json_object_get(cfg->doc, "runtimed"), "userns_pods");
	if (r == 0 && uns && !json_is_boolean(uns))
		r = bad_key(cfg, "userns_pods", "true or false", err);
	_cleanup_free_ char *state = path_join(cfg->state_dir, "runtimed");
	_cleanup_free_ char *run = path_join(cfg->run_dir, "runtimed");
	if (r == 0 && (!state || !run))
		r = -ENOMEM;
	_cleanup_free_ char *netd_run = path_join(cfg->run_dir, "netd");
	if (r == 0 && !netd_run)
		r = -ENOMEM;
	_cleanup_free_ char *url = r == 0 ? config_ipc_url(cfg, "netd") : NULL;
	if (r == 0)
		r = url ? cric_client_open("netd", url, &rt->netd, err) : -ENOMEM;
	if (r == 0)
		load_apparmor_default(rt, run);
	if (r == 0)
		probe_userns(rt, run, !json_is_false(uns));
	if (r == 0) {
		const struct sandbox_mgr_config sc = {
			.state_dir = state,
			.run_dir = run,
			.cgroup_driver = rt->cgroup_manager,
			.cgroup_root = cgroot,
			.pause_binary = pause,
			.shm_size = shm ? (uint64_t)json_integer_value(shm) : 0,
			.handlers = rt->handlers,
			.n_handlers = rt->n_handlers,
			.default_handler = rt->default_handler,
			.netd = rt->netd,
			.netd_run_dir = netd_run,
			.on_pod_stop = pod_stop_hook,
			.on_pod_remove = pod_remove_hook,
			.hooks_userdata = rt,
			.apparmor_default_error = rt->apparmor_default_error,
		};
		r = sandbox_mgr_new(&sc, &rt->sandboxes, err);
	}
	if (r == 0)
		r = open_container_half(rt, cfg, state, run, err);
	if (r < 0) {
		runtimed_free(rt);
		return r;
	}
	*ret = rt;
	return 0;
}

const struct oci_handler *runtimed_default_handler(struct runtimed *rt)
{
	for (size_t i = 0; i < rt->n_handlers; i++)
		if (strcmp(rt->handlers[i].name, rt->default_handler) == 0)
			return &rt->handlers[i];
	return NULL;
}

size_t runtimed_handlers(struct runtimed *rt, const struct oci_handler **ret)
{
	*ret = rt->handlers;
	return rt->n_handlers;
}

struct sandbox_mgr *runtimed_sandboxes(struct runtimed *rt)
{
	return rt->sandboxes;
}

struct ctr_mgr *runtimed_containers(struct runtimed *rt)
{
	return rt->containers;
}

struct event_log *runtimed_events(struct runtimed *rt)
{
	return rt->events;
}

pthread_mutex_t *runtimed_stop_events_lock(struct runtimed *rt)
{
	return &rt->stop_events;
}

static void watch_pods(struct runtimed *rt, const char *id)
{
	struct sandbox_infra *v = NULL;
	size_t n = 0;
	int r = sandbox_infras(rt->sandboxes, id, &v, &n);
	if (r < 0)
		log_warning_errno(r, "watch the pods' infra processes, ignoring");
	for (size_t i = 0; i < n; i++)
		if ((r = exit_watch_add(rt->pod_exits, v[i].id, v[i].pid, v[i].start)) < 0)
			log_warning_errno(r, "watch the infra of pod %s, ignoring", v[i].id);
	free(v);
}

int runtimed_watch_exits(struct runtimed *rt, bool (*ctr_fn)(void *ud, const char *id),
			 bool (*pod_fn)(void *ud, const char *id), struct cric_err *err)
{
	int r = exit_watch_new(ctr_fn, rt, &rt->exits);
	if (r == 0)
		r = exit_watch_new(pod_fn, rt, &rt->pod_exits);
	if (r < 0)
		return err_set(err, r, "start the exit watcher: %s", strerror(-r));
	ctr_watch_exits(rt->containers, rt->exits);
	watch_pods(rt, NULL);
	return 0;
}

void runtimed_watch_pod(struct runtimed *rt, const char *id)
{
	if (rt->pod_exits)
		watch_pods(rt, id);
}

struct runtimed *runtimed_free(struct runtimed *rt)
{
	if (!rt)
		return NULL;
	/* Its callbacks use the managers: it goes first. */
	if (rt->containers)
		ctr_watch_exits(rt->containers, NULL);
	exit_watch_free(rt->exits);
	exit_watch_free(rt->pod_exits);
	ctr_mgr_free(rt->containers);
	sandbox_mgr_free(rt->sandboxes);
	cric_client_close(rt->monitord);
	cric_client_close(rt->stored);
	cric_client_close(rt->imaged);
	cric_client_close(rt->netd);
	event_log_free(rt->events);
	pthread_mutex_destroy(&rt->stop_events);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
	return NULL;
}

int runtimed_reload(struct runtimed *rt, const struct cric_config *cfg, struct cric_err *err)
{
	(void)err;
	/* Pods already run under the cgroup driver and handlers they were
	 * made with: those settings change only with a restart. */
	if (strcmp(rt->cgroup_manager, cfg->cgroup_manager) != 0)
		log_warning("cgroup_manager \"%s\" takes effect at the next start of runtimed",
			    cfg->cgroup_manager);
	return 0;
}

void runtimed_cgroup_manager(struct runtimed *rt, char *buf, size_t size)
{
	pthread_mutex_lock(&rt->lock);
	snprintf(buf, size, "%s", rt->cgroup_manager);
	pthread_mutex_unlock(&rt->lock);
}

void runtimed_status(struct runtimed *rt, const struct cric_call *call, struct runtime_status *st)
{
	memset(st, 0, sizeof(*st));
	st->runtime_ready = true;
	for (size_t i = 0; i < rt->n_handlers; i++) {
		const struct oci_handler *h = &rt->handlers[i];
		if (strcmp(h->name, rt->default_handler) == 0 && access(h->path, X_OK) < 0) {
			st->runtime_ready = false;
			snprintf(st->runtime_reason, sizeof(st->runtime_reason),
				 "RuntimeNotInstalled");
			snprintf(st->runtime_message, sizeof(st->runtime_message),
				 "runtime handler %s: \"%s\" is not executable", h->name, h->path);
		}
	}

	int64_t deadline = cric_deadline(call->deadline_ns, NETD_STATUS_CAP_MS);

	Cric__Netd__NetworkStatusRequest req = CRIC__NETD__NETWORK_STATUS_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(rt->netd, CRIC_NETD(network_status), call->request_id, deadline,
				  &req.base, &out, &msg);
	if (code != CODE_OK) {
		snprintf(st->network_reason, sizeof(st->network_reason), "NetworkPluginNotReady");
		snprintf(st->network_message, sizeof(st->network_message), "cannot ask netd: %s",
			 msg ? msg : grpc_code_name(code));
		log_warning("network status unknown: %s", st->network_message);
		return;
	}
	_cleanup_pb_ Cric__Netd__NetworkStatusResponse *ns =
	    (Cric__Netd__NetworkStatusResponse *)out;
	st->network_ready = ns->ready;
	snprintf(st->network_reason, sizeof(st->network_reason), "%s", ns->reason);
	snprintf(st->network_message, sizeof(st->network_message), "%s", ns->message);
	snprintf(st->cni_conf_file, sizeof(st->cni_conf_file), "%s", ns->conf_file);
	snprintf(st->cni_network, sizeof(st->cni_network), "%s", ns->network_name);
}
