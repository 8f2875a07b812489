/* The container's user: /etc/passwd and /etc/group parsed (pure:
 * ctr_user_lookup, ctrplan.h) and read beneath the rootfs without ever
 * leaving it (ctr_user_read, container.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "container.h"
#include "ctrplan.h"

#define ETC_FILE_MAX (4 * 1024 * 1024)

static bool parse_num(const char *s, uint32_t *v)
{
	if (!*s || strlen(s) > 10 || strspn(s, "0123456789") != strlen(s))
		return false;
	unsigned long x = strtoul(s, NULL, 10);
	if (x >= UINT32_MAX)
		return false;
	*v = (uint32_t)x;
	return true;
}

/* Split one line into up to n ':' fields in place; how many. */
static size_t fields(char *line, char **f, size_t n)
{
	size_t k = 0;
	f[k++] = line;
	for (char *p = line; *p && k < n; p++)
		if (*p == ':') {
			*p = '\0';
			f[k++] = p + 1;
		}
	return k;
}

/* Walk the lines of text (a copy), calling fn on each line's fields. */
typedef bool (*line_fn)(char **f, size_t n, void *ud);
static int each_line(const char *text, size_t nf, line_fn fn, void *ud)
{
	if (!text)
		return 0;
	_cleanup_free_ char *copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	char *save = NULL;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *f[8];
		if (*l == '#' || *l == '+' || *l == '-')
			continue;
		size_t n = fields(l, f, nf);
		if (n == nf && fn(f, n, ud))
			return 1;
	}
	return 0;
}

struct pw_find {
	const struct ctr_user_spec *spec;
	uint32_t uid, gid;
	char name[256], home[256];
};

static bool pw_match(char **f, size_t n, void *ud)
{
	(void)n;
	struct pw_find *p = ud;
	uint32_t uid, gid;
	if (!parse_num(f[2], &uid) || !parse_num(f[3], &gid))
		return false;
	if (p->spec->has_uid ? uid != p->spec->uid : strcmp(f[0], p->spec->name) != 0)
		return false;
	p->uid = uid;
	p->gid = gid;
	snprintf(p->name, sizeof(p->name), "%s", f[0]);
	snprintf(p->home, sizeof(p->home), "%s", f[5]);
	return true;
}

struct gr_find {
	const char *name; /* a group by name */
	uint32_t gid;
	const char *member; /* or every group listing member */
	struct ctr_user *u;
};

static bool gr_match(char **f, size_t n, void *ud)
{
	(void)n;
	struct gr_find *g = ud;
	uint32_t gid;
	if (!parse_num(f[2], &gid))
		return false;
	if (g->name) {
		if (strcmp(f[0], g->name) != 0)
			return false;
		g->gid = gid;
		return true;
	}
	char *save = NULL;
	for (char *m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
		if (strcmp(m, g->member) == 0 && gid != g->u->gid &&
		    g->u->n_groups < CTR_MAX_GROUPS) {
			g->u->groups[g->u->n_groups++] = gid;
			break;
		}
	return false;
}

int ctr_user_lookup(const struct ctr_user_spec *spec, const char *passwd, const char *group,
		    struct ctr_user *ret, struct cric_err *err)
{
	struct ctr_user u = { 0 };
	struct pw_find p = { .spec = spec };
	int found = each_line(passwd, 7, pw_match, &p);
	if (found < 0)
		return found;
	if (!found && !spec->has_uid)
		return err_set(err, -EINVAL, "user \"%.80s\" not found in the image's /etc/passwd",
			       spec->name);
	/* A uid passwd does not know runs with gid 0, as with runc. */
	u.uid = found ? p.uid : spec->uid;
	u.gid = found ? p.gid : 0;
	snprintf(u.home, sizeof(u.home), "%s", found ? p.home : "");
	if (spec->has_gid) {
		u.gid = spec->gid;
	} else if (spec->group[0]) {
		struct gr_find g = { .name = spec->group };
		int r = each_line(group, 4, gr_match, &g);
		if (r < 0)
			return r;
		if (!r)
			return err_set(err, -EINVAL,
				       "group \"%.80s\" not found in the image's /etc/group",
				       spec->group);
		u.gid = g.gid;
	}
	if (found && p.name[0]) {
		struct gr_find g = { .member = p.name, .u = &u };
		int r = each_line(group, 4, gr_match, &g);
		if (r < 0)
			return r;
	}
	*ret = u;
	return 0;
}

/* Read a file beneath root (RESOLVE_IN_ROOT: absolute links and ".." stay
 * inside it); a missing file is NULL, not an error. */
static int read_in_root(int rootfd, const char *path, char **ret)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	*ret = NULL;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (st.st_size > ETC_FILE_MAX)
		return -EFBIG;
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	size_t len = 0;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

int ctr_user_read(const char *rootfs, const struct ctr_user_spec *spec, struct ctr_user *ret,
		  struct cric_err *err)
{
	_cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_set(err, -errno, "open the rootfs \"%s\": %s", rootfs, strerror(errno));
	_cleanup_free_ char *passwd = NULL, *group = NULL;
	int r = read_in_root(rootfd, "/etc/passwd", &passwd);
	if (r < 0)
		return err_set(err, r, "read the image's /etc/passwd: %s", strerror(-r));
	r = read_in_root(rootfd, "/etc/group", &group);
	if (r < 0)
		return err_set(err, r, "read the image's /etc/group: %s", strerror(-r));
	return ctr_user_lookup(spec, passwd, group, ret, err);
}
