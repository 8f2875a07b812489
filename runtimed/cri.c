/* IPC adapter: CRI RuntimeService messages <-> the runtimed manager. No domain
 * logic here; it only translates. */
#include "cri.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/listpage.h"
#include "common/pbutil.h"
#include "cric_version.h"
#include "common/macro.h"
#include "common/metrics.h"
#include "common/service.h"
#include "cri-container.h"
#include "cri-events.h"
#include "runtime.h"

static int version(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		   ProtobufCMessage **out, struct cric_err *err)
{
	(void)ud;
	(void)call;
	(void)in;
	(void)err;
	_cleanup_pb_ Runtime__V1__VersionResponse *v =
	    pb_new(&runtime__v1__version_response__descriptor);
	if (!v || pb_set_str(&v->version, KUBE_RUNTIME_API_VERSION) < 0 ||
	    pb_set_str(&v->runtime_name, RUNTIME_NAME) < 0 ||
	    pb_set_str(&v->runtime_version, CRIC_VERSION) < 0 ||
	    pb_set_str(&v->runtime_api_version, RUNTIME_API_VERSION) < 0)
		return -ENOMEM;
	*out = &TAKE_PTR(v)->base;
	return 0;
}

static Runtime__V1__RuntimeCondition *condition(const char *type, bool ok, const char *reason,
						const char *message)
{
	_cleanup_pb_ Runtime__V1__RuntimeCondition *c =
	    pb_new(&runtime__v1__runtime_condition__descriptor);
	if (!c || pb_set_str(&c->type, type) < 0 || pb_set_str(&c->reason, ok ? "" : reason) < 0 ||
	    pb_set_str(&c->message, ok ? "" : message) < 0)
		return NULL;
	c->status = ok;
	return TAKE_PTR(c);
}

/* name NULL: the default handler's entry, named "". */
static Runtime__V1__RuntimeHandler *handler(const char *name, const struct oci_handler *oh)
{
	name = name ? name : "";
	_cleanup_pb_ Runtime__V1__RuntimeHandler *h =
	    pb_new(&runtime__v1__runtime_handler__descriptor);
	if (!h || pb_set_str(&h->name, name) < 0 ||
	    !(h->features = pb_new(&runtime__v1__runtime_handler_features__descriptor)))
		return NULL;
	/* No recursive read-only mounts (CreateContainer refuses them): the
	 * kubelet then refuses the pods that need them. User namespaces where
	 * they work end to end (oci.h's userns_pods). */
	h->features->recursive_read_only_mounts = false;
	h->features->user_namespaces = oh && oh->userns_pods;
	return TAKE_PTR(h);
}

static int status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		  ProtobufCMessage **out, struct cric_err *err)
{
	(void)err;
	const Runtime__V1__StatusRequest *req = (const Runtime__V1__StatusRequest *)in;
	struct runtime_status st;
	runtimed_status(ud, call, &st);

	_cleanup_pb_ Runtime__V1__StatusResponse *s =
	    pb_new(&runtime__v1__status_response__descriptor);
	if (!s || !(s->status = pb_new(&runtime__v1__runtime_status__descriptor)) ||
	    !(s->status->conditions = calloc(2, sizeof(*s->status->conditions))) ||
	    !(s->runtime_handlers = calloc(2, sizeof(*s->runtime_handlers))) ||
	    !(s->features = pb_new(&runtime__v1__runtime_features__descriptor)))
		return -ENOMEM;
	if (!(s->status->conditions[s->status->n_conditions++] = condition(
		  "RuntimeReady", st.runtime_ready, st.runtime_reason, st.runtime_message)) ||
	    !(s->status->conditions[s->status->n_conditions++] = condition(
		  "NetworkReady", st.network_ready, st.network_reason, st.network_message)))
		return -ENOMEM;
	/* Containers apply supplemental_groups_policy (Merge and Strict). */
	s->features->supplemental_groups_policy = true;
	/* "" is the default handler, listed by name as well. */
	const struct oci_handler *hs;
	size_t nh = runtimed_handlers(ud, &hs);
	free(s->runtime_handlers);
	if (!(s->runtime_handlers = calloc(nh + 1, sizeof(*s->runtime_handlers))) ||
	    !(s->runtime_handlers[s->n_runtime_handlers++] =
		  handler(NULL, runtimed_default_handler(ud))))
		return -ENOMEM;
	for (size_t i = 0; i < nh; i++)
		if (!(s->runtime_handlers[s->n_runtime_handlers++] = handler(hs[i].name, &hs[i])))
			return -ENOMEM;

	if (req->verbose) {
		char cgm[16];
		runtimed_cgroup_manager(ud, cgm, sizeof(cgm));
		_cleanup_json_ json_t *doc =
		    json_pack("{s:s, s:s, s:s, s:s, s:s}", "runtime", RUNTIME_NAME, "version",
			      CRIC_VERSION, "cgroup_manager", cgm, "cni_conf_file",
			      st.cni_conf_file, "cni_network", st.cni_network);
		_cleanup_free_ char *json =
		    doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		if (!json || pb_map_add(&s->base, "info", "config", json) < 0)
			return -ENOMEM;
	}
	*out = &TAKE_PTR(s)->base;
	return 0;
}

