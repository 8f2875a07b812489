#include "pull.h"

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
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "cric_version.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "imaged/manifest.h"
#include "imaged/platform.h"
#include "imaged/registry.h"
#include "common/service.h"

#define CONFIG_CACHE          8
#define MAX_WORKERS           16
#define DEFAULT_MAX_DOWNLOADS 3
#define DEFAULT_PROGRESS_SEC  REGISTRY_DEFAULT_PROGRESS_TIMEOUT
#define DEFAULT_PROGRESS_MIN  REGISTRY_DEFAULT_PROGRESS_MIN_BYTES
#define MAX_PROGRESS_MIN      (1u << 30)
#define PULL_CAP_SLACK_NS     (5 * 1000000000LL)

/* A download of one blob from one registry, shared by the pulls that need
 * it (keyed by both: a slow registry's download is never waited for by a
 * pull from another). */
struct inflight {
	char domain[IMAGE_REF_NAME_MAX + 1];
	char digest[IMAGE_DIGEST_LEN + 1];
	unsigned waiters;
	bool done;
	bool stalled; /* failed for want of progress (not its caller's deadline) */
	int r;
	enum { INFLIGHT_QUEUED, INFLIGHT_DOWNLOADING, INFLIGHT_IMPORTING } phase;
	uint64_t received, mark_bytes;
	int64_t mark_ns; /* CLOCK_MONOTONIC: the phase began or mark_bytes came */
	struct inflight *next;
};

struct cached_config {
	char digest[IMAGE_DIGEST_LEN + 1];
	char *data;
	size_t len;
};

struct puller {
	struct pull_config cfg;
	char staging[PATH_MAX];
	struct registry_client *reg;
	struct cric_client *stored;
	struct image_store *images;
	pthread_mutex_t lock;   /* inflight, downloads, config cache */
	pthread_cond_t changed; /* on CLOCK_MONOTONIC */
	struct inflight *inflight;
	unsigned downloads;
	char (*slot_domain)[IMAGE_REF_NAME_MAX + 1]; /* max_downloads slots, "" free */
	int64_t slots_mark_ns;                       /* a slot was freed or a download progressed */
	struct cached_config configs[CONFIG_CACHE];
	unsigned next_config;
	pthread_mutex_t commit; /* stored commit/release + record change */
};

/* ---- config ---- */

static int bad(const struct cric_config *cfg, const char *key, const char *want,
	       struct cric_err *err)
{
	return config_bad_key(cfg, "imaged", key, want, err);
}

static bool domain_ok(const char *d)
{
	struct image_ref ref;
	char s[IMAGE_REF_NAME_MAX + 8];
	snprintf(s, sizeof(s), "%s/x", d);
	/* A domain parses as the domain of "<domain>/x". */
	return strlen(d) <= IMAGE_REF_NAME_MAX - 2 && image_ref_parse(s, NULL, &ref, NULL) == 0 &&
	       strcmp(ref.domain, d) == 0;
}

