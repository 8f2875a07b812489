/* IPC adapter of the pod calls: CRI RunPodSandbox, StopPodSandbox,
 * RemovePodSandbox, PodSandboxStatus and ListPodSandbox into sandbox.h's
 * calls, and pod snapshots into CRI replies (the list's filters included).
 * No domain logic here: the plan (podplan.c) checks the request. */
#include "cri.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/ids.h"
#include "common/pbjson.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "cri-container.h"
#include "cri-events.h"
#include "podplan.h"
#include "runtime.h"
#include "sandbox.h"

int cri_run_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__RunPodSandboxRequest *req =
	    (const Runtime__V1__RunPodSandboxRequest *)in;
	if (req->config && req->config->metadata)
		log_set_pod_meta(req->config->metadata->name, req->config->metadata->namespace_);
	struct sandbox_mgr *m = runtimed_sandboxes(ud);
	char newid[65], id[65];
	int r = id_random_hex(newid, sizeof(newid), 32);
	if (r < 0)
		return err_set(err, r, "make an id: %s", strerror(-r));
	_cleanup_free_ struct pod_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	struct pod_plan_env env;
	sandbox_plan_env(m, &env);
	if ((r = pod_plan_make(&env, req, newid, p, err)) < 0)
		return r;
	/* Kept with the pod, opaque to it: status and list hand back its
	 * labels, annotations and (verbose) the whole config. */
	size_t len = protobuf_c_message_get_packed_size(&req->config->base);
	_cleanup_free_ uint8_t *config = malloc(len ? len : 1);
	if (!config)
		return -ENOMEM;
	protobuf_c_message_pack(&req->config->base, config);
	if ((r = sandbox_run(m, call, p, config, len, id, err)) < 0)
		return r;
	cri_event_send(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT, id,
		       id);
	cri_event_send(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT, id,
		       id);
	/* After its STARTED: the STOPPED of an infra death follows it. */
	runtimed_watch_pod(ud, id);
	_cleanup_pb_ Runtime__V1__RunPodSandboxResponse *resp =
	    pb_new(&runtime__v1__run_pod_sandbox_response__descriptor);
	if (!resp || pb_set_str(&resp->pod_sandbox_id, id) < 0)
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* ---- the events of a pod's stop and removal ---- */

/* What the pod and its containers were before a stop or removal: which of
 * them it stops or removes (so that a repeated call sends nothing), and
 * for a removal the events themselves, built while the pod still has a
 * status. */
struct pod_events {
	char pod_id[65]; /* "": no pod, no events */
	bool pod_ready;
	Runtime__V1__ContainerStatus **ctrs;
	size_t n;
	struct pod_event *pod_deleted;
	struct pod_event **ctr_deleted;
};

static void pod_events_before(void *ud, const struct cric_call *call, const char *id,
			      struct pod_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	struct cric_err err = { { 0 } };
	_cleanup_pb_ Runtime__V1__PodSandboxStatus *st = NULL;
	if (cri_pod_status_of(ud, call, id, &st, &err) < 0 || !st)
		return; /* not found: nothing to stop or remove, no event */
	if (cri_pod_container_statuses(ud, call, st->id, &ev->ctrs, &ev->n, &err) < 0) {
		log_warning("pod %s: %s, no events of its containers", st->id, err.msg);
		ev->n = 0;
	}
	snprintf(ev->pod_id, sizeof(ev->pod_id), "%s", st->id);
	ev->pod_ready = st->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
}

static void pod_events_stopped(void *ud, const struct cric_call *call, struct pod_events *ev)
{
	/* Its containers' exits, each once whoever saw it first. */
	cri_stopped_events(ud, call);
	if (!ev->pod_id[0])
		return;
	/* Unless its infra's death sent it already. */
	if (ev->pod_ready && sandbox_take_stop_event(runtimed_sandboxes(ud), ev->pod_id))
		cri_event_send(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT,
			       ev->pod_id, ev->pod_id);
}

static void pod_events_removed(void *ud, const struct cric_call *call, struct pod_events *ev)
{
	(void)call;
	if (!ev->pod_id[0])
		return;
	for (size_t i = 0; ev->ctr_deleted && i < ev->n; i++)
		cri_event_publish(ud, TAKE_PTR(ev->ctr_deleted[i]));
	cri_event_publish(ud, TAKE_PTR(ev->pod_deleted));
}

static void pod_events_done(struct pod_events *ev)
{
	for (size_t i = 0; i < ev->n; i++) {
		if (ev->ctr_deleted)
			cri_event_free(ev->ctr_deleted[i]);
		protobuf_c_message_free_unpacked(&ev->ctrs[i]->base, NULL);
	}
	free(ev->ctrs);
	free(ev->ctr_deleted);
	cri_event_free(ev->pod_deleted);
}

