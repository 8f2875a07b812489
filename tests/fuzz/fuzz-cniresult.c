/* Fuzz what CNI plugins print (netd/cniresult.c): plugin output loaded as
 * JSON, validated as a result in each version form, and described as an
 * error. What is accepted must satisfy the invariants netd relies on. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netd/cniresult.h"

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check(const struct cni_result *r)
{
	if (!terminated(r->cni_version, sizeof(r->cni_version)) ||
	    !cni_version_valid(r->cni_version))
		abort();
	if (r->n_ips > CNI_RESULT_MAX_IPS)
		abort();
	for (unsigned i = 0; i < r->n_ips; i++) {
		const struct cni_ip *ip = &r->ips[i];
		if (!terminated(ip->address, sizeof(ip->address)) || !ip->address[0] ||
		    (ip->family != AF_INET && ip->family != AF_INET6) ||
		    ip->prefix_len > (ip->family == AF_INET ? 32u : 128u) || ip->interface < -1 ||
		    ip->interface >= CNI_RESULT_MAX_IFACES)
			abort();
	}
	const struct cni_ip *pod[CNI_RESULT_MAX_IPS];
	if (cni_result_pod_ips(r, pod, CNI_RESULT_MAX_IPS) > r->n_ips)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const versions[] = { NULL, "0.2.0", "0.4.0", "1.0.0" };
	struct cric_err err;
	json_t *doc = NULL;
	int r = cni_output_load((const char *)data, size, &doc, &err);
	if (r == 0) {
		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
			struct cni_result res;
			memset(&res, 0, sizeof(res));
			int k = cni_result_parse(doc, versions[i], &res, &err);
			if (k == 0)
				check(&res);
			else if (k != -EBADMSG || !terminated(err.msg, sizeof(err.msg)))
				abort();
		}
		json_decref(doc);
	} else if (r != -EBADMSG || doc) {
		abort();
	}

	/* The same bytes as a failed plugin's stdout, and as its stderr. */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(err.msg, 'x', sizeof(err.msg));
	r = cni_error_describe((const char *)data, size, text, 1 << 8, &err);
	if ((r != -EIO && r != -EAGAIN) || !terminated(err.msg, sizeof(err.msg)))
		abort();
	for (const char *p = err.msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort(); /* no control character reaches a log line */
	free(text);
	return 0;
}
