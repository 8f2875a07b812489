/* cricctl: a small CRI client for cric's own scripts and for people on a
 * machine without crictl. It speaks the same gRPC protocol as the kubelet,
 * through grpc C core, and asks each daemon's health over nng. `cricctl
 * help` lists the commands (the table below); the image and container
 * commands are in cricctl-ctr.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "common/cleanup.h"
#include "common/config.h"
#include "common/ipc.h"
#include "common/macro.h"
#include "proto/cri/api.pb-c.h"
#include "common/service.h"
#include "cricctl.h"
#include "routes.h"

unsigned cri_call(struct ctl *c, const char *path, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out, char *msg,
		  size_t msglen)
{
	*out = NULL;
	size_t n = protobuf_c_message_get_packed_size(req);
	_cleanup_free_ uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return CODE_RESOURCE_EXHAUSTED;
	protobuf_c_message_pack(req, buf);

	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_seconds(c->timeout_s, GPR_TIMESPAN));
	grpc_slice method = grpc_slice_from_copied_string(path);
	grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
						   method, NULL, deadline, NULL);
	grpc_slice_unref(method);

	grpc_slice body = grpc_slice_from_copied_buffer((const char *)buf, n);
	grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	grpc_byte_buffer *recv = NULL;
	grpc_metadata_array initial_md, trailing_md;
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();

	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;

	static int tag;
	if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK)
		grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

	snprintf(msg, msglen, "%.*s", (int)GRPC_SLICE_LENGTH(details),
		 (const char *)GRPC_SLICE_START_PTR(details));
	if (status == GRPC_STATUS_OK) {
		grpc_byte_buffer_reader r;
		if (recv && grpc_byte_buffer_reader_init(&r, recv)) {
			grpc_slice all = grpc_byte_buffer_reader_readall(&r);
			*out = protobuf_c_message_unpack(out_desc, NULL, GRPC_SLICE_LENGTH(all),
							 GRPC_SLICE_START_PTR(all));
			grpc_slice_unref(all);
			grpc_byte_buffer_reader_destroy(&r);
		}
		if (!*out) {
			status = GRPC_STATUS_INTERNAL;
			snprintf(msg, msglen, "undecodable answer");
		}
	}
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_byte_buffer_destroy(send);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_call_unref(call);
	return (unsigned)status;
}

int ctl_fail(struct ctl *c, const char *what, unsigned code, const char *msg)
{
	fprintf(stderr, "cricctl: %s: %s: %s\n", what, grpc_code_name(code), msg);
	if (code == CODE_UNAVAILABLE || code == CODE_DEADLINE_EXCEEDED)
		fprintf(stderr,
			"cricctl: nothing answered on %s: is cric running there? A suite started "
			"with `cric-up --root DIR` (make demo: /tmp/cric-demo) is reached with "
			"--root DIR, any socket with --socket PATH.\n",
			c->socket);
	return 1;
}

static int cmd_version(struct ctl *c)
{
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	ProtobufCMessage *out;
	char msg[1024];
	unsigned code =
	    cri_call(c, "/runtime.v1.RuntimeService/Version", &req.base,
		     &runtime__v1__version_response__descriptor, &out, msg, sizeof(msg));
	if (code != CODE_OK)
		return ctl_fail(c, "Version", code, msg);
	Runtime__V1__VersionResponse *v = (Runtime__V1__VersionResponse *)out;
	printf("Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n",
	       v->version, v->runtime_name, v->runtime_version, v->runtime_api_version);
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

static int cmd_status(struct ctl *c, bool verbose)
{
	Runtime__V1__StatusRequest req = RUNTIME__V1__STATUS_REQUEST__INIT;
	req.verbose = verbose;
	ProtobufCMessage *out;
	char msg[1024];
	unsigned code = cri_call(c, "/runtime.v1.RuntimeService/Status", &req.base,
				 &runtime__v1__status_response__descriptor, &out, msg, sizeof(msg));
	if (code != CODE_OK)
		return ctl_fail(c, "Status", code, msg);
	Runtime__V1__StatusResponse *s = (Runtime__V1__StatusResponse *)out;
	for (size_t i = 0; s->status && i < s->status->n_conditions; i++) {
		Runtime__V1__RuntimeCondition *k = s->status->conditions[i];
		printf("%-13s %-5s %s%s%s\n", k->type, k->status ? "true" : "false", k->reason,
		       k->message[0] ? ": " : "", k->message);
	}
	for (size_t i = 0; i < s->n_runtime_handlers; i++)
		printf("handler       \"%s\"\n", s->runtime_handlers[i]->name);
	for (size_t i = 0; i < s->n_info; i++)
		printf("info %s: %s\n", s->info[i]->key, s->info[i]->value);
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

static int cmd_runtime_config(struct ctl *c)
{
	Runtime__V1__RuntimeConfigRequest req = RUNTIME__V1__RUNTIME_CONFIG_REQUEST__INIT;
	ProtobufCMessage *out;
	char msg[1024];
	unsigned code =
	    cri_call(c, "/runtime.v1.RuntimeService/RuntimeConfig", &req.base,
		     &runtime__v1__runtime_config_response__descriptor, &out, msg, sizeof(msg));
	if (code != CODE_OK)
		return ctl_fail(c, "RuntimeConfig", code, msg);
	Runtime__V1__RuntimeConfigResponse *r = (Runtime__V1__RuntimeConfigResponse *)out;
	printf("cgroup driver: %s\n",
	       r->linux && r->linux->cgroup_driver == RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
		   ? "systemd"
		   : "cgroupfs");
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

static int cmd_wait(struct ctl *c, int seconds)
{
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	char msg[1024] = "";
	unsigned code = CODE_UNAVAILABLE;
	int64_t until = deadline_in_ms((int64_t)seconds * 1000);
	c->timeout_s = 2;
	while (now_unix_ns() < until) {
		ProtobufCMessage *out;
		code = cri_call(c, "/runtime.v1.RuntimeService/Version", &req.base,
				&runtime__v1__version_response__descriptor, &out, msg, sizeof(msg));
		if (code == CODE_OK) {
			protobuf_c_message_free_unpacked(out, NULL);
			return 0;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return ctl_fail(c, "wait for the CRI socket", code, msg);
}

static int cmd_health(struct ctl *c)
{
	int rc = 0;
	for (int d = 0; d < D_COUNT; d++) {
		_cleanup_free_ char *url = config_ipc_url(c->cfg, daemon_names[d]);
		struct cric_client *cl = NULL;
		struct cric_err err = { { 0 } };
		if (!url || cric_client_open_peer(daemon_names[d], url,
						  config_daemon_peer_uid(c->cfg, daemon_names[d]),
						  &cl, &err) < 0) {
			printf("%-9s error: %s\n", daemon_names[d], err.msg);
			rc = 1;
			continue;
		}
		/* Give the dialer a moment to connect before asking (generous: a
		 * health probe must not fail on a slow, busy machine). */
		for (int i = 0; i < 300 && !cric_client_connected(cl); i++) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
		ProtobufCMessage *out;
		_cleanup_free_ char *msg = NULL;
		unsigned code = cric_call(cl, CRIC_HEALTH(health), NULL,
					  deadline_in_ms(HEALTH_CAP_MS), &req.base, &out, &msg);
		if (code == CODE_OK) {
			Cric__HealthResponse *h = (Cric__HealthResponse *)out;
			printf("%-9s ok    pid %-7lld version %s\n", h->daemon, (long long)h->pid,
			       h->version);
			protobuf_c_message_free_unpacked(out, NULL);
		} else {
			printf("%-9s DOWN  %s: %s\n", daemon_names[d], grpc_code_name(code),
			       msg ? msg : "");
			rc = 1;
		}
		cric_client_close(cl);
	}
	return rc;
}