/* For a removal: the DELETED events, built now (a pod removed without a
 * stop first, which the kubelet never does, gets no STOPPED events). */
static void pod_events_build_deleted(void *ud, const struct cric_call *call, struct pod_events *ev)
{
	if (!ev->pod_id[0])
		return;
	ev->ctr_deleted = calloc(ev->n ? ev->n : 1, sizeof(*ev->ctr_deleted));
	for (size_t i = 0; ev->ctr_deleted && i < ev->n; i++)
		ev->ctr_deleted[i] = cri_event_build(
		    ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT,
		    ev->ctrs[i]->id, ev->pod_id);
	ev->pod_deleted =
	    cri_event_build(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT,
			    ev->pod_id, ev->pod_id);
}

bool cri_pod_infra_exited(void *ud, const char *id)
{
	struct cric_call call = {
		.daemon = "runtimed",
		.method = "infra-exit",
		.deadline_ns = deadline_in_ms(30000),
	};
	if (sandbox_infra_exited(runtimed_sandboxes(ud), id))
		cri_event_send(ud, &call,
			       RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT, id, id);
	return true;
}

int cri_stop_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__StopPodSandboxRequest *req =
	    (const Runtime__V1__StopPodSandboxRequest *)in;
	struct pod_events ev;
	pod_events_before(ud, call, req->pod_sandbox_id, &ev);
	int r = sandbox_stop(runtimed_sandboxes(ud), call, req->pod_sandbox_id, err);
	if (r == 0)
		pod_events_stopped(ud, call, &ev);
	pod_events_done(&ev);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__stop_pod_sandbox_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

int cri_remove_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			   ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__RemovePodSandboxRequest *req =
	    (const Runtime__V1__RemovePodSandboxRequest *)in;
	struct pod_events ev;
	cri_stopped_events(ud, call); /* before the DELETED events */
	pod_events_before(ud, call, req->pod_sandbox_id, &ev);
	pod_events_build_deleted(ud, call, &ev);
	int r = sandbox_remove(runtimed_sandboxes(ud), call, req->pod_sandbox_id, err);
	if (r == 0)
		pod_events_removed(ud, call, &ev);
	pod_events_done(&ev);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__remove_pod_sandbox_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

/* ---- snapshots into CRI messages ---- */

static Runtime__V1__PodSandboxConfig *config_of(const uint8_t *config, size_t len)
{
	return runtime__v1__pod_sandbox_config__unpack(NULL, len, config);
}

static Runtime__V1__PodSandboxState state_of(enum sandbox_state state)
{
	return state == SANDBOX_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				      : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
}

static Runtime__V1__PodSandboxMetadata *metadata_of(const char *name, const char *uid,
						    const char *namespace, uint32_t attempt)
{
	_cleanup_pb_ Runtime__V1__PodSandboxMetadata *md =
	    pb_new(&runtime__v1__pod_sandbox_metadata__descriptor);
	if (!md || pb_set_str(&md->name, name) < 0 || pb_set_str(&md->uid, uid) < 0 ||
	    pb_set_str(&md->namespace_, namespace) < 0)
		return NULL;
	md->attempt = attempt;
	return TAKE_PTR(md);
}

static int info_json(const struct sandbox_snapshot *s, const Runtime__V1__PodSandboxConfig *cfg,
		     char **ret)
{
	json_t *cni = NULL;
	if (s->cni_result && *s->cni_result)
		cni = json_loads(s->cni_result, 0, NULL);
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:o?, s:o?, s:s}", "id", s->brief.id, "pid",
	    (int)s->infra_pid, "netns", s->netns, "ipc_namespace", s->ipc_ns, "uts_namespace",
	    s->uts_ns, "cgroup", s->cgroup, "runtime_handler", s->brief.handler, "sandbox_dir",
	    s->dir, "cni_result", cni, "config", pb_to_json(&cfg->base), "state",
	    s->brief.state == SANDBOX_READY ? "ready" : "notready");
	if (!doc)
		return -ENOMEM;
	*ret = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	return *ret ? 0 : -ENOMEM;
}

