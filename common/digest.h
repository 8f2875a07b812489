/* SHA-256 digests in the "sha256:<64 hex>" form images use, and the OCI
 * image spec's chain id of a layer (imaged decides which layers it needs by
 * chain id, stored files them by it: one formula for both). */
#pragma once

#include <stddef.h>

#define DIGEST_BUF 72 /* "sha256:" + 64 hex + NUL */

/* "sha256:<hex>" of len bytes of data. */
void digest_sha256(const void *data, size_t len, char out[DIGEST_BUF]);

/* chain(base) = diff_id; chain(n) = sha256(chain(n-1) + " " + diff_id(n)).
 * parent NULL or "" for a base layer. */
void digest_chain_id(const char *parent, const char *diff_id, char out[DIGEST_BUF]);
