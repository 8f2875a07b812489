/* cric-imaged: registry client and image metadata. It talks to registries and
 * never mounts or chowns anything, so it keeps no capabilities at all. Image
 * calls (ListImages, ImageStatus, PullImage, RemoveImage) are routed here and
 * answer UNIMPLEMENTED until the image service lands. */
#include "common/daemon.h"

static const struct cric_daemon_desc desc = {
	.name = "imaged",
	.no_new_privs = true,
};

int main(int argc, char **argv)
{
	return daemon_main(&desc, argc, argv);
}