static int network_of(const struct sandbox_snapshot *s, Runtime__V1__PodSandboxStatus *st)
{
	if (!(st->network = pb_new(&runtime__v1__pod_sandbox_network_status__descriptor)) ||
	    pb_set_str(&st->network->ip, s->ips[0] ? s->ips[0] : "") < 0)
		return -ENOMEM;
	size_t nips = 0;
	while (nips < SANDBOX_MAX_IPS && s->ips[nips])
		nips++;
	if (nips > 1 && !(st->network->additional_ips = calloc(nips - 1, sizeof(void *))))
		return -ENOMEM;
	for (size_t i = 1; i < nips; i++) {
		Runtime__V1__PodIP *ip = pb_new(&runtime__v1__pod_ip__descriptor);
		if (!ip)
			return -ENOMEM;
		st->network->additional_ips[st->network->n_additional_ips++] = ip;
		if (pb_set_str(&ip->ip, s->ips[i]) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int namespaces_of(const struct sandbox_snapshot *s, Runtime__V1__PodSandboxStatus *st)
{
	if (!(st->linux = pb_new(&runtime__v1__linux_pod_sandbox_status__descriptor)) ||
	    !(st->linux->namespaces = pb_new(&runtime__v1__namespace__descriptor)) ||
	    !(st->linux->namespaces->options = pb_new(&runtime__v1__namespace_option__descriptor)))
		return -ENOMEM;
	Runtime__V1__NamespaceOption *o = st->linux->namespaces->options;
	o->network = (Runtime__V1__NamespaceMode)s->net_mode;
	o->ipc = (Runtime__V1__NamespaceMode)s->ipc_mode;
	o->pid = (Runtime__V1__NamespaceMode)s->pid_mode;
	return 0;
}

static int build_status(const struct sandbox_snapshot *s, bool verbose,
			Runtime__V1__PodSandboxStatusResponse **ret)
{
	_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg =
	    config_of(s->brief.config, s->brief.config_len);
	if (!cfg)
		return -EIO;
	_cleanup_pb_ Runtime__V1__PodSandboxStatusResponse *resp =
	    pb_new(&runtime__v1__pod_sandbox_status_response__descriptor);
	if (!resp || !(resp->status = pb_new(&runtime__v1__pod_sandbox_status__descriptor)))
		return -ENOMEM;
	Runtime__V1__PodSandboxStatus *st = resp->status;
	resp->timestamp = now_unix_ns();
	if (pb_set_str(&st->id, s->brief.id) < 0 ||
	    !(st->metadata =
		  metadata_of(s->brief.name, s->brief.uid, s->brief.namespace, s->brief.attempt)) ||
	    pb_set_str(&st->runtime_handler, s->brief.handler) < 0)
		return -ENOMEM;
	st->state = state_of(s->brief.state);
	st->created_at = s->brief.created_at;
	if (network_of(s, st) < 0 || namespaces_of(s, st) < 0 ||
	    pb_map_copy(&st->base, "labels", &cfg->base, "labels") < 0 ||
	    pb_map_copy(&st->base, "annotations", &cfg->base, "annotations") < 0)
		return -ENOMEM;
	if (verbose) {
		_cleanup_free_ char *info = NULL;
		if (info_json(s, cfg, &info) < 0 ||
		    pb_map_add(&resp->base, "info", "info", info) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(resp);
	return 0;
}

int cri_pod_sandbox_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			   ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__PodSandboxStatusRequest *req =
	    (const Runtime__V1__PodSandboxStatusRequest *)in;
	struct sandbox_snapshot *s = NULL;
	int r = sandbox_get(runtimed_sandboxes(ud), call, req->pod_sandbox_id, &s, err);
	if (r < 0)
		return r;
	Runtime__V1__PodSandboxStatusResponse *resp = NULL;
	r = build_status(s, req->verbose, &resp);
	sandbox_snapshot_free(s);
	if (r == -EIO)
		return err_set(err, r, "pod sandbox %s: its stored config does not decode",
			       req->pod_sandbox_id);
	if (r < 0)
		return r;
	*out = &resp->base;
	return 0;
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

/* The list entry of b, or NULL (*oom tells why) when the filter drops it. */
static Runtime__V1__PodSandbox *list_entry(const struct sandbox_brief *b,
					   const Runtime__V1__PodSandboxFilter *f, bool *oom)
{
	*oom = false;
	if (f && f->state && f->state->state != state_of(b->state))
		return NULL;
	_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg = config_of(b->config, b->config_len);
	if (!cfg || (f && !labels_match(cfg, f->label_selector, f->n_label_selector)))
		return NULL;
	_cleanup_pb_ Runtime__V1__PodSandbox *ps = pb_new(&runtime__v1__pod_sandbox__descriptor);
	*oom = true;
	if (!ps)
		return NULL;
	ps->state = state_of(b->state);
	ps->created_at = b->created_at;
	if (pb_set_str(&ps->id, b->id) < 0 ||
	    !(ps->metadata = metadata_of(b->name, b->uid, b->namespace, b->attempt)) ||
	    pb_set_str(&ps->runtime_handler, b->handler) < 0 ||
	    pb_map_copy(&ps->base, "labels", &cfg->base, "labels") < 0 ||
	    pb_map_copy(&ps->base, "annotations", &cfg->base, "annotations") < 0)
		return NULL;
	*oom = false;
	return TAKE_PTR(ps);
}

int cri_list_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Runtime__V1__PodSandboxFilter *f =
	    ((const Runtime__V1__ListPodSandboxRequest *)in)->filter;
	struct sandbox_brief *v = NULL;
	size_t n = 0;
	int r = sandbox_list(runtimed_sandboxes(ud), f ? f->id : NULL, &v, &n, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Runtime__V1__ListPodSandboxResponse *resp =
	    pb_new(&runtime__v1__list_pod_sandbox_response__descriptor);
	if (!resp || (n > 0 && !(resp->items = calloc(n, sizeof(void *)))))
		r = -ENOMEM;
	for (size_t i = 0; i < n && r == 0; i++) {
		bool oom;
		Runtime__V1__PodSandbox *ps = list_entry(&v[i], f, &oom);
		if (ps)
			resp->items[resp->n_items++] = ps;
		else if (oom)
			r = -ENOMEM;
	}
	sandbox_briefs_free(v, n);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* The kept ListPodSandbox entry of b (sandbox.h, sandbox_entry_fn): its
 * PodSandbox packed with the state at READY (0, not on the wire). */
static int entry_pack(const struct sandbox_brief *b, uint8_t **ret, size_t *len)
{
	struct sandbox_brief ready = *b;
	ready.state = SANDBOX_READY;
	bool oom;
	_cleanup_pb_ Runtime__V1__PodSandbox *ps = list_entry(&ready, NULL, &oom);
	if (!ps)
		return oom ? -ENOMEM : -EIO; /* a config that does not parse */
	size_t n = protobuf_c_message_get_packed_size(&ps->base);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&ps->base, buf);
	*ret = buf;
	*len = n;
	return 0;
}

int cri_list_pod_sandbox_packed(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
				ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__PodSandboxFilter *f =
	    ((const Runtime__V1__ListPodSandboxRequest *)in)->filter;
	/* A label selector needs the configs' labels: the full path. */
	if (f && f->n_label_selector)
		return cri_list_pod_sandbox(ud, call, in, out, err);
	struct sandbox_entry *v = NULL;
	size_t n = 0;
	int r =
	    sandbox_list_entries(runtimed_sandboxes(ud), f ? f->id : NULL, entry_pack, &v, &n, err);
	if (r < 0)
		return r;
	const unsigned items_field =
	    pb_field_id(&runtime__v1__list_pod_sandbox_response__descriptor, "items");
	const unsigned state_field = pb_field_id(&runtime__v1__pod_sandbox__descriptor, "state");
	_cleanup_pb_ Runtime__V1__ListPodSandboxResponse *resp =
	    pb_new(&runtime__v1__list_pod_sandbox_response__descriptor);
	if (!resp ||
	    !(resp->base.unknown_fields = calloc(n ? n : 1, sizeof(*resp->base.unknown_fields))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		Runtime__V1__PodSandboxState state = state_of(v[i].state);
		if (f && f->state && f->state->state != state)
			continue;
		/* The entry's state, left out when READY (the default). */
		uint8_t st[PB_VARINT_FIELD_MAX];
		size_t n_st = state ? pb_varint_field(st, state_field, state) : 0;
		r = pb_packed_item(items_field, v[i].entry, v[i].len, st, n_st,
				   &resp->base.unknown_fields[resp->base.n_unknown_fields]);
		if (r == 0)
			resp->base.n_unknown_fields++;
	}
	sandbox_entries_free(v, n);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

int cri_pod_status_of(void *ud, const struct cric_call *call, const char *pod_id,
		      Runtime__V1__PodSandboxStatus **ret, struct cric_err *err)
{
	struct sandbox_snapshot *s = NULL;
	int r = sandbox_get(runtimed_sandboxes(ud), call, pod_id, &s, err);
	if (r < 0)
		return r;
	Runtime__V1__PodSandboxStatusResponse *resp = NULL;
	r = build_status(s, false, &resp);
	sandbox_snapshot_free(s);
	if (r < 0)
		return err_set(err, r, "pod sandbox %s: cannot build its status", pod_id);
	*ret = TAKE_PTR(resp->status);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}
