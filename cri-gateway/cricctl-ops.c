/* cricctl's operator's view: `events` follows GetContainerEvents, one line
 * per event; `inspect` joins what every daemon knows of a container or pod
 * (the CRI status with its verbose info, runtimed's record, runc's state,
 * the monitor's status, netd's network, the rootfs mount) into one JSON
 * document. A part that cannot be had says why in its place. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ipc.h"
#include "common/pbjson.h"
#include "common/service.h"
#include "cricctl.h"
#include "proto/cri/api.pb-c.h"

/* ---- events ---- */

static const char *event_name(Runtime__V1__ContainerEventType t)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&runtime__v1__container_event_type__descriptor, t);
	return v ? v->name : "?";
}

static void print_event(const Runtime__V1__ContainerEventResponse *e)
{
	char when[64];
	time_t s = (time_t)(e->created_at / 1000000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t k = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + k, sizeof(when) - k, ".%09lldZ", (long long)(e->created_at % 1000000000));
	const Runtime__V1__PodSandboxStatus *p = e->pod_sandbox_status;
	const Runtime__V1__PodSandboxMetadata *md = p ? p->metadata : NULL;
	printf("%s %-25s %s %s %s/%s\n", when, event_name(e->container_event_type), e->container_id,
	       p && *p->id ? p->id : "-", md ? md->namespace_ : "-", md ? md->name : "-");
	fflush(stdout);
}

/* One batch on the call, waited for. */
static grpc_call_error batch(struct ctl *c, grpc_call *call, grpc_op *ops, size_t n, void *tag)
{
	grpc_call_error e = grpc_call_start_batch(call, ops, n, tag, NULL);
	if (e == GRPC_CALL_OK)
		grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return e;
}

/* events [COUNT]: until the stream ends (an error: exit 1) or COUNT events
 * were printed (exit 0). */
int cmd_events(struct ctl *c, int n, char **args)
{
	long want = 0;
	if (n > 0) {
		char *end;
		errno = 0;
		want = strtol(args[0], &end, 10);
		if (errno || *end || want <= 0) {
			fprintf(stderr, "cricctl: events: COUNT \"%s\" is not a positive number\n",
				args[0]);
			return 2;
		}
	}
	grpc_slice method =
	    grpc_slice_from_static_string("/runtime.v1.RuntimeService/GetContainerEvents");
	grpc_call *call =
	    grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method, NULL,
				     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_slice_unref(method);
	grpc_slice body = grpc_empty_slice(); /* GetEventsRequest{} packs to nothing */
	grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1);
	grpc_metadata_array initial_md, trailing_md;
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();

	static int tag_start, tag_status, tag_msg;
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	batch(c, call, ops, 4, &tag_start);
	grpc_op st;
	memset(&st, 0, sizeof(st));
	st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	st.data.recv_status_on_client.trailing_metadata = &trailing_md;
	st.data.recv_status_on_client.status = &status;
	st.data.recv_status_on_client.status_details = &details;
	bool status_started =
	    grpc_call_start_batch(call, &st, 1, &tag_status, NULL) == GRPC_CALL_OK;

	long seen = 0;
	int rc = 0;
	while (!want || seen < want) {
		grpc_byte_buffer *recv = NULL;
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &recv;
		if (batch(c, call, &op, 1, &tag_msg) != GRPC_CALL_OK || !recv)
			break; /* the stream ended: its status says why */
		grpc_byte_buffer_reader r;
		Runtime__V1__ContainerEventResponse *e = NULL;
		if (grpc_byte_buffer_reader_init(&r, recv)) {
			grpc_slice all = grpc_byte_buffer_reader_readall(&r);
			e = runtime__v1__container_event_response__unpack(
			    NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
			grpc_slice_unref(all);
			grpc_byte_buffer_reader_destroy(&r);
		}
		grpc_byte_buffer_destroy(recv);
		if (!e) {
			fprintf(stderr, "cricctl: events: an event does not decode\n");
			rc = 1;
			break;
		}
		print_event(e);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		seen++;
	}
	bool done = want && seen >= want;
	if (done || rc)
		grpc_call_cancel(call, NULL);
	if (status_started)
		grpc_completion_queue_pluck(c->cq, &tag_status, gpr_inf_future(GPR_CLOCK_REALTIME),
					    NULL);
	if (!done && !rc) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%.*s", (int)GRPC_SLICE_LENGTH(details),
			 (const char *)GRPC_SLICE_START_PTR(details));
		rc = ctl_fail(c, "events", status == GRPC_STATUS_OK ? CODE_UNAVAILABLE : status,
			      status == GRPC_STATUS_OK ? "the stream ended" : msg);
	}
	grpc_byte_buffer_destroy(send);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_call_unref(call);
	return rc;
}

