/* Image manifests, indexes and image configs: the JSON documents a registry
 * serves, parsed into what a pull and the CRI image record need.
 *
 * Kinds: Docker image manifest v2 schema 2, OCI image manifest, Docker
 * manifest list and OCI image index (the last two: "indexes"). Docker schema 1
 * is refused (-EOPNOTSUPP, with a message saying so). Everything here is
 * hostile input until proved otherwise: inputs are bounded, duplicated JSON
 * keys are refused, every field cric uses is type-checked, every digest must
 * be sha256, sizes must be non-negative integers below the limits below.
 *
 * Errors: -E2BIG (input or a count over a limit), -EOPNOTSUPP (well-formed
 * but not something cric runs: schema 1, unknown manifest or config media
 * type, non-distributable layers), -EINVAL (anything malformed), -ENOENT
 * (manifest_select(): no entry for the platform), -ENOMEM. err (optional) is
 * filled only on failure, in the form "layers[3]: size -1 is negative"; the
 * caller adds what it fetched ("pull X: manifest sha256:...: ").
 *
 * Parsing neither blocks nor logs. A parsed struct owns all its memory and is
 * freed with its *_free() function (NULL accepted, NULL returned); outputs are
 * written only on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "imaged/platform.h"
#include "imaged/reference.h"

#define MANIFEST_MAX_BYTES     (4 * 1024 * 1024)   /* a manifest or an index */
#define IMAGE_CONFIG_MAX_BYTES (4 * 1024 * 1024)   /* an image config blob */
#define MANIFEST_MAX_LAYERS    256                 /* layers of one image */
#define MANIFEST_MAX_ENTRIES   1024                /* entries of one index */
#define LAYER_MAX_BYTES        ((int64_t)64 << 30) /* one (compressed) layer blob */
#define IMAGE_CONFIG_MAX_ITEMS 65536               /* entries of each list or map of a config */
#define IMAGE_USER_NAME_MAX    255

#define MEDIA_TYPE_DOCKER_MANIFEST       "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_TYPE_DOCKER_LIST           "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_TYPE_OCI_MANIFEST          "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_TYPE_OCI_INDEX             "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1        "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

#define MEDIA_TYPE_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MEDIA_TYPE_OCI_CONFIG    "application/vnd.oci.image.config.v1+json"

#define MEDIA_TYPE_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
/* Not in Docker's spec, but what BuildKit writes for these compressions. */
#define MEDIA_TYPE_DOCKER_LAYER_TAR  "application/vnd.docker.image.rootfs.diff.tar"
#define MEDIA_TYPE_DOCKER_LAYER_ZSTD "application/vnd.docker.image.rootfs.diff.tar.zstd"
#define MEDIA_TYPE_OCI_LAYER_TAR     "application/vnd.oci.image.layer.v1.tar"
#define MEDIA_TYPE_OCI_LAYER_GZIP    "application/vnd.oci.image.layer.v1.tar+gzip"
#define MEDIA_TYPE_OCI_LAYER_ZSTD    "application/vnd.oci.image.layer.v1.tar+zstd"

/* The Accept header of a manifest request: every kind manifest_parse()
 * takes, indexes first. */
#define MANIFEST_ACCEPT                                                                            \
	MEDIA_TYPE_OCI_INDEX ", " MEDIA_TYPE_DOCKER_LIST ", " MEDIA_TYPE_OCI_MANIFEST              \
			     ", " MEDIA_TYPE_DOCKER_MANIFEST

enum manifest_kind {
	MANIFEST_DOCKER_V2 = 1, /* MEDIA_TYPE_DOCKER_MANIFEST */
	MANIFEST_OCI,           /* MEDIA_TYPE_OCI_MANIFEST */
	MANIFEST_DOCKER_LIST,   /* MEDIA_TYPE_DOCKER_LIST */
	MANIFEST_OCI_INDEX,     /* MEDIA_TYPE_OCI_INDEX */
};

enum layer_compression {
	LAYER_UNCOMPRESSED,
	LAYER_GZIP,
	LAYER_ZSTD,
};

struct descriptor {
	const char *media_type; /* a static MEDIA_TYPE_* string, never freed */
	char digest[IMAGE_DIGEST_LEN + 1];
	int64_t size; /* 0 <= size <= the limit of its role */
};

struct manifest_layer {
	struct descriptor desc;
	enum layer_compression compression;
};

