/* stored/layers.h (and common/digest.h): chain ids (the OCI image spec's formula), importing a
 * layer from a staging file (verified twice: the blob's digest and the
 * uncompressed diff_id), references from images and leases, collection of
 * unreferenced layers, and a restart that finds half-imported layers.
 * Needs root (unpacking applies owners); skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/digest.h"
#include "stored/layers.h"
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
	if (geteuid() != 0)
		skip();
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
	assert_int_equal(layer_store_open(state_dir, run_dir, &ls, &err), 0);

	/* A diff_id that does not match: nothing is kept. */
	char chain[BLOB_DIGEST_BUF];
	uint64_t size;
	bool already;
	assert_int_equal(
	    layer_import(ls, staging, "l1", blob, D_A, "", "lease-1", chain, &size, &already, &err),
	    -EBADMSG);
	assert_non_null(strstr(err.msg, "the image config says"));
	char layers[PATH_MAX], blobs[PATH_MAX];
	snprintf(layers, sizeof(layers), "%s/layers", state_dir);
	snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", state_dir);
	assert_int_equal(dir_count(layers), 1); /* "empty" */
	assert_int_equal(dir_count(blobs), 0);
	/* A blob digest that does not match its content. */
	assert_int_equal(
	    layer_import(ls, staging, "l1", D_B, diff, "", "lease-1", chain, &size, &already, &err),
	    -EBADMSG);
	assert_int_equal(dir_count(blobs), 0);
	/* Paths are names in the staging dir, nothing else. */
	assert_int_equal(layer_import(ls, staging, "../l1", blob, diff, "", "lease-1", chain, &size,
				      &already, &err),
			 -EINVAL);

	assert_int_equal(layer_import(ls, staging, "l1", blob, diff, "", "lease-1", chain, &size,
				      &already, &err),
			 0);
	assert_string_equal(chain, diff); /* a base layer's chain id is its diff_id */
	assert_false(already);
	char x[PATH_MAX];
	snprintf(x, sizeof(x), "%s/%s/a/x", layers, diff + 7);
	assert_int_equal(access(x, F_OK), 0);
	/* Again: already there, no file needed. */
	assert_int_equal(
	    layer_import(ls, staging, "", blob, diff, "", "lease-2", chain, &size, &already, &err),
	    0);
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
	assert_int_equal(layer_store_open(state_dir, run_dir, &ls, &err), 0);
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

/* One blob that makes many layers (the same diff on different parents),
 * more than any fixed batch: a release collects every layer nothing holds
 * in one go, and the blob goes only with the last layer made from it. */
static void test_collect_many_sharing_a_blob(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
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
	assert_int_equal(layer_store_open(state_dir, run_dir, &ls, &err), 0);

	enum { N = 300 };
	static char chains[N][BLOB_DIGEST_BUF];
	char *list[N + 1];
	const char *parent = "";
	for (size_t i = 0; i < N; i++) {
		uint64_t size;
		bool already;
		assert_int_equal(layer_import(ls, staging, "l", blob, diff, parent, "lease",
					      chains[i], &size, &already, &err),
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_id),
		cmocka_unit_test(test_import_commit_release),
		cmocka_unit_test(test_collect_many_sharing_a_blob),
	};
	return cmocka_run_group_tests_name("stored-layers", tests, NULL, NULL);
}
