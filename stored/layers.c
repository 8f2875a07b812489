#include "layers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fsutil.h"
#include "common/idmap.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/du.h"
#include "stored/layers-int.h"
#include "stored/unpack.h"

/* ---- ids ---- */

static bool lease_ok(const char *s)
{
	return s && id_is_safe_token(s, 64);
}

/* ---- limits ---- */

void layer_limits_default(struct layer_limits *l)
{
	*l = (struct layer_limits){
		.max_layer_bytes = LAYER_DEFAULT_MAX_LAYER_BYTES,
		.max_layer_entries = LAYER_DEFAULT_MAX_LAYER_ENTRIES,
		.max_image_bytes = LAYER_DEFAULT_MAX_IMAGE_BYTES,
		.max_image_entries = LAYER_DEFAULT_MAX_IMAGE_ENTRIES,
		.min_free_bytes = LAYER_DEFAULT_MIN_FREE_BYTES,
	};
}

void layer_store_set_limits(struct layer_store *ls, const struct layer_limits *l)
{
	pthread_mutex_lock(&ls->lock);
	ls->limits = *l;
	pthread_mutex_unlock(&ls->lock);
}

/* What the lease's imports unpacked so far. With the lock held. */
static void lease_usage_get(struct layer_store *ls, const char *lease, uint64_t *bytes,
			    uint64_t *entries)
{
	json_t *u = json_object_get(ls->lease_usage, lease);
	*bytes = (uint64_t)json_integer_value(json_array_get(u, 0));
	*entries = (uint64_t)json_integer_value(json_array_get(u, 1));
}

/* With the lock held. */
static int lease_usage_set(struct layer_store *ls, const char *lease, uint64_t bytes,
			   uint64_t entries)
{
	json_t *u = json_pack("[I, I]", (json_int_t)bytes, (json_int_t)entries);
	return u && json_object_set_new(ls->lease_usage, lease, u) == 0 ? 0 : -ENOMEM;
}

/* The limits of one import for lease: the layer's, or what is left of the
 * image's if less; -EFBIG/-E2BIG if nothing is left. With the lock held. */
/* The config keys behind an import's effective limits (the layer's own, or
 * what is left of the image's), to name in errors. */
struct limit_keys {
	const char *bytes, *entries;
};

static int import_limits(struct layer_store *ls, const char *lease, struct unpack_opts *o,
			 struct limit_keys *keys, struct cric_err *err)
{
	const struct layer_limits *l = &ls->limits;
	uint64_t bytes, entries;
	lease_usage_get(ls, lease, &bytes, &entries);
	if (bytes >= l->max_image_bytes)
		return err_set(err, -EFBIG,
			       "the image's layers exceed the limit of %" PRIu64
			       " bytes uncompressed (stored.max_image_bytes)",
			       l->max_image_bytes);
	if (entries >= l->max_image_entries)
		return err_set(err, -E2BIG,
			       "the image's layers exceed the limit of %" PRIu64
			       " entries (stored.max_image_entries)",
			       l->max_image_entries);
	o->max_bytes = MIN_U64(l->max_layer_bytes, l->max_image_bytes - bytes);
	o->max_entries = MIN_U64(l->max_layer_entries, l->max_image_entries - entries);
	o->min_free_bytes = l->min_free_bytes;
	keys->bytes =
	    o->max_bytes < l->max_layer_bytes ? "stored.max_image_bytes" : "stored.max_layer_bytes";
	keys->entries = o->max_entries < l->max_layer_entries ? "stored.max_image_entries"
							      : "stored.max_layer_entries";
	return 0;
}

/* Count an unpacked layer against its lease's image limits. With the lock
 * held. */
static int import_charge(struct layer_store *ls, const char *lease, const struct unpack_result *res,
			 struct cric_err *err)
{
	const struct layer_limits *l = &ls->limits;
	uint64_t bytes, entries;
	lease_usage_get(ls, lease, &bytes, &entries);
	bytes += res->tar_bytes;
	entries += res->entries;
	if (bytes > l->max_image_bytes)
		return err_set(err, -EFBIG,
			       "the image's layers exceed the limit of %" PRIu64
			       " bytes uncompressed (stored.max_image_bytes)",
			       l->max_image_bytes);
	if (entries > l->max_image_entries)
		return err_set(err, -E2BIG,
			       "the image's layers exceed the limit of %" PRIu64
			       " entries (stored.max_image_entries)",
			       l->max_image_entries);
	return lease_usage_set(ls, lease, bytes, entries);
}

