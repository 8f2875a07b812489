/* Identifiers: random hex ids for sandboxes, containers and requests, and
 * validation of ids arriving from other processes (crun's validate_id). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* The kubelet's pod metadata limits (and the container name's). */
#define POD_NAME_MAX      253
#define POD_NAMESPACE_MAX 63
#define POD_UID_MAX       128

/* len bytes from the kernel's random source (getrandom(2)); 0 or -errno. */
int random_bytes(void *buf, size_t len);
/* Fill buf (size >= 2*nbytes+1) with 2*nbytes random lowercase hex chars. */
int id_random_hex(char *buf, size_t bufsize, size_t nbytes);

/* A full object id: exactly 64 lowercase hex characters. */
bool id_is_valid(const char *id);
/* A request id or id prefix: 1..max chars of [0-9a-zA-Z_.-], no leading '.'. */
bool id_is_safe_token(const char *s, size_t max);

/* The n bytes at s are 1..n alphanumerics or characters of extra (n == 0
 * is false). The one character-class check the validators share. */
bool token_chars_ok(const char *s, size_t n, const char *extra);

/* A Kubernetes name as cric takes it (pod name, namespace, uid, container
 * name): 1..max of [A-Za-z0-9._-], starting with a letter or digit. */
bool k8s_name_is_valid(const char *s, size_t max);

/* A pod's name, namespace and uid; err names the field (after prefix,
 * e.g. "config.metadata."). -EINVAL or 0. */
int pod_metadata_validate(const char *name, const char *namespace_, const char *uid,
			  const char *prefix, struct cric_err *err);

/* Finding an object by id or unique id prefix (as crictl and the kubelet
 * may give them), over a table the caller walks under its own lock:
 *
 *	struct id_match im;
 *	if (id_match_begin(&im, "container", id, err) < 0) return ...;
 *	for (i...) if (visible(i) && id_match_step(&im, items[i]->id, i)) break;
 *	(take a reference on items[im.index] when im.matches == 1)
 *	r = id_match_end(&im, err); // 0, -ENOENT or -EINVAL (ambiguous)
 */
struct id_match {
	const char *what; /* "container", "pod sandbox": for messages */
	const char *want;
	size_t len;
	size_t index; /* of the match, when matches == 1 */
	int matches;
};
/* -EINVAL (empty or unsafe id) or 0. */
int id_match_begin(struct id_match *m, const char *what, const char *id, struct cric_err *err);
/* Offer item i's id; true when it is the full id (stop walking). */
bool id_match_step(struct id_match *m, const char *id, size_t i);
int id_match_end(const struct id_match *m, struct cric_err *err);
