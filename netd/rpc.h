#pragma once
#include "common/service.h"

/* The internal service netd serves, for its main.c. */
extern const struct cric_service netd_services[];
extern const size_t netd_n_services;
