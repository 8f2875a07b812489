/* cgroup v1 (every mounted controller hierarchy, hybrid included); see
 * cgroup-ops.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-ops.h"
#include "common/fsutil.h"
#include "common/macro.h"

static void prepare_parent(const char *dir)
{
	(void)dir;
}

/* A new v1 cpuset cgroup has no cpus and mems: take the parent's. */
static void created(const char *dir)
{
	_cleanup_free_ char *probe = path_join(dir, "cpuset.cpus");
	if (!probe || access(probe, F_OK) < 0)
		return;
	_cleanup_free_ char *parent = strdup(dir);
	if (!parent)
		return;
	*strrchr(parent, '/') = '\0';
	const char *files[] = { "cpuset.cpus", "cpuset.mems" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *mine = path_join(dir, files[i]);
		_cleanup_free_ char *theirs = path_join(parent, files[i]);
		_cleanup_free_ char *cur = NULL, *val = NULL;
		size_t n;
		if (!mine || !theirs || read_file(mine, 4096, &cur, &n) < 0)
			continue;
		if (cur[0] != '\n' && cur[0] != '\0')
			continue;
		if (read_file(theirs, 4096, &val, &n) == 0)
			cgroup_write_file(dir, files[i], val);
	}
}

static size_t limit_files(const struct cgroup_limits *l, struct cgroup_write *w, size_t max)
{
	size_t n = 0;
	if (l->cpu_shares > 0)
		cgroup_write_add(w, &n, max, CGROUP_LIMIT_CPU_SHARES, "cpu.shares", "%" PRId64,
				 l->cpu_shares);
	if (l->cpu_period > 0)
		cgroup_write_add(w, &n, max, CGROUP_LIMIT_CPU_PERIOD, "cpu.cfs_period_us",
				 "%" PRId64, l->cpu_period);
	if (l->cpu_quota > 0)
		cgroup_write_add(w, &n, max, CGROUP_LIMIT_CPU_QUOTA, "cpu.cfs_quota_us", "%" PRId64,
				 l->cpu_quota);
	if (l->memory_limit > 0)
		cgroup_write_add(w, &n, max, CGROUP_LIMIT_MEMORY, "memory.limit_in_bytes",
				 "%" PRId64, l->memory_limit);
	cgroup_cpuset_writes(l, w, &n, max);
	return n;
}

const struct cgroup_ops cgroup_v1_ops = {
	.name = "v1",
	.prepare_parent = prepare_parent,
	.created = created,
	.limit_files = limit_files,
};
