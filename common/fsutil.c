#include "fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "ids.h"
#include "log.h"

int mkdir_p(const char *path, mode_t mode)
{
	if (!path || !*path)
		return -EINVAL;
	size_t len = strlen(path);
	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	char buf[PATH_MAX];
	memcpy(buf, path, len + 1);
	/* "a/b/" names b: it is the last component and gets mode. */
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';

	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, saved == '\0' ? mode : 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = saved;
		if (saved == '\0')
			break;
	}
	struct stat st;
	if (stat(buf, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	/* O_NONBLOCK: a FIFO (or device) in place of a file must not block the
	 * open; it is refused as not regular below. Regular files ignore it. */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((size_t)st.st_size > max)
		return -EFBIG;

	/* +1 for the NUL, +1 so that a file of exactly its size reaches EOF
	 * without growing (it may still grow while we read, up to max). */
	size_t cap = (size_t)st.st_size + 2, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= max + 2)
				return -EFBIG;
			cap = cap > (max + 2) / 2 ? max + 2 : cap * 2;
			char *nbuf = realloc(buf, cap);
			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	*ret = TAKE_PTR(buf);
	return 0;
}

static int fsync_parent(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	char *slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

#define ATOMIC_TEMP_SUFFIX ".tmpXXXXXX"

bool atomic_temp_name(const char *name)
{
	size_t n = strlen(name), k = strlen(ATOMIC_TEMP_SUFFIX);
	if (n <= k || strncmp(name + n - k, ".tmp", 4) != 0)
		return false;
	/* mkostemp's six characters: letters and digits */
	for (size_t i = n - 6; i < n; i++)
		if (!isalnum((unsigned char)name[i]))
			return false;
	return true;
}

int sweep_atomic_temps(const char *dir, const char *what)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!atomic_temp_name(de->d_name))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			log_info("%s: removed \"%s\", left by an interrupted write", what,
				 de->d_name);
			n++;
		} else if (errno != ENOENT) {
			log_warning("%s: remove \"%s\": %m, ignoring", what, de->d_name);
		}
	}
	return n;
}

static int write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
			      bool durable)
{
	size_t plen = strlen(path);
	_cleanup_free_ char *tmp = malloc(plen + 16);
	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, plen + 16, "%s" ATOMIC_TEMP_SUFFIX, path);

	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = 0;
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return durable ? fsync_parent(path) : 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_file_replace(path, data, len, mode, true);
}

int write_file_volatile(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_file_replace(path, data, len, mode, false);
}

static int json_save(const char *path, const json_t *doc, mode_t mode, bool durable)
{
	_cleanup_free_ char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(s);
	_cleanup_free_ char *line = malloc(n + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	return write_file_replace(path, line, n + 1, mode, durable);
}

int json_save_atomic(const char *path, const json_t *doc, mode_t mode)
{
	return json_save(path, doc, mode, true);
}

int json_save_volatile(const char *path, const json_t *doc, mode_t mode)
{
	return json_save(path, doc, mode, false);
}

int json_load_path(const char *path, size_t max, json_t **ret, char *err, size_t errlen)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = read_file(path, max, &buf, &len);
	if (r < 0) {
		if (err)
			snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		if (err)
			snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column,
				 jerr.text);
		return -EBADMSG;
	}
	*ret = doc;
	return 0;
}

char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	size_t lb = strlen(b);
	char *s = malloc(la + lb + 2);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	size_t n = la;
	if (lb > 0 && !(la == 1 && a[0] == '/'))
		s[n++] = '/';
	memcpy(s + n, b, lb);
	s[n + lb] = '\0';
	return s;
}

bool path_component_ok(const char *c, size_t len)
{
	if (len > 255 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
		return false;
	return token_chars_ok(c, len, "_-.:@");
}

bool path_is_clean(const char *p, bool absolute, size_t max)
{
	size_t len = strlen(p);
	if (len == 0 || len >= max || (p[0] == '/') != absolute)
		return false;
	if (absolute && len == 1)
		return true;
	for (const char *c = absolute ? p + 1 : p;;) {
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
				return false;
		if (!*end)
			return true;
		c = end + 1;
	}
}

json_t *json_from_strv(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

char **strv_from_json(const json_t *a)
{
	char **v = calloc(json_array_size(a) + 1, sizeof(char *));
	for (size_t i = 0, k = 0; v && i < json_array_size(a); i++)
		if (json_is_string(json_array_get(a, i)) &&
		    !(v[k++] = strdup(json_string_value(json_array_get(a, i)))))
			return strv_free(v);
	return v;
}

static int chown_at(int dfd, uid_t uid, gid_t gid, int depth)
{
	if (fchown(dfd, uid, gid) < 0)
		return -errno;
	if (depth > 64)
		return -ELOOP;
	int fd = dup(dfd);
	if (fd < 0)
		return -errno;
	_cleanup_(closedirp) DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub =
			    openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				return -errno;
			int r = chown_at(sub, uid, gid, depth + 1);
			if (r < 0)
				return r;
		} else if (fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
			return -errno;
		}
	}
	return 0;
}

int chown_tree(const char *path, uid_t uid, gid_t gid)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return chown_at(fd, uid, gid, 0);
}

char *path_beside_exe(const char *name)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
	if (!slash)
		return path_join("/usr/local/bin", name);
	*slash = '\0';
	return path_join(exe, name);
}
