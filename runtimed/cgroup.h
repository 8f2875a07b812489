/* Pod cgroups with the cgroupfs layout, on cgroup v1 (every mounted
 * hierarchy, hybrid included) and v2.
 *
 * The kubelet names a pod's cgroup in PodSandboxConfig.linux.cgroup_parent:
 * a path ("/kubepods/burstable/pod<uid>") with the cgroupfs driver, a slice
 * ("kubepods-burstable-pod<uid>.slice") with the systemd driver, which maps
 * to the path systemd gives it ("/kubepods.slice/kubepods-burstable.slice/
 * kubepods-burstable-pod<uid>.slice"). runtimed creates what is missing of
 * that path in every hierarchy, remembers what it created, and removes only
 * that (and only when empty) when the pod goes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CGROUP_PATH_MAX 1024

/* What of LinuxContainerResources applies to a pod's cgroup; 0 / "" = unset. */
struct cgroup_limits {
	int64_t cpu_shares;
	int64_t cpu_quota; /* microseconds per period; <= 0 unset */
	int64_t cpu_period;
	int64_t memory_limit;
	char cpuset_cpus[256];
	char cpuset_mems[256];
};

/* Validate parent for the driver ("cgroupfs" or "systemd") and write the
 * cgroupfs path (leading '/', no trailing one) into out. */
int cgroup_resolve_parent(const char *driver, const char *parent, char *out, size_t size,
			  struct cric_err *err);

/* Make path exist in every hierarchy. *created gets a NULL-terminated list
 * of the prefixes of path this call created (deepest last), for
 * cgroup_remove_created(). */
int cgroup_create(const char *path, char ***created, struct cric_err *err);

/* Write the set limits into path's control files (v1 and v2 names). */
int cgroup_apply(const char *path, const struct cgroup_limits *l, struct cric_err *err);

/* rmdir the listed cgroups, deepest first, in every hierarchy. Missing ones
 * are fine; one still in use (children, tasks) is left, and so are its
 * ancestors. */
int cgroup_remove_created(char *const *created, struct cric_err *err);

/* True when path exists in the first hierarchy (for tests and status). */
bool cgroup_exists(const char *path);

/* The mount points of the cgroup hierarchies (v1 and v2), NULL-terminated;
 * static, read once. */
char *const *cgroup_hierarchies(void);
