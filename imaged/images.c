#include "images.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

#define RECORD_MAX_BYTES (8 * 1024 * 1024)
#define MAX_NAMES        256 /* tags or digests per image */

struct image_store {
	pthread_mutex_t lock;
	struct image **items;
	size_t n, cap;
	char *dir;
};

/* Append a copy of s unless present. */
static int strv_add(char ***v, const char *s)
{
	if (strv_contains(*v, s))
		return 0;
	size_t n = strv_len(*v);
	if (n >= MAX_NAMES)
		return -E2BIG;
	char **nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[n] = strdup(s)))
		return -ENOMEM;
	nv[n + 1] = NULL;
	return 0;
}

/* Drop s; true if it was there. */
static bool strv_drop(char **v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++) {
		if (strcmp(v[i], s) == 0) {
			free(v[i]);
			memmove(&v[i], &v[i + 1], (strv_len(v) - i) * sizeof(char *));
			return true;
		}
	}
	return false;
}

struct image *image_free(struct image *img)
{
	if (!img)
		return NULL;
	strv_free(img->repo_tags);
	strv_free(img->repo_digests);
	strv_free(img->chain_ids);
	free(img->config);
	free(img->username);
	free(img->annotations);
	free(img);
	return NULL;
}

struct image *image_dup(const struct image *img)
{
	struct image *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	memcpy(c->id, img->id, sizeof(c->id));
	c->size = img->size;
	c->has_uid = img->has_uid;
	c->uid = img->uid;
	c->pinned = img->pinned;
	c->pulled_at = img->pulled_at;
	if (!(c->repo_tags = strv_copy(img->repo_tags)) ||
	    !(c->repo_digests = strv_copy(img->repo_digests)) ||
	    !(c->chain_ids = strv_copy(img->chain_ids)) ||
	    !(c->config = strdup(img->config ? img->config : "")) ||
	    !(c->username = strdup(img->username ? img->username : "")) ||
	    !(c->annotations = strdup(img->annotations ? img->annotations : "{}")))
		return image_free(c);
	return c;
}

/* ---- records ---- */

static char *record_path(struct image_store *st, const char *id)
{
	char name[80];
	snprintf(name, sizeof(name), "%.64s.json", id + 7);
	return path_join(st->dir, name);
}

static int record_save(struct image_store *st, const struct image *img)
{
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:o, s:o, s:I, s:o, s:s, s:b, s:I, s:s, s:b, s:I, s:s}", "id", img->id,
	    "repo_tags", json_from_strv(img->repo_tags), "repo_digests",
	    json_from_strv(img->repo_digests), "size", (json_int_t)img->size, "chain_ids",
	    json_from_strv(img->chain_ids), "config", img->config, "has_uid", img->has_uid, "uid",
	    (json_int_t)img->uid, "username", img->username, "pinned", img->pinned, "pulled_at",
	    (json_int_t)img->pulled_at, "annotations", img->annotations ? img->annotations : "{}");
	_cleanup_free_ char *path = record_path(st, img->id);
	if (!doc || !path)
		return -ENOMEM;
	return json_save_atomic(path, doc, 0600);
}

static struct image *record_load(const char *path)
{
	_cleanup_json_ json_t *doc = NULL;
	char perr[128];
	if (json_load_path(path, RECORD_MAX_BYTES, &doc, perr, sizeof(perr)) < 0)
		return NULL;
	const char *id = json_string_value(json_object_get(doc, "id"));
	const char *cfg = json_string_value(json_object_get(doc, "config"));
	const char *user = json_string_value(json_object_get(doc, "username"));
	const char *ann = json_string_value(json_object_get(doc, "annotations"));
	if (!id || strlen(id) != IMAGE_DIGEST_LEN || image_digest_validate(id, NULL) < 0 || !cfg)
		return NULL;
	struct image *img = calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	snprintf(img->id, sizeof(img->id), "%s", id);
	img->size = (uint64_t)json_integer_value(json_object_get(doc, "size"));
	img->has_uid = json_is_true(json_object_get(doc, "has_uid"));
	img->uid = json_integer_value(json_object_get(doc, "uid"));
	img->pinned = json_is_true(json_object_get(doc, "pinned"));
	img->pulled_at = json_integer_value(json_object_get(doc, "pulled_at"));
	if (!(img->repo_tags = strv_from_json(json_object_get(doc, "repo_tags"))) ||
	    !(img->repo_digests = strv_from_json(json_object_get(doc, "repo_digests"))) ||
	    !(img->chain_ids = strv_from_json(json_object_get(doc, "chain_ids"))) ||
	    !(img->config = strdup(cfg)) || !(img->username = strdup(user ? user : "")) ||
	    !(img->annotations = strdup(ann ? ann : "{}")))
		return image_free(img);
	return img;
}