/* One image (or nested index) an index points to. */
struct manifest_entry {
	struct descriptor desc;
	enum manifest_kind kind;
	bool has_platform;
	struct platform platform; /* as written (not normalised) */
	/* BuildKit's provenance/SBOM manifests ("unknown/unknown", or annotation
	 * vnd.docker.reference.type = attestation-manifest): never run. */
	bool attestation;
};

struct manifest {
	enum manifest_kind kind;

	/* Image manifests (MANIFEST_DOCKER_V2, MANIFEST_OCI). */
	struct descriptor config; /* MEDIA_TYPE_DOCKER_CONFIG or MEDIA_TYPE_OCI_CONFIG */
	size_t n_layers;          /* 0 ... MANIFEST_MAX_LAYERS, base layer first */
	struct manifest_layer *layers;

	/* Indexes (MANIFEST_DOCKER_LIST, MANIFEST_OCI_INDEX). */
	size_t n_entries;
	struct manifest_entry *entries;
	/* Entries of media types cric does not know (signatures, artifacts,
	 * schema 1), skipped as the OCI spec says ("MUST be ignored"). */
	size_t n_skipped;
};

bool manifest_kind_is_index(enum manifest_kind kind);
/* The MEDIA_TYPE_* string of a kind. */
const char *manifest_kind_media_type(enum manifest_kind kind);

/* Parse a manifest or index of len bytes (no NUL needed). content_type is the
 * response's Content-Type header (parameters ignored; NULL, "", or a generic
 * JSON/octet-stream type mean "not said"). The kind comes from the document's
 * "mediaType", else the header, else its shape ("manifests" vs "config" and
 * "layers"); when both name one they must agree, and the shape must fit the
 * kind (an index with "layers", or a manifest with "manifests", is refused:
 * such ambiguous documents could be read two ways). Docker kinds must carry
 * "mediaType"; "schemaVersion" must be 2. */
int manifest_parse(const void *data, size_t len, const char *content_type, struct manifest **ret,
		   struct cric_err *err);

struct manifest *manifest_free(struct manifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct manifest *, manifest_free)
#define _cleanup_manifest_ _cleanup_(manifest_freep)

/* The entry of index `m` to pull for platform `want` (e.g. from
 * platform_host()): the best platform_match() rank wins, the first in index
 * order among equals, so an exact variant beats a fallback. Attestations and
 * nested indexes are never chosen. An entry without "platform" is chosen only
 * when nothing matches; the caller must then check the image config's
 * platform (pull_image() checks every config with platform_check_image()).
 * *ret points into m. -EINVAL if m is not an index; -ENOENT when nothing fits
 * (err lists the platforms the index has). */
int manifest_select(const struct manifest *m, const struct platform *want,
		    const struct manifest_entry **ret, struct cric_err *err);

/* The CRI user of an image, from its config's User, as containerd derives it:
 * "" -> neither; "1000" or "1000:1000" -> uid 1000; "app" or "app:grp" ->
 * username "app". -EINVAL for an empty user part (":1000"), a uid above
 * 4294967294, or a name that is too long or holds control characters, '/' or
 * white space. */
struct image_user {
	bool has_uid;
	int64_t uid;
	char username[IMAGE_USER_NAME_MAX + 1]; /* "" unless a name was given */
};
int image_user_parse(const char *user, struct image_user *ret, struct cric_err *err);

struct image_label {
	char *key;
	char *value;
};

/* What cric needs of an image config (application/vnd.oci.image.config.v1+json
 * or application/vnd.docker.container.image.v1+json). Lists are
 * NULL-terminated and NULL when the config does not have them (or has null);
 * strings are NULL when absent. */
struct image_config {
	struct platform platform; /* os, architecture (required), variant, os.version */
	char *user;               /* config.User as written */
	struct image_user user_id;
	char **env; /* "KEY=value" */
	char **entrypoint;
	char **cmd;
	char *working_dir;
	char *stop_signal;
	char **exposed_ports; /* keys of config.ExposedPorts: "80/tcp" */
	char **volumes;       /* keys of config.Volumes */
	size_t n_labels;
	struct image_label *labels;
	size_t n_diff_ids; /* rootfs.diff_ids: uncompressed layer digests */
	char (*diff_ids)[IMAGE_DIGEST_LEN + 1];
};

/* Parse an image config blob of len bytes. rootfs.type must be "layers".
 * With m (an image manifest) given, rootfs.diff_ids must count m's layers. */
int image_config_parse(const void *data, size_t len, const struct manifest *m,
		       struct image_config **ret, struct cric_err *err);

struct image_config *image_config_free(struct image_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct image_config *, image_config_free)
#define _cleanup_image_config_ _cleanup_(image_config_freep)
