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
#include "common/idmap.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "stored/layers-int.h"
#include "stored/unpack.h"

/* A user-namespaced container's mapping, as its refs entry records it
 * ("uid", "gid", "len"); len 0: none. */
struct rootfs_map {
	struct idmap_range uid, gid;
};

static void map_from_entry(const json_t *e, struct rootfs_map *m)
{
	m->uid.host_id = (uint32_t)json_integer_value(json_object_get(e, "uid"));
	m->gid.host_id = (uint32_t)json_integer_value(json_object_get(e, "gid"));
	m->uid.length = m->gid.length = (uint32_t)json_integer_value(json_object_get(e, "len"));
}

/* Detach the id-mapped layers of a container (<containers>/<cid>/lower/N).
 * -EBUSY when one stays mounted: then nothing may remove the tree, which
 * would reach into the layers through it. */
static int unmount_lowers(struct layer_store *ls, const char *cid, struct cric_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s/lower", ls->containers_dir, cid);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[PATH_MAX + 256];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		int u = idmap_unmount(p);
		if (u < 0 && r == 0)
			r = err_set(err, u, "unmount the id-mapped layer \"%s\": %s", p,
				    strerror(-u));
	}
	return r;
}

/* Mount each layer (base first, top last in layers) id-mapped on
 * <containers>/<cid>/lower/<i>; *lowers gets their paths for lowerdir,
 * top first. */
static int map_lowers(struct layer_store *ls, const char *cid, const json_t *layers,
		      const struct rootfs_map *m, char *lowers, size_t size, struct cric_err *err)
{
	int r = unmount_lowers(ls, cid, err);
	if (r < 0)
		return r;
	_cleanup_close_ int ns = idmap_userns_open(&m->uid, &m->gid, err);
	if (ns < 0)
		return err_prefix(err, ns, "id-mapped layers");
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s/lower", ls->containers_dir, cid);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", dir, strerror(errno));
	size_t n = json_array_size(layers), o = 0;
	lowers[0] = '\0';
	for (size_t k = 0; k < (n ? n : 1); k++) {
		size_t i = n ? n - 1 - k : 0; /* top first */
		char src[PATH_MAX], dst[PATH_MAX + 32];
		if (n)
			snprintf(src, sizeof(src), "%s/%s", ls->layers_dir,
				 HEX(json_string_value(json_array_get(layers, i))));
		else
			snprintf(src, sizeof(src), "%s/empty", ls->layers_dir);
		snprintf(dst, sizeof(dst), "%s/%zu", dir, i);
		if (mkdir(dst, 0700) < 0 && errno != EEXIST)
			return err_set(err, negative_errno(), "create \"%s\": %s", dst,
				       strerror(errno));
		if ((r = idmap_bind(ns, src, dst, err)) < 0)
			return r;
		o += (size_t)snprintf(lowers + o, size > o ? size - o : 0, "%s%s", k ? ":" : "",
				      dst);
	}
	return o < size ? 0 : -E2BIG;
}

static int mount_rootfs(struct layer_store *ls, const char *cid, const json_t *layers,
			const struct rootfs_map *m, struct cric_err *err)
{
	char opts[8192];
	size_t o = (size_t)snprintf(opts, sizeof(opts), "lowerdir=");
	if (m && m->uid.length) {
		int r = map_lowers(ls, cid, layers, m, opts + o, sizeof(opts) - o, err);
		if (r == -E2BIG)
			goto too_many;
		if (r < 0)
			return r;
		o += strlen(opts + o);
	} else {
		/* Top layer first. */
		for (size_t i = json_array_size(layers); i-- > 0;) {
			const char *c = json_string_value(json_array_get(layers, i));
			o += (size_t)snprintf(
			    opts + o, sizeof(opts) > o ? sizeof(opts) - o : 0, "%s%s/%s",
			    i + 1 == json_array_size(layers) ? "" : ":", ls->layers_dir, HEX(c));
		}
		if (json_array_size(layers) == 0)
			o += (size_t)snprintf(opts + o, sizeof(opts) - o, "%s/empty",
					      ls->layers_dir);
	}
	o += (size_t)snprintf(opts + o, sizeof(opts) > o ? sizeof(opts) - o : 0,
			      ",upperdir=%s/%s/upper,workdir=%s/%s/work", ls->containers_dir, cid,
			      ls->containers_dir, cid);
	if (o >= sizeof(opts))
		goto too_many;
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/%s", ls->rootfs_dir, cid);
	if (mount("overlay", target, "overlay", MS_NODEV, opts) < 0) {
		int r = err_set(err, negative_errno(), "mount the overlay on \"%s\": %s", target,
				strerror(errno));
		unmount_lowers(ls, cid, NULL);
		return r;
	}
	return 0;
too_many:
	unmount_lowers(ls, cid, NULL);
	return err_set(err, -E2BIG, "the image has too many layers for one overlay mount (%zu)",
		       json_array_size(layers));
}

