/* libyaml loaded on first use; see yaml-dl.h. */
#include "yaml-dl.h"

YAML_DL_SYMS(DL_SYM_DEFINE)

static const struct dl_sym syms[] = { YAML_DL_SYMS(DL_SYM_ENTRY) };

/* The soname of Debian's libyaml-0-2. */
static struct dl_lib lib = {
	.soname = "libyaml-0.so.2",
	.syms = syms,
	.n_syms = sizeof(syms) / sizeof(syms[0]),
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

int yaml_dl_load(struct cric_err *err)
{
	return dl_lib_load(&lib, err);
}
