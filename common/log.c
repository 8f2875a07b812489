#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sdproto.h"

static const char *log_ident = "cric";
/* Set on SIGHUP by the signal thread, read by every thread that logs: atomic.
 * Relaxed is enough, the level guards nothing else. */
static atomic_int log_level = LOG_INFO;
static int log_timestamps = 1;
static int log_journal; /* records go to the journal (sd_proto_journal_send) */
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
	log_detect_journal();
}

/* systemd's rule (sd_journal_stream_fd(3), systemd.exec(5)): JOURNAL_STREAM
 * is "<dev>:<ino>" of the stream it gave us; only if stderr is still that
 * stream do we talk to the journal directly. */
void log_detect_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	log_journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
		      fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
		      (unsigned long long)st.st_ino == ino;
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

/* Copies (input of a call, freed before its dispatcher's last line). */
static _Thread_local char tl_container[65], tl_pod_name[254], tl_pod_ns[254], tl_image[512];

static const char *keep(char *buf, size_t size, const char *value)
{
	if (!value)
		return NULL;
	snprintf(buf, size, "%s", value);
	/* One record per line, one field per line: no control characters. */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	return buf;
}

void log_set_container(const char *container_id)
{
	log_tctx.container_id = keep(tl_container, sizeof(tl_container), container_id);
}

void log_set_pod_meta(const char *pod_name, const char *pod_namespace)
{
	log_tctx.pod_name = keep(tl_pod_name, sizeof(tl_pod_name), pod_name);
	log_tctx.pod_namespace = keep(tl_pod_ns, sizeof(tl_pod_ns), pod_namespace);
}

void log_set_image(const char *image)
{
	log_tctx.image = keep(tl_image, sizeof(tl_image), image);
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

size_t log_journal_fields(int prio, const char *ident, const char *msg, const struct log_ctx *ctx,
			  char *buf, size_t size, struct iovec *iov)
{
	const struct {
		const char *name, *value;
	} fields[LOG_JOURNAL_FIELDS - 2] = {
		{ "MESSAGE", msg },
		{ "SYSLOG_IDENTIFIER", ident },
		{ "CRI_METHOD", ctx->method },
		{ "CRIC_REQUEST", ctx->request_id },
		{ "POD_ID", ctx->pod_id },
		{ "POD_NAME", ctx->pod_name },
		{ "POD_NAMESPACE", ctx->pod_namespace },
		{ "CONTAINER_ID", ctx->container_id },
	};
	size_t n = 0, used = 0;
	char prio_s[16];
	snprintf(prio_s, sizeof(prio_s), "%d", prio);
	const char *extra[][2] = { { "PRIORITY", prio_s }, { "IMAGE", ctx->image } };
	for (size_t i = 0; i < LOG_JOURNAL_FIELDS; i++) {
		const char *name = i < 8 ? fields[i].name : extra[i - 8][0];
		const char *value = i < 8 ? fields[i].value : extra[i - 8][1];
		if (!value || used >= size)
			continue;
		int k = snprintf(buf + used, size - used, "%s=%s", name, value);
		if (k < 0)
			continue;
		size_t len = (size_t)k < size - used ? (size_t)k : size - used - 1;
		iov[n++] = (struct iovec){ buf + used, len };
		used += len + 1;
	}
	return n;
}

/* One record to the journal; false when it refused it. */
static bool journal_send(int prio, const char *msg)
{
	char buf[8192];
	struct iovec iov[LOG_JOURNAL_FIELDS];
	size_t n = log_journal_fields(prio, log_ident, msg, &log_tctx, buf, sizeof(buf), iov);
	return sd_proto_journal_send(iov, n, NULL) >= 0;
}

void log_vmsg(int prio, const char *fmt, va_list ap)
{
	if (!log_enabled(prio))
		return;
	int saved = errno;
	if (log_journal) {
		char msg[4096];
		va_list aq;
		va_copy(aq, ap);
		vsnprintf(msg, sizeof(msg), fmt, aq);
		va_end(aq);
		if (journal_send(prio, msg)) {
			errno = saved;
			return;
		}
	}
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
	if (log_tctx.pod_namespace && log_tctx.pod_name)
		n = append(buf, sizeof(buf), n, " pod_name=%s/%s", log_tctx.pod_namespace,
			   log_tctx.pod_name);
	if (log_tctx.container_id)
		n = append(buf, sizeof(buf), n, " container=%s", log_tctx.container_id);
	if (log_tctx.image)
		n = append(buf, sizeof(buf), n, " image=%s", log_tctx.image);

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
