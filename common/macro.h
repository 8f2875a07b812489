/* Small helpers shared by every daemon: scope cleanup, ownership transfer.
 *
 * Cleanup attributes follow systemd's fd-util.h/alloc-util.h idea: a variable
 * declared _cleanup_free_ is freed when it leaves scope; TAKE_PTR()/TAKE_FD()
 * hand ownership out and leave NULL/-1 behind. Every destructor used here
 * accepts NULL (or -1).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f)   __attribute__((cleanup(f)))

#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _took = (p);                                                         \
		(p) = NULL;                                                                        \
		_took;                                                                             \
	})

#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _took = (fd);                                                                  \
		(fd) = -1;                                                                         \
		_took;                                                                             \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

/* Declare a pointer-cleanup function for a type whose destructor takes T*. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			func(*p);                                                                  \
	}

/* Free a NULL-terminated array of strings. Returns NULL. */
static inline char **strv_free(char **v)
{
	if (v) {
		for (char **s = v; *s; s++)
			free(*s);
		free(v);
	}
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Entries of a NULL-terminated array (NULL: 0). */
static inline size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* True when s is one of v's entries. */
static inline bool strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* A deep copy (NULL: an empty array); NULL on OOM. */
static inline char **strv_copy(char *const *v)
{
	size_t n = strv_len(v);
	char **c = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(v[i])))
			return strv_free(c);
	return c;
}

static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}
