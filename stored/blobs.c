#include "blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/log.h"

#define ALGO_DIR    "sha256"
#define TMP_PREFIX  ".tmp-"
#define HEX_LEN     64
#define COPY_BUF_SZ (256 * 1024)

struct blob_store {
	int dir_fd; /* <root>/sha256 */
	uint64_t max_blob_size;
};

/* ---- SHA-256 ---- */

/* Nettle's, not OpenSSL's: as fast here (SHA-NI either way), and stored
 * then does not map libcrypto, whose relocated data alone costs each
 * process that loads it about 400 KiB of private memory. */
struct blob_hash {
	struct sha256_ctx ctx;
};

struct blob_hash *blob_hash_new(void)
{
	struct blob_hash *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	sha256_init(&h->ctx);
	return h;
}

int blob_hash_update(struct blob_hash *h, const void *data, size_t len)
{
	sha256_update(&h->ctx, len, data);
	return 0;
}

int blob_hash_final(struct blob_hash *h, char out[BLOB_DIGEST_BUF])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[SHA256_DIGEST_SIZE];
	_Static_assert(SHA256_DIGEST_SIZE == HEX_LEN / 2, "a sha256 digest is HEX_LEN hex digits");
	sha256_digest(&h->ctx, sizeof(md), md);
	memcpy(out, BLOB_DIGEST_PREFIX, strlen(BLOB_DIGEST_PREFIX));
	char *p = out + strlen(BLOB_DIGEST_PREFIX);
	for (size_t i = 0; i < sizeof(md); i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 15];
	}
	*p = '\0';
	return 0;
}

struct blob_hash *blob_hash_free(struct blob_hash *h)
{
	free(h);
	return NULL;
}

/* ---- names ---- */

/* Quote at most 80 bytes of a peer's string for a message: printable ASCII as
 * is, anything else as \xNN, so messages stay one line of valid UTF-8. */
static const char *quote_bounded(const char *s, char *out, size_t outlen)
{
	size_t o = 0, i = 0;
	for (; s[i] && i < 80 && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (s[i] && o + 4 < outlen)
		o += (size_t)snprintf(out + o, outlen - o, "...");
	out[o] = '\0';
	return out;
}

static bool is_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int blob_digest_check(const char *digest, struct cric_err *err)
{
	static const size_t plen = sizeof(BLOB_DIGEST_PREFIX) - 1;
	if (!digest)
		return err_set(err, -EINVAL, "missing digest");
	/* strnlen: a hostile string may be anything; look no further than needed. */
	size_t len = strnlen(digest, BLOB_DIGEST_LEN + 1);
	if (len != BLOB_DIGEST_LEN || strncmp(digest, BLOB_DIGEST_PREFIX, plen) != 0 ||
	    !is_lower_hex(digest + plen, HEX_LEN)) {
		char q[80 * 4 + 8];
		return err_set(err, -EINVAL,
			       "invalid digest \"%s\": want \"sha256:\" and 64 lowercase hex "
			       "characters",
			       quote_bounded(digest, q, sizeof(q)));
	}
	return 0;
}

/* The file name of a (checked) digest inside the store dir. */
static const char *hex_of(const char *digest)
{
	return digest + sizeof(BLOB_DIGEST_PREFIX) - 1;
}

/* ---- store ---- */

static int remove_stale_temps(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	struct dirent *de;
	while ((errno = 0, de = readdir(d)))
		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0 &&
		    unlinkat(dir_fd, de->d_name, 0) < 0 && errno != ENOENT)
			log_warning("blob store: remove stale temp file \"%s\": %m, ignoring",
				    de->d_name);
	int r = errno ? -errno : 0;
	closedir(d);
	return r;
}

int blob_store_open(int root_fd, const struct blob_store_opts *opts, struct blob_store **ret,
		    struct cric_err *err)
{
	if (mkdirat(root_fd, ALGO_DIR, 0700) < 0 && errno != EEXIST)
		return err_set(err, -errno, "blob store: create \"%s\": %m", ALGO_DIR);
	_cleanup_close_ int dir_fd =
	    openat(root_fd, ALGO_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir_fd < 0)
		return err_set(err, -errno, "blob store: open \"%s\": %m", ALGO_DIR);
	int r = remove_stale_temps(dir_fd);
	if (r < 0)
		return err_set(err, r, "blob store: scan for stale temp files: %s", strerror(-r));

	struct blob_store *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(err, -ENOMEM, "blob store: out of memory");
	s->dir_fd = TAKE_FD(dir_fd);
	s->max_blob_size =
	    opts && opts->max_blob_size ? opts->max_blob_size : BLOB_DEFAULT_MAX_SIZE;
	*ret = s;
	return 0;
}

struct blob_store *blob_store_free(struct blob_store *s)
{
	if (s) {
		closep(&s->dir_fd);
		free(s);
	}
	return NULL;
}

