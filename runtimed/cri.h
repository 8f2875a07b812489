#pragma once
#include "common/ipc.h"

extern const struct cric_method runtimed_methods[];
extern const size_t runtimed_n_methods;
