#include "pods.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/spawn.h"
#include "cniconf.h"
#include "cniresult.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/ipc.h"
#include "common/log.h"
#include "netns.h"

#define RECORD_VERSION   1
#define RECORD_MAX_BYTES (CNI_CONF_MAX_BYTES + SPAWN_OUTPUT_MAX + 64 * 1024)
#define CNI_ARGS_MAX     1024

struct pods {
	char *results_dir;
	char *netns_dir;
	char *userns_dir;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	char (*busy)[65]; /* ids with a call in progress */
	size_t n_busy, cap_busy;
};

/* ---- one call per pod at a time ---- */

static bool is_busy(const struct pods *p, const char *id)
{
	for (size_t i = 0; i < p->n_busy; i++)
		if (strcmp(p->busy[i], id) == 0)
			return true;
	return false;
}

static int pod_lock(struct pods *p, const char *id)
{
	int r = 0;
	pthread_mutex_lock(&p->lock);
	while (is_busy(p, id))
		pthread_cond_wait(&p->changed, &p->lock);
	if (p->n_busy == p->cap_busy) {
		size_t ncap = p->cap_busy ? p->cap_busy * 2 : 16;
		char(*n)[65] = realloc(p->busy, ncap * sizeof(*n));
		if (n) {
			p->busy = n;
			p->cap_busy = ncap;
		} else {
			r = -ENOMEM;
		}
	}
	if (r == 0)
		snprintf(p->busy[p->n_busy++], sizeof(p->busy[0]), "%s", id);
	pthread_mutex_unlock(&p->lock);
	return r;
}

static void pod_unlock(struct pods *p, const char *id)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n_busy; i++)
		if (strcmp(p->busy[i], id) == 0) {
			memcpy(p->busy[i], p->busy[--p->n_busy], sizeof(p->busy[0]));
			break;
		}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

struct pod_guard {
	struct pods *p;
	const char *id;
};

static void pod_guard_release(struct pod_guard *g)
{
	if (g->p)
		pod_unlock(g->p, g->id);
}
#define _cleanup_pod_guard_ _cleanup_(pod_guard_release)

static int pod_guard_take(struct pod_guard *g, struct pods *p, const char *id)
{
	int r = pod_lock(p, id);
	if (r == 0) {
		g->p = p;
		g->id = id;
	}
	return r;
}

/* ---- paths and records ---- */

static char *record_path(const struct pods *p, const char *id)
{
	char *s = NULL;
	return asprintf(&s, "%s/%s.json", p->results_dir, id) < 0 ? NULL : s;
}

static char *pin_path(const struct pods *p, const char *id)
{
	return path_join(p->netns_dir, id);
}

/* The pod's own user namespace, for pods that have one. */
static char *user_pin_path(const struct pods *p, const char *id)
{
	return path_join(p->userns_dir, id);
}

