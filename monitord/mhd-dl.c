/* libmicrohttpd loaded on first use; see mhd-dl.h. */
#include "mhd-dl.h"

MHD_DL_SYMS(DL_SYM_DEFINE)

static const struct dl_sym syms[] = { MHD_DL_SYMS(DL_SYM_ENTRY) };

/* The soname of Debian's libmicrohttpd12. */
static struct dl_lib lib = {
	.soname = "libmicrohttpd.so.12",
	.syms = syms,
	.n_syms = sizeof(syms) / sizeof(syms[0]),
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

int mhd_dl_load(struct cric_err *err)
{
	return dl_lib_load(&lib, err);
}

bool mhd_dl_loaded(void)
{
	return dl_lib_loaded(&lib);
}
