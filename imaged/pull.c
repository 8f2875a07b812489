#include "imaged/pull-int.h"

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

#include "common/cleanup.h"
#include "common/digest.h"
#include "cric_version.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/metrics.h"
#include "imaged/manifest.h"
#include "imaged/platform.h"
#include "imaged/registry.h"
#include "common/service.h"

#define MAX_WORKERS       16
#define PULL_CAP_SLACK_NS (5 * 1000000000LL)

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
	explicit_bzero(data, len);
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

static struct metric_family pulls = {
	.name = "cric_image_pulls_total",
	.help = "Image pulls finished, by result (ok, or the step that failed: reference, "
		"resolve, layers, commit, cancelled) and gRPC code.",
	.type = METRIC_COUNTER,
	.labels = { "result", "code" },
};

static struct metric_family pull_seconds = {
	.name = "cric_image_pull_duration_seconds",
	.help = "Time an image pull took, successful or not.",
	.type = METRIC_HISTOGRAM,
	.labels = { "result" },
	.bounds = metric_latency_bounds,
	.n_bounds = METRIC_N_LATENCY_BOUNDS,
};

static struct metric_family pull_layers_done = {
	.name = "cric_image_pull_layers_total",
	.help = "Layers pulls needed, by source: fetched from a registry, shared with a "
		"concurrent pull, or found in the store.",
	.type = METRIC_COUNTER,
	.labels = { "source" },
};

static struct metric_family pull_bytes = {
	.name = "cric_image_pull_bytes_total",
	.help = "Bytes of layers downloaded from registries (compressed, as the manifest sizes "
		"them) and imported.",
	.type = METRIC_COUNTER,
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
			metric_add(&pull_layers_done, METRIC_VALUES("shared"), 1);
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
	if (r == 0) {
		log_info("%s: layer %zu/%zu %s (%" PRId64 " bytes) stored", j->what, i + 1,
			 j->man->n_layers, d->digest, d->size);
		metric_add(&pull_layers_done, METRIC_VALUES("registry"), 1);
		metric_add(&pull_bytes, NULL, d->size > 0 ? (double)d->size : 0);
	}
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
	const struct pull_registry *reg = pull_registry_of(pc, pl->ref.domain);
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
	size_t present = 0;
	for (size_t i = 0; i < n && i < st->n_present; i++)
		present += (pl->present[i] = st->present[i]);
	protobuf_c_message_free_unpacked(out, NULL);
	metric_add(&pull_layers_done, METRIC_VALUES("store"), (double)present);
	return 0;
}

/* A pull whose caller cancelled while it resolved stops before it
 * downloads. */
static int pull_check_cancel(struct pull *pl, struct cric_err *err)
{
	if (cric_call_cancelled(pl->call))
		return err_set(err, -ECANCELED, "cancelled by the caller");
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

static void count_pull(const char *result, int r, const struct timespec *t0)
{
	metric_add(&pulls, METRIC_VALUES(result, grpc_code_name(grpc_code_from_errno(r))), 1);
	metric_observe(&pull_seconds, METRIC_VALUES(strcmp(result, "ok") == 0 ? "ok" : "failed"),
		       metric_seconds_since(t0));
}

int pull_image(struct puller *p, const struct cric_call *call, const char *reference,
	       const struct registry_creds *creds, const char *annotations,
	       char id[IMAGE_DIGEST_LEN + 1], struct cric_err *err)
{
	struct cric_call c = call ? *call : (struct cric_call){ 0 };
	c.deadline_ns = pull_deadline(p, call);
	_cleanup_(pull_done) struct pull pl = { .p = p, .call = &c };
	struct timespec t_parse;
	clock_gettime(CLOCK_MONOTONIC, &t_parse);
	int r = image_ref_parse(reference, p->cfg.default_registry, &pl.ref, err);
	if (r < 0) {
		count_pull("reference", r, &t_parse);
		return r;
	}
	pull_endpoints(&pl, creds);
	snprintf(pl.lease, sizeof(pl.lease), "pull-");
	id_random_hex(pl.lease + 5, sizeof(pl.lease) - 5, 8);

	log_info("pull %s", pl.ref.string);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const char *step = "resolve";
	if ((r = pull_resolve(&pl, err)) < 0 || (r = pull_layer_status(&pl, err)) < 0 ||
	    (step = "cancelled", r = pull_check_cancel(&pl, err)) < 0 ||
	    (step = "layers", r = pull_fetch_layers(&pl, err)) < 0 ||
	    (step = "commit", r = pull_commit(&pl, annotations, id, err)) < 0) {
		err_prefix(err, r, "pull %s", pl.ref.string);
		log_warning("%s", err ? err->msg : "pull failed");
		if (r == -ECANCELED)
			step = "cancelled";
		count_pull(step, r, &t0);
		return r;
	}
	count_pull("ok", 0, &t0);
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
		.max_retries = -1, /* the default: a dropped blob download resumes */
		.fetch_helper = pc->fetch_helper,
		.fetch_idle_sec = pc->fetch_idle_sec,
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
