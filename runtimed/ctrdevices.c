/* The host's device nodes a privileged container gets (ctr_host_devices,
 * container.h): every character and block device under /dev, as runc's
 * HostDevices() finds them for CRI-O and containerd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/macro.h"
#include "container.h"
#include "ctrplan.h"

#define DEV_DEPTH_MAX 8

#define DEV_SEEN_MAX 65536 /* directory entries looked at in one walk */

struct dev_list {
	struct ctr_device *v;
	size_t n, cap;
	size_t seen;
};

/* Directories that hold the container's own instances (pts, shm, mqueue)
 * or no devices worth giving; the console is the container's own too. */
static bool skipped(const char *name, bool dir)
{
	static const char *const dirs[] = { "pts",  "shm",         "fd",   "mqueue",
					    ".lxc", ".lxd-mounts", ".udev" };
	if (!dir)
		return strcmp(name, "console") == 0;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (strcmp(name, dirs[i]) == 0)
			return true;
	return false;
}

static int add(struct dev_list *l, const char *path, const struct stat *st)
{
	if (l->n == CTR_MAX_DEVICES)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ctr_device *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct ctr_device *d = &l->v[l->n++];
	snprintf(d->path, sizeof(d->path), "%s", path);
	d->type = S_ISBLK(st->st_mode) ? 'b' : 'c';
	d->major = major(st->st_rdev);
	d->minor = minor(st->st_rdev);
	d->mode = st->st_mode & 07777;
	d->uid = st->st_uid;
	d->gid = st->st_gid;
	return 0;
}

static int walk(struct dev_list *l, const char *dir, int depth)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (++l->seen > DEV_SEEN_MAX)
			return -E2BIG;
		char path[sizeof(l->v->path)];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue; /* longer than runc takes: not a device anyone uses */
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (skipped(e->d_name, S_ISDIR(st.st_mode)))
			continue;
		int r = 0;
		if (S_ISDIR(st.st_mode) && depth < DEV_DEPTH_MAX)
			r = walk(l, path, depth + 1);
		else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
			r = add(l, path, &st);
		if (r < 0)
			return r;
	}
	return 0;
}

int ctr_host_devices(const char *dir, struct ctr_device **ret, size_t *n, struct cric_err *err)
{
	struct dev_list l = { 0 };
	int r = walk(&l, dir, 0);
	if (r < 0) {
		free(l.v);
		return err_set(err, r, "list the host's devices under \"%s\": %s", dir,
			       strerror(-r));
	}
	*ret = l.v;
	*n = l.n;
	return 0;
}

int ctr_req_devices(const Runtime__V1__ContainerConfig *cfg, struct ctr_device **ret, size_t *n,
		    struct cric_err *err)
{
	*ret = NULL;
	*n = 0;
	if (!cfg->n_devices)
		return 0;
	if (cfg->n_devices > CTR_MAX_DEVICES)
		return err_set(err, -E2BIG, "devices: more than %d", CTR_MAX_DEVICES);
	struct dev_list l = { 0 };
	int r = 0;
	for (size_t i = 0; i < cfg->n_devices && r == 0; i++) {
		const char *p = cfg->devices[i]->host_path ? cfg->devices[i]->host_path : "";
		struct stat st;
		size_t first = l.n;
		if (!path_is_clean(p, true, sizeof(l.v->path) - 1))
			r = err_set(err, -EINVAL,
				    "devices[%zu].host_path \"%.200s\" must be a clean absolute "
				    "path",
				    i, p);
		/* Symlinks followed: /dev/disk/by-id/... name the node. */
		else if (stat(p, &st) < 0)
			r = err_set(err, -EINVAL, "devices[%zu].host_path \"%s\": %s", i, p,
				    strerror(errno));
		else if (S_ISDIR(st.st_mode) && (r = walk(&l, p, 0)) < 0)
			r = err_set(err, r, "devices[%zu].host_path \"%s\": %s", i, p,
				    r == -E2BIG ? "more than 4096 devices or 65536 files under it"
						: strerror(-r));
		else if (!S_ISDIR(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			r = err_set(err, -EINVAL,
				    "devices[%zu].host_path \"%s\" is not a character or block "
				    "device or a directory of them",
				    i, p);
		else if (!S_ISDIR(st.st_mode))
			r = add(&l, p, &st);
		for (size_t k = first; r == 0 && k < l.n; k++) {
			l.v[k].req = (uint32_t)i;
			l.v[k].rel = (uint32_t)strlen(p);
		}
	}
	if (r == 0 && !l.v && !(l.v = calloc(1, sizeof(*l.v))))
		r = -ENOMEM;
	if (r < 0) {
		free(l.v);
		return r;
	}
	*ret = l.v;
	*n = l.n;
	return 0;
}
