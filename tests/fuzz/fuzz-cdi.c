/* Fuzz the CDI spec parser (runtimed/cdi.c): cdi_spec_parse() on arbitrary
 * bytes as YAML and as JSON, then cdi_edits_for() over what it accepts;
 * and the bytes as a cdi.k8s.io/ annotation's value (cdi_request_collect):
 * every name it takes is a qualified name, each once.
 * An accepted spec must hold what the resolver and the plan rely on: a
 * kind with one '/', devices with names, and edits that the plan can
 * apply without finding a field of the wrong type. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtimed/cdi.h"

static void check_edits(const json_t *e)
{
	static const char *const lists[] = { "env", "deviceNodes", "mounts", "hooks" };
	for (size_t i = 0; i < 4; i++)
		if (!json_is_array(json_object_get(e, lists[i])))
			abort();
	size_t j;
	json_t *v;
	json_array_foreach (json_object_get(e, "env"), j, v)
		if (!json_is_string(v) || !strchr(json_string_value(v), '='))
			abort();
	json_array_foreach (json_object_get(e, "deviceNodes"), j, v)
		if (!json_is_string(json_object_get(v, "path")) ||
		    json_string_value(json_object_get(v, "path"))[0] != '/')
			abort();
	json_array_foreach (json_object_get(e, "mounts"), j, v)
		if (!json_is_string(json_object_get(v, "hostPath")) ||
		    !json_is_string(json_object_get(v, "containerPath")))
			abort();
	json_array_foreach (json_object_get(e, "hooks"), j, v)
		if (!json_is_string(json_object_get(v, "hookName")) ||
		    !json_is_string(json_object_get(v, "path")))
			abort();
}

static void check_annotation(const uint8_t *data, size_t size)
{
	char *value = malloc(size + 1);
	struct cdi_request *r = malloc(sizeof(*r));
	if (!value || !r)
		abort();
	memcpy(value, data, size);
	value[size] = '\0';
	char *field[] = { "example.com/dev=a" };
	char *keys[] = { "cdi.k8s.io/fuzz", "other" };
	char *values[] = { value, value };
	struct cric_err err;
	int rc = cdi_request_collect(field, 1, keys, values, 2, r, &err);
	if (rc == 0) {
		if (r->n < 1 || r->n > CDI_MAX_DEVICES)
			abort();
		for (size_t i = 0; i < r->n; i++) {
			if (!strchr(r->names[i], '=') || !strchr(r->names[i], '/') ||
			    strchr(r->names[i], ','))
				abort();
			for (size_t j = 0; j < i; j++)
				if (strcmp(r->names[i], r->names[j]) == 0)
					abort();
		}
	} else if (rc != -EINVAL && rc != -E2BIG) {
		abort();
	}
	cdi_request_done(r);
	free(r);
	free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 64 * 1024)
		check_annotation(data, size);
	for (int yaml = 0; yaml <= 1; yaml++) {
		json_t *spec = NULL;
		struct cric_err err;
		if (cdi_spec_parse((const char *)data, size, yaml, &spec, &err) < 0) {
			if (spec)
				abort();
			continue;
		}
		const char *kind = json_string_value(json_object_get(spec, "kind"));
		const char *slash = kind ? strchr(kind, '/') : NULL;
		if (!slash || strchr(slash + 1, '/'))
			abort();
		json_t *specs = json_pack("[O]", spec);
		json_t *devs = json_object_get(spec, "devices");
		for (size_t i = 0; i < json_array_size(devs) && i < 8; i++) {
			char name[600];
			snprintf(
			    name, sizeof(name), "%s=%s", kind,
			    json_string_value(json_object_get(json_array_get(devs, i), "name")));
			char *names[] = { name };
			json_t *edits = NULL;
			int r = cdi_edits_for(specs, names, NULL, 1, &edits, &err);
			if (r == 0)
				check_edits(edits);
			else if (r != -EOPNOTSUPP || edits)
				abort();
			json_decref(edits);
		}
		json_decref(specs);
		json_decref(spec);
	}
	return 0;
}
