#include "sandbox-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/nspin.h"
#include "podplan.h"
#include "names.h"
#include "records.h"
#include "seccomp-default.h"
#include "sysctl.h"

/* ---- small helpers ---- */

const char *state_name(enum sb_state s)
{
	return s == SB_CREATING ? "creating" : s == SB_READY ? "ready" : "notready";
}

void strv_clear(char **v, size_t max)
{
	for (size_t i = 0; i < max && v[i]; i++) {
		free(v[i]);
		v[i] = NULL;
	}
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	free(sb->config);
	free(sb->entry);
	strv_clear(sb->ips, SANDBOX_MAX_IPS);
	free(sb->cni_result);
	strv_free(sb->cgroup_created);
	pthread_mutex_destroy(&sb->op);
	free(sb);
}

struct sandbox *sandbox_alloc(void)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (sb)
		pthread_mutex_init(&sb->op, NULL);
	return sb;
}

/* RFC 1123 host name: labels of [a-z0-9-] (any case), dots between. */
struct oci_handler *find_handler(struct sandbox_mgr *m, const char *name)
{
	if (!name || !*name)
		name = m->default_handler;
	for (size_t i = 0; i < m->n_handlers; i++)
		if (strcmp(m->handlers[i].name, name) == 0)
			return &m->handlers[i];
	return NULL;
}

/* ---- records ---- */

/* Called with the sandbox's op lock held (fields do not change under us). */
json_t *sandbox_to_record(const struct sandbox *sb)
{
	_cleanup_free_ char *cfg = base64_encode(sb->config, sb->config_len);
	if (!cfg)
		return NULL;
	json_t *doc = json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:b, s:b, s:i, s:b, s:s, s:o, s:s?,"
	    " s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:s, s:s}",
	    "id", sb->id, "name", sb->name, "namespace", sb->namespace, "uid", sb->uid, "attempt",
	    (json_int_t)sb->attempt, "state", state_name(sb->state), "created_at",
	    (json_int_t)sb->created_at, "config", cfg, "handler", sb->handler, "host_network",
	    sb->host_network, "host_ipc", sb->host_ipc, "pid_mode", sb->pid_mode, "net_setup",
	    sb->net_setup, "netns", sb->netns, "ips", json_from_strv(sb->ips), "cni_result",
	    sb->cni_result, "ipc_pin", sb->ipc_pin, "uts_pin", sb->uts_pin, "infra_pid",
	    (json_int_t)sb->infra_pid, "infra_start", (json_int_t)sb->infra_start, "cgroup",
	    sb->cgroup, "cgroup_parent", sb->cgroup_parent, "cgroup_created",
	    json_from_strv(sb->cgroup_created), "dir", sb->dir, "log_directory", sb->log_directory);
	/* The pod's own user namespace (netd's pin), when it has one. */
	if (doc && sb->userns[0] && json_object_set_new(doc, "userns", json_string(sb->userns)) < 0)
		return json_decref(doc), NULL;
	return doc;
}

/* Called with the sandbox's op lock held (fields do not change under us). */
int record_save(struct sandbox_mgr *m, struct sandbox *sb)
{
	_cleanup_json_ json_t *doc = sandbox_to_record(sb);
	return doc ? record_store_save(m->records, sb->id, doc) : -ENOMEM;
}

int record_delete(struct sandbox_mgr *m, const char *id)
{
	return record_store_delete(m->records, id);
}

