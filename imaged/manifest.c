#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

#define streq(a, b) (strcmp((a), (b)) == 0)

#define QUOTE_MAX 128
/* Longest media type looked up (RFC 6838 allows 127 + "/" + 127). */
#define MEDIA_TYPE_MAX  255
#define WORKING_DIR_MAX 4096
#define STOP_SIGNAL_MAX 32
#define LIST_ITEM_MAX   4096 /* a port or volume key */

enum role {
	ROLE_MANIFEST,
	ROLE_INDEX,
	ROLE_SCHEMA1,
	ROLE_CONFIG,
	ROLE_LAYER,
	ROLE_FOREIGN_LAYER,
};

static const struct media_type {
	const char *name;
	enum role role;
	int value; /* enum manifest_kind or enum layer_compression */
} media_types[] = {
	{ MEDIA_TYPE_DOCKER_MANIFEST, ROLE_MANIFEST, MANIFEST_DOCKER_V2 },
	{ MEDIA_TYPE_OCI_MANIFEST, ROLE_MANIFEST, MANIFEST_OCI },
	{ MEDIA_TYPE_DOCKER_LIST, ROLE_INDEX, MANIFEST_DOCKER_LIST },
	{ MEDIA_TYPE_OCI_INDEX, ROLE_INDEX, MANIFEST_OCI_INDEX },
	{ MEDIA_TYPE_DOCKER_SCHEMA1, ROLE_SCHEMA1, 0 },
	{ MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED, ROLE_SCHEMA1, 0 },
	{ MEDIA_TYPE_DOCKER_CONFIG, ROLE_CONFIG, 0 },
	{ MEDIA_TYPE_OCI_CONFIG, ROLE_CONFIG, 0 },
	{ MEDIA_TYPE_DOCKER_LAYER_GZIP, ROLE_LAYER, LAYER_GZIP },
	{ MEDIA_TYPE_DOCKER_LAYER_TAR, ROLE_LAYER, LAYER_UNCOMPRESSED },
	{ MEDIA_TYPE_DOCKER_LAYER_ZSTD, ROLE_LAYER, LAYER_ZSTD },
	{ MEDIA_TYPE_OCI_LAYER_TAR, ROLE_LAYER, LAYER_UNCOMPRESSED },
	{ MEDIA_TYPE_OCI_LAYER_GZIP, ROLE_LAYER, LAYER_GZIP },
	{ MEDIA_TYPE_OCI_LAYER_ZSTD, ROLE_LAYER, LAYER_ZSTD },
	{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", ROLE_FOREIGN_LAYER, 0 },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar", ROLE_FOREIGN_LAYER, 0 },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", ROLE_FOREIGN_LAYER, 0 },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", ROLE_FOREIGN_LAYER, 0 },
};

#define SCHEMA1_REFUSED                                                                            \
	"Docker schema 1 manifests are not supported (deprecated and unverifiable); push the "     \
	"image again with a current client"

static const struct media_type *media_type_find(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++)
		if (streq(s, media_types[i].name))
			return &media_types[i];
	return NULL;
}

/* A string from the input fit for a message (see reference.c). */
static const char *quote(const char *s, char buf[static QUOTE_MAX + 4])
{
	size_t i = 0;
	for (; i < QUOTE_MAX && s[i]; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
	buf[i] = '\0';
	if (s[i])
		memcpy(buf + i, "...", 4);
	return buf;
}

bool manifest_kind_is_index(enum manifest_kind kind)
{
	return kind == MANIFEST_DOCKER_LIST || kind == MANIFEST_OCI_INDEX;
}

const char *manifest_kind_media_type(enum manifest_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++)
		if ((media_types[i].role == ROLE_MANIFEST || media_types[i].role == ROLE_INDEX) &&
		    media_types[i].value == (int)kind)
			return media_types[i].name;
	return NULL;
}

/* ---- Content-Type ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* The kind a Content-Type header names: 0 when it names none (absent or
 * generic JSON). */
