/* runtimed's CRI adapter: cri.c (the runtime's own calls and the method
 * table) and cri-sandbox.c (the pod calls). */
#pragma once
#include "common/service.h"

/* The CRI methods runtimed serves, for its main.c. */
extern const struct cric_service runtimed_services[];
extern const size_t runtimed_n_services;

/* cri-sandbox.c: the pod calls, as cric_handler_fn. */
int cri_run_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err);
int cri_stop_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err);
int cri_remove_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			   ProtobufCMessage **out, struct cric_err *err);
int cri_pod_sandbox_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			   ProtobufCMessage **out, struct cric_err *err);
int cri_list_pod_sandbox(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			 ProtobufCMessage **out, struct cric_err *err);
/* The same answer, from the pods' kept entries (sandbox_list_entries):
 * the unary ListPodSandbox, whose answer only gets packed (or unpacked by a
 * caller, as the wire is the same). Its items are the response's unknown
 * fields (the streaming twin pages cri_list_pod_sandbox's items). */
int cri_list_pod_sandbox_packed(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
				ProtobufCMessage **out, struct cric_err *err);
/* The pod's status as PodSandboxStatus answers it (not verbose). */
int cri_pod_status_of(void *ud, const struct cric_call *call, const char *pod_id,
		      Runtime__V1__PodSandboxStatus **ret, struct cric_err *err);

/* Set the pods' and containers' gauges by state (a collector of
 * common/metrics.h; ud: the struct runtimed). */
void cri_metrics_collect(void *ud);

/* The pod exit watcher's callback (runtime.h, runtimed_watch_exits): the
 * pod's STOPPED when its infra died before any stop. */
bool cri_pod_infra_exited(void *ud, const char *id);