static int copy_str(char *dst, size_t size, const json_t *doc, const char *key)
{
	const char *v = json_string_value(json_object_get(doc, key));
	if (!v || strlen(v) >= size)
		return -EINVAL;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int sandbox_from_record(const json_t *doc, struct sandbox **ret)
{
	_cleanup_(sandbox_freep) struct sandbox *sb = sandbox_alloc();
	if (!sb)
		return -ENOMEM;
	const char *state = json_string_value(json_object_get(doc, "state"));
	const char *cfg = json_string_value(json_object_get(doc, "config"));
	if ((json_object_get(doc, "userns") &&
	     copy_str(sb->userns, sizeof(sb->userns), doc, "userns") < 0) ||
	    copy_str(sb->id, sizeof(sb->id), doc, "id") < 0 || !id_is_valid(sb->id) ||
	    copy_str(sb->name, sizeof(sb->name), doc, "name") < 0 ||
	    copy_str(sb->namespace, sizeof(sb->namespace), doc, "namespace") < 0 ||
	    copy_str(sb->uid, sizeof(sb->uid), doc, "uid") < 0 ||
	    copy_str(sb->handler, sizeof(sb->handler), doc, "handler") < 0 ||
	    copy_str(sb->netns, sizeof(sb->netns), doc, "netns") < 0 ||
	    copy_str(sb->ipc_pin, sizeof(sb->ipc_pin), doc, "ipc_pin") < 0 ||
	    copy_str(sb->uts_pin, sizeof(sb->uts_pin), doc, "uts_pin") < 0 ||
	    copy_str(sb->cgroup, sizeof(sb->cgroup), doc, "cgroup") < 0 ||
	    copy_str(sb->cgroup_parent, sizeof(sb->cgroup_parent), doc, "cgroup_parent") < 0 ||
	    copy_str(sb->dir, sizeof(sb->dir), doc, "dir") < 0 || !state || !cfg ||
	    (json_object_get(doc, "log_directory") &&
	     copy_str(sb->log_directory, sizeof(sb->log_directory), doc, "log_directory") < 0) ||
	    base64_decode(cfg, RECORD_MAX_BYTES, &sb->config, &sb->config_len) < 0)
		return -EINVAL;
	sb->state = strcmp(state, "ready") == 0      ? SB_READY
		    : strcmp(state, "creating") == 0 ? SB_CREATING
						     : SB_NOTREADY;
	sb->attempt = (uint32_t)json_integer_value(json_object_get(doc, "attempt"));
	sb->created_at = json_integer_value(json_object_get(doc, "created_at"));
	sb->host_network = json_is_true(json_object_get(doc, "host_network"));
	sb->host_ipc = json_is_true(json_object_get(doc, "host_ipc"));
	sb->pid_mode = (int)json_integer_value(json_object_get(doc, "pid_mode"));
	sb->net_setup = json_is_true(json_object_get(doc, "net_setup"));
	sb->infra_pid = (pid_t)json_integer_value(json_object_get(doc, "infra_pid"));
	sb->infra_start =
	    (unsigned long long)json_integer_value(json_object_get(doc, "infra_start"));
	const char *res = json_string_value(json_object_get(doc, "cni_result"));
	if (res && !(sb->cni_result = strdup(res)))
		return -ENOMEM;
	json_t *ips = json_object_get(doc, "ips");
	for (size_t i = 0; i < json_array_size(ips) && i < SANDBOX_MAX_IPS; i++)
		if (json_is_string(json_array_get(ips, i)) &&
		    !(sb->ips[i] = strdup(json_string_value(json_array_get(ips, i)))))
			return -ENOMEM;
	if (!(sb->cgroup_created = strv_from_json(json_object_get(doc, "cgroup_created"))))
		return -ENOMEM;
	*ret = TAKE_PTR(sb);
	return 0;
}

/* ---- the table ---- */

int table_add(struct sandbox_mgr *m, struct sandbox *sb)
{
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct sandbox **n = realloc(m->items, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		m->items = n;
		m->cap = ncap;
	}
	m->items[m->n++] = sb;
	sb->refs++;
	return 0;
}

/* With the lock held. */
static void unref_locked(struct sandbox *sb)
{
	if (--sb->refs == 0)
		sandbox_free(sb);
}

static void table_remove_locked(struct sandbox_mgr *m, struct sandbox *sb)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->items[i] == sb) {
			m->items[i] = m->items[--m->n];
			sb->removed = true;
			unref_locked(sb);
			return;
		}
	}
}