static int content_type_kind(const char *ct, int *ret, struct cric_err *err)
{
	char q[QUOTE_MAX + 4], mt[MEDIA_TYPE_MAX + 1];
	*ret = 0;
	if (!ct)
		return 0;
	while (is_space(*ct))
		ct++;
	size_t n = strcspn(ct, ";");
	while (n > 0 && is_space(ct[n - 1]))
		n--;
	if (n == 0)
		return 0;
	if (n > MEDIA_TYPE_MAX)
		return err_set(err, -EOPNOTSUPP, "unsupported manifest Content-Type \"%s\"",
			       quote(ct, q));
	for (size_t i = 0; i < n; i++)
		mt[i] = (ct[i] >= 'A' && ct[i] <= 'Z') ? (char)(ct[i] - 'A' + 'a') : ct[i];
	mt[n] = '\0';
	if (streq(mt, "application/json") || streq(mt, "text/plain") ||
	    streq(mt, "application/octet-stream"))
		return 0;
	const struct media_type *t = media_type_find(mt);
	if (t && t->role == ROLE_SCHEMA1)
		return err_set(err, -EOPNOTSUPP, "Content-Type %s: " SCHEMA1_REFUSED, t->name);
	if (!t || (t->role != ROLE_MANIFEST && t->role != ROLE_INDEX))
		return err_set(err, -EOPNOTSUPP, "unsupported manifest Content-Type \"%s\"",
			       quote(mt, q));
	*ret = t->value;
	return 0;
}

/* ---- small JSON helpers ---- */

static int load_json(const void *data, size_t len, size_t max, const char *what, json_t **ret,
		     struct cric_err *err)
{
	if (len > max)
		return err_set(err, -E2BIG, "%s of %zu bytes is larger than the limit of %zu bytes",
			       what, len, max);
	json_error_t jerr;
	json_t *doc = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return err_set(err, -EINVAL, "%s: invalid JSON at line %d column %d: %s", what,
			       jerr.line, jerr.column, jerr.text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return err_set(err, -EINVAL, "%s is not a JSON object", what);
	}
	*ret = doc;
	return 0;
}

/* A string member of at most max bytes: 0 and *ret set (NULL when absent or
 * null, which is an error if required); -EINVAL for another type or an
 * over-long value. */
static int get_string(json_t *o, const char *where, const char *key, size_t max, bool required,
		      const char **ret, struct cric_err *err)
{
	json_t *v = json_object_get(o, key);
	*ret = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return err_set(err, -EINVAL, "%s%s\"%s\" is missing", where,
				       *where ? ": " : "", key);
		return 0;
	}
	if (!json_is_string(v))
		return err_set(err, -EINVAL, "%s%s\"%s\" must be a string", where,
			       *where ? ": " : "", key);
	if (json_string_length(v) > max)
		return err_set(err, -EINVAL, "%s%s\"%s\" is longer than %zu bytes", where,
			       *where ? ": " : "", key, max);
	*ret = json_string_value(v);
	return 0;
}

/* An OCI annotations map, if present: an object of strings. */
static int check_annotations(json_t *o, const char *where, const char **reference_type,
			     struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	json_t *a = json_object_get(o, "annotations");
	if (reference_type)
		*reference_type = NULL;
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_object(a))
		return err_set(err, -EINVAL, "%s%s\"annotations\" must be an object of strings",
			       where, *where ? ": " : "");
	const char *k;
	json_t *v;
	json_object_foreach (a, k, v)
		if (!json_is_string(v))
			return err_set(err, -EINVAL, "%s%sannotation \"%s\" is not a string", where,
				       *where ? ": " : "", quote(k, q));
	if (reference_type)
		*reference_type =
		    json_string_value(json_object_get(a, "vnd.docker.reference.type"));
	return 0;
}

/* ---- descriptors ---- */

