/* imaged/reference.h: image reference parsing and normalisation. The cases
 * follow distribution/reference's own tables (normalize_test.go,
 * reference_test.go) plus cric's stricter rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/reference.h"
#include "testutil.h"

#define HEX_A "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
#define HEX_B "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
#define DIG_A "sha256:" HEX_A
#define DIG_B "sha256:" HEX_B

struct valid_case {
	const char *in, *default_domain;
	const char *canonical, *domain, *path, *tag, *digest, *familiar;
};

static const struct valid_case valid[] = {
	/* short names, Docker Hub */
	{ "busybox", NULL, "docker.io/library/busybox:latest", "docker.io", "library/busybox",
	  "latest", "", "busybox:latest" },
	{ "busybox:1.36", NULL, "docker.io/library/busybox:1.36", "docker.io", "library/busybox",
	  "1.36", "", "busybox:1.36" },
	{ "library/busybox", NULL, "docker.io/library/busybox:latest", "docker.io",
	  "library/busybox", "latest", "", "busybox:latest" },
	{ "docker.io/busybox", NULL, "docker.io/library/busybox:latest", "docker.io",
	  "library/busybox", "latest", "", "busybox:latest" },
	{ "docker.io/library/busybox:latest", NULL, "docker.io/library/busybox:latest", "docker.io",
	  "library/busybox", "latest", "", "busybox:latest" },
	{ "index.docker.io/busybox", NULL, "docker.io/library/busybox:latest", "docker.io",
	  "library/busybox", "latest", "", "busybox:latest" },
	{ "index.docker.io/library/busybox:musl", NULL, "docker.io/library/busybox:musl",
	  "docker.io", "library/busybox", "musl", "", "busybox:musl" },
	{ "index.docker.io/fooo/bar", NULL, "docker.io/fooo/bar:latest", "docker.io", "fooo/bar",
	  "latest", "", "fooo/bar:latest" },
	{ "user/img", NULL, "docker.io/user/img:latest", "docker.io", "user/img", "latest", "",
	  "user/img:latest" },
	{ "docker.io/user/img:v1", NULL, "docker.io/user/img:v1", "docker.io", "user/img", "v1", "",
	  "user/img:v1" },
	{ "library/foo/bar", NULL, "docker.io/library/foo/bar:latest", "docker.io",
	  "library/foo/bar", "latest", "", "library/foo/bar:latest" },
	{ "other/library", NULL, "docker.io/other/library:latest", "docker.io", "other/library",
	  "latest", "", "other/library:latest" },
	{ "ubuntu-12.04-base", NULL, "docker.io/library/ubuntu-12.04-base:latest", "docker.io",
	  "library/ubuntu-12.04-base", "latest", "", "ubuntu-12.04-base:latest" },
	{ "test_com/foo", NULL, "docker.io/test_com/foo:latest", "docker.io", "test_com/foo",
	  "latest", "", "test_com/foo:latest" },
	{ "dock__er/docker", NULL, "docker.io/dock__er/docker:latest", "docker.io",
	  "dock__er/docker", "latest", "", "dock__er/docker:latest" },
	{ "docker---rules/docker", NULL, "docker.io/docker---rules/docker:latest", "docker.io",
	  "docker---rules/docker", "latest", "", "docker---rules/docker:latest" },
	{ "user/a.b_c__d-e--f", NULL, "docker.io/user/a.b_c__d-e--f:latest", "docker.io",
	  "user/a.b_c__d-e--f", "latest", "", "user/a.b_c__d-e--f:latest" },
	{ "d/docker", NULL, "docker.io/d/docker:latest", "docker.io", "d/docker", "latest", "",
	  "d/docker:latest" },
	{ "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", NULL,
	  "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:"
	  "latest",
	  "docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
	  "latest", "", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest" },
	/* 64 hex digits are an id, but not after a domain, nor 63 of them */
	{ "docker.io/" HEX_A, NULL, "docker.io/library/" HEX_A ":latest", "docker.io",
	  "library/" HEX_A, "latest", "", HEX_A ":latest" },
	{ "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48b", NULL,
	  "docker.io/library/ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48b:"
	  "latest",
	  "docker.io", "library/ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48b",
	  "latest", "", "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48b:latest" },
	/* "sha256:<hex>" is the tag of docker.io/library/sha256: ids are the caller's job */
	{ DIG_A, NULL, "docker.io/library/sha256:" HEX_A, "docker.io", "library/sha256", HEX_A, "",
	  "sha256:" HEX_A },
	/* Docker Hub paths whose first element reads as a domain keep it */
	{ "docker.io/a.b/c", NULL, "docker.io/a.b/c:latest", "docker.io", "a.b/c", "latest", "",
	  "docker.io/a.b/c:latest" },
	{ "docker.io/localhost/x", NULL, "docker.io/localhost/x:latest", "docker.io", "localhost/x",
	  "latest", "", "docker.io/localhost/x:latest" },
	/* other registries */
	{ "host:5000/repo/x:tag", NULL, "host:5000/repo/x:tag", "host:5000", "repo/x", "tag", "",
	  "host:5000/repo/x:tag" },
	{ "localhost/x", NULL, "localhost/x:latest", "localhost", "x", "latest", "",
	  "localhost/x:latest" },
	{ "localhost:5000/x", NULL, "localhost:5000/x:latest", "localhost:5000", "x", "latest", "",
	  "localhost:5000/x:latest" },
	{ "127.0.0.1:5000/busybox:1", NULL, "127.0.0.1:5000/busybox:1", "127.0.0.1:5000", "busybox",
	  "1", "", "127.0.0.1:5000/busybox:1" },
	{ "127.0.0.1:8000/private/moonbase", NULL, "127.0.0.1:8000/private/moonbase:latest",
	  "127.0.0.1:8000", "private/moonbase", "latest", "",
	  "127.0.0.1:8000/private/moonbase:latest" },
	{ "192.168.0.1:8/debian", NULL, "192.168.0.1:8/debian:latest", "192.168.0.1:8", "debian",
	  "latest", "", "192.168.0.1:8/debian:latest" },
	{ "[::1]:5000/repo", NULL, "[::1]:5000/repo:latest", "[::1]:5000", "repo", "latest", "",
	  "[::1]:5000/repo:latest" },
	{ "[fc00:1:2:3:4:5:6:7]:5000/library/debian", NULL,
	  "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest", "[fc00:1:2:3:4:5:6:7]:5000",
	  "library/debian", "latest", "", "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest" },
	{ "[fc00::1]/x", NULL, "[fc00::1]/x:latest", "[fc00::1]", "x", "latest", "",
	  "[fc00::1]/x:latest" },
	{ "quay.io/coreos/etcd:v3.5.0", NULL, "quay.io/coreos/etcd:v3.5.0", "quay.io",
	  "coreos/etcd", "v3.5.0", "", "quay.io/coreos/etcd:v3.5.0" },
	{ "registry.k8s.io/pause:3.9", NULL, "registry.k8s.io/pause:3.9", "registry.k8s.io",
	  "pause", "3.9", "", "registry.k8s.io/pause:3.9" },
	{ "gcr.io/google-containers/pause-amd64:3.2", NULL,
	  "gcr.io/google-containers/pause-amd64:3.2", "gcr.io", "google-containers/pause-amd64",
	  "3.2", "", "gcr.io/google-containers/pause-amd64:3.2" },
	{ "xn--n3h.com:18080/foo", NULL, "xn--n3h.com:18080/foo:latest", "xn--n3h.com:18080", "foo",
	  "latest", "", "xn--n3h.com:18080/foo:latest" },
	{ "test-com:8080/foo", NULL, "test-com:8080/foo:latest", "test-com:8080", "foo", "latest",
	  "", "test-com:8080/foo:latest" },
	{ "sub.domain.example.com:443/a/b/c/d:t", NULL, "sub.domain.example.com:443/a/b/c/d:t",
	  "sub.domain.example.com:443", "a/b/c/d", "t", "",
	  "sub.domain.example.com:443/a/b/c/d:t" },
	/* an upper-case first element is a domain */
	{ "Docker/docker", NULL, "Docker/docker:latest", "Docker", "docker", "latest", "",
	  "Docker/docker:latest" },
	{ "FOO/bar:Tag", NULL, "FOO/bar:Tag", "FOO", "bar", "Tag", "", "FOO/bar:Tag" },
	/* bare "localhost" and IPs without '/' are names on Docker Hub */
	{ "localhost", NULL, "docker.io/library/localhost:latest", "docker.io", "library/localhost",
	  "latest", "", "localhost:latest" },
	{ "localhost:5000", NULL, "docker.io/library/localhost:5000", "docker.io",
	  "library/localhost", "5000", "", "localhost:5000" },
	{ "192.168.0.1", NULL, "docker.io/library/192.168.0.1:latest", "docker.io",
	  "library/192.168.0.1", "latest", "", "192.168.0.1:latest" },
	{ "192.168.0.1:80", NULL, "docker.io/library/192.168.0.1:80", "docker.io",
	  "library/192.168.0.1", "80", "", "192.168.0.1:80" },
	/* tags */
	{ "busybox:V1.2-rc_3", NULL, "docker.io/library/busybox:V1.2-rc_3", "docker.io",
	  "library/busybox", "V1.2-rc_3", "", "busybox:V1.2-rc_3" },
	{ "busybox:_x", NULL, "docker.io/library/busybox:_x", "docker.io", "library/busybox", "_x",
	  "", "busybox:_x" },
	/* digests */
	{ "busybox@" DIG_A, NULL, "docker.io/library/busybox@" DIG_A, "docker.io",
	  "library/busybox", "", DIG_A, "busybox@" DIG_A },
	{ "busybox:1.36@" DIG_A, NULL, "docker.io/library/busybox:1.36@" DIG_A, "docker.io",
	  "library/busybox", "1.36", DIG_A, "busybox:1.36@" DIG_A },
	{ "quay.io/x/y:tag@" DIG_B, NULL, "quay.io/x/y:tag@" DIG_B, "quay.io", "x/y", "tag", DIG_B,
	  "quay.io/x/y:tag@" DIG_B },
	{ "localhost:5000/x@" DIG_B, NULL, "localhost:5000/x@" DIG_B, "localhost:5000", "x", "",
	  DIG_B, "localhost:5000/x@" DIG_B },
	{ "user/img@" DIG_A, NULL, "docker.io/user/img@" DIG_A, "docker.io", "user/img", "", DIG_A,
	  "user/img@" DIG_A },
	/* configurable default registry: no "library/" outside Docker Hub */
	{ "busybox", "registry.local:5000", "registry.local:5000/busybox:latest",
	  "registry.local:5000", "busybox", "latest", "", "registry.local:5000/busybox:latest" },
	{ "user/img:2", "registry.local:5000", "registry.local:5000/user/img:2",
	  "registry.local:5000", "user/img", "2", "", "registry.local:5000/user/img:2" },
	{ "docker.io/busybox", "registry.local:5000", "docker.io/library/busybox:latest",
	  "docker.io", "library/busybox", "latest", "", "busybox:latest" },
	{ "quay.io/x", "registry.local:5000", "quay.io/x:latest", "quay.io", "x", "latest", "",
	  "quay.io/x:latest" },
	{ "busybox", "127.0.0.1:41234", "127.0.0.1:41234/busybox:latest", "127.0.0.1:41234",
	  "busybox", "latest", "", "127.0.0.1:41234/busybox:latest" },
	{ "busybox", "index.docker.io", "docker.io/library/busybox:latest", "docker.io",
	  "library/busybox", "latest", "", "busybox:latest" },
	{ "busybox", "docker.io", "docker.io/library/busybox:latest", "docker.io",
	  "library/busybox", "latest", "", "busybox:latest" },
	{ "x/y", "localhost", "localhost/x/y:latest", "localhost", "x/y", "latest", "",
	  "localhost/x/y:latest" },
	{ "x", "myregistry:5000", "myregistry:5000/x:latest", "myregistry:5000", "x", "latest", "",
	  "myregistry:5000/x:latest" },
};

