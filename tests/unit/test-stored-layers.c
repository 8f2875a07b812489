/* stored/layers.h (and common/digest.h): chain ids (the OCI image spec's formula), importing a
 * layer from a staging file (verified twice: the blob's digest and the
 * uncompressed diff_id), references from images and leases, collection of
 * unreferenced layers, and a restart that finds half-imported layers.
 * Needs root (unpacking applies owners); skipped otherwise, a failure under
 * CI=true. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/digest.h"
#include "stored/layers.h"
#include "stored/unpack.h"
#include "testutil.h"

#define D_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define D_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_chain_id(void **state)
{
	(void)state;
	char out[DIGEST_BUF];
	digest_chain_id("", D_B, out);
	assert_string_equal(out, D_B);
	digest_chain_id(NULL, D_B, out);
	assert_string_equal(out, D_B);
	/* sha256("<parent> <diff_id>"), computed independently (python hashlib). */
	digest_chain_id(D_A, D_B, out);
	assert_string_equal(
	    out, "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c");
}

static void file_digest(const char *path, char out[BLOB_DIGEST_BUF])
{
	char cmd[PATH_MAX + 64], line[128];
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	pclose(p);
	snprintf(out, BLOB_DIGEST_BUF, "sha256:%.64s", line);
}

/* A layer tarball (and its gzip) in staging: files a/x and a/y. */
static void make_layer(const char *dir, const char *name, char diff[BLOB_DIGEST_BUF],
		       char blob[BLOB_DIGEST_BUF])
{
	char p[PATH_MAX], cmd[4 * PATH_MAX];
	snprintf(p, sizeof(p), "%s/src", dir);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s/a' && echo x > '%s/a/x' && echo y > '%s/a/y' && "
		 "tar --numeric-owner --mtime=@0 -C '%s' -cf '%s/%s.tar' a && "
		 "gzip -n -c '%s/%s.tar' > '%s/%s'",
		 p, p, p, p, dir, name, dir, name, dir, name);
	assert_int_equal(system(cmd), 0);
	char t[PATH_MAX + 64];
	snprintf(t, sizeof(t), "%s/%s.tar", dir, name);
	file_digest(t, diff);
	snprintf(t, sizeof(t), "%s/%s", dir, name);
	file_digest(t, blob);
}