static int cmd_pod_call(struct ctl *c, const char *what, const char *id)
{
	char msg[1024], path[128];
	/* Stopping or removing an unknown pod succeeds (CRI idempotence); a
	 * person typing an id wants to know it named nothing. */
	Runtime__V1__PodSandboxStatusRequest st = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
	st.pod_sandbox_id = (char *)id;
	ProtobufCMessage *o = NULL;
	if (cri_call(c, "/runtime.v1.RuntimeService/PodSandboxStatus", &st.base,
		     &runtime__v1__pod_sandbox_status_response__descriptor, &o, msg,
		     sizeof(msg)) == CODE_NOT_FOUND)
		fprintf(stderr, "cricctl: no pod \"%s\": nothing to %s\n", id,
			strcmp(what, "StopPodSandbox") == 0 ? "stop" : "remove");
	if (o)
		protobuf_c_message_free_unpacked(o, NULL);
	ProtobufCMessage *out;
	Runtime__V1__StopPodSandboxRequest sreq = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__RemovePodSandboxRequest rreq = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
	bool stop = strcmp(what, "StopPodSandbox") == 0;
	sreq.pod_sandbox_id = rreq.pod_sandbox_id = (char *)id;
	snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/%s", what);
	unsigned code = cri_call(c, path, stop ? &sreq.base : &rreq.base,
				 stop ? &runtime__v1__stop_pod_sandbox_response__descriptor
				      : &runtime__v1__remove_pod_sandbox_response__descriptor,
				 &out, msg, sizeof(msg));
	if (code != CODE_OK)
		return ctl_fail(c, what, code, msg);
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

/* Stop and remove every pod (which removes its containers), then any
 * container left. UNIMPLEMENTED means this runtime has no pods yet. */
static int cmd_remove_all(struct ctl *c)
{
	char msg[1024];
	ProtobufCMessage *out;
	Runtime__V1__ListPodSandboxRequest lreq = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
	unsigned code =
	    cri_call(c, "/runtime.v1.RuntimeService/ListPodSandbox", &lreq.base,
		     &runtime__v1__list_pod_sandbox_response__descriptor, &out, msg, sizeof(msg));
	if (code == CODE_UNIMPLEMENTED) {
		printf("no pods: this cric does not run pods yet\n");
		return 0;
	}
	if (code != CODE_OK)
		return ctl_fail(c, "ListPodSandbox", code, msg);
	int rc = 0;
	Runtime__V1__ListPodSandboxResponse *l = (Runtime__V1__ListPodSandboxResponse *)out;
	for (size_t i = 0; i < l->n_items; i++) {
		const char *id = l->items[i]->id;
		if (cmd_pod_call(c, "StopPodSandbox", id) == 0 &&
		    cmd_pod_call(c, "RemovePodSandbox", id) == 0)
			printf("removed pod %s\n", id);
		else
			rc = 1;
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return rc;
}

/* Run a pod with the kubelet's defaults for a plain pod (own network, IPC
 * and UTS; one PID namespace per container) and print its id. */
static int cmd_run_pod(struct ctl *c, const char *name, const char *ns)
{
	char uid[96], msg[1024], logdir[4096];
	snprintf(uid, sizeof(uid), "cricctl-%s-%s", ns, name);
	/* Where the kubelet puts a pod's logs, under this root. */
	snprintf(logdir, sizeof(logdir), "%s/var/log/pods/%s_%s_%s", c->cfg->root, ns, name, uid);
	Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	md.name = (char *)name;
	md.namespace_ = (char *)ns;
	md.uid = uid;
	Runtime__V1__NamespaceOption nso = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	nso.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	Runtime__V1__LinuxSandboxSecurityContext sc =
	    RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
	sc.namespace_options = &nso;
	Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
	lx.security_context = &sc;
	Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	cfg.metadata = &md;
	cfg.hostname = (char *)name;
	cfg.log_directory = logdir;
	cfg.linux = &lx;
	Runtime__V1__RunPodSandboxRequest req = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	req.config = &cfg;
	ProtobufCMessage *out;
	unsigned code =
	    cri_call(c, "/runtime.v1.RuntimeService/RunPodSandbox", &req.base,
		     &runtime__v1__run_pod_sandbox_response__descriptor, &out, msg, sizeof(msg));
	if (code != CODE_OK)
		return ctl_fail(c, "RunPodSandbox", code, msg);
	printf("%s\n", ((Runtime__V1__RunPodSandboxResponse *)out)->pod_sandbox_id);
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

/* One line per pod: id, state, IP, namespace/name. */
static int cmd_pods(struct ctl *c)
{
	char msg[1024];
	ProtobufCMessage *out;
	Runtime__V1__ListPodSandboxRequest lreq = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
	unsigned code =
	    cri_call(c, "/runtime.v1.RuntimeService/ListPodSandbox", &lreq.base,
		     &runtime__v1__list_pod_sandbox_response__descriptor, &out, msg, sizeof(msg));
	if (code != CODE_OK)
		return ctl_fail(c, "ListPodSandbox", code, msg);
	Runtime__V1__ListPodSandboxResponse *l = (Runtime__V1__ListPodSandboxResponse *)out;
	printf("%-13s %-9s %-16s %s\n", "POD ID", "STATE", "IP", "NAMESPACE/NAME");
	for (size_t i = 0; i < l->n_items; i++) {
		Runtime__V1__PodSandbox *p = l->items[i];
		Runtime__V1__PodSandboxStatusRequest sreq =
		    RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
		sreq.pod_sandbox_id = p->id;
		ProtobufCMessage *st = NULL;
		const char *ip = "";
		if (cri_call(c, "/runtime.v1.RuntimeService/PodSandboxStatus", &sreq.base,
			     &runtime__v1__pod_sandbox_status_response__descriptor, &st, msg,
			     sizeof(msg)) == CODE_OK) {
			Runtime__V1__PodSandboxStatusResponse *r =
			    (Runtime__V1__PodSandboxStatusResponse *)st;
			if (r->status && r->status->network)
				ip = r->status->network->ip;
		}
		printf("%-13.13s %-9s %-16s %s/%s\n", p->id,
		       p->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY ? "READY"
										 : "NOTREADY",
		       ip[0] ? ip : "-", p->metadata ? p->metadata->namespace_ : "?",
		       p->metadata ? p->metadata->name : "?");
		if (st)
			protobuf_c_message_free_unpacked(st, NULL);
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

static int run_version(struct ctl *c, int n, char **a)
{
	(void)n, (void)a;
	return cmd_version(c);
}
static int run_status(struct ctl *c, int n, char **a)
{
	return cmd_status(c, n > 0 && strcmp(a[0], "-v") == 0);
}
static int run_runtime_config(struct ctl *c, int n, char **a)
{
	(void)n, (void)a;
	return cmd_runtime_config(c);
}
static int run_wait(struct ctl *c, int n, char **a)
{
	return cmd_wait(c, n > 0 ? atoi(a[0]) : 10);
}
static int run_pods(struct ctl *c, int n, char **a)
{
	(void)n, (void)a;
	return cmd_pods(c);
}
static int run_run_pod(struct ctl *c, int n, char **a)
{
	return cmd_run_pod(c, a[0], n > 1 ? a[1] : "default");
}
static int run_stop_pod(struct ctl *c, int n, char **a)
{
	int rc = 0;
	for (int i = 0; i < n; i++)
		rc |= cmd_pod_call(c, "StopPodSandbox", a[i]);
	return rc;
}
static int run_rm_pod(struct ctl *c, int n, char **a)
{
	int rc = 0;
	for (int i = 0; i < n; i++)
		rc |= cmd_pod_call(c, "RemovePodSandbox", a[i]);
	return rc;
}
static int run_remove_all(struct ctl *c, int n, char **a)
{
	(void)n, (void)a;
	return cmd_remove_all(c);
}

/* Every command: name, arguments, at least how many, what it does. health
 * and socket need no CRI channel (main handles them). */
static const struct command {
	const char *name, *args;
	int min_args;
	const char *what;
	int (*run)(struct ctl *c, int n, char **args);
} commands[] = {
	{ "version", "", 0, "the runtime's name and versions (CRI Version)", run_version },
	{ "status", "[-v]", 0, "RuntimeReady and NetworkReady, handlers (-v: the info map)",
	  run_status },
	{ "runtime-config", "", 0, "the cgroup driver the kubelet must match", run_runtime_config },
	{ "health", "", 0, "ask each of the six daemons for its health over nng", NULL },
	{ "wait", "[SECONDS]", 0, "retry Version until the socket answers (default 10 s)",
	  run_wait },
	{ "socket", "", 0, "print the CRI socket path of this root or config", NULL },
	{ "pods", "", 0, "list pods: id, state, IP, namespace/name", run_pods },
	{ "run-pod", "NAME [NAMESPACE]", 1,
	  "run a pod with the kubelet's defaults for a plain pod; prints its id", run_run_pod },
	{ "stop-pod", "ID...", 1, "stop pods (their containers first); an unknown id is said",
	  run_stop_pod },
	{ "rm-pod", "ID...", 1, "remove pods and their containers", run_rm_pod },
	{ "remove-all", "", 0,
	  "stop and remove EVERY pod and container of this root, whoever made them",
	  run_remove_all },
	{ "pull", "IMAGE", 1, "pull an image; prints its id (PullImage's image_ref)", cmd_pull },
	{ "images", "", 0, "list images: id, size, tags", cmd_images },
	{ "rmi", "IMAGE...", 1, "remove images (by id, tag or digest)", cmd_rmi },
	{ "ps", "[-a]", 0, "list running containers (-a: all)", cmd_ps },
	{ "create", "POD_ID NAME IMAGE [COMMAND ARG...]", 3,
	  "create a container in a pod (log: NAME/0.log in the pod's log directory); prints "
	  "its id. Also `create POD_ID CONTAINER.json POD.json` with crictl's files",
	  cmd_create },
	{ "start", "ID", 1, "start a created container", cmd_start },
	{ "stop", "ID [TIMEOUT]", 1, "stop signal, SIGKILL after TIMEOUT seconds (default 10)",
	  cmd_stop },
	{ "rm", "ID...", 1, "remove containers (killed first if running)", cmd_rm },
	{ "logs", "ID", 1, "print a container's log (stdout lines to stdout, stderr to stderr)",
	  cmd_logs },
	{ "exec", "ID COMMAND [ARG...]", 2,
	  "run a command in a running container (ExecSync, timeout --timeout); exits with "
	  "its exit code",
	  cmd_exec },
	{ "call", "SERVICE/METHOD [JSON]", 1,
	  "any CRI method, e.g. `call RuntimeService/ContainerStatus '{\"container_id\": "
	  "\"ID\", \"verbose\": true}'`; prints the answer as JSON",
	  cmd_call },
	{ "events", "[COUNT]", 0,
	  "follow GetContainerEvents: one line per event (time, type, container id, pod id, "
	  "namespace/name), the recent ones first; ends after COUNT events, or exit 1 when the "
	  "stream is closed (relist)",
	  cmd_events },
	{ "inspect", "ID", 1,
	  "a container's or pod's joined view as JSON: CRI status (verbose), runtimed's record, "
	  "runc state, the monitor's status (container), rootfs mount (container), netd's "
	  "network (pod)",
	  cmd_inspect },
	{ "help", "", 0, "this text", NULL },
};

static void usage(FILE *to)
{
	fprintf(to,
		"Usage: cricctl [--root DIR | --config FILE | --socket PATH] [--timeout SECONDS] "
		"COMMAND [ARG...]\n"
		"  --root DIR      the suite started by `cric-up --root DIR` (make demo: "
		"/tmp/cric-demo)\n"
		"  --socket PATH   a CRI socket (default: the config's, /run/cric/cric.sock)\n"
		"  --timeout S     each call's deadline (default 10)\n"
		"Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		fprintf(to, "  %s %s\n      %s\n", commands[i].name, commands[i].args,
			commands[i].what);
	}
}

/* The commands that speak CRI; args are what follows the command's name. */
static int run_cri_command(struct ctl *c, const char *cmd, int n, char **args)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(cmd, commands[i].name) != 0 || !commands[i].run)
			continue;
		if (n < commands[i].min_args) {
			fprintf(stderr, "Usage: cricctl %s %s\n", commands[i].name,
				commands[i].args);
			return 2;
		}
		return commands[i].run(c, n, args);
	}
	fprintf(stderr, "cricctl: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "root", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *sock = NULL, *root = NULL, *config = NULL;
	struct ctl c = { .timeout_s = 10 };
	int o;
	while ((o = getopt_long(argc, argv, "+s:r:c:t:h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			sock = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 't':
			c.timeout_s = atoi(optarg) > 0 ? atoi(optarg) : 10;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	struct cric_err err = { { 0 } };
	_cleanup_(config_freep) struct cric_config *cfg = NULL;
	if (config_load(root, config, &cfg, &err) < 0) {
		fprintf(stderr, "cricctl: %s\n", err.msg);
		return 1;
	}
	c.cfg = cfg;
	if (strcmp(cmd, "health") == 0)
		return cmd_health(&c);
	if (strcmp(cmd, "socket") == 0) {
		printf("%s\n", sock ? sock : cfg->cri_socket);
		return 0;
	}

	c.socket = sock ? sock : cfg->cri_socket;
	char target[512];
	snprintf(target, sizeof(target), "unix:%s", c.socket);
	grpc_init();
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	c.ch = grpc_channel_create(target, creds, NULL);
	grpc_channel_credentials_release(creds);
	c.cq = grpc_completion_queue_create_for_pluck(NULL);

	int rc = run_cri_command(&c, cmd, argc - optind - 1, argv + optind + 1);
	grpc_completion_queue_shutdown(c.cq);
	while (grpc_completion_queue_pluck(c.cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		   .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c.cq);
	grpc_channel_destroy(c.ch);
	grpc_shutdown();
	return rc;
}
