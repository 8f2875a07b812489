/* The blob downloads that concurrent pulls share (see pull-int.h): one
 * download per (registry, blob), download slots with a per-registry share,
 * the progress rule, and the fetch into the staging dir. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/ids.h"
#include "common/log.h"
#include "imaged/pull-int.h"

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

void puller_wake(struct puller *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

/* -ECANCELED (err set) once this pull's other layer failed (*cancel, may
 * be NULL) or its caller cancelled; 0 otherwise. */
static int check_cancel(const struct cric_call *call, const int *cancel, const char *digest,
			struct cric_err *err)
{
	if (cric_call_cancelled(call))
		return err_set(err, -ECANCELED, "blob %s: cancelled by the caller", digest);
	if (cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE))
		return err_set(err, -ECANCELED, "blob %s: cancelled", digest);
	return 0;
}

/* ---- dedup of downloads ---- */

struct inflight *inflight_begin(struct puller *p, const char *domain, const char *digest,
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

void inflight_finish(struct puller *p, struct inflight *f, int r)
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

int inflight_wait(struct puller *p, struct inflight *f, const struct cric_call *call,
		  const int *cancel, struct cric_err *err)
{
	int64_t until = mono_deadline(call);
	int r = 0;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if ((r = check_cancel(call, cancel, f->digest, err)) < 0)
			break;
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
		if ((r = check_cancel(call, cancel, digest, err)) < 0)
			break;
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

int fetch_to_staging(struct puller *p, const struct cric_call *call, const int *cancel,
		     const struct endpoint *ep, struct inflight *f, int64_t size, char name[128],
		     struct cric_err *err)
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
		.caller_cancel = call ? call->cancel : NULL,
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
