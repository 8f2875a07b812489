#pragma once
#include "common/service.h"

/* The CRI methods runtimed serves, for its main.c. */
extern const struct cric_service runtimed_services[];
extern const size_t runtimed_n_services;
