/* libmicrohttpd, loaded on first use (common/dl.h): monitord's two HTTP
 * endpoints (the streaming server, /metrics) start their server at their
 * first connection (lazyhttp.h), and only then map libmicrohttpd and what
 * Debian's links it with (GnuTLS, p11-kit, libunistring, libidn2,
 * libtasn1, hogweed, gmp, libffi): 40% of an idle monitord's PSS.
 * Code calls sym_MHD_*() after mhd_dl_load(). */
#pragma once

#include <microhttpd.h>

#include "common/dl.h"

/* Every libmicrohttpd function monitord calls. */
#define MHD_DL_SYMS(X)                                                                             \
	X(MHD_add_response_header)                                                                 \
	X(MHD_create_response_for_upgrade)                                                         \
	X(MHD_create_response_from_buffer)                                                         \
	X(MHD_destroy_response)                                                                    \
	X(MHD_get_connection_info)                                                                 \
	X(MHD_get_connection_values)                                                               \
	X(MHD_is_feature_supported)                                                                \
	X(MHD_lookup_connection_value)                                                             \
	X(MHD_queue_response)                                                                      \
	X(MHD_start_daemon)                                                                        \
	X(MHD_stop_daemon)                                                                         \
	X(MHD_upgrade_action)

MHD_DL_SYMS(DL_SYM_DECLARE)

/* 0 once libmicrohttpd is loaded; -EOPNOTSUPP and why in err if not. */
int mhd_dl_load(struct cric_err *err);
/* Whether it is (tests). */
bool mhd_dl_loaded(void);
