/* cric-stored: blobs, layer unpack, container root filesystems (overlay).
 * It mounts and writes files with any owner, never touches the network. */
#include "common/daemon.h"
#include "common/macro.h"

static const cap_value_t stored_caps[] = {
	CAP_SYS_ADMIN, CAP_CHOWN, CAP_FOWNER, CAP_MKNOD, CAP_DAC_OVERRIDE, CAP_SETFCAP,
};

static const struct cric_daemon_desc desc = {
	.name = "stored",
	.caps = stored_caps,
	.n_caps = ARRAY_SIZE(stored_caps),
	.no_new_privs = true,
};

int main(int argc, char **argv)
{
	return daemon_main(&desc, argc, argv);
}