static void test_valid_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		const struct valid_case *c = &valid[i];
		struct image_ref r;
		struct cric_err err = { "untouched" };
		char fam[IMAGE_REF_STRING_MAX + 1];
		int k = image_ref_parse(c->in, c->default_domain, &r, &err);
		if (k != 0)
			print_message("case %zu \"%s\": %d %s\n", i, c->in, k, err.msg);
		assert_int_equal(k, 0);
		if (strcmp(r.string, c->canonical) != 0)
			print_message("case %zu \"%s\": got \"%s\"\n", i, c->in, r.string);
		assert_string_equal(r.string, c->canonical);
		assert_string_equal(r.domain, c->domain);
		assert_string_equal(r.path, c->path);
		assert_string_equal(r.tag, c->tag);
		assert_string_equal(r.digest, c->digest);
		char name[IMAGE_REF_NAME_MAX + 2];
		snprintf(name, sizeof(name), "%s/%s", c->domain, c->path);
		assert_string_equal(r.name, name);
		image_ref_familiar(&r, fam);
		assert_string_equal(fam, c->familiar);
		/* Success leaves err alone. */
		assert_string_equal(err.msg, "untouched");

		/* The canonical form is a fixed point, with any default domain. */
		struct image_ref again;
		assert_int_equal(image_ref_parse(r.string, "other.example:1", &again, NULL), 0);
		assert_string_equal(again.string, r.string);
		/* So is the familiar form, with the default one. */
		if (!c->default_domain || strcmp(c->default_domain, "docker.io") == 0 ||
		    strcmp(r.domain, c->default_domain) != 0) {
			assert_int_equal(image_ref_parse(fam, NULL, &again, NULL), 0);
			assert_string_equal(again.string, r.string);
		}
	}
}