static bool is_mountpoint(const char *path)
{
	struct stat a, b;
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static int rootfs_dirs(struct layer_store *ls, const char *cid, const struct rootfs_map *m,
		       struct cric_err *err)
{
	char p[PATH_MAX];
	const char *sub[] = { "", "/upper", "/work" };
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		snprintf(p, sizeof(p), "%s/%s%s", ls->containers_dir, cid, sub[i]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return err_set(err, negative_errno(), "create \"%s\": %s", p,
				       strerror(errno));
	}
	/* The container's root directory is its own: what it makes there
	 * lands on disk as its host ids. */
	snprintf(p, sizeof(p), "%s/%s/upper", ls->containers_dir, cid);
	if (m && m->uid.length && chown(p, m->uid.host_id, m->gid.host_id) < 0)
		return err_set(err, negative_errno(), "chown \"%s\": %s", p, strerror(errno));
	snprintf(p, sizeof(p), "%s/%s", ls->rootfs_dir, cid);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", p, strerror(errno));
	return 0;
}

static bool same_map(const json_t *e, const struct rootfs_map *m)
{
	struct rootfs_map cur;
	map_from_entry(e, &cur);
	return cur.uid.length == m->uid.length &&
	       (!m->uid.length ||
		(cur.uid.host_id == m->uid.host_id && cur.gid.host_id == m->gid.host_id));
}

static int check_map(const struct rootfs_map *m, bool can_map, struct cric_err *err)
{
	if (!m->uid.length)
		return m->uid.host_id || m->gid.host_id
			   ? err_set(err, -EINVAL, "uid_host/gid_host without id_length")
			   : 0;
	if (!m->uid.host_id || !m->gid.host_id)
		return err_set(err, -EINVAL, "uid_host and gid_host must not be 0 (host root)");
	if (m->uid.host_id > UINT32_MAX - m->uid.length ||
	    m->gid.host_id > UINT32_MAX - m->gid.length)
		return err_set(err, -EINVAL, "the id range passes 2^32-1");
	if (!can_map)
		return err_set(err, -ENOPKG, "this kernel cannot id-map stored's file system");
	return 0;
}

int layer_create_rootfs(struct layer_store *ls, const char *container_id, const char *chain_id,
			const struct idmap_range *uid, const struct idmap_range *gid, char **path,
			struct cric_err *err)
{
	if (!id_is_valid(container_id))
		return err_set(err, -EINVAL, "invalid container id");
	const struct rootfs_map map = { .uid = *uid, .gid = { gid->host_id, uid->length } };
	int r = check_map(&map, ls->can_idmap, err);
	if (r < 0)
		return r;
	if (chain_id && *chain_id && (r = blob_digest_check(chain_id, err)) < 0)
		return err_prefix(err, r, "chain_id");
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s/%s", ls->rootfs_dir, container_id);
	pthread_mutex_lock(&ls->lock);
	json_t *rootfs = refs_section(ls, "rootfs");
	json_t *cur = json_object_get(rootfs, container_id);
	if (cur) {
		const char *c = json_string_value(json_object_get(cur, "chain"));
		r = c && strcmp(c, chain_id ? chain_id : "") == 0 && same_map(cur, &map)
			? 0
			: err_set(err, -EEXIST,
				  "container %s has a root filesystem of another image or mapping",
				  container_id);
		if (r == 0 && !is_mountpoint(target))
			r = mount_rootfs(ls, container_id, json_object_get(cur, "layers"), &map,
					 err);
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
		r = rootfs_dirs(ls, container_id, &map, err);
	if (r == 0) {
		json_t *e =
		    json_pack("{s:s, s:O}", "chain", chain_id ? chain_id : "", "layers", layers);
		if (e && map.uid.length &&
		    (json_object_set_new(e, "uid", json_integer(map.uid.host_id)) < 0 ||
		     json_object_set_new(e, "gid", json_integer(map.gid.host_id)) < 0 ||
		     json_object_set_new(e, "len", json_integer(map.uid.length)) < 0))
			r = -ENOMEM;
		if (r < 0 || !e) {
			json_decref(e);
			r = -ENOMEM;
		} else if (json_object_set_new(rootfs, container_id, e) < 0) {
			r = -ENOMEM;
		} else {
			r = refs_save(ls, err);
		}
	}
	if (r == 0 && (r = mount_rootfs(ls, container_id, layers, &map, err)) < 0) {
		json_object_del(rootfs, container_id);
		refs_save(ls, NULL);
	}
	pthread_mutex_unlock(&ls->lock);
	json_decref(layers);
	if (r < 0) {
		rmdir(target);
		if (unmount_lowers(ls, container_id, NULL) == 0)
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
	int r = unmount_lowers(ls, cid, err);
	if (r == 0)
		r = unpack_remove_tree(ls->containers_fd, cid, err);
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
		struct rootfs_map map;
		map_from_entry(v, &map);
		if (rootfs_dirs(ls, cid, &map, &e) < 0 ||
		    mount_rootfs(ls, cid, json_object_get(v, "layers"), &map, &e) < 0)
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
