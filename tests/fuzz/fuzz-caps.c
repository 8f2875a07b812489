/* Fuzz the capability list parser (runtimed/caps.c) and the seccomp
 * profile choice: the input's first byte picks privileged/root, each
 * following line is a name for one list ('+' add, '-' drop, '~' ambient,
 * anything else is tried as a deprecated seccomp_profile_path too).
 * Whatever is accepted must be a consistent set within what the host
 * grants; every refusal is -EINVAL (-ENOPKG: not grantable) and says why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtimed/caps.h"
#include "runtimed/seccomp-default.h"

#define MAX_LINES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	char *buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';

	char *add[MAX_LINES], *drop[MAX_LINES], *amb[MAX_LINES];
	Runtime__V1__Capability req;
	runtime__v1__capability__init(&req);
	req.add_capabilities = add;
	req.drop_capabilities = drop;
	req.add_ambient_capabilities = amb;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char **list = NULL;
		size_t *n = NULL;
		if (line[0] == '+') {
			list = add;
			n = &req.n_add_capabilities;
		} else if (line[0] == '-') {
			list = drop;
			n = &req.n_drop_capabilities;
		} else if (line[0] == '~') {
			list = amb;
			n = &req.n_add_ambient_capabilities;
		}
		if (list && *n < MAX_LINES) {
			list[(*n)++] = line + 1;
			int c = -1;
			struct cric_err e = { { 0 } };
			int r = ctr_caps_from_name(line + 1, &c, &e);
			if (r == 0 ? (c < 0 || c >= 64) : (r != -EINVAL || !e.msg[0]))
				abort();
			continue;
		}
		enum ctr_seccomp_kind k;
		const char *ref = NULL;
		struct cric_err e = { { 0 } };
		int r = ctr_seccomp_kind(NULL, line, data[0] & 4, &k, &ref, &e);
		if (r < 0 && (r != -EINVAL || !e.msg[0]))
			abort();
		if (r == 0 && k == CTR_SECCOMP_LOCALHOST && (!ref || !*ref))
			abort();
	}

	/* A host without CAP_SYS_RESOURCE, as the test machines are. */
	const uint64_t grantable = ((UINT64_C(1) << 41) - 1) & ~(UINT64_C(1) << 24);
	const struct ctr_caps_input in = {
		.req = (data[0] & 8) ? NULL : &req,
		.privileged = data[0] & 1,
		.root = data[0] & 2,
		.defaults = 0x5fb, /* the nine */
		.grantable = grantable,
	};
	struct ctr_caps c;
	struct cric_err err = { { 0 } };
	int r = ctr_caps_resolve(&in, &c, &err);
	if (r == 0) {
		if ((c.bounding & ~grantable) || (c.effective & ~c.bounding) ||
		    (c.permitted != c.effective) || (c.ambient & ~c.permitted) ||
		    (c.inheritable != c.ambient) || (in.privileged && c.bounding != grantable) ||
		    (!in.root && c.effective != c.ambient))
			abort();
		json_t *o = ctr_caps_to_oci(&c);
		if (!o)
			abort();
		json_decref(o);
		json_t *p = NULL;
		if (ctr_seccomp_default(c.bounding, NULL, &p, NULL) < 0 || !p)
			abort();
		json_decref(p);
	} else if ((r != -EINVAL && r != -ENOPKG) || !err.msg[0]) {
		abort();
	}
	free(buf);
	return 0;
}
