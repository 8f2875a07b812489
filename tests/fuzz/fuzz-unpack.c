/* Fuzz layer import (stored/unpack.c): arbitrary bytes as a layer, unpacked
 * (devices disallowed) into a fresh <base>/layer per input, next to a canary
 * tree <base>/canary. After each input, whatever the outcome:
 *  - the canary is unchanged (a listing of types, modes, owners, sizes,
 *    mtimes, inodes, contents and link targets, compared with the one taken
 *    at start-up), and <base> holds nothing but canary/ and layer/;
 *  - the contract holds: 0 with a well-formed diff_id, or a negative errno
 *    with a one-line printable message;
 *  - unpack_remove_tree() removes the layer dir, leaving <base> as it was.
 * Run as root to reach owners, whiteouts and xattrs (as a user those fail
 * early, which is still a valid input). Seeds: small tar/tgz/tar.zst layers
 * in tests/fuzz/corpus/fuzz-unpack/, some of them hostile ("../canary",
 * symlinks to ../canary, whiteouts through symlinks). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stored/unpack.h"

static char base[PATH_MAX];
static int base_fd = -1;
static char *canary_ref;

static char *snap;
static size_t snap_len, snap_cap;

static void snap_add(const char *s)
{
	size_t n = strlen(s);
	if (snap_len + n + 1 > snap_cap) {
		snap_cap = (snap_len + n + 1) * 2;
		snap = realloc(snap, snap_cap);
		if (!snap)
			abort();
	}
	memcpy(snap + snap_len, s, n + 1);
	snap_len += n;
}

static int snap_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	char line[PATH_MAX + 256], extra[PATH_MAX + 8] = "";
	if (S_ISREG(st->st_mode)) {
		uint64_t h = 1469598103934665603ULL;
		int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		unsigned char buf[4096];
		ssize_t n;
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < n; i++)
				h = (h ^ buf[i]) * 1099511628211ULL;
		if (fd >= 0)
			close(fd);
		snprintf(extra, sizeof(extra), "%016llx", (unsigned long long)h);
	} else if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlink(p, extra, sizeof(extra) - 1);
		extra[n > 0 ? n : 0] = '\0';
	}
	snprintf(line, sizeof(line), "%s %o %u:%u %lld %lld.%ld %llu %s\n", p, st->st_mode,
		 st->st_uid, st->st_gid, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
		 st->st_mtim.tv_nsec, (unsigned long long)st->st_ino, extra);
	snap_add(line);
	return 0;
}

/* The canary's listing plus the names in <base> other than "layer". */
static char *snapshot(void)
{
	char p[PATH_MAX + 16];
	snap = NULL;
	snap_len = snap_cap = 0;
	snap_add("");
	snprintf(p, sizeof(p), "%s/canary", base);
	if (nftw(p, snap_one, 16, FTW_PHYS) != 0)
		abort();
	int fd = openat(base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d)
		abort();
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "layer")) {
			snap_add("top: ");
			snap_add(de->d_name);
			snap_add("\n");
		}
	closedir(d);
	char *s = snap;
	snap = NULL;
	return s;
}

static void put(const char *rel, const char *content, mode_t mode)
{
	int fd = openat(base_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content) ||
	    fchmod(fd, mode) < 0)
		abort();
	close(fd);
}

/* At a normal exit, remove <base> (after a crash it stays for inspection). */
static void cleanup(void)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", base);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return;
	*slash = '\0';
	int fd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)unpack_remove_tree(fd, slash + 1, NULL);
		close(fd);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof(base), "%s/cric-fuzz-unpack-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base))
		abort();
	base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (base_fd < 0 || mkdirat(base_fd, "canary", 0755) < 0 ||
	    mkdirat(base_fd, "canary/secret", 0700) < 0 || mkdirat(base_fd, "canary/sub", 0755) < 0)
		abort();
	atexit(cleanup);
	put("canary/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0644);
	put("canary/secret/key", "k3y", 0600);
	put("canary/sub/file", "sub", 0640);
	if (symlinkat("passwd", base_fd, "canary/link") < 0 ||
	    mkfifoat(base_fd, "canary/fifo", 0600) < 0)
		abort();
	canary_ref = snapshot();
	fprintf(stderr, "fuzz-unpack: layers unpack under %s\n", base);
	return 0;
}

static void check_message(const char *msg)
{
	if (!memchr(msg, '\0', sizeof(((struct cric_err *)0)->msg)) || !msg[0])
		abort();
	for (const char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int in = memfd_create("layer", MFD_CLOEXEC);
	if (in < 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t n = write(in, data + off, size - off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	if (lseek(in, 0, SEEK_SET) != 0 || mkdirat(base_fd, "layer", 0755) < 0)
		abort();
	int layer_fd = openat(base_fd, "layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (layer_fd < 0)
		abort();

	struct unpack_opts o = { .max_entries = 2000, .max_bytes = 16 << 20 };
	struct unpack_result res, sentinel;
	struct cric_err err;
	memset(&res, 0x5a, sizeof(res));
	memcpy(&sentinel, &res, sizeof(res));
	memset(err.msg, 0, sizeof(err.msg));
	int r = unpack_layer(in, layer_fd, &o, &res, &err);
	close(in);
	close(layer_fd);
	if (r == 0) {
		if (blob_digest_check(res.diff_id, NULL) != 0 || res.entries > o.max_entries ||
		    res.tar_bytes > o.max_bytes || res.tar_bytes < 512)
			abort();
	} else {
		if (r >= 0 || memcmp(&res, &sentinel, sizeof(res)) != 0)
			abort();
		check_message(err.msg);
	}

	/* Nothing outside the layer dir changed. */
	char *now = snapshot();
	if (strcmp(now, canary_ref) != 0) {
		fprintf(stderr, "canary changed (r=%d %s):\n--- before\n%s--- after\n%s", r,
			r ? err.msg : "", canary_ref, now);
		abort();
	}
	free(now);

	/* And the layer dir goes away cleanly. */
	if (unpack_remove_tree(base_fd, "layer", &err) != 0) {
		fprintf(stderr, "remove: %s\n", err.msg);
		abort();
	}
	now = snapshot();
	if (strcmp(now, canary_ref) != 0)
		abort();
	free(now);
	return 0;
}
