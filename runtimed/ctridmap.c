/* The bind sources of a user-namespaced container, id-mapped; see
 * container-int.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/idmap.h"
#include "common/macro.h"
#include "container-int.h"

/* An empty file or directory at dst, as src is. */
static int make_target(const char *src, const char *dst, struct cric_err *err)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return err_set(err, negative_errno(), "mount source \"%s\": %s", src,
			       strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(dst, 0700) < 0 && errno != EEXIST)
			return err_set(err, negative_errno(), "create \"%s\": %s", dst,
				       strerror(errno));
		return 0;
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", dst, strerror(errno));
	close(fd);
	return 0;
}

int ctr_idmap_mounts(const char *bundle, const struct idmap_range *uid,
		     const struct idmap_range *gid, json_t *spec, struct cric_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/idmap", bundle);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", dir, strerror(errno));
	_cleanup_close_ int ns = -1;
	json_t *ms = json_object_get(spec, "mounts");
	size_t i;
	json_t *m;
	json_array_foreach (ms, i, m) {
		const char *type = json_string_value(json_object_get(m, "type"));
		const char *src = json_string_value(json_object_get(m, "source"));
		const char *dst = json_string_value(json_object_get(m, "destination"));
		/* /sys is the host's, not mappable (ctrplan.h). */
		if (!type || strcmp(type, "bind") != 0 || !src || !dst || strcmp(dst, "/sys") == 0)
			continue;
		if (ns < 0 && (ns = idmap_userns_open(uid, gid, err)) < 0)
			return err_prefix(err, ns, "id-mapped mounts");
		char at[PATH_MAX + 32];
		snprintf(at, sizeof(at), "%s/%zu", dir, i);
		int r = make_target(src, at, err);
		if (r == 0)
			r = idmap_bind(ns, src, at, err);
		if (r < 0)
			return err_prefix(err, r, "mount %s in the pod's user namespace", dst);
		if (json_object_set_new(m, "source", json_string(at)) < 0)
			return -ENOMEM;
	}
	return 0;
}

int ctr_idmap_release(const char *bundle, struct cric_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/idmap", bundle);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0
				       : err_set(err, negative_errno(), "open \"%s\": %s", dir,
						 strerror(errno));
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[PATH_MAX + 256];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		int u = idmap_unmount(p);
		if (u < 0) {
			if (r == 0)
				r = err_set(err, u, "unmount \"%s\": %s", p, strerror(-u));
			continue;
		}
		if (rmdir(p) < 0 && errno == ENOTDIR)
			unlink(p);
	}
	closedir(d);
	if (r == 0 && rmdir(dir) < 0 && errno != ENOENT)
		r = err_set(err, negative_errno(), "remove \"%s\": %s", dir, strerror(errno));
	return r;
}
