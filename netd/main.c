/* cric-netd: pod network namespaces and CNI. Keeps CAP_NET_ADMIN,
 * CAP_NET_RAW and CAP_SYS_ADMIN (the CNI plugins it runs inherit them), and
 * CAP_SETUID and CAP_SETGID to write the id maps of the user namespaces it
 * makes for user-namespaced pods (netns.h). The
 * manager is netd.h, the adapter of its internal service rpc.c. */
#include "common/daemon.h"
#include "common/macro.h"
#include "netd.h"
#include "rpc.h"

static int init(const struct cric_config *cfg, void **userdata, struct cric_err *err)
{
	struct netd *n;
	int r = netd_new(cfg, &n, err);
	if (r < 0)
		return r;
	*userdata = n;
	return 0;
}

static int reload(void *userdata, const struct cric_config *cfg, struct cric_err *err)
{
	return netd_set_config(userdata, cfg, err);
}

static void done(void *userdata)
{
	netd_free(userdata);
}

static const cap_value_t netd_caps[] = { CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SETUID,
					 CAP_SETGID };

int main(int argc, char **argv)
{
	const struct cric_daemon_desc desc = {
		.name = "netd",
		.caps = netd_caps,
		.n_caps = ARRAY_SIZE(netd_caps),
		.services = netd_services,
		.n_services = netd_n_services,
		.init = init,
		.reload = reload,
		.done = done,
	};
	return daemon_main(&desc, argc, argv);
}
