/* Fuzz the names runtimed turns into paths (runtimed/sysctl.c,
 * runtimed/cgroup.c): sysctl_parse() and cgroup_resolve_parent() with both
 * drivers on arbitrary bytes (a '\n' splits name and value). An accepted
 * name must give a relative path under /proc/sys, or an absolute cgroup
 * path, that no component can lead out of. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtimed/cgroup.h"
#include "runtimed/sysctl.h"

static void check_path(const char *p, bool absolute)
{
	if ((p[0] == '/') != absolute || strstr(p, "//") || strstr(p, "/../") || strstr(p, "/./") ||
	    (absolute && strcmp(p, "/") == 0))
		abort();
	size_t n = strlen(p);
	if (n >= 3 && strcmp(p + n - 3, "/..") == 0)
		abort();
	if (!absolute && (strncmp(p, "../", 3) == 0 || strcmp(p, "..") == 0))
		abort();
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char *value = strchr(s, '\n');
	if (value)
		*value++ = '\0';

	char path[SYSCTL_NAME_MAX];
	enum sysctl_ns ns;
	if (sysctl_parse(s, value ? value : "1", path, sizeof(path), &ns, NULL) == 0) {
		check_path(path, false);
		if (ns != SYSCTL_NS_NET && ns != SYSCTL_NS_IPC)
			abort();
		if (strncmp(path, "net/", 4) != 0 && strncmp(path, "kernel/", 7) != 0 &&
		    strncmp(path, "fs/mqueue/", 10) != 0)
			abort();
	}
	char cg[CGROUP_PATH_MAX];
	if (cgroup_resolve_parent("cgroupfs", s, cg, sizeof(cg), NULL) == 0)
		check_path(cg, true);
	if (cgroup_resolve_parent("systemd", s, cg, sizeof(cg), NULL) == 0) {
		check_path(cg, true);
		if (strlen(cg) < 7 || strcmp(cg + strlen(cg) - 6, ".slice") != 0)
			abort();
	}
	free(s);
	return 0;
}
