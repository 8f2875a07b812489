/* netd's adapter: its internal service (proto/cric/netd.proto) turned into
 * calls on the manager (netd.h) and the pod networks (pods.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cniconf.h"
#include "common/cleanup.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "netd.h"
#include "rpc.h"

/* The config dir is re-read on every call: NetworkReady turns true as soon
 * as a config appears, with nothing to watch or invalidate. */
static int network_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			  ProtobufCMessage **out, struct cric_err *err)
{
	(void)call;
	(void)in;
	(void)err;
	struct netd *n = ud;
	struct cni_network net;
	struct cric_err why = { { 0 } };

	pthread_mutex_lock(&n->lock);
	int r = cni_network_find(n->conf_dir, n->bin_dirs, &net, &why);
	pthread_mutex_unlock(&n->lock);

	_cleanup_pb_ Cric__Netd__NetworkStatusResponse *ns =
	    pb_new(&cric__netd__network_status_response__descriptor);
	if (!ns)
		return -ENOMEM;
	ns->ready = r == 0;
	if ((r < 0 && (pb_set_str(&ns->reason, "NetworkPluginNotReady") < 0 ||
		       pb_set_str(&ns->message, why.msg) < 0)) ||
	    (r != -ENOENT && (pb_set_str(&ns->conf_file, net.file) < 0 ||
			      pb_set_str(&ns->network_name, net.name) < 0)))
		return -ENOMEM;
	*out = &TAKE_PTR(ns)->base;
	return 0;
}

/* Log lines of this call name the pod (a valid id only: it is input). The
 * id is copied: the dispatcher still logs after the request is freed. */
static void log_pod(const struct cric_call *call, const char *pod_id)
{
	static _Thread_local char id[65];
	snprintf(id, sizeof(id), "%s", id_is_valid(pod_id) ? pod_id : "");
	const struct log_ctx ctx = { .method = call->method,
				     .request_id = call->request_id,
				     .pod_id = id[0] ? id : NULL };
	log_ctx_set(&ctx);
}

static Cric__Netd__NetdPodNetwork *network_to_pb(const struct pod_network *net)
{
	_cleanup_pb_ Cric__Netd__NetdPodNetwork *pb =
	    pb_new(&cric__netd__netd_pod_network__descriptor);
	if (!pb)
		return NULL;
	size_t k = 0;
	while (net->ips[k])
		k++;
	if (k > 0 && !(pb->ips = calloc(k, sizeof(char *))))
		return NULL;
	for (; pb->n_ips < k; pb->n_ips++)
		if (pb_set_str(&pb->ips[pb->n_ips], net->ips[pb->n_ips]) < 0)
			return NULL;
	pb->netns_present = net->netns_present;
	if (pb_set_str(&pb->pod_id, net->pod_id) < 0 ||
	    pb_set_str(&pb->netns_path, net->netns_path) < 0 ||
	    pb_set_str(&pb->userns_path, net->userns_path ? net->userns_path : "") < 0 ||
	    pb_set_str(&pb->cni_result_json, net->result_json) < 0 ||
	    pb_set_str(&pb->network_name, net->network_name) < 0 ||
	    pb_set_str(&pb->cni_version, net->cni_version) < 0 ||
	    pb_set_str(&pb->interface, net->ifname) < 0)
		return NULL;
	return TAKE_PTR(pb);
}

