/* stored's part of the configuration; see rpc.h. */
#include <errno.h>
#include <jansson.h>

#include "common/macro.h"
#include "stored/rpc.h"

int stored_limits_load(const struct cric_config *cfg, struct layer_limits *l, struct cric_err *err)
{
	layer_limits_default(l);
	const json_t *sec = json_object_get(cfg->doc, "stored");
	if (!sec)
		return 0;
	if (!json_is_object(sec))
		return err_set(err, -EINVAL, "config \"%s\": \"stored\" must be an object",
			       cfg->config_file);
	const struct {
		const char *key;
		uint64_t *val;
		json_int_t min;
	} keys[] = {
		{ "max_layer_bytes", &l->max_layer_bytes, 1 },
		{ "max_layer_entries", &l->max_layer_entries, 1 },
		{ "max_image_bytes", &l->max_image_bytes, 1 },
		{ "max_image_entries", &l->max_image_entries, 1 },
		{ "min_free_bytes", &l->min_free_bytes, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const json_t *v = json_object_get(sec, keys[i].key);
		if (!v)
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < keys[i].min ||
		    json_integer_value(v) > ((json_int_t)1 << 62))
			return config_bad_key(cfg, "stored", keys[i].key,
					      keys[i].min ? "an integer from 1 to 2^62"
							  : "an integer from 0 to 2^62",
					      err);
		*keys[i].val = (uint64_t)json_integer_value(v);
	}
	return 0;
}
