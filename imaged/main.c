/* cric-imaged: registry client and image metadata. It talks to registries and
 * never mounts or chowns anything, so it keeps no capabilities at all. Serves
 * the CRI image calls PullImage, ListImages, ImageStatus and RemoveImage;
 * stored holds the layers (proto/cric/stored.proto). The manager is
 * imaged.h, the CRI adapter cri.c. */
#include "common/daemon.h"
#include "imaged/cri.h"
#include "imaged/imaged.h"
#include "imaged/pull.h"

static int init(const struct cric_config *cfg, void **userdata, struct cric_err *err)
{
	struct imaged *d;
	int r = imaged_new(cfg, &d, err);
	if (r < 0)
		return r;
	*userdata = d;
	return 0;
}

static void done(void *userdata)
{
	imaged_free(userdata);
}

static void cancelled(void *userdata)
{
	struct imaged *d = userdata;
	puller_wake(d->puller);
}

int main(int argc, char **argv)
{
	const struct cric_daemon_desc desc = {
		.name = "imaged",
		.no_new_privs = true,
		.services = imaged_services,
		.n_services = imaged_n_services,
		.init = init,
		.done = done,
		.cancelled = cancelled,
	};
	return daemon_main(&desc, argc, argv);
}
