/* Logging to stderr with sd-daemon "<N>" priority prefixes, so that journald
 * (which reads the prefix) stores each line at its level, and a plain log file
 * stays greppable. Outside journald (JOURNAL_STREAM unset) each line also gets
 * a UTC timestamp.
 *
 * Structured fields: a thread-local context (CRI method, request id, pod id,
 * container id) set by the IPC dispatcher is appended to every line logged on
 * that thread as key=value pairs, so library code needs no extra arguments.
 *
 * Under journald (JOURNAL_STREAM names our stderr, as systemd sets it for a
 * unit whose output goes to the journal) each record goes to the journal
 * with journald's native protocol instead (sdproto.h), the context as fields of its own:
 * CRI_METHOD, CRIC_REQUEST, POD_ID, POD_NAME, POD_NAMESPACE, CONTAINER_ID,
 * IMAGE (those known), so that `journalctl CONTAINER_ID=<id>` or
 * `journalctl CRIC_REQUEST=<id>` across the units finds one container's or
 * one request's story. When the journal refuses a record, it goes to
 * stderr as a line.
 *
 * Thread-safe: each line is formatted into a buffer and written with a single
 * write(2) (or one datagram to the journal).
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <sys/uio.h>
#include <syslog.h>

#include "macro.h"

void log_open(const char *ident);
/* "debug", "info", "notice", "warning", "error" -> LOG_*; -EINVAL if unknown. */
int log_level_from_name(const char *name);
int log_set_level_name(const char *name);
/* May be called while other threads log (SIGHUP): the level is atomic. */
void log_set_level(int prio);

struct log_ctx {
	const char *method;
	const char *request_id;
	const char *pod_id;
	const char *container_id;
	const char *pod_name, *pod_namespace; /* the pod's metadata */
	const char *image;                    /* as the caller named it */
};
/* Replace this thread's context (pointers must outlive their use; NULL clears). */
void log_ctx_set(const struct log_ctx *ctx);
/* Set only the pod id of this thread's context (NULL clears it). */
void log_set_pod(const char *pod_id);
/* Add to this thread's context, copied (cut to 64, 253, 253 and 511
 * bytes; control characters replaced); NULL clears. */
void log_set_container(const char *container_id);
void log_set_pod_meta(const char *pod_name, const char *pod_namespace);
void log_set_image(const char *image);

/* The journal's fields of one record (exposed for tests): MESSAGE,
 * PRIORITY, SYSLOG_IDENTIFIER and the context's, each "NAME=value" into
 * buf (size bytes) and pointed at by iov (at most LOG_JOURNAL_FIELDS);
 * values are cut to fit. Returns the number of fields. */
#define LOG_JOURNAL_FIELDS 10
size_t log_journal_fields(int prio, const char *ident, const char *msg, const struct log_ctx *ctx,
			  char *buf, size_t size, struct iovec *iov);
/* Use the journal when JOURNAL_STREAM names our stderr (log_open does it;
 * again after changing either, for tests). */
void log_detect_journal(void);

void log_msg(int prio, const char *fmt, ...) _printf_(2, 3);
void log_vmsg(int prio, const char *fmt, va_list ap) _printf_(2, 0);

/* Log and return the (negative errno) error r, for "return log_error_errno(...)" */
int log_errno(int prio, int r, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...)            log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)             log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...)           log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...)          log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...)            log_msg(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...)   log_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_errno(LOG_WARNING, (r), __VA_ARGS__)