/* ---- inspect ---- */

/* {"error": ...}: a part that could not be had says why in its place. */
__attribute__((format(printf, 1, 2))) static json_t *error_part(const char *fmt, ...)
{
	char buf[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:s}", "error", buf);
}

/* A CRI status as JSON, its verbose "info" map's JSON values parsed. */
static json_t *with_info(const ProtobufCMessage *m)
{
	json_t *j = pb_to_json(m);
	json_t *info = j ? json_object_get(j, "info") : NULL;
	const char *k;
	json_t *v;
	json_object_foreach (info, k, v) {
		json_t *parsed =
		    json_is_string(v) ? json_loads(json_string_value(v), 0, NULL) : NULL;
		if (parsed)
			json_object_set_new(info, k, parsed);
	}
	return j;
}

/* An internal call to daemon over nng (cricctl is root: an admin caller);
 * the answer as JSON, or an error part. */
static json_t *internal(struct ctl *c, const char *daemon, struct cric_method_ref meth,
			const ProtobufCMessage *req)
{
	_cleanup_free_ char *url = config_ipc_url(c->cfg, daemon);
	struct cric_client *cl = NULL;
	struct cric_err err = { { 0 } };
	if (!url || cric_client_open_peer(daemon, url, config_daemon_peer_uid(c->cfg, daemon), &cl,
					  &err) < 0)
		return error_part("%s: %s", daemon, err.msg);
	for (int i = 0; i < 300 && !cric_client_connected(cl); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(cl, meth, NULL, deadline_in_ms((int64_t)c->timeout_s * 1000), req,
				  &out, &msg);
	cric_client_close(cl);
	if (code != CODE_OK)
		return error_part("%s: %s", grpc_code_name(code), msg ? msg : "");
	json_t *j = pb_to_json(out);
	protobuf_c_message_free_unpacked(out, NULL);
	return j ? j : error_part("out of memory");
}

static json_t *json_file(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	return j ? j : error_part("\"%s\": %s", path, e.text);
}

/* runc's state of id under the handler's root: what a person asks runc
 * state for (runc's state.json also holds the whole config: left out). */
static json_t *runc_state(struct ctl *c, const char *handler, const char *id)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/runtimed/runtimes/%s/%s/state.json", c->cfg->run_dir,
		 handler && *handler ? handler : "runc", id);
	json_t *full = json_file(path);
	if (json_object_get(full, "error"))
		return full;
	json_t *j = json_object();
	const char *keep[] = { "id",      "init_process_pid", "init_process_start",
			       "created", "cgroup_paths",     "namespace_paths",
			       "rootless" };
	for (size_t i = 0; j && i < sizeof(keep) / sizeof(*keep); i++) {
		json_t *v = json_object_get(full, keep[i]);
		if (v)
			json_object_set(j, keep[i], v);
	}
	json_decref(full);
	return j;
}

/* The mount on <run_dir>/stored/rootfs/<id>, from our mountinfo. */
static json_t *rootfs_mount(struct ctl *c, const char *id)
{
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/stored/rootfs/%s", c->cfg->run_dir, id);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return error_part("/proc/self/mountinfo: %s", strerror(errno));
	char line[8192];
	json_t *found = NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint options [tags] - fstype source super */
		char mp[PATH_MAX], opts[4096], fstype[64], source[PATH_MAX], super[4096];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s %4095s", mp, opts) != 2 ||
		    strcmp(mp, want) != 0 ||
		    sscanf(dash + 3, "%63s %4095s %4095s", fstype, source, super) != 3)
			continue;
		found = json_pack("{s:s, s:s, s:s, s:s}", "mountpoint", mp, "fstype", fstype,
				  "options", opts, "super_options", super);
	}
	fclose(f);
	return found ? found : error_part("\"%s\" is not mounted", want);
}

