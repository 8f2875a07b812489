/* Libraries loaded on first use; see dl.h. */
#include "dl.h"

#include <dlfcn.h>
#include <errno.h>

static int resolve(struct dl_lib *lib, void *h, struct cric_err *err)
{
	/* All or none: a library lacking one function is not used. */
	for (size_t i = 0; i < lib->n_syms; i++) {
		(void)dlerror();
		if (!dlsym(h, lib->syms[i].name))
			return err_set(err, -EOPNOTSUPP, "%s has no %s: %s", lib->soname,
				       lib->syms[i].name, dlerror() ?: "null symbol");
	}
	for (size_t i = 0; i < lib->n_syms; i++)
		*lib->syms[i].fn = dlsym(h, lib->syms[i].name);
	return 0;
}

int dl_lib_load(struct dl_lib *lib, struct cric_err *err)
{
	if (atomic_load_explicit(&lib->loaded, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&lib->lock);
	int r = 0;
	if (!atomic_load_explicit(&lib->loaded, memory_order_relaxed)) {
		void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			r = err_set(err, -EOPNOTSUPP, "load %s: %s", lib->soname,
				    dlerror() ?: "dlopen failed");
		else if ((r = resolve(lib, h, err)) < 0)
			dlclose(h);
		else
			atomic_store_explicit(&lib->loaded, true, memory_order_release);
	}
	pthread_mutex_unlock(&lib->lock);
	return r;
}

bool dl_lib_loaded(struct dl_lib *lib)
{
	return atomic_load_explicit(&lib->loaded, memory_order_acquire);
}
