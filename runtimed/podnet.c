/* The pod's network through netd (its internal service): the network
 * namespace and CNI ADD at creation, DEL at teardown, its status; and the
 * pod CIDRs handed to netd; see sandbox-int.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbutil.h"
#include "common/service.h"
#include "podplan.h"
#include "proto/cric/netd.pb-c.h"
#include "sandbox-int.h"

bool podnet_netns_path_ok(const char *pin_dir, const char *path)
{
	size_t n = strlen(pin_dir);
	if (n == 0 || pin_dir[0] != '/' || strncmp(path, pin_dir, n) != 0 || path[n] != '/')
		return false;
	const char *name = path + n + 1;
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	       id_is_safe_token(name, NAME_MAX) && path_is_clean(path, true, PATH_MAX - 1);
}

/* What netd made for the pod, into its sandbox: with userns, the pod's
 * user namespace too. */
static int adopt_network(struct sandbox_mgr *m, struct sandbox *sb, bool userns,
			 const Cric__Netd__NetdPodNetwork *n, struct cric_err *err)
{
	if (!n || strlen(n->netns_path) >= sizeof(sb->netns))
		return err_set(err, -EIO, "netd answered without a network");
	if (!podnet_netns_path_ok(m->netd_pin_dir, n->netns_path))
		return err_set(err, -EIO,
			       "netd answered a network namespace \"%.200s\" outside \"%s\"",
			       n->netns_path, m->netd_pin_dir);
	if (userns && (!n->userns_path || strlen(n->userns_path) >= sizeof(sb->userns) ||
		       !podnet_netns_path_ok(m->netd_userns_dir, n->userns_path)))
		return err_set(err, -EIO,
			       "netd answered a user namespace \"%.200s\" outside \"%s\"",
			       n->userns_path ? n->userns_path : "", m->netd_userns_dir);
	pthread_mutex_lock(&m->lock);
	snprintf(sb->netns, sizeof(sb->netns), "%s", n->netns_path);
	if (userns)
		snprintf(sb->userns, sizeof(sb->userns), "%s", n->userns_path);
	for (size_t i = 0; i < n->n_ips && i < SANDBOX_MAX_IPS; i++)
		sb->ips[i] = strdup(n->ips[i]);
	sb->cni_result = strdup(n->cni_result_json);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int podnet_setup(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		 const struct pod_plan *p, struct cric_err *err)
{
	Cric__Netd__SetupPodNetworkRequest req = CRIC__NETD__SETUP_POD_NETWORK_REQUEST__INIT;
	req.pod_id = sb->id;
	req.name = sb->name;
	req.namespace_ = sb->namespace;
	req.uid = sb->uid;

	Cric__Netd__NetdPortMapping pms[MAX_PORT_MAPPINGS], *pmp[MAX_PORT_MAPPINGS];
	for (size_t i = 0; i < p->n_ports; i++) {
		cric__netd__netd_port_mapping__init(&pms[i]);
		pms[i].protocol = (char *)p->ports[i].protocol;
		pms[i].container_port = p->ports[i].container_port;
		pms[i].host_port = p->ports[i].host_port;
		pms[i].host_ip = (char *)p->ports[i].host_ip;
		pmp[i] = &pms[i];
	}
	req.n_port_mappings = p->n_ports;
	req.port_mappings = pmp;

	Cric__Netd__NetdDNS dns = CRIC__NETD__NETD_DNS__INIT;
	if (p->has_dns) {
		dns.n_servers = p->n_dns_servers;
		dns.servers = (char **)p->dns_servers;
		dns.n_searches = p->n_dns_searches;
		dns.searches = (char **)p->dns_searches;
		dns.n_options = p->n_dns_options;
		dns.options = (char **)p->dns_options;
		req.dns = &dns;
	}

	Cric__Netd__NetdBandwidth bw = CRIC__NETD__NETD_BANDWIDTH__INIT;
	bw.ingress_rate = p->ingress_rate;
	bw.egress_rate = p->egress_rate;
	if (p->shaped)
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

	/* The pod's own user namespace: netd makes the network namespace in
	 * it (podplan.c checked the two maps are of one length). */
	Cric__Netd__NetdUserNamespace uns = CRIC__NETD__NETD_USER_NAMESPACE__INIT;
	uns.uid_host_id = p->uid_map.host_id;
	uns.gid_host_id = p->gid_map.host_id;
	uns.length = p->uid_map.length;
	if (p->userns)
		req.userns = &uns;

	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	/* A creation: it keeps going past its caller's deadline. */
	unsigned code = cric_call(m->netd, CRIC_NETD(setup_pod_network), call->request_id,
				  cric_deadline(0, NETD_CNI_CAP_MS), &req.base, &out, &msg);
	if (code != CODE_OK)
		return err_set(err, errno_from_grpc_code(code), "pod network: %s",
			       msg ? msg : grpc_code_name(code));
	_cleanup_pb_ Cric__Netd__SetupPodNetworkResponse *resp =
	    (Cric__Netd__SetupPodNetworkResponse *)out;
	return adopt_network(m, sb, p->userns, resp->network, err);
}

int podnet_teardown(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		    struct cric_err *err)
{
	Cric__Netd__TeardownPodNetworkRequest req = CRIC__NETD__TEARDOWN_POD_NETWORK_REQUEST__INIT;
	req.pod_id = sb->id;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(
	    m->netd, CRIC_NETD(teardown_pod_network), call ? call->request_id : NULL,
	    cric_deadline(call ? call->deadline_ns : 0, NETD_CNI_CAP_MS), &req.base, &out, &msg);
	if (out)
		protobuf_c_message_free_unpacked(out, NULL);
	if (code != CODE_OK)
		return err_set(err, errno_from_grpc_code(code), "tear down the pod network: %s",
			       msg ? msg : grpc_code_name(code));
	return 0;
}

int podnet_status(struct sandbox_mgr *m, const struct cric_call *call, const char *pod_id,
		  char *netns, size_t size, struct cric_err *err)
{
	Cric__Netd__PodNetworkStatusRequest req = CRIC__NETD__POD_NETWORK_STATUS_REQUEST__INIT;
	req.pod_id = (char *)pod_id;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(
	    m->netd, CRIC_NETD(pod_network_status), call ? call->request_id : NULL,
	    cric_deadline(call ? call->deadline_ns : 0, NETD_STATUS_CAP_MS), &req.base, &out, &msg);
	if (code != CODE_OK)
		return err_set(err, errno_from_grpc_code(code), "pod network status: %s",
			       msg ? msg : grpc_code_name(code));
	_cleanup_pb_ Cric__Netd__PodNetworkStatusResponse *resp =
	    (Cric__Netd__PodNetworkStatusResponse *)out;
	const Cric__Netd__NetdPodNetwork *n = resp->network;
	if (!n || !podnet_netns_path_ok(m->netd_pin_dir, n->netns_path) ||
	    strlen(n->netns_path) >= size)
		return err_set(err, -EIO, "netd answered a network namespace outside \"%s\"",
			       m->netd_pin_dir);
	snprintf(netns, size, "%s", n->netns_present ? n->netns_path : "");
	return 0;
}

/* ---- pod CIDR ---- */

static int parse_cidr(const char *s)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	unsigned char a[16];
	int fam = inet_pton(AF_INET, buf, a) == 1 ? 4 : inet_pton(AF_INET6, buf, a) == 1 ? 6 : 0;
	char *end;
	long bits = strtol(slash + 1, &end, 10);
	if (!fam || *end || end == slash + 1 || bits < 0 || bits > (fam == 4 ? 32 : 128))
		return -EINVAL;
	return 0;
}

