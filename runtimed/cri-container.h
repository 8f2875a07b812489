/* runtimed's CRI adapter for containers (cri-container.c): translation
 * only; the lines are listed in cri.c's table. */
#pragma once

#include "common/service.h"

int cri_create_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err);
int cri_start_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err);
int cri_stop_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		       ProtobufCMessage **out, struct cric_err *err);
int cri_remove_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err);
int cri_update_container_resources(void *ud, const struct cric_call *call,
				   const ProtobufCMessage *in, ProtobufCMessage **out,
				   struct cric_err *err);
int cri_update_pod_sandbox_resources(void *ud, const struct cric_call *call,
				     const ProtobufCMessage *in, ProtobufCMessage **out,
				     struct cric_err *err);
int cri_checkpoint_container(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			     ProtobufCMessage **out, struct cric_err *err);
int cri_container_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err);
int cri_list_containers(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err);
/* The same answer, from the containers' kept entries (ctr_list_briefs):
 * the unary ListContainers, whose answer only gets packed. Its items are
 * the response's unknown fields (the streaming twin pages
 * cri_list_containers' items). */
int cri_list_containers_packed(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			       ProtobufCMessage **out, struct cric_err *err);
/* The ContainerStatus of each container of pod pod_id (full id), for
 * events; *ret a malloc'd array of *n. */
int cri_pod_container_statuses(void *ud, const struct cric_call *call, const char *pod_id,
			       Runtime__V1__ContainerStatus ***ret, size_t *n,
			       struct cric_err *err);

/* Publish the STOPPED events due (container.h, ctr_take_stopped); called
 * after each call that may have seen a container exit, outside any
 * container's lock. */
void cri_stopped_events(void *ud, const struct cric_call *call);
/* The exit watcher's callback (runtime.h, runtimed_watch_exits). */
bool cri_container_exited(void *ud, const char *id);
