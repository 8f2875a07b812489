#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/service.h"

const char *const daemon_names[D_COUNT] = {
	[D_IMAGED] = "imaged",     [D_STORED] = "stored",     [D_NETD] = "netd",
	[D_RUNTIMED] = "runtimed", [D_MONITORD] = "monitord",
};

struct owner {
	const char *method;
	enum daemon_id daemon;
	bool streaming;
};

/* Owners per DESIGN.md. A method of the proto missing here goes to the
 * service's default owner (and answers UNIMPLEMENTED there). */
static const struct owner owners[] = {
	{ "Version", D_RUNTIMED, false },
	{ "Status", D_RUNTIMED, false },
	{ "RuntimeConfig", D_RUNTIMED, false },
	{ "UpdateRuntimeConfig", D_RUNTIMED, false },
	{ "RunPodSandbox", D_RUNTIMED, false },
	{ "StopPodSandbox", D_RUNTIMED, false },
	{ "RemovePodSandbox", D_RUNTIMED, false },
	{ "PodSandboxStatus", D_RUNTIMED, false },
	{ "ListPodSandbox", D_RUNTIMED, false },
	{ "CreateContainer", D_RUNTIMED, false },
	{ "StartContainer", D_RUNTIMED, false },
	{ "StopContainer", D_RUNTIMED, false },
	{ "RemoveContainer", D_RUNTIMED, false },
	{ "ListContainers", D_RUNTIMED, false },
	{ "ContainerStatus", D_RUNTIMED, false },
	{ "UpdateContainerResources", D_RUNTIMED, false },
	{ "UpdatePodSandboxResources", D_RUNTIMED, false },
	{ "CheckpointContainer", D_RUNTIMED, false },
	{ "StreamPodSandboxes", D_RUNTIMED, true },
	{ "StreamContainers", D_RUNTIMED, true },
	{ "ReopenContainerLog", D_MONITORD, false },
	{ "ExecSync", D_MONITORD, false },
	{ "Exec", D_MONITORD, false },
	{ "Attach", D_MONITORD, false },
	{ "PortForward", D_MONITORD, false },
	{ "ContainerStats", D_MONITORD, false },
	{ "ListContainerStats", D_MONITORD, false },
	{ "PodSandboxStats", D_MONITORD, false },
	{ "ListPodSandboxStats", D_MONITORD, false },
	{ "ListMetricDescriptors", D_MONITORD, false },
	{ "ListPodSandboxMetrics", D_MONITORD, false },
	{ "GetContainerEvents", D_MONITORD, true },
	{ "StreamContainerStats", D_MONITORD, true },
	{ "StreamPodSandboxStats", D_MONITORD, true },
	{ "StreamPodSandboxMetrics", D_MONITORD, true },
	{ "ListImages", D_IMAGED, false },
	{ "ImageStatus", D_IMAGED, false },
	{ "PullImage", D_IMAGED, false },
	{ "RemoveImage", D_IMAGED, false },
	{ "StreamImages", D_IMAGED, true },
	{ "ImageFsInfo", D_STORED, false },
};

static const struct owner *find_owner(const char *method)
{
	for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++)
		if (strcmp(owners[i].method, method) == 0)
			return &owners[i];
	return NULL;
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
			const struct owner *o = find_owner(md->name);
			/* The name the daemons' tables give it (common/service.c). */
			if (cric_method_name((struct cric_method_ref){ svc, m }, r->path,
					     sizeof(r->path)) < 0) {
				routes_free(t);
				return -ENAMETOOLONG;
			}
			r->daemon = o ? o->daemon : services[s].fallback;
			r->server_streaming = o ? o->streaming : false;
			r->input = md->input;
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
