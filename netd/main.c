/* cric-netd: pod network namespaces and CNI. Keeps CAP_NET_ADMIN,
 * CAP_NET_RAW and CAP_SYS_ADMIN (the CNI plugins it runs inherit them). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cniconf.h"
#include "common/cleanup.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "proto/cric/internal.pb-c.h"

struct netd {
	pthread_mutex_t lock;
	char *conf_dir;
	char **bin_dirs;
};

static void netd_free(struct netd *n)
{
	if (!n)
		return;
	free(n->conf_dir);
	strv_free(n->bin_dirs);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

static int netd_set_config(struct netd *n, const struct cric_config *cfg)
{
	char *dir = strdup(cfg->cni_conf_dir);
	size_t k = 0;
	while (cfg->cni_bin_dirs[k])
		k++;
	char **bins = calloc(k + 1, sizeof(char *));
	for (size_t i = 0; bins && i < k; i++)
		if (!(bins[i] = strdup(cfg->cni_bin_dirs[i]))) {
			bins = strv_free(bins);
			break;
		}
	if (!dir || !bins) {
		free(dir);
		strv_free(bins);
		return -ENOMEM;
	}
	pthread_mutex_lock(&n->lock);
	free(n->conf_dir);
	strv_free(n->bin_dirs);
	n->conf_dir = dir;
	n->bin_dirs = bins;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

/* The config dir is re-read on every call: NetworkReady turns true as soon
 * as a config appears, with nothing to watch or invalidate. */
static int network_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	(void)in;
	(void)err;
	struct netd *n = ud;
	struct cni_network net;
	struct cric_err why = { { 0 } };

	pthread_mutex_lock(&n->lock);
	int r = cni_network_find(n->conf_dir, n->bin_dirs, &net, &why);
	pthread_mutex_unlock(&n->lock);

	_cleanup_pb_ Cric__Internal__NetworkStatusResponse *ns =
	    pb_new(&cric__internal__network_status_response__descriptor);
	if (!ns)
		return -ENOMEM;
	ns->ready = r == 0;
	if ((r < 0 && (pb_set_str(&ns->reason, "NetworkPluginNotReady") < 0 ||
		       pb_set_str(&ns->message, why.msg) < 0)) ||
	    (r != -ENOENT && (pb_set_str(&ns->conf_file, net.file) < 0 ||
			      pb_set_str(&ns->network_name, net.name) < 0)))
		return -ENOMEM;
	*out = &TAKE_PTR(ns)->base;
	return 0;
}

static int init(const struct cric_config *cfg, void **userdata, struct cric_err *err)
{
	(void)err;
	struct netd *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	if (netd_set_config(n, cfg) < 0) {
		netd_free(n);
		return -ENOMEM;
	}
	*userdata = n;
	return 0;
}

static int reload(void *userdata, const struct cric_config *cfg, struct cric_err *err)
{
	(void)err;
	return netd_set_config(userdata, cfg);
}

static void done(void *userdata)
{
	netd_free(userdata);
}

static const struct cric_method methods[] = {
	{ "cric.netd.NetworkStatus", &cric__internal__network_status_request__descriptor,
	  network_status },
};

static const cap_value_t netd_caps[] = { CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN };

int main(int argc, char **argv)
{
	const struct cric_daemon_desc desc = {
		.name = "netd",
		.caps = netd_caps,
		.n_caps = ARRAY_SIZE(netd_caps),
		.methods = methods,
		.n_methods = ARRAY_SIZE(methods),
		.init = init,
		.reload = reload,
		.done = done,
	};
	return daemon_main(&desc, argc, argv);
}
