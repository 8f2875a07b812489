#include "podspec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/cleanup.h"
#include "common/ids.h"
#include "ipaddr.h"

static bool empty(const char *s)
{
	return !s || !*s;
}

/* "tcp", "udp", "sctp" in lower case, or NULL. */
static const char *protocol_name(const char *p)
{
	static const char *const names[] = { "tcp", "udp", "sctp" };
	if (empty(p))
		return "tcp";
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(p, names[i]) == 0)
			return names[i];
	return NULL;
}

static int validate_ports(const struct pod_net_spec *s, struct cric_err *err)
{
	if (s->n_ports > POD_MAX_PORTS)
		return err_set(err, -EINVAL, "more than %d port mappings", POD_MAX_PORTS);
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct pod_port_mapping *m = &s->ports[i];
		if (!protocol_name(m->protocol))
			return err_set(err, -EINVAL,
				       "port_mappings[%zu]: protocol must be tcp, udp or sctp", i);
		if (m->container_port < 1 || m->container_port > 65535)
			return err_set(err, -EINVAL,
				       "port_mappings[%zu]: container_port %d out of range", i,
				       (int)m->container_port);
		if (m->host_port < 0 || m->host_port > 65535)
			return err_set(err, -EINVAL,
				       "port_mappings[%zu]: host_port %d out of range", i,
				       (int)m->host_port);
		if (!empty(m->host_ip) && !ip_is_valid(m->host_ip, 0))
			return err_set(err, -EINVAL,
				       "port_mappings[%zu]: host_ip is not an IP address", i);
	}
	return 0;
}

static int validate_bandwidth(const struct pod_bandwidth *b, struct cric_err *err)
{
	const uint64_t v[] = { b->ingress_rate, b->ingress_burst, b->egress_rate, b->egress_burst };
	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		if (v[i] > POD_BANDWIDTH_MAX)
			return err_set(err, -EINVAL, "bandwidth: value %llu too large",
				       (unsigned long long)v[i]);
	return 0;
}

static int validate_list(const char *what, const char *const *v, size_t n, size_t max_n,
			 size_t max_len, const char *extra, struct cric_err *err)
{
	if (n > max_n)
		return err_set(err, -EINVAL, "dns: more than %zu %s", max_n, what);
	for (size_t i = 0; i < n; i++)
		if (!v[i] || strnlen(v[i], max_len + 1) > max_len ||
		    !token_chars_ok(v[i], strlen(v[i]), extra))
			return err_set(err, -EINVAL, "dns: %s[%zu] is invalid", what, i);
	return 0;
}

static int validate_dns(const struct pod_dns *d, struct cric_err *err)
{
	if (d->n_servers > POD_DNS_MAX_SERVERS)
		return err_set(err, -EINVAL, "dns: more than %d servers", POD_DNS_MAX_SERVERS);
	for (size_t i = 0; i < d->n_servers; i++)
		if (!ip_is_valid(d->servers[i], 0))
			return err_set(err, -EINVAL, "dns: servers[%zu] is not an IP address", i);
	int r = validate_list("searches", d->searches, d->n_searches, POD_DNS_MAX_SEARCHES, 253,
			      ".-_", err);
	if (r < 0)
		return r;
	return validate_list("options", d->options, d->n_options, POD_DNS_MAX_OPTIONS, 64,
			     ".-_:", err);
}

static int validate_ip_ranges(const struct pod_net_spec *s, struct cric_err *err)
{
	if (s->n_ip_ranges > POD_MAX_IP_RANGES)
		return err_set(err, -EINVAL, "more than %d ip_ranges", POD_MAX_IP_RANGES);
	for (size_t i = 0; i < s->n_ip_ranges; i++) {
		const struct pod_ip_range *r = &s->ip_ranges[i];
		struct ip_cidr c;
		if (ip_parse_cidr(r->subnet, 0, &c) < 0)
			return err_set(err, -EINVAL, "ip_ranges[%zu]: subnet is not a CIDR", i);
		const char *opt[] = { r->range_start, r->range_end, r->gateway };
		for (size_t k = 0; k < ARRAY_SIZE(opt); k++)
			if (!empty(opt[k]) && !ip_is_valid(opt[k], c.family))
				return err_set(err, -EINVAL,
					       "ip_ranges[%zu]: an address is not an IP of the "
					       "subnet's family",
					       i);
	}
	return 0;
}

static int validate_userns(const struct pod_userns *u, struct cric_err *err)
{
	if (u->length == 0)
		return err_set(err, -EINVAL, "userns.length must be at least 1");
	if (u->uid_host_id == 0 || u->gid_host_id == 0)
		return err_set(err, -EINVAL, "userns host ids must not be 0 (the host's root)");
	if (u->uid_host_id > UINT32_MAX - u->length || u->gid_host_id > UINT32_MAX - u->length)
		return err_set(err, -EINVAL, "userns host ids + length pass 2^32-1");
	return 0;
}

int pod_net_spec_validate(const struct pod_net_spec *s, struct cric_err *err)
{
	if (!id_is_valid(s->id))
		return err_set(err, -EINVAL, "pod_id must be 64 lowercase hex characters");
	if (pod_metadata_validate(s->name, s->namespace_, s->uid, "", err) < 0)
		return -EINVAL;
	int r = validate_ports(s, err);
	if (r == 0 && s->bandwidth)
		r = validate_bandwidth(s->bandwidth, err);
	if (r == 0 && s->dns)
		r = validate_dns(s->dns, err);
	if (r == 0)
		r = validate_ip_ranges(s, err);
	if (r == 0 && s->userns)
		r = validate_userns(s->userns, err);
	return r;
}

