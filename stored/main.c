/* cric-stored: blobs, layer unpack, container root filesystems (overlay).
 * It mounts and writes files with any owner, never touches the network.
 * Serves CRI ImageFsInfo and the internal cric.stored.* methods
 * (proto/cric/stored.proto) that imaged and runtimed call. The manager is
 * the layer store (layers.h), the adapter rpc.c. */
#include "common/cleanup.h"
#include "common/daemon.h"
#include "common/fsutil.h"
#include "stored/caps.h"
#include "stored/layers.h"
#include "stored/rpc.h"

static int init(const struct cric_config *cfg, void **userdata, struct cric_err *err)
{
	struct layer_limits limits;
	int r = stored_limits_load(cfg, &limits, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *state = path_join(cfg->state_dir, "stored");
	_cleanup_free_ char *run = path_join(cfg->run_dir, "stored");
	_cleanup_free_ char *staging = config_staging_dir(cfg);
	if (!state || !run || !staging)
		return -ENOMEM;
	struct layer_store *ls;
	r = layer_store_open(state, run, staging, &ls, err);
	if (r < 0)
		return r;
	layer_store_set_limits(ls, &limits);
	*userdata = ls;
	return 0;
}

static int reload(void *userdata, const struct cric_config *cfg, struct cric_err *err)
{
	struct layer_limits limits;
	int r = stored_limits_load(cfg, &limits, err);
	if (r < 0)
		return r;
	layer_store_set_limits(userdata, &limits);
	return 0;
}

static void done(void *userdata)
{
	layer_store_free(userdata);
}

int main(int argc, char **argv)
{
	const struct cric_daemon_desc desc = {
		.name = "stored",
		.caps = stored_caps,
		.n_caps = stored_n_caps,
		.no_new_privs = true,
		.services = stored_services,
		.n_services = stored_n_services,
		.init = init,
		.reload = reload,
		.done = done,
	};
	return daemon_main(&desc, argc, argv);
}
