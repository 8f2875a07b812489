/* imaged/manifest.h: manifests, indexes, platform selection, image configs.
 *
 * Fixtures are written the way registries serve them (Docker's
 * image-manifest-v2-2 and the OCI image-spec examples, BuildKit's indexes
 * with attestations), in single quotes that J() turns into JSON. Hostile
 * variants are derived from them with mutate(). The seed corpus of
 * fuzz-manifest is checked here too: "bad-*" files must be refused, the
 * others must parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/manifest.h"
#include "testutil.h"

#define H_A "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
#define H_B "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
#define H_C "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"
#define H_D "18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4"
#define H_E "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
#define H_F "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"
#define H_G "cd0aa9856147b6c5b4ff2b7dfee5da20aa38253099ef1b4a64aced233c9afe29"
#define H_H "aaa9402664f1a41f40ebbc52c9993eb66aeb366602958fdfaa283b71e64db123"
#define H_I "de7d1b721a1e0632b7cf04edf5032c8ecffa9f9a08492152b926f1a5a7e765d7"
#define H_J "189f40034be7a199f1fa9891668ee3ab6049f82d38c68be70f596eab2e1857b7"
#define H_K "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a"
#define H_L "acac86c0e609ca906f632b0e2dacccb2b77d22b0621f20ebece1a4835b93f6f0"
#define H_M "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"
#define H_N "1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9"

/* ---- fixtures ---- */

/* docker.io/library/busybox for amd64, as Docker Hub serves it. */
static const char DOCKER_V2[] =
    "{"
    "  'schemaVersion': 2,"
    "  'mediaType': '" MEDIA_TYPE_DOCKER_MANIFEST "',"
    "  'config': {"
    "    'mediaType': 'application/vnd.docker.container.image.v1+json',"
    "    'size': 1457,"
    "    'digest': 'sha256:" H_A "'"
    "  },"
    "  'layers': ["
    "    {"
    "      'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip',"
    "      'size': 2591575,"
    "      'digest': 'sha256:" H_B "'"
    "    }"
    "  ]"
    "}";

/* An OCI manifest with every layer compression and annotations. */
static const char OCI_MANIFEST[] =
    "{"
    "  'schemaVersion': 2,"
    "  'mediaType': 'application/vnd.oci.image.manifest.v1+json',"
    "  'config': {"
    "    'mediaType': 'application/vnd.oci.image.config.v1+json',"
    "    'size': 7023,"
    "    'digest': 'sha256:" H_C "'"
    "  },"
    "  'layers': ["
    "    { 'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'size': 32654,"
    "      'digest': 'sha256:" H_D "' },"
    "    { 'mediaType': 'application/vnd.oci.image.layer.v1.tar+zstd', 'size': 16724,"
    "      'digest': 'sha256:" H_E "' },"
    "    { 'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'size': 73109,"
    "      'digest': 'sha256:" H_F "',"
    "      'annotations': { 'org.opencontainers.image.title': 'app.tar' } }"
    "  ],"
    "  'annotations': {"
    "    'org.opencontainers.image.created': '2024-01-02T03:04:05Z',"
    "    'org.opencontainers.image.source': 'https://example.com/app'"
    "  }"
    "}";

#define LIST_ENTRY(hex, size, arch, variant_json)                                                  \
	"{ 'mediaType': '" MEDIA_TYPE_DOCKER_MANIFEST "', 'size': " #size ","                      \
	"  'digest': 'sha256:" hex "',"                                                            \
	"  'platform': { 'architecture': '" arch "', 'os': 'linux'" variant_json " } }"

/* docker.io/library/busybox:latest's manifest list (10 platforms). */
static const char DOCKER_LIST[] =
    "{"
    "  'manifests': [" LIST_ENTRY(H_A, 527, "amd64", "") "," LIST_ENTRY(H_B, 527, "arm", ", 'variant': 'v5'") "," LIST_ENTRY(H_C, 527, "arm", ", 'variant': 'v6'") "," LIST_ENTRY(H_D, 527, "arm", ", 'variant': 'v7'") "," LIST_ENTRY(
	H_E, 527, "arm64",
	", 'variant': 'v8'") "," LIST_ENTRY(H_F, 527, "386",
					    "") "," LIST_ENTRY(H_G, 527, "mips64le",
							       "") "," LIST_ENTRY(H_H, 527,
										  "ppc64le",
										  "") "," LIST_ENTRY(H_I,
												     527,
												     "riscv64",
												     "") "," LIST_ENTRY(H_J,
															527,
															"s390x",
															"") "  ],"
															    "  'mediaType': '" MEDIA_TYPE_DOCKER_LIST
															    "',"
															    "  'schemaVersion': 2"
															    "}";

#define OCI_ENTRY(hex, size, os, arch, extra)                                                      \
	"{ 'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'size': " #size ","          \
	"  'digest': 'sha256:" hex "',"                                                            \
	"  'platform': { 'architecture': '" arch "', 'os': '" os "'" extra " } }"
#define ATTESTATION(hex, ref)                                                                      \
	"{ 'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'size': 566,"                \
	"  'digest': 'sha256:" hex "',"                                                            \
	"  'annotations': { 'vnd.docker.reference.digest': 'sha256:" ref "',"                      \
	"                   'vnd.docker.reference.type': 'attestation-manifest' },"                \
	"  'platform': { 'architecture': 'unknown', 'os': 'unknown' } }"

/* What `docker buildx build --platform linux/arm64,linux/amd64,linux/arm/v7,
 * linux/ppc64le,linux/s390x --provenance=true` pushes: images then their
 * attestation manifests (arm64 first, so order cannot pick amd64). */
static const char OCI_INDEX_BUILDKIT[] =
    "{"
    "  'schemaVersion': 2,"
    "  'mediaType': 'application/vnd.oci.image.index.v1+json',"
    "  'manifests': [" OCI_ENTRY(H_A, 1052, "linux", "arm64", "") "," OCI_ENTRY(H_B, 1052, "linux", "arm", ", 'variant': 'v7'") "," OCI_ENTRY(
	H_C, 1052, "linux", "amd64",
	"") "," OCI_ENTRY(H_D, 1052, "linux", "ppc64le",
			  "") "," OCI_ENTRY(H_E, 1052, "linux", "s390x",
					    "") "," ATTESTATION(H_F,
								H_A) "," ATTESTATION(H_G,
										     H_B) "," ATTESTATION(H_H,
													  H_C) "," ATTESTATION(H_I,
															       H_D) "," ATTESTATION(H_J,
																		    H_E) "  ],"
																			 "  'annotations': { 'org.opencontainers.image.created': '2024-05-06T07:08:09Z' }"
																			 "}";

/* A Windows-and-arm64 list (mcr.microsoft.com style). */
static const char INDEX_WINDOWS[] =
    "{"
    "  'schemaVersion': 2,"
    "  'mediaType': '" MEDIA_TYPE_DOCKER_LIST "',"
    "  'manifests': ["
    "    { 'mediaType': '" MEDIA_TYPE_DOCKER_MANIFEST "', 'size': 1161,"
    "      'digest': 'sha256:" H_K "',"
    "      'platform': { 'architecture': 'amd64', 'os': 'windows',"
    "                    'os.version': '10.0.17763.5458' } },"
    "    { 'mediaType': '" MEDIA_TYPE_DOCKER_MANIFEST "', 'size': 1161,"
    "      'digest': 'sha256:" H_L "',"
    "      'platform': { 'architecture': 'amd64', 'os': 'windows',"
    "                    'os.version': '10.0.20348.2227', 'os.features': ['win32k'] } "
    "}," LIST_ENTRY(H_M, 527, "arm64", ", 'variant': 'v8'") "  ]"
							    "}";

/* Docker's config for busybox (trimmed history). */
static const char DOCKER_CONFIG[] =
    "{"
    "  'architecture': 'amd64',"
    "  'config': {"
    "    'Hostname': '', 'Domainname': '', 'User': '',"
    "    'AttachStdin': false, 'Tty': false,"
    "    'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],"
    "    'Cmd': ['sh'], 'Image': 'sha256:" H_C "',"
    "    'Volumes': null, 'WorkingDir': '', 'Entrypoint': null, 'OnBuild': null,"
    "    'Labels': null"
    "  },"
    "  'container': '8c0a5b7e6e9a',"
    "  'created': '2023-07-18T23:19:33.655005962Z',"
    "  'docker_version': '20.10.23',"
    "  'history': [ { 'created': '2023-07-18T23:19:33.538571854Z',"
    "                 'created_by': '/bin/sh -c #(nop) ADD file:7e9002edaafd4e45 in / ' },"
    "               { 'created': '2023-07-18T23:19:33.655005962Z',"
    "                 'created_by': '/bin/sh -c #(nop)  CMD [\\'sh\\']', 'empty_layer': true } ],"
    "  'os': 'linux',"
    "  'rootfs': { 'type': 'layers', 'diff_ids': ['sha256:" H_D "'] }"
    "}";

