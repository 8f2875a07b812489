/* monitord's pod stats and metrics (CRI PodSandboxStats,
 * ListPodSandboxStats, ListMetricDescriptors, ListPodSandboxMetrics), on
 * the one sampler of stats.h.
 *
 * monitord knows the pods' containers (their monitors); of the pods
 * themselves it asks runtimed, over its CRI service: ListPodSandbox (the
 * READY pods, with the caller's id and label filter: the same matching as
 * ListPodSandbox) and PodSandboxStatus(verbose) once per pod for what does
 * not change in its life (its cgroup and network namespace, from the
 * verbose info). PodSandboxStats asks PodSandboxStatus each time (it
 * resolves a prefix and answers NOT_FOUND for an unknown pod).
 *
 * One cached sample per pod, as for containers: the pod's cgroup (cpu, its
 * rate between the last two samples as usage_nano_cores, memory with the
 * kubelet's working set, pids.current) and its network
 * interfaces (/proc/net/dev of the pod's network namespace, read by a
 * short-lived thread that setns()es into it, after checking that the path
 * runtimed gave is a namespace; lo left out), taken again
 * when older than STATS_FRESH_MS. A host-network pod (no namespace of its
 * own) reports no network, as containerd does. The containers' stats are
 * those of stats_list(): the same samples ListContainerStats answers from.
 *
 * Metrics: the cAdvisor names the kubelet's PodAndContainerStatsFromCRI
 * exposes, label keys as containerd's ("id", "name", plus "interface" for
 * network and "device" for the file system), values from the same samples:
 * per container cpu (whole seconds, as containerd), memory, writable-layer
 * usage and process count; per pod its interfaces' counters (labels: the
 * pod's id, "POD"). */
#pragma once

#include "common/error.h"
#include "common/ipc.h"
#include "common/service.h"
#include "stats.h"

struct cric_config;
struct pods;

/* Opens the client to runtimed; stats stays the caller's. */
int podstats_open(const struct cric_config *cfg, struct stats *stats, struct pods **ret,
		  struct cric_err *err);
/* Accepts NULL. */
void podstats_free(struct pods *p);

/* id: a pod id or unique prefix. -ENOENT: no such pod. */
int podstats_stats(struct pods *p, const struct cric_call *call, const char *id,
		   Runtime__V1__PodSandboxStats **ret, struct cric_err *err);
/* The READY pods matching filter (NULL: all), in resp->stats. */
int podstats_list(struct pods *p, const struct cric_call *call,
		  const Runtime__V1__PodSandboxStatsFilter *filter,
		  Runtime__V1__ListPodSandboxStatsResponse *resp, struct cric_err *err);
/* PortForward's target: the pod id (or a unique prefix) names a READY pod
 * (-ENOENT: no such pod, -EBUSY: not ready): its full id into full and
 * its pinned network namespace into *netns (malloc'd; NULL for a
 * host-network pod, whose ports are the host's). */
int podstats_forward_target(struct pods *p, const struct cric_call *call, const char *id,
			    char full[65], char **netns, struct cric_err *err);
int podstats_metric_descriptors(Runtime__V1__ListMetricDescriptorsResponse *resp);
int podstats_metrics(struct pods *p, const struct cric_call *call,
		     Runtime__V1__ListPodSandboxMetricsResponse *resp, struct cric_err *err);

/* One interface of /proc/net/dev. */
struct pods_iface {
	char name[32];
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};

/* The interfaces of a /proc/net/dev text (its two header lines first), lo
 * and malformed lines left out, at most max; returns how many. */
size_t podstats_parse_net_dev(const char *text, struct pods_iface *ifs, size_t max);
