/* The pod's network through netd (its internal service): the network
 * namespace and CNI ADD at creation, DEL at teardown; see sandbox-int.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "podplan.h"
#include "proto/cric/netd.pb-c.h"
#include "sandbox-int.h"

/* "10M", "1Gi", "500k" (the kubelet's bandwidth annotations) -> bits/s. */
static int parse_quantity(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	static const struct {
		const char *sfx;
		uint64_t mul;
	} units[] = {
		{ "", 1 },
		{ "k", 1000ULL },
		{ "M", 1000ULL * 1000 },
		{ "G", 1000ULL * 1000 * 1000 },
		{ "T", 1000ULL * 1000 * 1000 * 1000 },
		{ "Ki", 1024ULL },
		{ "Mi", 1024ULL * 1024 },
		{ "Gi", 1024ULL * 1024 * 1024 },
		{ "Ti", 1024ULL * 1024 * 1024 * 1024 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].sfx) == 0) {
			if (v > UINT64_MAX / units[i].mul)
				return -ERANGE;
			*ret = v * units[i].mul;
			return 0;
		}
	}
	return -EINVAL;
}

/* The kubernetes.io/{ingress,egress}-bandwidth annotations into bw;
 * *shaped when either is there. */
static int bandwidth_of(const Runtime__V1__PodSandboxConfig *cfg, Cric__Netd__NetdBandwidth *bw,
			bool *shaped, struct cric_err *err)
{
	for (size_t i = 0; i < cfg->n_annotations; i++) {
		const char *k = cfg->annotations[i]->key, *v = cfg->annotations[i]->value;
		uint64_t *dst =
		    strcmp(k, "kubernetes.io/ingress-bandwidth") == 0  ? &bw->ingress_rate
		    : strcmp(k, "kubernetes.io/egress-bandwidth") == 0 ? &bw->egress_rate
								       : NULL;
		if (!dst)
			continue;
		if (parse_quantity(v, dst) < 0)
			return err_set(err, -EINVAL, "annotation %s: invalid quantity \"%.40s\"", k,
				       v);
		*shaped = true;
	}
	return 0;
}

/* What netd made for the pod, into its sandbox. */
static int adopt_network(struct sandbox_mgr *m, struct sandbox *sb,
			 const Cric__Netd__NetdPodNetwork *n, struct cric_err *err)
{
	if (!n || strlen(n->netns_path) >= sizeof(sb->netns))
		return err_set(err, -EIO, "netd answered without a network");
	pthread_mutex_lock(&m->lock);
	snprintf(sb->netns, sizeof(sb->netns), "%s", n->netns_path);
	for (size_t i = 0; i < n->n_ips && i < SANDBOX_MAX_IPS; i++)
		sb->ips[i] = strdup(n->ips[i]);
	sb->cni_result = strdup(n->cni_result_json);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int podnet_setup(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		 const struct pod_plan *p, struct cric_err *err)
{
	const Runtime__V1__PodSandboxConfig *cfg = p->cfg;
	Cric__Netd__SetupPodNetworkRequest req = CRIC__NETD__SETUP_POD_NETWORK_REQUEST__INIT;
	req.pod_id = sb->id;
	req.name = sb->name;
	req.namespace_ = sb->namespace;
	req.uid = sb->uid;

	Cric__Netd__NetdPortMapping pms[128], *pmp[128];
	if (cfg->n_port_mappings > ARRAY_SIZE(pms))
		return err_set(err, -EINVAL, "more than %zu port_mappings", ARRAY_SIZE(pms));
	for (size_t i = 0; i < cfg->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *pm = cfg->port_mappings[i];
		cric__netd__netd_port_mapping__init(&pms[i]);
		pms[i].protocol = pm->protocol == RUNTIME__V1__PROTOCOL__UDP    ? "udp"
				  : pm->protocol == RUNTIME__V1__PROTOCOL__SCTP ? "sctp"
										: "tcp";
		pms[i].container_port = pm->container_port;
		pms[i].host_port = pm->host_port;
		pms[i].host_ip = pm->host_ip;
		pmp[i] = &pms[i];
	}
	req.n_port_mappings = cfg->n_port_mappings;
	req.port_mappings = pmp;

	Cric__Netd__NetdDNS dns = CRIC__NETD__NETD_DNS__INIT;
	if (cfg->dns_config) {
		dns.n_servers = cfg->dns_config->n_servers;
		dns.servers = cfg->dns_config->servers;
		dns.n_searches = cfg->dns_config->n_searches;
		dns.searches = cfg->dns_config->searches;
		dns.n_options = cfg->dns_config->n_options;
		dns.options = cfg->dns_config->options;
		req.dns = &dns;
	}

	Cric__Netd__NetdBandwidth bw = CRIC__NETD__NETD_BANDWIDTH__INIT;
	bool shaped = false;
	int r = bandwidth_of(cfg, &bw, &shaped, err);
	if (r < 0)
		return r;
	if (shaped)
		req.bandwidth = &bw;

	Cric__Netd__NetdIPRange ranges[MAX_POD_CIDRS], *rp[MAX_POD_CIDRS];
	pthread_mutex_lock(&m->lock);
	char cidrs[MAX_POD_CIDRS][64];
	size_t nr = 0;
	for (; nr < MAX_POD_CIDRS && m->pod_cidrs[nr]; nr++)
		snprintf(cidrs[nr], sizeof(cidrs[nr]), "%s", m->pod_cidrs[nr]);
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < nr; i++) {
		cric__netd__netd_iprange__init(&ranges[i]);
		ranges[i].subnet = cidrs[i];
		rp[i] = &ranges[i];
	}
	req.n_ip_ranges = nr;
	req.ip_ranges = rp;

	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(m->netd, CRIC_NETD(setup_pod_network), call->request_id,
				  deadline_in_ms(NETD_CNI_CAP_MS), &req.base, &out, &msg);
	if (code != CODE_OK)
		return err_set(err, errno_from_grpc_code(code), "pod network: %s",
			       msg ? msg : grpc_code_name(code));
	_cleanup_pb_ Cric__Netd__SetupPodNetworkResponse *resp =
	    (Cric__Netd__SetupPodNetworkResponse *)out;
	return adopt_network(m, sb, resp->network, err);
}

int podnet_teardown(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		    struct cric_err *err)
{
	Cric__Netd__TeardownPodNetworkRequest req = CRIC__NETD__TEARDOWN_POD_NETWORK_REQUEST__INIT;
	req.pod_id = sb->id;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code =
	    cric_call(m->netd, CRIC_NETD(teardown_pod_network), call ? call->request_id : NULL,
		      deadline_in_ms(NETD_CNI_CAP_MS), &req.base, &out, &msg);
	if (out)
		protobuf_c_message_free_unpacked(out, NULL);
	if (code != CODE_OK)
		return err_set(err, errno_from_grpc_code(code), "tear down the pod network: %s",
			       msg ? msg : grpc_code_name(code));
	return 0;
}