static int items_add(struct image_store *st, struct image *img)
{
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 32;
		struct image **n = realloc(st->items, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		st->items = n;
		st->cap = ncap;
	}
	st->items[st->n++] = img;
	return 0;
}

int image_store_open(const char *dir, struct image_store **ret, struct cric_err *err)
{
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return err_set(err, r, "create \"%s\": %s", dir, strerror(-r));
	struct image_store *st = calloc(1, sizeof(*st));
	if (!st || !(st->dir = strdup(dir))) {
		free(st);
		return -ENOMEM;
	}
	pthread_mutex_init(&st->lock, NULL);
	(void)sweep_atomic_temps(dir, "image records");
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n != 69 || strcmp(de->d_name + 64, ".json") != 0)
			continue;
		_cleanup_free_ char *path = path_join(dir, de->d_name);
		struct image *img = path ? record_load(path) : NULL;
		if (!img) {
			log_error("image record \"%s\" unreadable, ignored", de->d_name);
			continue;
		}
		if (items_add(st, img) < 0)
			image_free(img);
	}
	log_info("%zu images known", st->n);
	*ret = st;
	return 0;
}

struct image_store *image_store_free(struct image_store *st)
{
	if (!st)
		return NULL;
	for (size_t i = 0; i < st->n; i++)
		image_free(st->items[i]);
	free(st->items);
	free(st->dir);
	pthread_mutex_destroy(&st->lock);
	free(st);
	return NULL;
}

static struct image *by_id_locked(struct image_store *st, const char *id)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->items[i]->id, id) == 0)
			return st->items[i];
	return NULL;
}

int image_store_add(struct image_store *st, const struct image *img, struct cric_err *err)
{
	int r = 0;
	pthread_mutex_lock(&st->lock);
	/* A tag names one image: take it from any other. */
	for (size_t i = 0; i < st->n; i++) {
		struct image *o = st->items[i];
		if (strcmp(o->id, img->id) == 0)
			continue;
		bool changed = false;
		for (size_t k = 0; img->repo_tags && img->repo_tags[k]; k++)
			changed |= strv_drop(o->repo_tags, img->repo_tags[k]);
		if (changed && (r = record_save(st, o)) < 0)
			break;
	}
	struct image *cur = by_id_locked(st, img->id);
	if (r == 0 && cur) {
		for (size_t k = 0; r == 0 && img->repo_tags && img->repo_tags[k]; k++)
			r = strv_add(&cur->repo_tags, img->repo_tags[k]);
		for (size_t k = 0; r == 0 && img->repo_digests && img->repo_digests[k]; k++)
			r = strv_add(&cur->repo_digests, img->repo_digests[k]);
		cur->pulled_at = img->pulled_at;
		if (r == 0 && img->annotations && strcmp(img->annotations, "{}") != 0) {
			char *a = strdup(img->annotations);
			if (a) {
				free(cur->annotations);
				cur->annotations = a;
			} else {
				r = -ENOMEM;
			}
		}
		if (r == 0)
			r = record_save(st, cur);
	} else if (r == 0) {
		struct image *c = image_dup(img);
		r = c ? record_save(st, c) : -ENOMEM;
		if (r == 0)
			r = items_add(st, c);
		if (r < 0)
			image_free(c);
	}
	pthread_mutex_unlock(&st->lock);
	if (r < 0)
		return err_set(err, r, "save the image record of %s: %s", img->id, strerror(-r));
	return 0;
}

