/* IPC adapter: CRI container calls <-> the container manager (container.h).
 * Translation only. */
#include "cri-container.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/pbutil.h"
#include "common/log.h"
#include "container.h"
#include "cri-events.h"
#include "ctrres.h"
#include "runtime.h"

/* Container id (as the caller named it) now, or NULL (logged) when it
 * cannot be had. */
static struct ctr_info *info_now(void *ud, const struct cric_call *call, const char *id)
{
	struct ctr_info *i = NULL;
	struct cric_err err = { { 0 } };
	int r = ctr_get(runtimed_containers(ud), call, id, false, &i, &err);
	if (r < 0) {
		if (r != -ENOENT)
			log_warning("container %s: %s, no event", id,
				    err.msg[0] ? err.msg : strerror(-r));
		return NULL;
	}
	return i;
}

/* Send event t of container id (full id). */
static void event(void *ud, const struct cric_call *call, Runtime__V1__ContainerEventType t,
		  const char *id)
{
	struct ctr_info *i = info_now(ud, call, id);
	if (i)
		cri_event_send(ud, call, t, i->id, i->pod_id);
	ctr_info_free(i);
}

void cri_stopped_events(void *ud, const struct cric_call *call)
{
	pthread_mutex_t *lock = runtimed_stop_events_lock(ud);
	pthread_mutex_lock(lock);
	struct ctr_ref *v = NULL;
	size_t n = 0;
	int r = ctr_take_stopped(runtimed_containers(ud), &v, &n);
	if (r < 0)
		log_warning_errno(r, "STOPPED events, sent at the next call");
	for (size_t i = 0; i < n; i++)
		cri_event_send(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT,
			       v[i].id, v[i].pod_id);
	pthread_mutex_unlock(lock);
	free(v);
}

/* Bounds the internal calls made for one exit (the monitor's status, the
 * event's statuses). */
#define EXIT_CALL_MS 30000

bool cri_container_exited(void *ud, const char *id)
{
	struct cric_call call = {
		.daemon = "runtimed",
		.method = "exit",
		.deadline_ns = deadline_in_ms(EXIT_CALL_MS),
	};
	bool done = ctr_exit_check(runtimed_containers(ud), id);
	cri_stopped_events(ud, &call);
	return done;
}

int cri_create_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__CreateContainerRequest *req = (const void *)in;
	if (req->sandbox_config && req->sandbox_config->metadata)
		log_set_pod_meta(req->sandbox_config->metadata->name,
				 req->sandbox_config->metadata->namespace_);
	if (req->config && req->config->image)
		log_set_image(req->config->image->image);
	char id[65];
	int r = ctr_create(runtimed_containers(ud), call, req, id, err);
	if (r < 0)
		return r;
	log_set_container(id);
	event(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT, id);
	_cleanup_pb_ Runtime__V1__CreateContainerResponse *resp =
	    pb_new(&runtime__v1__create_container_response__descriptor);
	if (!resp || pb_set_str(&resp->container_id, id) < 0)
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

int cri_start_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__StartContainerRequest *req = (const void *)in;
	log_set_container(req->container_id);
	int r = ctr_start(runtimed_containers(ud), call, req->container_id, err);
	if (r == 0)
		event(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT,
		      req->container_id);
	/* It may have exited already: its STOPPED follows its STARTED (or
	 * goes alone when the start failed half-way). */
	ctr_start_published(runtimed_containers(ud), req->container_id);
	cri_stopped_events(ud, call);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__start_container_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

int cri_stop_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		       ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__StopContainerRequest *req = (const void *)in;
	log_set_container(req->container_id);
	/* The exit's STOPPED, once, whoever saw it (a stop of a container
	 * that had already stopped is no event). */
	int r = ctr_stop(runtimed_containers(ud), call, req->container_id, req->timeout, err);
	cri_stopped_events(ud, call);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__stop_container_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

int cri_remove_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__RemoveContainerRequest *req = (const void *)in;
	log_set_container(req->container_id);
	/* Removing an unknown container succeeds, and is no event. Its
	 * STOPPED, when due, goes first. */
	struct ctr_info *i = info_now(ud, call, req->container_id);
	cri_stopped_events(ud, call);
	int r = ctr_remove(runtimed_containers(ud), call, req->container_id, err);
	if (r == 0 && i)
		cri_event_send(ud, call, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT,
			       i->id, i->pod_id);
	ctr_info_free(i);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__remove_container_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

