/* Container resources: check, merge, OCI form; see ctrres.h. */
#include "ctrres.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/pbutil.h"

#define CPUSET_MAX 8192

static bool cpuset_number(const char **p, long *v)
{
	if (!isdigit((unsigned char)**p))
		return false;
	char *end;
	errno = 0;
	*v = strtol(*p, &end, 10);
	if (errno || *v >= CPUSET_MAX)
		return false;
	*p = end;
	return true;
}

bool ctr_cpuset_valid(const char *s)
{
	long last = -1;
	const char *p = s;
	if (!*p)
		return false;
	for (;;) {
		long a, b;
		if (!cpuset_number(&p, &a))
			return false;
		b = a;
		if (*p == '-') {
			p++;
			if (!cpuset_number(&p, &b) || b < a)
				return false;
		}
		if (a <= last)
			return false;
		last = b;
		if (!*p)
			return true;
		if (*p++ != ',')
			return false;
	}
}

bool ctr_hugepage_kb(const char *s, uint64_t *kb)
{
	if (!s || !isdigit((unsigned char)*s) || *s == '0' || strlen(s) > 12)
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long mul = strcmp(end, "KB") == 0   ? 1
				 : strcmp(end, "MB") == 0 ? 1024
				 : strcmp(end, "GB") == 0 ? 1024 * 1024
							  : 0;
	if (errno || !mul || v > (1ULL << 30) || (v & (v - 1)))
		return false;
	*kb = v * mul;
	return true;
}

static bool unified_key_valid(const char *k)
{
	const char *dot = strchr(k, '.');
	if (!dot || dot == k || !dot[1] || strlen(k) > 255)
		return false;
	for (const char *p = k; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return false;
	return true;
}

int ctr_res_check(const Runtime__V1__LinuxContainerResources *r, bool cgroup_v2,
		  struct cric_err *err)
{
	if (!r)
		return 0;
	if (r->cpu_period < 0 ||
	    (r->cpu_period > 0 && (r->cpu_period < 1000 || r->cpu_period > 1000000)))
		return err_set(err, -EINVAL,
			       "cpu_period %lld: 0 (unchanged) or 1000..1000000 microseconds",
			       (long long)r->cpu_period);
	if (r->cpu_quota < -1 || (r->cpu_quota > 0 && r->cpu_quota < 1000))
		return err_set(err, -EINVAL,
			       "cpu_quota %lld: -1 (no limit), 0 (unchanged) or at least 1000 "
			       "microseconds",
			       (long long)r->cpu_quota);
	if (r->cpu_shares < 0 || r->cpu_shares > 262144)
		return err_set(err, -EINVAL, "cpu_shares %lld: 0 (unchanged) or 1..262144",
			       (long long)r->cpu_shares);
	if (r->memory_limit_in_bytes < 0)
		return err_set(err, -EINVAL, "memory_limit_in_bytes %lld is negative",
			       (long long)r->memory_limit_in_bytes);
	if (r->memory_swap_limit_in_bytes < 0)
		return err_set(err, -EINVAL, "memory_swap_limit_in_bytes %lld is negative",
			       (long long)r->memory_swap_limit_in_bytes);
	if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
		return err_set(err, -EINVAL, "oom_score_adj %lld: -1000..1000",
			       (long long)r->oom_score_adj);
	if (r->cpuset_cpus && *r->cpuset_cpus && !ctr_cpuset_valid(r->cpuset_cpus))
		return err_set(err, -EINVAL, "cpuset_cpus \"%s\" is not a list like \"0-3,5\"",
			       r->cpuset_cpus);
	if (r->cpuset_mems && *r->cpuset_mems && !ctr_cpuset_valid(r->cpuset_mems))
		return err_set(err, -EINVAL, "cpuset_mems \"%s\" is not a list like \"0-1\"",
			       r->cpuset_mems);
	if (r->n_hugepage_limits > 16)
		return err_set(err, -E2BIG, "hugepage_limits: more than 16");
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		const char *ps = r->hugepage_limits[i]->page_size;
		uint64_t kb;
		if (!ctr_hugepage_kb(ps, &kb))
			return err_set(
			    err, -EINVAL,
			    "hugepage_limits[%zu].page_size \"%.40s\" is not a size like "
			    "\"2MB\" or \"1GB\"",
			    i, ps ? ps : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(r->hugepage_limits[j]->page_size, ps) == 0)
				return err_set(
				    err, -EINVAL,
				    "hugepage_limits[%zu].page_size \"%s\" is given twice", i, ps);
	}
	if (r->n_unified > 0 && !cgroup_v2)
		return err_set(err, -EINVAL,
			       "unified (\"%s\"...) needs cgroup v2; this host's cgroups are v1",
			       r->unified[0]->key);
	for (size_t i = 0; i < r->n_unified; i++)
		if (!unified_key_valid(r->unified[i]->key))
			return err_set(err, -EINVAL,
				       "unified key \"%s\" is not \"<controller>.<file>\"",
				       r->unified[i]->key);
	return 0;
}

/* *dst (a string of an unpacked or pb_new message) becomes a copy of v. */
static int replace_str(char **dst, const char *v)
{
	char *old = *dst;
	if (pb_set_str(dst, v) < 0)
		return -ENOMEM;
	if (old && old != protobuf_c_empty_string)
		free(old);
	return 0;
}