/* Find by id or unique prefix, with a reference. -ENOENT, or -EINVAL when
 * the prefix is ambiguous. Sandboxes being created are not visible. */
int lookup(struct sandbox_mgr *m, const char *id, struct sandbox **ret, struct cric_err *err)
{
	struct id_match im;
	if (id_match_begin(&im, "pod sandbox", id, err) < 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++)
		if (m->items[i]->state != SB_CREATING && id_match_step(&im, m->items[i]->id, i))
			break;
	if (im.matches == 1)
		m->items[im.index]->refs++;
	struct sandbox *found = im.matches == 1 ? m->items[im.index] : NULL;
	pthread_mutex_unlock(&m->lock);
	int r = id_match_end(&im, err);
	if (r < 0)
		return r;
	*ret = found;
	return 0;
}

void put(struct sandbox_mgr *m, struct sandbox *sb)
{
	pthread_mutex_lock(&m->lock);
	unref_locked(sb);
	pthread_mutex_unlock(&m->lock);
}

/* ---- namespaces ---- */

struct ns_setup {
	const struct pod_plan *p;
	enum sysctl_ns ns;
};

static int apply_sysctls(void *ud, struct cric_err *err)
{
	const struct ns_setup *s = ud;
	for (size_t i = 0; i < s->p->n_sysctls; i++) {
		if (s->p->sysctls[i].ns != s->ns)
			continue;
		int r = sysctl_write(s->p->sysctls[i].path, s->p->sysctls[i].value, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int set_hostname(void *ud, struct cric_err *err)
{
	const char *hn = ud;
	if (sethostname(hn, strlen(hn)) < 0)
		return err_set(err, negative_errno(), "sethostname: %s", strerror(errno));
	return 0;
}

/* ---- teardown, shared by stop, remove and rollback ---- */

/* Undo what the sandbox holds at run time: infra, network, IPC/UTS pins.
 * Each step is idempotent; the first failure stops and is returned (the
 * record then says what is still held). */
static int release_runtime(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
			   struct cric_err *err)
{
	int r;
	if (sb->pid_mode == POD_NS_POD && (r = infra_stop(m, sb, err)) < 0)
		return r;
	if (sb->net_setup) {
		if ((r = podnet_teardown(m, call, sb, err)) < 0)
			return r;
		pthread_mutex_lock(&m->lock);
		sb->net_setup = false;
		pthread_mutex_unlock(&m->lock);
	}
	if ((r = nspin_remove(sb->ipc_pin, err)) < 0 || (r = nspin_remove(sb->uts_pin, err)) < 0)
		return r;
	return podfiles_shm_unmount(sb->dir, err);
}

int release_all(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		struct cric_err *err)
{
	int r = release_runtime(m, call, sb, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->cgroups);
	r = cgroup_remove_created(sb->cgroup_created, err);
	pthread_mutex_unlock(&m->cgroups);
	if (r < 0)
		return r;
	return podfiles_remove(sb->dir, err);
}

/* ---- RunPodSandbox ---- */

/* The cgroups this pod may remove when it goes: those it created, and
 * those another pod created that it lives under (two pods under a parent
 * runtimed made: whichever goes last removes it; rmdir only takes empty
 * ones). Ancestors runtimed did not make (the kubelet's) are never
 * removed. With the lock held. */
static int share_cgroups(struct sandbox_mgr *m, struct sandbox *sb, char *const *created)
{
	char **own = calloc(CGROUP_PATH_MAX / 2 + 1, sizeof(char *));
	if (!own)
		return -ENOMEM;
	size_t n = 0;
	char prefix[CGROUP_PATH_MAX];
	for (const char *p = sb->cgroup + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		size_t len = (size_t)(p - sb->cgroup);
		memcpy(prefix, sb->cgroup, len);
		prefix[len] = '\0';
		bool mine = strv_contains(created, prefix);
		for (size_t i = 0; i < m->n && !mine; i++)
			mine =
			    m->items[i] != sb && strv_contains(m->items[i]->cgroup_created, prefix);
		if (mine && !(own[n++] = strdup(prefix))) {
			strv_free(own);
			return -ENOMEM;
		}
		if (*p == '\0')
			break;
	}
	sb->cgroup_created = own;
	return 0;
}

/* The pod's network from netd, and its net sysctls. */
static int network_up(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		      const struct pod_plan *p, struct cric_err *err)
{
	pthread_mutex_lock(&m->lock);
	sb->net_setup = true; /* from here on, netd may hold state */
	pthread_mutex_unlock(&m->lock);
	/* Not saved: a CREATING record's network is torn down whenever the
	 * pod has its own (recover.c); the user namespace's pin is saved
	 * with the READY record and goes with netd's teardown. */
	int r = podnet_setup(m, call, sb, p, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	sb->net_confirmed = true;
	pthread_mutex_unlock(&m->lock);
	struct ns_setup s = { p, SYSCTL_NS_NET };
	if ((r = nspin_run_in(CLONE_NEWNET, sb->netns, apply_sysctls, &s, err)) < 0)
		return err_prefix(err, r, "network namespace");
	return 0;
}

static int create(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		  const struct pod_plan *p, const struct pod_infra_security *sec,
		  struct cric_err *err)
{
	int r;
	if (mkdir(sb->dir, 0711) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", sb->dir,
			       strerror(errno));

	_cleanup_strv_free_ char **created = NULL;
	pthread_mutex_lock(&m->cgroups);
	if ((r = cgroup_create(sb->cgroup, &created, err)) == 0) {
		pthread_mutex_lock(&m->lock);
		r = share_cgroups(m, sb, created);
		pthread_mutex_unlock(&m->lock);
		if (r < 0)
			cgroup_remove_created(created, NULL);
	}
	pthread_mutex_unlock(&m->cgroups);
	if (r < 0)
		return r;
	if ((r = record_save(m, sb)) < 0)
		return err_set(err, r, "save the pod's record: %s", strerror(-r));
	if (p->has_limits && (r = cgroup_apply(sb->cgroup, &p->limits, err)) < 0)
		return r;

	/* A pod of its own user namespace: netd makes it with the network
	 * namespace, first, and the IPC and UTS namespaces are made inside it
	 * (podplan.c: such a pod has its own network and IPC namespaces). */
	if (p->userns && (r = network_up(m, call, sb, p, err)) < 0)
		return r;
	if (!sb->host_ipc) {
		if ((r = podfiles_shm_mount(sb->dir, m->shm_size, err)) < 0)
			return r;
		struct ns_setup s = { p, SYSCTL_NS_IPC };
		r = p->userns ? nspin_create_owned(CLONE_NEWIPC, sb->userns, sb->ipc_pin,
						   apply_sysctls, &s, err)
			      : nspin_create(CLONE_NEWIPC, sb->ipc_pin, apply_sysctls, &s, err);
		if (r < 0)
			return err_prefix(err, r, "IPC namespace");
	}
	if (!sb->host_network) {
		r = p->userns ? nspin_create_owned(CLONE_NEWUTS, sb->userns, sb->uts_pin,
						   set_hostname, (void *)p->hostname, err)
			      : nspin_create(CLONE_NEWUTS, sb->uts_pin, set_hostname,
					     (void *)p->hostname, err);
		if (r < 0)
			return err_prefix(err, r, "UTS namespace");
		if (!p->userns && (r = network_up(m, call, sb, p, err)) < 0)
			return r;
	}
	if ((r = podfiles_write(sb, p, err)) < 0)
		return r;
	if (sb->pid_mode == POD_NS_POD) {
		const struct oci_handler *h = find_handler(m, sb->handler);
		if ((r = infra_start(m, sb, h, sec, p->userns ? &p->uid_map : NULL,
				     p->userns ? &p->gid_map : NULL, err)) < 0)
			return r;
	}
	return 0;
}

/* A sandbox in state CREATING from the plan, not yet in the table. */
static struct sandbox *sandbox_from_plan(struct sandbox_mgr *m, const struct pod_plan *p,
					 const void *config, size_t config_len)
{
	_cleanup_(sandbox_freep) struct sandbox *sb = sandbox_alloc();
	if (!sb)
		return NULL;
	snprintf(sb->id, sizeof(sb->id), "%s", p->id);
	snprintf(sb->name, sizeof(sb->name), "%s", p->name);
	snprintf(sb->namespace, sizeof(sb->namespace), "%s", p->namespace_);
	snprintf(sb->uid, sizeof(sb->uid), "%s", p->uid);
	sb->attempt = p->attempt;
	sb->state = SB_CREATING;
	sb->created_at = now_unix_ns();
	snprintf(sb->handler, sizeof(sb->handler), "%s", p->handler->name);
	sb->host_network = p->net_mode == POD_NS_NODE;
	sb->host_ipc = p->ipc_mode == POD_NS_NODE;
	sb->pid_mode = p->pid_mode;
	snprintf(sb->cgroup, sizeof(sb->cgroup), "%s", p->cgroup);
	snprintf(sb->cgroup_parent, sizeof(sb->cgroup_parent), "%s", p->cgroup_parent);
	snprintf(sb->log_directory, sizeof(sb->log_directory), "%s", p->log_directory);
	snprintf(sb->dir, sizeof(sb->dir), "%s/%s", m->sandboxes_dir, sb->id);
	snprintf(sb->ipc_pin, sizeof(sb->ipc_pin), "%s/ipc", sb->dir);
	snprintf(sb->uts_pin, sizeof(sb->uts_pin), "%s/uts", sb->dir);
	sb->config_len = config_len;
	if (!(sb->config = malloc(config_len ? config_len : 1)))
		return NULL;
	if (config_len)
		memcpy(sb->config, config, config_len);
	return TAKE_PTR(sb);
}

void sandbox_name_key(const struct sandbox *sb, char *buf, size_t size)
{
	/* '/' is in none of the three (common/ids.h): no two pods share a key. */
	snprintf(buf, size, "%s/%s/%s/%u", sb->name, sb->namespace, sb->uid, sb->attempt);
}

/* Put sb, whose name the caller holds, in the table, with its op lock held
 * and a reference for the caller. */
static int enter(struct sandbox_mgr *m, struct sandbox *sb)
{
	pthread_mutex_lock(&m->lock);
	int r = table_add(m, sb);
	if (r == 0) {
		pthread_mutex_lock(&sb->op);
		sb->refs++; /* the caller's until the end of its call: a rollback
			     * or a concurrent remove drops only the table's */
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Undo a failed creation; what cannot be undone stays visible (NOTREADY)
 * so that stop/remove, or the kubelet's garbage collection, finish it.
 * Returns whether it was kept. */
static bool roll_back(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb)
{
	struct cric_err rb;
	int k = release_all(m, call, sb, &rb);
	pthread_mutex_lock(&m->lock);
	if (k == 0) {
		table_remove_locked(m, sb);
	} else {
		sb->state = SB_NOTREADY;
		log_error("rollback incomplete, sandbox kept as NOTREADY: %s", rb.msg);
	}
	pthread_mutex_unlock(&m->lock);
	if (k == 0)
		record_delete(m, sb->id);
	else
		record_save(m, sb);
	return k != 0;
}

void sandbox_plan_env(struct sandbox_mgr *m, struct pod_plan_env *env)
{
	*env = (struct pod_plan_env){ .handlers = m->handlers,
				      .n_handlers = m->n_handlers,
				      .default_handler = m->default_handler,
				      .have_pause = m->have_pause,
				      .cgroup_driver = m->cgroup_driver,
				      .cgroup_root = m->cgroup_root,
				      .lsm = &m->lsm,
				      .seccomp_host = &m->seccomp_host };
}

/* The infra's seccomp filter and LSM fields (podplan.h), with the files
 * they need read: the pod's Localhost profile, AppArmor's loaded list. */
static int infra_security(struct sandbox_mgr *m, const struct pod_plan *p,
			  struct pod_infra_security *ret, struct cric_err *err)
{
	_cleanup_json_ json_t *profile = NULL;
	int r;
	if (p->seccomp_kind == CTR_SECCOMP_LOCALHOST &&
	    (r = ctr_seccomp_profile_read(p->seccomp_ref, &profile, err)) < 0)
		return err_prefix(err, r, "linux.security_context.seccomp");
	_cleanup_free_ char *loaded = NULL;
	if (m->lsm.apparmor && (r = ctr_lsm_apparmor_loaded(&loaded)) < 0)
		log_warning("read AppArmor's loaded profiles: %s, ignoring", strerror(-r));
	struct pod_plan_env env;
	sandbox_plan_env(m, &env);
	return pod_plan_infra_security(&env, p, profile, loaded, ret, err);
}

/* Create sb, whose name the caller reserved, to the end: made, or rolled
 * back (the name then freed, or held by what could not be undone). call
 * has no deadline: the creation goes on past its caller's. */
static int create_reserved(struct sandbox_mgr *m, const struct cric_call *call,
			   const struct pod_plan *p, const struct pod_infra_security *sec,
			   struct sandbox *sb, char id[65], struct cric_err *err)
{
	char key[NAME_KEY_MAX + 1];
	sandbox_name_key(sb, key, sizeof(key));
	int r = enter(m, sb);
	if (r < 0) {
		name_created(m->names, key, sb->id, false, false);
		sandbox_free(sb);
		return r;
	}
	log_set_pod(sb->id);
	log_info("run pod sandbox %s_%s (uid %s, attempt %u, handler %s)", sb->name, sb->namespace,
		 sb->uid, sb->attempt, sb->handler);
	r = record_save(m, sb);
	if (r < 0)
		err_set(err, r, "save the pod's record: %s", strerror(-r));
	else
		r = create(m, call, sb, p, sec, err);
	if (r == 0) {
		pthread_mutex_lock(&m->lock);
		sb->state = SB_READY;
		pthread_mutex_unlock(&m->lock);
		if ((r = record_save(m, sb)) < 0)
			err_set(err, r, "save the pod's record: %s", strerror(-r));
	}
	if (r < 0) {
		log_warning("run pod sandbox failed, rolling back: %s", err ? err->msg : "");
		bool kept = roll_back(m, call, sb);
		name_created(m->names, key, sb->id, false, kept);
	} else {
		memcpy(id, sb->id, 65);
		log_info("pod sandbox ready%s%s", sb->ips[0] ? ", ip " : "",
			 sb->ips[0] ? sb->ips[0] : "");
		name_created(m->names, key, sb->id, true, false);
	}
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	log_set_pod(NULL);
	return r;
}

int sandbox_run(struct sandbox_mgr *m, const struct cric_call *call, const struct pod_plan *p,
		const void *config, size_t config_len, char id[65], struct cric_err *err)
{
	_cleanup_(pod_infra_security_done) struct pod_infra_security sec = { 0 };
	int r = infra_security(m, p, &sec, err);
	if (r < 0)
		return r;
	struct sandbox *sb = sandbox_from_plan(m, p, config, config_len);
	if (!sb)
		return -ENOMEM;
	char key[NAME_KEY_MAX + 1], holder[65];
	sandbox_name_key(sb, key, sizeof(key));
	enum name_reservation res;
	/* A retry of a creation in progress waits for it, within its own
	 * deadline. */
	r = name_reserve(m->names, key, sb->id, call ? call->deadline_ns : 0, &res, holder);
	if (r < 0 || res != NAME_NEW) {
		if (r == -ETIMEDOUT)
			err_set(err, r,
				"pod sandbox %s_%s_%s_%u is still being created (as %s) by an "
				"earlier call",
				sb->name, sb->namespace, sb->uid, sb->attempt, holder);
		else if (r < 0)
			err_set(err, r, "reserve the pod's name: %s", strerror(-r));
		else if (res == NAME_HELD)
			r = err_set(err, -EEXIST,
				    "pod sandbox name \"%s_%s_%s_%u\" is reserved by sandbox %s",
				    sb->name, sb->namespace, sb->uid, sb->attempt, holder);
		else
			memcpy(id, holder, 65); /* made by an earlier call: its answer */
		if (r == 0)
			log_info("run pod sandbox %s_%s (uid %s, attempt %u): a retry, answered "
				 "with sandbox %s",
				 sb->name, sb->namespace, sb->uid, sb->attempt, holder);
		sandbox_free(sb);
		return r;
	}
	struct cric_call creation = call ? *call : (struct cric_call){ 0 };
	creation.deadline_ns = 0;
	return create_reserved(m, &creation, p, &sec, sb, id, err);
}

/* ---- Stop / Remove ---- */

int sandbox_stop(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		 struct cric_err *err)
{
	struct sandbox *sb;
	int r = lookup(m, id, &sb, err);
	if (r == -ENOENT)
		return 0; /* CRI: stopping an unknown sandbox succeeds */
	if (r < 0)
		return r;
	pthread_mutex_lock(&sb->op);
	if (!sb->removed) {
		log_set_pod(sb->id);
		r = m->on_pod_stop ? m->on_pod_stop(m->hooks_userdata, sb->id, call, err) : 0;
		if (r == 0)
			r = release_runtime(m, call, sb, err);
		pthread_mutex_lock(&m->lock);
		if (r == 0)
			sb->state = SB_NOTREADY;
		pthread_mutex_unlock(&m->lock);
		int k = record_save(m, sb);
		if (r == 0 && k < 0)
			r = err_set(err, k, "save the pod's record: %s", strerror(-k));
		if (r == 0)
			log_info("pod sandbox stopped");
		log_set_pod(NULL);
	}
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	return r;
}

int sandbox_remove(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		   struct cric_err *err)
{
	struct sandbox *sb = NULL;
	int r = lookup(m, id, &sb, err);
	if (r == -ENOENT)
		return 0; /* CRI: removing an unknown sandbox succeeds */
	if (r < 0 || !sb) /* lookup() fills sb on success */
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&sb->op);
	if (!sb->removed) {
		log_set_pod(sb->id);
		r = m->on_pod_remove ? m->on_pod_remove(m->hooks_userdata, sb->id, call, err) : 0;
		if (r == 0)
			r = release_all(m, call, sb, err);
		if (r == 0)
			r = record_delete(m, sb->id);
		char key[NAME_KEY_MAX + 1];
		sandbox_name_key(sb, key, sizeof(key));
		pthread_mutex_lock(&m->lock);
		if (r == 0)
			table_remove_locked(m, sb);
		else
			sb->state = SB_NOTREADY;
		pthread_mutex_unlock(&m->lock);
		if (r < 0) {
			record_save(m, sb);
		} else {
			name_release(m->names, key, sb->id);
			log_info("pod sandbox removed");
		}
		log_set_pod(NULL);
	}
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	return r;
}

/* ---- start-up ---- */

int sandbox_mgr_new(const struct sandbox_mgr_config *cfg, struct sandbox_mgr **ret,
		    struct cric_err *err)
{
	struct sandbox_mgr *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->cgroups, NULL);
	m->netd = cfg->netd;
	m->on_pod_stop = cfg->on_pod_stop;
	m->on_pod_remove = cfg->on_pod_remove;
	m->hooks_userdata = cfg->hooks_userdata;
	m->shm_size = cfg->shm_size ? cfg->shm_size : SANDBOX_SHM_SIZE;
	snprintf(m->cgroup_driver, sizeof(m->cgroup_driver), "%s", cfg->cgroup_driver);
	snprintf(m->default_handler, sizeof(m->default_handler), "%s", cfg->default_handler);
	int r = cgroup_resolve_parent("cgroupfs", cfg->cgroup_root, m->cgroup_root,
				      sizeof(m->cgroup_root), err);
	if (r < 0) {
		sandbox_mgr_free(m);
		return err_prefix(err, r, "runtimed.cgroup_root");
	}
	_cleanup_free_ char *records_dir = path_join(cfg->state_dir, "sandboxes");
	m->sandboxes_dir = path_join(cfg->run_dir, "sandboxes");
	m->pause_rootfs = path_join(cfg->run_dir, "pause-rootfs");
	m->network_file = path_join(cfg->state_dir, "network.json");
	m->runtimes_dir = path_join(cfg->run_dir, "runtimes");
	m->netd_pin_dir = path_join(cfg->netd_run_dir ? cfg->netd_run_dir : "", "netns");
	m->netd_userns_dir = path_join(cfg->netd_run_dir ? cfg->netd_run_dir : "", "userns");
	m->handlers = calloc(cfg->n_handlers ? cfg->n_handlers : 1, sizeof(*m->handlers));
	if (!records_dir || !m->sandboxes_dir || !m->pause_rootfs || !m->network_file ||
	    !m->runtimes_dir || !m->netd_pin_dir || !m->netd_userns_dir || !m->handlers) {
		sandbox_mgr_free(m);
		return -ENOMEM;
	}
	memcpy(m->handlers, cfg->handlers, cfg->n_handlers * sizeof(*m->handlers));
	m->n_handlers = cfg->n_handlers;
	for (size_t i = 0; i < m->n_handlers; i++) {
		if ((r = mkdir_p(m->handlers[i].root, 0700)) < 0) {
			sandbox_mgr_free(m);
			return err_set(err, r, "create \"%s\": %s", m->handlers[i].root,
				       strerror(-r));
		}
	}
	if ((r = mkdir_p(m->sandboxes_dir, 0711)) < 0) {
		sandbox_mgr_free(m);
		return err_set(err, r, "create the sandbox directories: %s", strerror(-r));
	}
	/* What a kill -9 mid-write left, before anything reads a record (the
	 * record store sweeps its own directory). */
	(void)sweep_atomic_temps(cfg->state_dir, "runtimed state");
	if ((r = name_table_new(&m->names)) < 0 ||
	    (r = record_store_open(records_dir, "pod records", &m->records, err)) < 0) {
		sandbox_mgr_free(m);
		return r;
	}
	ctr_lsm_detect(&m->lsm);
	snprintf(m->lsm.default_error, sizeof(m->lsm.default_error), "%s",
		 cfg->apparmor_default_error ? cfg->apparmor_default_error : "");
	ctr_seccomp_host_detect(&m->seccomp_host);
	if (cfg->pause_binary && *cfg->pause_binary) {
		struct cric_err e;
		if (infra_prepare_rootfs(m, cfg->pause_binary, &e) == 0)
			m->have_pause = true;
		else
			log_warning("no infra process for pods sharing a PID namespace: %s", e.msg);
	}
	char perr[256];
	_cleanup_json_ json_t *net = NULL;
	if (json_load_path(m->network_file, 64 * 1024, &net, perr, sizeof(perr)) == 0) {
		const char *c = json_string_value(json_object_get(net, "pod_cidr"));
		struct cric_err e;
		if (c && pod_cidrs_set_locked(m, c, &e) < 0)
			log_warning("stored pod CIDR ignored: %s", e.msg);
	}
	recover(m);
	*ret = m;
	return 0;
}

struct sandbox_mgr *sandbox_mgr_free(struct sandbox_mgr *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		sandbox_free(m->items[i]);
	free(m->items);
	record_store_free(m->records);
	name_table_free(m->names);
	free(m->sandboxes_dir);
	free(m->pause_rootfs);
	free(m->network_file);
	free(m->runtimes_dir);
	free(m->netd_pin_dir);
	free(m->netd_userns_dir);
	free(m->handlers);
	strv_clear(m->pod_cidrs, MAX_POD_CIDRS);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->cgroups);
	free(m);
	return NULL;
}