static int setup_pod_network(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			     ProtobufCMessage **out, struct cric_err *err)
{
	struct netd *n = ud;
	const Cric__Netd__SetupPodNetworkRequest *req = (const void *)in;
	log_pod(call, req->pod_id);

	/* Bounded before anything is allocated for them. */
	if (req->n_port_mappings > POD_MAX_PORTS)
		return err_set(err, -EINVAL, "more than %d port mappings", POD_MAX_PORTS);
	if (req->n_ip_ranges > POD_MAX_IP_RANGES)
		return err_set(err, -EINVAL, "more than %d ip_ranges", POD_MAX_IP_RANGES);
	struct pod_port_mapping ports[POD_MAX_PORTS];
	for (size_t i = 0; i < req->n_port_mappings; i++) {
		const Cric__Netd__NetdPortMapping *m = req->port_mappings[i];
		ports[i] = (struct pod_port_mapping){ .protocol = m->protocol,
						      .container_port = m->container_port,
						      .host_port = m->host_port,
						      .host_ip = m->host_ip };
	}
	struct pod_ip_range ranges[POD_MAX_IP_RANGES];
	for (size_t i = 0; i < req->n_ip_ranges; i++) {
		const Cric__Netd__NetdIPRange *r = req->ip_ranges[i];
		ranges[i] = (struct pod_ip_range){ .subnet = r->subnet,
						   .range_start = r->range_start,
						   .range_end = r->range_end,
						   .gateway = r->gateway };
	}
	struct pod_userns uns;
	if (req->userns)
		uns = (struct pod_userns){ .uid_host_id = req->userns->uid_host_id,
					   .gid_host_id = req->userns->gid_host_id,
					   .length = req->userns->length };
	struct pod_bandwidth bw;
	if (req->bandwidth)
		bw = (struct pod_bandwidth){ .ingress_rate = req->bandwidth->ingress_rate,
					     .ingress_burst = req->bandwidth->ingress_burst,
					     .egress_rate = req->bandwidth->egress_rate,
					     .egress_burst = req->bandwidth->egress_burst };
	struct pod_dns dns;
	if (req->dns)
		dns = (struct pod_dns){ .servers = (const char *const *)req->dns->servers,
					.n_servers = req->dns->n_servers,
					.searches = (const char *const *)req->dns->searches,
					.n_searches = req->dns->n_searches,
					.options = (const char *const *)req->dns->options,
					.n_options = req->dns->n_options };
	const struct pod_net_spec spec = {
		.id = req->pod_id,
		.name = req->name,
		.namespace_ = req->namespace_,
		.uid = req->uid,
		.ports = ports,
		.n_ports = req->n_port_mappings,
		.bandwidth = req->bandwidth ? &bw : NULL,
		.dns = req->dns ? &dns : NULL,
		.ip_ranges = ranges,
		.n_ip_ranges = req->n_ip_ranges,
		.userns = req->userns ? &uns : NULL,
	};

	_cleanup_(netd_settings_done) struct netd_settings s = { 0 };
	_cleanup_(pod_network_freep) struct pod_network *net = NULL;
	int r = netd_settings_get(n, &s);
	if (r == 0)
		r = pods_setup(n->pods, &s.rt, s.conf_dir, &spec, &net, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Cric__Netd__SetupPodNetworkResponse *resp =
	    pb_new(&cric__netd__setup_pod_network_response__descriptor);
	if (!resp || !(resp->network = network_to_pb(net)))
		return -ENOMEM;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int teardown_pod_network(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
				ProtobufCMessage **out, struct cric_err *err)
{
	struct netd *n = ud;
	const Cric__Netd__TeardownPodNetworkRequest *req = (const void *)in;
	log_pod(call, req->pod_id);

	_cleanup_(netd_settings_done) struct netd_settings s = { 0 };
	bool was_known = false;
	int r = netd_settings_get(n, &s);
	if (r == 0)
		r = pods_teardown(n->pods, &s.rt, req->pod_id, &was_known, err);
	if (r < 0)
		return r;
	_cleanup_pb_ Cric__Netd__TeardownPodNetworkResponse *resp =
	    pb_new(&cric__netd__teardown_pod_network_response__descriptor);
	if (!resp)
		return -ENOMEM;
	resp->was_known = was_known;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

static int pod_network_status(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
			      ProtobufCMessage **out, struct cric_err *err)
{
	struct netd *n = ud;
	const Cric__Netd__PodNetworkStatusRequest *req = (const void *)in;
	log_pod(call, req->pod_id);

	_cleanup_(netd_settings_done) struct netd_settings s = { 0 };
	_cleanup_(pod_network_freep) struct pod_network *net = NULL;
	bool checked = false;
	int r = netd_settings_get(n, &s);
	if (r == 0)
		r = pods_status(n->pods, &s.rt, req->pod_id, req->check, &net, &checked, err);
	if (r < 0)
		return r;
	if (!net) /* pods_status() fills it on success */
		return err_set(err, -EIO, "pod %s: no network status", req->pod_id);
	_cleanup_pb_ Cric__Netd__PodNetworkStatusResponse *resp =
	    pb_new(&cric__netd__pod_network_status_response__descriptor);
	if (!resp || !(resp->network = network_to_pb(net)))
		return -ENOMEM;
	resp->checked = checked;
	*out = &TAKE_PTR(resp)->base;
	return 0;
}

/* runtimed calls them for Status, RunPodSandbox, Stop/RemovePodSandbox and
 * PodSandboxStatus; the integration tests through cric-call. */
static const struct cric_handler netd_lines[] = {
	{ CRIC_NETD(network_status), network_status, .callers = CALLER_RUNTIMED | CALLER_ADMIN,
	  .cap_ms = NETD_STATUS_CAP_MS },
	{ CRIC_NETD(setup_pod_network), setup_pod_network,
	  .callers = CALLER_RUNTIMED | CALLER_ADMIN, .cap_ms = NETD_CNI_CAP_MS },
	{ CRIC_NETD(teardown_pod_network), teardown_pod_network,
	  .callers = CALLER_RUNTIMED | CALLER_ADMIN, .cap_ms = NETD_CNI_CAP_MS },
	{ CRIC_NETD(pod_network_status), pod_network_status,
	  .callers = CALLER_RUNTIMED | CALLER_ADMIN, .cap_ms = NETD_CNI_CAP_MS },
};

const struct cric_service netd_services[] = {
	{ &cric__netd__netd__descriptor, netd_lines, ARRAY_SIZE(netd_lines) },
};

const size_t netd_n_services = ARRAY_SIZE(netd_services);