int cri_update_container_resources(void *ud, const struct cric_call *call,
				   const ProtobufCMessage *in, ProtobufCMessage **out,
				   struct cric_err *err)
{
	const Runtime__V1__UpdateContainerResourcesRequest *req = (const void *)in;
	if (req->windows)
		return err_set(err, -EINVAL, "windows resources on a Linux runtime");
	int r =
	    ctr_update_resources(runtimed_containers(ud), call, req->container_id, req->linux, err);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__update_container_resources_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

int cri_checkpoint_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			     ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__CheckpointContainerRequest *req = (const void *)in;
	log_set_container(req->container_id);
	int r = ctr_checkpoint(runtimed_containers(ud), call, req->container_id, req->location,
			       req->timeout, err);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__checkpoint_container_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

/* A copy of src into *dst (freeing what was there); src NULL: unchanged. */
static int replace_resources(Runtime__V1__LinuxContainerResources **dst,
			     const Runtime__V1__LinuxContainerResources *src)
{
	if (!src)
		return 0;
	size_t len = protobuf_c_message_get_packed_size(&src->base);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&src->base, buf);
	Runtime__V1__LinuxContainerResources *copy =
	    runtime__v1__linux_container_resources__unpack(NULL, len, buf);
	if (!copy)
		return -ENOMEM;
	if (*dst)
		protobuf_c_message_free_unpacked(&(*dst)->base, NULL);
	*dst = copy;
	return 0;
}

/* sandbox_config_edit_fn: the request's overhead and resources (each when
 * given) replace those of the pod's stored PodSandboxConfig. */
static int edit_pod_resources(void *userdata, const void *config, size_t len, void **out,
			      size_t *out_len, struct cric_err *err)
{
	const Runtime__V1__UpdatePodSandboxResourcesRequest *req = userdata;
	_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg =
	    runtime__v1__pod_sandbox_config__unpack(NULL, len, config);
	if (!cfg)
		return err_set(err, -EIO, "pod sandbox %s: its stored config does not decode",
			       req->pod_sandbox_id);
	if (!cfg->linux &&
	    !(cfg->linux = pb_new(&runtime__v1__linux_pod_sandbox_config__descriptor)))
		return -ENOMEM;
	if (replace_resources(&cfg->linux->overhead, req->overhead) < 0 ||
	    replace_resources(&cfg->linux->resources, req->resources) < 0)
		return -ENOMEM;
	size_t n = protobuf_c_message_get_packed_size(&cfg->base);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&cfg->base, buf);
	*out = buf;
	*out_len = n;
	return 0;
}

/* UpdatePodSandboxResources: recorded only (the kubelet has set the pod's
 * cgroup itself; as the peer runtimes, best effort); verbose
 * PodSandboxStatus shows the values. */
