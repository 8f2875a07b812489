#pragma once
#include "common/service.h"

/* The services monitord serves, for its main.c: cric.monitord.Monitord and
 * its share of the CRI RuntimeService (ExecSync so far). */
extern const struct cric_service monitord_services[];
extern const size_t monitord_n_services;
