/* Records of runtimed's objects (pod sandboxes now, containers next): one
 * JSON document per object at <dir>/<64-hex id>.json, written atomically
 * (temp file, fsync, rename, fsync of the directory) before anything of the
 * object is created and after every change, so a runtimed killed at any
 * point finds on restart what to keep and what to roll back. What a killed
 * write left (temp files) is swept when the store opens.
 *
 * The store keeps no state of its own besides its directory: callers
 * serialise writes of one record (each object has its own lock); different
 * records may be written from any threads at once. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

struct record_store;

/* Open (creating it 0700) the directory dir; what names the records in
 * logs ("pod records"). */
int record_store_open(const char *dir, const char *what, struct record_store **ret,
		      struct cric_err *err);
/* Accepts NULL; returns NULL. */
struct record_store *record_store_free(struct record_store *rs);

/* Write id's record (id: a full object id, 64 lowercase hex). */
int record_store_save(struct record_store *rs, const char *id, const json_t *doc);
/* Remove id's record; one that is not there is fine. */
int record_store_delete(struct record_store *rs, const char *id);

/* Every record of at most max_bytes, in no particular order: cb gets each
 * id and its document (borrowed: cb takes a reference to keep it). Files
 * that are not records are skipped; unreadable records are logged and
 * skipped. Returns how many were handed to cb. */
typedef void (*record_fn)(void *userdata, const char *id, json_t *doc);
size_t record_store_load_all(struct record_store *rs, size_t max_bytes, record_fn cb,
			     void *userdata);