struct invalid_case {
	const char *in, *default_domain, *needle;
};

#define LONG_TAG_128                                                                               \
	"t123456789012345678901234567890123456789012345678901234567890123"                         \
	"4567890123456789012345678901234567890123456789012345678901234567"
#define LONG_TAG_129 LONG_TAG_128 "8"

static const struct invalid_case invalid[] = {
	{ "", NULL, "empty reference" },
	{ "Busybox", NULL, "must be lowercase" },
	{ "docker/Docker", NULL, "must be lowercase" },
	{ "docker.io/docker/Docker", NULL, "must be lowercase" },
	{ "UPPER.io/Repo", NULL, "must be lowercase" },
	{ "-docker", NULL, "invalid repository name" },
	{ "-docker/docker", NULL, "invalid repository name" },
	{ "docker-/docker", NULL, "invalid repository name" },
	{ "-docker-/docker", NULL, "invalid repository name" },
	{ "docker///docker", NULL, "invalid repository name" },
	{ "docker.io/docker///docker", NULL, "invalid repository name" },
	{ "docker/", NULL, "invalid repository name" },
	{ "____/____", NULL, "invalid repository name" },
	{ "_docker/_docker", NULL, "invalid repository name" },
	{ "dock..er/docker", NULL, "invalid registry domain" }, /* '.': a domain */
	{ "x/dock..er", NULL, "invalid repository name" },
	{ "x/dock_.er", NULL, "invalid repository name" },
	{ "x/dock-.er", NULL, "invalid repository name" },
	{ "x/docker.", NULL, "invalid repository name" },
	{ "dock___er/docker", NULL, "invalid repository name" },
	{ " busybox", NULL, "invalid repository name" },
	{ "busybox ", NULL, "invalid repository name" },
	{ "bus\nybox", NULL, "\"bus?ybox\"" },
	{ "büsybox", NULL, "invalid repository name" },
	{ "-docker.io/docker/docker", NULL, "invalid registry domain" },
	{ "https://github.com/docker/docker", NULL, "invalid registry domain \"https:\"" },
	{ "fc00::1:5000/debian", NULL, "invalid registry domain" },
	{ "[fe80::1%eth0]:5000/debian", NULL, "invalid registry domain" },
	{ "[2001:db8:3:4::192.0.2.33]:5000/debian", NULL, "invalid registry domain" },
	{ "[]:5000/x", NULL, "invalid registry domain" },
	{ "[fc00::1", NULL, "invalid" },
	{ "[fc00::1]", NULL, "invalid" },
	{ "[fc00::1]:5000", NULL, "invalid" },
	{ "localhost:0/x", NULL, "invalid registry domain" },
	{ "localhost:65536/x", NULL, "invalid registry domain" },
	{ "localhost:123456/x", NULL, "invalid registry domain" },
	{ "localhost:/x", NULL, "invalid registry domain" },
	{ "host:port/x", NULL, "invalid registry domain" },
	{ "a..b.com/x", NULL, "invalid registry domain" },
	{ "example.com./x", NULL, "invalid registry domain" },
	{ ".example.com/x", NULL, "invalid registry domain" },
	{ "example-.com/x", NULL, "invalid registry domain" },
	{ "exa_mple.com/x", NULL, "invalid registry domain" },
	{ "busybox:a/b", NULL, "invalid registry domain" },
	{ HEX_A, NULL, "64-byte hexadecimal" },
	{ "busybox:", NULL, "invalid tag \"\"" },
	{ "busybox:-x", NULL, "invalid tag" },
	{ "busybox:.x", NULL, "invalid tag" },
	{ "busybox:latest:foo", NULL, "invalid tag" },
	{ "busybox:la test", NULL, "invalid tag" },
	{ "a/b:c/d", NULL, "invalid tag" },
	{ "busybox:" LONG_TAG_129, NULL, "invalid tag" },
	{ ":latest", NULL, "no repository name" },
	{ "@" DIG_A, NULL, "no repository name" },
	{ "busybox@", NULL, "invalid digest" },
	{ "busybox@sha256", NULL, "invalid digest" },
	{ "busybox@sha256:abc", NULL, "3 hex digits instead of 64" },
	{ "busybox@" DIG_A "0", NULL, "65 hex digits instead of 64" },
	{ "busybox@sha256:CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB", NULL,
	  "upper case hex digit" },
	{ "busybox@sha256:zz78112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", NULL,
	  "not a hex digit" },
	{ "busybox@sha512:" HEX_A HEX_B, NULL,
	  "unsupported digest algorithm \"sha512\" (only sha256 is supported)" },
	{ "busybox@md5:d41d8cd98f00b204e9800998ecf8427e", NULL, "unsupported digest algorithm" },
	{ "busybox@" DIG_A "@" DIG_B, NULL, "more than one '@'" },
	{ "busybox@:" HEX_A, NULL, "invalid digest" },
	{ "busybox", "bad_domain", "invalid default registry \"bad_domain\"" },
	{ "busybox", "", "invalid default registry" },
	{ "busybox", "registry.local/path", "invalid default registry" },
	{ "busybox", "myregistry", "invalid default registry \"myregistry\": a registry needs" },
	{ "busybox", "Registry", "invalid default registry \"Registry\": a registry needs" },
	{ "busybox", "bad\nregistry", "invalid default registry \"bad?registry\"" },
};

