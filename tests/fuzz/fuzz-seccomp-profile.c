/* Fuzz the Localhost seccomp profile parser (runtimed/seccomp-profile.c):
 * the input is the profile file's text, parsed as the reader does, then
 * built for x86_64 and aarch64 with and without CAP_SYS_ADMIN. Whatever
 * is accepted is an object with a defaultAction and a syscalls array; every
 * refusal is -EINVAL naming the file. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtimed/seccomp-profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CTR_SECCOMP_PROFILE_MAX)
		return 0;
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!doc)
		return 0;
	static const struct ctr_seccomp_host hosts[] = { { "x86_64", 5, 10 }, { "aarch64", 4, 4 } };
	for (size_t i = 0; i < 4; i++) {
		json_t *out = NULL;
		struct cric_err err = { { 0 } };
		int r = ctr_seccomp_profile_build(doc, "/p.json", (i & 1) ? UINT64_C(1) << 21 : 0,
						  &hosts[i / 2], &out, &err);
		if (r == 0) {
			if (!json_is_object(out) ||
			    !json_is_string(json_object_get(out, "defaultAction")) ||
			    !json_is_array(json_object_get(out, "syscalls")))
				abort();
			json_decref(out);
		} else if (out || (r != -EINVAL && r != -ENOMEM) ||
			   (r == -EINVAL && !strstr(err.msg, "\"/p.json\""))) {
			abort();
		}
	}
	json_decref(doc);
	return 0;
}