static int64_t size_limit(enum role role)
{
	switch (role) {
	case ROLE_CONFIG:
		return IMAGE_CONFIG_MAX_BYTES;
	case ROLE_LAYER:
		return LAYER_MAX_BYTES;
	default:
		return MANIFEST_MAX_BYTES;
	}
}

/* digest and size of descriptor o (its media type is already known). */
static int parse_digest_size(json_t *o, const char *where, enum role role, struct descriptor *d,
			     struct cric_err *err)
{
	const char *digest;
	int r = get_string(o, where, "digest", IMAGE_DIGEST_LEN + 64, true, &digest, err);
	if (r < 0)
		return r;
	r = image_digest_validate(digest, err);
	if (r < 0)
		return err_prefix(err, r, "%s", where);
	snprintf(d->digest, sizeof(d->digest), "%s", digest);

	json_t *size = json_object_get(o, "size");
	if (!size)
		return err_set(err, -EINVAL, "%s: \"size\" is missing", where);
	if (!json_is_integer(size))
		return err_set(err, -EINVAL, "%s: \"size\" must be an integer", where);
	json_int_t n = json_integer_value(size);
	if (n < 0)
		return err_set(err, -EINVAL, "%s: size %" JSON_INTEGER_FORMAT " is negative", where,
			       n);
	if (n > size_limit(role))
		return err_set(err, -E2BIG,
			       "%s: size %" JSON_INTEGER_FORMAT
			       " is larger than the limit of %" PRId64 " bytes",
			       where, n, size_limit(role));
	d->size = (int64_t)n;
	return check_annotations(o, where, NULL, err);
}

/* A descriptor whose media type must have `role`; *ret_value (optional) gets
 * the media type's value (a layer's compression). */
static int parse_descriptor(json_t *o, const char *where, enum role role, struct descriptor *d,
			    int *ret_value, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	if (!json_is_object(o))
		return err_set(err, -EINVAL, "%s must be an object", where);
	const char *mt;
	int r = get_string(o, where, "mediaType", MEDIA_TYPE_MAX, true, &mt, err);
	if (r < 0)
		return r;
	const struct media_type *t = media_type_find(mt);
	if (role == ROLE_LAYER && t && t->role == ROLE_FOREIGN_LAYER)
		return err_set(err, -EOPNOTSUPP,
			       "%s: non-distributable (foreign) layer %s is not supported", where,
			       t->name);
	if (!t || t->role != role)
		return err_set(err, -EOPNOTSUPP, "%s: unsupported %s media type \"%s\"%s", where,
			       role == ROLE_CONFIG ? "config" : "layer", quote(mt, q),
			       role == ROLE_CONFIG ? " (not a container image?)" : "");
	d->media_type = t->name;
	if (ret_value)
		*ret_value = t->value;
	return parse_digest_size(o, where, role, d, err);
}

static bool field_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

static int platform_field(json_t *o, const char *where, const char *key, bool required,
			  char dst[static PLATFORM_FIELD_MAX + 1], struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	const char *v;
	int r = get_string(o, where, key, PLATFORM_FIELD_MAX, required, &v, err);
	if (r < 0 || !v)
		return r;
	if (required && !*v)
		return err_set(err, -EINVAL, "%s: \"%s\" is empty", where, key);
	for (const char *c = v; *c; c++)
		if (!field_char_ok(*c))
			return err_set(err, -EINVAL, "%s: invalid %s \"%s\"", where, key,
				       quote(v, q));
	snprintf(dst, PLATFORM_FIELD_MAX + 1, "%s", v);
	return 0;
}

static int check_string_array(json_t *o, const char *where, const char *key, struct cric_err *err)
{
	json_t *a = json_object_get(o, key);
	if (!a || json_is_null(a))
		return 0;
	size_t i;
	json_t *v;
	if (!json_is_array(a))
		return err_set(err, -EINVAL, "%s: \"%s\" must be an array of strings", where, key);
	json_array_foreach (a, i, v)
		if (!json_is_string(v))
			return err_set(err, -EINVAL, "%s: \"%s\" must be an array of strings",
				       where, key);
	return 0;
}

