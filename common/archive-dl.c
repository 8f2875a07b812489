/* libarchive loaded on first use; see archive-dl.h. */
#include "archive-dl.h"

ARCHIVE_DL_SYMS(DL_SYM_DEFINE)

static const struct dl_sym syms[] = { ARCHIVE_DL_SYMS(DL_SYM_ENTRY) };

/* The soname of libarchive 3.x (Debian's libarchive13). */
static struct dl_lib lib = {
	.soname = "libarchive.so.13",
	.syms = syms,
	.n_syms = sizeof(syms) / sizeof(syms[0]),
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

int archive_dl_load(struct cric_err *err)
{
	return dl_lib_load(&lib, err);
}