static int runtime_config(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	(void)in;
	(void)err;
	char cgm[16];
	runtimed_cgroup_manager(ud, cgm, sizeof(cgm));
	_cleanup_pb_ Runtime__V1__RuntimeConfigResponse *rc =
	    pb_new(&runtime__v1__runtime_config_response__descriptor);
	if (!rc || !(rc->linux = pb_new(&runtime__v1__linux_runtime_configuration__descriptor)))
		return -ENOMEM;
	rc->linux->cgroup_driver = strcmp(cgm, "systemd") == 0
				       ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
				       : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
	*out = &TAKE_PTR(rc)->base;
	return 0;
}

static int update_runtime_config(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
				 ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	const Runtime__V1__UpdateRuntimeConfigRequest *req =
	    (const Runtime__V1__UpdateRuntimeConfigRequest *)in;
	const char *cidr = req->runtime_config && req->runtime_config->network_config
			       ? req->runtime_config->network_config->pod_cidr
			       : NULL;
	/* An empty pod CIDR is "no change" (the kubelet sends it so). */
	if (cidr && *cidr) {
		int r = sandbox_set_pod_cidr(runtimed_sandboxes(ud), cidr, err);
		if (r < 0)
			return r;
	}
	*out = pb_new(&runtime__v1__update_runtime_config_response__descriptor);
	return *out ? 0 : -ENOMEM;
}

/* ---- life-cycle metrics (common/metrics.h) ---- */

static struct metric_family pod_ops = {
	.name = "cric_pod_operations_total",
	.help = "Pod life-cycle calls runtimed finished (run, stop, remove), by gRPC code.",
	.type = METRIC_COUNTER,
	.labels = { "operation", "code" },
};

static struct metric_family pod_seconds = {
	.name = "cric_pod_operation_duration_seconds",
	.help = "Time runtimed took for a pod life-cycle call.",
	.type = METRIC_HISTOGRAM,
	.labels = { "operation" },
	.bounds = metric_latency_bounds,
	.n_bounds = METRIC_N_LATENCY_BOUNDS,
};

static struct metric_family ctr_ops = {
	.name = "cric_container_operations_total",
	.help = "Container life-cycle calls runtimed finished (create, start, stop, remove), by "
		"gRPC code.",
	.type = METRIC_COUNTER,
	.labels = { "operation", "code" },
};

static struct metric_family ctr_seconds = {
	.name = "cric_container_operation_duration_seconds",
	.help = "Time runtimed took for a container life-cycle call.",
	.type = METRIC_HISTOGRAM,
	.labels = { "operation" },
	.bounds = metric_latency_bounds,
	.n_bounds = METRIC_N_LATENCY_BOUNDS,
};

/* Run a life-cycle handler, counting its outcome and time. */
static int counted(struct metric_family *ops, struct metric_family *secs, const char *op,
		   cric_handler_fn fn, void *ud, const struct cric_call *call,
		   const ProtobufCMessage *in, ProtobufCMessage **out, struct cric_err *err)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = fn(ud, call, in, out, err);
	metric_add(ops, METRIC_VALUES(op, grpc_code_name(grpc_code_from_errno(r < 0 ? r : 0))), 1);
	metric_observe(secs, METRIC_VALUES(op), metric_seconds_since(&t0));
	return r;
}

#define COUNTED(name, ops, secs, op, fn)                                                           \
	static int name(void *ud, const struct cric_call *call, const ProtobufCMessage *in,        \
			ProtobufCMessage **out, struct cric_err *err)                              \
	{                                                                                          \
		return counted(&(ops), &(secs), op, fn, ud, call, in, out, err);                   \
	}
COUNTED(run_pod, pod_ops, pod_seconds, "run", cri_run_pod_sandbox)
COUNTED(stop_pod, pod_ops, pod_seconds, "stop", cri_stop_pod_sandbox)
COUNTED(remove_pod, pod_ops, pod_seconds, "remove", cri_remove_pod_sandbox)
COUNTED(create_ctr, ctr_ops, ctr_seconds, "create", cri_create_container)
COUNTED(start_ctr, ctr_ops, ctr_seconds, "start", cri_start_container)
COUNTED(stop_ctr, ctr_ops, ctr_seconds, "stop", cri_stop_container)
COUNTED(remove_ctr, ctr_ops, ctr_seconds, "remove", cri_remove_container)

static struct metric_family pods_now = {
	.name = "cric_pods",
	.help = "Pods runtimed has, by state (ready, notready).",
	.type = METRIC_GAUGE,
	.labels = { "state" },
};

