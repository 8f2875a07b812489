/* cgroup v2 (the unified hierarchy); see cgroup-ops.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cgroup-ops.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

/* word is one of list's blank-separated words */
static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
	return false;
}

/* cgroup v2 gives a child only the controllers its parent enabled in
 * cgroup.subtree_control: enable in dir every controller dir has, so the
 * limits written below it find their files (runc does the same for the
 * container's own cgroup). One that cannot be enabled (a parent someone
 * else put processes in: EBUSY) is logged; cgroup_apply then warns about
 * the limit it cannot set. */
static void prepare_parent(const char *dir)
{
	_cleanup_free_ char *cpath = path_join(dir, "cgroup.controllers");
	_cleanup_free_ char *spath = path_join(dir, "cgroup.subtree_control");
	_cleanup_free_ char *have = NULL, *on = NULL;
	size_t n;
	if (!cpath || !spath || read_file(cpath, 4096, &have, &n) < 0 ||
	    read_file(spath, 4096, &on, &n) < 0)
		return;
	for (char *save = NULL, *c = strtok_r(have, " \n", &save); c;
	     c = strtok_r(NULL, " \n", &save)) {
		if (has_word(on, c))
			continue;
		char plus[64];
		snprintf(plus, sizeof(plus), "+%s", c);
		int r = cgroup_write_file(dir, "cgroup.subtree_control", plus);
		if (r < 0)
			log_warning(
			    "cgroup \"%s\": cannot enable controller %s for its children: %s", dir,
			    c, strerror(-r));
	}
}

static void created(const char *dir)
{
	(void)dir;
}

static size_t limit_files(const struct cgroup_limits *l, struct cgroup_write *w, size_t max)
{
	size_t n = 0;
	int64_t shares = l->cpu_shares;
	if (shares > 0) {
		/* The kubelet's (and runc's) shares-to-weight mapping. */
		int64_t weight = 1 + ((shares < 2 ? 0 : shares - 2) * 9999) / 262142;
		cgroup_write_add(w, &n, max, CGROUP_LIMIT_CPU_SHARES, "cpu.weight", "%" PRId64,
				 weight > 10000 ? 10000 : weight);
	}
	/* The period lives in cpu.max with the quota: alone it is not set. */
	if (l->cpu_quota > 0)
		cgroup_write_add(w, &n, max, CGROUP_LIMIT_CPU_QUOTA, "cpu.max",
				 "%" PRId64 " %" PRId64, l->cpu_quota,
				 l->cpu_period > 0 ? l->cpu_period : 100000);
	if (l->memory_limit > 0)
		cgroup_write_add(w, &n, max, CGROUP_LIMIT_MEMORY, "memory.max", "%" PRId64,
				 l->memory_limit);
	cgroup_cpuset_writes(l, w, &n, max);
	return n;
}

const struct cgroup_ops cgroup_v2_ops = {
	.name = "v2",
	.prepare_parent = prepare_parent,
	.created = created,
	.limit_files = limit_files,
};