int pull_config_load(const struct cric_config *cfg, struct pull_config *pc, struct cric_err *err)
{
	memset(pc, 0, sizeof(*pc));
	snprintf(pc->default_registry, sizeof(pc->default_registry), "%s",
		 IMAGE_REF_DEFAULT_DOMAIN);
	pc->max_downloads = DEFAULT_MAX_DOWNLOADS;
	pc->progress_timeout_sec = DEFAULT_PROGRESS_SEC;
	pc->progress_min_bytes = DEFAULT_PROGRESS_MIN;
	pc->max_request_seconds = cfg->max_request_seconds;
	const json_t *sec = json_object_get(cfg->doc, "imaged");
	if (!sec)
		return 0;
	if (!json_is_object(sec))
		return err_set(err, -EINVAL, "config \"%s\": \"imaged\" must be an object",
			       cfg->config_file);
	const json_t *v;
	if ((v = json_object_get(sec, "default_registry"))) {
		if (!json_is_string(v) || !domain_ok(json_string_value(v)))
			return bad(cfg, "default_registry", "a registry domain (\"docker.io\")",
				   err);
		snprintf(pc->default_registry, sizeof(pc->default_registry), "%s",
			 json_string_value(v));
	}
	if ((v = json_object_get(sec, "credentials_file"))) {
		if (!json_is_string(v))
			return bad(cfg, "credentials_file", "a path", err);
		if (*json_string_value(v) && !(pc->credentials_file = strdup(json_string_value(v))))
			return -ENOMEM;
	}
	if ((v = json_object_get(sec, "max_concurrent_downloads"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 64)
			return bad(cfg, "max_concurrent_downloads", "an integer from 1 to 64", err);
		pc->max_downloads = (unsigned)json_integer_value(v);
	}
	if ((v = json_object_get(sec, "pull_progress_timeout_seconds"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 3600)
			return bad(cfg, "pull_progress_timeout_seconds",
				   "an integer from 1 to 3600", err);
		pc->progress_timeout_sec = (unsigned)json_integer_value(v);
	}
	if ((v = json_object_get(sec, "pull_progress_min_bytes"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > MAX_PROGRESS_MIN)
			return bad(cfg, "pull_progress_min_bytes", "an integer from 1 to 2^30",
				   err);
		pc->progress_min_bytes = (uint64_t)json_integer_value(v);
	}
	const json_t *regs = json_object_get(sec, "registries");
	if (regs && !json_is_object(regs))
		return bad(cfg, "registries", "an object", err);
	if (json_object_size(regs) > 256)
		return bad(cfg, "registries", "at most 256 registries", err);
	pc->registries = calloc(json_object_size(regs) + 1, sizeof(*pc->registries));
	if (!pc->registries)
		return -ENOMEM;
	const char *dom;
	json_t *spec;
	json_object_foreach ((json_t *)regs, dom, spec) {
		struct pull_registry *r = &pc->registries[pc->n_registries++];
		const json_t *mir = json_object_get(spec, "mirrors");
		const json_t *ins = json_object_get(spec, "insecure");
		if (!domain_ok(dom) || !json_is_object(spec) || (mir && !json_is_array(mir)) ||
		    (ins && !json_is_boolean(ins)) || json_array_size(mir) > PULL_MAX_MIRRORS)
			return bad(cfg, "registries",
				   "an object of registry domains to {\"mirrors\": [up to 8 "
				   "domains], \"insecure\": bool}",
				   err);
		snprintf(r->domain, sizeof(r->domain), "%s", dom);
		r->insecure = ins && json_is_true(ins);
		for (size_t i = 0; i < json_array_size(mir); i++) {
			const char *m = json_string_value(json_array_get(mir, i));
			if (!m || !domain_ok(m))
				return bad(cfg, "registries.<domain>.mirrors",
					   "a list of registry domains (\"host:port\")", err);
			if (!(r->mirrors[i] = strdup(m)))
				return -ENOMEM;
		}
	}
	return 0;
}

void pull_config_done(struct pull_config *pc)
{
	for (size_t i = 0; i < pc->n_registries; i++)
		for (size_t k = 0; pc->registries[i].mirrors[k]; k++)
			free(pc->registries[i].mirrors[k]);
	free(pc->registries);
	free(pc->credentials_file);
	memset(pc, 0, sizeof(*pc));
}

static const struct pull_registry *registry_of(const struct pull_config *pc, const char *domain)
{
	for (size_t i = 0; i < pc->n_registries; i++)
		if (strcmp(pc->registries[i].domain, domain) == 0)
			return &pc->registries[i];
	return NULL;
}

/* ---- credentials file (docker's config.json "auths") ---- */

/* Credentials for domain from the file; false when it has none. A broken
 * file is logged (never its content) and ignored. */
static bool creds_from_file(const char *path, const char *domain, struct auth_file_creds *f)
{
	memset(f, 0, sizeof(*f));
	if (!path)
		return false;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_file(path, AUTH_CREDS_FILE_MAX, &data, &len);
	if (r < 0) {
		log_warning("credentials file \"%s\" unreadable: %s, ignoring", path,
			    r == -ENOENT ? "missing" : strerror(-r));
		return false;
	}
	struct cric_err err;
	r = auth_creds_file_parse(data, len, domain, f, &err);
	OPENSSL_cleanse(data, len);
	if (r < 0 && r != -ENOENT)
		log_warning("credentials file \"%s\": %s, ignoring", path, err.msg);
	return r == 0;
}

static bool creds_empty(const struct registry_creds *c)
{
	return !c || ((!c->username || !*c->username) && (!c->password || !*c->password) &&
		      (!c->auth || !*c->auth) && (!c->identity_token || !*c->identity_token) &&
		      (!c->registry_token || !*c->registry_token));
}

/* ---- time ---- */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A call's deadline (absolute CLOCK_REALTIME, 0: none) on CLOCK_MONOTONIC. */
static int64_t mono_deadline(const struct cric_call *call)
{
	if (!call || call->deadline_ns <= 0)
		return INT64_MAX;
	return mono_ns() + (call->deadline_ns - now_unix_ns());
}

static int64_t progress_ns(const struct puller *p)
{
	return (int64_t)p->cfg.progress_timeout_sec * 1000000000LL;
}

/* Wait on p->changed (p->lock held) until woken or until (monotonic). */
static void wait_until(struct puller *p, int64_t until)
{
	struct timespec ts = { .tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL };
	pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

/* ---- dedup of downloads ---- */

static struct inflight *inflight_begin(struct puller *p, const char *domain, const char *digest,
				       bool *owner)
{
	pthread_mutex_lock(&p->lock);
	/* A finished download stays listed until its waiters have read its
	 * result, but is no longer in flight: a new one starts. */
	struct inflight *f = p->inflight;
	while (f && (f->done || strcmp(f->digest, digest) != 0 || strcmp(f->domain, domain) != 0))
		f = f->next;
	if (f) {
		f->waiters++;
		*owner = false;
	} else if ((f = calloc(1, sizeof(*f)))) {
		snprintf(f->domain, sizeof(f->domain), "%s", domain);
		snprintf(f->digest, sizeof(f->digest), "%s", digest);
		f->phase = INFLIGHT_QUEUED;
		f->mark_ns = mono_ns();
		f->next = p->inflight;
		p->inflight = f;
		*owner = true;
	}
	pthread_mutex_unlock(&p->lock);
	return f;
}

/* With the lock held. */
static void inflight_unlink(struct puller *p, struct inflight *f)
{
	for (struct inflight **pp = &p->inflight; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	free(f);
}

static void inflight_finish(struct puller *p, struct inflight *f, int r)
{
	pthread_mutex_lock(&p->lock);
	f->done = true;
	f->r = r;
	if (f->waiters == 0)
		inflight_unlink(p, f);
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static void inflight_phase(struct puller *p, struct inflight *f, int phase)
{
	pthread_mutex_lock(&p->lock);
	f->phase = phase;
	f->mark_ns = mono_ns();
	f->mark_bytes = f->received;
	pthread_mutex_unlock(&p->lock);
}

/* Wait for another pull's download f: 0 when it succeeded; -EAGAIN when it
 * failed for its own reasons (the caller may fetch it itself); -ETIMEDOUT
 * (err set) when it stalled (no progress_min_bytes within
 * progress_timeout_sec while downloading: the same rule as our own
 * downloads) or our caller's deadline passed. Waits while the other pull
 * queues for a slot or imports are bounded by that pull's own limits and
 * our deadline. Once *cancel (may be NULL) is nonzero: -ECANCELED. */
static int inflight_wait(struct puller *p, struct inflight *f, const struct cric_call *call,
			 const int *cancel, struct cric_err *err)
{
	int64_t until = mono_deadline(call);
	int r = 0;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE)) {
			r = err_set(err, -ECANCELED, "blob %s: cancelled", f->digest);
			break;
		}
		if (f->done) {
			r = f->r == 0 ? 0 : f->stalled ? -ETIMEDOUT : -EAGAIN;
			if (r == -ETIMEDOUT)
				err_set(err, r,
					"registry \"%s\": blob %s stalled (fewer than %" PRIu64
					" bytes in %u s) in a concurrent pull's download",
					f->domain, f->digest, p->cfg.progress_min_bytes,
					p->cfg.progress_timeout_sec);
			break;
		}
		int64_t now = mono_ns();
		if (now >= until) {
			r = err_set(
			    err, -ETIMEDOUT,
			    "registry \"%s\": blob %s: the caller's deadline passed while a "
			    "concurrent pull downloaded it",
			    f->domain, f->digest);
			break;
		}
		bool downloading = f->phase == INFLIGHT_DOWNLOADING;
		if (downloading && now - f->mark_ns >= progress_ns(p)) {
			r = err_set(err, -ETIMEDOUT,
				    "registry \"%s\": blob %s stalled: fewer than %" PRIu64
				    " bytes in %u s in a concurrent pull's download, %" PRIu64
				    " received",
				    f->domain, f->digest, p->cfg.progress_min_bytes,
				    p->cfg.progress_timeout_sec, f->received);
			break;
		}
		int64_t wake = (downloading ? f->mark_ns : now) + progress_ns(p);
		wait_until(p, wake < until ? wake : until);
	}
	if (--f->waiters == 0 && f->done)
		inflight_unlink(p, f);
	pthread_mutex_unlock(&p->lock);
	return r;
}

struct fetch_progress {
	struct puller *p;
	struct inflight *f;
};

/* The owner's download advanced to total bytes (registry_progress_fn). */
static void inflight_progress(void *userdata, uint64_t total)
{
	const struct fetch_progress *fp = userdata;
	struct puller *p = fp->p;
	struct inflight *f = fp->f;
	pthread_mutex_lock(&p->lock);
	f->received = total;
	if (f->mark_bytes > total) /* the server ignored Range: from 0 again */
		f->mark_bytes = total;
	if (total - f->mark_bytes >= p->cfg.progress_min_bytes) {
		f->mark_bytes = total;
		f->mark_ns = p->slots_mark_ns = mono_ns();
	}
	pthread_mutex_unlock(&p->lock);
}

/* ---- downloads ---- */

struct endpoint {
	struct image_ref ref; /* the repository on this endpoint */
	const struct registry_creds *creds;
	bool mirror;
};

/* One registry may hold all but one slot (when there are several): a slow
 * registry cannot take every slot from the others. */
static int slot_find(struct puller *p, const char *domain)
{
	unsigned max = p->cfg.max_downloads, per_registry = max > 1 ? max - 1 : 1, mine = 0;
	int free_slot = -1;
	for (unsigned i = 0; i < max; i++) {
		if (!p->slot_domain[i][0])
			free_slot = free_slot < 0 ? (int)i : free_slot;
		else if (strcmp(p->slot_domain[i], domain) == 0)
			mine++;
	}
	return mine < per_registry ? free_slot : -1;
}

/* Take a download slot for a blob from domain. The wait ends at the
 * caller's deadline, or when for twice the progress timeout no slot was
 * freed and no download progressed (a holder that makes no progress loses
 * its slot within one timeout, so this is a backstop), or once *cancel
 * (may be NULL) is nonzero. The slot's index. */
static int download_slot_take(struct puller *p, const struct cric_call *call, const int *cancel,
			      const char *domain, const char *digest, struct cric_err *err)
{
	int64_t until = mono_deadline(call);
	pthread_mutex_lock(&p->lock);
	int64_t start = mono_ns();
	int r;
	for (;;) {
		if (cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE)) {
			r = err_set(err, -ECANCELED, "blob %s: cancelled", digest);
			break;
		}
		if ((r = slot_find(p, domain)) >= 0) {
			snprintf(p->slot_domain[r], sizeof(p->slot_domain[r]), "%s", domain);
			p->downloads++;
			break;
		}
		int64_t now = mono_ns();
		int64_t idle = start > p->slots_mark_ns ? start : p->slots_mark_ns;
		if (now >= until) {
			r = err_set(
			    err, -ETIMEDOUT,
			    "registry \"%s\": blob %s: the caller's deadline passed waiting "
			    "for a download slot",
			    domain, digest);
			break;
		}
		if (now - idle >= 2 * progress_ns(p)) {
			r = err_set(err, -ETIMEDOUT,
				    "registry \"%s\": blob %s: no download slot came free in %u s",
				    domain, digest, 2 * p->cfg.progress_timeout_sec);
			break;
		}
		int64_t wake = idle + 2 * progress_ns(p);
		wait_until(p, wake < until ? wake : until);
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

static void download_slot_release(struct puller *p, int slot)
{
	pthread_mutex_lock(&p->lock);
	p->slot_domain[slot][0] = '\0';
	p->downloads--;
	p->slots_mark_ns = mono_ns();
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

/* Fetch f's blob into a new staging file; its name into name. Bounded by
 * progress and by the caller's deadline; stopped once *cancel (may be
 * NULL) is nonzero. */
static int fetch_to_staging(struct puller *p, const struct cric_call *call, const int *cancel,
			    const struct endpoint *ep, struct inflight *f, int64_t size,
			    char name[128], struct cric_err *err)
{
	const char *digest = f->digest;
	char rnd[17];
	id_random_hex(rnd, sizeof(rnd), 8);
	snprintf(name, 128, "%.64s-%s", digest + 7, rnd);
	char path[PATH_MAX + 128];
	snprintf(path, sizeof(path), "%s/%s", p->staging, name);
	_cleanup_close_ int fd =
	    open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", path, strerror(errno));
	int slot = download_slot_take(p, call, cancel, ep->ref.domain, digest, err);
	if (slot < 0) {
		unlink(path);
		return slot;
	}
	inflight_phase(p, f, INFLIGHT_DOWNLOADING);
	struct fetch_progress fp = { .p = p, .f = f };
	const struct registry_blob_opts bo = {
		.progress = inflight_progress,
		.userdata = &fp,
		.deadline_ns = call ? call->deadline_ns : 0,
		.cancel = cancel,
	};
	uint64_t got = 0;
	unsigned resumes = 0;
	int r = registry_fetch_blob(p->reg, &ep->ref, digest, fd, size, ep->creds, &bo, &got,
				    &resumes, err);
	download_slot_release(p, slot);
	inflight_phase(p, f, INFLIGHT_IMPORTING);
	if (r < 0) {
		unlink(path);
		if (r == -ETIMEDOUT &&
		    (!call || call->deadline_ns <= 0 || now_unix_ns() < call->deadline_ns)) {
			pthread_mutex_lock(&p->lock);
			f->stalled = true;
			pthread_mutex_unlock(&p->lock);
		}
		return r; /* the message names the registry and the blob */
	}
	log_info("downloaded %s from %s: %" PRIu64 " bytes%s", digest, ep->ref.domain, got,
		 resumes ? " (resumed)" : "");
	return 0;
}

/* The config blob, from the cache or the registry (once for concurrent
 * pulls of one image). */
/* The cached copy of config digest into *data: 1, 0 when not cached, or
 * -ENOMEM. */
static int cached_config(struct puller *p, const char *digest, char **data, size_t *len)
{
	int r = 0;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < CONFIG_CACHE; i++) {
		struct cached_config *c = &p->configs[i];
		if (c->data && strcmp(c->digest, digest) == 0) {
			*data = malloc(c->len + 1);
			if (*data) {
				memcpy(*data, c->data, c->len + 1);
				*len = c->len;
			}
			r = *data ? 1 : -ENOMEM;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

static int get_config(struct puller *p, const struct cric_call *call, const struct endpoint *ep,
		      const struct descriptor *d, char **data, size_t *len, struct cric_err *err)
{
	for (;;) {
		int hit = cached_config(p, d->digest, data, len);
		if (hit != 0)
			return hit < 0 ? hit : 0;
		bool owner;
		struct inflight *f = inflight_begin(p, ep->ref.domain, d->digest, &owner);
		if (!f)
			return -ENOMEM;
		/* A download that finished since we looked has cached it. */
		if (owner && (hit = cached_config(p, d->digest, data, len)) != 0) {
			inflight_finish(p, f, hit < 0 ? hit : 0);
			return hit < 0 ? hit : 0;
		}
		if (!owner) {
			/* Then in the cache, or the other pull failed for its own
			 * reasons: look again (and fetch it if nobody does). */
			int r = inflight_wait(p, f, call, NULL, err);
			if (r == -ETIMEDOUT)
				return r;
			continue;
		}
		char name[128];
		int r = fetch_to_staging(p, call, NULL, ep, f, d->size, name, err);
		if (r == 0) {
			char path[PATH_MAX + 128];
			snprintf(path, sizeof(path), "%s/%s", p->staging, name);
			r = read_file(path, IMAGE_CONFIG_MAX_BYTES, data, len);
			unlink(path);
			if (r < 0)
				err_set(err, r, "read the config: %s", strerror(-r));
		}
		if (r == 0) {
			pthread_mutex_lock(&p->lock);
			struct cached_config *c = &p->configs[p->next_config++ % CONFIG_CACHE];
			free(c->data);
			c->data = malloc(*len + 1);
			if (c->data) {
				memcpy(c->data, *data, *len + 1);
				c->len = *len;
				snprintf(c->digest, sizeof(c->digest), "%s", d->digest);
			}
			pthread_mutex_unlock(&p->lock);
		}
		inflight_finish(p, f, r);
		return r;
	}
}

/* ---- stored ---- */

static int stored_call(struct puller *p, const struct cric_call *call, struct cric_method_ref m,
		       const ProtobufCMessage *req, ProtobufCMessage **out, struct cric_err *err)
{
	_cleanup_free_ char *msg = NULL;
	ProtobufCMessage *o = NULL;
	unsigned code = cric_call(p->stored, m, call ? call->request_id : NULL,
				  deadline_in_ms(STORED_IMPORT_CAP_MS), req, &o, &msg);
	if (code != CODE_OK)
		return err_set(err, errno_from_grpc_code(code), "stored: %s",
			       msg ? msg : grpc_code_name(code));
	if (out)
		*out = o;
	else if (o)
		protobuf_c_message_free_unpacked(o, NULL);
	return 0;
}

static int import_layer(struct puller *p, const struct cric_call *call, const char *file,
			const char *blob, const char *diff_id, const char *parent,
			const char *lease, struct cric_err *err)
{
	Cric__Stored__ImportLayerRequest req = CRIC__STORED__IMPORT_LAYER_REQUEST__INIT;
	req.file = (char *)file;
	req.blob_digest = (char *)blob;
	req.diff_id = (char *)diff_id;
	req.parent_chain_id = (char *)parent;
	req.lease = (char *)lease;
	return stored_call(p, call, CRIC_STORED(import_layer), &req.base, NULL, err);
}

static void drop_lease(struct puller *p, const struct cric_call *call, const char *lease)
{
	Cric__Stored__DropLeaseRequest req = CRIC__STORED__DROP_LEASE_REQUEST__INIT;
	req.lease = (char *)lease;
	struct cric_err e;
	if (stored_call(p, call, CRIC_STORED(drop_lease), &req.base, NULL, &e) < 0)
		log_warning("drop lease %s: %s (stored collects it at imaged's next start)", lease,
			    e.msg);
}

/* ---- one pull ---- */

struct pull_job {
	struct puller *p;
	const struct cric_call *call;
	const struct endpoint *ep;
	const struct manifest *man;
	const struct image_config *cfg;
	char (*chains)[IMAGE_DIGEST_LEN + 1];
	bool *present;
	const char *lease;
	const char *what; /* the reference, for logs */
	pthread_mutex_t lock;
	size_t next;
	int r;
	struct cric_err err;
	int failed; /* atomic: r < 0, the other layers' waits and downloads stop */
};

static int pull_layer(struct pull_job *j, size_t i, struct cric_err *err)
{
	struct puller *p = j->p;
	const struct descriptor *d = &j->man->layers[i].desc;
	const char *parent = i > 0 ? j->chains[i - 1] : "";
	const char *diff = j->cfg->diff_ids[i];
	bool owner;
	const char *domain = j->ep->ref.domain;
	struct inflight *f = inflight_begin(p, domain, d->digest, &owner);
	if (!f)
		return -ENOMEM;
	/* Another pull is downloading this blob from the same registry: wait,
	 * then take the layer it imported (same chain), or fetch it ourselves.
	 * Until our lease holds it, the layer may be collected (its image
	 * removed): then try again, as the owner if nobody else is fetching it
	 * by now. Each round waits for a download another pull finished: no
	 * spinning. A download that stalls fails us too (the same registry
	 * would stall ours), as does our caller's deadline. */
	while (!owner) {
		int r = inflight_wait(p, f, j->call, &j->failed, err);
		if (r == -ETIMEDOUT || r == -ECANCELED)
			return r;
		if (r == 0 &&
		    import_layer(p, j->call, "", d->digest, diff, parent, j->lease, NULL) == 0) {
			log_info("%s: layer %zu/%zu %s shared with a concurrent pull", j->what,
				 i + 1, j->man->n_layers, d->digest);
			return 0;
		}
		f = inflight_begin(p, domain, d->digest, &owner);
		if (!f)
			return -ENOMEM;
	}
	/* A pull that finished this blob between our LayerStatus and
	 * inflight_begin() left the layer in stored: take it from there. */
	if (import_layer(p, j->call, "", d->digest, diff, parent, j->lease, NULL) == 0) {
		inflight_finish(p, f, 0);
		return 0;
	}
	char name[128];
	int r = fetch_to_staging(p, j->call, &j->failed, j->ep, f, d->size, name, err);
	if (r == 0) {
		r = import_layer(p, j->call, name, d->digest, diff, parent, j->lease, err);
		char path[PATH_MAX + 128];
		snprintf(path, sizeof(path), "%s/%s", p->staging, name);
		unlink(path);
		if (r < 0)
			err_prefix(err, r, "layer %s", d->digest);
	}
	if (r == 0)
		log_info("%s: layer %zu/%zu %s (%" PRId64 " bytes) stored", j->what, i + 1,
			 j->man->n_layers, d->digest, d->size);
	inflight_finish(p, f, r);
	return r;
}

static void *layer_worker(void *arg)
{
	struct pull_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		while (j->next < j->man->n_layers && j->present[j->next])
			j->next++;
		size_t i = j->next++;
		bool stop = i >= j->man->n_layers || j->r < 0;
		pthread_mutex_unlock(&j->lock);
		if (stop)
			return NULL;
		struct cric_err e;
		int r = pull_layer(j, i, &e);
		if (r < 0) {
			pthread_mutex_lock(&j->lock);
			if (j->r == 0) {
				j->r = r;
				j->err = e;
			}
			pthread_mutex_unlock(&j->lock);
			/* Wake this pull's other workers from their waits. */
			__atomic_store_n(&j->failed, 1, __ATOMIC_RELEASE);
			pthread_mutex_lock(&j->p->lock);
			pthread_cond_broadcast(&j->p->changed);
			pthread_mutex_unlock(&j->p->lock);
			return NULL;
		}
	}
}

static int pull_layers(struct pull_job *j, struct cric_err *err)
{
	size_t missing = 0;
	for (size_t i = 0; i < j->man->n_layers; i++)
		missing += !j->present[i];
	size_t nw = missing < j->p->cfg.max_downloads ? missing : j->p->cfg.max_downloads;
	if (nw > MAX_WORKERS)
		nw = MAX_WORKERS;
	pthread_t t[MAX_WORKERS];
	size_t started = 0;
	for (; started < nw; started++)
		if (pthread_create(&t[started], NULL, layer_worker, j) != 0)
			break;
	if (started == 0 && missing > 0)
		layer_worker(j); /* no thread: do it here */
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if (j->r < 0)
		return err_set(err, j->r, "%s", j->err.msg);
	return 0;
}

/* The manifest from the first endpoint that serves it. */
static int resolve(struct puller *p, struct endpoint *eps, size_t n, const struct endpoint **used,
		   struct registry_manifest **ret, struct cric_err *err)
{
	int r = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		struct cric_err e;
		r = registry_fetch_manifest(p->reg, &eps[i].ref, NULL, NULL, eps[i].creds, ret, &e);
		if (r == 0) {
			*used = &eps[i];
			return 0;
		}
		if (eps[i].mirror)
			log_warning("mirror %s: %s; trying the next endpoint", eps[i].ref.domain,
				    e.msg);
		err_set(err, r, "%s", e.msg);
	}
	return r;
}

/* One pull's state, from the reference to the commit. */
struct pull {
	struct puller *p;
	const struct cric_call *call;
	struct image_ref ref;
	struct endpoint eps[PULL_MAX_MIRRORS + 1];
	struct auth_file_creds fc[PULL_MAX_MIRRORS + 1];
	size_t n_eps;
	const struct endpoint *ep; /* the one that answered */
	char lease[32];
	bool leased; /* stored holds layers under lease */
	struct registry_manifest *top, *child;
	struct manifest *m, *cm;
	const struct manifest *man; /* the image manifest (m or cm) */
	const char *man_digest;
	struct image_config *cfg;
	char *cfg_data;
	size_t cfg_len;
	char (*chains)[IMAGE_DIGEST_LEN + 1];
	bool *present;
};

static void pull_done(struct pull *pl)
{
	if (pl->leased)
		drop_lease(pl->p, pl->call, pl->lease);
	registry_manifest_free(pl->top);
	registry_manifest_free(pl->child);
	manifest_free(pl->m);
	manifest_free(pl->cm);
	image_config_free(pl->cfg);
	free(pl->cfg_data);
	free(pl->chains);
	free(pl->present);
	for (size_t i = 0; i < pl->n_eps; i++)
		auth_file_creds_done(&pl->fc[i]);
}

/* The endpoints to try: the registry's mirrors in order, then itself, each
 * with its credentials (the request's for the registry, else the file's). */
static void pull_endpoints(struct pull *pl, const struct registry_creds *creds)
{
	const struct pull_config *pc = &pl->p->cfg;
	const struct pull_registry *reg = registry_of(pc, pl->ref.domain);
	size_t n = 0;
	for (size_t i = 0; reg && reg->mirrors[i]; i++, n++) {
		struct endpoint *e = &pl->eps[n];
		e->ref = pl->ref;
		snprintf(e->ref.domain, sizeof(e->ref.domain), "%s", reg->mirrors[i]);
		snprintf(e->ref.name, sizeof(e->ref.name), "%s/%s", reg->mirrors[i], pl->ref.path);
		e->mirror = true;
		e->creds = creds_from_file(pc->credentials_file, reg->mirrors[i], &pl->fc[n])
			       ? &pl->fc[n].c
			       : NULL;
	}
	struct endpoint *e = &pl->eps[n];
	e->ref = pl->ref;
	e->mirror = false;
	e->creds = !creds_empty(creds) ? creds
		   : creds_from_file(pc->credentials_file, pl->ref.domain, &pl->fc[n])
		       ? &pl->fc[n].c
		       : NULL;
	pl->n_eps = n + 1;
}

/* The manifest (this host's entry of an index) and the image config,
 * checked against this host's platform. */
static int pull_resolve(struct pull *pl, struct cric_err *err)
{
	int r = resolve(pl->p, pl->eps, pl->n_eps, &pl->ep, &pl->top, err);
	if (r < 0)
		return r;
	if (!pl->ep || !pl->top)
		return err_set(err, -EIO, "no endpoint answered");
	if ((r = manifest_parse(pl->top->body, pl->top->len, pl->top->content_type, &pl->m, err)) <
	    0)
		return err_prefix(err, r, "manifest %s", pl->top->digest);
	pl->man = pl->m;
	pl->man_digest = pl->top->digest;
	struct platform host;
	if ((r = platform_host(&host, err)) < 0)
		return r;
	if (manifest_kind_is_index(pl->m->kind)) {
		const struct manifest_entry *e;
		if ((r = manifest_select(pl->m, &host, &e, err)) < 0)
			return r;
		if ((r = registry_fetch_manifest(pl->p->reg, &pl->ep->ref, e->desc.digest, NULL,
						 pl->ep->creds, &pl->child, err)) < 0)
			return r;
		if ((r = manifest_parse(pl->child->body, pl->child->len, pl->child->content_type,
					&pl->cm, err)) < 0)
			return err_prefix(err, r, "manifest %s", e->desc.digest);
		if (manifest_kind_is_index(pl->cm->kind))
			return err_set(err, -EOPNOTSUPP, "index %s points to another index",
				       e->desc.digest);
		pl->man = pl->cm;
		pl->man_digest = pl->child->digest;
	}
	const struct descriptor *cd = &pl->man->config;
	if ((r = get_config(pl->p, pl->call, pl->ep, cd, &pl->cfg_data, &pl->cfg_len, err)) < 0)
		return r;
	if ((r = image_config_parse(pl->cfg_data, pl->cfg_len, pl->man, &pl->cfg, err)) < 0)
		return err_prefix(err, r, "config %s", cd->digest);
	/* What the image is really built for: a single manifest, or an index
	 * entry without a platform (or with a wrong one), says nothing else.
	 * -ENOEXEC is FAILED_PRECONDITION: the request and the image are
	 * valid, but this host is not the platform the image needs, and
	 * retrying will not help until one of them changes. */
	if ((r = platform_check_image(&host, &pl->cfg->platform, err)) < 0)
		return err_prefix(err, r, "config %s", cd->digest);
	return 0;
}

/* The layers' chain ids, and which of them stored has already (held from
 * here on under the pull's lease). */
static int pull_layer_status(struct pull *pl, struct cric_err *err)
{
	size_t n = pl->man->n_layers;
	pl->chains = calloc(n + 1, sizeof(*pl->chains));
	pl->present = calloc(n + 1, sizeof(bool));
	if (!pl->chains || !pl->present)
		return -ENOMEM;
	char *ptrs[MANIFEST_MAX_LAYERS + 1];
	for (size_t i = 0; i < n; i++) {
		digest_chain_id(i ? pl->chains[i - 1] : NULL, pl->cfg->diff_ids[i], pl->chains[i]);
		ptrs[i] = pl->chains[i];
	}
	Cric__Stored__LayerStatusRequest req = CRIC__STORED__LAYER_STATUS_REQUEST__INIT;
	req.n_chain_ids = n;
	req.chain_ids = ptrs;
	req.lease = pl->lease;
	ProtobufCMessage *out = NULL;
	pl->leased = true;
	int r = stored_call(pl->p, pl->call, CRIC_STORED(layer_status), &req.base, &out, err);
	if (r < 0)
		return r;
	Cric__Stored__LayerStatusResponse *st = (void *)out;
	if (!st)
		return err_set(err, -EIO, "stored answered LayerStatus without a message");
	for (size_t i = 0; i < n && i < st->n_present; i++)
		pl->present[i] = st->present[i];
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

/* Download and import what stored lacks, layers in parallel. */
static int pull_fetch_layers(struct pull *pl, struct cric_err *err)
{
	struct pull_job j = {
		.p = pl->p,
		.call = pl->call,
		.ep = pl->ep,
		.man = pl->man,
		.cfg = pl->cfg,
		.chains = pl->chains,
		.present = pl->present,
		.lease = pl->lease,
		.what = pl->ref.string,
	};
	pthread_mutex_init(&j.lock, NULL);
	int r = pull_layers(&j, err);
	pthread_mutex_destroy(&j.lock);
	return r;
}

/* Commit: stored's references, then the record, under the commit lock
 * (RemoveImage takes it too). */
static int pull_commit(struct pull *pl, const char *annotations, char id[IMAGE_DIGEST_LEN + 1],
		       struct cric_err *err)
{
	const struct manifest *man = pl->man;
	struct image img = { 0 };
	snprintf(img.id, sizeof(img.id), "%s", man->config.digest);
	char tag[IMAGE_REF_STRING_MAX + 1], dig[IMAGE_REF_STRING_MAX + 1],
	    man_dig[IMAGE_REF_STRING_MAX + 1];
	char *tags[2] = { NULL, NULL }, *digs[3] = { dig, NULL, NULL };
	if (!pl->ref.digest[0] && image_ref_repo_tag(&pl->ref, tag) == 0)
		tags[0] = tag;
	/* Repo digests, as containerd and CRI-O report them: the digest the
	 * reference resolved to (the index's, for a multi-platform image: what
	 * the kubelet pulled by and looks the image up by), and the image
	 * manifest's when it is another. */
	int r = image_ref_repo_digest(&pl->ref, pl->top->digest, dig, err);
	if (r < 0)
		return r;
	if (strcmp(pl->man_digest, pl->top->digest) != 0) {
		if ((r = image_ref_repo_digest(&pl->ref, pl->man_digest, man_dig, err)) < 0)
			return r;
		digs[1] = man_dig;
	}
	char *chain_ptrs[MANIFEST_MAX_LAYERS + 1];
	for (size_t i = 0; i < man->n_layers; i++)
		chain_ptrs[i] = pl->chains[i];
	chain_ptrs[man->n_layers] = NULL;
	img.repo_tags = tags;
	img.repo_digests = digs;
	img.chain_ids = chain_ptrs;
	img.config = pl->cfg_data;
	img.size = (uint64_t)man->config.size;
	for (size_t i = 0; i < man->n_layers; i++)
		img.size += (uint64_t)man->layers[i].desc.size;
	img.has_uid = pl->cfg->user_id.has_uid;
	img.uid = pl->cfg->user_id.uid;
	img.username = pl->cfg->user_id.username;
	img.pulled_at = now_unix_ns();
	img.annotations = (char *)(annotations ? annotations : "{}");

	pthread_mutex_lock(&pl->p->commit);
	Cric__Stored__CommitImageRequest creq = CRIC__STORED__COMMIT_IMAGE_REQUEST__INIT;
	creq.image_id = img.id;
	creq.n_chain_ids = man->n_layers;
	creq.chain_ids = chain_ptrs;
	creq.lease = pl->lease;
	r = stored_call(pl->p, pl->call, CRIC_STORED(commit_image), &creq.base, NULL, err);
	if (r == 0)
		r = image_store_add(pl->p->images, &img, err);
	pthread_mutex_unlock(&pl->p->commit);
	if (r < 0)
		return r;
	pl->leased = false;
	snprintf(id, IMAGE_DIGEST_LEN + 1, "%s", img.id);
	log_info("pulled %s: image %s, %zu layers, %" PRIu64 " bytes", pl->ref.string, img.id,
		 man->n_layers, img.size);
	return 0;
}

/* The deadline a pull stops at: the caller's (crictl sets one). The kubelet
 * sets none on PullImage, and the gateway then caps the call at
 * max_request_seconds: that cap only ends the gateway's wait; the pull runs
 * on, bounded by progress, so that an image too big to pull within the cap
 * still completes (the kubelet's retry joins its downloads, or finds the
 * image). A deadline within a few seconds of the cap is taken as the cap. */
static int64_t pull_deadline(const struct puller *p, const struct cric_call *call)
{
	if (!call || call->deadline_ns <= 0)
		return 0;
	int64_t left = call->deadline_ns - now_unix_ns();
	int64_t cap = (int64_t)p->cfg.max_request_seconds * 1000000000LL;
	return left < cap - PULL_CAP_SLACK_NS ? call->deadline_ns : 0;
}

int pull_image(struct puller *p, const struct cric_call *call, const char *reference,
	       const struct registry_creds *creds, const char *annotations,
	       char id[IMAGE_DIGEST_LEN + 1], struct cric_err *err)
{
	struct cric_call c = call ? *call : (struct cric_call){ 0 };
	c.deadline_ns = pull_deadline(p, call);
	_cleanup_(pull_done) struct pull pl = { .p = p, .call = &c };
	int r = image_ref_parse(reference, p->cfg.default_registry, &pl.ref, err);
	if (r < 0)
		return r;
	pull_endpoints(&pl, creds);
	snprintf(pl.lease, sizeof(pl.lease), "pull-");
	id_random_hex(pl.lease + 5, sizeof(pl.lease) - 5, 8);

	log_info("pull %s", pl.ref.string);
	if ((r = pull_resolve(&pl, err)) < 0 || (r = pull_layer_status(&pl, err)) < 0 ||
	    (r = pull_fetch_layers(&pl, err)) < 0 ||
	    (r = pull_commit(&pl, annotations, id, err)) < 0) {
		err_prefix(err, r, "pull %s", pl.ref.string);
		log_warning("%s", err ? err->msg : "pull failed");
		return r;
	}
	return 0;
}

int puller_remove_image(struct puller *p, const struct cric_call *call, const char *spec,
			bool *found, bool *removed_image, char id[IMAGE_DIGEST_LEN + 1],
			struct cric_err *err)
{
	pthread_mutex_lock(&p->commit);
	int r = image_store_remove(p->images, spec, p->cfg.default_registry, found, removed_image,
				   id, err);
	if (r == 0 && *removed_image) {
		Cric__Stored__ReleaseImageRequest req = CRIC__STORED__RELEASE_IMAGE_REQUEST__INIT;
		struct cric_err e;
		req.image_id = id;
		if (stored_call(p, call, CRIC_STORED(release_image), &req.base, NULL, &e) < 0)
			log_warning("release the layers of %s: %s (stored is told at imaged's "
				    "next start), ignoring",
				    id, e.msg);
	}
	pthread_mutex_unlock(&p->commit);
	return r;
}

const char *puller_default_registry(struct puller *p)
{
	return p->cfg.default_registry;
}

/* ---- setup ---- */

/* Downloads a killed imaged left: nothing in staging survives a start. */
static void clean_staging(const char *dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	if (n)
		log_notice("removed %u staging files of interrupted pulls", n);
}

int puller_new(const struct pull_config *pc, const char *staging_dir, struct cric_client *stored,
	       struct image_store *images, struct puller **ret, struct cric_err *err)
{
	struct puller *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *pc;
	snprintf(p->staging, sizeof(p->staging), "%s", staging_dir);
	p->stored = stored;
	p->images = images;
	p->slot_domain = calloc(pc->max_downloads ?: 1, sizeof(*p->slot_domain));
	if (!p->slot_domain) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->changed, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&p->commit, NULL);
	int r = mkdir_p(staging_dir, 0700);
	if (r < 0) {
		free(p->slot_domain);
		free(p);
		return err_set(err, r, "create \"%s\": %s", staging_dir, strerror(-r));
	}
	clean_staging(staging_dir);
	const char *insecure[257];
	size_t ni = 0;
	for (size_t i = 0; i < pc->n_registries && ni < 256; i++)
		if (pc->registries[i].insecure)
			insecure[ni++] = pc->registries[i].domain;
	insecure[ni] = NULL;
	const struct registry_client_opts o = {
		.progress_timeout_sec = pc->progress_timeout_sec,
		.progress_min_bytes = pc->progress_min_bytes,
		.insecure = insecure,
		.user_agent = "cric/" CRIC_VERSION,
	};
	if ((r = registry_client_new(&o, &p->reg, err)) < 0) {
		free(p->slot_domain);
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

struct puller *puller_free(struct puller *p)
{
	if (!p)
		return NULL;
	registry_client_free(p->reg);
	for (unsigned i = 0; i < CONFIG_CACHE; i++)
		free(p->configs[i].data);
	while (p->inflight) {
		struct inflight *f = p->inflight;
		p->inflight = f->next;
		free(f);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->commit);
	pull_config_done(&p->cfg);
	free(p->slot_domain);
	free(p);
	return NULL;
}
