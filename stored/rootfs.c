/* Containers' root filesystems: an overlay of the image's layers (top
 * first) with a private upper and work dir, recorded in the refs so that a
 * restarted stored mounts them again; see layers.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "stored/layers-int.h"
#include "stored/unpack.h"

static int mount_rootfs(struct layer_store *ls, const char *cid, const json_t *layers,
			struct cric_err *err)
{
	char opts[4096];
	size_t o = (size_t)snprintf(opts, sizeof(opts), "lowerdir=");
	/* Top layer first. */
	for (size_t i = json_array_size(layers); i-- > 0;) {
		const char *c = json_string_value(json_array_get(layers, i));
		o += (size_t)snprintf(opts + o, sizeof(opts) > o ? sizeof(opts) - o : 0, "%s%s/%s",
				      i + 1 == json_array_size(layers) ? "" : ":", ls->layers_dir,
				      HEX(c));
	}
	if (json_array_size(layers) == 0)
		o += (size_t)snprintf(opts + o, sizeof(opts) - o, "%s/empty", ls->layers_dir);
	o += (size_t)snprintf(opts + o, sizeof(opts) > o ? sizeof(opts) - o : 0,
			      ",upperdir=%s/%s/upper,workdir=%s/%s/work", ls->containers_dir, cid,
			      ls->containers_dir, cid);
	if (o >= sizeof(opts))
		return err_set(err, -E2BIG,
			       "the image has too many layers for one overlay mount (%zu)",
			       json_array_size(layers));
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/%s", ls->rootfs_dir, cid);
	if (mount("overlay", target, "overlay", MS_NODEV, opts) < 0)
		return err_set(err, negative_errno(), "mount the overlay on \"%s\": %s", target,
			       strerror(errno));
	return 0;
}