/* ---- refs ---- */

int refs_save(struct layer_store *ls, struct cric_err *err)
{
	int r = json_save_atomic(ls->refs_path, ls->refs, 0600);
	if (r < 0)
		return err_set(err, r, "save \"%s\": %s", ls->refs_path, strerror(-r));
	return 0;
}

json_t *refs_section(struct layer_store *ls, const char *name)
{
	json_t *s = json_object_get(ls->refs, name);
	if (!json_is_object(s)) {
		s = json_object();
		json_object_set_new(ls->refs, name, s);
	}
	return s;
}

static bool array_has(const json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach (a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

static void lease_add(struct layer_store *ls, const char *lease, const char *chain)
{
	if (!lease || !*lease)
		return;
	json_t *leases = refs_section(ls, "leases");
	json_t *a = json_object_get(leases, lease);
	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(leases, lease, a);
	}
	if (!array_has(a, chain))
		json_array_append_new(a, json_string(chain));
}

/* ---- layer records ---- */

static char *meta_name(const char *chain)
{
	char *s = NULL;
	return asprintf(&s, "%s.json", HEX(chain)) < 0 ? NULL : s;
}

json_t *meta_load(struct layer_store *ls, const char *chain)
{
	_cleanup_free_ char *name = meta_name(chain);
	_cleanup_free_ char *path = name ? path_join(ls->layers_dir, name) : NULL;
	json_t *doc = NULL;
	char perr[128];
	if (!path || json_load_path(path, 64 * 1024, &doc, perr, sizeof(perr)) < 0)
		return NULL;
	return doc;
}

static bool layer_exists(struct layer_store *ls, const char *chain)
{
	_cleanup_json_ json_t *m = meta_load(ls, chain);
	return m != NULL;
}

/* ---- imports in progress (with the lock held) ---- */

static bool importing(struct layer_store *ls, const char *chain)
{
	for (size_t i = 0; i < ls->n_importing; i++)
		if (strcmp(ls->importing[i].chain, chain) == 0)
			return true;
	return false;
}

/* Is blob read by an import other than skip's? */
static bool blob_importing(struct layer_store *ls, const char *blob, const struct import *skip)
{
	for (size_t i = 0; i < ls->n_importing; i++)
		if (&ls->importing[i] != skip && strcmp(ls->importing[i].blob, blob) == 0)
			return true;
	return false;
}

/* ---- collection ---- */

static void held_add(json_t *held, const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v)
		if (json_is_string(v))
			json_object_set_new(held, json_string_value(v), json_true());
}

static json_t *held_chains(struct layer_store *ls)
{
	json_t *held = json_object();
	const char *k;
	json_t *v;
	json_object_foreach (refs_section(ls, "images"), k, v)
		held_add(held, v);
	json_object_foreach (refs_section(ls, "leases"), k, v)
		held_add(held, v);
	json_object_foreach (refs_section(ls, "rootfs"), k, v)
		held_add(held, json_object_get(v, "layers"));
	return held;
}

/* blob digest -> how many published layers are made from it (one blob can
 * make several layers: the same diff on different parents). */
static json_t *blob_users(struct layer_store *ls)
{
	json_t *users = json_object();
	_cleanup_closedir_ DIR *d = opendir(ls->layers_dir);
	struct dirent *de;
	while (users && d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n != 69 || strcmp(de->d_name + 64, ".json") != 0)
			continue;
		char chain[BLOB_DIGEST_BUF];
		snprintf(chain, sizeof(chain), "sha256:%.64s", de->d_name);
		_cleanup_json_ json_t *m = meta_load(ls, chain);
		const char *b = json_string_value(json_object_get(m, "blob"));
		if (b)
			json_object_set_new(
			    users, b,
			    json_integer(json_integer_value(json_object_get(users, b)) + 1));
	}
	return users;
}

