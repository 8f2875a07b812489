#pragma once
#include "common/service.h"

/* cric.imaged.Imaged's lines (rpc.c), served beside the CRI ones (cri.c). */
extern const struct cric_handler imaged_rpc_lines[];
extern const size_t imaged_n_rpc_lines;
