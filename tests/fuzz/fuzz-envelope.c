/* Fuzz the internal IPC codec (common/envelope.c): envelope_unpack() and
 * reply_unpack() on arbitrary bytes. Whatever decodes must survive a
 * pack/unpack round trip unchanged, and packing is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ipc.h"

static bool bytes_equal(const void *a, size_t la, const void *b, size_t lb)
{
	return la == lb && (la == 0 || memcmp(a, b, la) == 0);
}

static bool str_equal(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void fuzz_envelope(const uint8_t *data, size_t size)
{
	struct cric_envelope env, again;
	struct cric_err err;
	uint8_t *buf = NULL, *buf2 = NULL;
	size_t n, n2;

	if (envelope_unpack(data, size, &env, size % 2 ? &err : NULL) < 0)
		return;
	if (envelope_pack(env.method, env.request_id, env.deadline_ns, env.payload, env.len, &buf,
			  &n) < 0)
		abort();
	if (envelope_unpack(buf, n, &again, &err) < 0)
		abort();
	if (strcmp(env.method, again.method) != 0 ||
	    strcmp(env.request_id, again.request_id) != 0 || env.deadline_ns != again.deadline_ns ||
	    !bytes_equal(env.payload, env.len, again.payload, again.len))
		abort();
	if (envelope_pack(again.method, again.request_id, again.deadline_ns, again.payload,
			  again.len, &buf2, &n2) < 0)
		abort();
	if (!bytes_equal(buf, n, buf2, n2))
		abort();
	free(buf2);
	free(buf);
	envelope_done(&again);
	envelope_done(&env);
	if (env.owner || env.payload || env.len)
		abort();
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
	struct cric_result res, again;
	uint8_t *buf = NULL, *buf2 = NULL;
	size_t n, n2;

	if (reply_unpack(data, size, &res) < 0)
		return;
	if (res.code > CODE_MAX)
		abort();
	if (reply_pack(res.code, res.message, res.payload, res.len, &buf, &n) < 0)
		abort();
	if (reply_unpack(buf, n, &again) < 0)
		abort();
	if (res.code != again.code || !str_equal(res.message, again.message) ||
	    !bytes_equal(res.payload, res.len, again.payload, again.len))
		abort();
	if (reply_pack(again.code, again.message, again.payload, again.len, &buf2, &n2) < 0)
		abort();
	if (!bytes_equal(buf, n, buf2, n2))
		abort();
	free(buf2);
	free(buf);
	cric_result_clear(&again);
	cric_result_clear(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_envelope(data, size);
	fuzz_reply(data, size);
	return 0;
}