/* An nginx-like OCI config. */
static const char OCI_CONFIG[] =
    "{"
    "  'created': '2024-01-02T03:04:05Z',"
    "  'architecture': 'arm64', 'variant': 'v8', 'os': 'linux',"
    "  'config': {"
    "    'User': '101:101',"
    "    'ExposedPorts': { '80/tcp': {}, '443/tcp': {} },"
    "    'Env': ['PATH=/usr/local/sbin:/usr/bin', 'NGINX_VERSION=1.25.3'],"
    "    'Entrypoint': ['/docker-entrypoint.sh'],"
    "    'Cmd': ['nginx', '-g', 'daemon off;'],"
    "    'Volumes': { '/var/cache/nginx': {} },"
    "    'WorkingDir': '/usr/share/nginx/html',"
    "    'Labels': { 'maintainer': 'NGINX Docker Maintainers', 'org.example.empty': '' },"
    "    'StopSignal': 'SIGQUIT'"
    "  },"
    "  'rootfs': { 'type': 'layers', 'diff_ids': ["
    "    'sha256:" H_E "', 'sha256:" H_F "', 'sha256:" H_G "' ] },"
    "  'history': [ { 'created': '2024-01-02T03:04:05Z', 'created_by': 'COPY . /' } ]"
    "}";

/* A real schema 1 manifest's shape (signed). */
static const char SCHEMA1[] =
    "{"
    "  'schemaVersion': 1,"
    "  'name': 'library/busybox', 'tag': 'latest', 'architecture': 'amd64',"
    "  'fsLayers': [ { 'blobSum': 'sha256:" H_A "' } ],"
    "  'history': [ { 'v1Compatibility': '{}' } ],"
    "  'signatures': [ { 'header': { 'jwk': { 'crv': 'P-256', 'kty': 'EC' }, 'alg': 'ES256' },"
    "                    'signature': 'abc', 'protected': 'def' } ]"
    "}";

/* ---- helpers ---- */

/* A fixture with ' turned into " (malloc'd, NUL-terminated). */
static char *J(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	for (char *p = d; *p; p++)
		if (*p == '\\' && p[1] == '\'')
			*++p = '"'; /* \' is an escaped quote: \" */
		else if (*p == '\'')
			*p = '"';
	return d;
}

/* Parse from an exactly-sized heap copy (no NUL after it: ASan sees overreads). */
static int parse_len(const char *json, size_t len, const char *ct, struct manifest **m,
		     struct cric_err *err)
{
	if (!json)
		return manifest_parse(NULL, len, ct, m, err);
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, json, len);
	int r = manifest_parse(copy, len, ct, m, err);
	free(copy);
	return r;
}

static struct manifest *parse_ok(const char *fixture, const char *ct)
{
	char *json = J(fixture);
	struct manifest *m = NULL;
	struct cric_err err = { "untouched" };
	int r = parse_len(json, strlen(json), ct, &m, &err);
	if (r != 0)
		print_message("manifest_parse: %d %s\n", r, err.msg);
	assert_int_equal(r, 0);
	assert_non_null(m);
	assert_string_equal(err.msg, "untouched");
	free(json);
	return m;
}

static void fails_raw(const char *json, size_t len, const char *ct, int expect, const char *needle)
{
	struct manifest *m = (struct manifest *)0x1;
	struct cric_err err = { { 0 } };
	int r = parse_len(json, len, ct, &m, &err);
	if (r != expect || (needle && !strstr(err.msg, needle)))
		print_message("manifest_parse(%.120s): r=%d msg=\"%s\" (want %d \"%s\")\n", json, r,
			      err.msg, expect, needle ? needle : "");
	assert_int_equal(r, expect);
	assert_ptr_equal(m, (struct manifest *)0x1);
	assert_true(strlen(err.msg) > 0);
	if (needle)
		assert_non_null(strstr(err.msg, needle));
	assert_int_equal(parse_len(json, len, ct, &m, NULL), expect);
}

static void fails(const char *fixture, const char *ct, int expect, const char *needle)
{
	char *json = J(fixture);
	fails_raw(json, strlen(json), ct, expect, needle);
	free(json);
}

/* Change one member of a fixture: path like "layers/0/size"; value NULL
 * deletes it (the reference to value is stolen). Returns compact JSON. */
static char *mutate(const char *fixture, const char *path, json_t *value)
{
	char *src = J(fixture), *p = strdup(path);
	assert_non_null(p);
	json_error_t jerr;
	json_t *doc = json_loads(src, 0, &jerr);
	assert_non_null(doc);
	json_t *cur = doc;
	char *save = NULL, *tok = strtok_r(p, "/", &save);
	while (tok) {
		char *next = strtok_r(NULL, "/", &save);
		bool idx = json_is_array(cur);
		if (!next) {
			if (idx && !value)
				assert_int_equal(json_array_remove(cur, strtoul(tok, NULL, 10)), 0);
			else if (idx)
				assert_int_equal(
				    json_array_set_new(cur, strtoul(tok, NULL, 10), value), 0);
			else if (!value)
				assert_int_equal(json_object_del(cur, tok), 0);
			else
				assert_int_equal(json_object_set_new(cur, tok, value), 0);
		} else {
			cur = idx ? json_array_get(cur, strtoul(tok, NULL, 10))
				  : json_object_get(cur, tok);
			assert_non_null(cur);
		}
		tok = next;
	}
	char *out = json_dumps(doc, JSON_COMPACT);
	assert_non_null(out);
	json_decref(doc);
	free(src);
	free(p);
	return out;
}

static void mutant_fails(const char *fixture, const char *path, json_t *value, int expect,
			 const char *needle)
{
	char *json = mutate(fixture, path, value);
	fails_raw(json, strlen(json), NULL, expect, needle);
	free(json);
}

static void mutant_ok(const char *fixture, const char *path, json_t *value)
{
	char *json = mutate(fixture, path, value);
	struct manifest *m = NULL;
	struct cric_err err;
	int r = parse_len(json, strlen(json), NULL, &m, &err);
	if (r != 0)
		print_message("mutant %s: %d %s\n", path, r, err.msg);
	assert_int_equal(r, 0);
	manifest_free(m);
	free(json);
}

/* ---- image manifests ---- */

static void test_docker_v2(void **state)
{
	(void)state;
	static const char *cts[] = {
		NULL,
		"",
		MEDIA_TYPE_DOCKER_MANIFEST,
		"application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
		"  Application/VND.Docker.Distribution.Manifest.v2+JSON  ",
		"application/json",
		"application/octet-stream",
		"text/plain; charset=utf-8",
	};
	for (size_t i = 0; i < ARRAY_SIZE(cts); i++) {
		_cleanup_manifest_ struct manifest *m = parse_ok(DOCKER_V2, cts[i]);
		assert_int_equal(m->kind, MANIFEST_DOCKER_V2);
		assert_false(manifest_kind_is_index(m->kind));
		assert_string_equal(m->config.media_type, MEDIA_TYPE_DOCKER_CONFIG);
		assert_string_equal(m->config.digest, "sha256:" H_A);
		assert_int_equal(m->config.size, 1457);
		assert_int_equal(m->n_layers, 1);
		assert_string_equal(m->layers[0].desc.media_type, MEDIA_TYPE_DOCKER_LAYER_GZIP);
		assert_string_equal(m->layers[0].desc.digest, "sha256:" H_B);
		assert_int_equal(m->layers[0].desc.size, 2591575);
		assert_int_equal(m->layers[0].compression, LAYER_GZIP);
		assert_int_equal(m->n_entries, 0);
		assert_null(m->entries);
	}
}

