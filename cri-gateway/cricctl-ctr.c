/* cricctl's image and container commands, and `call` for any CRI method
 * (see cricctl.c for the command table and the help text). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/pbjson.h"
#include "common/pbutil.h"
#include "cricctl.h"
#include "proto/cri/api.pb-c.h"

#define RT "/runtime.v1.RuntimeService/"
#define IM "/runtime.v1.ImageService/"

/* One call whose answer the command only checks. */
static int call_ok(struct ctl *c, const char *method, const char *path, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out)
{
	char msg[1024];
	ProtobufCMessage *o = NULL;
	unsigned code = cri_call(c, path, req, out_desc, &o, msg, sizeof(msg));
	if (code != CODE_OK || !o) {
		ctl_fail(c, method, code != CODE_OK ? code : CODE_INTERNAL,
			 code != CODE_OK ? msg : "no answer");
		return 1;
	}
	if (out)
		*out = o;
	else
		protobuf_c_message_free_unpacked(o, NULL);
	return 0;
}

int cmd_pull(struct ctl *c, int n, char **args)
{
	(void)n;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	spec.image = args[0];
	Runtime__V1__PullImageRequest req = RUNTIME__V1__PULL_IMAGE_REQUEST__INIT;
	req.image = &spec;
	ProtobufCMessage *out = NULL;
	if (call_ok(c, "PullImage", IM "PullImage", &req.base,
		    &runtime__v1__pull_image_response__descriptor, &out))
		return 1;
	printf("%s\n", ((Runtime__V1__PullImageResponse *)out)->image_ref);
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

/* The short form of an image id: 12 hex characters after "sha256:". */
static const char *short_id(const char *id)
{
	const char *h = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
	static char buf[13];
	snprintf(buf, sizeof(buf), "%.12s", h);
	return buf;
}

int cmd_images(struct ctl *c, int n, char **args)
{
	(void)n, (void)args;
	Runtime__V1__ListImagesRequest req = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	if (call_ok(c, "ListImages", IM "ListImages", &req.base,
		    &runtime__v1__list_images_response__descriptor, &out))
		return 1;
	Runtime__V1__ListImagesResponse *l = (Runtime__V1__ListImagesResponse *)out;
	printf("%-12s  %10s  %s\n", "IMAGE ID", "SIZE", "TAGS / DIGESTS");
	for (size_t i = 0; i < l->n_images; i++) {
		const Runtime__V1__Image *im = l->images[i];
		printf("%-12s  %7.1f MB ", short_id(im->id), (double)im->size / 1e6);
		for (size_t t = 0; t < im->n_repo_tags; t++)
			printf(" %s", im->repo_tags[t]);
		if (im->n_repo_tags == 0)
			for (size_t t = 0; t < im->n_repo_digests; t++)
				printf(" %s", im->repo_digests[t]);
		printf("%s\n", im->pinned ? "  (pinned)" : "");
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

int cmd_rmi(struct ctl *c, int n, char **args)
{
	int rc = 0;
	for (int i = 0; i < n; i++) {
		Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
		spec.image = args[i];
		Runtime__V1__RemoveImageRequest req = RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
		req.image = &spec;
		if (call_ok(c, "RemoveImage", IM "RemoveImage", &req.base,
			    &runtime__v1__remove_image_response__descriptor, NULL))
			rc = 1;
		else
			printf("removed %s\n", args[i]);
	}
	return rc;
}

static const char *ctr_state_name(Runtime__V1__ContainerState s)
{
	switch (s) {
	case RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED:
		return "CREATED";
	case RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING:
		return "RUNNING";
	case RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED:
		return "EXITED";
	default:
		return "UNKNOWN";
	}
}

/* Running containers, or all with -a: id, state, name, attempt, pod, image. */
int cmd_ps(struct ctl *c, int n, char **args)
{
	bool all = n > 0 && strcmp(args[0], "-a") == 0;
	Runtime__V1__ContainerStateValue running = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
	running.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	Runtime__V1__ContainerFilter filter = RUNTIME__V1__CONTAINER_FILTER__INIT;
	filter.state = &running;
	Runtime__V1__ListContainersRequest req = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
	req.filter = all ? NULL : &filter;
	ProtobufCMessage *out = NULL;
	if (call_ok(c, "ListContainers", RT "ListContainers", &req.base,
		    &runtime__v1__list_containers_response__descriptor, &out))
		return 1;
	Runtime__V1__ListContainersResponse *l = (Runtime__V1__ListContainersResponse *)out;
	printf("%-13s  %-8s  %-20s  %-7s  %-13s  %s\n", "CONTAINER", "STATE", "NAME", "ATTEMPT",
	       "POD ID", "IMAGE");
	for (size_t i = 0; i < l->n_containers; i++) {
		const Runtime__V1__Container *k = l->containers[i];
		printf("%-13.13s  %-8s  %-20s  %-7u  %-13.13s  %s\n", k->id,
		       ctr_state_name(k->state), k->metadata ? k->metadata->name : "?",
		       k->metadata ? k->metadata->attempt : 0, k->pod_sandbox_id,
		       k->image ? k->image->image : "");
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

/* A JSON file into a new message of type d (crictl's files: the .proto's
 * field names). */
static int read_json_message(const char *path, const ProtobufCMessageDescriptor *d,
			     ProtobufCMessage **ret)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		fprintf(stderr, "cricctl: %s: %s (line %d)\n", path, jerr.text, jerr.line);
		return -EINVAL;
	}
	char why[256] = "";
	int r = pb_from_json(j, d, ret, why, sizeof(why));
	json_decref(j);
	if (r < 0)
		fprintf(stderr, "cricctl: %s: %s\n", path, why);
	return r;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* create POD_ID CONTAINER.json POD.json (crictl's form), or
 * create POD_ID NAME IMAGE [COMMAND ARG...]: a container logging to
 * <NAME>/0.log in the pod's log directory. Prints the container id. */
int cmd_create(struct ctl *c, int n, char **args)
{
	ProtobufCMessage *cfg_m = NULL, *pod_m = NULL, *status_m = NULL, *out = NULL;
	Runtime__V1__ContainerConfig simple = RUNTIME__V1__CONTAINER_CONFIG__INIT;
	Runtime__V1__ContainerMetadata md = RUNTIME__V1__CONTAINER_METADATA__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__PodSandboxConfig pod = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	char log_path[512];
	Runtime__V1__CreateContainerRequest req = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
	req.pod_sandbox_id = args[0];
	int rc = 1;
	if (ends_with(args[1], ".json")) {
		if (n != 3 || !ends_with(args[2], ".json")) {
			fprintf(stderr, "cricctl: create POD_ID CONTAINER.json POD.json\n");
			return 2;
		}
		if (read_json_message(args[1], &runtime__v1__container_config__descriptor, &cfg_m) <
			0 ||
		    read_json_message(args[2], &runtime__v1__pod_sandbox_config__descriptor,
				      &pod_m) < 0)
			goto out;
		req.config = (Runtime__V1__ContainerConfig *)cfg_m;
		req.sandbox_config = (Runtime__V1__PodSandboxConfig *)pod_m;
	} else {
		if (n < 3) {
			fprintf(stderr, "cricctl: create POD_ID NAME IMAGE [COMMAND ARG...]\n");
			return 2;
		}
		/* The pod's own metadata, as the kubelet sends its config along. */
		Runtime__V1__PodSandboxStatusRequest sreq =
		    RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
		sreq.pod_sandbox_id = args[0];
		if (call_ok(c, "PodSandboxStatus", RT "PodSandboxStatus", &sreq.base,
			    &runtime__v1__pod_sandbox_status_response__descriptor, &status_m))
			goto out;
		Runtime__V1__PodSandboxStatus *ps =
		    ((Runtime__V1__PodSandboxStatusResponse *)status_m)->status;
		pod.metadata = ps ? ps->metadata : NULL;
		if (ps && ps->id[0])
			req.pod_sandbox_id = ps->id;
		md.name = args[1];
		spec.image = args[2];
		snprintf(log_path, sizeof(log_path), "%s/0.log", args[1]);
		simple.metadata = &md;
		simple.image = &spec;
		simple.log_path = log_path;
		simple.command = args + 3;
		simple.n_command = (size_t)(n - 3);
		req.config = &simple;
		req.sandbox_config = &pod;
	}
	if (call_ok(c, "CreateContainer", RT "CreateContainer", &req.base,
		    &runtime__v1__create_container_response__descriptor, &out) == 0) {
		printf("%s\n", ((Runtime__V1__CreateContainerResponse *)out)->container_id);
		protobuf_c_message_free_unpacked(out, NULL);
		rc = 0;
	}
out:
	if (cfg_m)
		protobuf_c_message_free_unpacked(cfg_m, NULL);
	if (pod_m)
		protobuf_c_message_free_unpacked(pod_m, NULL);
	if (status_m)
		protobuf_c_message_free_unpacked(status_m, NULL);
	return rc;
}

int cmd_start(struct ctl *c, int n, char **args)
{
	(void)n;
	Runtime__V1__StartContainerRequest req = RUNTIME__V1__START_CONTAINER_REQUEST__INIT;
	req.container_id = args[0];
	return call_ok(c, "StartContainer", RT "StartContainer", &req.base,
		       &runtime__v1__start_container_response__descriptor, NULL);
}

/* stop ID [TIMEOUT]: the stop signal, SIGKILL after TIMEOUT s (10). */
int cmd_stop(struct ctl *c, int n, char **args)
{
	Runtime__V1__StopContainerRequest req = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;
	req.container_id = args[0];
	req.timeout = n > 1 ? atoll(args[1]) : 10;
	if (c->timeout_s < req.timeout + 10)
		c->timeout_s = (int)req.timeout + 10;
	return call_ok(c, "StopContainer", RT "StopContainer", &req.base,
		       &runtime__v1__stop_container_response__descriptor, NULL);
}

int cmd_rm(struct ctl *c, int n, char **args)
{
	int rc = 0;
	for (int i = 0; i < n; i++) {
		Runtime__V1__RemoveContainerRequest req =
		    RUNTIME__V1__REMOVE_CONTAINER_REQUEST__INIT;
		req.container_id = args[i];
		if (call_ok(c, "RemoveContainer", RT "RemoveContainer", &req.base,
			    &runtime__v1__remove_container_response__descriptor, NULL))
			rc = 1;
	}
	return rc;
}

/* The container's log (the kubelet's format: "<time> <stream> <P|F> <text>"),
 * its text only: stdout lines to stdout, stderr lines to stderr, partial
 * lines joined. */
int cmd_logs(struct ctl *c, int n, char **args)
{
	(void)n;
	Runtime__V1__ContainerStatusRequest req = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	req.container_id = args[0];
	ProtobufCMessage *out = NULL;
	if (call_ok(c, "ContainerStatus", RT "ContainerStatus", &req.base,
		    &runtime__v1__container_status_response__descriptor, &out))
		return 1;
	Runtime__V1__ContainerStatus *st = ((Runtime__V1__ContainerStatusResponse *)out)->status;
	int rc = 0;
	FILE *f = NULL;
	if (!st || !st->log_path[0]) {
		fprintf(stderr, "cricctl: container %s has no log file (no log_path)\n", args[0]);
		rc = 1;
	} else if (!(f = fopen(st->log_path, "re"))) {
		fprintf(stderr, "cricctl: %s: %m\n", st->log_path);
		rc = 1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while (f && (len = getline(&line, &cap, f)) > 0) {
		char *stream = strchr(line, ' ');
		char *tag = stream ? strchr(stream + 1, ' ') : NULL;
		if (!tag || (tag[1] != 'P' && tag[1] != 'F') || tag[2] != ' ')
			continue; /* not a CRI log line */
		const char *text = tag + 3;
		bool full = tag[1] == 'F';
		size_t tlen = (size_t)(line + len - text);
		if (tlen && text[tlen - 1] == '\n')
			tlen--;
		FILE *to = strncmp(stream + 1, "stderr ", 7) == 0 ? stderr : stdout;
		fwrite(text, 1, tlen, to);
		if (full)
			fputc('\n', to);
	}
	free(line);
	if (f)
		fclose(f);
	protobuf_c_message_free_unpacked(out, NULL);
	return rc;
}

/* exec ID COMMAND [ARG...]: ExecSync with the --timeout; its output, and its
 * exit code as ours. */
int cmd_exec(struct ctl *c, int n, char **args)
{
	Runtime__V1__ExecSyncRequest req = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
	req.container_id = args[0];
	req.cmd = args + 1;
	req.n_cmd = (size_t)(n - 1);
	req.timeout = c->timeout_s;
	c->timeout_s += 5; /* the call outlives the command's own timeout */
	ProtobufCMessage *out = NULL;
	if (call_ok(c, "ExecSync", RT "ExecSync", &req.base,
		    &runtime__v1__exec_sync_response__descriptor, &out))
		return 1;
	Runtime__V1__ExecSyncResponse *r = (Runtime__V1__ExecSyncResponse *)out;
	fwrite(r->stdout.data, 1, r->stdout.len, stdout);
	fwrite(r->stderr.data, 1, r->stderr.len, stderr);
	int rc = r->exit_code;
	protobuf_c_message_free_unpacked(out, NULL);
	return rc;
}

/* call SERVICE/METHOD [JSON]: any CRI method, the request as JSON (the
 * .proto's field names; "{}" by default), the answer printed as JSON. */
int cmd_call(struct ctl *c, int n, char **args)
{
	const char *slash = strchr(args[0], '/');
	const ProtobufCServiceDescriptor *svc = NULL;
	if (slash && strncmp(args[0], "RuntimeService/", 15) == 0)
		svc = &runtime__v1__runtime_service__descriptor;
	else if (slash && strncmp(args[0], "ImageService/", 13) == 0)
		svc = &runtime__v1__image_service__descriptor;
	const ProtobufCMethodDescriptor *m =
	    svc ? protobuf_c_service_descriptor_get_method_by_name(svc, slash + 1) : NULL;
	if (!m) {
		fprintf(stderr,
			"cricctl: call: \"%s\" is no CRI method (RuntimeService/<Method> "
			"or ImageService/<Method>, e.g. RuntimeService/ListContainers)\n",
			args[0]);
		return 2;
	}
	json_error_t jerr;
	json_t *j = json_loads(n > 1 ? args[1] : "{}", JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		fprintf(stderr, "cricctl: call: the request is not JSON: %s\n", jerr.text);
		return 2;
	}
	ProtobufCMessage *req = NULL;
	char why[256] = "";
	int r = pb_from_json(j, m->input, &req, why, sizeof(why));
	json_decref(j);
	if (r < 0) {
		fprintf(stderr, "cricctl: call: %s\n", why);
		if (req)
			protobuf_c_message_free_unpacked(req, NULL);
		return 2;
	}
	char path[256];
	snprintf(path, sizeof(path), "/runtime.v1.%s", args[0]);
	ProtobufCMessage *out = NULL;
	int rc = call_ok(c, slash + 1, path, req, m->output, &out);
	protobuf_c_message_free_unpacked(req, NULL);
	if (rc)
		return rc;
	json_t *o = pb_to_json(out);
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	printf("%s\n", text ? text : "{}");
	free(text);
	json_decref(o);
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}
