/* imaged's pull configuration: the "imaged" section of the config. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/pull-int.h"
#include "imaged/registry.h"

#define DEFAULT_MAX_DOWNLOADS 3
#define DEFAULT_PROGRESS_SEC  REGISTRY_DEFAULT_PROGRESS_TIMEOUT
#define DEFAULT_PROGRESS_MIN  REGISTRY_DEFAULT_PROGRESS_MIN_BYTES
#define MAX_PROGRESS_MIN      (1u << 30)

/* ---- config ---- */

static int bad(const struct cric_config *cfg, const char *key, const char *want,
	       struct cric_err *err)
{
	return config_bad_key(cfg, "imaged", key, want, err);
}

static bool domain_ok(const char *d)
{
	struct image_ref ref;
	char s[IMAGE_REF_NAME_MAX + 8];
	snprintf(s, sizeof(s), "%s/x", d);
	/* A domain parses as the domain of "<domain>/x". */
	return strlen(d) <= IMAGE_REF_NAME_MAX - 2 && image_ref_parse(s, NULL, &ref, NULL) == 0 &&
	       strcmp(ref.domain, d) == 0;
}

/* The scalar settings of the "imaged" section sec. */
static int load_settings(const struct cric_config *cfg, const json_t *sec, struct pull_config *pc,
			 struct cric_err *err)
{
	const json_t *v;
	if ((v = json_object_get(sec, "default_registry"))) {
		if (!json_is_string(v) || !domain_ok(json_string_value(v)))
			return bad(cfg, "default_registry", "a registry domain (\"docker.io\")",
				   err);
		snprintf(pc->default_registry, sizeof(pc->default_registry), "%s",
			 json_string_value(v));
	}
	if ((v = json_object_get(sec, "credentials_file"))) {
		if (!json_is_string(v))
			return bad(cfg, "credentials_file", "a path", err);
		if (*json_string_value(v) && !(pc->credentials_file = strdup(json_string_value(v))))
			return -ENOMEM;
	}
	if ((v = json_object_get(sec, "max_concurrent_downloads"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 64)
			return bad(cfg, "max_concurrent_downloads", "an integer from 1 to 64", err);
		pc->max_downloads = (unsigned)json_integer_value(v);
	}
	if ((v = json_object_get(sec, "pull_progress_timeout_seconds"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 3600)
			return bad(cfg, "pull_progress_timeout_seconds",
				   "an integer from 1 to 3600", err);
		pc->progress_timeout_sec = (unsigned)json_integer_value(v);
	}
	if ((v = json_object_get(sec, "pull_progress_min_bytes"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > MAX_PROGRESS_MIN)
			return bad(cfg, "pull_progress_min_bytes", "an integer from 1 to 2^30",
				   err);
		pc->progress_min_bytes = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(sec, "fetch_helper"))) {
		if (!json_is_string(v) || json_string_value(v)[0] != '/')
			return bad(cfg, "fetch_helper", "an absolute path", err);
		if (!(pc->fetch_helper = strdup(json_string_value(v))))
			return -ENOMEM;
	}
	if ((v = json_object_get(sec, "fetch_idle_seconds"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 3600)
			return bad(cfg, "fetch_idle_seconds", "an integer from 1 to 3600", err);
		pc->fetch_idle_sec = (unsigned)json_integer_value(v);
	}
	return 0;
}

/* One entry of "registries": domain dom, its spec into r. */
static int load_registry(const struct cric_config *cfg, const char *dom, const json_t *spec,
			 struct pull_registry *r, struct cric_err *err)
{
	const json_t *mir = json_object_get(spec, "mirrors");
	const json_t *ins = json_object_get(spec, "insecure");
	if (!domain_ok(dom) || !json_is_object(spec) || (mir && !json_is_array(mir)) ||
	    (ins && !json_is_boolean(ins)) || json_array_size(mir) > PULL_MAX_MIRRORS)
		return bad(cfg, "registries",
			   "an object of registry domains to {\"mirrors\": [up to 8 "
			   "domains], \"insecure\": bool}",
			   err);
	snprintf(r->domain, sizeof(r->domain), "%s", dom);
	r->insecure = ins && json_is_true(ins);
	for (size_t i = 0; i < json_array_size(mir); i++) {
		const char *m = json_string_value(json_array_get(mir, i));
		if (!m || !domain_ok(m))
			return bad(cfg, "registries.<domain>.mirrors",
				   "a list of registry domains (\"host:port\")", err);
		if (!(r->mirrors[i] = strdup(m)))
			return -ENOMEM;
	}
	return 0;
}

static int load_registries(const struct cric_config *cfg, const json_t *regs,
			   struct pull_config *pc, struct cric_err *err)
{
	if (regs && !json_is_object(regs))
		return bad(cfg, "registries", "an object", err);
	if (json_object_size(regs) > 256)
		return bad(cfg, "registries", "at most 256 registries", err);
	pc->registries = calloc(json_object_size(regs) + 1, sizeof(*pc->registries));
	if (!pc->registries)
		return -ENOMEM;
	const char *dom;
	json_t *spec;
	json_object_foreach ((json_t *)regs, dom, spec) {
		int r = load_registry(cfg, dom, spec, &pc->registries[pc->n_registries++], err);
		if (r < 0)
			return r;
	}
	return 0;
}

int pull_config_load(const struct cric_config *cfg, struct pull_config *pc, struct cric_err *err)
{
	memset(pc, 0, sizeof(*pc));
	snprintf(pc->default_registry, sizeof(pc->default_registry), "%s",
		 IMAGE_REF_DEFAULT_DOMAIN);
	pc->max_downloads = DEFAULT_MAX_DOWNLOADS;
	pc->progress_timeout_sec = DEFAULT_PROGRESS_SEC;
	pc->progress_min_bytes = DEFAULT_PROGRESS_MIN;
	pc->max_request_seconds = cfg->max_request_seconds;
	const json_t *sec = json_object_get(cfg->doc, "imaged");
	if (!sec)
		return 0;
	if (!json_is_object(sec))
		return err_set(err, -EINVAL, "config \"%s\": \"imaged\" must be an object",
			       cfg->config_file);
	int r = load_settings(cfg, sec, pc, err);
	if (r < 0)
		return r;
	return load_registries(cfg, json_object_get(sec, "registries"), pc, err);
}

void pull_config_done(struct pull_config *pc)
{
	for (size_t i = 0; i < pc->n_registries; i++)
		for (size_t k = 0; pc->registries[i].mirrors[k]; k++)
			free(pc->registries[i].mirrors[k]);
	free(pc->registries);
	free(pc->credentials_file);
	free(pc->fetch_helper);
	memset(pc, 0, sizeof(*pc));
}

const struct pull_registry *pull_registry_of(const struct pull_config *pc, const char *domain)
{
	for (size_t i = 0; i < pc->n_registries; i++)
		if (strcmp(pc->registries[i].domain, domain) == 0)
			return &pc->registries[i];
	return NULL;
}
