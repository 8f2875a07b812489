#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "cric";
/* Set on SIGHUP by the signal thread, read by every thread that logs: atomic.
 * Relaxed is enough, the level guards nothing else. */
static atomic_int log_level = LOG_INFO;
static int log_timestamps = 1;
static _Thread_local struct log_ctx log_tctx;

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_open(const char *ident)
{
	log_ident = ident;
	/* Under systemd, stderr connected to the journal: it timestamps itself. */
	log_timestamps = getenv("JOURNAL_STREAM") == NULL;
}

int log_level_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (level_names[i] && strcmp(level_names[i], name) == 0)
			return (int)i;
	return -EINVAL;
}

int log_set_level_name(const char *name)
{
	int prio = log_level_from_name(name);
	if (prio < 0)
		return prio;
	log_set_level(prio);
	return 0;
}

void log_set_level(int prio)
{
	atomic_store_explicit(&log_level, prio, memory_order_relaxed);
}

static bool log_enabled(int prio)
{
	return prio <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_set_pod(const char *pod_id)
{
	log_tctx.pod_id = pod_id;
}

void log_ctx_set(const struct log_ctx *ctx)
{
	if (ctx)
		log_tctx = *ctx;
	else
		memset(&log_tctx, 0, sizeof(log_tctx));
}

static size_t append(char *buf, size_t size, size_t n, const char *fmt, ...) _printf_(4, 5);
static size_t append(char *buf, size_t size, size_t n, const char *fmt, ...)
{
	if (n >= size)
		return n;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
	if (k < 0)
		return n;
	return (size_t)k >= size - n ? size - 1 : n + (size_t)k;
}

void log_vmsg(int prio, const char *fmt, va_list ap)
{
	if (!log_enabled(prio))
		return;
	int saved = errno;
	char buf[4096];
	size_t n = append(buf, sizeof(buf), 0, "<%d>", prio);

	if (log_timestamps) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = append(buf, sizeof(buf), n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
			   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			   tm.tm_sec, ts.tv_nsec / 1000000);
	}
	n = append(buf, sizeof(buf), n, "%s[%d]: ", log_ident, (int)getpid());
	if (n < sizeof(buf)) {
		int k = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
		if (k > 0)
			n = (size_t)k >= sizeof(buf) - n ? sizeof(buf) - 1 : n + (size_t)k;
	}
	if (log_tctx.method)
		n = append(buf, sizeof(buf), n, " method=%s", log_tctx.method);
	if (log_tctx.request_id)
		n = append(buf, sizeof(buf), n, " req=%s", log_tctx.request_id);
	if (log_tctx.pod_id)
		n = append(buf, sizeof(buf), n, " pod=%s", log_tctx.pod_id);
	if (log_tctx.container_id)
		n = append(buf, sizeof(buf), n, " container=%s", log_tctx.container_id);

	/* Keep one record per line: fold embedded newlines. */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	if (n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, n);
	(void)w;
	errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

int log_errno(int prio, int r, const char *fmt, ...)
{
	if (log_enabled(prio)) {
		char msg[2048];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		log_msg(prio, "%s: %s", msg, strerror(r < 0 ? -r : r));
	}
	return r < 0 ? r : -r;
}