static void test_invalid_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		const struct invalid_case *c = &invalid[i];
		struct image_ref r, copy;
		memset(&r, 0xa5, sizeof(r));
		copy = r;
		struct cric_err err = { { 0 } };
		int k = image_ref_parse(c->in, c->default_domain, &r, &err);
		if (k != -EINVAL || !strstr(err.msg, c->needle))
			print_message("case %zu \"%s\": r=%d msg=\"%s\" (want \"%s\")\n", i, c->in,
				      k, err.msg, c->needle);
		assert_int_equal(k, -EINVAL);
		assert_non_null(strstr(err.msg, c->needle));
		/* The message names the input (unless it is the default domain's fault). */
		if (!strstr(c->needle, "default registry"))
			assert_true(strncmp(err.msg, "invalid reference \"", 19) == 0);
		/* Output untouched on failure; err is optional. */
		assert_memory_equal(&r, &copy, sizeof(r));
		assert_int_equal(image_ref_parse(c->in, c->default_domain, &r, NULL), -EINVAL);
	}
}

static void test_null_input(void **state)
{
	(void)state;
	struct image_ref r;
	struct cric_err err;
	assert_int_equal(image_ref_parse(NULL, NULL, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "empty reference"));
}

/* Name length: 255 bytes for domain "/" path, counted after normalisation. */
static void test_name_length(void **state)
{
	(void)state;
	char in[600], path[300];
	struct image_ref r;
	struct cric_err err;

	/* "docker.io/" + "u/" + 243 = 255 */
	memset(path, 'a', sizeof(path));
	snprintf(in, sizeof(in), "u/%.*s", 243, path);
	assert_int_equal(image_ref_parse(in, NULL, &r, &err), 0);
	assert_int_equal(strlen(r.name), 255);
	snprintf(in, sizeof(in), "u/%.*s:" LONG_TAG_128 "@" DIG_A, 243, path);
	assert_int_equal(image_ref_parse(in, NULL, &r, &err), 0);
	assert_int_equal(strlen(r.string), IMAGE_REF_STRING_MAX);
	snprintf(in, sizeof(in), "u/%.*s", 244, path);
	assert_int_equal(image_ref_parse(in, NULL, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "longer than 255"));

	/* The "library/" a short name gets counts: 10 + 8 + 237 = 255. */
	snprintf(in, sizeof(in), "%.*s", 237, path);
	assert_int_equal(image_ref_parse(in, NULL, &r, &err), 0);
	snprintf(in, sizeof(in), "%.*s", 238, path);
	assert_int_equal(image_ref_parse(in, NULL, &r, &err), -EINVAL);

	/* Huge input: refused before anything else, message bounded. */
	char *big = malloc(100000);
	assert_non_null(big);
	memset(big, 'a', 99999);
	big[99999] = '\0';
	assert_int_equal(image_ref_parse(big, NULL, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "longer than"));
	assert_true(strlen(err.msg) < 400);
	free(big);
}

