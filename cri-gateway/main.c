/* cric-gateway: the CRI gRPC endpoint. No capabilities, no network: it only
 * owns the CRI socket and forwards calls to the daemons over nng. */
#include <grpc/grpc.h>

#include "common/caps.h"
#include "common/daemon.h"
#include "common/fsutil.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/sdproto.h"
#include "gateway.h"

/* SIGHUP: re-read the config for the log level. The CRI socket, the daemon
 * sockets and the routes are fixed at start (changing them means a restart,
 * which the kubelet rides out). */
static void reload(void *arg)
{
	struct cric_config *cfg = daemon_reload_begin(arg);
	if (cfg) {
		log_info("log level reloaded from \"%s\" (sockets and the rest of the "
			 "configuration apply at the next start)",
			 cfg->config_file);
		config_free(cfg);
	}
	daemon_reload_done();
}

/* cric.Health and cric.Metrics (common/ipc_server.c) on an nng socket of
 * the gateway's own, <run_dir>/gateway/ipc.sock, beside its CRI socket:
 * monitord's /metrics asks it for the CRI calls' counters. It serves
 * nothing else (the gateway calls the daemons; none calls it). */
static int serve_health(const struct cric_config *cfg, struct cric_server **ret,
			struct cric_err *err)
{
	_cleanup_free_ char *dir = path_join(cfg->run_dir, "gateway");
	_cleanup_free_ char *url = NULL;
	if (!dir || asprintf(&url, "ipc://%s/ipc.sock", dir) < 0)
		return err_set(err, -ENOMEM, "out of memory");
	const struct cric_server_config scfg = {
		.daemon = "gateway",
		.version = CRIC_VERSION,
		.url = url,
		.ids = { .gateway_uid = cfg->gateway_uid,
			 .imaged_uid = cfg->imaged_uid,
			 .group_gid = cfg->group_gid },
		.workers = 2,
	};
	return cric_server_start(&scfg, ret, err);
}

int main(int argc, char **argv)
{
	struct daemon_args args;
	struct cric_err err = { { 0 } };
	_cleanup_(config_freep) struct cric_config *cfg = NULL;

	int r = daemon_prepare("gateway", "cri-gateway", argc, argv, &args, &cfg);
	if (r >= 0)
		return r;

	daemon_block_signals();
	/* As its own user (config gateway_user): the CRI socket is made in
	 * <run_dir>/gateway (0700: only root, i.e. the kubelet, reaches it;
	 * not group cric, which holds imaged), and cri_socket is root's link
	 * to it. Before grpc_init(): credentials and capabilities are per
	 * thread. */
	struct daemon_identity id;
	if ((r = daemon_identity_setup(cfg, "gateway", "cric.sock", cfg->cri_socket,
				       DAEMON_NO_STATE, &id, &err)) < 0 ||
	    (r = caps_restrict(NULL, 0, false, true, &err)) < 0) {
		log_error("%s", err.msg);
		return 1;
	}

	grpc_init();
	struct gateway *gw = NULL;
	if ((r = gateway_start(cfg, id.listen_path, &gw, &err)) < 0) {
		log_error("%s", err.msg);
		grpc_shutdown();
		return 1;
	}
	struct cric_server *ipc = NULL;
	if ((r = serve_health(cfg, &ipc, &err)) < 0)
		log_warning("health and metrics socket: %s, ignoring", err.msg);
	log_info("cric cri-gateway %s serving CRI on unix://%s", CRIC_VERSION, cfg->cri_socket);
	sd_proto_notifyf("READY=1\nSTATUS=serving CRI on %s", cfg->cri_socket);

	daemon_wait_signals(reload, &args);

	sd_proto_notify("STOPPING=1");
	cric_server_stop(ipc);
	gateway_stop(gw);
	grpc_shutdown();
	log_info("stopped");
	return 0;
}
