/* What differs between cgroup v1 and v2 for runtimed, behind one small ops
 * struct (crun's cgroup manager split): cgroup.c walks the mounted
 * hierarchies and asks each one's ops. Containers add operations here.
 *
 * Contract: every op gets absolute directories inside its own hierarchy;
 * none allocates what the caller frees; none blocks beyond a few small
 * reads and writes of control files; errors they can live with are logged
 * by them, never returned. */
#pragma once

#include <stddef.h>

#include "common/macro.h"

#include "cgroup.h"

/* The limits of struct cgroup_limits, named for warnings. */
enum cgroup_limit {
	CGROUP_LIMIT_CPU_SHARES,
	CGROUP_LIMIT_CPU_PERIOD,
	CGROUP_LIMIT_CPU_QUOTA,
	CGROUP_LIMIT_MEMORY,
	CGROUP_LIMIT_CPUSET_CPUS,
	CGROUP_LIMIT_CPUSET_MEMS,
	CGROUP_LIMIT_COUNT
};

#define CGROUP_MAX_WRITES 8

/* One control file to write for a limit. */
struct cgroup_write {
	enum cgroup_limit limit;
	const char *file;
	char value[300];
};

struct cgroup_ops {
	const char *name; /* "v1", "v2" */
	/* Before a child is made under dir (v2: enable the controllers dir
	 * has for its children, as runc does; v1: nothing). */
	void (*prepare_parent)(const char *dir);
	/* Right after dir was made (v1: a new cpuset has no cpus and mems,
	 * copy the parent's; v2: nothing). */
	void (*created)(const char *dir);
	/* The set limits of l as this version's control files, at most max;
	 * returns how many. A limit the version cannot express alone is left
	 * out (cgroup.c warns that no hierarchy took it). */
	size_t (*limit_files)(const struct cgroup_limits *l, struct cgroup_write *w, size_t max);
};

extern const struct cgroup_ops cgroup_v1_ops;
extern const struct cgroup_ops cgroup_v2_ops;

/* Append one write to w (n of max used): the file and its formatted value. */
void cgroup_write_add(struct cgroup_write *w, size_t *n, size_t max, enum cgroup_limit limit,
		      const char *file, const char *fmt, ...) _printf_(6, 7);

/* The cpuset files, named alike in v1 and v2. */
void cgroup_cpuset_writes(const struct cgroup_limits *l, struct cgroup_write *w, size_t *n,
			  size_t max);

/* Write value into dir/file (O_NOFOLLOW). 0 or -errno (-ENOENT: no such
 * control file in this hierarchy). */
int cgroup_write_file(const char *dir, const char *file, const char *value);
