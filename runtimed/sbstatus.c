/* PodSandboxStatus and ListPodSandbox: CRI answers built from the
 * sandboxes; see sandbox.h. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/nspin.h"
#include "common/pbjson.h"
#include "common/pbutil.h"
#include "sandbox-int.h"

/* The state as of now: a READY sandbox whose infra died or whose network
 * namespace is gone (a reboot) is NOTREADY. With the lock held. */
static enum sb_state live_state(const struct sandbox *sb)
{
	if (sb->state != SB_READY)
		return sb->state;
	if (sb->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD &&
	    !proc_alive(sb->infra_pid, sb->infra_start))
		return SB_NOTREADY;
	if (!sb->host_network && !nspin_is_pinned(sb->netns, CLONE_NEWNET))
		return SB_NOTREADY;
	return SB_READY;
}

static Runtime__V1__PodSandboxMetadata *metadata_copy(const struct sandbox *sb)
{
	Runtime__V1__PodSandboxMetadata *md =
	    pb_new(&runtime__v1__pod_sandbox_metadata__descriptor);
	if (!md)
		return NULL;
	md->attempt = sb->attempt;
	if (pb_set_str(&md->name, sb->name) < 0 || pb_set_str(&md->uid, sb->uid) < 0 ||
	    pb_set_str(&md->namespace_, sb->namespace) < 0) {
		protobuf_c_message_free_unpacked(&md->base, NULL);
		return NULL;
	}
	return md;
}

static Runtime__V1__PodSandboxConfig *config_of(const struct sandbox *sb)
{
	return runtime__v1__pod_sandbox_config__unpack(NULL, sb->config_len, sb->config);
}

static int info_json(const struct sandbox *sb, const Runtime__V1__PodSandboxConfig *cfg, char **ret)
{
	json_t *cni = NULL;
	if (sb->cni_result && *sb->cni_result)
		cni = json_loads(sb->cni_result, 0, NULL);
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:o?, s:o?, s:s}", "id", sb->id, "pid",
	    sb->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD ? (int)sb->infra_pid : 0, "netns",
	    sb->netns, "ipc_namespace", sb->host_ipc ? "" : sb->ipc_pin, "uts_namespace",
	    sb->host_network ? "" : sb->uts_pin, "cgroup", sb->cgroup, "runtime_handler",
	    sb->handler, "sandbox_dir", sb->dir, "cni_result", cni, "config",
	    cfg ? pb_to_json(&cfg->base) : NULL, "state", state_name(sb->state));
	if (!doc)
		return -ENOMEM;
	*ret = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	return *ret ? 0 : -ENOMEM;
}

