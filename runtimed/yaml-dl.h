/* libyaml, loaded on first use (common/dl.h): runtimed reads YAML only for
 * a CDI spec written in it, when a container asks for a CDI device; it
 * does not map the library for the rest of its life. Code calls
 * sym_yaml_*() after yaml_dl_load(). */
#pragma once

#include <yaml.h>

#include "common/dl.h"

/* Every libyaml function runtimed calls. */
#define YAML_DL_SYMS(X)                                                                            \
	X(yaml_event_delete)                                                                       \
	X(yaml_parser_delete)                                                                      \
	X(yaml_parser_initialize)                                                                  \
	X(yaml_parser_parse)                                                                       \
	X(yaml_parser_set_input_string)

YAML_DL_SYMS(DL_SYM_DECLARE)

/* 0 once libyaml is loaded; -EOPNOTSUPP and why in err if not. */
int yaml_dl_load(struct cric_err *err);
