/* runtimed's CRI container events (GetContainerEvents, served by the
 * gateway from cric.runtimed.WatchEvents): each event is built as it
 * happens, with the pod's PodSandboxStatus and the ContainerStatus of each
 * of its containers at that moment, and published on runtimed's event log
 * (events.h). A pod's own life goes out as the same events with the pod's
 * id as container_id (as containerd and CRI-O send it: the kubelet's
 * evented PLEG drops its cache of a pod on DELETED for the pod's id).
 *
 * An event that cannot be built (the pod is gone, no memory) is logged and
 * not sent: the CRI call it reports succeeded all the same. */
#pragma once

#include "common/service.h"

struct pod_event;

/* Build the event now and publish it. */
void cri_event_send(void *ud, const struct cric_call *call, Runtime__V1__ContainerEventType type,
		    const char *container_id, const char *pod_id);
/* Build it now, publish it later (or drop it): DELETED of a pod, whose
 * status is gone once it is removed. */
struct pod_event *cri_event_build(void *ud, const struct cric_call *call,
				  Runtime__V1__ContainerEventType type, const char *container_id,
				  const char *pod_id);
/* Publish ev (created_at: now) and free it. Accepts NULL. */
void cri_event_publish(void *ud, struct pod_event *ev);
struct pod_event *cri_event_free(struct pod_event *ev);

/* cric.runtimed.WatchEvents */
int cri_watch_events(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err);