static void test_repo_tag_and_digest(void **state)
{
	(void)state;
	struct image_ref r;
	char buf[IMAGE_REF_STRING_MAX + 1];
	struct cric_err err;

	assert_int_equal(image_ref_parse("busybox", NULL, &r, NULL), 0);
	assert_int_equal(image_ref_repo_tag(&r, buf), 0);
	assert_string_equal(buf, "docker.io/library/busybox:latest");
	assert_int_equal(image_ref_repo_digest(&r, DIG_B, buf, &err), 0);
	assert_string_equal(buf, "docker.io/library/busybox@" DIG_B);

	/* By digest: no tag to report, the digest is the manifest's. */
	assert_int_equal(image_ref_parse("localhost:5000/x/y@" DIG_A, NULL, &r, NULL), 0);
	strcpy(buf, "untouched");
	assert_int_equal(image_ref_repo_tag(&r, buf), -ENOENT);
	assert_string_equal(buf, "untouched");
	assert_int_equal(image_ref_repo_digest(&r, DIG_A, buf, NULL), 0);
	assert_string_equal(buf, "localhost:5000/x/y@" DIG_A);

	/* Both: both kept, the tag reported. */
	assert_int_equal(image_ref_parse("busybox:1.36@" DIG_A, NULL, &r, NULL), 0);
	assert_int_equal(image_ref_repo_tag(&r, buf), 0);
	assert_string_equal(buf, "docker.io/library/busybox:1.36");

	strcpy(buf, "untouched");
	assert_int_equal(image_ref_repo_digest(&r, "sha256:abc", buf, &err), -EINVAL);
	assert_string_equal(buf, "untouched");
	assert_non_null(strstr(err.msg, "instead of 64"));
	assert_int_equal(image_ref_repo_digest(&r, NULL, buf, &err), -EINVAL);
}

