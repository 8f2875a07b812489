/* Optional libraries loaded on first use (dlopen), the pattern of systemd's
 * dlopen-util: a daemon that needs a large library only for a rare call
 * (libarchive for a layer unpack or a checkpoint, libmicrohttpd for a
 * stream) does not map it, its dependencies and their relocated data from
 * the start and for as long as it runs idle.
 *
 * Each such library has a table of the functions cric calls, a pointer per
 * function named sym_<function> (the declaration's own type, so calls are
 * checked as before), and a load function every entry point into the code
 * that uses it calls first. Once loaded, a library stays (never dlclose'd):
 * the pointers are set once, before the load function first returns 0,
 * and read without locks after that. A failed load changes no pointer and
 * is tried again by the next call. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* One function of a library: its name and where its address goes. */
struct dl_sym {
	const char *name;
	void **fn;
};

struct dl_lib {
	const char *soname; /* as in the package: "libarchive.so.13" */
	const struct dl_sym *syms;
	size_t n_syms;
	pthread_mutex_t lock;
	atomic_bool loaded;
};

/* Declares sym_<f> as a pointer of f's type (in a header). */
#define DL_SYM_DECLARE(f) extern typeof(f) *sym_##f;
/* Defines it (in the library's .c file). */
#define DL_SYM_DEFINE(f) typeof(f) *sym_##f;
/* Its entry in the library's table. */
#define DL_SYM_ENTRY(f) { #f, (void **)&sym_##f },

/* Load lib and resolve every function of its table (once per process; safe
 * from any thread). 0, or -EOPNOTSUPP with what dlopen/dlsym said in err
 * (the library or one of its functions is missing). */
int dl_lib_load(struct dl_lib *lib, struct cric_err *err);
/* Whether it is loaded (for tests and metrics). */
bool dl_lib_loaded(struct dl_lib *lib);