int cri_update_pod_sandbox_resources(void *ud, const struct cric_call *call,
				     const ProtobufCMessage *in, ProtobufCMessage **out,
				     struct cric_err *err)
{
	(void)call;
	const Runtime__V1__UpdatePodSandboxResourcesRequest *req = (const void *)in;
	int r = ctr_res_check(req->overhead, false, err);
	if (r == 0)
		r = ctr_res_check(req->resources, false, err);
	if (r == 0)
		r = sandbox_edit_config(runtimed_sandboxes(ud), req->pod_sandbox_id,
					edit_pod_resources, (void *)req, err);
	if (r < 0)
		return r;
	*out = pb_new(&runtime__v1__update_pod_sandbox_resources_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

static Runtime__V1__ContainerState state_pb(enum ctr_state s)
{
	switch (s) {
	case CTR_CREATED:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	case CTR_RUNNING:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	case CTR_EXITED:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
	default:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
	}
}

/* The CRI Signal enum value of signal number sig (0 when it has none). */
static Runtime__V1__Signal signal_pb(int sig)
{
	const char *a = sig > 0 && sig < 32 ? sigabbrev_np(sig) : NULL;
	char name[32];
	if (!a)
		return RUNTIME__V1__SIGNAL__RUNTIME_DEFAULT;
	snprintf(name, sizeof(name), "SIG%s", a);
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value_by_name(&runtime__v1__signal__descriptor, name);
	return v ? (Runtime__V1__Signal)v->value : RUNTIME__V1__SIGNAL__RUNTIME_DEFAULT;
}

static int user_pb(const struct ctr_info *i, Runtime__V1__ContainerUser **ret)
{
	_cleanup_pb_ Runtime__V1__ContainerUser *u =
	    pb_new(&runtime__v1__container_user__descriptor);
	if (!u || !(u->linux = pb_new(&runtime__v1__linux_container_user__descriptor)))
		return -ENOMEM;
	u->linux->uid = i->uid;
	u->linux->gid = i->gid;
	*ret = TAKE_PTR(u);
	return 0;
}

static int info_json(const struct ctr_info *i, char **ret)
{
	json_t *spec = i->spec ? json_loads(i->spec, 0, NULL) : NULL;
	_cleanup_json_ json_t *doc = json_pack("{s:i, s:s, s:o*}", "pid", (int)i->pid, "sandboxID",
					       i->pod_id, "runtimeSpec", spec);
	*ret = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	return *ret ? 0 : -ENOMEM;
}

static int status_pb(struct ctr_info *i, bool verbose, Runtime__V1__ContainerStatusResponse **ret)
{
	_cleanup_pb_ Runtime__V1__ContainerStatusResponse *resp =
	    pb_new(&runtime__v1__container_status_response__descriptor);
	Runtime__V1__ContainerStatus *s =
	    resp ? pb_new(&runtime__v1__container_status__descriptor) : NULL;
	if (!s)
		return -ENOMEM;
	resp->status = s;
	Runtime__V1__ContainerConfig *cfg = i->config;
	/* What the caller sent moves over as it is (exact mounts). */
	s->metadata = TAKE_PTR(cfg->metadata);
	s->image = TAKE_PTR(cfg->image);
	s->mounts = TAKE_PTR(cfg->mounts);
	s->n_mounts = cfg->n_mounts;
	cfg->n_mounts = 0;
	if (pb_set_str(&s->id, i->id) < 0 || pb_set_str(&s->image_ref, i->image_ref) < 0 ||
	    pb_set_str(&s->image_id, i->image_id) < 0 || pb_set_str(&s->reason, i->reason) < 0 ||
	    pb_set_str(&s->message, i->message) < 0 || pb_set_str(&s->log_path, i->log_path) < 0 ||
	    pb_map_copy(&s->base, "labels", &cfg->base, "labels") < 0 ||
	    pb_map_copy(&s->base, "annotations", &cfg->base, "annotations") < 0 ||
	    user_pb(i, &s->user) < 0)
		return -ENOMEM;
	/* As created, then as updated (UpdateContainerResources). */
	if (cfg->linux && cfg->linux->resources) {
		if (!(s->resources = pb_new(&runtime__v1__container_resources__descriptor)))
			return -ENOMEM;
		s->resources->linux = TAKE_PTR(cfg->linux->resources);
	}
	s->state = state_pb(i->state);
	s->created_at = i->created_at;
	s->started_at = i->started_at;
	s->finished_at = i->finished_at;
	s->exit_code = i->exit_code;
	s->stop_signal = signal_pb(i->stop_signal);
	if (verbose) {
		_cleanup_free_ char *info = NULL;
		if (info_json(i, &info) < 0 || pb_map_add(&resp->base, "info", "info", info) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(resp);
	return 0;
}

int cri_container_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__ContainerStatusRequest *req = (const void *)in;
	struct ctr_info *i = NULL;
	int r = ctr_get(runtimed_containers(ud), call, req->container_id, req->verbose, &i, err);
	cri_stopped_events(ud, call); /* it may have seen an exit */
	if (r < 0)
		return r;
	Runtime__V1__ContainerStatusResponse *resp = NULL;
	r = status_pb(i, req->verbose, &resp);
	ctr_info_free(i);
	if (r < 0)
		return r;
	*out = &resp->base;
	return 0;
}

static bool labels_match(const Runtime__V1__ContainerFilter *f,
			 const Runtime__V1__ContainerConfig *c)
{
	for (size_t k = 0; k < f->n_label_selector; k++) {
		bool found = false;
		for (size_t j = 0; j < c->n_labels && !found; j++)
			found = strcmp(c->labels[j]->key, f->label_selector[k]->key) == 0 &&
				strcmp(c->labels[j]->value, f->label_selector[k]->value) == 0;
		if (!found)
			return false;
	}
	return true;
}

static bool matches(const Runtime__V1__ContainerFilter *f, const struct ctr_info *i)
{
	if (!f)
		return true;
	if (f->id && *f->id && strncmp(i->id, f->id, strlen(f->id)) != 0)
		return false;
	if (f->pod_sandbox_id && *f->pod_sandbox_id &&
	    strncmp(i->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)) != 0)
		return false;
	if (f->state && f->state->state != state_pb(i->state))
		return false;
	return labels_match(f, i->config);
}

static Runtime__V1__Container *container_pb(struct ctr_info *i)
{
	_cleanup_pb_ Runtime__V1__Container *c = pb_new(&runtime__v1__container__descriptor);
	if (!c)
		return NULL;
	c->metadata = TAKE_PTR(i->config->metadata);
	c->image = TAKE_PTR(i->config->image);
	if (pb_set_str(&c->id, i->id) < 0 || pb_set_str(&c->pod_sandbox_id, i->pod_id) < 0 ||
	    pb_set_str(&c->image_ref, i->image_ref) < 0 ||
	    pb_set_str(&c->image_id, i->image_id) < 0 ||
	    pb_map_copy(&c->base, "labels", &i->config->base, "labels") < 0 ||
	    pb_map_copy(&c->base, "annotations", &i->config->base, "annotations") < 0)
		return NULL;
	c->state = state_pb(i->state);
	c->created_at = i->created_at;
	return TAKE_PTR(c);
}

int cri_list_containers(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__ListContainersRequest *req = (const void *)in;
	struct ctr_info **l = NULL;
	int r = ctr_list(runtimed_containers(ud), call, &l, err);
	cri_stopped_events(ud, call); /* it may have seen exits */
	if (r < 0)
		return r;
	size_t n = 0;
	while (l[n])
		n++;
	_cleanup_pb_ Runtime__V1__ListContainersResponse *resp =
	    pb_new(&runtime__v1__list_containers_response__descriptor);
	if (!resp || !(resp->containers = calloc(n + 1, sizeof(*resp->containers))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!matches(req->filter, l[i]))
			continue;
		if (!(resp->containers[resp->n_containers] = container_pb(l[i])))
			r = -ENOMEM;
		else
			resp->n_containers++;
	}
	ctr_info_list_free(l);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* The kept ListContainers entry of i (container.h, ctr_entry_fn): its
 * Container packed with the state at CREATED (0, not on the wire). */
static int entry_pack(struct ctr_info *i, uint8_t **ret, size_t *len)
{
	_cleanup_pb_ Runtime__V1__Container *c = container_pb(i);
	if (!c)
		return -ENOMEM;
	c->state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	size_t n = protobuf_c_message_get_packed_size(&c->base);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&c->base, buf);
	*ret = buf;
	*len = n;
	return 0;
}

static bool brief_matches(const Runtime__V1__ContainerFilter *f, const struct ctr_brief *b)
{
	if (!f)
		return true;
	if (f->id && *f->id && strncmp(b->id, f->id, strlen(f->id)) != 0)
		return false;
	if (f->pod_sandbox_id && *f->pod_sandbox_id &&
	    strncmp(b->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)) != 0)
		return false;
	return !f->state || f->state->state == state_pb(b->state);
}

int cri_list_containers_packed(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			       ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__ListContainersRequest *req = (const void *)in;
	/* A label selector needs the configs' labels: the full path. */
	if (req->filter && req->filter->n_label_selector)
		return cri_list_containers(ud, call, in, out, err);
	struct ctr_brief *v = NULL;
	size_t n = 0;
	int r = ctr_list_briefs(runtimed_containers(ud), call, entry_pack, &v, &n, err);
	cri_stopped_events(ud, call); /* it may have seen exits */
	if (r < 0)
		return r;
	const unsigned items_field =
	    pb_field_id(&runtime__v1__list_containers_response__descriptor, "containers");
	const unsigned state_field = pb_field_id(&runtime__v1__container__descriptor, "state");
	_cleanup_pb_ Runtime__V1__ListContainersResponse *resp =
	    pb_new(&runtime__v1__list_containers_response__descriptor);
	if (!resp ||
	    !(resp->base.unknown_fields = calloc(n ? n : 1, sizeof(*resp->base.unknown_fields))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!brief_matches(req->filter, &v[i]))
			continue;
		/* The entry's state, left out when CREATED (the default). */
		uint8_t st[PB_VARINT_FIELD_MAX];
		Runtime__V1__ContainerState state = state_pb(v[i].state);
		size_t n_st = state ? pb_varint_field(st, state_field, state) : 0;
		r = pb_packed_item(items_field, v[i].entry, v[i].len, st, n_st,
				   &resp->base.unknown_fields[resp->base.n_unknown_fields]);
		if (r == 0)
			resp->base.n_unknown_fields++;
	}
	ctr_briefs_free(v, n);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

int cri_pod_container_statuses(void *ud, const struct cric_call *call, const char *pod_id,
			       Runtime__V1__ContainerStatus ***ret, size_t *n, struct cric_err *err)
{
	struct ctr_info **l = NULL;
	int r = ctr_list_pod(runtimed_containers(ud), call, pod_id, &l, err);
	if (r < 0)
		return r;
	size_t k = 0;
	while (l[k])
		k++;
	Runtime__V1__ContainerStatus **v = calloc(k ? k : 1, sizeof(*v));
	size_t done = 0;
	for (r = v ? 0 : -ENOMEM; r == 0 && done < k; done++) {
		Runtime__V1__ContainerStatusResponse *resp = NULL;
		if ((r = status_pb(l[done], false, &resp)) == 0) {
			v[done] = TAKE_PTR(resp->status);
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		}
	}
	ctr_info_list_free(l);
	if (r < 0) {
		for (size_t i = 0; v && i < done; i++)
			if (v[i])
				protobuf_c_message_free_unpacked(&v[i]->base, NULL);
		free(v);
		return r;
	}
	*ret = v;
	*n = k;
	return 0;
}
