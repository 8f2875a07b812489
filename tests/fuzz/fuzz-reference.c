/* Fuzz the image reference parser (imaged/reference.c): image_ref_parse()
 * on arbitrary bytes. The input is the reference; if it holds a '\n', what
 * follows is the default registry. A reference it accepts must satisfy the
 * grammar's limits and normalise to a fixed point; a refused one must leave
 * the output untouched and say why. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/reference.h"

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check(const struct image_ref *r, bool default_is_docker)
{
	char buf[IMAGE_REF_STRING_MAX + 1], expect[IMAGE_REF_STRING_MAX + 64];
	if (!terminated(r->domain, sizeof(r->domain)) || !terminated(r->path, sizeof(r->path)) ||
	    !terminated(r->tag, sizeof(r->tag)) || !terminated(r->digest, sizeof(r->digest)) ||
	    !terminated(r->name, sizeof(r->name)) || !terminated(r->string, sizeof(r->string)))
		abort();
	if (!r->domain[0] || !r->path[0] || strlen(r->name) > IMAGE_REF_NAME_MAX)
		abort();
	if (!r->tag[0] && !r->digest[0])
		abort(); /* "latest" is added when neither is given */
	if (r->digest[0] && image_digest_validate(r->digest, NULL) != 0)
		abort();
	if (strpbrk(r->path, ":@") || strchr(r->tag, '@'))
		abort();
	snprintf(expect, sizeof(expect), "%s/%s", r->domain, r->path);
	if (strcmp(expect, r->name) != 0)
		abort();
	snprintf(expect, sizeof(expect), "%s%s%s%s%s", r->name, r->tag[0] ? ":" : "", r->tag,
		 r->digest[0] ? "@" : "", r->digest);
	if (strcmp(expect, r->string) != 0)
		abort();

	/* Canonical strings are fixed points, whatever the default registry. */
	struct image_ref again;
	if (image_ref_parse(r->string, "other.example:1", &again, NULL) != 0 ||
	    strcmp(again.string, r->string) != 0)
		abort();
	/* Familiar ones too, with Docker Hub as default. */
	image_ref_familiar(r, buf);
	if (default_is_docker &&
	    (image_ref_parse(buf, NULL, &again, NULL) != 0 || strcmp(again.string, r->string) != 0))
		abort();
	if (image_ref_repo_tag(r, buf) != (r->tag[0] ? 0 : -ENOENT))
		abort();
	if (r->digest[0] && image_ref_repo_digest(r, r->digest, buf, NULL) != 0)
		abort();
	(void)registry_api_host(r->domain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char *def = strchr(s, '\n');
	if (def)
		*def++ = '\0';

	struct image_ref r;
	struct cric_err err;
	memset(&r, 0, sizeof(r));
	memset(err.msg, 'x', sizeof(err.msg));
	int k = image_ref_parse(s, def, &r, &err);
	if (k == 0) {
		check(&r,
		      !def || strcmp(def, "docker.io") == 0 || strcmp(def, "index.docker.io") == 0);
	} else {
		static const struct image_ref zero;
		if (k != -EINVAL || !terminated(err.msg, sizeof(err.msg)) ||
		    memcmp(&r, &zero, sizeof(r)) != 0)
			abort();
		if (strncmp(err.msg, "invalid reference \"", 19) != 0 &&
		    strncmp(err.msg, "invalid default registry \"", 26) != 0)
			abort();
		for (const char *c = err.msg; *c; c++)
			if ((unsigned char)*c < 0x20)
				abort(); /* messages quote input, never copy control bytes */
	}

	char id[IMAGE_DIGEST_LEN + 1];
	if (image_id_parse(s, id) == 0 && image_digest_validate(id, NULL) != 0)
		abort();
	free(s);
	return 0;
}