static int set_str(char **dst, const char *upd)
{
	return upd && *upd ? replace_str(dst, upd) : 0;
}

/* upd's hugepage limits over m's, by page size. */
static int merge_hugepages(Runtime__V1__LinuxContainerResources *m,
			   const Runtime__V1__LinuxContainerResources *upd)
{
	for (size_t i = 0; i < upd->n_hugepage_limits; i++) {
		const Runtime__V1__HugepageLimit *u = upd->hugepage_limits[i];
		size_t j = 0;
		while (j < m->n_hugepage_limits &&
		       strcmp(m->hugepage_limits[j]->page_size, u->page_size) != 0)
			j++;
		if (j == m->n_hugepage_limits) {
			Runtime__V1__HugepageLimit **v =
			    realloc(m->hugepage_limits, (j + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			m->hugepage_limits = v;
			if (!(v[j] = pb_new(&runtime__v1__hugepage_limit__descriptor)) ||
			    pb_set_str(&v[j]->page_size, u->page_size) < 0) {
				if (v[j])
					protobuf_c_message_free_unpacked(&v[j]->base, NULL);
				return -ENOMEM;
			}
			m->n_hugepage_limits++;
		}
		m->hugepage_limits[j]->limit = u->limit;
	}
	return 0;
}

int ctr_res_merge(const Runtime__V1__LinuxContainerResources *old,
		  const Runtime__V1__LinuxContainerResources *upd,
		  Runtime__V1__LinuxContainerResources **ret)
{
	_cleanup_pb_ Runtime__V1__LinuxContainerResources *m = NULL;
	if (old) {
		size_t len = protobuf_c_message_get_packed_size(&old->base);
		_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
		if (!buf)
			return -ENOMEM;
		protobuf_c_message_pack(&old->base, buf);
		m = runtime__v1__linux_container_resources__unpack(NULL, len, buf);
	} else {
		m = pb_new(&runtime__v1__linux_container_resources__descriptor);
	}
	if (!m)
		return -ENOMEM;
	if (upd) {
		if (upd->cpu_period)
			m->cpu_period = upd->cpu_period;
		if (upd->cpu_quota)
			m->cpu_quota = upd->cpu_quota;
		if (upd->cpu_shares)
			m->cpu_shares = upd->cpu_shares;
		/* oom_score_adj: checked, never merged: runc update cannot
		 * change it, and status shows what is in effect. */
		if (upd->memory_limit_in_bytes) {
			if (!upd->memory_swap_limit_in_bytes && m->memory_swap_limit_in_bytes &&
			    m->memory_swap_limit_in_bytes == m->memory_limit_in_bytes)
				m->memory_swap_limit_in_bytes = upd->memory_limit_in_bytes;
			m->memory_limit_in_bytes = upd->memory_limit_in_bytes;
		}
		if (upd->memory_swap_limit_in_bytes)
			m->memory_swap_limit_in_bytes = upd->memory_swap_limit_in_bytes;
		if (set_str(&m->cpuset_cpus, upd->cpuset_cpus) < 0 ||
		    set_str(&m->cpuset_mems, upd->cpuset_mems) < 0)
			return -ENOMEM;
		if (merge_hugepages(m, upd) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < upd->n_unified; i++) {
			bool found = false;
			for (size_t j = 0; j < m->n_unified && !found; j++) {
				if (strcmp(m->unified[j]->key, upd->unified[i]->key) != 0)
					continue;
				found = true;
				if (replace_str(&m->unified[j]->value, upd->unified[i]->value) < 0)
					return -ENOMEM;
			}
			if (!found && pb_map_add(&m->base, "unified", upd->unified[i]->key,
						 upd->unified[i]->value) < 0)
				return -ENOMEM;
		}
	}
	*ret = TAKE_PTR(m);
	return 0;
}

json_t *ctr_res_oci(const Runtime__V1__LinuxContainerResources *r)
{
	_cleanup_json_ json_t *o = json_object();
	json_t *cpu = json_object(), *mem = json_object(), *uni = json_object();
	if (!o || json_object_set_new(o, "cpu", cpu) < 0 ||
	    json_object_set_new(o, "memory", mem) < 0 || json_object_set_new(o, "unified", uni) < 0)
		return NULL;
	if (r->cpu_shares > 0)
		json_object_set_new(cpu, "shares", json_integer(r->cpu_shares));
	if (r->cpu_quota != 0)
		json_object_set_new(cpu, "quota", json_integer(r->cpu_quota));
	if (r->cpu_period > 0)
		json_object_set_new(cpu, "period", json_integer(r->cpu_period));
	if (r->cpuset_cpus && *r->cpuset_cpus)
		json_object_set_new(cpu, "cpus", json_string(r->cpuset_cpus));
	if (r->cpuset_mems && *r->cpuset_mems)
		json_object_set_new(cpu, "mems", json_string(r->cpuset_mems));
	if (r->memory_limit_in_bytes > 0)
		json_object_set_new(mem, "limit", json_integer(r->memory_limit_in_bytes));
	if (r->memory_swap_limit_in_bytes > 0)
		json_object_set_new(mem, "swap", json_integer(r->memory_swap_limit_in_bytes));
	for (size_t i = 0; i < r->n_unified; i++)
		json_object_set_new(uni, r->unified[i]->key, json_string(r->unified[i]->value));
	if (!json_object_size(uni))
		json_object_del(o, "unified");
	return TAKE_PTR(o);
}