static json_t *container_view(struct ctl *c, const ProtobufCMessage *status)
{
	const Runtime__V1__ContainerStatusResponse *s = (const void *)status;
	const char *id = s->status->id;
	json_t *j = json_object();
	json_object_set_new(j, "kind", json_string("container"));
	json_object_set_new(j, "status", with_info(status));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/runtimed/containers/%s.json", c->cfg->state_dir, id);
	json_t *rec = json_file(path);
	json_object_del(rec, "config"); /* base64 of the packed config: the status has it */
	const char *handler = json_string_value(json_object_get(rec, "handler"));
	json_object_set_new(j, "runc", runc_state(c, handler, id));
	json_object_set_new(j, "record", rec);
	Cric__Monitord__MonitorStatusRequest mreq = CRIC__MONITORD__MONITOR_STATUS_REQUEST__INIT;
	mreq.container_id = (char *)id;
	json_object_set_new(j, "monitor",
			    internal(c, "monitord", CRIC_MONITORD(monitor_status), &mreq.base));
	json_object_set_new(j, "rootfs", rootfs_mount(c, id));
	return j;
}

static json_t *pod_view(struct ctl *c, const ProtobufCMessage *status)
{
	const Runtime__V1__PodSandboxStatusResponse *s = (const void *)status;
	const char *id = s->status->id;
	json_t *j = json_object();
	json_object_set_new(j, "kind", json_string("pod"));
	json_object_set_new(j, "status", with_info(status));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/runtimed/sandboxes/%s.json", c->cfg->state_dir, id);
	json_t *rec = json_file(path);
	json_object_del(rec, "config");
	const char *handler = json_string_value(json_object_get(rec, "handler"));
	json_object_set_new(j, "runc", runc_state(c, handler, id));
	json_object_set_new(j, "record", rec);
	Cric__Netd__PodNetworkStatusRequest nreq = CRIC__NETD__POD_NETWORK_STATUS_REQUEST__INIT;
	nreq.pod_id = (char *)id;
	json_object_set_new(j, "network",
			    internal(c, "netd", CRIC_NETD(pod_network_status), &nreq.base));
	return j;
}

/* inspect ID: a container's or a pod's id or unique prefix. */
int cmd_inspect(struct ctl *c, int n, char **args)
{
	(void)n;
	char msg[1024], pmsg[1024];
	ProtobufCMessage *out = NULL;
	Runtime__V1__ContainerStatusRequest creq = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	creq.container_id = args[0];
	creq.verbose = true;
	unsigned code =
	    cri_call(c, "/runtime.v1.RuntimeService/ContainerStatus", &creq.base,
		     &runtime__v1__container_status_response__descriptor, &out, msg, sizeof(msg));
	json_t *view = NULL;
	if (code == CODE_OK && ((Runtime__V1__ContainerStatusResponse *)out)->status)
		view = container_view(c, out);
	if (out)
		protobuf_c_message_free_unpacked(out, NULL);
	out = NULL;
	if (!view && (code == CODE_OK || code == CODE_NOT_FOUND)) {
		Runtime__V1__PodSandboxStatusRequest preq =
		    RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
		preq.pod_sandbox_id = args[0];
		preq.verbose = true;
		code = cri_call(c, "/runtime.v1.RuntimeService/PodSandboxStatus", &preq.base,
				&runtime__v1__pod_sandbox_status_response__descriptor, &out, pmsg,
				sizeof(pmsg));
		if (code == CODE_OK && ((Runtime__V1__PodSandboxStatusResponse *)out)->status)
			view = pod_view(c, out);
		else if (code == CODE_NOT_FOUND)
			snprintf(msg, sizeof(msg), "no container or pod \"%s\"", args[0]);
		else
			memcpy(msg, pmsg, sizeof(msg));
		if (out)
			protobuf_c_message_free_unpacked(out, NULL);
	}
	if (!view)
		return ctl_fail(c, "inspect", code == CODE_OK ? CODE_INTERNAL : code, msg);
	char *text = json_dumps(view, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("%s\n", text ? text : "{}");
	free(text);
	json_decref(view);
	return 0;
}