static int build_status(const struct sandbox *sb, enum sb_state st, bool verbose,
			Runtime__V1__PodSandboxStatusResponse **ret)
{
	_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg = config_of(sb);
	if (!cfg)
		return -EIO;
	_cleanup_pb_ Runtime__V1__PodSandboxStatusResponse *resp =
	    pb_new(&runtime__v1__pod_sandbox_status_response__descriptor);
	if (!resp || !(resp->status = pb_new(&runtime__v1__pod_sandbox_status__descriptor)))
		return -ENOMEM;
	Runtime__V1__PodSandboxStatus *s = resp->status;
	resp->timestamp = now_unix_ns();
	if (pb_set_str(&s->id, sb->id) < 0 || !(s->metadata = metadata_copy(sb)) ||
	    pb_set_str(&s->runtime_handler, sb->handler) < 0)
		return -ENOMEM;
	s->state = st == SB_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				  : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
	s->created_at = sb->created_at;
	if (!(s->network = pb_new(&runtime__v1__pod_sandbox_network_status__descriptor)) ||
	    pb_set_str(&s->network->ip, sb->ips[0] ? sb->ips[0] : "") < 0)
		return -ENOMEM;
	size_t nips = 0;
	while (nips < SANDBOX_MAX_IPS && sb->ips[nips])
		nips++;
	if (nips > 1) {
		if (!(s->network->additional_ips = calloc(nips - 1, sizeof(void *))))
			return -ENOMEM;
		for (size_t i = 1; i < nips; i++) {
			Runtime__V1__PodIP *ip = pb_new(&runtime__v1__pod_ip__descriptor);
			if (!ip)
				return -ENOMEM;
			s->network->additional_ips[s->network->n_additional_ips++] = ip;
			if (pb_set_str(&ip->ip, sb->ips[i]) < 0)
				return -ENOMEM;
		}
	}
	if (!(s->linux = pb_new(&runtime__v1__linux_pod_sandbox_status__descriptor)) ||
	    !(s->linux->namespaces = pb_new(&runtime__v1__namespace__descriptor)) ||
	    !(s->linux->namespaces->options = pb_new(&runtime__v1__namespace_option__descriptor)))
		return -ENOMEM;
	Runtime__V1__NamespaceOption *o = s->linux->namespaces->options;
	o->network =
	    sb->host_network ? RUNTIME__V1__NAMESPACE_MODE__NODE : RUNTIME__V1__NAMESPACE_MODE__POD;
	o->ipc =
	    sb->host_ipc ? RUNTIME__V1__NAMESPACE_MODE__NODE : RUNTIME__V1__NAMESPACE_MODE__POD;
	o->pid = sb->pid_mode;
	if (pb_map_copy(&s->base, "labels", &cfg->base, "labels") < 0 ||
	    pb_map_copy(&s->base, "annotations", &cfg->base, "annotations") < 0)
		return -ENOMEM;
	if (verbose) {
		_cleanup_free_ char *info = NULL;
		if (info_json(sb, cfg, &info) < 0 ||
		    pb_map_add(&resp->base, "info", "info", info) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(resp);
	return 0;
}

int sandbox_status(struct sandbox_mgr *m, const char *id, bool verbose,
		   Runtime__V1__PodSandboxStatusResponse **ret, struct cric_err *err)
{
	struct sandbox *sb;
	int r = lookup(m, id, &sb, err);
	if (r < 0)
		return r;
	/* The op lock: a status never sees a half-done stop. Lifecycle calls
	 * are short; the kubelet's relist waits at most for one of them. */
	pthread_mutex_lock(&sb->op);
	pthread_mutex_lock(&m->lock);
	enum sb_state st = live_state(sb);
	pthread_mutex_unlock(&m->lock);
	r = sb->removed ? err_set(err, -ENOENT, "pod sandbox \"%s\" not found", id)
			: build_status(sb, st, verbose, ret);
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	if (r == -EIO)
		return err_set(err, r, "pod sandbox %s: its stored config does not decode", id);
	return r;
}

static bool labels_match(const Runtime__V1__PodSandboxConfig *cfg,
			 Runtime__V1__PodSandboxFilter__LabelSelectorEntry *const *sel, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		for (size_t k = 0; k < cfg->n_labels && !ok; k++)
			ok = strcmp(cfg->labels[k]->key, sel[i]->key) == 0 &&
			     strcmp(cfg->labels[k]->value, sel[i]->value) == 0;
		if (!ok)
			return false;
	}
	return true;
}

int sandbox_list(struct sandbox_mgr *m, const Runtime__V1__PodSandboxFilter *f,
		 Runtime__V1__ListPodSandboxResponse **ret, struct cric_err *err)
{
	(void)err;
	_cleanup_pb_ Runtime__V1__ListPodSandboxResponse *resp =
	    pb_new(&runtime__v1__list_pod_sandbox_response__descriptor);
	if (!resp)
		return -ENOMEM;
	const char *idf = f && f->id && *f->id ? f->id : NULL;
	/* An id filter that is a prefix matches only when unique. */
	struct sandbox *only = NULL;
	if (idf) {
		int r = lookup(m, idf, &only, NULL);
		if (r < 0) {
			*ret = TAKE_PTR(resp);
			return 0;
		}
	}
	pthread_mutex_lock(&m->lock);
	if (m->n > 0 && !(resp->items = calloc(m->n, sizeof(void *)))) {
		pthread_mutex_unlock(&m->lock);
		if (only)
			put(m, only);
		return -ENOMEM;
	}
	int r = 0;
	for (size_t i = 0; i < m->n && r == 0; i++) {
		struct sandbox *sb = m->items[i];
		if (sb->state == SB_CREATING || (only && sb != only))
			continue;
		enum sb_state st = live_state(sb);
		Runtime__V1__PodSandboxState cst =
		    st == SB_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				   : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
		if (f && f->state && f->state->state != cst)
			continue;
		_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg = config_of(sb);
		if (!cfg || (f && !labels_match(cfg, f->label_selector, f->n_label_selector)))
			continue;
		Runtime__V1__PodSandbox *ps = pb_new(&runtime__v1__pod_sandbox__descriptor);
		if (!ps) {
			r = -ENOMEM;
			break;
		}
		resp->items[resp->n_items++] = ps;
		ps->state = cst;
		ps->created_at = sb->created_at;
		if (pb_set_str(&ps->id, sb->id) < 0 || !(ps->metadata = metadata_copy(sb)) ||
		    pb_set_str(&ps->runtime_handler, sb->handler) < 0 ||
		    pb_map_copy(&ps->base, "labels", &cfg->base, "labels") < 0 ||
		    pb_map_copy(&ps->base, "annotations", &cfg->base, "annotations") < 0)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&m->lock);
	if (only)
		put(m, only);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(resp);
	return 0;
}
