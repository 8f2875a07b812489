/* Standard base64 (RFC 4648, with padding), on nettle's codec (not OpenSSL's: a daemon
 * that needs nothing else from libcrypto does not map it). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* NUL-terminated encoding of len bytes; NULL on OOM or when len is too
 * large for the codec (over 1 GiB). */
char *base64_encode(const void *data, size_t len);

/* Decode s (a multiple of 4 characters, padded) into *ret, malloc'd and
 * NUL-terminated beyond *ret_len (so text can be used as a string; the
 * caller wipes secrets before freeing). -EINVAL when s is not base64 or
 * decodes to more than max bytes, -ENOMEM. */
int base64_decode(const char *s, size_t max, uint8_t **ret, size_t *ret_len);
