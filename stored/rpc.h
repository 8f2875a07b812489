#pragma once
#include "common/config.h"
#include "common/service.h"
#include "stored/layers.h"

/* What stored serves, for its main.c. */
extern const struct cric_service stored_services[];
extern const size_t stored_n_services;

/* Section "stored" of the config: the import limits (layers.h), each an
 * integer from 1 (0 for min_free_bytes) to 2^62; absent keys keep their
 * defaults. */
int stored_limits_load(const struct cric_config *cfg, struct layer_limits *l, struct cric_err *err);