/* Remove one layer: record first (it is then unpublished), tree, blob (if
 * no other layer is made from it: users counts them, and is updated). With
 * the lock held. */
static int remove_layer(struct layer_store *ls, const char *hex, json_t *users,
			struct cric_err *err)
{
	char chain[BLOB_DIGEST_BUF];
	snprintf(chain, sizeof(chain), "sha256:%s", hex);
	_cleanup_json_ json_t *m = meta_load(ls, chain);
	const char *blob = json_string_value(json_object_get(m, "blob"));
	char name[80];
	snprintf(name, sizeof(name), "%s.json", hex);
	if (unlinkat(ls->layers_fd, name, 0) < 0 && errno != ENOENT)
		return err_set(err, negative_errno(), "remove layer record %s: %s", name,
			       strerror(errno));
	int r = unpack_remove_tree(ls->layers_fd, hex, err);
	if (r < 0 && r != -ENOENT)
		return r;
	if (blob) {
		json_int_t left = json_integer_value(json_object_get(users, blob)) - 1;
		json_object_set_new(users, blob, json_integer(left));
		if (left <= 0 && !blob_importing(ls, blob, NULL) &&
		    (r = blob_remove(ls->blobs, blob, NULL)) < 0 && r != -ENOENT)
			log_warning_errno(r, "remove blob %s", blob);
	}
	return 0;
}

/* Remove every published layer nothing holds (an import in progress holds
 * its chain). With the lock held. One pass
 * over the records for the blob counts, one for the victims: linear in the
 * number of layers. */
unsigned collect(struct layer_store *ls)
{
	_cleanup_json_ json_t *held = held_chains(ls);
	_cleanup_json_ json_t *victims = json_array();
	_cleanup_closedir_ DIR *d = opendir(ls->layers_dir);
	struct dirent *de;
	while (held && victims && d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n != 69 || strcmp(de->d_name + 64, ".json") != 0)
			continue;
		char chain[BLOB_DIGEST_BUF];
		snprintf(chain, sizeof(chain), "sha256:%.64s", de->d_name);
		if (!json_object_get(held, chain) && !importing(ls, chain))
			json_array_append_new(victims, json_stringn(de->d_name, 64));
	}
	if (json_array_size(victims) == 0)
		return 0;
	_cleanup_json_ json_t *users = blob_users(ls);
	if (!users)
		return 0;
	unsigned removed = 0;
	size_t i;
	json_t *v;
	json_array_foreach (victims, i, v) {
		struct cric_err e;
		if (remove_layer(ls, json_string_value(v), users, &e) < 0)
			log_error("remove layer sha256:%s: %s", json_string_value(v), e.msg);
		else
			removed++;
	}
	if (removed)
		log_info("%u unreferenced layers removed", removed);
	return removed;
}

/* ---- import ---- */

/* Register the import of chain from blob (after waiting for another import
 * of the same chain) and, in the same critical section, say whether the
 * layer is already published: from here on collection keeps it. */
static int import_begin(struct layer_store *ls, const char *chain, const char *blob, bool *present)
{
	pthread_mutex_lock(&ls->lock);
	while (importing(ls, chain))
		pthread_cond_wait(&ls->changed, &ls->lock);
	if (ls->n_importing == ls->cap_importing) {
		size_t ncap = ls->cap_importing ? ls->cap_importing * 2 : 16;
		void *n = realloc(ls->importing, ncap * sizeof(*ls->importing));
		if (!n) {
			pthread_mutex_unlock(&ls->lock);
			return -ENOMEM;
		}
		ls->importing = n;
		ls->cap_importing = ncap;
	}
	struct import *im = &ls->importing[ls->n_importing++];
	snprintf(im->chain, sizeof(im->chain), "%s", chain);
	snprintf(im->blob, sizeof(im->blob), "%s", blob);
	*present = layer_exists(ls, chain);
	pthread_mutex_unlock(&ls->lock);
	return 0;
}

/* With the lock held. */
static struct import *import_find(struct layer_store *ls, const char *chain)
{
	for (size_t i = 0; i < ls->n_importing; i++)
		if (strcmp(ls->importing[i].chain, chain) == 0)
			return &ls->importing[i];
	return NULL;
}