int pod_cidrs_set_locked(struct sandbox_mgr *m, const char *cidrs, struct cric_err *err)
{
	char *new[MAX_POD_CIDRS + 1] = { 0 };
	_cleanup_free_ char *copy = strdup(cidrs);
	if (!copy)
		return -ENOMEM;
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		if (!*t)
			continue;
		if (n == MAX_POD_CIDRS || parse_cidr(t) < 0 || strlen(t) >= 64) {
			strv_clear(new, MAX_POD_CIDRS);
			return err_set(err, -EINVAL,
				       "pod_cidr \"%.200s\": at most %d CIDRs, like "
				       "198.18.0.0/24",
				       cidrs, MAX_POD_CIDRS);
		}
		if (!(new[n++] = strdup(t))) {
			strv_clear(new, MAX_POD_CIDRS);
			return -ENOMEM;
		}
	}
	strv_clear(m->pod_cidrs, MAX_POD_CIDRS);
	memcpy(m->pod_cidrs, new, sizeof(new));
	return 0;
}

int sandbox_set_pod_cidr(struct sandbox_mgr *m, const char *cidrs, struct cric_err *err)
{
	pthread_mutex_lock(&m->lock);
	int r = pod_cidrs_set_locked(m, cidrs, err);
	if (r == 0) {
		_cleanup_json_ json_t *doc = json_pack("{s:s}", "pod_cidr", cidrs);
		r = doc ? json_save_atomic(m->network_file, doc, 0600) : -ENOMEM;
		if (r < 0)
			err_set(err, r, "save \"%s\": %s", m->network_file, strerror(-r));
	}
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		log_info("pod CIDR set to \"%s\"", cidrs);
	return r;
}