static void test_oci_manifest(void **state)
{
	(void)state;
	_cleanup_manifest_ struct manifest *m = parse_ok(OCI_MANIFEST, MEDIA_TYPE_OCI_MANIFEST);
	assert_int_equal(m->kind, MANIFEST_OCI);
	assert_string_equal(m->config.media_type, MEDIA_TYPE_OCI_CONFIG);
	assert_int_equal(m->n_layers, 3);
	assert_int_equal(m->layers[0].compression, LAYER_GZIP);
	assert_int_equal(m->layers[1].compression, LAYER_ZSTD);
	assert_int_equal(m->layers[2].compression, LAYER_UNCOMPRESSED);
	assert_string_equal(m->layers[1].desc.media_type, MEDIA_TYPE_OCI_LAYER_ZSTD);
	assert_string_equal(m->layers[2].desc.digest, "sha256:" H_F);
	assert_int_equal(m->layers[2].desc.size, 73109);

	/* mediaType is optional in OCI documents: header or shape decide. */
	char *json = mutate(OCI_MANIFEST, "mediaType", NULL);
	struct manifest *m2 = NULL;
	assert_int_equal(parse_len(json, strlen(json), NULL, &m2, NULL), 0);
	assert_int_equal(m2->kind, MANIFEST_OCI);
	m2 = manifest_free(m2);
	assert_int_equal(parse_len(json, strlen(json), MEDIA_TYPE_OCI_MANIFEST, &m2, NULL), 0);
	assert_int_equal(m2->kind, MANIFEST_OCI);
	manifest_free(m2);
	free(json);

	/* Docker layer types in an OCI manifest and back are fine (tools mix them);
	 * BuildKit's docker zstd and uncompressed types too. */
	mutant_ok(OCI_MANIFEST, "layers/0/mediaType", json_string(MEDIA_TYPE_DOCKER_LAYER_GZIP));
	mutant_ok(DOCKER_V2, "layers/0/mediaType", json_string(MEDIA_TYPE_OCI_LAYER_GZIP));
	mutant_ok(DOCKER_V2, "layers/0/mediaType", json_string(MEDIA_TYPE_DOCKER_LAYER_ZSTD));
	mutant_ok(DOCKER_V2, "layers/0/mediaType", json_string(MEDIA_TYPE_DOCKER_LAYER_TAR));
	/* No layers at all (FROM scratch with only metadata). */
	mutant_ok(OCI_MANIFEST, "layers", json_array());
	/* Unknown extra members, OCI 1.1 subject/artifactType, urls: ignored. */
	mutant_ok(OCI_MANIFEST, "subject",
		  json_pack("{s:s,s:s,s:i}", "mediaType", MEDIA_TYPE_OCI_MANIFEST, "digest",
			    "sha256:" H_A, "size", 10));
	mutant_ok(OCI_MANIFEST, "layers/0/urls", json_pack("[s]", "https://example.com/x"));
	mutant_ok(DOCKER_V2, "x-vendor", json_pack("{s:[i,i]}", "y", 1, 2));
	mutant_ok(DOCKER_V2, "layers/0/size", json_integer(0));
	mutant_ok(DOCKER_V2, "layers/0/size", json_integer(LAYER_MAX_BYTES));
	mutant_ok(DOCKER_V2, "config/size", json_integer(IMAGE_CONFIG_MAX_BYTES));
}

static void test_kind_consistency(void **state)
{
	(void)state;
	/* Header and mediaType disagree. */
	fails(DOCKER_V2, MEDIA_TYPE_OCI_MANIFEST, -EINVAL,
	      "Content-Type " MEDIA_TYPE_OCI_MANIFEST
	      " does not match mediaType " MEDIA_TYPE_DOCKER_MANIFEST);
	fails(DOCKER_V2, MEDIA_TYPE_DOCKER_LIST, -EINVAL, "does not match");
	fails(DOCKER_LIST, MEDIA_TYPE_OCI_INDEX, -EINVAL, "does not match");
	fails(OCI_INDEX_BUILDKIT, MEDIA_TYPE_OCI_MANIFEST, -EINVAL, "does not match");

	/* The header says index, the document has no mediaType and is a manifest. */
	char *json = mutate(OCI_MANIFEST, "mediaType", NULL);
	fails_raw(json, strlen(json), MEDIA_TYPE_OCI_INDEX, -EINVAL,
		  "an index must not have \"config\" or \"layers\"");
	free(json);

	/* Docker kinds must say what they are. */
	json = mutate(DOCKER_V2, "mediaType", NULL);
	fails_raw(json, strlen(json), MEDIA_TYPE_DOCKER_MANIFEST, -EINVAL,
		  "a Docker manifest must have \"mediaType\"");
	free(json);
	json = mutate(DOCKER_LIST, "mediaType", NULL);
	fails_raw(json, strlen(json), MEDIA_TYPE_DOCKER_LIST, -EINVAL,
		  "a Docker manifest list must have \"mediaType\"");
	free(json);

	/* Ambiguous documents (CVE-2021-41190): refused whatever the claim. */
	mutant_fails(OCI_MANIFEST, "manifests", json_array(), -EINVAL,
		     "an image manifest must not have \"manifests\"");
	mutant_fails(OCI_INDEX_BUILDKIT, "layers", json_array(), -EINVAL,
		     "an index must not have \"config\" or \"layers\"");
	mutant_fails(DOCKER_LIST, "config",
		     json_pack("{s:s,s:s,s:i}", "mediaType", MEDIA_TYPE_OCI_CONFIG, "digest",
			       "sha256:" H_A, "size", 1),
		     -EINVAL, "an index must not have");
	fails("{'schemaVersion': 2, 'config': {}, 'manifests': []}", NULL, -EINVAL,
	      "neither an image manifest nor an index");
	fails("{'schemaVersion': 2}", NULL, -EINVAL, "neither an image manifest nor an index");
	fails("{'schemaVersion': 2}", MEDIA_TYPE_OCI_MANIFEST, -EINVAL, "config");

	/* mediaType itself. */
	mutant_fails(DOCKER_V2, "mediaType", json_integer(2), -EINVAL,
		     "\"mediaType\" must be a string");
	mutant_fails(DOCKER_V2, "mediaType",
		     json_string("application/vnd.oci.artifact.manifest.v1+json"), -EOPNOTSUPP,
		     "unsupported manifest mediaType");
	mutant_fails(DOCKER_V2, "mediaType", json_string(MEDIA_TYPE_DOCKER_CONFIG), -EOPNOTSUPP,
		     "unsupported manifest mediaType");
	fails(
	    DOCKER_V2, "application/vnd.oci.artifact.manifest.v1+json", -EOPNOTSUPP,
	    "unsupported manifest Content-Type \"application/vnd.oci.artifact.manifest.v1+json\"");
	fails(DOCKER_V2, "text/html", -EOPNOTSUPP, "unsupported manifest Content-Type");
	fails(DOCKER_V2, MEDIA_TYPE_OCI_LAYER_GZIP, -EOPNOTSUPP,
	      "unsupported manifest Content-Type");

	/* schemaVersion. */
	mutant_fails(DOCKER_V2, "schemaVersion", NULL, -EINVAL, "\"schemaVersion\" is missing");
	mutant_fails(DOCKER_V2, "schemaVersion", json_string("2"), -EINVAL, "must be an integer");
	mutant_fails(DOCKER_V2, "schemaVersion", json_real(2.0), -EINVAL, "must be an integer");
	mutant_fails(DOCKER_V2, "schemaVersion", json_integer(3), -EINVAL,
		     "unsupported schemaVersion 3");
	mutant_fails(DOCKER_V2, "schemaVersion", json_integer(-2), -EINVAL,
		     "unsupported schemaVersion -2");

	assert_string_equal(manifest_kind_media_type(MANIFEST_OCI_INDEX), MEDIA_TYPE_OCI_INDEX);
	assert_string_equal(manifest_kind_media_type(MANIFEST_DOCKER_LIST), MEDIA_TYPE_DOCKER_LIST);
	assert_string_equal(manifest_kind_media_type(MANIFEST_OCI), MEDIA_TYPE_OCI_MANIFEST);
	assert_string_equal(manifest_kind_media_type(MANIFEST_DOCKER_V2),
			    MEDIA_TYPE_DOCKER_MANIFEST);
	assert_non_null(strstr(MANIFEST_ACCEPT, MEDIA_TYPE_OCI_INDEX ", "));
	assert_null(strstr(MANIFEST_ACCEPT, "distribution.manifest.v1"));
}

static void test_schema1_refused(void **state)
{
	(void)state;
	/* By header, before the body is even read. */
	fails(SCHEMA1, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED, -EOPNOTSUPP,
	      "Docker schema 1 manifests are not supported");
	fails(SCHEMA1, MEDIA_TYPE_DOCKER_SCHEMA1, -EOPNOTSUPP, "schema 1");
	fails("garbage", MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED "; charset=utf-8", -EOPNOTSUPP,
	      "schema 1");
	/* By body. */
	fails(SCHEMA1, NULL, -EOPNOTSUPP, "schemaVersion 1: Docker schema 1");
	fails(SCHEMA1, "application/json", -EOPNOTSUPP, "schema 1");
	mutant_fails(DOCKER_V2, "mediaType", json_string(MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED),
		     -EOPNOTSUPP, "schema 1");
	/* ... and schema 1 entries of a list are skipped, not chosen. */
	char *json = mutate(DOCKER_LIST, "manifests/0/mediaType",
			    json_string(MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED));
	struct manifest *m = NULL;
	assert_int_equal(parse_len(json, strlen(json), NULL, &m, NULL), 0);
	assert_int_equal(m->n_entries, 9);
	assert_int_equal(m->n_skipped, 1);
	manifest_free(m);
	free(json);
}

