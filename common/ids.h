/* Identifiers: random hex ids for sandboxes, containers and requests, and
 * validation of ids arriving from other processes (crun's validate_id). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Fill buf (size >= 2*nbytes+1) with 2*nbytes random lowercase hex chars. */
int id_random_hex(char *buf, size_t bufsize, size_t nbytes);

/* A full object id: exactly 64 lowercase hex characters. */
bool id_is_valid(const char *id);
/* A request id or id prefix: 1..64 chars of [0-9a-zA-Z_.-], no leading '.'. */
bool id_is_safe_token(const char *s, size_t max);
