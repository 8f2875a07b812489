#include "membuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int membuf_append(struct membuf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -E2BIG;
	char *d = realloc(b->data, b->len + n + 1);
	if (!d)
		return -ENOMEM;
	memcpy(d + b->len, p, n);
	b->data = d;
	b->len += n;
	d[b->len] = '\0';
	return 0;
}