/* An index entry's or an image config's os/architecture/variant/os.version. */
static int parse_platform(json_t *o, const char *where, struct platform *p, struct cric_err *err)
{
	int r;
	memset(p, 0, sizeof(*p));
	if ((r = platform_field(o, where, "architecture", true, p->architecture, err)) < 0 ||
	    (r = platform_field(o, where, "os", true, p->os, err)) < 0 ||
	    (r = platform_field(o, where, "variant", false, p->variant, err)) < 0 ||
	    (r = platform_field(o, where, "os.version", false, p->os_version, err)) < 0 ||
	    (r = check_string_array(o, where, "os.features", err)) < 0)
		return r;
	return 0;
}

/* ---- image manifests ---- */

static int parse_image_manifest(json_t *doc, struct manifest *m, struct cric_err *err)
{
	int r = parse_descriptor(json_object_get(doc, "config"), "config", ROLE_CONFIG, &m->config,
				 NULL, err);
	if (r < 0)
		return r;

	json_t *layers = json_object_get(doc, "layers");
	if (!json_is_array(layers))
		return err_set(err, -EINVAL, "\"layers\" must be an array");
	size_t n = json_array_size(layers);
	if (n > MANIFEST_MAX_LAYERS)
		return err_set(err, -E2BIG, "%zu layers, more than the limit of %d", n,
			       MANIFEST_MAX_LAYERS);
	m->layers = calloc(n ? n : 1, sizeof(*m->layers));
	if (!m->layers)
		return err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[32];
		int compression = LAYER_UNCOMPRESSED;
		snprintf(where, sizeof(where), "layers[%zu]", i);
		r = parse_descriptor(json_array_get(layers, i), where, ROLE_LAYER,
				     &m->layers[i].desc, &compression, err);
		if (r < 0)
			return r;
		m->layers[i].compression = (enum layer_compression)compression;
		m->n_layers++;
	}
	return check_annotations(doc, "", NULL, err);
}

/* ---- indexes ---- */

static int parse_entry(json_t *o, const char *where, struct manifest *m, struct cric_err *err)
{
	if (!json_is_object(o))
		return err_set(err, -EINVAL, "%s must be an object", where);
	const char *mt;
	int r = get_string(o, where, "mediaType", MEDIA_TYPE_MAX, true, &mt, err);
	if (r < 0)
		return r;
	const struct media_type *t = media_type_find(mt);
	if (!t || (t->role != ROLE_MANIFEST && t->role != ROLE_INDEX)) {
		m->n_skipped++; /* "An encountered mediaType that is unknown ... MUST be ignored" */
		return 0;
	}

	struct manifest_entry *e = &m->entries[m->n_entries];
	memset(e, 0, sizeof(*e));
	e->desc.media_type = t->name;
	e->kind = (enum manifest_kind)t->value;
	r = parse_digest_size(o, where, ROLE_MANIFEST, &e->desc, err);
	if (r < 0)
		return r;
	json_t *p = json_object_get(o, "platform");
	if (p && !json_is_null(p)) {
		char pwhere[48];
		snprintf(pwhere, sizeof(pwhere), "%s.platform", where);
		if (!json_is_object(p))
			return err_set(err, -EINVAL, "%s must be an object", pwhere);
		r = parse_platform(p, pwhere, &e->platform, err);
		if (r < 0)
			return r;
		e->has_platform = true;
	}
	const char *reference_type;
	r = check_annotations(o, where, &reference_type, err);
	if (r < 0)
		return r;
	e->attestation = (reference_type && streq(reference_type, "attestation-manifest")) ||
			 (e->has_platform && streq(e->platform.os, "unknown") &&
			  streq(e->platform.architecture, "unknown"));
	m->n_entries++;
	return 0;
}

