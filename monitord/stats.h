/* monitord's container stats (CRI ContainerStats, ListContainerStats): one
 * sampler for every caller.
 *
 * The containers are the monitors' directories (monitors.h); what stats
 * report about each beyond the numbers (pod, name, attempt, labels,
 * annotations, its cgroup and writable layer) is the container's
 * attrs.json, written by CreateMonitor from what runtimed sends.
 *
 * One cached sample per container: cpu and memory are read from its cgroup
 * (v1: cpuacct.usage, memory.usage_in_bytes and memory.stat; v2: cpu.stat,
 * memory.current and memory.stat) when the cached one is older than
 * STATS_FRESH_MS, so a ListContainerStats and concurrent ContainerStats
 * read the same one; usage_nano_cores is the rate between the last two
 * samples (absent until there are two). The writable layer (bytes and
 * inodes of its upper dir, counted as du does) is measured by a background
 * thread every STATS_LAYER_PERIOD_S, and at once for a container it has
 * not measured yet: never a walk per call. fs_id.mountpoint is the mount
 * point of the file system holding it.
 *
 * A container whose cgroup is gone (exited, removed under way) is left out
 * of ListContainerStats (the kubelet's summary fails on any error); for
 * ContainerStats it is reported without cpu and memory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/service.h"

#define STATS_FRESH_MS       1000
#define STATS_LAYER_PERIOD_S 10
#define STATS_ATTRS_FILE     "attrs.json"

struct monitors;
struct stats;

/* One reading of a cgroup (pods.h samples the pods' with it too). ok: cpu
 * and memory were read; procs_ok: pids.current was (the pids controller is
 * optional). */
struct stats_cg {
	bool ok, procs_ok;
	int64_t at;   /* unix ns */
	int64_t mono; /* CLOCK_MONOTONIC ns */
	uint64_t cpu_ns, mem_usage, working_set, rss, pgfault, pgmajfault, procs;
};

/* Read cg (relative to the hierarchy roots, starting with '/'). */
void stats_sample_cgroup(const struct stats *s, const char *cg, struct stats_cg *out);
int64_t stats_mono_ns(void);

/* What the list says of a container beyond its ContainerStats. */
struct stats_extra {
	char pod_id[65];
	bool procs_ok;
	uint64_t procs;
};

int stats_open(const char *monitors_dir, struct stats **ret, struct cric_err *err);
/* Accepts NULL; stops the background thread. */
void stats_free(struct stats *s);

/* id: a full id (resolved by the caller). -ENOENT: no such container. */
int stats_container(struct stats *s, const char *id, Runtime__V1__ContainerStats **ret,
		    struct cric_err *err);
/* Every container matching filter (NULL: all), in resp->stats. */
int stats_list(struct stats *s, const Runtime__V1__ContainerStatsFilter *filter,
	       Runtime__V1__ListContainerStatsResponse *resp, struct cric_err *err);
/* The same, with *extra (malloc'd, one per resp->stats, NULL when there are
 * none) saying each one's pod and process count. */
int stats_list_extra(struct stats *s, const Runtime__V1__ContainerStatsFilter *filter,
		     Runtime__V1__ListContainerStatsResponse *resp, struct stats_extra **extra,
		     struct cric_err *err);
