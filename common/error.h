/* Error detail and the one errno -> gRPC status mapping of the suite.
 *
 * Functions that can fail return a negative errno and, only on failure, fill
 * an optional struct cric_err with a human-readable message. Each layer adds
 * its context in front with err_prefix() ("pull docker.io/x: fetch manifest:
 * 401"). Adapters turn (errno, message) into a gRPC status with
 * grpc_code_from_errno() - the only place that mapping lives.
 */
#pragma once

#include "macro.h"

/* gRPC status codes (same numbers as grpc_status_code), so that daemons can
 * speak them without linking grpc. */
enum cric_code {
	CODE_OK = 0,
	CODE_CANCELLED = 1,
	CODE_UNKNOWN = 2,
	CODE_INVALID_ARGUMENT = 3,
	CODE_DEADLINE_EXCEEDED = 4,
	CODE_NOT_FOUND = 5,
	CODE_ALREADY_EXISTS = 6,
	CODE_PERMISSION_DENIED = 7,
	CODE_RESOURCE_EXHAUSTED = 8,
	CODE_FAILED_PRECONDITION = 9,
	CODE_ABORTED = 10,
	CODE_OUT_OF_RANGE = 11,
	CODE_UNIMPLEMENTED = 12,
	CODE_INTERNAL = 13,
	CODE_UNAVAILABLE = 14,
	CODE_DATA_LOSS = 15,
	CODE_UNAUTHENTICATED = 16,
};
#define CODE_MAX CODE_UNAUTHENTICATED

struct cric_err {
	char msg[1024];
};

/* Set the message (if e != NULL) and return r (a negative errno). */
int err_set(struct cric_err *e, int r, const char *fmt, ...) _printf_(3, 4);
/* Prepend "context: " to the message (if e != NULL) and return r. */
int err_prefix(struct cric_err *e, int r, const char *fmt, ...) _printf_(3, 4);

enum cric_code grpc_code_from_errno(int r);
/* The other way, for a peer daemon's answer: a negative errno that
 * grpc_code_from_errno() maps back to code (-EIO, INTERNAL, for the codes
 * no errno stands for); 0 for CODE_OK. */
int errno_from_grpc_code(unsigned code);
const char *grpc_code_name(unsigned code);