/* ---- import ---- */

/* A temp file that is unlinked on scope exit unless published. */
struct tmp_file {
	int dir_fd;
	int fd;
	char name[sizeof(TMP_PREFIX) + HEX_LEN + 1 + 16 + 1];
};

static void tmp_file_done(struct tmp_file *t)
{
	closep(&t->fd);
	t->fd = -1;
	if (t->name[0])
		(void)unlinkat(t->dir_fd, t->name, 0);
	t->name[0] = '\0';
}

static int tmp_file_create(struct blob_store *s, const char *digest, struct tmp_file *t)
{
	for (int tries = 0; tries < 16; tries++) {
		char rnd[17];
		int r = id_random_hex(rnd, sizeof(rnd), 8);
		if (r < 0)
			return r;
		snprintf(t->name, sizeof(t->name), TMP_PREFIX "%s-%s", hex_of(digest), rnd);
		t->fd = openat(s->dir_fd, t->name,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		if (t->fd >= 0)
			return 0;
		t->name[0] = '\0';
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy all of in_fd (from offset 0) to out_fd, hashing it. */
static int copy_hashed(struct blob_store *s, int in_fd, int out_fd, char got[BLOB_DIGEST_BUF],
		       uint64_t *ret_size, struct cric_err *err)
{
	_cleanup_blob_hash_ struct blob_hash *h = blob_hash_new();
	_cleanup_free_ unsigned char *buf = malloc(COPY_BUF_SZ);
	if (!h || !buf)
		return err_set(err, -ENOMEM, "out of memory");
	uint64_t off = 0;
	for (;;) {
		ssize_t n = pread(in_fd, buf, COPY_BUF_SZ, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_set(err, -errno, "read: %m");
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
		if (off > s->max_blob_size)
			return err_set(err, -EFBIG, "larger than the limit of %llu bytes",
				       (unsigned long long)s->max_blob_size);
		int r = blob_hash_update(h, buf, (size_t)n);
		if (r < 0)
			return err_set(err, r, "sha256 failed");
		r = write_all(out_fd, buf, (size_t)n);
		if (r < 0)
			return err_set(err, r, "write: %s", strerror(-r));
	}
	int r = blob_hash_final(h, got);
	if (r < 0)
		return err_set(err, r, "sha256 failed");
	*ret_size = off;
	return 0;
}

static int stat_present(struct blob_store *s, const char *digest, struct stat *st)
{
	if (fstatat(s->dir_fd, hex_of(digest), st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return S_ISREG(st->st_mode) ? 0 : -EUCLEAN;
}

static int import_checked_fd(struct blob_store *s, const char *digest, int fd, uint64_t *ret_size,
			     struct cric_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_set(err, -errno, "fstat: %m");
	if (!S_ISREG(st.st_mode))
		return err_set(err, -EINVAL, "not a regular file");
	if ((uint64_t)st.st_size > s->max_blob_size)
		return err_set(err, -EFBIG, "%llu bytes, larger than the limit of %llu bytes",
			       (unsigned long long)st.st_size,
			       (unsigned long long)s->max_blob_size);

	int r = stat_present(s, digest, &st);
	if (r == 0) {
		if (ret_size)
			*ret_size = (uint64_t)st.st_size;
		return 0;
	}
	if (r != -ENOENT)
		return err_set(err, r, "stat existing blob: %s", strerror(-r));

	_cleanup_(tmp_file_done) struct tmp_file t = { .dir_fd = s->dir_fd, .fd = -1 };
	r = tmp_file_create(s, digest, &t);
	if (r < 0)
		return err_set(err, r, "create temp file: %s", strerror(-r));
	char got[BLOB_DIGEST_BUF];
	uint64_t size = 0;
	r = copy_hashed(s, fd, t.fd, got, &size, err);
	if (r < 0)
		return r;
	if (strcmp(got, digest) != 0)
		return err_set(err, -EBADMSG, "content does not match: it hashes to %s", got);
	if (fsync(t.fd) < 0)
		return err_set(err, -errno, "fsync: %m");
	if (renameat(s->dir_fd, t.name, s->dir_fd, hex_of(digest)) < 0)
		return err_set(err, -errno, "publish: %m");
	t.name[0] = '\0'; /* published: nothing to unlink */
	if (fsync(s->dir_fd) < 0)
		return err_set(err, -errno, "fsync store dir: %m");
	if (ret_size)
		*ret_size = size;
	return 0;
}

int blob_import_fd(struct blob_store *s, const char *digest, int fd, uint64_t *ret_size,
		   struct cric_err *err)
{
	int r = blob_digest_check(digest, err);
	if (r < 0)
		return err_prefix(err, r, "import blob");
	r = import_checked_fd(s, digest, fd, ret_size, err);
	if (r < 0)
		return err_prefix(err, r, "import blob %s", digest);
	return 0;
}

int blob_import_at(struct blob_store *s, const char *digest, int dir_fd, const char *path,
		   uint64_t *ret_size, struct cric_err *err)
{
	int r = blob_digest_check(digest, err);
	if (r < 0)
		return err_prefix(err, r, "import blob");
	if (!path || !*path)
		return err_set(err, -EINVAL, "import blob %s: empty path", digest);
	/* O_NONBLOCK: opening a FIFO must not block (it is refused after fstat). */
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char q[80 * 4 + 8];
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
	if (fd < 0)
		return err_set(err, -errno, "import blob %s: open \"%s\": %m", digest,
			       quote_bounded(path, q, sizeof(q)));
	r = import_checked_fd(s, digest, fd, ret_size, err);
	if (r < 0)
		return err_prefix(err, r, "import blob %s from \"%s\"", digest,
				  quote_bounded(path, q, sizeof(q)));
	return 0;
}

/* ---- read side ---- */

int blob_open(struct blob_store *s, const char *digest, int *ret_fd, struct cric_err *err)
{
	int r = blob_digest_check(digest, err);
	if (r < 0)
		return err_prefix(err, r, "open blob");
	_cleanup_close_ int fd =
	    openat(s->dir_fd, hex_of(digest), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, "open blob %s: %m", digest);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_set(err, -errno, "open blob %s: fstat: %m", digest);
	if (!S_ISREG(st.st_mode))
		return err_set(err, -EUCLEAN, "open blob %s: not a regular file", digest);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int blob_stat(struct blob_store *s, const char *digest, struct blob_info *ret, struct cric_err *err)
{
	int r = blob_digest_check(digest, err);
	if (r < 0)
		return err_prefix(err, r, "stat blob");
	struct stat st;
	r = stat_present(s, digest, &st);
	if (r < 0)
		return err_set(err, r, "stat blob %s: %s", digest, strerror(-r));
	ret->size = (uint64_t)st.st_size;
	ret->disk_bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

int blob_remove(struct blob_store *s, const char *digest, struct cric_err *err)
{
	int r = blob_digest_check(digest, err);
	if (r < 0)
		return err_prefix(err, r, "remove blob");
	if (unlinkat(s->dir_fd, hex_of(digest), 0) < 0)
		return err_set(err, -errno, "remove blob %s: %m", digest);
	if (fsync(s->dir_fd) < 0)
		return err_set(err, -errno, "remove blob %s: fsync store dir: %m", digest);
	return 0;
}

/* Call fn for each blob file (valid name, regular file) of the store. */
static int for_each_blob(struct blob_store *s,
			 int (*fn)(const char *hex, const struct stat *st, void *userdata),
			 void *userdata)
{
	int fd = openat(s->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (strlen(de->d_name) != HEX_LEN || !is_lower_hex(de->d_name, HEX_LEN))
			continue;
		struct stat st;
		if (fstatat(s->dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) /* removed meanwhile */
				continue;
			r = -errno;
			break;
		}
		if (S_ISREG(st.st_mode))
			r = fn(de->d_name, &st, userdata);
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

struct list_acc {
	char **v;
	size_t n, cap;
};

static int list_one(const char *hex, const struct stat *st, void *userdata)
{
	(void)st;
	struct list_acc *acc = userdata;
	if (acc->n + 1 >= acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 16;
		char **v = realloc(acc->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		acc->v = v;
		acc->cap = cap;
	}
	if (asprintf(&acc->v[acc->n], BLOB_DIGEST_PREFIX "%s", hex) < 0)
		return -ENOMEM;
	acc->v[++acc->n] = NULL;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int blob_list(struct blob_store *s, char ***ret, struct cric_err *err)
{
	struct list_acc acc = { 0 };
	int r = for_each_blob(s, list_one, &acc);
	_cleanup_strv_free_ char **v = acc.v;
	if (r < 0)
		return err_set(err, r, "list blobs: %s", strerror(-r));
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v)
			return err_set(err, -ENOMEM, "list blobs: out of memory");
	}
	qsort(v, acc.n, sizeof(*v), cmp_str);
	*ret = TAKE_PTR(v);
	return 0;
}

static int usage_one(const char *hex, const struct stat *st, void *userdata)
{
	(void)hex;
	struct blob_usage *u = userdata;
	u->blobs++;
	u->bytes += (uint64_t)st->st_size;
	u->disk_bytes += (uint64_t)st->st_blocks * 512;
	return 0;
}

int blob_usage(struct blob_store *s, struct blob_usage *ret, struct cric_err *err)
{
	struct blob_usage u = { 0 };
	int r = for_each_blob(s, usage_one, &u);
	if (r < 0)
		return err_set(err, r, "blob usage: %s", strerror(-r));
	*ret = u;
	return 0;
}
