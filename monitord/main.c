/* cric-monitord: per-container monitors (cric.monitord.Monitord), ExecSync,
 * Exec through its streaming server (stream/server.h), and later
 * attach/port-forward, stats and events, and the suite's /metrics (metrics-http.h). Needs root to
 * enter containers; keeps what it was given. Of its share of the CRI RuntimeService
 * (cri-gateway/routes.c) ExecSync (execsync.h) and Exec (stream/) are served, the rest answers
 * UNIMPLEMENTED for now. The manager is monitors.h, the adapter rpc.c. */
#include "common/daemon.h"
#include "execsync.h"
#include "metrics-http.h"
#include "monitors.h"
#include "pods.h"
#include "rpc.h"
#include "stream/server.h"

static int init(const struct cric_config *cfg, void **userdata, struct cric_err *err)
{
	struct monitors *m;
	int r = monitors_open(cfg, &m, err);
	if (r < 0)
		return r;
	if ((r = execsync_open(cfg, &m->exec, err)) < 0 ||
	    (r = podstats_open(cfg, m->stats, &m->pods, err)) < 0) {
		execsync_free(m->exec);
		monitors_free(m);
		return r;
	}
	if ((r = stream_server_open(cfg, m, m->exec->helper, &m->stream, err)) < 0) {
		podstats_free(m->pods);
		execsync_free(m->exec);
		monitors_free(m);
		return r;
	}
	if ((r = metrics_http_open(cfg, &m->metrics, err)) < 0) {
		stream_server_free(m->stream);
		podstats_free(m->pods);
		execsync_free(m->exec);
		monitors_free(m);
		return r;
	}
	*userdata = m;
	return 0;
}

static void done(void *userdata)
{
	struct monitors *m = userdata;
	metrics_http_free(m->metrics);
	stream_server_free(m->stream);
	podstats_free(m->pods);
	execsync_free(m->exec);
	monitors_free(m);
}

int main(int argc, char **argv)
{
	const struct cric_daemon_desc desc = {
		.name = "monitord",
		.all_caps = true,
		.services = monitord_services,
		.n_services = monitord_n_services,
		.init = init,
		.done = done,
	};
	return daemon_main(&desc, argc, argv);
}