static bool is_mountpoint(const char *path)
{
	struct stat a, b;
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static int rootfs_dirs(struct layer_store *ls, const char *cid, struct cric_err *err)
{
	char p[PATH_MAX];
	const char *sub[] = { "", "/upper", "/work" };
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		snprintf(p, sizeof(p), "%s/%s%s", ls->containers_dir, cid, sub[i]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return err_set(err, negative_errno(), "create \"%s\": %s", p,
				       strerror(errno));
	}
	snprintf(p, sizeof(p), "%s/%s", ls->rootfs_dir, cid);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", p, strerror(errno));
	return 0;
}

int layer_create_rootfs(struct layer_store *ls, const char *container_id, const char *chain_id,
			char **path, struct cric_err *err)
{
	if (!id_is_valid(container_id))
		return err_set(err, -EINVAL, "invalid container id");
	int r;
	if (chain_id && *chain_id && (r = blob_digest_check(chain_id, err)) < 0)
		return err_prefix(err, r, "chain_id");
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/%s", ls->rootfs_dir, container_id);
	pthread_mutex_lock(&ls->lock);
	json_t *rootfs = refs_section(ls, "rootfs");
	json_t *cur = json_object_get(rootfs, container_id);
	if (cur) {
		const char *c = json_string_value(json_object_get(cur, "chain"));
		r = c && strcmp(c, chain_id ? chain_id : "") == 0
			? 0
			: err_set(err, -EEXIST,
				  "container %s has a root filesystem of another image",
				  container_id);
		if (r == 0 && !is_mountpoint(target))
			r = mount_rootfs(ls, container_id, json_object_get(cur, "layers"), err);
		pthread_mutex_unlock(&ls->lock);
		if (r == 0 && !(*path = strdup(target)))
			r = -ENOMEM;
		return r;
	}
	/* The chain, base first. */
	json_t *layers = json_array();
	r = layers ? 0 : -ENOMEM;
	char c[BLOB_DIGEST_BUF];
	snprintf(c, sizeof(c), "%s", chain_id ? chain_id : "");
	while (r == 0 && c[0]) {
		_cleanup_json_ json_t *m = meta_load(ls, c);
		if (!m) {
			r = err_set(err, -ENOENT, "layer %s is not present", c);
			break;
		}
		json_array_insert_new(layers, 0, json_string(c));
		if (json_array_size(layers) > 512)
			r = err_set(err, -E2BIG, "layer chain too long");
		snprintf(c, sizeof(c), "%s", json_string_value(json_object_get(m, "parent")));
	}
	if (r == 0)
		r = rootfs_dirs(ls, container_id, err);
	if (r == 0) {
		json_object_set_new(
		    rootfs, container_id,
		    json_pack("{s:s, s:O}", "chain", chain_id ? chain_id : "", "layers", layers));
		r = refs_save(ls, err);
	}
	if (r == 0 && (r = mount_rootfs(ls, container_id, layers, err)) < 0) {
		json_object_del(rootfs, container_id);
		refs_save(ls, NULL);
	}
	pthread_mutex_unlock(&ls->lock);
	json_decref(layers);
	if (r < 0) {
		rmdir(target);
		unpack_remove_tree(ls->containers_fd, container_id, NULL);
		return r;
	}
	log_info("root filesystem of container %s mounted on %s", container_id, target);
	return (*path = strdup(target)) ? 0 : -ENOMEM;
}

/* Unmount and remove a container's directories. With the lock held. */
static int teardown_rootfs(struct layer_store *ls, const char *cid, struct cric_err *err)
{
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/%s", ls->rootfs_dir, cid);
	for (int i = 0; i < 16 && umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0; i++)
		;
	if (rmdir(target) < 0 && errno != ENOENT)
		return err_set(err, negative_errno(), "remove \"%s\": %s", target, strerror(errno));
	int r = unpack_remove_tree(ls->containers_fd, cid, err);
	return r == -ENOENT ? 0 : r;
}

int layer_remove_rootfs(struct layer_store *ls, const char *container_id, struct cric_err *err)
{
	if (!id_is_valid(container_id))
		return err_set(err, -EINVAL, "invalid container id");
	pthread_mutex_lock(&ls->lock);
	int r = teardown_rootfs(ls, container_id, err);
	if (r == 0 && json_object_get(refs_section(ls, "rootfs"), container_id)) {
		json_object_del(refs_section(ls, "rootfs"), container_id);
		if ((r = refs_save(ls, err)) == 0)
			collect(ls);
	}
	pthread_mutex_unlock(&ls->lock);
	return r;
}

void rootfs_reconcile(struct layer_store *ls)
{
	json_t *rootfs = refs_section(ls, "rootfs");
	const char *cid;
	json_t *v;
	json_object_foreach (rootfs, cid, v) {
		char target[PATH_MAX];
		snprintf(target, sizeof(target), "%s/%s", ls->rootfs_dir, cid);
		struct cric_err e;
		if (!id_is_valid(cid) || is_mountpoint(target))
			continue;
		if (rootfs_dirs(ls, cid, &e) < 0 ||
		    mount_rootfs(ls, cid, json_object_get(v, "layers"), &e) < 0)
			log_error("container %s: mount its root filesystem again: %s", cid, e.msg);
		else
			log_notice("container %s: root filesystem mounted again", cid);
	}
	const char *dirs[] = { ls->rootfs_dir, ls->containers_dir };
	for (size_t k = 0; k < ARRAY_SIZE(dirs); k++) {
		_cleanup_closedir_ DIR *d = opendir(dirs[k]);
		struct dirent *de;
		char victims[256][65];
		size_t nv = 0;
		while (d && nv < ARRAY_SIZE(victims) && (de = readdir(d)))
			if (de->d_name[0] != '.' && !json_object_get(rootfs, de->d_name))
				snprintf(victims[nv++], 65, "%.64s", de->d_name);
		for (size_t i = 0; i < nv; i++) {
			struct cric_err e;
			log_notice("removing the root filesystem of unknown container %s",
				   victims[i]);
			if (teardown_rootfs(ls, victims[i], &e) < 0)
				log_error("%s", e.msg);
		}
	}
}

char *layer_upper_dir(const struct layer_store *ls, const char *container_id)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s/upper", ls->containers_dir, container_id) < 0 ? NULL : p;
}
