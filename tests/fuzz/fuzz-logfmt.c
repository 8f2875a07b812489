/* Fuzz the CRI log writer (monitord/monitor/logfmt.c): arbitrary bytes fed
 * to two streams in chunks the input chooses. Every record must be one
 * well-formed line (header, P part of exactly LOGFMT_PART_MAX bytes or an F
 * part, '\n'), and each stream's records joined back must give exactly the
 * bytes it was fed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitord/monitor/logfmt.h"

struct sink {
	const char *name;
	char *got; /* the stream's bytes rebuilt */
	size_t len;
};

static int emit(void *arg, const struct iovec *iov, int n)
{
	struct sink *s = arg;
	const char *head = iov[0].iov_base;
	size_t hl = iov[0].iov_len, nl = strlen(s->name);
	if (hl != LOGFMT_TS_LEN + nl + 4 || head[LOGFMT_TS_LEN] != ' ' ||
	    memcmp(head + LOGFMT_TS_LEN + 1, s->name, nl) != 0 ||
	    (head[hl - 2] != 'P' && head[hl - 2] != 'F') || head[hl - 1] != ' ')
		abort();
	if (iov[n - 1].iov_len != 1 || *(const char *)iov[n - 1].iov_base != '\n')
		abort();
	size_t clen = 0;
	for (int i = 1; i < n - 1; i++) {
		if (memchr(iov[i].iov_base, '\n', iov[i].iov_len))
			abort();
		memcpy(s->got + s->len + clen, iov[i].iov_base, iov[i].iov_len);
		clen += iov[i].iov_len;
	}
	if (clen > LOGFMT_PART_MAX || (head[hl - 2] == 'P' && clen != LOGFMT_PART_MAX))
		abort();
	s->len += clen;
	if (head[hl - 2] == 'F')
		s->got[s->len++] = '\n';
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct logfmt_stream st[2];
	static char want[2][1 << 17], got[2][(1 << 17) + 2];
	struct sink sk[2] = { { "stdout", got[0], 0 }, { "stderr", got[1], 0 } };
	size_t wl[2] = { 0, 0 };
	const struct timespec now = { 1796587800, 1 };
	if (size > (1 << 17))
		return 0;
	logfmt_stream_init(&st[0], "stdout");
	logfmt_stream_init(&st[1], "stderr");
	/* Chunks: a length byte (low bit: which stream), then that many bytes
	 * times 97 (long lines without long inputs: repeated). */
	for (size_t i = 0; i < size;) {
		int w = data[i] & 1;
		size_t n = (size_t)(data[i] >> 1) + 1, reps = data[i] & 0x80 ? 97 : 1;
		i++;
		if (n > size - i)
			n = size - i;
		for (size_t r = 0; r < reps && wl[w] + n <= sizeof(want[w]); r++) {
			memcpy(want[w] + wl[w], data + i, n);
			wl[w] += n;
			if (logfmt_feed(&st[w], (const char *)data + i, n, &now, emit, &sk[w]) < 0)
				abort();
		}
		i += n;
	}
	for (int w = 0; w < 2; w++) {
		int had_tail = st[w].len > 0;
		if (logfmt_flush(&st[w], &now, emit, &sk[w]) < 0)
			abort();
		/* A tail without '\n' came back as an F line. */
		if (sk[w].len != wl[w] + (size_t)had_tail || memcmp(sk[w].got, want[w], wl[w]) != 0)
			abort();
	}
	return 0;
}
