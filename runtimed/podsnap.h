/* What the container half needs of a pod, from the pod's snapshot
 * (sandbox.h) at the time of a CreateContainer. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "common/error.h"
#include "common/idmap.h"
#include "common/ipc.h"
#include "sandbox.h"

struct pod_snapshot {
	char id[65];
	char name[254], namespace[254], uid[254];
	bool ready;
	char hostname[64];
	char dir[PATH_MAX];
	char log_directory[PATH_MAX];
	bool host_network, host_ipc;
	bool privileged; /* linux.security_context.privileged of its config */
	int pid_mode;
	pid_t infra_pid;
	char netns[PATH_MAX], ipc_pin[PATH_MAX], uts_pin[PATH_MAX];
	char cgroup[CGROUP_PATH_MAX], cgroup_parent[CGROUP_PATH_MAX];
	char handler[64];
	/* The pod's seccomp choice (ctrplan.h's struct ctr_pod). */
	int seccomp_kind;
	char seccomp_ref[PATH_MAX];
	/* Its own user namespace (userns_options POD, checked at
	 * RunPodSandbox): the mapping of its containers. */
	bool userns;
	struct idmap_range uid_map, gid_map;
	char userns_pin[PATH_MAX]; /* netd's pin of it */
};

/* The pod id names (id or unique prefix): -ENOENT, -EINVAL (ambiguous). */
int pod_snapshot_get(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		     struct pod_snapshot *ret, struct cric_err *err);