static int parse_index(json_t *doc, struct manifest *m, struct cric_err *err)
{
	json_t *list = json_object_get(doc, "manifests");
	if (!json_is_array(list))
		return err_set(err, -EINVAL, "\"manifests\" must be an array");
	size_t n = json_array_size(list);
	if (n > MANIFEST_MAX_ENTRIES)
		return err_set(err, -E2BIG, "%zu index entries, more than the limit of %d", n,
			       MANIFEST_MAX_ENTRIES);
	m->entries = calloc(n ? n : 1, sizeof(*m->entries));
	if (!m->entries)
		return err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[32];
		snprintf(where, sizeof(where), "manifests[%zu]", i);
		int r = parse_entry(json_array_get(list, i), where, m, err);
		if (r < 0)
			return r;
	}
	return check_annotations(doc, "", NULL, err);
}

/* ---- manifest_parse ---- */

/* The kind the document's "mediaType" names, 0 if it has none. */
static int document_kind(json_t *doc, int *ret, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	const char *mt;
	*ret = 0;
	int r = get_string(doc, "", "mediaType", MEDIA_TYPE_MAX, false, &mt, err);
	if (r < 0 || !mt)
		return r;
	const struct media_type *t = media_type_find(mt);
	if (t && t->role == ROLE_SCHEMA1)
		return err_set(err, -EOPNOTSUPP, "mediaType %s: " SCHEMA1_REFUSED, t->name);
	if (!t || (t->role != ROLE_MANIFEST && t->role != ROLE_INDEX))
		return err_set(err, -EOPNOTSUPP, "unsupported manifest mediaType \"%s\"",
			       quote(mt, q));
	*ret = t->value;
	return 0;
}

static int check_schema_version(json_t *doc, struct cric_err *err)
{
	json_t *sv = json_object_get(doc, "schemaVersion");
	if (!sv)
		return err_set(err, -EINVAL, "\"schemaVersion\" is missing");
	if (!json_is_integer(sv))
		return err_set(err, -EINVAL, "\"schemaVersion\" must be an integer");
	if (json_integer_value(sv) == 1)
		return err_set(err, -EOPNOTSUPP, "schemaVersion 1: " SCHEMA1_REFUSED);
	if (json_integer_value(sv) != 2)
		return err_set(err, -EINVAL, "unsupported schemaVersion %" JSON_INTEGER_FORMAT,
			       json_integer_value(sv));
	return 0;
}

