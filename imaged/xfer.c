/* One HTTP transfer of the registry client: the transport's callbacks (see
 * xfer.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imaged/xfer.h"

int64_t xfer_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int xfer_on_tick(void *userdata)
{
	struct xfer *x = userdata;
	int64_t now = xfer_mono_ns();
	if (x->received - x->mark_bytes >= x->progress_min_bytes) {
		x->mark_bytes = x->received;
		x->mark_ns = now;
	}
	if ((x->cancel && __atomic_load_n(x->cancel, __ATOMIC_ACQUIRE)) ||
	    (x->caller_cancel && __atomic_load_n(x->caller_cancel, __ATOMIC_ACQUIRE))) {
		x->stopped = STOPPED_CANCELLED;
		return 1;
	}
	if (x->deadline_ns > 0 && real_ns() >= x->deadline_ns) {
		x->stopped = STOPPED_DEADLINE;
		return 1;
	}
	if (now - x->mark_ns >= (int64_t)x->progress_timeout_sec * 1000000000LL) {
		x->stopped = STOPPED_STALLED;
		return 1;
	}
	return 0;
}

/* The 3 digits of a status line's code (not NUL-terminated), 0 if not. */
static long status_code(const char *p, size_t n)
{
	if (n < 3 || !isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
	    !isdigit((unsigned char)p[2]) || (n > 3 && p[3] != ' '))
		return 0;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

void xfer_reset_response(struct xfer *x)
{
	x->status = 0;
	x->content_type[0] = '\0';
	x->docker_digest[0] = '\0';
	x->www_authenticate[0] = '\0';
	x->range_start = -1;
	x->started = false;
	x->errlen = 0;
	x->errbody[0] = '\0';
}

static void copy_header_value(char *dst, size_t n, const char *v, size_t vlen)
{
	if (vlen >= n)
		vlen = n - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

int xfer_on_header(void *userdata, const char *ptr, size_t len)
{
	struct xfer *x = userdata;

	while (len > 0 && (ptr[len - 1] == '\r' || ptr[len - 1] == '\n'))
		len--;
	if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		xfer_reset_response(x);
		const char *sp = memchr(ptr, ' ', len);
		if (sp)
			x->status = status_code(sp + 1, (size_t)(ptr + len - sp - 1));
		return 0;
	}
	const char *colon = memchr(ptr, ':', len);
	if (!colon)
		return 0;
	size_t klen = (size_t)(colon - ptr);
	const char *v = colon + 1;
	while (v < ptr + len && (*v == ' ' || *v == '\t'))
		v++;
	size_t vlen = (size_t)(ptr + len - v);

#define IS(name) (klen == strlen(name) && strncasecmp(ptr, name, klen) == 0)
	if (IS("Content-Type"))
		copy_header_value(x->content_type, sizeof(x->content_type), v, vlen);
	else if (IS("Docker-Content-Digest"))
		copy_header_value(x->docker_digest, sizeof(x->docker_digest), v, vlen);
	else if (IS("WWW-Authenticate") && !x->www_authenticate[0])
		copy_header_value(x->www_authenticate, sizeof(x->www_authenticate), v, vlen);
	else if (IS("Content-Range")) {
		char tmp[128];
		copy_header_value(tmp, sizeof(tmp), v, vlen);
		unsigned long long start;
		if (sscanf(tmp, "bytes %llu-", &start) == 1)
			x->range_start = (int64_t)start;
	}
#undef IS
	return 0;
}

static int sink_memory(struct xfer *x, const char *ptr, size_t n)
{
	int r = membuf_append(&x->mem, ptr, n);
	if (r < 0) {
		x->stop = r;
		return -1;
	}
	return 0;
}

static int sink_file(struct xfer *x, const char *ptr, size_t n)
{
	if (!x->started) {
		x->started = true;
		if (x->status == 206 && x->range_start != (int64_t)x->off) {
			x->stop = -EPROTO;
			return -1;
		}
		if (x->status == 200 && x->off > 0) {
			/* The server ignored Range: start over. */
			sha256_init(&x->md);
			if (ftruncate(x->fd, 0) < 0) {
				x->stop = -errno;
				return -1;
			}
			x->off = 0;
		}
	}
	if (x->off + n > x->limit) {
		x->stop = -EBADMSG;
		return -1;
	}
	for (size_t done = 0; done < n;) {
		ssize_t w = pwrite(x->fd, ptr + done, n - done, (off_t)(x->off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x->stop = w < 0 ? -errno : -EIO;
			return -1;
		}
		done += (size_t)w;
	}
	sha256_update(&x->md, n, (const uint8_t *)ptr);
	x->off += n;
	if (x->bopts && x->bopts->progress)
		x->bopts->progress(x->bopts->userdata, x->off);
	return 0;
}

int xfer_on_body(void *userdata, const char *ptr, size_t n)
{
	struct xfer *x = userdata;

	x->received += n;
	if (x->status == 200 || x->status == 206)
		return x->sink == SINK_FILE ? sink_file(x, ptr, n) : sink_memory(x, ptr, n);
	if (x->status >= 400) {
		size_t k = n;
		if (k > ERRBODY_MAX - x->errlen)
			k = ERRBODY_MAX - x->errlen;
		memcpy(x->errbody + x->errlen, ptr, k);
		x->errlen += k;
		x->errbody[x->errlen] = '\0';
	}
	return 0; /* redirects, informational responses: discarded */
}
