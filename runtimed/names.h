/* Names of runtimed's objects (pods now, containers next) and the creations
 * that hold them, so that a create retried by name is answered from the
 * creation in progress or finished, never with "name is reserved".
 *
 * The kubelet gives RunPodSandbox (and CreateContainer) a deadline, and when
 * it passes retries the same pod or container by name (with a request that
 * is not byte-identical). A creation keeps going past its caller's
 * deadline; the retry finds its name here:
 *   - free: the retry's caller creates (name_reserve() returns NAME_NEW);
 *   - a creation in progress: the retry waits for it, bounded by its own
 *     deadline (-ETIMEDOUT: the kubelet retries again);
 *   - made: the retry answers with the holder's id (NAME_DONE);
 *   - a creation that failed and could not be undone: refused (NAME_HELD),
 *     until whatever removes the broken object releases the name.
 * A creation that fails and is rolled back frees the name: a waiting or
 * later retry creates anew.
 *
 * Thread-safe; name_reserve() blocks, the others do not. Names are opaque
 * strings (the caller builds the key, e.g. name_namespace_uid_attempt); ids
 * are the objects' 64-hex ids.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define NAME_KEY_MAX 600

struct name_table;

enum name_reservation {
	NAME_NEW,  /* reserved for the caller's id: end with name_created() */
	NAME_DONE, /* made by holder: answer with it */
	NAME_HELD, /* held by holder, whose creation failed: refuse */
};

int name_table_new(struct name_table **ret);
/* Accepts NULL; returns NULL. No call may be waiting. */
struct name_table *name_table_free(struct name_table *t);

/* Reserve name for id, or find who holds it. deadline_ns (absolute,
 * CLOCK_REALTIME; 0 for none) bounds the wait for a creation in progress:
 * -ETIMEDOUT when it passes. holder gets the holder's id (NAME_DONE,
 * NAME_HELD, and -ETIMEDOUT: the creation waited for). -ENOMEM,
 * -ENAMETOOLONG. */
int name_reserve(struct name_table *t, const char *name, const char *id, int64_t deadline_ns,
		 enum name_reservation *ret, char holder[65]);
/* The creation of id under name ended: made (ok), or failed and rolled
 * back (!ok, !kept: the name is free), or failed and kept (!ok, kept: the
 * broken object holds the name until name_release()). Wakes the waiters. */
void name_created(struct name_table *t, const char *name, const char *id, bool ok, bool kept);
/* The object id holding name is gone: the name is free. A name held by
 * another id is left alone. */
void name_release(struct name_table *t, const char *name, const char *id);
/* At start-up: name is held by id, made (done) or not (broken). */
int name_hold(struct name_table *t, const char *name, const char *id, bool done);