/* Remove both pins of a pod (each idempotent). */
static int pins_remove(const struct pods *p, const char *id, struct cric_err *err)
{
	_cleanup_free_ char *pin = pin_path(p, id);
	_cleanup_free_ char *upin = user_pin_path(p, id);
	if (!pin || !upin)
		return -ENOMEM;
	int r = netns_remove(pin, err);
	return r < 0 ? r : netns_remove(upin, err);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *rec_str(const json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

static bool printable(const char *s, size_t max)
{
	size_t n = 0;
	for (; s && *s; s++, n++)
		if (n >= max || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return s != NULL;
}

/* Everything undo() and network_from_record() rely on, checked: the state
 * dir is ours, but a record is still input (disk errors, manual edits). */
static int record_validate(const struct pods *p, const char *id, const json_t *rec,
			   struct cric_err *err)
{
	_cleanup_free_ char *pin = pin_path(p, id);
	if (!pin)
		return -ENOMEM;
	const char *state = rec_str(rec, "state");
	const json_t *rc = json_object_get(rec, "runtimeConfig");
	const json_t *pod = json_object_get(rec, "pod");
	if (!json_is_object(rec) ||
	    json_integer_value(json_object_get(rec, "version")) != RECORD_VERSION)
		return err_set(err, -EBADMSG, "unknown record version");
	if (!rec_str(rec, "podId") || strcmp(rec_str(rec, "podId"), id) != 0)
		return err_set(err, -EBADMSG, "\"podId\" does not match");
	if (!state || (strcmp(state, "adding") != 0 && strcmp(state, "ready") != 0))
		return err_set(err, -EBADMSG, "invalid \"state\"");
	if (!rec_str(rec, "netns") || strcmp(rec_str(rec, "netns"), pin) != 0)
		return err_set(err, -EBADMSG, "\"netns\" is not the pod's pin");
	const json_t *uns = json_object_get(rec, "userns");
	_cleanup_free_ char *upin = uns ? user_pin_path(p, id) : NULL;
	if (uns && !upin)
		return -ENOMEM;
	if (uns && (!rec_str(uns, "path") || strcmp(rec_str(uns, "path"), upin) != 0 ||
		    !json_is_integer(json_object_get(uns, "uidHostId")) ||
		    !json_is_integer(json_object_get(uns, "gidHostId")) ||
		    !json_is_integer(json_object_get(uns, "length"))))
		return err_set(err, -EBADMSG, "invalid \"userns\"");
	if (!rec_str(rec, "ifname") || strcmp(rec_str(rec, "ifname"), POD_IFNAME) != 0)
		return err_set(err, -EBADMSG, "invalid \"ifname\"");
	if (!printable(rec_str(rec, "cniArgs"), CNI_ARGS_MAX))
		return err_set(err, -EBADMSG, "invalid \"cniArgs\"");
	if (rc && !json_is_object(rc))
		return err_set(err, -EBADMSG, "invalid \"runtimeConfig\"");
	if (!json_is_object(pod) || !rec_str(pod, "name") || !rec_str(pod, "namespace") ||
	    !rec_str(pod, "uid"))
		return err_set(err, -EBADMSG, "invalid \"pod\"");
	const json_t *network = json_object_get(rec, "network");
	int r = cni_network_check(network, err);
	if (r < 0)
		return err_prefix(err, -EBADMSG, "\"network\"");
	if (strcmp(state, "ready") == 0) {
		_cleanup_free_ struct cni_result *res = malloc(sizeof(*res));
		if (!res)
			return -ENOMEM;
		r = cni_result_parse(json_object_get(rec, "result"), rec_str(network, "cniVersion"),
				     res, err);
		if (r < 0)
			return err_prefix(err, -EBADMSG, "\"result\"");
	}
	return 0;
}

/* 0, -ENOENT (none), -EUCLEAN (unreadable or invalid; err says why). */
static int record_load(const struct pods *p, const char *id, json_t **ret, struct cric_err *err)
{
	_cleanup_free_ char *path = record_path(p, id);
	if (!path)
		return -ENOMEM;
	char why[256];
	json_t *rec = NULL;
	int r = json_load_path(path, RECORD_MAX_BYTES, &rec, why, sizeof(why));
	if (r == -ENOENT)
		return r;
	if (r < 0)
		return err_set(err, -EUCLEAN, "record \"%s\": %s", path, why);
	_cleanup_json_ json_t *doc = rec;
	r = record_validate(p, id, doc, err);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return err_prefix(err, -EUCLEAN, "record \"%s\"", path);
	*ret = TAKE_PTR(doc);
	return 0;
}

static int record_save(const struct pods *p, const char *id, const json_t *rec,
		       struct cric_err *err)
{
	_cleanup_free_ char *path = record_path(p, id);
	if (!path)
		return -ENOMEM;
	int r = json_save_atomic(path, rec, 0600);
	if (r < 0)
		return err_set(err, r, "save \"%s\": %s", path, strerror(-r));
	return 0;
}

static int fsync_dir(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return negative_errno();
	return 0;
}

static int record_remove(const struct pods *p, const char *id, struct cric_err *err)
{
	_cleanup_free_ char *path = record_path(p, id);
	if (!path)
		return -ENOMEM;
	if (unlink(path) < 0 && errno != ENOENT)
		return err_set(err, negative_errno(), "remove \"%s\": %s", path, strerror(errno));
	int r = fsync_dir(p->results_dir);
	if (r < 0)
		return err_set(err, r, "sync \"%s\": %s", p->results_dir, strerror(-r));
	return 0;
}

static json_t *record_new(const struct pods *p, const struct pod_net_spec *spec, const char *pin,
			  const char *cni_args, json_t *runtime_config, json_t *network,
			  const char *conf_file)
{
	json_t *uns = NULL;
	if (spec->userns) {
		_cleanup_free_ char *upin = user_pin_path(p, spec->id);
		if (!upin || !(uns = json_pack("{s:s, s:I, s:I, s:I}", "path", upin, "uidHostId",
					       (json_int_t)spec->userns->uid_host_id, "gidHostId",
					       (json_int_t)spec->userns->gid_host_id, "length",
					       (json_int_t)spec->userns->length)))
			return NULL;
	}
	json_t *rec = json_pack(
	    "{s:i, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:O, s:O, s:s, s:I}", "version",
	    RECORD_VERSION, "podId", spec->id, "state", "adding", "netns", pin, "ifname",
	    POD_IFNAME, "pod", "name", spec->name, "namespace", spec->namespace_, "uid", spec->uid,
	    "cniArgs", cni_args, "runtimeConfig", runtime_config, "network", network, "confFile",
	    conf_file, "createdAt", (json_int_t)now_unix_ns());
	if (rec && uns && json_object_set_new(rec, "userns", uns) < 0)
		return json_decref(rec), NULL;
	if (!rec)
		json_decref(uns);
	return rec;
}

static void attachment_of(const char *id, const json_t *rec, bool pinned, struct cni_attachment *a)
{
	*a = (struct cni_attachment){
		.container_id = id,
		.netns = pinned ? rec_str(rec, "netns") : "",
		.ifname = POD_IFNAME,
		.cni_args = rec_str(rec, "cniArgs"),
		.runtime_config = json_object_get(rec, "runtimeConfig"),
	};
}

static const char *network_name(const json_t *rec)
{
	const char *n = rec_str(json_object_get(rec, "network"), "name");
	return n ? n : "?";
}

/* Undo what rec says was, or may have been, done: the DEL chain (with the
 * result when there is one), the namespace, the record. strict: a DEL
 * failure stops here and is returned (teardown); else it is logged and the
 * rest goes on (rollback of an ADD that never completed). */
static int undo(const struct pods *p, const struct cni_runtime *rt, const char *id,
		const json_t *rec, bool strict, struct cric_err *err)
{
	const char *pin = rec_str(rec, "netns");
	struct cni_attachment a;
	attachment_of(id, rec, netns_is_pinned(pin), &a);
	struct cric_err e = { { 0 } };
	int r =
	    cni_del(rt, json_object_get(rec, "network"), &a, json_object_get(rec, "result"), &e);
	if (r < 0 && strict)
		return err_set(err, r, "network \"%s\": %s", network_name(rec), e.msg);
	if (r < 0)
		log_warning("pod %s: rolling back network \"%s\": %s, ignoring", id,
			    network_name(rec), e.msg);
	r = pins_remove(p, id, err);
	if (r < 0)
		return r;
	return record_remove(p, id, err);
}

/* A record that cannot be read: nothing to run DEL with. Its namespace and
 * the file go; what the plugins hold for the pod (if anything) stays. */
static int drop_unreadable(const struct pods *p, const char *id, const char *why,
			   struct cric_err *err)
{
	log_warning("pod %s: %s; removing its network namespace and record without CNI DEL", id,
		    why);
	int r = pins_remove(p, id, err);
	return r < 0 ? r : record_remove(p, id, err);
}

static int network_from_record(const char *id, const json_t *rec, struct pod_network **ret)
{
	const json_t *result = json_object_get(rec, "result");
	const json_t *network = json_object_get(rec, "network");
	_cleanup_free_ struct cni_result *res = malloc(sizeof(*res));
	if (!res)
		return -ENOMEM;
	int r = cni_result_parse(result, rec_str(network, "cniVersion"), res, NULL);
	if (r < 0)
		return r; /* validated when loaded: cannot happen */

	const struct cni_ip *ips[CNI_RESULT_MAX_IPS];
	size_t n_ips = cni_result_pod_ips(res, ips, ARRAY_SIZE(ips));
	_cleanup_(pod_network_freep) struct pod_network *n = calloc(1, sizeof(*n));
	if (!n || !(n->ips = calloc(n_ips + 1, sizeof(char *))))
		return -ENOMEM;
	snprintf(n->pod_id, sizeof(n->pod_id), "%s", id);
	for (size_t i = 0; i < n_ips; i++)
		if (!(n->ips[i] = strdup(ips[i]->address)))
			return -ENOMEM;
	n->netns_path = strdup(rec_str(rec, "netns"));
	n->netns_present = n->netns_path && netns_is_pinned(n->netns_path);
	const char *upin = rec_str(json_object_get(rec, "userns"), "path");
	n->userns_path = strdup(upin ? upin : "");
	n->result_json = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
	n->network_name = strdup(network_name(rec));
	n->cni_version = strdup(rec_str(network, "cniVersion"));
	n->ifname = strdup(POD_IFNAME);
	if (!n->netns_path || !n->result_json || !n->network_name || !n->cni_version ||
	    !n->ifname || !n->userns_path)
		return -ENOMEM;
	*ret = TAKE_PTR(n);
	return 0;
}

struct pod_network *pod_network_free(struct pod_network *n)
{
	if (!n)
		return NULL;
	free(n->netns_path);
	free(n->userns_path);
	strv_free(n->ips);
	free(n->result_json);
	free(n->network_name);
	free(n->cni_version);
	free(n->ifname);
	free(n);
	return NULL;
}

/* ---- setup ---- */

static bool same_pod(const json_t *rec, const struct pod_net_spec *spec)
{
	const json_t *pod = json_object_get(rec, "pod");
	return strcmp(rec_str(pod, "name"), spec->name) == 0 &&
	       strcmp(rec_str(pod, "namespace"), spec->namespace_) == 0 &&
	       strcmp(rec_str(pod, "uid"), spec->uid) == 0;
}

/* What an earlier call left for this id: 1 with *ret for a pod that is set
 * up; 0 when the way is clear (a crashed setup rolled back, an unreadable
 * record or an orphan pin removed). */
static int clear_the_way(struct pods *p, const struct cni_runtime *rt,
			 const struct pod_net_spec *spec, struct pod_network **ret,
			 struct cric_err *err)
{
	struct cric_err why = { { 0 } };
	_cleanup_json_ json_t *old = NULL;
	int r = record_load(p, spec->id, &old, &why);
	if (r == -EUCLEAN)
		return drop_unreadable(p, spec->id, why.msg, err);
	if (r == -ENOENT)
		return pins_remove(p, spec->id, err);
	if (r < 0)
		return r;
	if (strcmp(rec_str(old, "state"), "ready") != 0) {
		log_notice("pod %s: rolling back an interrupted network setup", spec->id);
		return undo(p, rt, spec->id, old, false, err);
	}
	if (!same_pod(old, spec)) {
		const json_t *pod = json_object_get(old, "pod");
		return err_set(err, -EEXIST, "pod id %s already has a network, for pod \"%s/%s\"",
			       spec->id, rec_str(pod, "namespace"), rec_str(pod, "name"));
	}
	r = network_from_record(spec->id, old, ret);
	return r < 0 ? r : 1;
}

/* Create the namespace and run ADD for a fresh "adding" record (saved);
 * on failure undo it all. On success rec is "ready" with the result. */
static int attach(struct pods *p, const struct cni_runtime *rt, const char *id, json_t *rec,
		  struct cric_err *err)
{
	const char *pin = rec_str(rec, "netns");
	const json_t *uns = json_object_get(rec, "userns");
	const struct pod_userns u = {
		.uid_host_id = (uint32_t)json_integer_value(json_object_get(uns, "uidHostId")),
		.gid_host_id = (uint32_t)json_integer_value(json_object_get(uns, "gidHostId")),
		.length = (uint32_t)json_integer_value(json_object_get(uns, "length")),
	};
	int r =
	    uns ? netns_create_userns(rec_str(uns, "path"), pin, &u, err) : netns_create(pin, err);
	if (r < 0) {
		struct cric_err ignored;
		record_remove(p, id, &ignored);
		return err_prefix(err, r, "create the network namespace");
	}
	struct cni_attachment a;
	attachment_of(id, rec, true, &a);
	json_t *result = NULL;
	struct cric_err e = { { 0 } };
	r = cni_add(rt, json_object_get(rec, "network"), &a, &result, &e);
	if (r == 0) {
		if (json_object_set_new(rec, "result", result) < 0 ||
		    json_object_set_new(rec, "state", json_string("ready")) < 0)
			r = err_set(&e, -ENOMEM, "out of memory");
		else if ((r = record_save(p, id, rec, &e)) < 0)
			err_prefix(&e, r, "record the result");
	}
	if (r < 0) {
		struct cric_err ue = { { 0 } };
		if (undo(p, rt, id, rec, false, &ue) < 0)
			log_warning("pod %s: rollback: %s, ignoring", id, ue.msg);
		return err_set(err, r, "network \"%s\": %s", network_name(rec), e.msg);
	}
	return 0;
}

int pods_setup(struct pods *p, const struct cni_runtime *rt, const char *conf_dir,
	       const struct pod_net_spec *spec, struct pod_network **ret, struct cric_err *err)
{
	int r = pod_net_spec_validate(spec, err);
	if (r < 0)
		return r;
	_cleanup_pod_guard_ struct pod_guard guard = { 0 };
	if ((r = pod_guard_take(&guard, p, spec->id)) < 0)
		return r;
	int64_t start = mono_ms();

	r = clear_the_way(p, rt, spec, ret, err);
	if (r != 0)
		return r < 0 ? r : 0;

	_cleanup_json_ json_t *network = NULL;
	_cleanup_free_ char *conf_file = NULL;
	struct cric_err why = { { 0 } };
	r = cni_network_load(conf_dir, rt->bin_dirs, &network, &conf_file, &why);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return err_set(err, -EAGAIN, "pod network not ready: %s", why.msg);

	_cleanup_json_ json_t *rc = pod_net_spec_runtime_config(spec);
	_cleanup_free_ char *cni_args = pod_net_spec_cni_args(spec);
	_cleanup_free_ char *pin = pin_path(p, spec->id);
	if (!rc || !cni_args || !pin)
		return -ENOMEM;
	_cleanup_json_ json_t *rec = record_new(p, spec, pin, cni_args, rc, network, conf_file);
	if (!rec)
		return -ENOMEM;
	if ((r = record_save(p, spec->id, rec, err)) < 0)
		return r;
	if ((r = attach(p, rt, spec->id, rec, err)) < 0)
		return r;
	if ((r = network_from_record(spec->id, rec, ret)) < 0)
		return r;
	log_info("pod %s: network \"%s\" set up in %lld ms, %s", spec->id, network_name(rec),
		 (long long)(mono_ms() - start), (*ret)->ips[0] ? (*ret)->ips[0] : "no address");
	return 0;
}

/* ---- teardown, status ---- */

int pods_teardown(struct pods *p, const struct cni_runtime *rt, const char *pod_id,
		  bool *ret_was_known, struct cric_err *err)
{
	bool ignored, *was_known = ret_was_known ? ret_was_known : &ignored;
	if (!id_is_valid(pod_id))
		return err_set(err, -EINVAL, "pod_id must be 64 lowercase hex characters");
	_cleanup_pod_guard_ struct pod_guard guard = { 0 };
	int r = pod_guard_take(&guard, p, pod_id);
	if (r < 0)
		return r;
	int64_t start = mono_ms();

	struct cric_err why = { { 0 } };
	_cleanup_json_ json_t *rec = NULL;
	r = record_load(p, pod_id, &rec, &why);
	if (r == -ENOENT) {
		_cleanup_free_ char *pin = pin_path(p, pod_id);
		_cleanup_free_ char *upin = user_pin_path(p, pod_id);
		struct stat st;
		if (!pin || !upin)
			return -ENOMEM;
		*was_known = lstat(pin, &st) == 0 || lstat(upin, &st) == 0;
		return pins_remove(p, pod_id, err);
	}
	*was_known = true;
	if (r == -EUCLEAN)
		return drop_unreadable(p, pod_id, why.msg, err);
	if (r < 0)
		return r;
	if ((r = undo(p, rt, pod_id, rec, true, err)) < 0)
		return r;
	log_info("pod %s: network \"%s\" torn down in %lld ms", pod_id, network_name(rec),
		 (long long)(mono_ms() - start));
	return 0;
}

int pods_status(struct pods *p, const struct cni_runtime *rt, const char *pod_id, bool check,
		struct pod_network **ret, bool *ret_checked, struct cric_err *err)
{
	bool ignored, *checked = ret_checked ? ret_checked : &ignored;
	if (!id_is_valid(pod_id))
		return err_set(err, -EINVAL, "pod_id must be 64 lowercase hex characters");
	_cleanup_pod_guard_ struct pod_guard guard = { 0 };
	int r = pod_guard_take(&guard, p, pod_id);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *rec = NULL;
	r = record_load(p, pod_id, &rec, err);
	if (r == -ENOENT || (r == 0 && strcmp(rec_str(rec, "state"), "ready") != 0))
		return err_set(err, -ENOENT, "pod %s has no network", pod_id);
	if (r < 0)
		return r;
	*checked = false;
	if (check && cni_check_supported(json_object_get(rec, "network"))) {
		const char *pin = rec_str(rec, "netns");
		if (!netns_is_pinned(pin))
			return err_set(err, -EIO, "network namespace \"%s\" is gone", pin);
		struct cni_attachment a;
		attachment_of(pod_id, rec, true, &a);
		r = cni_check(rt, json_object_get(rec, "network"), &a,
			      json_object_get(rec, "result"), err);
		if (r < 0)
			return err_prefix(err, r, "network \"%s\"", network_name(rec));
		*checked = true;
	}
	return network_from_record(pod_id, rec, ret);
}

/* ---- open, reconcile ---- */

static void reconcile_records(struct pods *p, const struct cni_runtime *rt, size_t *n_known)
{
	(void)sweep_atomic_temps(p->results_dir, "pod network records");
	struct dirent **list = NULL;
	int n = scandir(p->results_dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		char id[65];
		size_t len = strlen(name);
		if (name[0] == '.') {
			/* "." and ".." */
		} else if (len != 64 + 5 || strcmp(name + 64, ".json") != 0) {
			log_warning("unexpected file \"%s\" in \"%s\", ignoring", name,
				    p->results_dir);
		} else {
			snprintf(id, sizeof(id), "%.64s", name);
			struct cric_err e = { { 0 } };
			_cleanup_json_ json_t *rec = NULL;
			int r = id_is_valid(id) ? record_load(p, id, &rec, &e) : -EUCLEAN;
			if (r < 0) {
				log_warning("pod %s: %s, ignoring until its teardown", id,
					    e.msg[0] ? e.msg : strerror(-r));
			} else if (strcmp(rec_str(rec, "state"), "ready") != 0) {
				log_notice("pod %s: rolling back a network setup interrupted by a "
					   "restart",
					   id);
				if (undo(p, rt, id, rec, false, &e) < 0)
					log_warning("pod %s: rollback: %s, ignoring", id, e.msg);
			} else {
				(*n_known)++;
				if (!netns_is_pinned(rec_str(rec, "netns")))
					log_notice("pod %s: network namespace is gone (reboot?); "
						   "its CNI state is kept for teardown",
						   id);
			}
		}
		free(list[i]);
	}
	free(list);
}

static void reconcile_pins(struct pods *p, const char *dir)
{
	struct dirent **list = NULL;
	int n = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			_cleanup_free_ char *rec = id_is_valid(name) ? record_path(p, name) : NULL;
			_cleanup_free_ char *pin = path_join(dir, name);
			struct stat st;
			struct cric_err e = { { 0 } };
			if (pin && !(rec && stat(rec, &st) == 0)) {
				log_notice("removing namespace pin \"%s\": no pod has it", pin);
				if (netns_remove(pin, &e) < 0)
					log_warning("%s, ignoring", e.msg);
			}
		}
		free(list[i]);
	}
	free(list);
}

int pods_open(const char *state_dir, const char *run_dir, const struct cni_runtime *rt,
	      struct pods **ret, struct cric_err *err)
{
	_cleanup_free_ struct pods *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->results_dir = path_join(state_dir, "results");
	p->netns_dir = path_join(run_dir, "netns");
	p->userns_dir = path_join(run_dir, "userns");
	if (!p->results_dir || !p->netns_dir || !p->userns_dir) {
		free(p->results_dir);
		free(p->netns_dir);
		free(p->userns_dir);
		return -ENOMEM;
	}
	const char *dirs[] = { p->results_dir, p->netns_dir, p->userns_dir };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int r = mkdir_p(dirs[i], 0700);
		if (r < 0) {
			err_set(err, r, "create \"%s\": %s", dirs[i], strerror(-r));
			free(p->results_dir);
			free(p->netns_dir);
			free(p->userns_dir);
			return r;
		}
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);

	size_t n_known = 0;
	reconcile_records(p, rt, &n_known);
	reconcile_pins(p, p->netns_dir);
	reconcile_pins(p, p->userns_dir);
	log_info("%zu pod network%s known", n_known, n_known == 1 ? "" : "s");
	*ret = TAKE_PTR(p);
	return 0;
}

struct pods *pods_free(struct pods *p)
{
	if (!p)
		return NULL;
	free(p->results_dir);
	free(p->netns_dir);
	free(p->userns_dir);
	free(p->busy);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
	free(p);
	return NULL;
}