int manifest_parse(const void *data, size_t len, const char *content_type, struct manifest **ret,
		   struct cric_err *err)
{
	int header_kind, doc_kind;
	int r = content_type_kind(content_type, &header_kind, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *doc = NULL;
	r = load_json(data, len, MANIFEST_MAX_BYTES, "manifest", &doc, err);
	if (r < 0)
		return r;
	if ((r = document_kind(doc, &doc_kind, err)) < 0 ||
	    (r = check_schema_version(doc, err)) < 0)
		return r;
	if (header_kind && doc_kind && header_kind != doc_kind)
		return err_set(err, -EINVAL, "Content-Type %s does not match mediaType %s",
			       manifest_kind_media_type(header_kind),
			       manifest_kind_media_type(doc_kind));

	bool has_index = json_object_get(doc, "manifests") != NULL;
	bool has_image = json_object_get(doc, "config") || json_object_get(doc, "layers");
	int kind = doc_kind ? doc_kind : header_kind;
	if (!kind) {
		if (has_index == has_image)
			return err_set(err, -EINVAL,
				       "no mediaType, and neither an image manifest nor an index");
		kind = has_index ? MANIFEST_OCI_INDEX : MANIFEST_OCI;
	}
	if (manifest_kind_is_index(kind) && has_image)
		return err_set(err, -EINVAL, "an index must not have \"config\" or \"layers\"");
	if (!manifest_kind_is_index(kind) && has_index)
		return err_set(err, -EINVAL, "an image manifest must not have \"manifests\"");
	if ((kind == MANIFEST_DOCKER_V2 || kind == MANIFEST_DOCKER_LIST) && !doc_kind)
		return err_set(err, -EINVAL, "a Docker %s must have \"mediaType\"",
			       kind == MANIFEST_DOCKER_V2 ? "manifest" : "manifest list");

	_cleanup_manifest_ struct manifest *m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(err, -ENOMEM, "out of memory");
	m->kind = (enum manifest_kind)kind;
	r = manifest_kind_is_index(m->kind) ? parse_index(doc, m, err)
					    : parse_image_manifest(doc, m, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(m);
	return 0;
}

struct manifest *manifest_free(struct manifest *m)
{
	if (m) {
		free(m->layers);
		free(m->entries);
		free(m);
	}
	return NULL;
}

/* ---- platform selection ---- */

int manifest_select(const struct manifest *m, const struct platform *want,
		    const struct manifest_entry **ret, struct cric_err *err)
{
	if (!manifest_kind_is_index(m->kind))
		return err_set(err, -EINVAL, "not an index: %s", manifest_kind_media_type(m->kind));

	const struct manifest_entry *best = NULL, *unlabelled = NULL;
	int best_rank = INT_MAX;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		if (manifest_kind_is_index(e->kind) || e->attestation)
			continue;
		if (!e->has_platform) {
			if (!unlabelled)
				unlabelled = e;
			continue;
		}
		int rank = platform_match(want, &e->platform);
		if (rank >= 0 && rank < best_rank) {
			best = e;
			best_rank = rank;
		}
	}
	if (!best)
		best = unlabelled;
	if (best) {
		*ret = best;
		return 0;
	}

	char w[PLATFORM_STRING_SIZE], has[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < m->n_entries && used < sizeof(has) - 1; i++) {
		const struct manifest_entry *e = &m->entries[i];
		char p[PLATFORM_STRING_SIZE];
		if (!e->has_platform || e->attestation)
			continue;
		platform_format(&e->platform, p);
		int k = snprintf(has + used, sizeof(has) - used, "%s%s", used ? ", " : "", p);
		used = k < 0 ? sizeof(has) : used + (size_t)k;
	}
	platform_format(want, w);
	return err_set(err, -ENOENT, "no image for platform %s in the index (it has: %s)", w,
		       has[0] ? has : "none");
}

/* ---- image user ---- */

int image_user_parse(const char *user, struct image_user *ret, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	struct image_user u;
	memset(&u, 0, sizeof(u));
	if (!user || !*user) {
		*ret = u;
		return 0;
	}
	size_t n = strcspn(user, ":");
	if (n == 0)
		return err_set(err, -EINVAL, "invalid User \"%s\": no user before ':'",
			       quote(user, q));
	if (strspn(user, "0123456789") == n) {
		uint64_t uid = 0;
		for (size_t i = 0; i < n; i++) {
			uid = uid * 10 + (uint64_t)(user[i] - '0');
			if (uid > 4294967294u)
				return err_set(err, -EINVAL,
					       "invalid User \"%s\": uid out of range",
					       quote(user, q));
		}
		u.has_uid = true;
		u.uid = (int64_t)uid;
	} else {
		if (n > IMAGE_USER_NAME_MAX)
			return err_set(err, -EINVAL, "invalid User \"%s\": name too long",
				       quote(user, q));
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)user[i];
			if (c <= 0x20 || c == 0x7f || c == '/')
				return err_set(err, -EINVAL, "invalid User \"%s\"", quote(user, q));
		}
		memcpy(u.username, user, n);
	}
	*ret = u;
	return 0;
}

/* ---- image config ---- */

static char **strv_new(size_t n)
{
	return calloc(n + 1, sizeof(char *));
}

