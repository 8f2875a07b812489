/* Fuzz RunPodSandbox's plan step (runtimed/podplan.c) with whatever decodes
 * as a RunPodSandboxRequest: pod_plan_make() must refuse or accept without
 * crashing, and what it accepts must be safe to build on: a handler that
 * exists, an absolute cgroup path, a hostname of at most 63 characters,
 * sysctl paths relative to /proc/sys. Refusals are -EINVAL (or -ENOPKG: a
 * pid=POD pod without the infra binary) and say why. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "runtimed/podplan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	Runtime__V1__RunPodSandboxRequest *req =
	    runtime__v1__run_pod_sandbox_request__unpack(NULL, size, data);
	if (!req)
		return 0;
	/* kata runs pods of their own user namespace: their mappings are
	 * checked too. */
	static const struct oci_handler handlers[] = {
		{ .name = "runc" }, { .name = "kata", .userns = true, .userns_pods = true }
	};
	for (int driver = 0; driver < 2; driver++) {
		const struct pod_plan_env env = {
			.handlers = handlers,
			.n_handlers = 2,
			.default_handler = "runc",
			.have_pause = driver == 0,
			.cgroup_driver = driver ? "systemd" : "cgroupfs",
			.cgroup_root = "/cric",
		};
		struct pod_plan *p = calloc(1, sizeof(*p));
		struct cric_err err = { { 0 } };
		if (!p)
			break;
		int r = pod_plan_make(&env, req,
				      "0123456789abcdef0123456789abcdef0123456789abcdef"
				      "0123456789abcdef",
				      p, &err);
		if (r == 0) {
			if (!p->handler || p->cgroup[0] != '/' || strstr(p->cgroup, "/../") ||
			    strlen(p->hostname) > HOSTNAME_MAX || p->n_sysctls > MAX_SYSCTLS)
				abort();
			/* ".." inside a component ("a..b") is a name like any
			 * other; a component that is "..", or "." or empty, is
			 * not. */
			for (size_t i = 0; i < p->n_sysctls; i++)
				if (!path_is_clean(p->sysctls[i].path, false, PATH_MAX))
					abort();
			/* A mapping accepted never maps host root nor wraps. */
			if (p->userns &&
			    (!p->handler->userns_pods || !p->uid_map.host_id ||
			     !p->gid_map.host_id || p->uid_map.length < POD_USERNS_MIN_IDS ||
			     p->uid_map.length != p->gid_map.length ||
			     p->uid_map.host_id > UINT32_MAX - p->uid_map.length ||
			     p->gid_map.host_id > UINT32_MAX - p->gid_map.length))
				abort();
		} else if ((r != -EINVAL && r != -ENOPKG) || !err.msg[0]) {
			abort(); /* refusals are INVALID_ARGUMENT (or no infra), and say why */
		}
		free(p);
	}
	runtime__v1__run_pod_sandbox_request__free_unpacked(req, NULL);
	return 0;
}
