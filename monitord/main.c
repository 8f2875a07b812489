/* cric-monitord: per-container monitors, exec/attach/port-forward, streaming
 * server, stats and events. Needs root to enter containers; keeps what it was
 * given. It owns its share of the CRI RuntimeService (cri-gateway/routes.c),
 * none of which is implemented yet: each answers UNIMPLEMENTED. */
#include "common/daemon.h"
#include "common/macro.h"

static const struct cric_service services[] = {
	{ &runtime__v1__runtime_service__descriptor, NULL, 0, .partial = true },
};

static const struct cric_daemon_desc desc = {
	.name = "monitord",
	.all_caps = true,
	.services = services,
	.n_services = ARRAY_SIZE(services),
};

int main(int argc, char **argv)
{
	return daemon_main(&desc, argc, argv);
}