static void test_registry_api_host(void **state)
{
	(void)state;
	assert_string_equal(registry_api_host("docker.io"), "registry-1.docker.io");
	assert_string_equal(registry_api_host("index.docker.io"), "registry-1.docker.io");
	assert_string_equal(registry_api_host("quay.io"), "quay.io");
	assert_string_equal(registry_api_host("localhost:5000"), "localhost:5000");
	struct image_ref r;
	assert_int_equal(image_ref_parse("busybox", NULL, &r, NULL), 0);
	assert_string_equal(registry_api_host(r.domain), "registry-1.docker.io");
}

static void test_digest_validate(void **state)
{
	(void)state;
	static const struct {
		const char *in, *needle;
	} cases[] = {
		{ DIG_A, NULL },
		{ DIG_B, NULL },
		{ "", "want <algorithm>:<hex>" },
		{ HEX_A, "want <algorithm>:<hex>" },
		{ ":" HEX_A, "want <algorithm>:<hex>" },
		{ "sha256:", "0 hex digits" },
		{ "sha256:" HEX_A HEX_A, "128 hex digits" },
		{ "sha512:" HEX_A HEX_B, "unsupported digest algorithm \"sha512\"" },
		{ "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
		  "unsupported digest algorithm \"sha256+b64u\"" },
		{ "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
		  "unsupported digest algorithm" },
		{ "SHA256:" HEX_A, "unsupported digest algorithm \"SHA256\"" },
		{ "sha256 :" HEX_A, "want <algorithm>:<hex>" },
		{ "sha256:" HEX_A " ", "not a hex digit at position 65" },
		{ "sha256:-" HEX_A, "not a hex digit at position 1" },
		{ "sha256::" HEX_A, "not a hex digit" },
		{ "sha--256:" HEX_A, "want <algorithm>:<hex>" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cric_err err = { "untouched" };
		int k = image_digest_validate(cases[i].in, &err);
		if (!cases[i].needle) {
			assert_int_equal(k, 0);
			assert_string_equal(err.msg, "untouched");
			continue;
		}
		if (k != -EINVAL || !strstr(err.msg, cases[i].needle))
			print_message("digest case %zu: r=%d msg=\"%s\"\n", i, k, err.msg);
		assert_int_equal(k, -EINVAL);
		assert_non_null(strstr(err.msg, cases[i].needle));
	}
	assert_int_equal(image_digest_validate(NULL, NULL), -EINVAL);
}

static void test_image_id_parse(void **state)
{
	(void)state;
	char id[IMAGE_DIGEST_LEN + 1];
	assert_int_equal(image_id_parse(DIG_A, id), 0);
	assert_string_equal(id, DIG_A);
	assert_int_equal(image_id_parse(HEX_B, id), 0);
	assert_string_equal(id, DIG_B);
	strcpy(id, "untouched");
	assert_int_equal(image_id_parse("busybox", id), -EINVAL);
	assert_int_equal(image_id_parse("sha256:abc", id), -EINVAL);
	assert_int_equal(image_id_parse("sha512:" HEX_A, id), -EINVAL);
	assert_int_equal(image_id_parse(DIG_A "0", id), -EINVAL);
	assert_int_equal(
	    image_id_parse("CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB", id),
	    -EINVAL);
	assert_int_equal(image_id_parse("", id), -EINVAL);
	assert_int_equal(image_id_parse(NULL, id), -EINVAL);
	assert_string_equal(id, "untouched");
}

/* Every accepted reference's parts obey the grammar's limits, whatever the
 * input: a quick deterministic sweep over mutations of valid references. */
static void test_mutations(void **state)
{
	(void)state;
	static const char alphabet[] = "aZ0._-:/@[]%";
	unsigned seed = 12345;
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		for (int round = 0; round < 200; round++) {
			char in[IMAGE_REF_STRING_MAX + 32];
			snprintf(in, sizeof(in), "%s", valid[i].in);
			size_t n = strlen(in);
			seed = seed * 1103515245u + 12345u;
			size_t pos = (seed >> 8) % (n + 1);
			char c = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
			if (pos < n)
				in[pos] = c;
			struct image_ref r;
			if (image_ref_parse(in, NULL, &r, NULL) != 0)
				continue;
			assert_true(strlen(r.name) <= IMAGE_REF_NAME_MAX);
			assert_true(strlen(r.tag) <= IMAGE_REF_TAG_MAX);
			assert_true(r.tag[0] || r.digest[0]);
			assert_null(strchr(r.path, ':'));
			assert_null(strchr(r.path, '@'));
			struct image_ref again;
			assert_int_equal(image_ref_parse(r.string, NULL, &again, NULL), 0);
			assert_string_equal(again.string, r.string);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_table),
		cmocka_unit_test(test_invalid_table),
		cmocka_unit_test(test_null_input),
		cmocka_unit_test(test_name_length),
		cmocka_unit_test(test_repo_tag_and_digest),
		cmocka_unit_test(test_registry_api_host),
		cmocka_unit_test(test_digest_validate),
		cmocka_unit_test(test_image_id_parse),
		cmocka_unit_test(test_mutations),
	};
	print_message("reference cases: %zu valid, %zu invalid\n", ARRAY_SIZE(valid),
		      ARRAY_SIZE(invalid));
	return cmocka_run_group_tests_name("imaged-reference", tests, NULL, NULL);
}
