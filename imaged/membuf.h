/* A response body kept in memory: grows as libcurl hands it over, always
 * NUL-terminated, never past max bytes (a registry or token server decides
 * how much it sends; we decide how much we keep). */
#pragma once

#include <stddef.h>

struct membuf {
	char *data; /* malloc'd; NULL until the first byte */
	size_t len;
	size_t max;
};

/* Append n bytes. 0; -E2BIG when the body would pass max (nothing is
 * appended); -ENOMEM. */
int membuf_append(struct membuf *b, const void *p, size_t n);