char *pod_net_spec_cni_args(const struct pod_net_spec *s)
{
	char *out = NULL;
	if (asprintf(&out,
		     "IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
		     "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
		     s->namespace_, s->name, s->id, s->uid) < 0)
		return NULL;
	return out;
}

/* json_object_set_new that reports failure (and frees value). */
static int set_new(json_t *o, const char *key, json_t *value)
{
	return value && json_object_set_new(o, key, value) == 0 ? 0 : -ENOMEM;
}

static json_t *port_mappings(const struct pod_net_spec *s)
{
	_cleanup_json_ json_t *a = json_array();
	if (!a)
		return NULL;
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct pod_port_mapping *m = &s->ports[i];
		if (m->host_port == 0)
			continue;
		json_t *o = json_pack("{s:I, s:I, s:s}", "hostPort", (json_int_t)m->host_port,
				      "containerPort", (json_int_t)m->container_port, "protocol",
				      protocol_name(m->protocol));
		if (!o || json_array_append_new(a, o) < 0)
			return NULL;
		if (!empty(m->host_ip) && set_new(o, "hostIP", json_string(m->host_ip)) < 0)
			return NULL;
	}
	return TAKE_PTR(a);
}

static json_t *bandwidth(const struct pod_bandwidth *b)
{
	_cleanup_json_ json_t *o = json_object();
	const struct {
		const char *rate_key, *burst_key;
		uint64_t rate, burst;
	} dirs[] = {
		{ "ingressRate", "ingressBurst", b->ingress_rate, b->ingress_burst },
		{ "egressRate", "egressBurst", b->egress_rate, b->egress_burst },
	};
	if (!o)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (dirs[i].rate == 0)
			continue; /* unlimited; a burst alone means nothing */
		uint64_t burst = dirs[i].burst ? dirs[i].burst : POD_BANDWIDTH_DEFAULT_BURST;
		if (set_new(o, dirs[i].rate_key, json_integer((json_int_t)dirs[i].rate)) < 0 ||
		    set_new(o, dirs[i].burst_key, json_integer((json_int_t)burst)) < 0)
			return NULL;
	}
	return TAKE_PTR(o);
}

static int set_strings(json_t *o, const char *key, const char *const *v, size_t n)
{
	if (n == 0)
		return 0;
	json_t *a = json_array();
	if (set_new(o, key, a) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0)
			return -ENOMEM;
	return 0;
}

static json_t *dns(const struct pod_dns *d)
{
	_cleanup_json_ json_t *o = json_object();
	if (!o || set_strings(o, "servers", d->servers, d->n_servers) < 0 ||
	    set_strings(o, "searches", d->searches, d->n_searches) < 0 ||
	    set_strings(o, "options", d->options, d->n_options) < 0)
		return NULL;
	return TAKE_PTR(o);
}

/* One range set per range: [[{"subnet": ...}], [{"subnet": ...}]], as the
 * kubelet's dual-stack pod CIDRs are handed to host-local. */
static json_t *ip_ranges(const struct pod_net_spec *s)
{
	_cleanup_json_ json_t *sets = json_array();
	if (!sets)
		return NULL;
	for (size_t i = 0; i < s->n_ip_ranges; i++) {
		const struct pod_ip_range *r = &s->ip_ranges[i];
		json_t *set = json_array();
		if (!set || json_array_append_new(sets, set) < 0)
			return NULL; /* (append_new frees set on failure) */
		json_t *range = json_pack("{s:s}", "subnet", r->subnet);
		if (!range)
			return NULL;
		if (json_array_append_new(set, range) < 0 ||
		    (!empty(r->range_start) &&
		     set_new(range, "rangeStart", json_string(r->range_start)) < 0) ||
		    (!empty(r->range_end) &&
		     set_new(range, "rangeEnd", json_string(r->range_end)) < 0) ||
		    (!empty(r->gateway) && set_new(range, "gateway", json_string(r->gateway)) < 0))
			return NULL;
	}
	return TAKE_PTR(sets);
}

json_t *pod_net_spec_runtime_config(const struct pod_net_spec *s)
{
	_cleanup_json_ json_t *rc = json_object();
	if (!rc)
		return NULL;
	_cleanup_json_ json_t *pm = port_mappings(s);
	if (!pm || (json_array_size(pm) > 0 && set_new(rc, "portMappings", TAKE_PTR(pm)) < 0))
		return NULL;
	if (s->bandwidth) {
		json_t *b = bandwidth(s->bandwidth);
		if (!b)
			return NULL;
		if (json_object_size(b) == 0)
			json_decref(b);
		else if (set_new(rc, "bandwidth", b) < 0)
			return NULL;
	}
	if (s->dns) {
		json_t *d = dns(s->dns);
		if (!d)
			return NULL;
		if (json_object_size(d) == 0)
			json_decref(d);
		else if (set_new(rc, "dns", d) < 0)
			return NULL;
	}
	if (s->n_ip_ranges > 0 && set_new(rc, "ipRanges", ip_ranges(s)) < 0)
		return NULL;
	return TAKE_PTR(rc);
}
