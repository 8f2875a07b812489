/* Fuzz the manifest, index and image config parsers (imaged/manifest.c):
 * manifest_parse() on arbitrary bytes under each Content-Type a registry may
 * send, manifest_select() on every index it accepts, image_config_parse() on
 * the same bytes (with and without a manifest to count layers against).
 * Accepted documents must satisfy the limits the header promises; refused
 * ones must leave the output alone and say why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/manifest.h"

static const char *const content_types[] = {
	NULL,
	MEDIA_TYPE_DOCKER_MANIFEST,
	MEDIA_TYPE_OCI_MANIFEST,
	MEDIA_TYPE_DOCKER_LIST,
	MEDIA_TYPE_OCI_INDEX "; charset=utf-8",
	"application/json",
	MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED,
};

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_desc(const struct descriptor *d, int64_t max)
{
	if (!d->media_type || image_digest_validate(d->digest, NULL) != 0 || d->size < 0 ||
	    d->size > max)
		abort();
}

static void check_manifest(const struct manifest *m)
{
	static const char *const platforms[] = { "linux/amd64",    "linux/arm64/v8",
						 "linux/arm/v7",   "linux/s390x",
						 "windows/amd64",  "linux/386",
						 "linux/amd64/v3", "linux/arm64/v9.2" };
	switch (m->kind) {
	case MANIFEST_DOCKER_V2:
	case MANIFEST_OCI:
		check_desc(&m->config, IMAGE_CONFIG_MAX_BYTES);
		if (strcmp(m->config.media_type, MEDIA_TYPE_DOCKER_CONFIG) != 0 &&
		    strcmp(m->config.media_type, MEDIA_TYPE_OCI_CONFIG) != 0)
			abort();
		if (m->n_layers > MANIFEST_MAX_LAYERS || m->n_entries || m->entries || !m->layers)
			abort();
		for (size_t i = 0; i < m->n_layers; i++) {
			check_desc(&m->layers[i].desc, LAYER_MAX_BYTES);
			if (m->layers[i].compression > LAYER_ZSTD)
				abort();
		}
		break;
	case MANIFEST_DOCKER_LIST:
	case MANIFEST_OCI_INDEX:
		if (m->n_entries + m->n_skipped > MANIFEST_MAX_ENTRIES || m->n_layers ||
		    m->layers || !m->entries)
			abort();
		for (size_t i = 0; i < m->n_entries; i++) {
			const struct manifest_entry *e = &m->entries[i];
			check_desc(&e->desc, MANIFEST_MAX_BYTES);
			if (strcmp(e->desc.media_type, manifest_kind_media_type(e->kind)) != 0)
				abort();
			if (e->has_platform && (!e->platform.os[0] || !e->platform.architecture[0]))
				abort();
		}
		for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++) {
			struct platform want;
			const struct manifest_entry *e = NULL;
			struct cric_err err;
			if (platform_parse(platforms[i], &want, NULL) != 0)
				abort();
			int r = manifest_select(m, &want, &e, &err);
			if (r == 0 && (e < m->entries || e >= m->entries + m->n_entries ||
				       e->attestation || manifest_kind_is_index(e->kind)))
				abort();
			if (r != 0 && (r != -ENOENT || e || !terminated(err.msg, sizeof(err.msg))))
				abort();
		}
		break;
	default:
		abort();
	}
}

static void check_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		if (i > IMAGE_CONFIG_MAX_ITEMS)
			abort();
}

static void check_config(const struct image_config *c, const struct manifest *m)
{
	if (!c->platform.os[0] || !c->platform.architecture[0])
		abort();
	if (c->n_diff_ids > MANIFEST_MAX_LAYERS || (m && c->n_diff_ids != m->n_layers))
		abort();
	for (size_t i = 0; i < c->n_diff_ids; i++)
		if (image_digest_validate(c->diff_ids[i], NULL) != 0)
			abort();
	if (c->user_id.has_uid && (c->user_id.uid < 0 || c->user_id.uid > 4294967294LL))
		abort();
	if (c->user_id.has_uid && c->user_id.username[0])
		abort();
	if ((c->user_id.has_uid || c->user_id.username[0]) && !c->user)
		abort();
	check_strv(c->env);
	check_strv(c->entrypoint);
	check_strv(c->cmd);
	check_strv(c->exposed_ports);
	check_strv(c->volumes);
	for (size_t i = 0; i < c->n_labels; i++)
		if (!c->labels[i].key || !c->labels[i].value)
			abort();
}

static bool known_error(int r)
{
	return r == -EINVAL || r == -E2BIG || r == -EOPNOTSUPP || r == -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest *image = NULL;
	for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
		struct manifest *m = (struct manifest *)0x1;
		struct cric_err err;
		memset(err.msg, 'x', sizeof(err.msg));
		int r = manifest_parse(data, size, content_types[i], &m, &err);
		if (r == 0) {
			check_manifest(m);
			if (!image && !manifest_kind_is_index(m->kind))
				image = m;
			else
				manifest_free(m);
		} else if (!known_error(r) || m != (struct manifest *)0x1 ||
			   !terminated(err.msg, sizeof(err.msg))) {
			abort();
		}
	}

	const struct manifest *against[] = { NULL, image };
	for (size_t i = 0; i < 2; i++) {
		struct image_config *c = (struct image_config *)0x1;
		struct cric_err err;
		memset(err.msg, 'x', sizeof(err.msg));
		int r = image_config_parse(data, size, against[i], &c, &err);
		if (r == 0) {
			check_config(c, against[i]);
			image_config_free(c);
		} else if (!known_error(r) || c != (struct image_config *)0x1 ||
			   !terminated(err.msg, sizeof(err.msg))) {
			abort();
		}
		if (!image)
			break;
	}
	manifest_free(image);
	return 0;
}
