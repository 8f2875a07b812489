#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup-ops.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

#define MAX_HIERARCHIES 32
#define MAX_DEPTH       32

/* The mounted hierarchies and the version behind each (read once). */
static char *hier[MAX_HIERARCHIES + 1];
static const struct cgroup_ops *hier_ops[MAX_HIERARCHIES];
static pthread_once_t hier_once = PTHREAD_ONCE_INIT;

/* mountinfo escapes blanks as \040 etc. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static void read_hierarchies(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	char line[4096];
	size_t n = 0;
	while (n < MAX_HIERARCHIES && fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype src superopts */
		char *sep = strstr(line, " - ");
		if (!sep)
			continue;
		char fstype[32];
		if (sscanf(sep + 3, "%31s", fstype) != 1 ||
		    (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0))
			continue;
		char mp[2048];
		if (sscanf(line, "%*s %*s %*s %*s %2047s", mp) != 1)
			continue;
		unescape(mp);
		bool dup = false;
		for (size_t i = 0; i < n; i++)
			dup |= strcmp(hier[i], mp) == 0;
		if (!dup && (hier[n] = strdup(mp))) {
			hier_ops[n] =
			    strcmp(fstype, "cgroup2") == 0 ? &cgroup_v2_ops : &cgroup_v1_ops;
			n++;
		}
	}
	fclose(f);
}

char *const *cgroup_hierarchies(void)
{
	pthread_once(&hier_once, read_hierarchies);
	return hier;
}

/* "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice" (systemd.slice(5)). */
static int expand_slice(const char *slice, char *out, size_t size, struct cric_err *err)
{
	size_t n = strlen(slice);
	const size_t sfx = strlen(".slice");
	if (n <= sfx || strcmp(slice + n - sfx, ".slice") != 0 || strchr(slice, '/'))
		return err_set(
		    err, -EINVAL,
		    "cgroup_parent \"%s\" is not a systemd slice name (\"name.slice\", the "
		    "systemd cgroup driver is configured)",
		    slice);
	size_t base = n - sfx;
	if (!path_component_ok(slice, n) || slice[0] == '-' || slice[base - 1] == '-' ||
	    strstr(slice, "--"))
		return err_set(err, -EINVAL, "invalid slice name \"%s\"", slice);
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i <= base; i++) {
		if (i < base && slice[i] != '-')
			continue;
		/* prefix slice[0..i) + ".slice" */
		int w = snprintf(out + o, size - o, "/%.*s.slice", (int)i, slice);
		if (w < 0 || (size_t)w >= size - o)
			return err_set(err, -ENAMETOOLONG, "cgroup_parent \"%s\" is too long",
				       slice);
		o += (size_t)w;
	}
	return 0;
}

int cgroup_resolve_parent(const char *driver, const char *parent, char *out, size_t size,
			  struct cric_err *err)
{
	if (strcmp(driver, "systemd") == 0)
		return expand_slice(parent, out, size, err);
	const char *p = parent;
	while (*p == '/')
		p++;
	if (!*p)
		return err_set(err, -EINVAL, "cgroup_parent \"%s\" names the root cgroup", parent);
	size_t o = 0, depth = 0;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 && !end)
			break; /* trailing '/' */
		if (!path_component_ok(p, len) || ++depth > MAX_DEPTH)
			return err_set(err, -EINVAL, "invalid cgroup_parent \"%s\"", parent);
		if (o + len + 2 > size)
			return err_set(err, -ENAMETOOLONG, "cgroup_parent \"%s\" is too long",
				       parent);
		out[o++] = '/';
		memcpy(out + o, p, len);
		o += len;
		if (!end)
			break;
		p = end + 1;
	}
	out[o] = '\0';
	return 0;
}

void cgroup_write_add(struct cgroup_write *w, size_t *n, size_t max, enum cgroup_limit limit,
		      const char *file, const char *fmt, ...)
{
	if (*n >= max)
		return;
	w[*n].limit = limit;
	w[*n].file = file;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w[*n].value, sizeof(w[*n].value), fmt, ap);
	va_end(ap);
	(*n)++;
}

void cgroup_cpuset_writes(const struct cgroup_limits *l, struct cgroup_write *w, size_t *n,
			  size_t max)
{
	if (l->cpuset_cpus[0])
		cgroup_write_add(w, n, max, CGROUP_LIMIT_CPUSET_CPUS, "cpuset.cpus", "%s",
				 l->cpuset_cpus);
	if (l->cpuset_mems[0])
		cgroup_write_add(w, n, max, CGROUP_LIMIT_CPUSET_MEMS, "cpuset.mems", "%s",
				 l->cpuset_mems);
}

int cgroup_write_file(const char *dir, const char *file, const char *value)
{
	_cleanup_free_ char *path = path_join(dir, file);
	if (!path)
		return -ENOMEM;
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return negative_errno();
	size_t len = strlen(value);
	if (write(fd, value, len) != (ssize_t)len)
		return negative_errno();
	return 0;
}

