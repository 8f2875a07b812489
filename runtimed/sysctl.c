#include "sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/macro.h"

/* The kubelet's namespaced sysctls, by the path under /proc/sys. */
static enum sysctl_ns classify(const char *path)
{
	if (strncmp(path, "net/", 4) == 0)
		return SYSCTL_NS_NET;
	if (strncmp(path, "fs/mqueue/", 10) == 0 || strcmp(path, "kernel/sem") == 0)
		return SYSCTL_NS_IPC;
	if ((strncmp(path, "kernel/shm", 10) == 0 || strncmp(path, "kernel/msg", 10) == 0) &&
	    !strchr(path + 7, '/'))
		return SYSCTL_NS_IPC;
	return 0;
}

int sysctl_parse(const char *name, const char *value, char *path, size_t size, enum sysctl_ns *ns,
		 struct cric_err *err)
{
	size_t n = strlen(name);
	if (n == 0 || n >= SYSCTL_NAME_MAX || n >= size)
		return err_set(err, -EINVAL, "sysctl name must be 1 to %d characters",
			       SYSCTL_NAME_MAX - 1);
	bool slashed = strchr(name, '/') != NULL;
	char sep = slashed ? '/' : '.';
	size_t o = 0;
	for (const char *p = name;;) {
		const char *end = strchr(p, sep);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		/* Dotted names have no dots inside components. */
		if (!path_component_ok(p, len) || (!slashed && memchr(p, '.', len)))
			return err_set(err, -EINVAL, "invalid sysctl name \"%s\"", name);
		memcpy(path + o, p, len);
		o += len;
		if (!end)
			break;
		path[o++] = '/';
		p = end + 1;
	}
	path[o] = '\0';

	*ns = classify(path);
	if (!*ns)
		return err_set(
		    err, -EINVAL,
		    "sysctl \"%s\" is not namespaced (allowed: kernel.shm*, kernel.msg*, "
		    "kernel.sem, fs.mqueue.*, net.*)",
		    name);

	size_t vlen = strlen(value);
	if (vlen >= SYSCTL_VALUE_MAX)
		return err_set(err, -EINVAL, "sysctl \"%s\": value longer than %d bytes", name,
			       SYSCTL_VALUE_MAX - 1);
	for (size_t i = 0; i < vlen; i++)
		if (value[i] == '\n' || value[i] == '\r' || (unsigned char)value[i] < 0x09)
			return err_set(err, -EINVAL, "sysctl \"%s\": value has control characters",
				       name);
	return 0;
}

int sysctl_write(const char *path, const char *value, struct cric_err *err)
{
	_cleanup_close_ int root = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return err_set(err, negative_errno(), "open /proc/sys: %s", strerror(errno));
	struct open_how how = {
		.flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return err_set(err, -EINVAL, "sysctl \"%s\" does not exist in the pod",
				       path);
		return err_set(err, -e, "open sysctl \"%s\": %s", path, strerror(e));
	}
	size_t len = strlen(value);
	char buf[SYSCTL_VALUE_MAX + 1];
	snprintf(buf, sizeof(buf), "%s\n", value);
	ssize_t w = write(fd, buf, len + 1);
	if (w < 0) {
		int e = errno;
		return err_set(err, e == EINVAL ? -EINVAL : -e, "set sysctl \"%s\" to \"%s\": %s",
			       path, value, strerror(e));
	}
	return 0;
}
