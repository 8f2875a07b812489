/* What the files of runtimed's container half share (container.c: the
 * table, records, create, recovery; ctrlife.c: start, stop, remove, status,
 * list). Internal to runtimed.
 *
 * References: the table holds one per container; ctr_lookup() hands out
 * another, dropped by ctr_put(). A container's fields are read and written
 * under m->lock; its lifecycle calls are serialised by its own op mutex. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <pthread.h>

#include "common/idmap.h"
#include "common/service.h"
#include "container.h"
#include "lsm.h"
#include "records.h"
#include "seccomp-profile.h"

#define CTR_RECORD_MAX (4 * 1024 * 1024)
/* Internal calls of a creation go on past the caller's deadline (its retry
 * by name takes the result); bounded by this. */
#define CTR_CALL_CAP_MS (4 * 60 * 1000)

struct container {
	char id[65], pod_id[65];
	char name[1024]; /* the reservation key */
	enum ctr_state state;
	int64_t created_at, started_at, finished_at;
	int32_t exit_code;
	char reason[32], message[512];
	uint8_t *config; /* the packed ContainerConfig */
	size_t config_len;
	char image_id[80];
	char *image_ref;
	char log_path[PATH_MAX];
	char bundle[PATH_MAX];
	char upper_dir[PATH_MAX]; /* its writable layer (stored's), "" unknown */
	char handler[64];
	pid_t pid;
	unsigned long long pid_start;
	/* A pidfd of pid once a status call saw it run (-1: none yet, or
	 * it exited): polled instead of reading /proc per call. With the op
	 * lock held, changed with the table lock too (a list polls them all
	 * under it); closed by container_free. */
	int pidfd;
	pid_t pidfd_pid;
	/* Its ListContainers entry, packed without its state (the ctr_entry_fn
	 * of its first ctr_list_briefs): made once, not per list. NULL until
	 * then, and again when what it holds may have changed. */
	uint8_t *entry;
	size_t entry_len;
	uint32_t uid, gid;
	int stop_signal;
	bool rootfs_made, monitor_made;
	/* Its STOPPED event is due (it left created or running) and not yet
	 * taken (ctr_take_stopped); not before its STARTED went out
	 * (start_pending: started, STARTED not yet published). */
	bool stop_due, start_pending;
	/* Created from a checkpoint archive (its content in <bundle>/restore):
	 * StartContainer restores it; the monitor is made then. */
	bool restore;

	pthread_mutex_t op;
	unsigned refs;
	bool removed;
	bool orphaned; /* created after its caller's deadline: for the retry */
};

struct ctr_mgr {
	pthread_mutex_t lock;   /* the table and every container's fields */
	pthread_cond_t created; /* a creation finished (either way) */
	struct container **items;
	size_t n, cap;
	struct record_store *records;
	char *bundles_dir;
	struct sandbox_mgr *sandboxes;
	struct cric_client *imaged, *stored, *monitord;
	struct oci_handler *handlers;
	size_t n_handlers;
	char default_handler[64];
	uint64_t caps_defaults, caps_grantable; /* caps.h */
	struct ctr_seccomp_host seccomp_host;   /* seccomp-profile.h */
	struct ctr_lsm lsm;                     /* lsm.h */
	char **cdi_dirs;                        /* cdi.h */
	struct exit_watch *exits;               /* exitwatch.h; NULL: none (yet) */
	char *ckpt_dir;                         /* checkpoints are assembled here (on disk) */
	char *own_dirs[3];                      /* no checkpoint is written beneath these */
	pthread_t recover_thread;               /* rolls back half-made creations */
	bool recovering;
};

/* container.c */
void container_free(struct container *c);
int ctr_record_save(struct ctr_mgr *m, struct container *c);
int ctr_lookup(struct ctr_mgr *m, const char *id, struct container **ret, struct cric_err *err);
void ctr_put(struct ctr_mgr *m, struct container *c);
const struct oci_handler *ctr_handler(struct ctr_mgr *m, const char *name);
/* Take apart what exists of c (monitor, runc state, rootfs, bundle) and
 * its record; with the op lock held. */
int ctr_teardown(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
		 struct cric_err *err);
void ctr_table_remove(struct ctr_mgr *m, struct container *c);
/* An internal call bounded by cap_ms (service.h's caps, CTR_CALL_CAP_MS);
 * its code mapped to an errno. */
int ctr_call(struct cric_client *c, struct cric_method_ref meth, uint32_t cap_ms,
	     const struct cric_call *call, const ProtobufCMessage *req, ProtobufCMessage **out,
	     struct cric_err *err);

/* Beneath the bundle: a restore's archive content (monitor.h's
 * MONITOR_RESTORE_DIR, where the monitor's runc restore reads it). */
#define CTR_RESTORE_DIR "restore"
/* ctrcheckpoint.c: the checkpoint work dirs a killed runtimed left. */
void ctr_checkpoint_sweep(struct ctr_mgr *m);
/* A creation from a checkpoint archive: its content into <bundle>/restore,
 * *image the image its config.dump names (malloc'd). */
int ctr_restore_unpack(struct container *c, const char *archive, char **image,
		       struct cric_err *err);
/* StartContainer of a restore: the writable layer's changes applied, then
 * the monitor made with `runc restore`; with the op lock held. */
int ctr_restore_start(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
		      struct cric_err *err);
/* container.c: monitord's CreateMonitor for c from its record (its config,
 * pod, handler), with restore set; with the op lock held. */
int ctr_monitor_restore(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
			struct cric_err *err);

/* ctridmap.c: a container of a user-namespaced pod (its uid/gid map)
 * cannot use host files as they are: their owners are outside its map.
 * Each bind mount of spec (but the host's /sys) gets its source mounted
 * id-mapped on <bundle>/idmap/<n>, and the spec that path instead. runc
 * create binds them into the container's mount namespace, which keeps
 * them: ctr_idmap_release() then detaches the host's copies and removes
 * the dir (idempotent; -EBUSY-like error when one stays mounted: then the
 * bundle must not be removed, which would reach through it). */
int ctr_idmap_mounts(const char *bundle, const struct idmap_range *uid,
		     const struct idmap_range *gid, json_t *spec, struct cric_err *err);
int ctr_idmap_release(const char *bundle, struct cric_err *err);

/* ctrlife.c */
/* Ask the monitor whether a running container exited; with the op lock. */
void ctr_refresh(struct ctr_mgr *m, const struct cric_call *call, struct container *c);
int ctr_hook_stop(void *ud, const struct cric_call *call, const char *pod_id, struct cric_err *err);
int ctr_hook_remove(void *ud, const struct cric_call *call, const char *pod_id,
		    struct cric_err *err);