/* An array of strings (or null/absent: *ret stays NULL). */
static int get_strv(json_t *o, const char *where, const char *key, char ***ret,
		    struct cric_err *err)
{
	json_t *a = json_object_get(o, key);
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return err_set(err, -EINVAL, "%s.%s must be an array of strings", where, key);
	size_t n = json_array_size(a);
	if (n > IMAGE_CONFIG_MAX_ITEMS)
		return err_set(err, -E2BIG, "%s.%s has %zu entries, more than the limit of %d",
			       where, key, n, IMAGE_CONFIG_MAX_ITEMS);
	_cleanup_strv_free_ char **v = strv_new(n);
	if (!v)
		return err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s))
			return err_set(err, -EINVAL, "%s.%s[%zu] must be a string", where, key, i);
		v[i] = strdup(json_string_value(s));
		if (!v[i])
			return err_set(err, -ENOMEM, "out of memory");
	}
	*ret = TAKE_PTR(v);
	return 0;
}

/* The keys of an object whose values are objects ({"80/tcp": {}}). */
static int get_keys(json_t *o, const char *where, const char *key, char ***ret,
		    struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	json_t *obj = json_object_get(o, key);
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return err_set(err, -EINVAL, "%s.%s must be an object", where, key);
	size_t n = json_object_size(obj);
	if (n > IMAGE_CONFIG_MAX_ITEMS)
		return err_set(err, -E2BIG, "%s.%s has %zu entries, more than the limit of %d",
			       where, key, n, IMAGE_CONFIG_MAX_ITEMS);
	_cleanup_strv_free_ char **v = strv_new(n);
	if (!v)
		return err_set(err, -ENOMEM, "out of memory");
	size_t i = 0;
	const char *k;
	json_t *val;
	json_object_foreach (obj, k, val) {
		if (!json_is_object(val) && !json_is_null(val))
			return err_set(err, -EINVAL, "%s.%s[\"%s\"] must be an object", where, key,
				       quote(k, q));
		if (!*k || strlen(k) > LIST_ITEM_MAX)
			return err_set(err, -EINVAL, "%s.%s: invalid key \"%s\"", where, key,
				       quote(k, q));
		v[i] = strdup(k);
		if (!v[i++])
			return err_set(err, -ENOMEM, "out of memory");
	}
	*ret = TAKE_PTR(v);
	return 0;
}

static int dup_string(json_t *o, const char *where, const char *key, size_t max, char **ret,
		      struct cric_err *err)
{
	const char *s;
	int r = get_string(o, where, key, max, false, &s, err);
	if (r < 0 || !s || !*s)
		return r;
	*ret = strdup(s);
	return *ret ? 0 : err_set(err, -ENOMEM, "out of memory");
}

