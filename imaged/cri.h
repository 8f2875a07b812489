#pragma once
#include "common/service.h"

/* The CRI methods imaged serves, for its main.c. */
extern const struct cric_service imaged_services[];
extern const size_t imaged_n_services;
/* cric.imaged.ListPage: the pages of StreamImages (common/listpage.h). */
int imaged_list_page(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err);