static void test_import_commit_release(void **state)
{
	(void)state;
	REQUIRE_ROOT("layers are unpacked with their owners");
	char *dir = tmpdir_make("layers");
	char state_dir[PATH_MAX], run_dir[PATH_MAX], staging[PATH_MAX];
	tpath(state_dir, dir, "state");
	tpath(run_dir, dir, "run");
	tpath(staging, dir, "staging");
	assert_int_equal(mkdir(staging, 0700), 0);
	char diff[BLOB_DIGEST_BUF], blob[BLOB_DIGEST_BUF];
	make_layer(staging, "l1", diff, blob);

	struct layer_store *ls;
	struct cric_err err;
	assert_int_equal(layer_store_open(state_dir, run_dir, staging, &ls, &err), 0);

	/* A diff_id that does not match: nothing is kept. */
	char chain[BLOB_DIGEST_BUF];
	uint64_t size;
	bool already;
	assert_int_equal(
	    layer_import(ls, "l1", blob, D_A, "", "lease-1", chain, &size, &already, &err),
	    -EBADMSG);
	assert_non_null(strstr(err.msg, "the image config says"));
	char layers[PATH_MAX], blobs[PATH_MAX];
	snprintf(layers, sizeof(layers), "%s/layers", state_dir);
	snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", state_dir);
	assert_int_equal(dir_count(layers), 1); /* "empty" */
	assert_int_equal(dir_count(blobs), 0);
	/* A blob digest that does not match its content. */
	assert_int_equal(
	    layer_import(ls, "l1", D_B, diff, "", "lease-1", chain, &size, &already, &err),
	    -EBADMSG);
	assert_int_equal(dir_count(blobs), 0);
	/* Paths are names in the staging dir, nothing else. */
	assert_int_equal(
	    layer_import(ls, "../l1", blob, diff, "", "lease-1", chain, &size, &already, &err),
	    -EINVAL);

	assert_int_equal(
	    layer_import(ls, "l1", blob, diff, "", "lease-1", chain, &size, &already, &err), 0);
	assert_string_equal(chain, diff); /* a base layer's chain id is its diff_id */
	assert_false(already);
	char x[PATH_MAX];
	snprintf(x, sizeof(x), "%s/%s/a/x", layers, diff + 7);
	assert_int_equal(access(x, F_OK), 0);
	/* Again: already there, no file needed. */
	assert_int_equal(
	    layer_import(ls, "", blob, diff, "", "lease-2", chain, &size, &already, &err), 0);
	assert_true(already);

	char *chains[] = { chain, NULL };
	assert_int_equal(layer_commit_image(ls, D_A, chains, 1, "lease-1", &err), 0);
	assert_int_equal(layer_drop_lease(ls, "lease-2", &err), 0);
	assert_int_equal(access(x, F_OK), 0); /* the image holds it */
	char *missing[] = { D_B, NULL };
	assert_int_equal(layer_commit_image(ls, D_B, missing, 1, "", &err), -ENOENT);

	/* A restart: a half-imported tree and a temp dir are removed. */
	layer_store_free(ls);
	char junk[PATH_MAX];
	snprintf(junk, sizeof(junk), "%s/.tmp-junk", layers);
	assert_int_equal(mkdir(junk, 0700), 0);
	snprintf(junk, sizeof(junk), "%s/%064d", layers, 0);
	assert_int_equal(mkdir(junk, 0700), 0);
	assert_int_equal(layer_store_open(state_dir, run_dir, staging, &ls, &err), 0);
	assert_int_equal(access(junk, F_OK), -1);
	assert_int_equal(access(x, F_OK), 0);

	unsigned removed = 0;
	assert_int_equal(layer_release_image(ls, D_A, &removed, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(access(x, F_OK), -1);
	assert_int_equal(dir_count(blobs), 0);
	assert_int_equal(layer_release_image(ls, D_A, &removed, &err), 0); /* idempotent */
	layer_store_free(ls);
	tmpdir_remove(dir);
}

/* Names of opened children of the watched dir, from its pending inotify
 * events, ';'-separated. */
static void opened_names(int ino, char *out, size_t outlen)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	out[0] = '\0';
	size_t o = 0;
	for (;;) {
		ssize_t n = read(ino, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (char *q = buf; q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			if (ev->len && (ev->mask & IN_OPEN))
				o += (size_t)snprintf(out + o, outlen - o, "%s;", ev->name);
			q += sizeof(*ev) + ev->len;
		}
	}
}

/* ImportLayer takes a plain name of a regular file in the staging dir stored
 * was configured with, nothing else: other names, absolute paths, symlinks
 * (even to a valid blob), FIFOs and devices fail with EINVAL without being
 * opened (inotify sees every open in the staging dir) or hanging, and
 * nothing is imported. A missing staging dir is a failed precondition. */
static void test_import_takes_only_plain_staging_names(void **state)
{
	(void)state;
	REQUIRE_ROOT("layers are unpacked with their owners; mknod");
	char *dir = tmpdir_make("names");
	char state_dir[PATH_MAX], run_dir[PATH_MAX], staging[PATH_MAX], p[PATH_MAX],
	    q[PATH_MAX + 64];
	tpath(state_dir, dir, "state");
	tpath(run_dir, dir, "run");
	tpath(staging, dir, "staging");
	char diff[BLOB_DIGEST_BUF], blob[BLOB_DIGEST_BUF];
	struct layer_store *ls;
	struct cric_err err;
	char chain[BLOB_DIGEST_BUF];
	uint64_t size;
	bool already;

	/* Configured, but imaged has not made it yet; and none configured. */
	assert_int_equal(layer_store_open(state_dir, run_dir, staging, &ls, &err), 0);
	assert_int_equal(layer_import(ls, "l", D_A, D_B, "", "lease", chain, &size, &already, &err),
			 -ENOPKG);
	layer_store_free(ls);
	assert_int_equal(layer_store_open(state_dir, run_dir, NULL, &ls, &err), 0);
	assert_int_equal(layer_import(ls, "l", D_A, D_B, "", "lease", chain, &size, &already, &err),
			 -ENOPKG);
	layer_store_free(ls);

	assert_int_equal(mkdir(staging, 0700), 0);
	make_layer(staging, "l", diff, blob);
	/* The valid blob outside the staging dir, and links to it inside. */
	snprintf(q, sizeof(q), "cp '%s/l' '%s/outside'", staging, dir);
	assert_int_equal(system(q), 0);
	assert_int_equal(symlink(tpath(p, dir, "outside"), tpath(q, staging, "link")), 0);
	assert_int_equal(symlink("l", tpath(p, staging, "rel-link")), 0);
	assert_int_equal(symlink("/etc/shadow", tpath(p, staging, "shadow")), 0);
	assert_int_equal(mkfifo(tpath(p, staging, "fifo"), 0600), 0);
	assert_int_equal(mknod(tpath(p, staging, "null"), S_IFCHR | 0600, makedev(1, 3)), 0);
	assert_int_equal(mkdir(tpath(p, staging, "sub"), 0700), 0);
	char abs_outside[PATH_MAX], abs_inside[PATH_MAX], long_name[NAME_MAX + 2];
	tpath(abs_outside, dir, "outside");
	tpath(abs_inside, staging, "l");
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	const char *bad[] = { "../outside", abs_outside, abs_inside, "/etc/shadow", "./l",
			      ".",          "..",        ".l",       "sub/../l",    "l\n",
			      long_name,    "link",      "rel-link", "shadow",      "fifo",
			      "null",       "sub" };

	assert_int_equal(layer_store_open(state_dir, run_dir, staging, &ls, &err), 0);
	int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	assert_true(ino >= 0);
	assert_true(inotify_add_watch(ino, staging, IN_OPEN) >= 0);
	alarm(20); /* a FIFO opened for reading would hang here */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err.msg[0] = '\0';
		int r =
		    layer_import(ls, bad[i], blob, diff, "", "lease", chain, &size, &already, &err);
		if (r != -EINVAL)
			fail_msg("\"%s\": %d (%s), not -EINVAL", bad[i], r, err.msg);
	}
	alarm(0);
	char opened[4096];
	opened_names(ino, opened, sizeof(opened));
	assert_string_equal(opened, "");
	char layers[PATH_MAX], blobs[PATH_MAX];
	snprintf(layers, sizeof(layers), "%s/layers", state_dir);
	snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", state_dir);
	assert_int_equal(dir_count(layers), 1); /* "empty" */
	assert_int_equal(dir_count(blobs), 0);

	/* The plain name works, and is the only thing opened. */
	assert_int_equal(
	    layer_import(ls, "l", blob, diff, "", "lease", chain, &size, &already, &err), 0);
	opened_names(ino, opened, sizeof(opened));
	assert_string_equal(opened, "l;");
	assert_int_equal(dir_count(blobs), 1);
	close(ino);
	layer_store_free(ls);
	tmpdir_remove(dir);
}

/* One blob that makes many layers (the same diff on different parents),
 * more than any fixed batch: a release collects every layer nothing holds
 * in one go, and the blob goes only with the last layer made from it. */
static void test_collect_many_sharing_a_blob(void **state)
{
	(void)state;
	REQUIRE_ROOT("layers are unpacked with their owners");
	char *dir = tmpdir_make("collect");
	char state_dir[PATH_MAX], run_dir[PATH_MAX], staging[PATH_MAX];
	tpath(state_dir, dir, "state");
	tpath(run_dir, dir, "run");
	tpath(staging, dir, "staging");
	assert_int_equal(mkdir(staging, 0700), 0);
	char diff[BLOB_DIGEST_BUF], blob[BLOB_DIGEST_BUF];
	make_layer(staging, "l", diff, blob);
	struct layer_store *ls;
	struct cric_err err;
	assert_int_equal(layer_store_open(state_dir, run_dir, staging, &ls, &err), 0);

	enum { N = 300 };
	static char chains[N][BLOB_DIGEST_BUF];
	char *list[N + 1];
	const char *parent = "";
	for (size_t i = 0; i < N; i++) {
		uint64_t size;
		bool already;
		assert_int_equal(layer_import(ls, "l", blob, diff, parent, "lease", chains[i],
					      &size, &already, &err),
				 0);
		assert_false(already);
		parent = list[i] = chains[i];
	}
	list[N] = NULL;
	assert_int_equal(layer_commit_image(ls, D_A, list, N, "lease", &err), 0);
	assert_int_equal(layer_commit_image(ls, D_B, list, 1, "", &err), 0);
	char layers[PATH_MAX], blobs[PATH_MAX];
	snprintf(layers, sizeof(layers), "%s/layers", state_dir);
	snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", state_dir);
	assert_int_equal(dir_count(layers), 1 + 2 * N); /* "empty", trees, records */
	assert_int_equal(dir_count(blobs), 1);

	unsigned removed = 0;
	assert_int_equal(layer_release_image(ls, D_A, &removed, &err), 0);
	assert_int_equal(removed, N - 1); /* the base layer is D_B's */
	assert_int_equal(dir_count(layers), 1 + 2);
	assert_int_equal(dir_count(blobs), 1);
	assert_int_equal(layer_release_image(ls, D_B, &removed, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(dir_count(layers), 1);
	assert_int_equal(dir_count(blobs), 0);
	layer_store_free(ls);
	tmpdir_remove(dir);
}

/* du's figure for dir (-sB1 or --inodes), excluding "containers". */
static uint64_t du_of(const char *dir, const char *how)
{
	char cmd[PATH_MAX + 128], line[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "du -s --exclude=containers %s '%s'", how, dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	return strtoull(line, NULL, 10);
}

/* ImageFsInfo's figures: equal to du's, hard links counted once (a file
 * with a thousand names is one inode), and trees deeper than PATH_MAX (a
 * container may write one into its upper dir) measured, not failed. */
static void test_fs_usage_deep_and_hardlinks(void **state)
{
	(void)state;
	REQUIRE_ROOT("layers are unpacked with their owners");
	char *dir = tmpdir_make("du");
	char state_dir[PATH_MAX], run_dir[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
	tpath(state_dir, dir, "state");
	tpath(run_dir, dir, "run");
	struct layer_store *ls;
	struct cric_err err = { "" };
	assert_int_equal(layer_store_open(state_dir, run_dir, NULL, &ls, &err), 0);
	struct fs_usage img0, ctr0, img, ctr;
	assert_int_equal(layer_fs_usage(ls, &img0, &ctr0, &err), 0);

	/* One file, 1000 names: one more directory and one more inode. */
	assert_int_equal(mkdir(tpath(p, state_dir, "hl"), 0755), 0);
	char data[10000];
	memset(data, 'x', sizeof(data));
	tpath(p, state_dir, "hl/f");
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, sizeof(data), f), sizeof(data));
	assert_int_equal(fclose(f), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(q, sizeof(q), "%s/hl/l%d", state_dir, i);
		assert_int_equal(link(p, q), 0);
	}
	assert_int_equal(layer_fs_usage(ls, &img, &ctr, &err), 0);
	assert_int_equal(img.inodes, img0.inodes + 2);
	assert_int_equal(img.inodes, du_of(state_dir, "--inodes"));
	assert_int_equal(img.used_bytes, du_of(state_dir, "-B1"));

	/* 25 levels of 200-byte names under containers/: over 5000 bytes. */
	char cdir[PATH_MAX];
	tpath(cdir, state_dir, "containers");
	int cfd = open(cdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(cfd >= 0);
	char name[201];
	memset(name, 'd', 200);
	name[200] = '\0';
	assert_int_equal(mkdirat(cfd, "deep", 0755), 0);
	int fd = openat(cfd, "deep", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i < 25; i++) {
		assert_int_equal(mkdirat(fd, name, 0755), 0);
		int nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(nfd >= 0);
		close(fd);
		fd = nfd;
	}
	int ffd = openat(fd, "bottom", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(ffd >= 0);
	assert_int_equal(write(ffd, data, sizeof(data)), sizeof(data));
	close(ffd);
	assert_int_equal(linkat(fd, "bottom", fd, "bottom2", 0), 0);
	close(fd);
	err.msg[0] = '\0';
	int r = layer_fs_usage(ls, &img, &ctr, &err);
	if (r != 0)
		fail_msg("layer_fs_usage: %d %s", r, err.msg);
	/* containers/, deep/, 25 levels, one file with two names. */
	assert_int_equal(ctr.inodes, 1 + 1 + 25 + 1);
	assert_int_equal(ctr.inodes, ctr0.inodes + 27);
	char du_cmd[PATH_MAX + 64], line[128];
	snprintf(du_cmd, sizeof(du_cmd), "du -s -B1 '%s'", cdir);
	FILE *du = popen(du_cmd, "r");
	assert_non_null(du);
	assert_non_null(fgets(line, sizeof(line), du));
	pclose(du);
	assert_int_equal(ctr.used_bytes, strtoull(line, NULL, 10));
	/* The images side is unchanged by what is under containers/. */
	assert_int_equal(img.inodes, img0.inodes + 2);

	assert_int_equal(unpack_remove_tree(cfd, "deep", &err), 0);
	close(cfd);
	layer_store_free(ls);
	tmpdir_remove(dir);
}

struct usage_call {
	struct layer_store *ls;
	int r;
};

static void *usage_thread(void *arg)
{
	struct usage_call *c = arg;
	struct fs_usage a, b;
	struct cric_err e;
	c->r = layer_fs_usage(c->ls, &a, &b, &e);
	return NULL;
}

/* ImageFsInfo does not hold the store's lock while it walks: a call that
 * needs the lock (LayerStatus) answers while the walk is inside a
 * directory of 100000 hard links. inotify tells when the walk has opened
 * that directory (no sleeps); the old code held the lock for the whole
 * walk, so LayerStatus returned only after it. */
static void test_fs_usage_does_not_block_the_store(void **state)
{
	(void)state;
	REQUIRE_ROOT("layers are unpacked with their owners");
	char *dir = tmpdir_make("dulock");
	char state_dir[PATH_MAX], run_dir[PATH_MAX], m[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
	tpath(state_dir, dir, "state");
	tpath(run_dir, dir, "run");
	struct layer_store *ls;
	struct cric_err err = { "" };
	assert_int_equal(layer_store_open(state_dir, run_dir, NULL, &ls, &err), 0);
	assert_int_equal(mkdir(tpath(m, state_dir, "m"), 0755), 0);
	/* Four files of 25000 names each (ext4 allows 65000 links). */
	for (int i = 0; i < 100000; i++) {
		snprintf(p, sizeof(p), "%s/f%d", m, i % 4);
		if (i < 4)
			write_text(p, "x");
		snprintf(q, sizeof(q), "%s/l%d", m, i);
		assert_int_equal(link(p, q), 0);
	}
	int ino = inotify_init1(IN_CLOEXEC);
	assert_true(ino >= 0);
	assert_true(inotify_add_watch(ino, m, IN_OPEN | IN_CLOSE_NOWRITE) >= 0);

	struct usage_call c = { .ls = ls };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, usage_thread, &c), 0);
	/* The walk opened m... */
	struct inotify_event *ev;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	assert_true(read(ino, buf, sizeof(buf)) >= (ssize_t)sizeof(*ev));
	ev = (struct inotify_event *)buf;
	assert_true(ev->mask & IN_OPEN);
	assert_false(ev->mask & IN_CLOSE_NOWRITE);
	char *chains[] = { D_A };
	bool present[1];
	assert_int_equal(layer_status(ls, chains, 1, "", present, &err), 0);
	/* ...and has not closed it when LayerStatus answers (the old code
	 * answered only after the walk, m long closed). */
	struct pollfd pfd = { .fd = ino, .events = POLLIN };
	int closed = poll(&pfd, 1, 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(c.r, 0);
	assert_false(present[0]);
	assert_int_equal(closed, 0);
	close(ino);
	layer_store_free(ls);
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_id),
		cmocka_unit_test(test_import_commit_release),
		cmocka_unit_test(test_import_takes_only_plain_staging_names),
		cmocka_unit_test(test_collect_many_sharing_a_blob),
		cmocka_unit_test(test_fs_usage_deep_and_hardlinks),
		cmocka_unit_test(test_fs_usage_does_not_block_the_store),
	};
	return cmocka_run_group_tests_name("stored-layers", tests, NULL, NULL);
}
