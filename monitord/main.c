/* cric-monitord: per-container monitors, exec/attach/port-forward, streaming
 * server, stats and events. Needs root to enter containers; keeps what it was
 * given. Its CRI calls answer UNIMPLEMENTED until their issues land. */
#include "common/daemon.h"

static const struct cric_daemon_desc desc = {
	.name = "monitord",
	.all_caps = true,
};

int main(int argc, char **argv)
{
	return daemon_main(&desc, argc, argv);
}
