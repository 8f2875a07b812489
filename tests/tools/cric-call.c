/* cric-call: call one of the daemons' internal methods over nng
 * (cric.netd.*, cric.stored.*: the daemon is the method's second part), for
 * the integration tests and for people poking at a running suite. The
 * methods and their types are those of the services in proto/cric
 * (common/service.h: cric_internal_services).
 *
 *   cric-call [--root DIR] [--config FILE] [--timeout SECONDS] [--daemon NAME] METHOD [JSON]
 *   cric-call --list
 *
 * --daemon names the daemon for cric.Health (default netd) and for a CRI
 * method ("/runtime.v1.RuntimeService/StopPodSandbox", default runtimed:
 * daemons take those from the gateway only, which tests check). --list prints
 * every method, one a line: its name, request type and response type.
 *
 * JSON (default "{}") is the request message with proto field names
 * ("pod_id", "port_mappings": [{"host_port": 8080, ...}]); it is turned into
 * the method's protobuf-c message through the generated descriptors. The
 * answer is printed as one JSON line on stdout:
 *   {"code": 0, "response": {...}}             on success
 *   {"code": N, "codeName": "...", "message": "..."}   on failure
 * Exit status: 0 when a call was made (whatever its code), 2 otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/config.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/pbjson.h"
#include "common/service.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: cric-call [--root DIR] [--config FILE] [--timeout SECONDS] [--daemon NAME] "
		"[--retry-unavailable] METHOD [JSON]\n"
		"       cric-call --list\n");
}

static int find_method(const char *name, struct cric_method_ref *ret)
{
	for (size_t i = 0; i < cric_n_internal_services; i++)
		if (cric_method_find(cric_internal_services[i], name, ret) == 0)
			return 0;
	/* A CRI method as the gateway forwards it: for testing who a daemon
	 * takes it from (it takes it from the gateway only). */
	if (cric_method_find(&runtime__v1__runtime_service__descriptor, name, ret) == 0 ||
	    cric_method_find(&runtime__v1__image_service__descriptor, name, ret) == 0)
		return 0;
	return -ENOENT;
}

static int list_methods(void)
{
	for (size_t i = 0; i < cric_n_internal_services; i++) {
		const ProtobufCServiceDescriptor *svc = cric_internal_services[i];
		for (unsigned m = 0; m < svc->n_methods; m++) {
			char name[IPC_METHOD_MAX + 1];
			if (cric_method_name((struct cric_method_ref){ svc, m }, name,
					     sizeof(name)) < 0)
				return 2;
			printf("%s %s %s\n", name, svc->methods[m].input->name,
			       svc->methods[m].output->name);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "daemon", required_argument, NULL, 'd' },
		{ "list", no_argument, NULL, 'l' },
		{ "retry-unavailable", no_argument, NULL, 'u' },
		{ 0 },
	};
	const char *root = NULL, *config = NULL, *health_daemon = NULL;
	long timeout_s = 120;
	bool retry = false;
	int c;
	while ((c = getopt_long(argc, argv, "r:c:t:d:lu", opts, NULL)) != -1) {
		if (c == 'u')
			retry = true;
		else if (c == 'l')
			return list_methods();
		else if (c == 'd')
			health_daemon = optarg;
		else if (c == 'r')
			root = optarg;
		else if (c == 'c')
			config = optarg;
		else if (c == 't')
			timeout_s = strtol(optarg, NULL, 10);
		else
			return usage(), 2;
	}
	if (optind >= argc || argc - optind > 2 || timeout_s <= 0)
		return usage(), 2;
	const char *method = argv[optind];
	const char *body = optind + 1 < argc ? argv[optind + 1] : "{}";

	struct cric_method_ref mref;
	if (find_method(method, &mref) < 0) {
		fprintf(stderr, "cric-call: unknown method \"%s\"\n", method);
		return 2;
	}

	log_open("cric-call");
	log_set_level(LOG_WARNING);
	struct cric_err err = { { 0 } };
	_cleanup_(config_freep) struct cric_config *cfg = NULL;
	if (config_load(root, config, &cfg, &err) < 0) {
		fprintf(stderr, "cric-call: %s\n", err.msg);
		return 2;
	}

	json_error_t jerr;
	_cleanup_json_ json_t *doc = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		fprintf(stderr, "cric-call: request JSON: %s\n", jerr.text);
		return 2;
	}
	_cleanup_pb_ ProtobufCMessage *req = NULL;
	char why[256] = "";
	const ProtobufCMethodDescriptor *md = cric_method_desc(mref);
	int r = pb_from_json(doc, md->input, &req, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "cric-call: request: %s\n", why[0] ? why : strerror(-r));
		return 2;
	}

	/* A service of package "cric.<daemon>"; Health goes to netd and a CRI
	 * method to runtimed unless --daemon says. */
	const char *pkg = mref.service->package;
	const char *daemon = strncmp(pkg, "cric.", 5) == 0 ? pkg + 5
			     : health_daemon               ? health_daemon
			     : strcmp(pkg, "cric") == 0    ? "netd"
							   : "runtimed";
	_cleanup_free_ char *url = config_ipc_url(cfg, daemon);
	struct cric_client *client = NULL;
	if (!url || cric_client_open_peer(daemon, url, config_daemon_peer_uid(cfg, daemon), &client,
					  &err) < 0) {
		fprintf(stderr, "cric-call: %s\n", err.msg);
		return 2;
	}
	_cleanup_pb_ ProtobufCMessage *resp = NULL;
	_cleanup_free_ char *msg = NULL;
	/* --retry-unavailable: call again on the same client, as a caller does
	 * through a daemon's restart, until the timeout. */
	int64_t deadline = deadline_in_ms(timeout_s * 1000);
	unsigned code;
	for (;;) {
		code = cric_call(client, mref, NULL, deadline, req, &resp, &msg);
		if (!retry || code != CODE_UNAVAILABLE || now_unix_ns() >= deadline)
			break;
		free(TAKE_PTR(msg));
	}
	cric_client_close(client);

	_cleanup_json_ json_t *outdoc =
	    code == CODE_OK ? json_pack("{s:i, s:o}", "code", 0, "response", pb_to_json(resp))
			    : json_pack("{s:i, s:s, s:s}", "code", (int)code, "codeName",
					grpc_code_name(code), "message", msg ? msg : "");
	_cleanup_free_ char *text = outdoc ? json_dumps(outdoc, JSON_COMPACT) : NULL;
	if (!text)
		return 2;
	printf("%s\n", text);
	return 0;
}
