/* IPC adapter of the container events: CRI ContainerEventResponse built
 * from the pod and container statuses, and cric.runtimed.WatchEvents
 * answered from the event log. Translation only. */
#include "cri-events.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "cri-container.h"
#include "cri.h"
#include "events.h"
#include "runtime.h"

/* Events answered per WatchEvents at most. */
#define WATCH_MAX_EVENTS 256
/* and bytes of events beyond the first (an answer must fit IPC_MAX_MESSAGE:
 * one event is at most a pod's status and its containers'). */
#define WATCH_MAX_BYTES (4u * 1024 * 1024)
/* A long poll answers (empty) this long before its caller's deadline. */
#define WATCH_MARGIN_MS 1000

struct pod_event {
	Runtime__V1__ContainerEventResponse *msg;
};

static const char *type_name(Runtime__V1__ContainerEventType t)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &runtime__v1__container_event_type__descriptor, (int)t);
	return v ? v->name : "?";
}

struct pod_event *cri_event_free(struct pod_event *ev)
{
	if (!ev)
		return NULL;
	if (ev->msg)
		protobuf_c_message_free_unpacked(&ev->msg->base, NULL);
	free(ev);
	return NULL;
}

struct pod_event *cri_event_build(void *ud, const struct cric_call *call,
				  Runtime__V1__ContainerEventType type, const char *container_id,
				  const char *pod_id)
{
	struct cric_err err = { { 0 } };
	struct pod_event *ev = calloc(1, sizeof(*ev));
	Runtime__V1__ContainerEventResponse *m =
	    ev ? pb_new(&runtime__v1__container_event_response__descriptor) : NULL;
	int r = m ? 0 : -ENOMEM;
	if (m) {
		ev->msg = m;
		m->container_event_type = type;
		if (pb_set_str(&m->container_id, container_id) < 0)
			r = -ENOMEM;
	}
	if (r == 0)
		r = cri_pod_status_of(ud, call, pod_id, &m->pod_sandbox_status, &err);
	/* The pod's full id: pod_id may be a prefix the caller used. */
	if (r == 0 && strcmp(container_id, pod_id) == 0) {
		char *given = m->container_id;
		if (pb_set_str(&m->container_id, m->pod_sandbox_status->id) < 0)
			r = -ENOMEM;
		else
			free(given);
	}
	if (r == 0)
		r = cri_pod_container_statuses(ud, call, m->pod_sandbox_status->id,
					       &m->containers_statuses, &m->n_containers_statuses,
					       &err);
	if (r < 0) {
		log_warning("event %s of %s: %s, not sent", type_name(type), container_id,
			    err.msg[0] ? err.msg : strerror(-r));
		return cri_event_free(ev);
	}
	return ev;
}

void cri_event_publish(void *ud, struct pod_event *ev)
{
	if (!ev)
		return;
	ev->msg->created_at = now_unix_ns();
	size_t len = protobuf_c_message_get_packed_size(&ev->msg->base);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	int r = buf ? 0 : -ENOMEM;
	if (buf) {
		protobuf_c_message_pack(&ev->msg->base, buf);
		r = event_log_publish(runtimed_events(ud), buf, len);
	}
	if (r < 0)
		log_warning("event %s of %s: %s, lost", type_name(ev->msg->container_event_type),
			    ev->msg->container_id, strerror(-r));
	else
		log_debug("event %s of %s", type_name(ev->msg->container_event_type),
			  ev->msg->container_id);
	cri_event_free(ev);
}

void cri_event_send(void *ud, const struct cric_call *call, Runtime__V1__ContainerEventType type,
		    const char *container_id, const char *pod_id)
{
	cri_event_publish(ud, cri_event_build(ud, call, type, container_id, pod_id));
}

static void free_copies(struct event_copy *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].data);
	free(v);
}

int cri_watch_events(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err)
{
	(void)err;
	const Cric__Runtimed__WatchEventsRequest *req = (const void *)in;
	struct event_log *l = runtimed_events(ud);
	size_t max = req->max_events && req->max_events < WATCH_MAX_EVENTS ? req->max_events
									   : WATCH_MAX_EVENTS;
	int64_t deadline = cric_deadline(call->deadline_ns, RUNTIMED_WATCH_CAP_MS);
	deadline = deadline ? deadline - WATCH_MARGIN_MS * 1000000LL : now_unix_ns();
	struct event_copy *v = NULL;
	size_t n = 0;
	int r =
	    event_log_read(l, req->epoch, req->after, max, WATCH_MAX_BYTES, deadline, call, &v, &n);
	if (r < 0)
		return r;
	_cleanup_pb_ Cric__Runtimed__WatchEventsResponse *resp =
	    pb_new(&cric__runtimed__watch_events_response__descriptor);
	if (!resp || !(resp->events = calloc(n ? n : 1, sizeof(*resp->events)))) {
		free_copies(v, n);
		return -ENOMEM;
	}
	resp->epoch = event_log_epoch(l);
	for (size_t i = 0; i < n; i++) {
		Cric__Runtimed__Event *e = pb_new(&cric__runtimed__event__descriptor);
		if (!e) {
			free_copies(v, n);
			return -ENOMEM;
		}
		e->seq = v[i].seq;
		e->event.data = TAKE_PTR(v[i].data);
		e->event.len = v[i].len;
		resp->events[resp->n_events++] = e;
	}
	free_copies(v, n);
	*out = &TAKE_PTR(resp)->base;
	return 0;
}
