/* monitord's adapter: its internal service (proto/cric/monitord.proto)
 * turned into calls on the manager (monitors.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/ids.h"
#include "common/listpage.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "execsync.h"
#include "monitors.h"
#include "pods.h"
#include "rpc.h"
#include "stats.h"
#include "stream/server.h"

/* Log lines of this call name the container (a valid id only: it is
 * input); copied, the dispatcher logs after the request is freed. */
static void log_container(const struct cric_call *call, const char *id)
{
	static _Thread_local char cid[65];
	snprintf(cid, sizeof(cid), "%s", id_is_valid(id) ? id : "");
	const struct log_ctx ctx = { .method = call->method,
				     .request_id = call->request_id,
				     .container_id = cid[0] ? cid : NULL };
	log_ctx_set(&ctx);
}

/* What the request says for stats (stats.h). */
static json_t *monitor_attrs(const Cric__Monitord__CreateMonitorRequest *req)
{
	_cleanup_json_ json_t *labels = json_object(), *annotations = json_object();
	if (!labels || !annotations)
		return NULL;
	for (size_t i = 0; i < req->n_labels; i++)
		if (json_object_set_new(labels, req->labels[i]->key,
					json_string(req->labels[i]->value)) < 0)
			return NULL;
	for (size_t i = 0; i < req->n_annotations; i++)
		if (json_object_set_new(annotations, req->annotations[i]->key,
					json_string(req->annotations[i]->value)) < 0)
			return NULL;
	return json_pack("{s:s, s:s, s:I, s:O, s:O, s:s}", "pod_sandbox_id", req->pod_sandbox_id,
			 "name", req->name, "attempt", (json_int_t)req->attempt, "labels", labels,
			 "annotations", annotations, "upper_dir", req->upper_dir);
}

