/* CheckpointContainer: see container.h. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbjson.h"
#include "container-int.h"

/* Without a timeout in the request nor a deadline on the call. */
#define CKPT_DEFAULT_TIMEOUT_MS (4 * 60 * 1000)
/* What is left of the caller's deadline after runc for the archive. */
#define CKPT_ARCHIVE_MARGIN_MS 2000

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = flag == FTW_DP ? rmdir(path) : unlink(path);
	return r < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_tree(const char *dir)
{
	if (nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		log_warning("remove \"%s\": %s, ignoring", dir, strerror(errno));
}

void ctr_checkpoint_sweep(struct ctr_mgr *m)
{
	_cleanup_(closedirp) DIR *d = opendir(m->ckpt_dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = path_join(m->ckpt_dir, e->d_name);
		if (p) {
			log_info("remove the unfinished checkpoint \"%s\"", p);
			rm_tree(p);
		}
	}
}

static void rfc3339(int64_t ns, char *buf, size_t size)
{
	time_t s = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	char head[32];
	strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09lldZ", head, (long long)(ns % 1000000000));
}

static int save_json(const char *dir, const char *name, const json_t *doc, struct cric_err *err)
{
	_cleanup_free_ char *p = path_join(dir, name);
	if (!p)
		return -ENOMEM;
	int r = json_save_atomic(p, doc, 0600);
	return r < 0 ? err_set(err, r, "write \"%s\": %s", p, strerror(-r)) : 0;
}

/* config.dump (checkpointctl's ContainerConfig, and the CRI config the
 * container was created from, for a restore), spec.dump, status.dump.
 * With the op lock held: c's fields do not change. */
static int write_metadata(const struct container *c, const struct oci_handler *h, const char *dir,
			  struct cric_err *err)
{
	_cleanup_pb_ Runtime__V1__ContainerConfig *cfg =
	    runtime__v1__container_config__unpack(NULL, c->config_len, c->config);
	if (!cfg)
		return err_set(err, -EIO, "container %s: its recorded config does not parse",
			       c->id);
	char created[48], now[48], started[48];
	rfc3339(c->created_at, created, sizeof(created));
	rfc3339(now_unix_ns(), now, sizeof(now));
	rfc3339(c->started_at, started, sizeof(started));
	_cleanup_json_ json_t *config =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o?}", "id", c->id, "name",
		      cfg->metadata && cfg->metadata->name ? cfg->metadata->name : "",
		      "rootfsImageName", cfg->image && cfg->image->image ? cfg->image->image : "",
		      "rootfsImageRef", c->image_id, "runtime", h->name, "createdTime", created,
		      "checkpointedTime", now, "containerConfig", pb_to_json(&cfg->base));
	_cleanup_json_ json_t *status =
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "id", c->id, "podSandboxId",
		      c->pod_id, "state", "CONTAINER_RUNNING", "createdAt", created, "pid",
		      (json_int_t)c->pid, "startedAt", started, "imageRef",
		      c->image_ref ? c->image_ref : "", "logPath", c->log_path);
	if (!config || !status)
		return -ENOMEM;
	_cleanup_free_ char *spec_path = path_join(c->bundle, "config.json");
	if (!spec_path)
		return -ENOMEM;
	json_t *spec_raw = NULL;
	char why[256];
	int r = json_load_path(spec_path, CTR_RECORD_MAX, &spec_raw, why, sizeof(why));
	_cleanup_json_ json_t *spec = spec_raw;
	if (r < 0)
		return err_set(err, r, "read the container's spec: %s", why);
	if ((r = save_json(dir, CKPT_CONFIG_DUMP, config, err)) < 0 ||
	    (r = save_json(dir, CKPT_SPEC_DUMP, spec, err)) < 0 ||
	    (r = save_json(dir, CKPT_STATUS_DUMP, status, err)) < 0)
		return r;
	return 0;
}

/* The time runc gets: the request's timeout within the caller's deadline,
 * leaving CKPT_ARCHIVE_MARGIN_MS of it for the archive. */
static unsigned dump_timeout_ms(const struct cric_call *call, int64_t timeout_s)
{
	int64_t ms = timeout_s > 0 ? (timeout_s > 86400 ? 86400000 : timeout_s * 1000)
				   : CKPT_DEFAULT_TIMEOUT_MS;
	if (call && call->deadline_ns > 0 && call->deadline_ns != IPC_NO_DEADLINE) {
		int64_t left =
		    (call->deadline_ns - now_unix_ns()) / 1000000 - CKPT_ARCHIVE_MARGIN_MS;
		if (left < ms)
			ms = left;
	}
	return ms < 1 ? 1 : (unsigned)ms;
}

/* CRIU's log of a failed dump, kept with the bundle (removed with the
 * container) as <bundle>/checkpoint-dump.log, for the operator. */
static void keep_dump_log(const struct container *c, const char *work)
{
	_cleanup_free_ char *from = path_join(work, CKPT_DUMP_LOG);
	_cleanup_free_ char *to = path_join(c->bundle, "checkpoint-dump.log");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (!from || !to || read_file(from, 16 << 20, &text, &len) < 0)
		return;
	int r = write_file_atomic(to, text, len, 0600);
	if (r < 0)
		log_warning_errno(r, "keep \"%s\", ignoring", to);
	else
		log_info("container %s: CRIU's log of the failed checkpoint is \"%s\"", c->id, to);
}

