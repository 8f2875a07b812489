/* cric-runtimed: sandboxes and containers, OCI bundles, runc. Runs as root
 * with the capabilities it was given: runc needs them. */
#include <string.h>

#include "common/daemon.h"
#include "common/metrics.h"
#include "cri-container.h"
#include "cri.h"
#include "events.h"
#include "runtime.h"

static int init(const struct cric_config *cfg, void **userdata, struct cric_err *err)
{
	struct runtimed *rt;
	int r = runtimed_new(cfg, &rt, err);
	if (r < 0)
		return r;
	if ((r = runtimed_watch_exits(rt, cri_container_exited, cri_pod_infra_exited, err)) < 0) {
		runtimed_free(rt);
		return r;
	}
	if ((r = metric_collector_add(cri_metrics_collect, rt)) < 0) {
		runtimed_free(rt);
		return err_set(err, r, "metrics collector: %s", strerror(-r));
	}
	*userdata = rt;
	return 0;
}

static int reload(void *userdata, const struct cric_config *cfg, struct cric_err *err)
{
	return runtimed_reload(userdata, cfg, err);
}

/* Long polls (WatchEvents) answer now: the server waits for its handlers. */
static void stopping(void *userdata)
{
	event_log_stop(runtimed_events(userdata));
}

static void cancelled(void *userdata)
{
	event_log_wake(runtimed_events(userdata));
}

static void done(void *userdata)
{
	metric_collector_remove(cri_metrics_collect, userdata);
	runtimed_free(userdata);
}

int main(int argc, char **argv)
{
	const struct cric_daemon_desc desc = {
		.name = "runtimed",
		.all_caps = true,
		.services = runtimed_services,
		.n_services = runtimed_n_services,
		.init = init,
		.reload = reload,
		.stopping = stopping,
		.done = done,
		.cancelled = cancelled,
	};
	return daemon_main(&desc, argc, argv);
}
