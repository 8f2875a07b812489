#pragma once
#include "common/service.h"

/* The CRI methods imaged serves, for its main.c. */
extern const struct cric_service imaged_services[];
extern const size_t imaged_n_services;
