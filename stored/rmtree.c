/* Safe recursive removal; see rmtree.h. */
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "stored/unpack-int.h"

struct rm_frame {
	dev_t dev;
	ino_t ino;
	char *name;     /* in the parent frame's directory */
	char **subdirs; /* still to visit */
	size_t n, i;
};

static void rm_frame_done(struct rm_frame *f)
{
	free(f->name);
	for (size_t i = f->i; i < f->n; i++)
		free(f->subdirs[i]);
	free(f->subdirs);
	memset(f, 0, sizeof(*f));
}

/* Unlink every non-directory of fd; collect the names of its directories. */
static int rm_scan(int fd, struct rm_frame *f)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		int r = -errno;
		close(dfd);
		return r;
	}
	int r = 0;
	size_t cap = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		bool is_dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				r = -errno;
				break;
			}
			is_dir = S_ISDIR(st.st_mode);
		}
		if (!is_dir) {
			if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
				r = -errno;
				break;
			}
			continue;
		}
		if (f->n == cap) {
			cap = cap ? cap * 2 : 8;
			char **v = realloc(f->subdirs, cap * sizeof(*v));
			if (!v) {
				r = -ENOMEM;
				break;
			}
			f->subdirs = v;
		}
		f->subdirs[f->n] = strdup(de->d_name);
		if (!f->subdirs[f->n]) {
			r = -ENOMEM;
			break;
		}
		f->n++;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

struct rm_stack {
	struct rm_frame *v;
	size_t n, cap;
};

static void rm_stack_done(struct rm_stack *s)
{
	for (size_t i = 0; i < s->n; i++)
		rm_frame_done(&s->v[i]);
	free(s->v);
}

static int rm_push(struct rm_stack *s, int fd, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct rm_frame *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	struct rm_frame *f = &s->v[s->n];
	memset(f, 0, sizeof(*f));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->name = strdup(name);
	if (!f->name)
		return -ENOMEM;
	s->n++;
	return rm_scan(fd, f);
}

/* Walk down one directory at a time and back up through ".", checked against
 * the dev/ino remembered on the way down: one or two fds at any depth. */
int rmtree_at(int dir_fd, const char *name)
{
	struct stat st;
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dir_fd, name, 0) < 0 ? -errno : 0;

	_cleanup_(rm_stack_done) struct rm_stack s = { 0 };
	_cleanup_close_ int cur = openat2_strict(dir_fd, name, O_RDONLY | O_DIRECTORY);
	if (cur < 0)
		return cur;
	int r = rm_push(&s, cur, name);
	while (r == 0) {
		struct rm_frame *f = &s.v[s.n - 1];
		if (f->i < f->n) {
			_cleanup_free_ char *sub = f->subdirs[f->i++];
			int child = openat2_strict(cur, sub, O_RDONLY | O_DIRECTORY);
			if (child == -ENOENT)
				continue;
			if (child == -ENOTDIR || child == -ELOOP) { /* replaced meanwhile */
				if (unlinkat(cur, sub, 0) < 0 && errno != ENOENT)
					r = -errno;
				continue;
			}
			if (child < 0) {
				r = child; /* -EXDEV: a mount point, left alone */
				break;
			}
			closep(&cur);
			cur = child;
			r = rm_push(&s, cur, sub);
			continue;
		}
		if (s.n == 1)
			break;
		_cleanup_close_ int up =
		    openat(cur, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (up < 0) {
			r = -errno;
			break;
		}
		struct stat ust;
		if (fstat(up, &ust) < 0) {
			r = -errno;
			break;
		}
		const struct rm_frame *parent = &s.v[s.n - 2];
		if (ust.st_dev != parent->dev || ust.st_ino != parent->ino) {
			r = -ESTALE; /* moved while we walked it */
			break;
		}
		if (unlinkat(up, f->name, AT_REMOVEDIR) < 0) {
			r = -errno;
			break;
		}
		rm_frame_done(f);
		s.n--;
		closep(&cur);
		cur = TAKE_FD(up);
	}
	if (r < 0)
		return r;
	closep(&cur);
	cur = -1;
	return unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}
