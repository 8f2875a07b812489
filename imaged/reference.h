/* Image references ("busybox", "quay.io/x/y:1.0", "repo@sha256:...") parsed
 * and normalised the way Docker and containerd do (distribution/reference's
 * grammar and ParseNormalizedNamed()):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path
 *   domain    := host [ ":" port ]        host: DNS-ish name, IPv4, or [IPv6]
 *   path      := component [ "/" component ]*
 *   component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" [a-f0-9]{64}
 *
 * Normalisation: the first path element is the domain when it contains '.'
 * or ':', is "localhost", or has upper case letters; otherwise the reference
 * is a short name and gets the default domain. "index.docker.io" is
 * "docker.io"; a one-element path on docker.io gets "library/". A reference
 * with neither tag nor digest gets the tag "latest"; one with both keeps both
 * (the digest is what identifies the image; see image_ref_repo_tag()).
 *
 *   busybox                 -> docker.io/library/busybox:latest
 *   user/img                -> docker.io/user/img:latest
 *   localhost:5000/x/y:1    -> localhost:5000/x/y:1
 *   busybox@sha256:<hex>    -> docker.io/library/busybox@sha256:<hex>
 *
 * Stricter than Docker on purpose: only sha256 digests (the only algorithm
 * cric verifies), port numbers 1-65535, and the 255-byte limit applies to the
 * whole normalised name (domain "/" path), as distribution did before 2023.
 *
 * An image id ("sha256:<hex>" or the bare 64 hex digits) is not a reference:
 * the bare form is refused here, and "sha256:<hex>" would parse as the tag
 * of docker.io/library/sha256. Callers that accept ids (ImageStatus,
 * RemoveImage) try image_id_parse() first.
 *
 * Pure functions on caller memory: nothing here allocates, blocks or logs.
 * Functions that can fail return a negative errno, fill err (optional) only on
 * failure ("invalid reference \"X\": <reason>"), and write their outputs only
 * on success.
 */
#pragma once

#include <stdbool.h>

#include "common/error.h"

#define IMAGE_REF_NAME_MAX   255 /* domain "/" path */
#define IMAGE_REF_TAG_MAX    128
#define IMAGE_DIGEST_LEN     71 /* "sha256:" and 64 hex digits */
#define IMAGE_REF_STRING_MAX (IMAGE_REF_NAME_MAX + 1 + IMAGE_REF_TAG_MAX + 1 + IMAGE_DIGEST_LEN)

#define IMAGE_REF_DEFAULT_DOMAIN "docker.io"

struct image_ref {
	char domain[IMAGE_REF_NAME_MAX + 1];   /* "docker.io", "localhost:5000", "[::1]:5000" */
	char path[IMAGE_REF_NAME_MAX + 1];     /* "library/busybox": the repository */
	char tag[IMAGE_REF_TAG_MAX + 1];       /* "" when only a digest was given */
	char digest[IMAGE_DIGEST_LEN + 1];     /* "" or "sha256:<64 lowercase hex>" */
	char name[IMAGE_REF_NAME_MAX + 1];     /* domain "/" path */
	char string[IMAGE_REF_STRING_MAX + 1]; /* canonical: name [":" tag] ["@" digest] */
};

/* Parse and normalise s. default_domain (NULL: docker.io) completes short
 * names; it must be a domain that reads as one ("registry.local",
 * "myregistry:5000", "localhost": a '.', a ':port' or localhost, so that the
 * canonical string parses back to itself), and "library/" is added only on
 * docker.io, as Podman does for other registries.
 * -EINVAL with the reason for anything the grammar above refuses, for a
 * 64-hex-digit string, or for a digest of another algorithm. */
int image_ref_parse(const char *s, const char *default_domain, struct image_ref *ret,
		    struct cric_err *err);

/* The CRI repo_tags entry, fully qualified as containerd reports it:
 * "docker.io/library/busybox:latest". -ENOENT when the reference has no tag
 * (a pull by digest only). For "name:tag@digest" the tag is returned; whether
 * it names the pulled image is the caller's decision (containerd drops it). */
int image_ref_repo_tag(const struct image_ref *r, char buf[static IMAGE_REF_STRING_MAX + 1]);

/* The CRI repo_digests entry "<name>@<digest>" for the manifest digest the
 * pull resolved to (not necessarily r->digest, which may name an index).
 * -EINVAL if digest is not "sha256:<64 lowercase hex>". */
int image_ref_repo_digest(const struct image_ref *r, const char *digest,
			  char buf[static IMAGE_REF_STRING_MAX + 1], struct cric_err *err);

/* Docker's short ("familiar") form, for messages: "busybox:latest",
 * "user/img:latest", "quay.io/x/y@sha256:...". */
void image_ref_familiar(const struct image_ref *r, char buf[static IMAGE_REF_STRING_MAX + 1]);

/* The host serving the registry API for a normalised domain: docker.io's API
 * lives on registry-1.docker.io; other domains serve themselves. Returns a
 * static string or domain itself. */
const char *registry_api_host(const char *domain);

/* 0 if s is "sha256:" followed by 64 lowercase hex digits; -EINVAL otherwise,
 * naming the problem (unsupported algorithm, wrong length, upper case...). */
int image_digest_validate(const char *s, struct cric_err *err);

/* An image id as callers may give it: "sha256:<64 hex>" or the bare 64 hex
 * digits. Writes the "sha256:<hex>" form; -EINVAL if s is neither. */
int image_id_parse(const char *s, char ret[static IMAGE_DIGEST_LEN + 1]);
