#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/service.h"

const char *const daemon_names[D_COUNT] = {
	[D_IMAGED] = "imaged",     [D_STORED] = "stored",     [D_NETD] = "netd",
	[D_RUNTIMED] = "runtimed", [D_MONITORD] = "monitord",
};

struct owner {
	struct cric_method_ref method; /* a misspelt method does not compile */
	enum daemon_id daemon;
	bool streaming;
};

/* Owners per DESIGN.md, one line per CRI method (tests/unit/
 * test-gateway-routes.c checks that each has exactly one). A method of the
 * proto missing here goes to the service's default owner (and answers
 * UNIMPLEMENTED there). */
static const struct owner owners[] = {
	{ CRI_RUNTIME(version), D_RUNTIMED, false },
	{ CRI_RUNTIME(status), D_RUNTIMED, false },
	{ CRI_RUNTIME(runtime_config), D_RUNTIMED, false },
	{ CRI_RUNTIME(update_runtime_config), D_RUNTIMED, false },
	{ CRI_RUNTIME(run_pod_sandbox), D_RUNTIMED, false },
	{ CRI_RUNTIME(stop_pod_sandbox), D_RUNTIMED, false },
	{ CRI_RUNTIME(remove_pod_sandbox), D_RUNTIMED, false },
	{ CRI_RUNTIME(pod_sandbox_status), D_RUNTIMED, false },
	{ CRI_RUNTIME(list_pod_sandbox), D_RUNTIMED, false },
	{ CRI_RUNTIME(create_container), D_RUNTIMED, false },
	{ CRI_RUNTIME(start_container), D_RUNTIMED, false },
	{ CRI_RUNTIME(stop_container), D_RUNTIMED, false },
	{ CRI_RUNTIME(remove_container), D_RUNTIMED, false },
	{ CRI_RUNTIME(list_containers), D_RUNTIMED, false },
	{ CRI_RUNTIME(container_status), D_RUNTIMED, false },
	{ CRI_RUNTIME(update_container_resources), D_RUNTIMED, false },
	{ CRI_RUNTIME(update_pod_sandbox_resources), D_RUNTIMED, false },
	{ CRI_RUNTIME(checkpoint_container), D_RUNTIMED, false },
	{ CRI_RUNTIME(stream_pod_sandboxes), D_RUNTIMED, true },
	{ CRI_RUNTIME(stream_containers), D_RUNTIMED, true },
	{ CRI_RUNTIME(reopen_container_log), D_MONITORD, false },
	{ CRI_RUNTIME(exec_sync), D_MONITORD, false },
	{ CRI_RUNTIME(exec), D_MONITORD, false },
	{ CRI_RUNTIME(attach), D_MONITORD, false },
	{ CRI_RUNTIME(port_forward), D_MONITORD, false },
	{ CRI_RUNTIME(container_stats), D_MONITORD, false },
	{ CRI_RUNTIME(list_container_stats), D_MONITORD, false },
	{ CRI_RUNTIME(pod_sandbox_stats), D_MONITORD, false },
	{ CRI_RUNTIME(list_pod_sandbox_stats), D_MONITORD, false },
	{ CRI_RUNTIME(list_metric_descriptors), D_MONITORD, false },
	{ CRI_RUNTIME(list_pod_sandbox_metrics), D_MONITORD, false },
	{ CRI_RUNTIME(get_container_events), D_RUNTIMED, true },
	{ CRI_RUNTIME(stream_container_stats), D_MONITORD, true },
	{ CRI_RUNTIME(stream_pod_sandbox_stats), D_MONITORD, true },
	{ CRI_RUNTIME(stream_pod_sandbox_metrics), D_MONITORD, true },
	{ CRI_IMAGE(list_images), D_IMAGED, false },
	{ CRI_IMAGE(image_status), D_IMAGED, false },
	{ CRI_IMAGE(pull_image), D_IMAGED, false },
	{ CRI_IMAGE(remove_image), D_IMAGED, false },
	{ CRI_IMAGE(stream_images), D_IMAGED, true },
	{ CRI_IMAGE(image_fs_info), D_STORED, false },
};

static bool same_method(struct cric_method_ref a, struct cric_method_ref b)
{
	return a.service == b.service && a.index == b.index;
}

/* Methods that bound themselves and may legitimately run longer than any
 * cap: ExecSync has its own timeout, and with timeout 0 (the kubelet's
 * lifecycle hooks, sent without a gRPC deadline) none at all. */
static bool is_uncapped(struct cric_method_ref m)
{
	return same_method(m, CRI_RUNTIME(exec_sync));
}

static const struct owner *find_owner(struct cric_method_ref m)
{
	for (size_t i = 0; i < ARRAY_SIZE(owners); i++)
		if (same_method(owners[i].method, m))
			return &owners[i];
	return NULL;
}

size_t routes_owner_count(struct cric_method_ref m)
{
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(owners); i++)
		n += same_method(owners[i].method, m);
	return n;
}

size_t routes_n_owners(void)
{
	return ARRAY_SIZE(owners);
}

int routes_build(struct route_table *t)
{
	const struct {
		const ProtobufCServiceDescriptor *svc;
		enum daemon_id fallback;
	} services[] = {
		{ &runtime__v1__runtime_service__descriptor, D_RUNTIMED },
		{ &runtime__v1__image_service__descriptor, D_IMAGED },
	};
	size_t total = 0;
	for (size_t s = 0; s < 2; s++)
		total += services[s].svc->n_methods;
	t->routes = calloc(total, sizeof(*t->routes));
	if (!t->routes)
		return -ENOMEM;
	t->n = 0;
	for (size_t s = 0; s < 2; s++) {
		const ProtobufCServiceDescriptor *svc = services[s].svc;
		for (unsigned m = 0; m < svc->n_methods; m++) {
			const ProtobufCMethodDescriptor *md = &svc->methods[m];
			struct route *r = &t->routes[t->n++];
			const struct owner *o = find_owner((struct cric_method_ref){ svc, m });
			/* The name the daemons' tables give it (common/service.c). */
			if (cric_method_name((struct cric_method_ref){ svc, m }, r->path,
					     sizeof(r->path)) < 0) {
				routes_free(t);
				return -ENAMETOOLONG;
			}
			r->daemon = o ? o->daemon : services[s].fallback;
			r->server_streaming = o ? o->streaming : false;
			r->input = md->input;
			r->uncapped = is_uncapped((struct cric_method_ref){ svc, m });
			if (!o)
				log_warning("no owner declared for %s, routing it to %s", r->path,
					    daemon_names[r->daemon]);
		}
	}
	return 0;
}

void routes_free(struct route_table *t)
{
	free(t->routes);
	t->routes = NULL;
	t->n = 0;
}

const struct route *route_find(const struct route_table *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->routes[i].path, path) == 0)
			return &t->routes[i];
	return NULL;
}
