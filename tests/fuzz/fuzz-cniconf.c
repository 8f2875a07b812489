/* Fuzz the CNI network configuration parser (netd/cniconf.c):
 * cni_network_parse() on arbitrary bytes, as a .conflist and as a .conf.
 * A network it accepts must satisfy the invariants netd relies on. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netd/cniconf.h"

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool untouched(const struct cni_network *n)
{
	static const struct cni_network zero;
	return memcmp(n, &zero, sizeof(zero)) == 0;
}

static void check(const struct cni_network *n)
{
	if (!terminated(n->name, sizeof(n->name)) || !n->name[0] ||
	    !terminated(n->cni_version, sizeof(n->cni_version)) || !n->cni_version[0])
		abort();
	if (n->n_plugins < 1 || n->n_plugins > CNI_MAX_PLUGINS)
		abort();
	for (unsigned i = 0; i < n->n_plugins; i++) {
		const char *t = n->plugins[i];
		if (!terminated(t, sizeof(n->plugins[i])) || !t[0] || t[0] == '.' || strchr(t, '/'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int is_list = 0; is_list <= 1; is_list++) {
		struct cni_network net;
		struct cric_err err;
		memset(&net, 0, sizeof(net));
		memset(err.msg, 'x', sizeof(err.msg));
		int r = cni_network_parse((const char *)data, size, is_list, &net, &err);
		if (r == 0)
			check(&net);
		else if (r != -EINVAL || !terminated(err.msg, sizeof(err.msg)) || !untouched(&net))
			abort(); /* the contract: -EINVAL, err filled, net untouched */
	}
	return 0;
}