static bool all_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* With the lock held. *which: 1 matched a tag, 2 a digest, 0 the id. */
static struct image *find_locked(struct image_store *st, const char *spec,
				 const char *default_domain, bool *bad, char *name, size_t size,
				 int *which, struct cric_err *err)
{
	*bad = false;
	*which = 0;
	char id[IMAGE_DIGEST_LEN + 1];
	if (image_id_parse(spec, id) == 0)
		return by_id_locked(st, id);
	/* A unique id prefix (crictl shows 13 characters). */
	const char *hex = strncmp(spec, "sha256:", 7) == 0 ? spec + 7 : spec;
	size_t n = strlen(hex);
	if (n >= 12 && n < 64 && all_hex(hex)) {
		struct image *found = NULL;
		int matches = 0;
		for (size_t i = 0; i < st->n; i++)
			if (strncmp(st->items[i]->id + 7, hex, n) == 0) {
				found = st->items[i];
				matches++;
			}
		if (matches == 1)
			return found;
	}
	struct image_ref ref;
	if (image_ref_parse(spec, default_domain, &ref, err) < 0) {
		*bad = true;
		return NULL;
	}
	if (ref.digest[0]) {
		snprintf(name, size, "%s@%s", ref.name, ref.digest);
		*which = 2;
		for (size_t i = 0; i < st->n; i++)
			if (strv_contains(st->items[i]->repo_digests, name))
				return st->items[i];
		return NULL;
	}
	snprintf(name, size, "%s:%s", ref.name, ref.tag);
	*which = 1;
	for (size_t i = 0; i < st->n; i++)
		if (strv_contains(st->items[i]->repo_tags, name))
			return st->items[i];
	return NULL;
}

struct image *image_store_find(struct image_store *st, const char *spec, const char *default_domain,
			       bool *bad, struct cric_err *err)
{
	char name[IMAGE_REF_STRING_MAX + 1];
	int which;
	pthread_mutex_lock(&st->lock);
	struct image *img =
	    find_locked(st, spec, default_domain, bad, name, sizeof(name), &which, err);
	struct image *c = img ? image_dup(img) : NULL;
	pthread_mutex_unlock(&st->lock);
	return c;
}

struct image **image_store_list(struct image_store *st)
{
	pthread_mutex_lock(&st->lock);
	struct image **l = calloc(st->n + 1, sizeof(*l));
	for (size_t i = 0; l && i < st->n; i++)
		if (!(l[i] = image_dup(st->items[i]))) {
			image_list_free(l);
			l = NULL;
		}
	pthread_mutex_unlock(&st->lock);
	return l;
}

void image_list_free(struct image **l)
{
	for (size_t i = 0; l && l[i]; i++)
		image_free(l[i]);
	free(l);
}

char **image_store_ids(struct image_store *st)
{
	pthread_mutex_lock(&st->lock);
	char **v = calloc(st->n + 1, sizeof(char *));
	for (size_t i = 0; v && i < st->n; i++)
		if (!(v[i] = strdup(st->items[i]->id)))
			v = strv_free(v);
	pthread_mutex_unlock(&st->lock);
	return v;
}

int image_store_remove(struct image_store *st, const char *spec, const char *default_domain,
		       bool *found, bool *removed_image, char id[IMAGE_DIGEST_LEN + 1],
		       struct cric_err *err)
{
	char name[IMAGE_REF_STRING_MAX + 1];
	int which;
	bool bad;
	int r = 0;
	*found = *removed_image = false;
	pthread_mutex_lock(&st->lock);
	struct image *img =
	    find_locked(st, spec, default_domain, &bad, name, sizeof(name), &which, err);
	if (bad) {
		pthread_mutex_unlock(&st->lock);
		return -EINVAL;
	}
	if (!img) {
		pthread_mutex_unlock(&st->lock);
		return 0;
	}
	*found = true;
	snprintf(id, IMAGE_DIGEST_LEN + 1, "%s", img->id);
	/* One tag of several: only that tag goes. By id, by digest, or by
	 * its last tag: the image goes. */
	if (which == 1 && strv_len(img->repo_tags) > 1) {
		strv_drop(img->repo_tags, name);
		r = record_save(st, img);
		if (r < 0)
			err_set(err, r, "save the image record: %s", strerror(-r));
	} else {
		_cleanup_free_ char *path = record_path(st, img->id);
		if (!path || (unlink(path) < 0 && errno != ENOENT)) {
			r = path ? err_set(err, negative_errno(), "remove \"%s\": %s", path,
					   strerror(errno))
				 : -ENOMEM;
		} else {
			for (size_t i = 0; i < st->n; i++)
				if (st->items[i] == img) {
					st->items[i] = st->items[--st->n];
					break;
				}
			image_free(img);
			*removed_image = true;
		}
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}