static void test_not_an_image(void **state)
{
	(void)state;
	/* Helm charts, OCI artifacts with the empty config, signatures. */
	mutant_fails(OCI_MANIFEST, "config/mediaType",
		     json_string("application/vnd.cncf.helm.config.v1+json"), -EOPNOTSUPP,
		     "config: unsupported config media type "
		     "\"application/vnd.cncf.helm.config.v1+json\" (not a container image?)");
	mutant_fails(OCI_MANIFEST, "config/mediaType",
		     json_string("application/vnd.oci.empty.v1+json"), -EOPNOTSUPP,
		     "not a container image");
	mutant_fails(OCI_MANIFEST, "config/mediaType", json_string(MEDIA_TYPE_OCI_LAYER_GZIP),
		     -EOPNOTSUPP, "unsupported config media type");
	mutant_fails(OCI_MANIFEST, "layers/1/mediaType",
		     json_string("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
		     -EOPNOTSUPP, "layers[1]: unsupported layer media type");
	mutant_fails(OCI_MANIFEST, "layers/1/mediaType", json_string(MEDIA_TYPE_OCI_CONFIG),
		     -EOPNOTSUPP, "unsupported layer media type");
	mutant_fails(OCI_MANIFEST, "layers/0/mediaType",
		     json_string("application/vnd.oci.image.layer.v1.tar+bzip2"), -EOPNOTSUPP,
		     "unsupported layer media type");
	/* Media types are compared exactly in documents. */
	mutant_fails(OCI_MANIFEST, "layers/0/mediaType",
		     json_string("Application/vnd.oci.image.layer.v1.tar+gzip"), -EOPNOTSUPP,
		     "unsupported layer media type");
	/* Windows foreign layers and OCI non-distributable ones. */
	mutant_fails(DOCKER_V2, "layers/0/mediaType",
		     json_string("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
		     -EOPNOTSUPP, "non-distributable (foreign) layer");
	mutant_fails(OCI_MANIFEST, "layers/2/mediaType",
		     json_string("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
		     -EOPNOTSUPP, "layers[2]: non-distributable");
}

/* Descriptors, one hostile field at a time. */
static void test_descriptor_fields(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		const char *value; /* JSON, or NULL to delete */
		int expect;
		const char *needle;
	} cases[] = {
		{ "layers/0/size", "-1", -EINVAL, "layers[0]: size -1 is negative" },
		{ "layers/0/size", "-9223372036854775808", -EINVAL, "is negative" },
		{ "layers/0/size", "9223372036854775807", -E2BIG,
		  "layers[0]: size 9223372036854775807 is larger than the limit of 68719476736 "
		  "bytes" },
		{ "layers/0/size", "68719476737", -E2BIG, "larger than the limit" },
		{ "config/size", "4194305", -E2BIG,
		  "config: size 4194305 is larger than the limit" },
		{ "layers/0/size", "1.5", -EINVAL, "\"size\" must be an integer" },
		{ "layers/0/size", "1e3", -EINVAL, "\"size\" must be an integer" },
		{ "layers/0/size", "\"12\"", -EINVAL, "\"size\" must be an integer" },
		{ "layers/0/size", "null", -EINVAL, "\"size\" must be an integer" },
		{ "layers/0/size", "true", -EINVAL, "\"size\" must be an integer" },
		{ "layers/0/size", NULL, -EINVAL, "layers[0]: \"size\" is missing" },
		{ "config/size", NULL, -EINVAL, "config: \"size\" is missing" },
		{ "layers/0/digest", NULL, -EINVAL, "layers[0]: \"digest\" is missing" },
		{ "layers/0/digest", "7", -EINVAL, "layers[0]: \"digest\" must be a string" },
		{ "layers/0/digest", "\"sha256:" H_A "0\"", -EINVAL, "65 hex digits" },
		{ "layers/0/digest", "\"sha256:abc\"", -EINVAL,
		  "layers[0]: invalid sha256 digest" },
		{ "layers/0/digest", "\"sha512:" H_A H_B "\"", -EINVAL,
		  "layers[0]: unsupported digest algorithm \"sha512\"" },
		{ "layers/0/digest", "\"SHA256:" H_A "\"", -EINVAL,
		  "unsupported digest algorithm" },
		{ "layers/0/digest",
		  "\"sha256:CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB\"",
		  -EINVAL, "upper case hex digit" },
		{ "layers/0/digest", "\"" H_A "\"", -EINVAL, "want <algorithm>:<hex>" },
		{ "layers/0/digest", "\"\"", -EINVAL, "invalid digest" },
		{ "config/digest", "\"sha256:" H_A "\\n\"", -EINVAL,
		  "config: invalid sha256 digest" },
		{ "layers/0/mediaType", NULL, -EINVAL, "layers[0]: \"mediaType\" is missing" },
		{ "layers/0/mediaType", "[]", -EINVAL, "\"mediaType\" must be a string" },
		{ "config/mediaType", "null", -EINVAL, "config: \"mediaType\" is missing" },
		{ "layers/0", "\"sha256:" H_A "\"", -EINVAL, "layers[0] must be an object" },
		{ "layers/0", "[]", -EINVAL, "layers[0] must be an object" },
		{ "layers", "{}", -EINVAL, "\"layers\" must be an array" },
		{ "layers", "null", -EINVAL, "\"layers\" must be an array" },
		{ "layers", NULL, -EINVAL, "\"layers\" must be an array" },
		{ "config", NULL, -EINVAL, "config must be an object" },
		{ "config", "\"sha256:" H_A "\"", -EINVAL, "config must be an object" },
		{ "annotations", "[]", -EINVAL, "\"annotations\" must be an object of strings" },
		{ "annotations", "{\"a\": 1}", -EINVAL, "annotation \"a\" is not a string" },
		{ "annotations", "{\"a\\nb\": 1}", -EINVAL, "annotation \"a?b\" is not a string" },
		{ "layers/0/annotations", "{\"a\": {}}", -EINVAL,
		  "layers[0]: annotation \"a\" is not a string" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *v = NULL;
		if (cases[i].value) {
			json_error_t jerr;
			v = json_loads(cases[i].value, JSON_DECODE_ANY, &jerr);
			assert_non_null(v);
		}
		mutant_fails(DOCKER_V2, cases[i].path, v, cases[i].expect, cases[i].needle);
	}
}

static char *manifest_with_layers(size_t n)
{
	json_t *layers = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(layers, json_pack("{s:s,s:i,s:s}", "mediaType",
							MEDIA_TYPE_OCI_LAYER_GZIP, "size", (int)i,
							"digest", "sha256:" H_B));
	return mutate(OCI_MANIFEST, "layers", layers);
}

static void test_layer_count(void **state)
{
	(void)state;
	char *json = manifest_with_layers(MANIFEST_MAX_LAYERS);
	struct manifest *m = NULL;
	assert_int_equal(parse_len(json, strlen(json), NULL, &m, NULL), 0);
	assert_int_equal(m->n_layers, MANIFEST_MAX_LAYERS);
	assert_int_equal(m->layers[255].desc.size, 255);
	manifest_free(m);
	free(json);

	json = manifest_with_layers(MANIFEST_MAX_LAYERS + 1);
	fails_raw(json, strlen(json), NULL, -E2BIG, "257 layers, more than the limit of 256");
	free(json);

	json = manifest_with_layers(10000);
	assert_true(strlen(json) < MANIFEST_MAX_BYTES);
	fails_raw(json, strlen(json), NULL, -E2BIG, "10000 layers");
	free(json);
}

static void test_bad_json(void **state)
{
	(void)state;
	char *json = J(DOCKER_V2);
	size_t len = strlen(json);

	/* Only len bytes are read: a truncated copy fails, however it ends. */
	for (size_t cut = 0; cut < len; cut += 7)
		fails_raw(json, cut, NULL, -EINVAL, NULL);
	fails_raw(json, len - 1, NULL, -EINVAL, "invalid JSON at line 1");
	fails_raw("", 0, NULL, -EINVAL, "manifest: invalid JSON");
	fails_raw(NULL, 0, NULL, -EINVAL, "invalid JSON");

	fails("[1, 2]", NULL, -EINVAL, "manifest is not a JSON object");
	fails("\"sha256\"", NULL, -EINVAL, "invalid JSON");
	fails("{'schemaVersion': 2} {}", NULL, -EINVAL, "invalid JSON");
	fails("{'schemaVersion': 2, 'schemaVersion': 2, 'manifests': []}", NULL, -EINVAL,
	      "duplicate object key");
	free(json);
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	/* Which "digest" would a verifier and a puller each see? Refused. */
	char *json = J(DOCKER_V2);
	char *dup = NULL;
	char *at = strstr(json, "\"size\": 2591575");
	assert_non_null(at);
	assert_true(asprintf(&dup, "%.*s\"size\": 1, %s", (int)(at - json), json, at) > 0);
	fails_raw(dup, strlen(dup), NULL, -EINVAL, "duplicate object key");
	free(dup);
	at = strstr(json, "\"mediaType\": \"application/vnd.docker.container");
	assert_true(asprintf(&dup, "%.*s\"mediaType\": \"" MEDIA_TYPE_OCI_CONFIG "\", %s",
			     (int)(at - json), json, at) > 0);
	fails_raw(dup, strlen(dup), NULL, -EINVAL, "duplicate object key");
	free(dup);
	free(json);
}

static void test_hostile_json(void **state)
{
	(void)state;
	/* Deep nesting, in an ignored member: bounded by the parser. */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 64);
	assert_non_null(deep);
	size_t n = (size_t)sprintf(deep, "{\"schemaVersion\": 2, \"x\": ");
	memset(deep + n, '[', depth);
	memset(deep + n + depth, ']', depth);
	n += 2 * depth;
	deep[n++] = '}';
	fails_raw(deep, n, NULL, -EINVAL, "invalid JSON");
	free(deep);

	/* NUL bytes, escaped NULs, invalid UTF-8. */
	static const char with_nul[] = "{\"schemaVersion\": 2,\0 \"manifests\": []}";
	fails_raw(with_nul, sizeof(with_nul) - 1, NULL, -EINVAL, "invalid JSON");
	fails("{'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json\\u0000', "
	      "'manifests': []}",
	      NULL, -EINVAL, "invalid JSON");
	fails("{'schemaVersion': 2, 'x': '\xff\xfe', 'manifests': []}", NULL, -EINVAL,
	      "invalid JSON");
	/* An over-long integer. */
	fails("{'schemaVersion': 2, 'x': 99999999999999999999999, 'manifests': []}", NULL, -EINVAL,
	      "invalid JSON");

	/* Over the size limit, even when valid: refused before parsing. */
	char *json = J(DOCKER_V2);
	size_t len = strlen(json);
	char *big = malloc(MANIFEST_MAX_BYTES + 1);
	assert_non_null(big);
	memcpy(big, json, len);
	memset(big + len, ' ', MANIFEST_MAX_BYTES + 1 - len);
	fails_raw(big, MANIFEST_MAX_BYTES + 1, NULL, -E2BIG,
		  "manifest of 4194305 bytes is larger than the limit of 4194304 bytes");
	struct manifest *m = NULL;
	assert_int_equal(parse_len(big, MANIFEST_MAX_BYTES, NULL, &m, NULL), 0);
	manifest_free(m);
	free(big);
	free(json);

	/* A message quoting hostile strings stays printable and bounded. */
	char mt[600];
	memset(mt, 'a', sizeof(mt) - 1);
	mt[sizeof(mt) - 1] = '\0';
	mt[3] = '\n';
	struct cric_err err;
	char *mutant = mutate(DOCKER_V2, "layers/0/mediaType", json_string(mt));
	m = NULL;
	assert_int_equal(parse_len(mutant, strlen(mutant), NULL, &m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "longer than 255 bytes"));
	free(mutant);
	mt[200] = '\0';
	mutant = mutate(DOCKER_V2, "layers/0/mediaType", json_string(mt));
	assert_int_equal(parse_len(mutant, strlen(mutant), NULL, &m, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "\"aaa?aaa"));
	assert_non_null(strstr(err.msg, "...\""));
	assert_null(strchr(err.msg, '\n'));
	free(mutant);
}

/* ---- indexes and platform selection ---- */

static const struct manifest_entry *select_for(const struct manifest *m, const char *platform)
{
	struct platform want;
	assert_int_equal(platform_parse(platform, &want, NULL), 0);
	const struct manifest_entry *e = NULL;
	struct cric_err err;
	int r = manifest_select(m, &want, &e, &err);
	if (r != 0)
		print_message("select %s: %d %s\n", platform, r, err.msg);
	assert_int_equal(r, 0);
	assert_non_null(e);
	return e;
}

static void select_fails(const struct manifest *m, const char *platform, const char *needle)
{
	struct platform want;
	assert_int_equal(platform_parse(platform, &want, NULL), 0);
	const struct manifest_entry *e = (const struct manifest_entry *)0x1;
	struct cric_err err;
	int r = manifest_select(m, &want, &e, &err);
	if (r != -ENOENT || !strstr(err.msg, needle))
		print_message("select %s: %d \"%s\" (want \"%s\")\n", platform, r, err.msg, needle);
	assert_int_equal(r, -ENOENT);
	assert_ptr_equal(e, (const struct manifest_entry *)0x1);
	assert_non_null(strstr(err.msg, needle));
	assert_int_equal(manifest_select(m, &want, &e, NULL), -ENOENT);
}

static void test_docker_list(void **state)
{
	(void)state;
	_cleanup_manifest_ struct manifest *m = parse_ok(DOCKER_LIST, MEDIA_TYPE_DOCKER_LIST);
	assert_int_equal(m->kind, MANIFEST_DOCKER_LIST);
	assert_true(manifest_kind_is_index(m->kind));
	assert_int_equal(m->n_entries, 10);
	assert_int_equal(m->n_skipped, 0);
	assert_int_equal(m->n_layers, 0);
	assert_null(m->layers);
	const struct manifest_entry *e = &m->entries[4];
	assert_int_equal(e->kind, MANIFEST_DOCKER_V2);
	assert_string_equal(e->desc.media_type, MEDIA_TYPE_DOCKER_MANIFEST);
	assert_string_equal(e->desc.digest, "sha256:" H_E);
	assert_int_equal(e->desc.size, 527);
	assert_true(e->has_platform);
	assert_string_equal(e->platform.os, "linux");
	assert_string_equal(e->platform.architecture, "arm64");
	assert_string_equal(e->platform.variant, "v8");
	assert_false(e->attestation);

	static const struct {
		const char *want, *digest;
	} cases[] = {
		{ "linux/amd64", "sha256:" H_A },    { "linux/arm/v5", "sha256:" H_B },
		{ "linux/arm/v6", "sha256:" H_C },   { "linux/arm/v7", "sha256:" H_D },
		{ "linux/arm/v8", "sha256:" H_D },   { "linux/arm64/v8", "sha256:" H_E },
		{ "linux/arm64", "sha256:" H_E },    { "linux/aarch64", "sha256:" H_E },
		{ "linux/386", "sha256:" H_F },      { "linux/mips64le", "sha256:" H_G },
		{ "linux/ppc64le", "sha256:" H_H },  { "linux/riscv64", "sha256:" H_I },
		{ "linux/s390x", "sha256:" H_J },    { "linux/x86_64", "sha256:" H_A },
		{ "linux/amd64/v3", "sha256:" H_A },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		e = select_for(m, cases[i].want);
		if (strcmp(e->desc.digest, cases[i].digest) != 0)
			print_message("select %s: got %s\n", cases[i].want, e->desc.digest);
		assert_string_equal(e->desc.digest, cases[i].digest);
	}
	select_fails(m, "windows/amd64",
		     "no image for platform windows/amd64 in the index (it has: linux/amd64, "
		     "linux/arm/v5, linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/386, "
		     "linux/mips64le, linux/ppc64le, linux/riscv64, linux/s390x)");
	select_fails(m, "linux/loong64", "no image for platform linux/loong64");

	/* The host's own platform finds something in busybox's list. */
	struct platform host;
	const struct manifest_entry *he;
	if (platform_host(&host, NULL) == 0)
		assert_int_equal(manifest_select(m, &host, &he, NULL), 0);
}

static void test_select_fallbacks(void **state)
{
	(void)state;
	/* Only arm/v6 and 386: an arm/v7 host takes v6, an amd64 host 386. */
	const char *src =
	    "{ 'schemaVersion': 2, 'mediaType': '" MEDIA_TYPE_DOCKER_LIST "',"
	    "  'manifests': [" LIST_ENTRY(H_C, 527, "arm", ", 'variant': 'v6'") "," LIST_ENTRY(
		H_F, 527, "386", "") "] }";
	_cleanup_manifest_ struct manifest *m = parse_ok(src, NULL);
	assert_string_equal(select_for(m, "linux/arm/v7")->desc.digest, "sha256:" H_C);
	assert_string_equal(select_for(m, "linux/arm64/v8")->desc.digest, "sha256:" H_C);
	assert_string_equal(select_for(m, "linux/amd64")->desc.digest, "sha256:" H_F);
	select_fails(m, "linux/arm/v5", "(it has: linux/arm/v6, linux/386)");

	/* Fallbacks listed first still lose to the exact variant. */
	const char *src2 =
	    "{ 'schemaVersion': 2, 'mediaType': '" MEDIA_TYPE_DOCKER_LIST "',"
	    "  'manifests': [" LIST_ENTRY(H_A, 1, "arm", ", 'variant': 'v5'") "," LIST_ENTRY(H_B, 1, "arm", ", 'variant': 'v6'") "," LIST_ENTRY(
		H_C, 1, "arm",
		"") "," LIST_ENTRY(H_D, 1, "arm",
				   ", 'variant': 'v7'") "," LIST_ENTRY(H_E, 1, "386",
								       "") "," LIST_ENTRY(H_F, 1,
											  "arm64",
											  "") "," LIST_ENTRY(H_G,
													     1,
													     "amd64",
													     "") "] }";
	_cleanup_manifest_ struct manifest *m2 = parse_ok(src2, NULL);
	/* arm without variant is arm/v7: the first of the two equals wins */
	assert_string_equal(select_for(m2, "linux/arm/v7")->desc.digest, "sha256:" H_C);
	assert_string_equal(select_for(m2, "linux/arm/v6")->desc.digest, "sha256:" H_B);
	assert_string_equal(select_for(m2, "linux/amd64")->desc.digest, "sha256:" H_G);
	/* arm64 (no variant) is exactly arm64/v8 */
	assert_string_equal(select_for(m2, "linux/arm64/v8")->desc.digest, "sha256:" H_F);
	assert_string_equal(select_for(m2, "linux/386")->desc.digest, "sha256:" H_E);
}

static void test_buildkit_index(void **state)
{
	(void)state;
	_cleanup_manifest_ struct manifest *m = parse_ok(OCI_INDEX_BUILDKIT, MEDIA_TYPE_OCI_INDEX);
	assert_int_equal(m->kind, MANIFEST_OCI_INDEX);
	assert_int_equal(m->n_entries, 10);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(m->entries[i].attestation, i >= 5);
	assert_string_equal(select_for(m, "linux/amd64")->desc.digest, "sha256:" H_C);
	assert_string_equal(select_for(m, "linux/arm64/v8")->desc.digest, "sha256:" H_A);
	assert_string_equal(select_for(m, "linux/arm/v7")->desc.digest, "sha256:" H_B);
	assert_string_equal(select_for(m, "linux/ppc64le")->desc.digest, "sha256:" H_D);
	assert_string_equal(select_for(m, "linux/s390x")->desc.digest, "sha256:" H_E);
	/* unknown/unknown is never a match, nor listed. */
	select_fails(
	    m, "linux/riscv64",
	    "(it has: linux/arm64, linux/arm/v7, linux/amd64, linux/ppc64le, linux/s390x)");

	/* An index of attestations only: nothing to run. */
	const char *src = "{ 'schemaVersion': 2, 'manifests': [" ATTESTATION(H_F, H_A) "] }";
	_cleanup_manifest_ struct manifest *a = parse_ok(src, NULL);
	assert_int_equal(a->kind, MANIFEST_OCI_INDEX);
	assert_true(a->entries[0].attestation);
	select_fails(a, "linux/amd64", "(it has: none)");

	/* The annotation alone marks an attestation, whatever its platform. */
	char *json =
	    mutate(OCI_INDEX_BUILDKIT, "manifests/2/annotations",
		   json_pack("{s:s}", "vnd.docker.reference.type", "attestation-manifest"));
	struct manifest *m2 = NULL;
	assert_int_equal(parse_len(json, strlen(json), NULL, &m2, NULL), 0);
	assert_true(m2->entries[2].attestation);
	select_fails(m2, "linux/amd64", "no image for platform linux/amd64");
	manifest_free(m2);
	free(json);
}

static void test_index_entries(void **state)
{
	(void)state;
	/* Windows entries with os.version and os.features; no Linux amd64. */
	_cleanup_manifest_ struct manifest *w = parse_ok(INDEX_WINDOWS, NULL);
	assert_int_equal(w->n_entries, 3);
	assert_string_equal(w->entries[1].platform.os_version, "10.0.20348.2227");
	select_fails(w, "linux/amd64",
		     "no image for platform linux/amd64 in the index (it has: windows/amd64, "
		     "windows/amd64, linux/arm64/v8)");
	assert_string_equal(select_for(w, "linux/arm64/v8")->desc.digest, "sha256:" H_M);
	assert_string_equal(select_for(w, "windows/amd64")->desc.digest, "sha256:" H_K);

	/* Unknown media types (cosign signatures, artifacts) are skipped; a
	 * nested index is kept but not chosen; an entry without platform only
	 * when nothing else fits. */
	const char *src =
	    "{ 'schemaVersion': 2, 'manifests': ["
	    "  { 'mediaType': 'application/vnd.dev.cosign.artifact.sig.v1+json', 'size': -5,"
	    "    'digest': 'whatever' },"
	    "  { 'mediaType': '" MEDIA_TYPE_OCI_INDEX "', 'size': 300, 'digest': 'sha256:" H_A "',"
	    "    'platform': { 'architecture': 'amd64', 'os': 'linux' } },"
	    "  { 'mediaType': '" MEDIA_TYPE_OCI_MANIFEST "', 'size': 300, 'digest': 'sha256:" H_B
	    "' }," OCI_ENTRY(H_C, 300, "linux", "arm64", "") "] }";
	_cleanup_manifest_ struct manifest *m = parse_ok(src, NULL);
	assert_int_equal(m->n_entries, 3);
	assert_int_equal(m->n_skipped, 1);
	assert_int_equal(m->entries[0].kind, MANIFEST_OCI_INDEX);
	assert_false(m->entries[1].has_platform);
	assert_string_equal(select_for(m, "linux/arm64")->desc.digest, "sha256:" H_C);
	assert_string_equal(select_for(m, "linux/amd64")->desc.digest, "sha256:" H_B);

	/* An empty index is valid, and has nothing. */
	_cleanup_manifest_ struct manifest *empty =
	    parse_ok("{ 'schemaVersion': 2, 'manifests': [] }", MEDIA_TYPE_OCI_INDEX);
	assert_int_equal(empty->n_entries, 0);
	select_fails(empty, "linux/amd64", "(it has: none)");

	/* manifest_select() on an image manifest. */
	_cleanup_manifest_ struct manifest *img = parse_ok(DOCKER_V2, NULL);
	struct platform want;
	const struct manifest_entry *e = NULL;
	struct cric_err err;
	assert_int_equal(platform_parse("linux/amd64", &want, NULL), 0);
	assert_int_equal(manifest_select(img, &want, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not an index"));
	assert_null(e);
}

static void test_index_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *path, *value;
		int expect;
		const char *needle;
	} cases[] = {
		{ "manifests", "{}", -EINVAL, "\"manifests\" must be an array" },
		{ "manifests", "null", -EINVAL, "\"manifests\" must be an array" },
		{ "manifests/3", "7", -EINVAL, "manifests[3] must be an object" },
		{ "manifests/3/mediaType", NULL, -EINVAL,
		  "manifests[3]: \"mediaType\" is missing" },
		{ "manifests/3/mediaType", "{}", -EINVAL, "must be a string" },
		{ "manifests/3/size", "-1", -EINVAL, "manifests[3]: size -1 is negative" },
		{ "manifests/3/size", "4194305", -E2BIG, "larger than the limit of 4194304" },
		{ "manifests/3/size", "\"1\"", -EINVAL, "must be an integer" },
		{ "manifests/3/digest", "\"sha256:" H_A "x\"", -EINVAL, "not a hex digit" },
		{ "manifests/3/digest", "\"sha384:" H_A "\"", -EINVAL,
		  "unsupported digest algorithm \"sha384\"" },
		{ "manifests/3/platform", "\"linux/amd64\"", -EINVAL,
		  "manifests[3].platform must be an object" },
		{ "manifests/3/platform/os", NULL, -EINVAL,
		  "manifests[3].platform: \"os\" is missing" },
		{ "manifests/3/platform/architecture", "7", -EINVAL,
		  "manifests[3].platform: \"architecture\" must be a string" },
		{ "manifests/3/platform/architecture", "\"\"", -EINVAL,
		  "\"architecture\" is empty" },
		{ "manifests/3/platform/architecture", "\"arm 64\"", -EINVAL,
		  "invalid architecture \"arm 64\"" },
		{ "manifests/3/platform/os",
		  "\"linuxlinuxlinuxlinuxlinuxlinuxlinuxlinuxlinuxlinuxlinuxlinuxlinux\"", -EINVAL,
		  "\"os\" is longer than 63 bytes" },
		{ "manifests/3/platform/variant", "[\"v7\"]", -EINVAL,
		  "\"variant\" must be a string" },
		{ "manifests/3/platform/os.version", "10", -EINVAL, "must be a string" },
		{ "manifests/3/platform/os.features", "\"win32k\"", -EINVAL,
		  "\"os.features\" must be an array of strings" },
		{ "manifests/3/annotations", "{\"vnd.docker.reference.type\": 1}", -EINVAL,
		  "is not a string" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *v = NULL;
		if (cases[i].value) {
			json_error_t jerr;
			v = json_loads(cases[i].value, JSON_DECODE_ANY, &jerr);
			assert_non_null(v);
		}
		mutant_fails(DOCKER_LIST, cases[i].path, v, cases[i].expect, cases[i].needle);
	}

	/* Entry count bound. */
	json_t *list = json_array();
	for (int i = 0; i <= MANIFEST_MAX_ENTRIES; i++)
		json_array_append_new(list, json_pack("{s:s,s:i,s:s,s:{s:s,s:s}}", "mediaType",
						      MEDIA_TYPE_DOCKER_MANIFEST, "size", 527,
						      "digest", "sha256:" H_A, "platform", "os",
						      "linux", "architecture", "amd64"));
	mutant_fails(DOCKER_LIST, "manifests", json_deep_copy(list), -E2BIG,
		     "1025 index entries, more than the limit of 1024");
	json_array_remove(list, 0);
	mutant_ok(DOCKER_LIST, "manifests", list);
}

/* ---- image user and config ---- */

static void test_image_user(void **state)
{
	(void)state;
	static const struct {
		const char *user;
		int has_uid;
		int64_t uid;
		const char *username;
	} ok[] = {
		{ NULL, 0, 0, "" },
		{ "", 0, 0, "" },
		{ "0", 1, 0, "" },
		{ "1000", 1, 1000, "" },
		{ "1000:1000", 1, 1000, "" },
		{ "65534:", 1, 65534, "" },
		{ "0001", 1, 1, "" },
		{ "4294967294", 1, 4294967294LL, "" },
		{ "nobody", 0, 0, "nobody" },
		{ "nobody:nogroup", 0, 0, "nobody" },
		{ "app:1000", 0, 0, "app" },
		{ "root", 0, 0, "root" },
		{ "1000a", 0, 0, "1000a" },
		{ "-1", 0, 0, "-1" },
		{ "www-data", 0, 0, "www-data" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct image_user u;
		struct cric_err err = { "untouched" };
		assert_int_equal(image_user_parse(ok[i].user, &u, &err), 0);
		assert_int_equal(u.has_uid, ok[i].has_uid);
		assert_int_equal(u.uid, ok[i].uid);
		assert_string_equal(u.username, ok[i].username);
		assert_string_equal(err.msg, "untouched");
	}
	char long_name[300];
	memset(long_name, 'u', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	static const struct {
		const char *user, *needle;
	} bad[] = {
		{ ":1000", "no user before ':'" },
		{ ":", "no user before ':'" },
		{ "4294967295", "uid out of range" },
		{ "99999999999999999999999", "uid out of range" },
		{ "a b", "invalid User \"a b\"" },
		{ "a/b", "invalid User" },
		{ "a\tb", "invalid User \"a?b\"" },
		{ "\x7f", "invalid User" },
		{ NULL, "name too long" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct image_user u;
		memset(&u, 0xa5, sizeof(u));
		struct image_user copy = u;
		struct cric_err err;
		const char *user = bad[i].user ? bad[i].user : long_name;
		assert_int_equal(image_user_parse(user, &u, &err), -EINVAL);
		if (!strstr(err.msg, bad[i].needle))
			print_message("user \"%.20s\": \"%s\"\n", user, err.msg);
		assert_non_null(strstr(err.msg, bad[i].needle));
		assert_memory_equal(&u, &copy, sizeof(u));
	}
}

static struct image_config *config_ok(const char *fixture, const struct manifest *m)
{
	char *json = J(fixture);
	size_t len = strlen(json);
	char *copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, json, len);
	struct image_config *c = NULL;
	struct cric_err err = { "untouched" };
	int r = image_config_parse(copy, len, m, &c, &err);
	if (r != 0)
		print_message("image_config_parse: %d %s\n", r, err.msg);
	assert_int_equal(r, 0);
	assert_string_equal(err.msg, "untouched");
	free(copy);
	free(json);
	return c;
}

static void config_fails_raw(const char *json, size_t len, const struct manifest *m, int expect,
			     const char *needle)
{
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, json, len);
	struct image_config *c = (struct image_config *)0x1;
	struct cric_err err = { { 0 } };
	int r = image_config_parse(copy, len, m, &c, &err);
	if (r != expect || !strstr(err.msg, needle))
		print_message("image_config_parse: %d \"%s\" (want %d \"%s\")\n", r, err.msg,
			      expect, needle);
	assert_int_equal(r, expect);
	assert_non_null(strstr(err.msg, needle));
	assert_ptr_equal(c, (struct image_config *)0x1);
	assert_int_equal(image_config_parse(copy, len, m, &c, NULL), expect);
	free(copy);
}

static void config_mutant_fails(const char *path, json_t *value, int expect, const char *needle)
{
	char *json = mutate(OCI_CONFIG, path, value);
	config_fails_raw(json, strlen(json), NULL, expect, needle);
	free(json);
}

static void test_config_docker(void **state)
{
	(void)state;
	_cleanup_manifest_ struct manifest *m = parse_ok(DOCKER_V2, NULL);
	_cleanup_image_config_ struct image_config *c = config_ok(DOCKER_CONFIG, m);
	assert_string_equal(c->platform.os, "linux");
	assert_string_equal(c->platform.architecture, "amd64");
	assert_string_equal(c->platform.variant, "");
	assert_null(c->user);
	assert_false(c->user_id.has_uid);
	assert_string_equal(c->user_id.username, "");
	assert_non_null(c->env);
	assert_string_equal(c->env[0],
			    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	assert_null(c->env[1]);
	assert_non_null(c->cmd);
	assert_string_equal(c->cmd[0], "sh");
	assert_null(c->cmd[1]);
	assert_null(c->entrypoint);
	assert_null(c->working_dir);
	assert_null(c->stop_signal);
	assert_null(c->exposed_ports);
	assert_null(c->volumes);
	assert_int_equal(c->n_labels, 0);
	assert_int_equal(c->n_diff_ids, 1);
	assert_string_equal(c->diff_ids[0], "sha256:" H_D);

	/* Its platform is what an index would have selected. */
	struct platform want;
	assert_int_equal(platform_parse("linux/amd64", &want, NULL), 0);
	assert_int_equal(platform_match(&want, &c->platform), 0);
}

static void test_config_oci(void **state)
{
	(void)state;
	_cleanup_manifest_ struct manifest *m = parse_ok(OCI_MANIFEST, NULL);
	_cleanup_image_config_ struct image_config *c = config_ok(OCI_CONFIG, m);
	assert_string_equal(c->platform.architecture, "arm64");
	assert_string_equal(c->platform.variant, "v8");
	assert_string_equal(c->user, "101:101");
	assert_true(c->user_id.has_uid);
	assert_int_equal(c->user_id.uid, 101);
	assert_string_equal(c->entrypoint[0], "/docker-entrypoint.sh");
	assert_null(c->entrypoint[1]);
	assert_string_equal(c->cmd[0], "nginx");
	assert_string_equal(c->cmd[2], "daemon off;");
	assert_null(c->cmd[3]);
	assert_string_equal(c->env[1], "NGINX_VERSION=1.25.3");
	assert_string_equal(c->working_dir, "/usr/share/nginx/html");
	assert_string_equal(c->stop_signal, "SIGQUIT");
	assert_string_equal(c->exposed_ports[0], "80/tcp");
	assert_string_equal(c->exposed_ports[1], "443/tcp");
	assert_null(c->exposed_ports[2]);
	assert_string_equal(c->volumes[0], "/var/cache/nginx");
	assert_null(c->volumes[1]);
	assert_int_equal(c->n_labels, 2);
	assert_string_equal(c->labels[0].key, "maintainer");
	assert_string_equal(c->labels[0].value, "NGINX Docker Maintainers");
	assert_string_equal(c->labels[1].value, "");
	assert_int_equal(c->n_diff_ids, 3);
	assert_string_equal(c->diff_ids[2], "sha256:" H_G);

	/* A user name, empty lists, no "config" at all. */
	char *json = mutate(OCI_CONFIG, "config/User", json_string("nginx"));
	struct image_config *c2 = NULL;
	assert_int_equal(image_config_parse(json, strlen(json), NULL, &c2, NULL), 0);
	assert_false(c2->user_id.has_uid);
	assert_string_equal(c2->user_id.username, "nginx");
	c2 = image_config_free(c2);
	free(json);
	json = mutate(OCI_CONFIG, "config/Cmd", json_array());
	assert_int_equal(image_config_parse(json, strlen(json), NULL, &c2, NULL), 0);
	assert_non_null(c2->cmd);
	assert_null(c2->cmd[0]);
	c2 = image_config_free(c2);
	free(json);
	json = mutate(OCI_CONFIG, "config", NULL);
	assert_int_equal(image_config_parse(json, strlen(json), NULL, &c2, NULL), 0);
	assert_null(c2->env);
	assert_null(c2->user);
	c2 = image_config_free(c2);
	free(json);
	assert_null(image_config_free(NULL));
	assert_null(manifest_free(NULL));
}

static void test_config_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *path, *value;
		int expect;
		const char *needle;
	} cases[] = {
		{ "os", NULL, -EINVAL, "image config: \"os\" is missing" },
		{ "architecture", "7", -EINVAL, "\"architecture\" must be a string" },
		{ "architecture", "\"\"", -EINVAL, "\"architecture\" is empty" },
		{ "variant", "\"v/7\"", -EINVAL, "invalid variant" },
		{ "config", "[]", -EINVAL, "\"config\" must be an object" },
		{ "config/User", "1000", -EINVAL, "\"User\" must be a string" },
		{ "config/User", "\":0\"", -EINVAL, "invalid User \":0\"" },
		{ "config/User", "\"4294967296\"", -EINVAL, "uid out of range" },
		{ "config/Env", "\"PATH=/bin\"", -EINVAL,
		  "config.Env must be an array of strings" },
		{ "config/Env", "{}", -EINVAL, "config.Env must be an array" },
		{ "config/Env/1", "7", -EINVAL, "config.Env[1] must be a string" },
		{ "config/Entrypoint", "\"/bin/sh -c\"", -EINVAL,
		  "config.Entrypoint must be an array" },
		{ "config/Cmd/0", "null", -EINVAL, "config.Cmd[0] must be a string" },
		{ "config/WorkingDir", "[]", -EINVAL, "\"WorkingDir\" must be a string" },
		{ "config/StopSignal", "9", -EINVAL, "\"StopSignal\" must be a string" },
		{ "config/StopSignal", "\"SIGSIGSIGSIGSIGSIGSIGSIGSIGSIGSIGSIG\"", -EINVAL,
		  "\"StopSignal\" is longer than 32 bytes" },
		{ "config/ExposedPorts", "[\"80/tcp\"]", -EINVAL,
		  "config.ExposedPorts must be an object" },
		{ "config/ExposedPorts", "{\"80/tcp\": 1}", -EINVAL,
		  "config.ExposedPorts[\"80/tcp\"] must be an object" },
		{ "config/ExposedPorts", "{\"\": {}}", -EINVAL, "invalid key" },
		{ "config/Volumes", "\"/data\"", -EINVAL, "config.Volumes must be an object" },
		{ "config/Labels", "[]", -EINVAL, "config.Labels must be an object of strings" },
		{ "config/Labels", "{\"a\": 1}", -EINVAL, "config.Labels[\"a\"] must be a string" },
		{ "config/Labels", "{\"a\": null}", -EINVAL, "must be a string" },
		{ "rootfs", NULL, -EINVAL, "\"rootfs\" is missing or not an object" },
		{ "rootfs", "[]", -EINVAL, "\"rootfs\" is missing or not an object" },
		{ "rootfs/type", NULL, -EINVAL, "rootfs: \"type\" is missing" },
		{ "rootfs/type", "\"tar\"", -EINVAL, "rootfs.type is \"tar\", not \"layers\"" },
		{ "rootfs/type", "1", -EINVAL, "rootfs: \"type\" must be a string" },
		{ "rootfs/diff_ids", NULL, -EINVAL, "rootfs.diff_ids is missing or not an array" },
		{ "rootfs/diff_ids", "{}", -EINVAL, "rootfs.diff_ids is missing or not an array" },
		{ "rootfs/diff_ids/1", "1", -EINVAL, "rootfs.diff_ids[1] must be a string" },
		{ "rootfs/diff_ids/1", "\"sha256:abc\"", -EINVAL,
		  "rootfs.diff_ids[1]: invalid sha256 digest" },
		{ "rootfs/diff_ids/2", "\"sha512:" H_A H_B "\"", -EINVAL,
		  "rootfs.diff_ids[2]: unsupported digest algorithm" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *v = NULL;
		if (cases[i].value) {
			json_error_t jerr;
			v = json_loads(cases[i].value, JSON_DECODE_ANY, &jerr);
			assert_non_null(v);
		}
		config_mutant_fails(cases[i].path, v, cases[i].expect, cases[i].needle);
	}

	/* diff_ids must count the manifest's layers. */
	_cleanup_manifest_ struct manifest *docker = parse_ok(DOCKER_V2, NULL);
	char *json = J(OCI_CONFIG);
	config_fails_raw(json, strlen(json), docker, -EINVAL,
			 "rootfs.diff_ids has 3 entries but the manifest has 1 layers");
	_cleanup_manifest_ struct manifest *index = parse_ok(DOCKER_LIST, NULL);
	config_fails_raw(json, strlen(json), index, -EINVAL, "an index has no image config");

	/* Bad JSON, duplicates, size and count limits. */
	config_fails_raw(json, strlen(json) - 2, NULL, -EINVAL, "image config: invalid JSON");
	config_fails_raw("[]", 2, NULL, -EINVAL, "image config is not a JSON object");
	config_fails_raw("{\"os\": \"linux\", \"os\": \"windows\"}", 32, NULL, -EINVAL,
			 "duplicate object key");
	free(json);

	json_t *ids = json_array();
	for (int i = 0; i <= MANIFEST_MAX_LAYERS; i++)
		json_array_append_new(ids, json_string("sha256:" H_A));
	config_mutant_fails("rootfs/diff_ids", ids, -E2BIG,
			    "rootfs.diff_ids has 257 entries, more than the limit of 256");
	json_t *env = json_array();
	for (int i = 0; i <= IMAGE_CONFIG_MAX_ITEMS; i++)
		json_array_append_new(env, json_string(""));
	config_mutant_fails("config/Env", env, -E2BIG, "config.Env has 65537 entries");
	json_t *labels = json_object();
	for (int i = 0; i <= IMAGE_CONFIG_MAX_ITEMS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "l%d", i);
		json_object_set_new(labels, k, json_string(""));
	}
	config_mutant_fails("config/Labels", labels, -E2BIG, "config.Labels has 65537 entries");

	char *big = malloc(IMAGE_CONFIG_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, ' ', IMAGE_CONFIG_MAX_BYTES + 1);
	big[0] = '{';
	big[IMAGE_CONFIG_MAX_BYTES] = '}';
	config_fails_raw(big, IMAGE_CONFIG_MAX_BYTES + 1, NULL, -E2BIG,
			 "image config of 4194305 bytes is larger than the limit");
	free(big);
}

/* ---- the fuzzer's seed corpus ---- */

static void test_corpus(void **state)
{
	(void)state;
	char here[PATH_MAX], dir[PATH_MAX + 64];
	snprintf(here, sizeof(here), "%s", __FILE__);
	snprintf(dir, sizeof(dir), "%s/../fuzz/corpus/fuzz-manifest", dirname(here));
	DIR *d = opendir(dir);
	if (!d)
		SKIP_MISSING("no corpus at %s", dir);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (n[0] == '.')
			continue;
		char path[PATH_MAX + 400];
		snprintf(path, sizeof(path), "%s/%s", dir, n);
		FILE *f = fopen(path, "re");
		assert_non_null(f);
		static char buf[MANIFEST_MAX_BYTES + 2];
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct manifest *m = NULL;
		struct image_config *c = NULL;
		struct cric_err err = { { 0 } }, cerr = { { 0 } };
		int r = manifest_parse(buf, len, NULL, &m, &err);
		int rc = image_config_parse(buf, len, NULL, &c, &cerr);
		bool is_bad = strncmp(n, "bad-", 4) == 0;
		bool is_config = strncmp(n, "config-", 7) == 0;
		bool ok = is_bad ? (r < 0 && rc < 0) : is_config ? rc == 0 : r == 0;
		if (!ok)
			print_message("corpus %s: manifest %d \"%s\", config %d \"%s\"\n", n, r,
				      err.msg, rc, cerr.msg);
		assert_true(ok);
		if (strncmp(n, "index-", 6) == 0)
			assert_true(manifest_kind_is_index(m->kind));
		if (strncmp(n, "manifest-", 9) == 0)
			assert_false(manifest_kind_is_index(m->kind));
		manifest_free(m);
		image_config_free(c);
		files++;
	}
	closedir(d);
	print_message("corpus: %d files checked\n", files);
	assert_true(files > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker_v2),        cmocka_unit_test(test_oci_manifest),
		cmocka_unit_test(test_kind_consistency), cmocka_unit_test(test_schema1_refused),
		cmocka_unit_test(test_not_an_image),     cmocka_unit_test(test_descriptor_fields),
		cmocka_unit_test(test_layer_count),      cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_duplicate_keys),   cmocka_unit_test(test_hostile_json),
		cmocka_unit_test(test_docker_list),      cmocka_unit_test(test_select_fallbacks),
		cmocka_unit_test(test_buildkit_index),   cmocka_unit_test(test_index_entries),
		cmocka_unit_test(test_index_hostile),    cmocka_unit_test(test_image_user),
		cmocka_unit_test(test_config_docker),    cmocka_unit_test(test_config_oci),
		cmocka_unit_test(test_config_hostile),   cmocka_unit_test(test_corpus),
	};
	return cmocka_run_group_tests_name("imaged-manifest", tests, NULL, NULL);
}