static int create_monitor(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	const Cric__Monitord__CreateMonitorRequest *req = (const void *)in;
	log_container(call, req->container_id);
	_cleanup_json_ json_t *attrs = monitor_attrs(req);
	if (!attrs)
		return err_set(err, -EINVAL, "labels, annotations and names must be UTF-8");
	const struct monitor_spec spec = {
		.id = req->container_id,
		.bundle = req->bundle,
		.runtime_path = req->runtime_path,
		.runtime_root = req->runtime_root,
		.log_path = req->log_path,
		.cgroup_parent = req->cgroup_parent,
		.tty = req->tty,
		.open_stdin = req->stdin,
		.stdin_once = req->stdin_once,
		.restore = req->restore,
		.log_size_max = req->log_size_max,
		.attrs = attrs,
	};
	int64_t deadline = deadline_in_ms(MONITORD_CREATE_CAP_MS);
	if (call->deadline_ns > 0 && call->deadline_ns < deadline)
		deadline = call->deadline_ns;
	pid_t pid = 0, mpid = 0;
	int r = monitors_create(ud, &spec, deadline, &pid, &mpid, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Cric__Monitord__CreateMonitorResponse *resp =
	    pb_new(&cric__monitord__create_monitor_response__descriptor);
	if (!resp)
		return -ENOMEM;
	resp->pid = pid;
	resp->monitor_pid = mpid;
	log_info("monitor %d created container init %d", (int)mpid, (int)pid);
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int reopen_log(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		      ProtobufCMessage **out, struct cric_err *err)
{
	const Cric__Monitord__ReopenLogRequest *req = (const void *)in;
	log_container(call, req->container_id);
	int r = monitors_reopen_log(ud, req->container_id, err);
	if (r < 0)
		return r;
	ProtobufCMessage *resp = pb_new(&cric__monitord__reopen_log_response__descriptor);
	if (!resp)
		return -ENOMEM;
	*out = resp;
	return 0;
}

static int monitor_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	const Cric__Monitord__MonitorStatusRequest *req = (const void *)in;
	log_container(call, req->container_id);
	if (!id_is_valid(req->container_id))
		return err_set(err, -EINVAL, "container_id must be 64 lowercase hex digits");
	struct monitor_status st;
	int r = monitors_status(ud, req->container_id, &st, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Cric__Monitord__MonitorStatusResponse *resp =
	    pb_new(&cric__monitord__monitor_status_response__descriptor);
	if (!resp)
		return -ENOMEM;
	resp->monitor_alive = st.alive;
	resp->exited = st.exited;
	resp->exit_code = st.exit_code;
	resp->finished_at = st.finished_at;
	resp->oom_killed = st.oom_killed;
	if (st.message && pb_set_str(&resp->message, st.message) < 0)
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int remove_monitor(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	const Cric__Monitord__RemoveMonitorRequest *req = (const void *)in;
	log_container(call, req->container_id);
	int r = monitors_remove(ud, req->container_id, err);
	if (r < 0)
		return r;
	ProtobufCMessage *resp = pb_new(&cric__monitord__remove_monitor_response__descriptor);
	if (!resp)
		return -ENOMEM;
	*out = resp;
	return 0;
}

static int exec_sync(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err)
{
	struct monitors *m = ud;
	const Runtime__V1__ExecSyncRequest *req = (const void *)in;
	log_container(call, req->container_id);
	const struct execsync_req x = { .id = req->container_id,
					.cmd = req->cmd,
					.n_cmd = req->n_cmd,
					.timeout_s = req->timeout,
					.deadline_ns = call->deadline_ns };
	struct execsync_result res = { 0 };
	int r = execsync_run(m->exec, m, &x, &res, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Runtime__V1__ExecSyncResponse *resp =
	    pb_new(&runtime__v1__exec_sync_response__descriptor);
	if (!resp) {
		execsync_result_done(&res);
		return -ENOMEM;
	}
	resp->stdout.data = (uint8_t *)TAKE_PTR(res.out);
	resp->stdout.len = res.out_len;
	resp->stderr.data = (uint8_t *)TAKE_PTR(res.err);
	resp->stderr.len = res.err_len;
	resp->exit_code = res.exit_code;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* Exec's and Attach's common part: the streams asked (tty and stderr
 * exclude each other, one at least), the container running, a request of
 * kind for it into *ret. */
static int stream_request_new(struct monitors *m, const struct cric_call *call,
			      enum stream_kind kind, const char *container_id, bool tty, bool in,
			      bool outp, bool errp, struct stream_request **ret,
			      struct cric_err *err)
{
	if (tty && errp)
		return err_set(err, -EINVAL, "tty and stderr cannot both be true");
	if (!in && !outp && !errp)
		return err_set(err, -EINVAL, "one of stdin, stdout and stderr must be true");
	struct exec_target t;
	int r = execsync_target(m, container_id, &t, err);
	if (r < 0)
		return r;
	exec_target_done(&t);
	log_container(call, t.id);
	struct stream_request *sr = calloc(1, sizeof(*sr));
	if (!sr)
		return -ENOMEM;
	sr->kind = kind;
	memcpy(sr->id, t.id, sizeof(sr->id));
	sr->tty = tty;
	sr->stdin = in;
	sr->stdout = outp;
	sr->stderr = errp;
	*ret = sr;
	return 0;
}

/* The URL the streaming server gives sr (which it takes) into *url_field. */
static int answer_url(struct monitors *m, struct stream_request *sr, char **url_field,
		      struct cric_err *err)
{
	_cleanup_free_ char *url = NULL;
	int r = stream_server_url(m->stream, sr, &url, err);
	if (r < 0)
		return r;
	return pb_set_str(url_field, url) < 0 ? -ENOMEM : 0;
}

/* CRI Exec: checked here, run by the streaming server when the client
 * connects to the URL answered. */
#define EXEC_ARGS_MAX 4096

static int cri_exec(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		    ProtobufCMessage **out, struct cric_err *err)
{
	struct monitors *m = ud;
	const Runtime__V1__ExecRequest *req = (const void *)in;
	log_container(call, req->container_id);
	if (req->n_cmd == 0 || !req->cmd[0][0])
		return err_set(err, -EINVAL, "cmd must name a command");
	if (req->n_cmd > EXEC_ARGS_MAX)
		return err_set(err, -EINVAL, "cmd has more than %d arguments", EXEC_ARGS_MAX);
	struct stream_request *sr = NULL;
	int r = stream_request_new(m, call, STREAM_KIND_EXEC, req->container_id, req->tty,
				   req->stdin, req->stdout, req->stderr, &sr, err);
	if (r < 0 || !sr)
		return r < 0 ? r : -EIO;
	sr->cmd = calloc(req->n_cmd + 1, sizeof(char *));
	for (size_t i = 0; sr->cmd && i < req->n_cmd; i++)
		if (!(sr->cmd[i] = strdup(req->cmd[i]))) {
			stream_request_free(sr);
			return -ENOMEM;
		}
	_cleanup_pb_ Runtime__V1__ExecResponse *resp =
	    pb_new(&runtime__v1__exec_response__descriptor);
	if (!sr->cmd || !resp) {
		stream_request_free(sr);
		return -ENOMEM;
	}
	if ((r = answer_url(m, sr, &resp->url, err)) < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* CRI Attach: checked here (the container running), joined by the
 * streaming server to the container's monitor when the client connects. */
static int cri_attach(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		      ProtobufCMessage **out, struct cric_err *err)
{
	struct monitors *m = ud;
	const Runtime__V1__AttachRequest *req = (const void *)in;
	log_container(call, req->container_id);
	struct stream_request *sr = NULL;
	int r = stream_request_new(m, call, STREAM_KIND_ATTACH, req->container_id, req->tty,
				   req->stdin, req->stdout, req->stderr, &sr, err);
	if (r < 0 || !sr)
		return r < 0 ? r : -EIO;
	_cleanup_pb_ Runtime__V1__AttachResponse *resp =
	    pb_new(&runtime__v1__attach_response__descriptor);
	if (!resp) {
		stream_request_free(sr);
		return -ENOMEM;
	}
	if ((r = answer_url(m, sr, &resp->url, err)) < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* CRI PortForward: the pod READY and the ports valid here; its network
 * namespace (from runtimed) kept with the token for the streaming server,
 * which connects there as the client asks (stream/portforward.c). */
#define PORTFORWARD_PORTS_MAX 1024

static int cri_port_forward(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			    ProtobufCMessage **out, struct cric_err *err)
{
	struct monitors *m = ud;
	const Runtime__V1__PortForwardRequest *req = (const void *)in;
	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return err_set(err, -EINVAL, "pod_sandbox_id is required");
	if (req->n_port > PORTFORWARD_PORTS_MAX)
		return err_set(err, -EINVAL, "more than %d ports", PORTFORWARD_PORTS_MAX);
	for (size_t i = 0; i < req->n_port; i++)
		if (req->port[i] < 1 || req->port[i] > 65535)
			return err_set(err, -EINVAL, "port %d is not in 1..65535", req->port[i]);
	struct stream_request *sr = calloc(1, sizeof(*sr));
	if (!sr)
		return -ENOMEM;
	sr->kind = STREAM_KIND_PORTFORWARD;
	int r =
	    podstats_forward_target(m->pods, call, req->pod_sandbox_id, sr->id, &sr->netns, err);
	if (r < 0) {
		stream_request_free(sr);
		return r;
	}
	if (req->n_port && !(sr->ports = calloc(req->n_port, sizeof(*sr->ports)))) {
		stream_request_free(sr);
		return -ENOMEM;
	}
	for (size_t i = 0; i < req->n_port; i++)
		sr->ports[i] = (uint16_t)req->port[i];
	sr->n_ports = req->n_port;
	_cleanup_pb_ Runtime__V1__PortForwardResponse *resp =
	    pb_new(&runtime__v1__port_forward_response__descriptor);
	if (!resp) {
		stream_request_free(sr);
		return -ENOMEM;
	}
	if ((r = answer_url(m, sr, &resp->url, err)) < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* CRI ReopenContainerLog: the kubelet renamed the log just before; when
 * this returns the monitor writes to a new file at the same path. */
static int cri_reopen_log(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	const Runtime__V1__ReopenContainerLogRequest *req = (const void *)in;
	char id[65];
	int r = monitors_resolve(ud, req->container_id, id, err);
	if (r < 0)
		return r;
	log_container(call, id);
	if ((r = monitors_reopen_log(ud, id, err)) < 0)
		return r;
	ProtobufCMessage *resp = pb_new(&runtime__v1__reopen_container_log_response__descriptor);
	if (!resp)
		return -ENOMEM;
	*out = resp;
	return 0;
}

static int cri_container_stats(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			       ProtobufCMessage **out, struct cric_err *err)
{
	struct monitors *m = ud;
	const Runtime__V1__ContainerStatsRequest *req = (const void *)in;
	char id[65];
	int r = monitors_resolve(m, req->container_id, id, err);
	if (r < 0)
		return r;
	log_container(call, id);
	_cleanup_pb_ Runtime__V1__ContainerStatsResponse *resp =
	    pb_new(&runtime__v1__container_stats_response__descriptor);
	if (!resp)
		return -ENOMEM;
	if ((r = stats_container(m->stats, id, &resp->stats, err)) < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int cri_list_container_stats(void *ud, const struct cric_call *call,
				    const ProtobufCMessage *in, ProtobufCMessage **out,
				    struct cric_err *err)
{
	(void)call;
	struct monitors *m = ud;
	const Runtime__V1__ListContainerStatsRequest *req = (const void *)in;
	_cleanup_pb_ Runtime__V1__ListContainerStatsResponse *resp =
	    pb_new(&runtime__v1__list_container_stats_response__descriptor);
	if (!resp)
		return -ENOMEM;
	int r = stats_list(m->stats, req->filter, resp, err);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int cri_pod_sandbox_stats(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
				 ProtobufCMessage **out, struct cric_err *err)
{
	struct monitors *m = ud;
	const Runtime__V1__PodSandboxStatsRequest *req = (const void *)in;
	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return err_set(err, -EINVAL, "pod_sandbox_id is required");
	_cleanup_pb_ Runtime__V1__PodSandboxStatsResponse *resp =
	    pb_new(&runtime__v1__pod_sandbox_stats_response__descriptor);
	if (!resp)
		return -ENOMEM;
	int r = podstats_stats(m->pods, call, req->pod_sandbox_id, &resp->stats, err);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int cri_list_pod_sandbox_stats(void *ud, const struct cric_call *call,
				      const ProtobufCMessage *in, ProtobufCMessage **out,
				      struct cric_err *err)
{
	struct monitors *m = ud;
	const Runtime__V1__ListPodSandboxStatsRequest *req = (const void *)in;
	_cleanup_pb_ Runtime__V1__ListPodSandboxStatsResponse *resp =
	    pb_new(&runtime__v1__list_pod_sandbox_stats_response__descriptor);
	if (!resp)
		return -ENOMEM;
	int r = podstats_list(m->pods, call, req->filter, resp, err);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int cri_list_metric_descriptors(void *ud, const struct cric_call *call,
				       const ProtobufCMessage *in, ProtobufCMessage **out,
				       struct cric_err *err)
{
	(void)ud, (void)call, (void)in, (void)err;
	_cleanup_pb_ Runtime__V1__ListMetricDescriptorsResponse *resp =
	    pb_new(&runtime__v1__list_metric_descriptors_response__descriptor);
	if (!resp || podstats_metric_descriptors(resp) < 0)
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int cri_list_pod_sandbox_metrics(void *ud, const struct cric_call *call,
					const ProtobufCMessage *in, ProtobufCMessage **out,
					struct cric_err *err)
{
	(void)in;
	struct monitors *m = ud;
	_cleanup_pb_ Runtime__V1__ListPodSandboxMetricsResponse *resp =
	    pb_new(&runtime__v1__list_pod_sandbox_metrics_response__descriptor);
	if (!resp)
		return -ENOMEM;
	int r = podstats_metrics(m->pods, call, resp, err);
	if (r < 0)
		return r;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* ---- exec sessions' metrics (common/metrics.h) ---- */

static struct metric_family exec_ops = {
	.name = "cric_exec_sessions_total",
	.help = "Exec sessions asked of monitord: ExecSync runs, and Exec and Attach streaming "
		"URLs handed out, by gRPC code.",
	.type = METRIC_COUNTER,
	.labels = { "kind", "code" },
};

static struct metric_family exec_seconds = {
	.name = "cric_exec_sync_duration_seconds",
	.help = "Time an ExecSync took, from the call to the command's end.",
	.type = METRIC_HISTOGRAM,
	.bounds = metric_latency_bounds,
	.n_bounds = METRIC_N_LATENCY_BOUNDS,
};

static int counted(const char *kind, cric_handler_fn fn, void *ud, const struct cric_call *call,
		   const ProtobufCMessage *in, ProtobufCMessage **out, struct cric_err *err)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = fn(ud, call, in, out, err);
	metric_add(&exec_ops,
		   METRIC_VALUES(kind, grpc_code_name(grpc_code_from_errno(r < 0 ? r : 0))), 1);
	if (strcmp(kind, "exec_sync") == 0)
		metric_observe(&exec_seconds, NULL, metric_seconds_since(&t0));
	return r;
}

static int counted_exec_sync(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			     ProtobufCMessage **out, struct cric_err *err)
{
	return counted("exec_sync", exec_sync, ud, call, in, out, err);
}

static int counted_exec(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			ProtobufCMessage **out, struct cric_err *err)
{
	return counted("exec", cri_exec, ud, call, in, out, err);
}

static int counted_attach(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	return counted("attach", cri_attach, ud, call, in, out, err);
}

/* The CRI methods monitord serves (cri-gateway/routes.c sends them). */
static const struct cric_handler cri_lines[] = {
	{ CRI_RUNTIME(exec_sync), counted_exec_sync, .callers = CALLER_GATEWAY | CALLER_ADMIN },
	{ CRI_RUNTIME(exec), counted_exec, .callers = CALLER_GATEWAY | CALLER_ADMIN,
	  .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(attach), counted_attach, .callers = CALLER_GATEWAY | CALLER_ADMIN,
	  .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(port_forward), cri_port_forward, .callers = CALLER_GATEWAY | CALLER_ADMIN,
	  .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(reopen_container_log), cri_reopen_log,
	  .callers = CALLER_GATEWAY | CALLER_ADMIN, .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(container_stats), cri_container_stats,
	  .callers = CALLER_GATEWAY | CALLER_ADMIN, .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(list_container_stats), cri_list_container_stats,
	  .callers = CALLER_GATEWAY | CALLER_ADMIN, .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(pod_sandbox_stats), cri_pod_sandbox_stats,
	  .callers = CALLER_GATEWAY | CALLER_ADMIN, .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(list_pod_sandbox_stats), cri_list_pod_sandbox_stats,
	  .callers = CALLER_GATEWAY | CALLER_ADMIN, .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(list_metric_descriptors), cri_list_metric_descriptors,
	  .callers = CALLER_GATEWAY | CALLER_ADMIN, .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRI_RUNTIME(list_pod_sandbox_metrics), cri_list_pod_sandbox_metrics,
	  .callers = CALLER_GATEWAY | CALLER_ADMIN, .cap_ms = MONITORD_CALL_CAP_MS },
};

/* The streaming list calls, paged from their List twins (listpage.h). */
static const struct listpage_twin list_twins[] = {
	{ CRI_RUNTIME(stream_container_stats), CRI_RUNTIME(list_container_stats),
	  cri_list_container_stats },
	{ CRI_RUNTIME(stream_pod_sandbox_stats), CRI_RUNTIME(list_pod_sandbox_stats),
	  cri_list_pod_sandbox_stats },
	{ CRI_RUNTIME(stream_pod_sandbox_metrics), CRI_RUNTIME(list_pod_sandbox_metrics),
	  cri_list_pod_sandbox_metrics },
};

static int list_page(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err)
{
	return listpage_serve(list_twins, ARRAY_SIZE(list_twins), ud, call, in, out, err);
}

/* runtimed calls them for its containers; the integration tests through
 * cric-call; the gateway the pages of the streaming lists. */
static const struct cric_handler monitord_lines[] = {
	{ CRIC_MONITORD(create_monitor), create_monitor, .callers = CALLER_RUNTIMED | CALLER_ADMIN,
	  .cap_ms = MONITORD_CREATE_CAP_MS },
	{ CRIC_MONITORD(reopen_log), reopen_log, .callers = CALLER_RUNTIMED | CALLER_ADMIN,
	  .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRIC_MONITORD(monitor_status), monitor_status, .callers = CALLER_RUNTIMED | CALLER_ADMIN,
	  .cap_ms = MONITORD_CALL_CAP_MS },
	{ CRIC_MONITORD(remove_monitor), remove_monitor, .callers = CALLER_RUNTIMED | CALLER_ADMIN,
	  .cap_ms = MONITORD_REMOVE_CAP_MS },
	{ CRIC_MONITORD(list_page), list_page, .callers = CALLER_GATEWAY | CALLER_ADMIN,
	  .cap_ms = MONITORD_CALL_CAP_MS },
};

const struct cric_service monitord_services[] = {
	{ &cric__monitord__monitord__descriptor, monitord_lines, ARRAY_SIZE(monitord_lines) },
	{ &runtime__v1__runtime_service__descriptor, cri_lines, ARRAY_SIZE(cri_lines),
	  .partial = true },
};

const size_t monitord_n_services = ARRAY_SIZE(monitord_services);
