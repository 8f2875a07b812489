/* Cleanup wrappers for the third-party types cric uses (jansson, nng,
 * protobuf-c, libcap, libarchive; scmp_filter_ctx joins
 * here with the code that uses it): every one in this file, none beside its
 * user. Kept apart from macro.h so that code which needs none of these
 * libraries does not include their headers. */
#pragma once

#include <jansson.h>
#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <seccomp.h>
#include <sys/capability.h>

#include "archive-dl.h"
#include "macro.h"

/* jansson ships json_decrefp() itself (for json_auto_t). */
#define _cleanup_json_ _cleanup_(json_decrefp)

static inline void nng_msg_freep(nng_msg **m)
{
	if (*m)
		nng_msg_free(*m);
}
#define _cleanup_nng_msg_ _cleanup_(nng_msg_freep)

static inline void nng_aio_freep(nng_aio **a)
{
	if (*a)
		nng_aio_free(*a);
}
#define _cleanup_nng_aio_ _cleanup_(nng_aio_freep)

static inline void protobuf_c_message_freep(void *p)
{
	ProtobufCMessage **m = p;
	if (*m)
		protobuf_c_message_free_unpacked(*m, NULL);
}
/* For any generated message pointer: Foo *m _cleanup_pb_ = foo__unpack(...) */
#define _cleanup_pb_ _cleanup_(protobuf_c_message_freep)

static inline void cap_freep(cap_t *c)
{
	if (*c)
		cap_free(*c);
}
#define _cleanup_cap_ _cleanup_(cap_freep)

static inline void archive_read_freep(struct archive **a)
{
	if (*a)
		sym_archive_read_free(*a);
}
#define _cleanup_archive_read_ _cleanup_(archive_read_freep)

static inline void seccomp_releasep(scmp_filter_ctx *c)
{
	if (*c)
		seccomp_release(*c);
}
#define _cleanup_seccomp_ _cleanup_(seccomp_releasep)
