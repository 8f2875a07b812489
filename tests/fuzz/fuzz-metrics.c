/* Fuzz what monitord's /metrics does with a daemon's cric.Metrics answer
 * (common/metrics.h): unpack arbitrary bytes as a MetricsResponse (twice,
 * as two daemons, plus an answer without a daemon) and write the page.
 * Whatever a peer sends, every line of the page must be a HELP or TYPE
 * line or a well-formed sample: a name, labels with escaped values, one
 * value; no family named twice. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* One sample line, p to end (no newline inside). */
static bool sample_ok(const char *p, const char *end)
{
	if (p == end || !name_char(*p, true))
		return false;
	while (p < end && name_char(*p, false))
		p++;
	if (p < end && *p == '{') {
		p++;
		for (;;) {
			if (p == end || !name_char(*p, true))
				return false;
			while (p < end && name_char(*p, false))
				p++;
			if (end - p < 2 || p[0] != '=' || p[1] != '"')
				return false;
			p += 2;
			while (p < end && *p != '"') {
				if (*p == '\\') {
					if (p + 1 == end || !strchr("\\\"n", p[1]))
						return false;
					p++;
				}
				p++;
			}
			if (p == end)
				return false;
			p++;
			if (p < end && *p == ',') {
				p++;
				continue;
			}
			if (p < end && *p == '}') {
				p++;
				break;
			}
			return false;
		}
	}
	if (p == end || *p != ' ' || p + 1 == end)
		return false;
	for (p++; p < end; p++)
		if (*p == ' ' || *p == '{' || *p == '"')
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Cric__MetricsResponse *a = cric__metrics_response__unpack(NULL, size, data);
	if (!a)
		return 0;
	Cric__MetricsResponse *b = cric__metrics_response__unpack(NULL, size, data);
	if (!b)
		abort();
	/* (an empty string unpacks to protobuf-c's static one) */
	if (b->daemon != protobuf_c_empty_string)
		free(b->daemon);
	b->daemon = strdup("other\"daemon\n");
	if (a->daemon != protobuf_c_empty_string)
		free(a->daemon);
	a->daemon = strdup("");
	Cric__MetricsResponse *all[] = { a, NULL, b }; /* NULL: a daemon that did not answer */
	size_t len = 0;
	char *page = metrics_format(all, 3, &len);
	if (!page || strlen(page) != len)
		abort();
	char seen[64][256];
	size_t n_seen = 0;
	for (const char *p = page; *p;) {
		const char *nl = strchr(p, '\n');
		if (!nl)
			abort(); /* every line ends */
		if (strncmp(p, "# HELP ", 7) == 0) {
			/* nothing to check but the line's end */
		} else if (strncmp(p, "# TYPE ", 7) == 0) {
			size_t k = (size_t)(strchr(p + 7, ' ') ? strchr(p + 7, ' ') - (p + 7) : 0);
			if (k == 0 || k >= 256)
				abort();
			for (size_t i = 0; i < n_seen; i++)
				if (strlen(seen[i]) == k && memcmp(seen[i], p + 7, k) == 0)
					abort(); /* a family written twice */
			if (n_seen < 64) {
				memcpy(seen[n_seen], p + 7, k);
				seen[n_seen++][k] = '\0';
			}
		} else if (!sample_ok(p, nl)) {
			abort();
		}
		p = nl + 1;
	}
	free(page);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	protobuf_c_message_free_unpacked(&b->base, NULL);
	return 0;
}