/* With the op lock held. */
static int checkpoint_locked(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
			     const char *location, int64_t timeout_s, struct cric_err *err)
{
	if (c->removed)
		return err_set(err, -ENOENT, "container %s is removed", c->id);
	ctr_refresh(m, call, c);
	if (c->state != CTR_RUNNING)
		return err_set(err, -EBUSY,
			       "container %s is not running: only a running one "
			       "can be checkpointed",
			       c->id);
	const struct oci_handler *h = ctr_handler(m, c->handler);
	if (!h)
		return err_set(err, -ENOPKG, "runtime handler \"%s\" is not configured",
			       c->handler);
	if (!c->upper_dir[0])
		return err_set(err, -ENOPKG,
			       "container %s: its writable layer is unknown (created by an older "
			       "runtimed); it cannot be checkpointed",
			       c->id);
	int r = mkdir_p(m->ckpt_dir, 0700);
	if (r < 0)
		return err_set(err, r, "create \"%s\": %s", m->ckpt_dir, strerror(-r));
	_cleanup_free_ char *work = NULL;
	if (asprintf(&work, "%s/%s.XXXXXX", m->ckpt_dir, c->id) < 0)
		return -ENOMEM;
	if (!mkdtemp(work))
		return err_set(err, negative_errno(), "create a directory in \"%s\": %s",
			       m->ckpt_dir, strerror(errno));
	r = oci_checkpoint(h, c->id, work, dump_timeout_ms(call, timeout_s), err);
	if (r < 0)
		keep_dump_log(c, work);
	if (r == 0)
		r = write_metadata(c, h, work, err);
	if (r == 0)
		r = ckpt_rootfs_diff(c->upper_dir, work, err);
	if (r == 0)
		r = ckpt_archive_write(work, location, err);
	rm_tree(work);
	return r;
}

int ctr_checkpoint(struct ctr_mgr *m, const struct cric_call *call, const char *id,
		   const char *location, int64_t timeout_s, struct cric_err *err)
{
	if (timeout_s < 0)
		return err_set(err, -EINVAL, "timeout %lld is negative", (long long)timeout_s);
	int r = ckpt_location_check(location, (const char *const *)m->own_dirs, err);
	if (r < 0)
		return r;
	struct container *c = NULL;
	if ((r = ctr_lookup(m, id, &c, err)) < 0 || !c)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&c->op);
	int64_t t0 = now_unix_ns();
	r = checkpoint_locked(m, call, c, location, timeout_s, err);
	if (r < 0)
		err_prefix(err, r, "checkpoint container %s", c->id);
	else
		log_info("container %s checkpointed to \"%s\" in %lld ms", c->id, location,
			 (long long)((now_unix_ns() - t0) / 1000000));
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return r;
}

/* ---- restore ---- */

int ctr_restore_unpack(struct container *c, const char *archive, char **image, struct cric_err *err)
{
	_cleanup_free_ char *dir = path_join(c->bundle, CTR_RESTORE_DIR);
	_cleanup_free_ char *images = dir ? path_join(dir, CKPT_IMAGES_DIR) : NULL;
	if (!images)
		return -ENOMEM;
	if ((mkdir(c->bundle, 0700) < 0 && errno != EEXIST) || mkdir(dir, 0700) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", dir, strerror(errno));
	int r = ckpt_archive_extract(archive, dir, image, err);
	if (r < 0)
		return err_prefix(err, r, "restore from checkpoint \"%.200s\"", archive);
	struct stat st;
	if (stat(images, &st) < 0 || !S_ISDIR(st.st_mode))
		return err_set(err, -EINVAL, "checkpoint \"%.200s\" has no %s/ directory", archive,
			       CKPT_IMAGES_DIR);
	log_info("container %s: restore from checkpoint \"%s\" of image \"%s\"", c->id, archive,
		 *image);
	return 0;
}

/* The root filesystem the bundle's config.json names. */
static int bundle_rootfs(const char *bundle, char **ret, struct cric_err *err)
{
	_cleanup_free_ char *path = path_join(bundle, "config.json");
	if (!path)
		return -ENOMEM;
	json_t *doc = NULL;
	char why[256];
	int r = json_load_path(path, CTR_RECORD_MAX, &doc, why, sizeof(why));
	if (r < 0)
		return err_set(err, r, "read the container's spec: %s", why);
	_cleanup_json_ json_t *spec = doc;
	const char *root =
	    json_string_value(json_object_get(json_object_get(spec, "root"), "path"));
	if (!root || root[0] != '/')
		return err_set(err, -EIO, "the container's spec names no absolute root path");
	*ret = strdup(root);
	return *ret ? 0 : -ENOMEM;
}

int ctr_restore_start(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
		      struct cric_err *err)
{
	_cleanup_free_ char *dir = path_join(c->bundle, CTR_RESTORE_DIR);
	_cleanup_free_ char *images = dir ? path_join(dir, CKPT_IMAGES_DIR) : NULL;
	_cleanup_free_ char *rootfs = NULL;
	if (!images)
		return -ENOMEM;
	int r = bundle_rootfs(c->bundle, &rootfs, err);
	if (r == 0)
		r = ckpt_rootfs_apply(dir, rootfs, err);
	if (r == 0)
		r = ctr_monitor_restore(m, call, c, err);
	if (r < 0)
		return err_prefix(err, r, "restore");
	/* CRIU's images are read: free what they hold (the bundle is on
	 * tmpfs); restore.log stays with the bundle. */
	rm_tree(images);
	return 0;
}