static int get_labels(json_t *o, struct image_config *c, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	json_t *obj = json_object_get(o, "Labels");
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return err_set(err, -EINVAL, "config.Labels must be an object of strings");
	size_t n = json_object_size(obj);
	if (n > IMAGE_CONFIG_MAX_ITEMS)
		return err_set(err, -E2BIG,
			       "config.Labels has %zu entries, more than the limit of %d", n,
			       IMAGE_CONFIG_MAX_ITEMS);
	c->labels = calloc(n ? n : 1, sizeof(*c->labels));
	if (!c->labels)
		return err_set(err, -ENOMEM, "out of memory");
	const char *k;
	json_t *v;
	json_object_foreach (obj, k, v) {
		if (!json_is_string(v))
			return err_set(err, -EINVAL, "config.Labels[\"%s\"] must be a string",
				       quote(k, q));
		struct image_label *l = &c->labels[c->n_labels];
		l->key = strdup(k);
		l->value = strdup(json_string_value(v));
		c->n_labels++; /* counted now so that image_config_free() frees a half pair */
		if (!l->key || !l->value)
			return err_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_container_config(json_t *doc, struct image_config *c, struct cric_err *err)
{
	json_t *o = json_object_get(doc, "config");
	int r;
	if (!o || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return err_set(err, -EINVAL, "\"config\" must be an object");
	if ((r = dup_string(o, "config", "User", IMAGE_USER_NAME_MAX * 2 + 1, &c->user, err)) < 0 ||
	    (r = image_user_parse(c->user, &c->user_id, err)) < 0 ||
	    (r = get_strv(o, "config", "Env", &c->env, err)) < 0 ||
	    (r = get_strv(o, "config", "Entrypoint", &c->entrypoint, err)) < 0 ||
	    (r = get_strv(o, "config", "Cmd", &c->cmd, err)) < 0 ||
	    (r = dup_string(o, "config", "WorkingDir", WORKING_DIR_MAX, &c->working_dir, err)) <
		0 ||
	    (r = dup_string(o, "config", "StopSignal", STOP_SIGNAL_MAX, &c->stop_signal, err)) <
		0 ||
	    (r = get_keys(o, "config", "ExposedPorts", &c->exposed_ports, err)) < 0 ||
	    (r = get_keys(o, "config", "Volumes", &c->volumes, err)) < 0 ||
	    (r = get_labels(o, c, err)) < 0)
		return r;
	return 0;
}

static int parse_rootfs(json_t *doc, struct image_config *c, struct cric_err *err)
{
	char q[QUOTE_MAX + 4];
	json_t *rootfs = json_object_get(doc, "rootfs");
	if (!json_is_object(rootfs))
		return err_set(err, -EINVAL, "\"rootfs\" is missing or not an object");
	const char *type;
	int r = get_string(rootfs, "rootfs", "type", 64, true, &type, err);
	if (r < 0)
		return r;
	if (!streq(type, "layers"))
		return err_set(err, -EINVAL, "rootfs.type is \"%s\", not \"layers\"",
			       quote(type, q));
	json_t *ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(ids))
		return err_set(err, -EINVAL, "rootfs.diff_ids is missing or not an array");
	size_t n = json_array_size(ids);
	if (n > MANIFEST_MAX_LAYERS)
		return err_set(err, -E2BIG,
			       "rootfs.diff_ids has %zu entries, more than the limit of %d", n,
			       MANIFEST_MAX_LAYERS);
	c->diff_ids = calloc(n ? n : 1, sizeof(*c->diff_ids));
	if (!c->diff_ids)
		return err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		if (!id)
			return err_set(err, -EINVAL, "rootfs.diff_ids[%zu] must be a string", i);
		r = image_digest_validate(id, err);
		if (r < 0)
			return err_prefix(err, r, "rootfs.diff_ids[%zu]", i);
		snprintf(c->diff_ids[i], sizeof(c->diff_ids[i]), "%s", id);
	}
	c->n_diff_ids = n;
	return 0;
}

int image_config_parse(const void *data, size_t len, const struct manifest *m,
		       struct image_config **ret, struct cric_err *err)
{
	_cleanup_json_ json_t *doc = NULL;
	int r = load_json(data, len, IMAGE_CONFIG_MAX_BYTES, "image config", &doc, err);
	if (r < 0)
		return r;
	_cleanup_image_config_ struct image_config *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(err, -ENOMEM, "out of memory");
	if ((r = parse_platform(doc, "image config", &c->platform, err)) < 0 ||
	    (r = parse_container_config(doc, c, err)) < 0 || (r = parse_rootfs(doc, c, err)) < 0)
		return r;
	if (m && manifest_kind_is_index(m->kind))
		return err_set(err, -EINVAL, "an index has no image config");
	if (m && c->n_diff_ids != m->n_layers)
		return err_set(err, -EINVAL,
			       "rootfs.diff_ids has %zu entries but the manifest has %zu layers",
			       c->n_diff_ids, m->n_layers);
	*ret = TAKE_PTR(c);
	return 0;
}

struct image_config *image_config_free(struct image_config *c)
{
	if (!c)
		return NULL;
	free(c->user);
	strv_free(c->env);
	strv_free(c->entrypoint);
	strv_free(c->cmd);
	free(c->working_dir);
	free(c->stop_signal);
	strv_free(c->exposed_ports);
	strv_free(c->volumes);
	for (size_t i = 0; i < c->n_labels; i++) {
		free(c->labels[i].key);
		free(c->labels[i].value);
	}
	free(c->labels);
	free(c->diff_ids);
	free(c);
	return NULL;
}
