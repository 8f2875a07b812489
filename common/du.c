#include "du.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/macro.h"

/* ---- a set of (dev, ino): open addressing, linear probing ---- */

struct ino_key {
	uint64_t dev, ino;
};

struct ino_set {
	struct ino_key *slots; /* {0, 0} is empty: no file has dev 0:0 and ino 0 */
	size_t cap;            /* a power of two, or 0 */
	size_t n;
	bool has_zero; /* the key {0, 0} itself, should a file system report it */
};

static uint64_t ino_hash(const struct ino_key *k)
{
	/* splitmix64's finaliser over both words. */
	uint64_t x = k->ino ^ (k->dev * 0x9e3779b97f4a7c15ULL);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static bool ino_empty(const struct ino_key *k)
{
	return k->dev == 0 && k->ino == 0;
}

/* Insert without growing; cap > n. Returns whether k was new. */
static bool ino_put(struct ino_key *slots, size_t cap, const struct ino_key *k)
{
	for (size_t i = ino_hash(k) & (cap - 1);; i = (i + 1) & (cap - 1)) {
		if (ino_empty(&slots[i])) {
			slots[i] = *k;
			return true;
		}
		if (slots[i].dev == k->dev && slots[i].ino == k->ino)
			return false;
	}
}

/* 1: added, 0: already there, -ENOMEM. Load stays under 3/4. */
static int ino_set_add(struct ino_set *s, uint64_t dev, uint64_t ino)
{
	const struct ino_key k = { dev, ino };
	if (ino_empty(&k)) {
		bool added = !s->has_zero;
		s->has_zero = true;
		return added;
	}
	if ((s->n + 1) * 4 > s->cap * 3) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		struct ino_key *n = calloc(ncap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (!ino_empty(&s->slots[i]))
				ino_put(n, ncap, &s->slots[i]);
		free(s->slots);
		s->slots = n;
		s->cap = ncap;
	}
	if (!ino_put(s->slots, s->cap, &k))
		return 0;
	s->n++;
	return 1;
}

/* ---- the walk ---- */

struct walk {
	struct ino_set seen; /* non-directories with more than one link */
	struct du_usage sum;
	dev_t dev; /* the top's file system */
};

/* Count one inode. 0, or -ENOMEM. */
static int count(struct walk *w, const struct stat *st)
{
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		int r = ino_set_add(&w->seen, st->st_dev, st->st_ino);
		if (r <= 0)
			return r;
	}
	w->sum.bytes += (uint64_t)st->st_blocks * 512;
	w->sum.inodes++;
	return 0;
}

static bool dot_or_dotdot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static void close_stack(DIR **stack, size_t depth)
{
	for (size_t i = 0; i < depth; i++)
		closedir(stack[i]);
	free(stack);
}

/* Open the directory name in d (found at depth) for reading into *ret;
 * *ret stays NULL when it is gone or no longer a directory. */
static int open_subdir(DIR *d, const char *name, size_t depth, DIR **ret, struct cric_err *err)
{
	int cfd =
	    openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (cfd < 0 && errno == EPERM) /* O_NOATIME on a file we do not own */
		cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return err_set(err, -errno, "open \"%s\" at depth %zu: %m", name, depth);
	}
	DIR *c = fdopendir(cfd);
	if (!c) {
		int r = err_set(err, -errno, "read \"%s\" at depth %zu: %m", name, depth);
		close(cfd);
		return r;
	}
	*ret = c;
	return 0;
}

/* Push c on the stack of open directories (growing it), or close it. */
static int stack_push(DIR ***stack, size_t *cap, size_t *depth, DIR *c)
{
	if (*depth == *cap) {
		DIR **n = realloc(*stack, *cap * 2 * sizeof(**stack));
		if (!n) {
			closedir(c);
			return -ENOMEM;
		}
		*stack = n;
		*cap *= 2;
	}
	(*stack)[(*depth)++] = c;
	return 0;
}

/* Depth first, one open DIR per level (stack[0] is the top). */
static int walk_tree(struct walk *w, int dir_fd, const char *skip, struct cric_err *err)
{
	/* A description of our own (a dup would share the offset with other
	 * users of dir_fd, e.g. a concurrent walk). */
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, "open the directory: %m");
	DIR *top = fdopendir(fd);
	if (!top) {
		int r = -errno;
		close(fd);
		return err_set(err, r, "read the directory: %s", strerror(-r));
	}
	size_t cap = 64, depth = 1;
	DIR **stack = malloc(cap * sizeof(*stack));
	if (!stack) {
		closedir(top);
		return -ENOMEM;
	}
	stack[0] = top;
	int r = 0;
	while (r == 0 && depth > 0) {
		DIR *d = stack[depth - 1];
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno != 0) {
				r = err_set(err, -errno, "read a directory at depth %zu: %m",
					    depth);
				break;
			}
			closedir(d);
			depth--;
			continue;
		}
		if (dot_or_dotdot(de->d_name) ||
		    (depth == 1 && skip && strcmp(de->d_name, skip) == 0))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) /* removed since it was listed */
				continue;
			r = err_set(err, -errno, "stat \"%s\" at depth %zu: %m", de->d_name, depth);
			break;
		}
		if (st.st_dev != w->dev) /* another file system: not entered, not counted */
			continue;
		if ((r = count(w, &st)) < 0)
			break;
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth >= DU_MAX_DEPTH) {
			r = err_set(err, -ELOOP, "directories nested deeper than %d levels",
				    DU_MAX_DEPTH);
			break;
		}
		DIR *c = NULL;
		if ((r = open_subdir(d, de->d_name, depth, &c, err)) < 0)
			break;
		if (!c) /* gone or replaced */
			continue;
		if ((r = stack_push(&stack, &cap, &depth, c)) < 0)
			break;
	}
	close_stack(stack, depth);
	return r;
}

int du_measure(int dir_fd, const char *skip, struct du_usage *ret, struct cric_err *err)
{
	struct stat st;
	if (fstat(dir_fd, &st) < 0)
		return err_set(err, -errno, "stat the directory: %m");
	if (!S_ISDIR(st.st_mode))
		return err_set(err, -ENOTDIR, "not a directory");
	struct walk w = { .dev = st.st_dev };
	int r = count(&w, &st);
	if (r == 0)
		r = walk_tree(&w, dir_fd, skip, err);
	free(w.seen.slots);
	if (r < 0)
		return r;
	*ret = w.sum;
	return 0;
}