/* With the lock held. */
static void import_end_locked(struct layer_store *ls, const char *chain)
{
	struct import *im = import_find(ls, chain);
	if (im)
		*im = ls->importing[--ls->n_importing];
	pthread_cond_broadcast(&ls->changed);
}

static int unpack_blob(struct layer_store *ls, const char *blob, const char *tmpname,
		       const struct unpack_opts *opts, struct unpack_result *res,
		       struct cric_err *err)
{
	_cleanup_close_ int in = -1;
	int r = blob_open(ls->blobs, blob, &in, err);
	if (r < 0)
		return r;
	if (mkdirat(ls->layers_fd, tmpname, 0755) < 0)
		return err_set(err, negative_errno(), "create %s: %s", tmpname, strerror(errno));
	_cleanup_close_ int dfd =
	    openat(ls->layers_fd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(err, negative_errno(), "open %s: %s", tmpname, strerror(errno));
	if ((r = unpack_layer(in, dfd, opts, res, err)) < 0)
		return r;
	if (syncfs(dfd) < 0)
		return err_set(err, negative_errno(), "syncfs: %s", strerror(errno));
	return 0;
}

/* What one import unpacks. */
struct import_job {
	const char *file, *blob, *diff_id, *parent, *chain, *lease;
};

/* Open name, a plain name of a regular file in imaged's staging dir (found
 * from our configuration, never from the caller), for reading. Nothing but
 * a regular file is opened for reading: a symlink is refused by O_NOFOLLOW;
 * a FIFO or device is refused after an fstatat() that opens nothing, and
 * should the name be swapped to one between that and the open, O_NONBLOCK
 * keeps the open from hanging and the fstat() refuses it before any read. */
static int open_staging_file(struct layer_store *ls, const char *name, int *ret_fd,
			     struct cric_err *err)
{
	if (!name || !id_is_safe_token(name, NAME_MAX))
		return err_set(err, -EINVAL,
			       "file must be a plain name in imaged's staging dir "
			       "(1..%d characters of [A-Za-z0-9_.-], no leading '.')",
			       NAME_MAX);
	if (!ls->staging_dir)
		return err_set(err, -ENOPKG, "no staging dir configured");
	_cleanup_close_ int dfd = open(ls->staging_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(err, errno == ENOENT ? -ENOPKG : negative_errno(),
			       "open staging dir \"%s\": %s", ls->staging_dir, strerror(errno));
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set(err, negative_errno(), "staging file \"%s\": %s", name,
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(err, -EINVAL, "staging file \"%s\" is not a regular file", name);
	_cleanup_close_ int fd =
	    openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set(err, errno == ELOOP ? -EINVAL : negative_errno(),
			       "staging file \"%s\": %s", name,
			       errno == ELOOP ? "a symbolic link" : strerror(errno));
	struct stat st2;
	if (fstat(fd, &st2) < 0)
		return err_set(err, negative_errno(), "staging file \"%s\": fstat: %s", name,
			       strerror(errno));
	if (!S_ISREG(st2.st_mode) || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
		return err_set(err, -EINVAL, "staging file \"%s\" changed while opened", name);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return err_set(err, negative_errno(), "staging file \"%s\": fcntl: %s", name,
			       strerror(errno));
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Take the blob from the staging file, unpack it into tmpname, check it,
 * publish it as the chain's layer with its record. On failure tmpname (if
 * set) is the caller's to remove, and *blob_was_there says whether the blob
 * is the caller's to remove. */
static int import_unpack(struct layer_store *ls, const struct import_job *j, char *tmpname,
			 size_t tmpsize, bool *blob_was_there, uint64_t *unpacked,
			 struct cric_err *err)
{
	if (!j->file || !*j->file)
		return err_set(err, -EINVAL, "layer %s is not present and no file was given",
			       j->chain);
	_cleanup_close_ int in = -1;
	int r = open_staging_file(ls, j->file, &in, err);
	if (r < 0)
		return err_prefix(err, r, "layer %s", j->blob);
	struct unpack_opts opts = { .allow_devices = false };
	pthread_mutex_lock(&ls->lock);
	struct limit_keys keys = { "stored.max_layer_bytes", "stored.max_layer_entries" };
	r = import_limits(ls, j->lease, &opts, &keys, err);
	pthread_mutex_unlock(&ls->lock);
	if (r < 0)
		return err_prefix(err, r, "layer %s", j->blob);
	struct blob_info bi;
	*blob_was_there = blob_stat(ls->blobs, j->blob, &bi, NULL) == 0;
	if ((r = blob_import_fd(ls->blobs, j->blob, in, NULL, err)) < 0)
		return err_prefix(err, r, "staging file \"%s\"", j->file);
	char rnd[17];
	id_random_hex(rnd, sizeof(rnd), 8);
	snprintf(tmpname, tmpsize, ".tmp-%.64s-%s", HEX(j->chain), rnd);
	struct unpack_result res = { 0 };
	if ((r = unpack_blob(ls, j->blob, tmpname, &opts, &res, err)) < 0) {
		/* Past a configured limit (unpack.c says "the limit of"; its
		 * other E2BIG refusals are about the layer's shape): name the
		 * key, whichever import of the pull got there first. */
		if (err && (r == -E2BIG || r == -EFBIG) && strstr(err->msg, "the limit of")) {
			size_t n = strlen(err->msg);
			snprintf(err->msg + n, sizeof(err->msg) - n, " (%s)",
				 r == -E2BIG ? keys.entries : keys.bytes);
		}
		return err_prefix(err, r, "layer %s", j->blob);
	}
	if (strcmp(res.diff_id, j->diff_id) != 0)
		return err_set(err, -EBADMSG,
			       "layer %s: uncompressed content is %s, the image config says %s",
			       j->blob, res.diff_id, j->diff_id);
	pthread_mutex_lock(&ls->lock);
	r = import_charge(ls, j->lease, &res, err);
	pthread_mutex_unlock(&ls->lock);
	if (r < 0)
		return err_prefix(err, r, "layer %s", j->blob);
	if (renameat(ls->layers_fd, tmpname, ls->layers_fd, HEX(j->chain)) < 0)
		return err_set(err, negative_errno(), "publish layer: %s", strerror(errno));
	tmpname[0] = '\0';
	_cleanup_json_ json_t *meta =
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "chain_id", j->chain, "diff_id", j->diff_id,
		      "parent", j->parent ? j->parent : "", "blob", j->blob, "size",
		      (json_int_t)res.file_bytes, "entries", (json_int_t)res.entries);
	_cleanup_free_ char *mname = meta_name(j->chain);
	_cleanup_free_ char *mpath = mname ? path_join(ls->layers_dir, mname) : NULL;
	if (!meta || !mpath)
		return -ENOMEM;
	if ((r = json_save_atomic(mpath, meta, 0600)) < 0) {
		unpack_remove_tree(ls->layers_fd, HEX(j->chain), NULL);
		return err_set(err, r, "save layer record: %s", strerror(-r));
	}
	log_info("layer %s imported from %s: %" PRIu64 " entries, %" PRIu64 " bytes", j->chain,
		 j->blob, (uint64_t)res.entries, (uint64_t)res.file_bytes);
	*unpacked = res.file_bytes;
	return 0;
}

int layer_import(struct layer_store *ls, const char *file, const char *blob_digest,
		 const char *diff_id, const char *parent, const char *lease,
		 char chain_id[BLOB_DIGEST_BUF], uint64_t *size, bool *already,
		 struct cric_err *err)
{
	int r;
	if ((r = blob_digest_check(blob_digest, err)) < 0)
		return err_prefix(err, r, "blob_digest");
	if ((r = blob_digest_check(diff_id, err)) < 0)
		return err_prefix(err, r, "diff_id");
	if (parent && *parent && (r = blob_digest_check(parent, err)) < 0)
		return err_prefix(err, r, "parent_chain_id");
	if (!lease_ok(lease))
		return err_set(err, -EINVAL, "invalid lease");
	char chain[BLOB_DIGEST_BUF];
	digest_chain_id(parent, diff_id, chain);
	/* The parent need not be there yet: layers of one image are imported
	 * in parallel, as they arrive; CommitImage checks the whole chain. */

	bool present = false;
	if ((r = import_begin(ls, chain, blob_digest, &present)) < 0)
		return r;
	uint64_t unpacked = 0;
	char tmpname[128] = "";
	bool blob_was_there = true;
	if (!present) {
		struct import_job job = { .file = file,
					  .blob = blob_digest,
					  .diff_id = diff_id,
					  .parent = parent,
					  .chain = chain,
					  .lease = lease };
		r = import_unpack(ls, &job, tmpname, sizeof(tmpname), &blob_was_there, &unpacked,
				  err);
	} else {
		_cleanup_json_ json_t *m = meta_load(ls, chain);
		unpacked = (uint64_t)json_integer_value(json_object_get(m, "size"));
		r = 0;
	}
	/* What failed after the blob was taken or the tree unpacked: */
	if (tmpname[0])
		unpack_remove_tree(ls->layers_fd, tmpname, NULL);
	/* The lease takes over from the import's hold in one critical
	 * section: no collection runs between the two. */
	pthread_mutex_lock(&ls->lock);
	if (r < 0 && !blob_was_there && !blob_importing(ls, blob_digest, import_find(ls, chain)))
		blob_remove(ls->blobs, blob_digest, NULL);
	if (r == 0) {
		lease_add(ls, lease, chain);
		r = refs_save(ls, err);
	}
	import_end_locked(ls, chain);
	pthread_mutex_unlock(&ls->lock);
	if (r < 0)
		return r;
	snprintf(chain_id, BLOB_DIGEST_BUF, "%s", chain);
	*size = unpacked;
	*already = present;
	return 0;
}

int layer_status(struct layer_store *ls, char *const *chains, size_t n, const char *lease,
		 bool *present, struct cric_err *err)
{
	if (lease && *lease && !lease_ok(lease))
		return err_set(err, -EINVAL, "invalid lease");
	for (size_t i = 0; i < n; i++) {
		int r = blob_digest_check(chains[i], err);
		if (r < 0)
			return err_prefix(err, r, "chain_ids[%zu]", i);
	}
	pthread_mutex_lock(&ls->lock);
	for (size_t i = 0; i < n; i++) {
		present[i] = layer_exists(ls, chains[i]);
		if (present[i])
			lease_add(ls, lease, chains[i]);
	}
	int r = lease && *lease ? refs_save(ls, err) : 0;
	pthread_mutex_unlock(&ls->lock);
	return r;
}

int layer_commit_image(struct layer_store *ls, const char *image_id, char *const *chains, size_t n,
		       const char *lease, struct cric_err *err)
{
	int r = blob_digest_check(image_id, err);
	if (r < 0)
		return err_prefix(err, r, "image_id");
	json_t *a = json_array();
	if (!a)
		return -ENOMEM;
	pthread_mutex_lock(&ls->lock);
	for (size_t i = 0; i < n && r == 0; i++) {
		if ((r = blob_digest_check(chains[i], err)) < 0)
			err_prefix(err, r, "chain_ids[%zu]", i);
		else if (!layer_exists(ls, chains[i]))
			r = err_set(err, -ENOENT, "layer %s is not present", chains[i]);
		else
			json_array_append_new(a, json_string(chains[i]));
	}
	if (r == 0) {
		json_object_set_new(refs_section(ls, "images"), image_id, a);
		a = NULL;
		if (lease && *lease) {
			json_object_del(refs_section(ls, "leases"), lease);
			json_object_del(ls->lease_usage, lease);
		}
		r = refs_save(ls, err);
	}
	pthread_mutex_unlock(&ls->lock);
	json_decref(a);
	return r;
}

int layer_release_image(struct layer_store *ls, const char *image_id, unsigned *removed,
			struct cric_err *err)
{
	int r = blob_digest_check(image_id, err);
	if (r < 0)
		return err_prefix(err, r, "image_id");
	pthread_mutex_lock(&ls->lock);
	json_object_del(refs_section(ls, "images"), image_id);
	r = refs_save(ls, err);
	*removed = r == 0 ? collect(ls) : 0;
	pthread_mutex_unlock(&ls->lock);
	return r;
}

int layer_drop_lease(struct layer_store *ls, const char *lease, struct cric_err *err)
{
	if (!lease_ok(lease))
		return err_set(err, -EINVAL, "invalid lease");
	pthread_mutex_lock(&ls->lock);
	json_object_del(refs_section(ls, "leases"), lease);
	json_object_del(ls->lease_usage, lease);
	int r = refs_save(ls, err);
	if (r == 0)
		collect(ls);
	pthread_mutex_unlock(&ls->lock);
	return r;
}

int layer_sync_images(struct layer_store *ls, char *const *ids, size_t n, unsigned *dropped,
		      unsigned *removed, struct cric_err *err)
{
	pthread_mutex_lock(&ls->lock);
	json_t *images = refs_section(ls, "images");
	const char *k;
	json_t *v;
	void *tmp;
	unsigned d = 0;
	json_object_foreach_safe(images, tmp, k, v)
	{
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(ids[i], k) == 0;
		if (!known) {
			json_object_del(images, k);
			d++;
		}
	}
	json_object_clear(refs_section(ls, "leases"));
	json_object_clear(ls->lease_usage);
	int r = refs_save(ls, err);
	*removed = r == 0 ? collect(ls) : 0;
	*dropped = d;
	pthread_mutex_unlock(&ls->lock);
	return r;
}

/* ---- usage (du) ---- */

/* Without the store's lock: a walk of a large store takes seconds and must
 * not stall imports and removals. Layers published or removed meanwhile are
 * counted or not, as du on a live file system would. */
int layer_fs_usage(struct layer_store *ls, struct fs_usage *images, struct fs_usage *containers,
		   struct cric_err *err)
{
	_cleanup_close_ int dfd = open(ls->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(err, negative_errno(), "measure the store: open \"%s\": %s", ls->dir,
			       strerror(errno));
	struct du_usage a, b;
	int r = du_measure(dfd, "containers", &a, err);
	if (r < 0)
		return err_prefix(err, r, "measure the store");
	r = du_measure(ls->containers_fd, NULL, &b, err);
	if (r < 0)
		return err_prefix(err, r, "measure the store");
	snprintf(images->mountpoint, sizeof(images->mountpoint), "%s", ls->dir);
	images->used_bytes = a.bytes;
	images->inodes = a.inodes;
	snprintf(containers->mountpoint, sizeof(containers->mountpoint), "%s", ls->containers_dir);
	containers->used_bytes = b.bytes;
	containers->inodes = b.inodes;
	return 0;
}

/* ---- open ---- */

/* Temp dirs, trees without a record: what a killed stored left. */
static void clean_layers(struct layer_store *ls)
{
	_cleanup_closedir_ DIR *d = opendir(ls->layers_dir);
	struct dirent *de;
	char victims[256][NAME_MAX + 1];
	size_t nv = 0;
	while (d && nv < ARRAY_SIZE(victims) && (de = readdir(d))) {
		const char *n = de->d_name;
		if (strncmp(n, ".tmp-", 5) == 0) {
			snprintf(victims[nv++], sizeof(victims[0]), "%s", n);
			continue;
		}
		if (strlen(n) != 64)
			continue;
		char chain[BLOB_DIGEST_BUF];
		snprintf(chain, sizeof(chain), "sha256:%s", n);
		if (!layer_exists(ls, chain))
			snprintf(victims[nv++], sizeof(victims[0]), "%s", n);
	}
	for (size_t i = 0; i < nv; i++) {
		log_notice("removing \"%s\", an import a restart interrupted", victims[i]);
		unpack_remove_tree(ls->layers_fd, victims[i], NULL);
	}
}

/* Mount what refs.json says is mounted; unmount and remove the rest. */
int layer_store_open(const char *state_dir, const char *run_dir, const char *staging_dir,
		     struct layer_store **ret, struct cric_err *err)
{
	struct layer_store *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	pthread_mutex_init(&ls->lock, NULL);
	pthread_cond_init(&ls->changed, NULL);
	ls->layers_fd = ls->containers_fd = -1;
	layer_limits_default(&ls->limits);
	ls->lease_usage = json_object();
	ls->dir = strdup(state_dir);
	ls->staging_dir = staging_dir ? strdup(staging_dir) : NULL;
	ls->layers_dir = path_join(state_dir, "layers");
	ls->containers_dir = path_join(state_dir, "containers");
	ls->rootfs_dir = path_join(run_dir, "rootfs");
	ls->refs_path = path_join(state_dir, "refs.json");
	_cleanup_free_ char *blobs_dir = path_join(state_dir, "blobs");
	_cleanup_free_ char *empty = ls->layers_dir ? path_join(ls->layers_dir, "empty") : NULL;
	int r = 0;
	if (!ls->lease_usage || !ls->dir || (staging_dir && !ls->staging_dir) || !ls->layers_dir ||
	    !ls->containers_dir || !ls->rootfs_dir || !ls->refs_path || !blobs_dir || !empty)
		r = -ENOMEM;
	const char *dirs[] = { blobs_dir, ls->layers_dir, ls->containers_dir, ls->rootfs_dir,
			       empty };
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(dirs); i++)
		if ((r = mkdir_p(dirs[i], 0700)) < 0)
			err_set(err, r, "create \"%s\": %s", dirs[i], strerror(-r));
	/* Searchable, not listable: the root of a user-namespaced container
	 * is no host root, and runc 1.1 reaches its rootfs by path. */
	const char *walk[] = { run_dir, ls->rootfs_dir };
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(walk); i++)
		if (chmod(walk[i], 0711) < 0)
			r = err_set(err, negative_errno(), "chmod \"%s\": %s", walk[i],
				    strerror(errno));
	if (r == 0 &&
	    (ls->layers_fd = open(ls->layers_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = err_set(err, negative_errno(), "open \"%s\": %s", ls->layers_dir,
			    strerror(errno));
	if (r == 0 &&
	    (ls->containers_fd = open(ls->containers_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = err_set(err, negative_errno(), "open \"%s\": %s", ls->containers_dir,
			    strerror(errno));
	if (r == 0) {
		_cleanup_close_ int bfd = open(blobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = bfd < 0 ? err_set(err, negative_errno(), "open \"%s\": %s", blobs_dir,
				      strerror(errno))
			    : blob_store_open(bfd, NULL, &ls->blobs, err);
	}
	if (r == 0) {
		/* What a kill -9 mid-write left beside the records. */
		(void)sweep_atomic_temps(state_dir, "layer store");
		(void)sweep_atomic_temps(ls->layers_dir, "layer records");
		char perr[256];
		r = json_load_path(ls->refs_path, REFS_MAX_BYTES, &ls->refs, perr, sizeof(perr));
		if (r == -ENOENT) {
			ls->refs = json_object();
			r = ls->refs ? 0 : -ENOMEM;
		} else if (r < 0) {
			err_set(err, r, "\"%s\": %s", ls->refs_path, perr);
		} else if (!json_is_object(ls->refs)) {
			r = err_set(err, -EINVAL, "\"%s\" is not a JSON object", ls->refs_path);
		}
	}
	if (r < 0) {
		layer_store_free(ls);
		return r;
	}
	struct cric_err e;
	if (idmap_probe(ls->dir, &e) == 0)
		ls->can_idmap = true;
	else
		log_notice("no id-mapped layers on \"%s\" (user-namespaced pods refused): %s",
			   ls->dir, e.msg);
	pthread_mutex_lock(&ls->lock);
	clean_layers(ls);
	rootfs_reconcile(ls);
	pthread_mutex_unlock(&ls->lock);
	*ret = ls;
	return 0;
}

struct layer_store *layer_store_free(struct layer_store *ls)
{
	if (!ls)
		return NULL;
	json_decref(ls->refs);
	json_decref(ls->lease_usage);
	blob_store_free(ls->blobs);
	if (ls->layers_fd >= 0)
		close(ls->layers_fd);
	if (ls->containers_fd >= 0)
		close(ls->containers_fd);
	free(ls->dir);
	free(ls->staging_dir);
	free(ls->layers_dir);
	free(ls->containers_dir);
	free(ls->rootfs_dir);
	free(ls->refs_path);
	free(ls->importing);
	pthread_cond_destroy(&ls->changed);
	pthread_mutex_destroy(&ls->lock);
	free(ls);
	return NULL;
}
