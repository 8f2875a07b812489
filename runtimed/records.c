#include "records.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"

struct record_store {
	char *dir;
	char *what;
};

int record_store_open(const char *dir, const char *what, struct record_store **ret,
		      struct cric_err *err)
{
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return err_set(err, r, "create \"%s\": %s", dir, strerror(-r));
	struct record_store *rs = calloc(1, sizeof(*rs));
	if (!rs || !(rs->dir = strdup(dir)) || !(rs->what = strdup(what))) {
		record_store_free(rs);
		return -ENOMEM;
	}
	(void)sweep_atomic_temps(dir, what);
	*ret = rs;
	return 0;
}

struct record_store *record_store_free(struct record_store *rs)
{
	if (rs) {
		free(rs->dir);
		free(rs->what);
		free(rs);
	}
	return NULL;
}

static char *record_path(const struct record_store *rs, const char *id)
{
	if (!id_is_valid(id))
		return NULL;
	char name[80];
	snprintf(name, sizeof(name), "%s.json", id);
	return path_join(rs->dir, name);
}

int record_store_save(struct record_store *rs, const char *id, const json_t *doc)
{
	_cleanup_free_ char *path = record_path(rs, id);
	if (!path)
		return id_is_valid(id) ? -ENOMEM : -EINVAL;
	int r = json_save_atomic(path, doc, 0600);
	if (r < 0)
		log_error_errno(r, "%s: save \"%s\"", rs->what, path);
	return r;
}

int record_store_delete(struct record_store *rs, const char *id)
{
	_cleanup_free_ char *path = record_path(rs, id);
	if (!path)
		return id_is_valid(id) ? -ENOMEM : -EINVAL;
	if (unlink(path) < 0 && errno != ENOENT)
		return negative_errno();
	return 0;
}

size_t record_store_load_all(struct record_store *rs, size_t max_bytes, record_fn cb,
			     void *userdata)
{
	_cleanup_closedir_ DIR *d = opendir(rs->dir);
	if (!d) {
		log_error("%s: read \"%s\": %m", rs->what, rs->dir);
		return 0;
	}
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char id[65];
		if (strlen(de->d_name) != 69 || strcmp(de->d_name + 64, ".json") != 0)
			continue;
		snprintf(id, sizeof(id), "%.64s", de->d_name);
		_cleanup_free_ char *path = record_path(rs, id);
		if (!path)
			continue;
		char perr[256] = "";
		_cleanup_json_ json_t *doc = NULL;
		int r = json_load_path(path, max_bytes, &doc, perr, sizeof(perr));
		if (r < 0) {
			log_error("%s: record \"%s\" unreadable (%s), ignored", rs->what,
				  de->d_name, perr[0] ? perr : strerror(-r));
			continue;
		}
		cb(userdata, id, doc);
		n++;
	}
	return n;
}
