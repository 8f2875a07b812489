/* File helpers: directory creation, bounded reads, atomic state files.
 * All return 0 or a negative errno; nothing is written to outputs on failure. */
#pragma once

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
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

/* The same without the two fsyncs, for volatile state (under the run dir,
 * /run/cric: a tmpfs, gone at a reboot): readers still see the old or the
 * new content, never a mix, and a killed daemon loses nothing (the page
 * cache outlives it); only a crash of the machine could, and it takes the
 * whole directory with it. */
int write_file_volatile(const char *path, const void *data, size_t len, mode_t mode);
int json_save_volatile(const char *path, const json_t *doc, mode_t mode);
/* A JSON array of the strings of v (NULL: []); NULL on OOM. */
json_t *json_from_strv(char *const *v);
/* The string entries of a JSON array (others skipped; not an array: none)
 * as a NULL-terminated array; NULL on OOM. */
char **strv_from_json(const json_t *a);

/* True for the name of a temp file write_file_atomic() left behind when it
 * was interrupted (kill -9 between create and rename): "<name>.tmpXXXXXX". */
bool atomic_temp_name(const char *name);
/* Remove every such temp file directly in dir (what names it in the log).
 * Call at start-up, before anyone writes there. Returns how many went, or
 * -errno when the directory cannot be read. */
int sweep_atomic_temps(const char *dir, const char *what);

/* Load a JSON document of at most max bytes; err filled on parse errors. */
int json_load_path(const char *path, size_t max, json_t **ret, char *err, size_t errlen);

/* One component of a path cric builds from a caller's name (a cgroup, a
 * sysctl): 1..255 of [A-Za-z0-9_.:@-], neither "." nor "..". */
bool path_component_ok(const char *c, size_t len);

/* A clean path: no empty, "." or ".." component, no trailing '/' (but
 * "/" itself), no control character, shorter than max; absolute when
 * absolute is true, else relative. For paths a caller hands us that we
 * later build on (a pod's log_directory, a container's log_path). */
bool path_is_clean(const char *p, bool absolute, size_t max);

/* Join two path parts with exactly one '/'. Returns malloc'd string or NULL. */
char *path_join(const char *a, const char *b);
/* The path of the helper program name installed beside the running
 * executable (/proc/self/exe); "/usr/local/bin/<name>" when that cannot be
 * read. Malloc'd; NULL when out of memory. */
char *path_beside_exe(const char *name);

static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ __attribute__((cleanup(closedirp)))

/* Give path and everything below it (not following symlinks) to uid:gid. */
int chown_tree(const char *path, uid_t uid, gid_t gid);
