/* File helpers: directory creation, bounded reads, atomic state files.
 * All return 0 or a negative errno; nothing is written to outputs on failure. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: missing parents are created 0755, the last component with mode. */
int mkdir_p(const char *path, mode_t mode);

/* Read a whole regular file of at most max bytes into a NUL-terminated
 * buffer. -EFBIG if larger. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Replace path atomically: write a temp file beside it, fsync, rename over
 * path, fsync the directory. Readers see the old or the new content, never a
 * mix, even across a crash. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Same for a JSON document (compact, sorted keys, trailing newline). */
int json_save_atomic(const char *path, const json_t *doc, mode_t mode);
/* Load a JSON document of at most max bytes; err filled on parse errors. */
int json_load_path(const char *path, size_t max, json_t **ret, char *err, size_t errlen);

/* Join two path parts with exactly one '/'. Returns malloc'd string or NULL. */
char *path_join(const char *a, const char *b);
