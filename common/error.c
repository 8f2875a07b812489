#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct cric_err *e, int r, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return r;
}

int err_prefix(struct cric_err *e, int r, const char *fmt, ...)
{
	if (e) {
		char ctx[512], old[sizeof(e->msg)];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx, sizeof(ctx), fmt, ap);
		va_end(ap);
		memcpy(old, e->msg, sizeof(old));
		old[sizeof(old) - 1] = '\0';
		if (old[0])
			snprintf(e->msg, sizeof(e->msg), "%s: %s", ctx, old);
		else
			snprintf(e->msg, sizeof(e->msg), "%s: %s", ctx, strerror(-r));
	}
	return r;
}

enum cric_code grpc_code_from_errno(int r)
{
	/* errno values are small; anything else (INT_MIN has no negation)
	 * is an internal error. */
	if (r < -4095 || r > 4095)
		return CODE_INTERNAL;
	switch (r < 0 ? -r : r) {
	case 0:
		return CODE_OK;
	case EINVAL:
	case E2BIG:
	case ENAMETOOLONG:
	case EBADMSG:
		return CODE_INVALID_ARGUMENT;
	case ENOENT:
	case ESRCH:
		return CODE_NOT_FOUND;
	case EEXIST:
		return CODE_ALREADY_EXISTS;
	case EPERM:
	case EACCES:
		return CODE_PERMISSION_DENIED;
	case ENOMEM:
	case ENOSPC:
	case EFBIG: /* stored's import limits */
	case EMFILE:
	case ENFILE:
	case EDQUOT:
		return CODE_RESOURCE_EXHAUSTED;
	case EBUSY:
	case ENOTEMPTY:
	case ENOPKG:  /* something this host lacks (a binary, a config) */
	case ENOEXEC: /* an image for another platform than this host's */
		return CODE_FAILED_PRECONDITION;
	case ENOSYS:
	case EOPNOTSUPP:
		return CODE_UNIMPLEMENTED;
	case ETIMEDOUT:
		return CODE_DEADLINE_EXCEEDED;
	case ECANCELED:
		return CODE_CANCELLED;
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTDOWN:
	case ENOTCONN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EAGAIN:
		return CODE_UNAVAILABLE;
	case ERANGE:
		return CODE_OUT_OF_RANGE;
	default:
		return CODE_INTERNAL;
	}
}

int errno_from_grpc_code(unsigned code)
{
	switch (code) {
	case CODE_OK:
		return 0;
	case CODE_CANCELLED:
		return -ECANCELED;
	case CODE_INVALID_ARGUMENT:
		return -EINVAL;
	case CODE_DEADLINE_EXCEEDED:
		return -ETIMEDOUT;
	case CODE_NOT_FOUND:
		return -ENOENT;
	case CODE_ALREADY_EXISTS:
		return -EEXIST;
	case CODE_PERMISSION_DENIED:
		return -EPERM;
	case CODE_RESOURCE_EXHAUSTED:
		return -ENOSPC;
	case CODE_FAILED_PRECONDITION:
		return -ENOPKG;
	case CODE_OUT_OF_RANGE:
		return -ERANGE;
	case CODE_UNIMPLEMENTED:
		return -EOPNOTSUPP;
	case CODE_UNAVAILABLE:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

const char *grpc_code_name(unsigned code)
{
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};
	return code < ARRAY_SIZE(names) ? names[code] : "UNKNOWN";
}
