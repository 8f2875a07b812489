#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "proto/cric/internal.pb-c.h"

/* netd answers NetworkStatus from a directory scan: it is fast or it is stuck. */
#define NETD_STATUS_TIMEOUT_MS 3000

struct runtimed {
	struct cric_client *netd;
	pthread_mutex_t lock;
	char cgroup_manager[16];
};

int runtimed_new(const struct cric_config *cfg, struct runtimed **ret, struct cric_err *err)
{
	struct runtimed *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	pthread_mutex_init(&rt->lock, NULL);
	snprintf(rt->cgroup_manager, sizeof(rt->cgroup_manager), "%s", cfg->cgroup_manager);
	_cleanup_free_ char *url = config_ipc_url(cfg, "netd");
	int r = url ? cric_client_open("netd", url, &rt->netd, err) : -ENOMEM;
	if (r < 0) {
		runtimed_free(rt);
		return r;
	}
	*ret = rt;
	return 0;
}

struct runtimed *runtimed_free(struct runtimed *rt)
{
	if (!rt)
		return NULL;
	cric_client_close(rt->netd);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
	return NULL;
}

int runtimed_reload(struct runtimed *rt, const struct cric_config *cfg, struct cric_err *err)
{
	(void)err;
	pthread_mutex_lock(&rt->lock);
	snprintf(rt->cgroup_manager, sizeof(rt->cgroup_manager), "%s", cfg->cgroup_manager);
	pthread_mutex_unlock(&rt->lock);
	return 0;
}

void runtimed_cgroup_manager(struct runtimed *rt, char *buf, size_t size)
{
	pthread_mutex_lock(&rt->lock);
	snprintf(buf, size, "%s", rt->cgroup_manager);
	pthread_mutex_unlock(&rt->lock);
}

void runtimed_status(struct runtimed *rt, const struct cric_call *call, struct runtime_status *st)
{
	memset(st, 0, sizeof(*st));
	st->runtime_ready = true;

	int64_t deadline = deadline_in_ms(NETD_STATUS_TIMEOUT_MS);
	if (call->deadline_ns > 0 && call->deadline_ns < deadline)
		deadline = call->deadline_ns;

	Cric__Internal__NetworkStatusRequest req = CRIC__INTERNAL__NETWORK_STATUS_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_client_call_pb(
	    rt->netd, "cric.netd.NetworkStatus", call->request_id, deadline, &req.base,
	    &cric__internal__network_status_response__descriptor, &out, &msg);
	if (code != CODE_OK) {
		snprintf(st->network_reason, sizeof(st->network_reason), "NetworkPluginNotReady");
		snprintf(st->network_message, sizeof(st->network_message), "cannot ask netd: %s",
			 msg ? msg : grpc_code_name(code));
		log_warning("network status unknown: %s", st->network_message);
		return;
	}
	_cleanup_pb_ Cric__Internal__NetworkStatusResponse *ns =
	    (Cric__Internal__NetworkStatusResponse *)out;
	st->network_ready = ns->ready;
	snprintf(st->network_reason, sizeof(st->network_reason), "%s", ns->reason);
	snprintf(st->network_message, sizeof(st->network_message), "%s", ns->message);
	snprintf(st->cni_conf_file, sizeof(st->cni_conf_file), "%s", ns->conf_file);
	snprintf(st->cni_network, sizeof(st->cni_network), "%s", ns->network_name);
}
