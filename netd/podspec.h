/* What a caller asks of a pod's network (cric.netd.SetupPodNetwork): its
 * identity, port mappings, bandwidth, DNS and IP ranges; the validation of
 * all of it as hostile input, and its CNI form (CNI_ARGS and the
 * runtimeConfig capabilities). Pure functions, thread-safe.
 *
 * Strings are borrowed (the caller's, e.g. an unpacked protobuf message) and
 * must outlive the use of the spec.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define POD_MAX_PORTS        128
#define POD_MAX_IP_RANGES    16
#define POD_DNS_MAX_SERVERS  16
#define POD_DNS_MAX_SEARCHES 32
#define POD_DNS_MAX_OPTIONS  32
/* Above this a rate or burst (bits, bits/s) is surely a mistake: 1 Pbit. */
#define POD_BANDWIDTH_MAX (1000ull * 1000 * 1000 * 1000 * 1000)
/* The burst a rate without one gets (what the kubelet passes: no limit). */
#define POD_BANDWIDTH_DEFAULT_BURST 2147483647ull

struct pod_port_mapping {
	const char *protocol; /* "tcp" (also NULL/""), "udp", "sctp"; any case */
	int32_t container_port;
	int32_t host_port;   /* 0: not published, left out of CNI */
	const char *host_ip; /* NULL/"" for all addresses */
};

struct pod_bandwidth {
	uint64_t ingress_rate, ingress_burst; /* bits/s, bits; 0: unlimited */
	uint64_t egress_rate, egress_burst;
};

struct pod_dns {
	const char *const *servers;
	size_t n_servers;
	const char *const *searches;
	size_t n_searches;
	const char *const *options;
	size_t n_options;
};

struct pod_ip_range {
	const char *subnet;                            /* CIDR */
	const char *range_start, *range_end, *gateway; /* optional (NULL/"") */
};

struct pod_userns {
	uint32_t uid_host_id, gid_host_id, length;
};

struct pod_net_spec {
	const char *id; /* 64 lowercase hex */
	const char *name;
	const char *namespace_;
	const char *uid;
	const struct pod_port_mapping *ports;
	size_t n_ports;
	const struct pod_bandwidth *bandwidth; /* NULL: none */
	const struct pod_dns *dns;             /* NULL: none */
	const struct pod_ip_range *ip_ranges;
	size_t n_ip_ranges;
	/* The pod's own user namespace (NULL: none): container ids
	 * 0..length-1 are host ids uid_host_id.. and gid_host_id.. */
	const struct pod_userns *userns;
};

/* Check every field; -EINVAL with err naming the first bad one. The pod's
 * name, namespace and uid go through pod_metadata_validate() (common/ids.h):
 * nothing that could break CNI_ARGS' "K=V;K=V" or a path. */
int pod_net_spec_validate(const struct pod_net_spec *s, struct cric_err *err);

/* "IgnoreUnknown=1;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;
 * K8S_POD_INFRA_CONTAINER_ID=<id>;K8S_POD_UID=.." for a validated spec;
 * malloc'd, NULL on OOM. */
char *pod_net_spec_cni_args(const struct pod_net_spec *s);

/* The runtime data for CNI capabilities, as an object holding only what the
 * spec has: "portMappings" (host_port > 0 only), "bandwidth", "dns",
 * "ipRanges". A validated spec; NULL on OOM. */
json_t *pod_net_spec_runtime_config(const struct pod_net_spec *s);