int cgroup_create(const char *path, char ***created, struct cric_err *err)
{
	char *const *h = cgroup_hierarchies();
	if (!h[0])
		return err_set(err, -ENOENT, "no cgroup hierarchy is mounted");
	_cleanup_strv_free_ char **made = calloc(MAX_DEPTH + 1, sizeof(char *));
	if (!made)
		return -ENOMEM;
	size_t nmade = 0;
	char prefix[CGROUP_PATH_MAX];
	for (const char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		size_t len = (size_t)(p - path);
		if (len >= sizeof(prefix))
			return err_set(err, -ENAMETOOLONG, "cgroup path too long");
		memcpy(prefix, path, len);
		prefix[len] = '\0';
		bool made_here = false;
		for (size_t i = 0; h[i]; i++) {
			char dir[CGROUP_PATH_MAX * 2];
			snprintf(dir, sizeof(dir), "%s%s", h[i], prefix);
			*strrchr(dir, '/') = '\0';
			hier_ops[i]->prepare_parent(dir[0] ? dir : "/");
			snprintf(dir, sizeof(dir), "%s%s", h[i], prefix);
			if (mkdir(dir, 0755) == 0) {
				made_here = true;
				hier_ops[i]->created(dir);
			} else if (errno != EEXIST) {
				int r = err_set(err, negative_errno(), "create cgroup \"%s\": %s",
						dir, strerror(errno));
				if (made_here && nmade < MAX_DEPTH)
					made[nmade++] = strdup(prefix);
				cgroup_remove_created(made, NULL);
				return r;
			}
		}
		if (made_here && nmade < MAX_DEPTH && !(made[nmade++] = strdup(prefix))) {
			cgroup_remove_created(made, NULL);
			return -ENOMEM;
		}
		if (*p == '\0')
			break;
	}
	*created = TAKE_PTR(made);
	return 0;
}

int cgroup_apply(const char *path, const struct cgroup_limits *l, struct cric_err *err)
{
	char *const *h = cgroup_hierarchies();
	static const char *const names[CGROUP_LIMIT_COUNT] = {
		[CGROUP_LIMIT_CPU_SHARES] = "the cpu shares",
		[CGROUP_LIMIT_CPU_PERIOD] = "the cpu period",
		[CGROUP_LIMIT_CPU_QUOTA] = "the cpu quota",
		[CGROUP_LIMIT_MEMORY] = "the memory limit",
		[CGROUP_LIMIT_CPUSET_CPUS] = "cpuset cpus",
		[CGROUP_LIMIT_CPUSET_MEMS] = "cpuset mems",
	};
	const bool wanted[CGROUP_LIMIT_COUNT] = {
		[CGROUP_LIMIT_CPU_SHARES] = l->cpu_shares > 0,
		[CGROUP_LIMIT_CPU_PERIOD] = l->cpu_period > 0,
		[CGROUP_LIMIT_CPU_QUOTA] = l->cpu_quota > 0,
		[CGROUP_LIMIT_MEMORY] = l->memory_limit > 0,
		[CGROUP_LIMIT_CPUSET_CPUS] = l->cpuset_cpus[0] != '\0',
		[CGROUP_LIMIT_CPUSET_MEMS] = l->cpuset_mems[0] != '\0',
	};
	bool done[CGROUP_LIMIT_COUNT] = { false };
	for (size_t i = 0; h[i]; i++) {
		struct cgroup_write w[CGROUP_MAX_WRITES];
		size_t n = hier_ops[i]->limit_files(l, w, ARRAY_SIZE(w));
		char dir[CGROUP_PATH_MAX * 2];
		snprintf(dir, sizeof(dir), "%s%s", h[i], path);
		for (size_t k = 0; k < n; k++) {
			int r = cgroup_write_file(dir, w[k].file, w[k].value);
			if (r == 0)
				done[w[k].limit] = true;
			else if (r != -ENOENT) /* that controller is not in this hierarchy */
				return err_set(err, r, "set %s of cgroup \"%s\" to %s: %s",
					       w[k].file, dir, w[k].value, strerror(-r));
		}
	}
	/* A limit no hierarchy took (its controller is not mounted or not
	 * enabled): say so, the pod still runs. */
	for (size_t k = 0; k < CGROUP_LIMIT_COUNT; k++)
		if (wanted[k] && !done[k])
			log_warning("cgroup \"%s\": no hierarchy accepts %s", path, names[k]);
	return 0;
}

int cgroup_remove_created(char *const *created, struct cric_err *err)
{
	if (!created)
		return 0;
	char *const *h = cgroup_hierarchies();
	size_t n = 0;
	while (created[n])
		n++;
	while (n-- > 0) {
		bool busy = false;
		for (size_t i = 0; h[i]; i++) {
			char dir[CGROUP_PATH_MAX * 2];
			snprintf(dir, sizeof(dir), "%s%s", h[i], created[n]);
			if (rmdir(dir) == 0 || errno == ENOENT)
				continue;
			if (errno == EBUSY || errno == ENOTEMPTY) {
				busy = true;
				continue;
			}
			return err_set(err, negative_errno(), "remove cgroup \"%s\": %s", dir,
				       strerror(errno));
		}
		if (busy)
			break; /* its ancestors are not empty either */
	}
	return 0;
}

bool cgroup_exists(const char *path)
{
	char *const *h = cgroup_hierarchies();
	if (!h[0])
		return false;
	char dir[CGROUP_PATH_MAX * 2];
	snprintf(dir, sizeof(dir), "%s%s", h[0], path);
	struct stat st;
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}