static struct metric_family ctrs_now = {
	.name = "cric_containers",
	.help = "Containers runtimed has, by state (created, running, exited).",
	.type = METRIC_GAUGE,
	.labels = { "state" },
};

void cri_metrics_collect(void *ud)
{
	struct cric_err e;
	struct sandbox_brief *v = NULL;
	size_t n = 0;
	double by_pod_state[2] = { 0 };
	if (sandbox_list(runtimed_sandboxes(ud), NULL, &v, &n, &e) == 0) {
		for (size_t i = 0; i < n; i++)
			by_pod_state[v[i].state == SANDBOX_READY ? 0 : 1]++;
		sandbox_briefs_free(v, n);
		metric_set(&pods_now, METRIC_VALUES("ready"), by_pod_state[0]);
		metric_set(&pods_now, METRIC_VALUES("notready"), by_pod_state[1]);
	}
	/* A container whose process is gone is asked of monitord: bounded by
	 * MONITORD_CALL_CAP_MS, rare (the next status call would do it). */
	struct ctr_info **l = NULL;
	double by_ctr_state[4] = { 0 };
	if (ctr_list(runtimed_containers(ud), NULL, &l, &e) == 0) {
		for (size_t i = 0; l[i]; i++)
			if ((unsigned)l[i]->state < ARRAY_SIZE(by_ctr_state))
				by_ctr_state[l[i]->state]++;
		ctr_info_list_free(l);
		metric_set(&ctrs_now, METRIC_VALUES("created"), by_ctr_state[CTR_CREATED]);
		metric_set(&ctrs_now, METRIC_VALUES("running"), by_ctr_state[CTR_RUNNING]);
		metric_set(&ctrs_now, METRIC_VALUES("exited"), by_ctr_state[CTR_EXITED]);
	}
}

/* What runtimed answers of the CRI RuntimeService (cri-gateway/routes.c
 * routes the rest of its share here too: UNIMPLEMENTED until it lands). */
static const struct cric_handler runtime_lines[] = {
	{ CRI_RUNTIME(version), version, .callers = CALLER_GATEWAY, .nonblocking = true },
	{ CRI_RUNTIME(status), status, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(runtime_config), runtime_config, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(update_runtime_config), update_runtime_config, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(run_pod_sandbox), run_pod, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(stop_pod_sandbox), stop_pod, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(remove_pod_sandbox), remove_pod, .callers = CALLER_GATEWAY },
	/* monitord asks for its pod stats (monitord/pods.h). */
	{ CRI_RUNTIME(pod_sandbox_status), cri_pod_sandbox_status,
	  .callers = CALLER_GATEWAY | CALLER_MONITORD },
	{ CRI_RUNTIME(list_pod_sandbox), cri_list_pod_sandbox_packed,
	  .callers = CALLER_GATEWAY | CALLER_MONITORD },
	{ CRI_RUNTIME(create_container), create_ctr, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(start_container), start_ctr, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(stop_container), stop_ctr, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(remove_container), remove_ctr, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(container_status), cri_container_status, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(list_containers), cri_list_containers_packed, .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(update_container_resources), cri_update_container_resources,
	  .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(update_pod_sandbox_resources), cri_update_pod_sandbox_resources,
	  .callers = CALLER_GATEWAY },
	{ CRI_RUNTIME(checkpoint_container), cri_checkpoint_container, .callers = CALLER_GATEWAY },
};

/* The streaming list calls, paged from their List twins (listpage.h). */
static const struct listpage_twin list_twins[] = {
	{ CRI_RUNTIME(stream_pod_sandboxes), CRI_RUNTIME(list_pod_sandbox), cri_list_pod_sandbox },
	{ CRI_RUNTIME(stream_containers), CRI_RUNTIME(list_containers), cri_list_containers },
};

static int list_page(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err)
{
	return listpage_serve(list_twins, ARRAY_SIZE(list_twins), ud, call, in, out, err);
}

/* runtimed's own service: the gateway's long poll of the events, the pages
 * of its streaming list calls. */
static const struct cric_handler runtimed_lines[] = {
	{ CRIC_RUNTIMED(watch_events), cri_watch_events, .callers = CALLER_GATEWAY,
	  .cap_ms = RUNTIMED_WATCH_CAP_MS },
	{ CRIC_RUNTIMED(list_page), list_page, .callers = CALLER_GATEWAY | CALLER_ADMIN },
};

const struct cric_service runtimed_services[] = {
	{ &runtime__v1__runtime_service__descriptor, runtime_lines, ARRAY_SIZE(runtime_lines),
	  .partial = true },
	{ &cric__runtimed__runtimed__descriptor, runtimed_lines, ARRAY_SIZE(runtimed_lines) },
};
const size_t runtimed_n_services = ARRAY_SIZE(runtimed_services);
