#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

#define MAX_HIERARCHIES 32
#define MAX_DEPTH       32

static char *hier[MAX_HIERARCHIES + 1];
static bool hier_v2[MAX_HIERARCHIES];
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
			hier_v2[n] = strcmp(fstype, "cgroup2") == 0;
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

static int write_str(const char *dir, const char *file, const char *value)
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

/* A new v1 cpuset cgroup has no cpus and mems: take the parent's. */
static void cpuset_inherit(const char *dir)
{
	_cleanup_free_ char *probe = path_join(dir, "cpuset.cpus");
	if (!probe || access(probe, F_OK) < 0)
		return;
	_cleanup_free_ char *parent = strdup(dir);
	if (!parent)
		return;
	*strrchr(parent, '/') = '\0';
	const char *files[] = { "cpuset.cpus", "cpuset.mems" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *mine = path_join(dir, files[i]);
		_cleanup_free_ char *theirs = path_join(parent, files[i]);
		_cleanup_free_ char *cur = NULL, *val = NULL;
		size_t n;
		if (!mine || !theirs || read_file(mine, 4096, &cur, &n) < 0)
			continue;
		if (cur[0] != '\n' && cur[0] != '\0')
			continue;
		if (read_file(theirs, 4096, &val, &n) == 0)
			write_str(dir, files[i], val);
	}
}

/* word is one of list's blank-separated words */
static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
	return false;
}

/* cgroup v2 gives a child only the controllers its parent enabled in
 * cgroup.subtree_control: enable in dir every controller dir has, so the
 * limits written below it find their files (runc does the same for the
 * container's own cgroup). One that cannot be enabled (a parent someone
 * else put processes in: EBUSY) is logged; cgroup_apply then warns about
 * the limit it cannot set. */
static void v2_delegate(const char *dir)
{
	_cleanup_free_ char *cpath = path_join(dir, "cgroup.controllers");
	_cleanup_free_ char *spath = path_join(dir, "cgroup.subtree_control");
	_cleanup_free_ char *have = NULL, *on = NULL;
	size_t n;
	if (!cpath || !spath || read_file(cpath, 4096, &have, &n) < 0 ||
	    read_file(spath, 4096, &on, &n) < 0)
		return;
	for (char *save = NULL, *c = strtok_r(have, " \n", &save); c;
	     c = strtok_r(NULL, " \n", &save)) {
		if (has_word(on, c))
			continue;
		char plus[64];
		snprintf(plus, sizeof(plus), "+%s", c);
		int r = write_str(dir, "cgroup.subtree_control", plus);
		if (r < 0)
			log_warning(
			    "cgroup \"%s\": cannot enable controller %s for its children: %s", dir,
			    c, strerror(-r));
	}
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
			if (hier_v2[i]) {
				*strrchr(dir, '/') = '\0';
				v2_delegate(dir[0] ? dir : "/");
				snprintf(dir, sizeof(dir), "%s%s", h[i], prefix);
			}
			if (mkdir(dir, 0755) == 0) {
				made_here = true;
				cpuset_inherit(dir);
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
	struct {
		const char *file;
		char value[300];
		int group; /* the v1 and v2 files of one limit */
		bool set, done;
	} w[9];
	size_t n = 0;
#define WANT(g, f, cond, ...)                                                                      \
	do {                                                                                       \
		w[n].group = (g);                                                                  \
		w[n].file = (f);                                                                   \
		w[n].set = (cond);                                                                 \
		w[n].done = false;                                                                 \
		snprintf(w[n].value, sizeof(w[n].value), __VA_ARGS__);                             \
		n++;                                                                               \
	} while (0)
	int64_t shares = l->cpu_shares;
	int64_t weight = shares > 0 ? 1 + ((shares < 2 ? 0 : shares - 2) * 9999) / 262142 : 0;
	int64_t period = l->cpu_period > 0 ? l->cpu_period : 100000;
	WANT(0, "cpu.shares", shares > 0, "%" PRId64, shares);
	WANT(0, "cpu.weight", shares > 0, "%" PRId64, weight > 10000 ? 10000 : weight);
	WANT(1, "cpu.cfs_period_us", l->cpu_period > 0, "%" PRId64, period);
	WANT(2, "cpu.cfs_quota_us", l->cpu_quota > 0, "%" PRId64, l->cpu_quota);
	WANT(2, "cpu.max", l->cpu_quota > 0, "%" PRId64 " %" PRId64, l->cpu_quota, period);
	WANT(3, "memory.limit_in_bytes", l->memory_limit > 0, "%" PRId64, l->memory_limit);
	WANT(3, "memory.max", l->memory_limit > 0, "%" PRId64, l->memory_limit);
	WANT(4, "cpuset.cpus", l->cpuset_cpus[0] != '\0', "%s", l->cpuset_cpus);
	WANT(5, "cpuset.mems", l->cpuset_mems[0] != '\0', "%s", l->cpuset_mems);
#undef WANT
	for (size_t i = 0; h[i]; i++) {
		char dir[CGROUP_PATH_MAX * 2];
		snprintf(dir, sizeof(dir), "%s%s", h[i], path);
		for (size_t k = 0; k < n; k++) {
			if (!w[k].set)
				continue;
			int r = write_str(dir, w[k].file, w[k].value);
			if (r == 0)
				w[k].done = true;
			else if (r != -ENOENT)
				return err_set(err, r, "set %s of cgroup \"%s\" to %s: %s",
					       w[k].file, dir, w[k].value, strerror(-r));
		}
	}
	/* A limit no hierarchy took (its controller is not mounted or not
	 * enabled): say so, the pod still runs. */
	for (size_t k = 0; k < n; k++) {
		bool done = false;
		for (size_t j = 0; j < n; j++)
			done |= w[j].group == w[k].group && w[j].done;
		if (w[k].set && !done)
			log_warning("cgroup \"%s\": no hierarchy accepts %s", path, w[k].file);
	}
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
