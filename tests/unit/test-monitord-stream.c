/* monitord/stream/: the tokens (single use, expiry, bound, kind) and the
 * SPDY/3.1 codec against frames built here with zlib and the SPDY/3
 * dictionary (what a client sends): streams and their headers, data in
 * pieces, FIN, RST, PING, SETTINGS and WINDOW_UPDATE (flow control once the
 * peer shows it), and hostile input ending the connection with a GOAWAY.
 * The real client (docker/spdystream) is tests/integration/
 * test_stream_exec.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <zlib.h>

#include "monitord/stream/spdy.h"
#include "monitord/stream/tokens.h"

/* ---- tokens ---- */

static struct stream_request *req(enum stream_kind kind)
{
	struct stream_request *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->kind = kind;
	return r;
}

static void test_tokens(void **state)
{
	(void)state;
	struct tokens t;
	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1], c[TOKEN_LEN + 1];
	assert_int_equal(tokens_init(&t, 2, 60000), 0);
	struct stream_request *ra = req(STREAM_KIND_EXEC);
	assert_int_equal(tokens_put(&t, ra, a), 0);
	assert_int_equal(strlen(a), TOKEN_LEN);
	assert_int_equal(tokens_put(&t, req(STREAM_KIND_ATTACH), b), 0);
	assert_string_not_equal(a, b);
	/* bounded */
	struct stream_request *extra = req(STREAM_KIND_EXEC);
	assert_int_equal(tokens_put(&t, extra, c), -EAGAIN);
	stream_request_free(extra);
	/* another kind's token is not taken (and stays) */
	assert_null(tokens_take(&t, b, STREAM_KIND_EXEC));
	/* malformed, unknown */
	assert_null(tokens_take(&t, "short", STREAM_KIND_EXEC));
	assert_null(tokens_take(&t, NULL, STREAM_KIND_EXEC));
	char wrong[TOKEN_LEN + 1];
	memcpy(wrong, a, sizeof(wrong));
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	assert_null(tokens_take(&t, wrong, STREAM_KIND_EXEC));
	/* single use */
	assert_ptr_equal(tokens_take(&t, a, STREAM_KIND_EXEC), ra);
	assert_null(tokens_take(&t, a, STREAM_KIND_EXEC));
	stream_request_free(ra);
	tokens_done(&t);

	/* expiry: a ttl of 0 is expired at once */
	assert_int_equal(tokens_init(&t, 4, 0), 0);
	assert_int_equal(tokens_put(&t, req(STREAM_KIND_EXEC), a), 0);
	assert_null(tokens_take(&t, a, STREAM_KIND_EXEC));
	/* and expired ones make room */
	for (int i = 0; i < 8; i++)
		assert_int_equal(tokens_put(&t, req(STREAM_KIND_EXEC), a), 0);
	tokens_done(&t);

	/* The table grows as tokens are put, up to max; every one is kept. */
	enum { MANY = 300 };
	static char many[MANY][TOKEN_LEN + 1];
	struct stream_request *rs[MANY];
	assert_int_equal(tokens_init(&t, MANY, 60000), 0);
	for (int i = 0; i < MANY; i++)
		assert_int_equal(tokens_put(&t, rs[i] = req(STREAM_KIND_ATTACH), many[i]), 0);
	assert_int_equal(t.n, MANY);
	assert_true(t.cap <= MANY);
	extra = req(STREAM_KIND_EXEC);
	assert_int_equal(tokens_put(&t, extra, c), -EAGAIN);
	stream_request_free(extra);
	for (int i = MANY - 1; i >= 0; i--) {
		assert_ptr_equal(tokens_take(&t, many[i], STREAM_KIND_ATTACH), rs[i]);
		stream_request_free(rs[i]);
	}
	assert_int_equal(t.n, 0);
	tokens_done(&t);
}

/* ---- a client's frames ---- */

struct client {
	z_stream def, inf;
	uint8_t buf[65536];
	size_t len;
};

static void client_init(struct client *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(deflateInit(&c->def, Z_DEFAULT_COMPRESSION), Z_OK);
	assert_int_equal(deflateSetDictionary(&c->def, (const Bytef *)spdy_dictionary,
					      (uInt)spdy_dictionary_len),
			 Z_OK);
	assert_int_equal(inflateInit(&c->inf), Z_OK);
}

static void client_done(struct client *c)
{
	deflateEnd(&c->def);
	inflateEnd(&c->inf);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void control(struct client *c, uint16_t type, uint8_t flags, const uint8_t *p, size_t n)
{
	uint8_t *f = c->buf + c->len;
	f[0] = 0x80;
	f[1] = 3;
	f[2] = (uint8_t)(type >> 8);
	f[3] = (uint8_t)type;
	put32(f + 4, (uint32_t)n);
	f[4] = flags;
	memcpy(f + 8, p, n);
	c->len += 8 + n;
}

/* A compressed header block of n pairs name[i]: value[i]. */
static size_t block(struct client *c, const char *const *kv, uint32_t n, uint8_t *out, size_t cap)
{
	uint8_t raw[4096];
	size_t l = 4;
	put32(raw, n);
	for (uint32_t i = 0; i < 2 * n; i++) {
		put32(raw + l, (uint32_t)strlen(kv[i]));
		memcpy(raw + l + 4, kv[i], strlen(kv[i]));
		l += 4 + strlen(kv[i]);
	}
	c->def.next_in = raw;
	c->def.avail_in = (uInt)l;
	c->def.next_out = out;
	c->def.avail_out = (uInt)cap;
	assert_int_equal(deflate(&c->def, Z_SYNC_FLUSH), Z_OK);
	return cap - c->def.avail_out;
}

static void syn_stream(struct client *c, uint32_t sid, uint8_t flags, const char *type)
{
	uint8_t p[4096];
	put32(p, sid);
	put32(p + 4, 0);
	p[8] = 0;
	p[9] = 0;
	const char *kv[] = { "streamtype", type };
	size_t n = block(c, kv, 1, p + 10, sizeof(p) - 10);
	control(c, SPDY_SYN_STREAM, flags, p, 10 + n);
}

static void data(struct client *c, uint32_t sid, uint8_t flags, const void *p, size_t n)
{
	uint8_t *f = c->buf + c->len;
	put32(f, sid);
	put32(f + 4, (uint32_t)n);
	f[4] = flags;
	memcpy(f + 8, p, n);
	c->len += 8 + n;
}

/* ---- what the codec reported ---- */

struct seen {
	uint32_t syn[8];
	char type[8][32];
	size_t n_syn;
	char data[70000];
	size_t n_data;
	uint32_t fin, rst, goaway;
	int goaway_status;
};

static int cb_syn(void *ud, uint32_t sid, const struct spdy_header *h, size_t n_h)
{
	struct seen *s = ud;
	assert_int_equal(n_h, 1);
	assert_string_equal(h[0].name, "streamtype");
	s->syn[s->n_syn] = sid;
	snprintf(s->type[s->n_syn++], 32, "%s", h[0].value);
	return 0;
}

static int cb_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct seen *s = ud;
	(void)sid;
	assert_true(s->n_data + n <= sizeof(s->data));
	memcpy(s->data + s->n_data, p, n);
	s->n_data += n;
	return 0;
}

static int cb_fin(void *ud, uint32_t sid)
{
	((struct seen *)ud)->fin = sid;
	return 0;
}

static int cb_rst(void *ud, uint32_t sid, uint32_t status)
{
	(void)status;
	((struct seen *)ud)->rst = sid;
	return 0;
}

static int cb_goaway(void *ud, uint32_t status)
{
	struct seen *s = ud;
	s->goaway = 1;
	s->goaway_status = (int)status;
	return 0;
}

static const struct spdy_callbacks cbs = {
	.syn_stream = cb_syn,
	.data = cb_data,
	.fin = cb_fin,
	.rst = cb_rst,
	.goaway = cb_goaway,
};

/* Feed the client's bytes in pieces of `step`. */
static int feed(struct spdy *s, struct client *c, size_t step)
{
	int r = 0;
	for (size_t off = 0; off < c->len && r == 0; off += step)
		r = spdy_input(s, c->buf + off, c->len - off < step ? c->len - off : step);
	c->len = 0;
	return r;
}

/* The type of the first frame of s->out (0x8000 | type for control). */
static unsigned first_frame(const struct spdy *s, uint32_t *word1, uint32_t *word2)
{
	assert_true(s->out_len >= 8);
	if (word1 && s->out_len >= 12)
		*word1 = get32(s->out + 8);
	if (word2 && s->out_len >= 16)
		*word2 = get32(s->out + 12);
	if (!(s->out[0] & 0x80))
		return 0;
	return 0x8000u | (unsigned)(s->out[2] << 8 | s->out[3]);
}

static void test_spdy_streams(void **state)
{
	(void)state;
	struct spdy s;
	struct seen seen = { 0 };
	struct client c;
	client_init(&c);
	assert_int_equal(spdy_init(&s, &cbs, &seen), 0);

	/* two streams, headers through the shared context, byte by byte */
	syn_stream(&c, 1, 0, "error");
	syn_stream(&c, 3, 0, "stdin");
	assert_int_equal(feed(&s, &c, 1), 0);
	assert_int_equal(seen.n_syn, 2);
	assert_string_equal(seen.type[0], "error");
	assert_string_equal(seen.type[1], "stdin");
	assert_true(spdy_stream_open(&s, 3));

	/* our SYN_REPLY: a header block the client's inflater reads */
	assert_int_equal(spdy_reply(&s, 3), 0);
	uint32_t w1;
	assert_int_equal(first_frame(&s, &w1, NULL), 0x8000u | SPDY_SYN_REPLY);
	assert_int_equal(w1, 3);
	uint8_t raw[64];
	c.inf.next_in = s.out + 12;
	c.inf.avail_in = (uInt)(s.out_len - 12);
	c.inf.next_out = raw;
	c.inf.avail_out = sizeof(raw);
	int z = inflate(&c.inf, Z_SYNC_FLUSH);
	if (z == Z_NEED_DICT) {
		assert_int_equal(inflateSetDictionary(&c.inf, (const Bytef *)spdy_dictionary,
						      (uInt)spdy_dictionary_len),
				 Z_OK);
		z = inflate(&c.inf, Z_SYNC_FLUSH);
	}
	assert_int_equal(z, Z_OK);
	assert_int_equal(sizeof(raw) - c.inf.avail_out, 4);
	assert_int_equal(get32(raw), 0);
	spdy_out_consumed(&s, s.out_len);
	assert_int_equal(spdy_reply(&s, 3), -EINVAL); /* once */

	/* data in pieces, then FIN: all delivered, FIN reported */
	data(&c, 3, 0, "hello ", 6);
	data(&c, 3, SPDY_FLAG_FIN, "world", 5);
	assert_int_equal(feed(&s, &c, 3), 0);
	assert_int_equal(seen.n_data, 11);
	assert_memory_equal(seen.data, "hello world", 11);
	assert_int_equal(seen.fin, 3);

	/* consumed data opens the windows again (WINDOW_UPDATE) */
	assert_int_equal(spdy_consumed(&s, 1, SPDY_WINDOW_INITIAL / 2), 0);
	uint32_t w2;
	assert_int_equal(first_frame(&s, &w1, &w2), 0x8000u | SPDY_WINDOW_UPDATE);
	assert_int_equal(w1, 0);
	assert_int_equal(w2, SPDY_WINDOW_INITIAL / 2);
	spdy_out_consumed(&s, s.out_len);

	/* data for a stream that is not there: RST_STREAM INVALID_STREAM */
	data(&c, 9, 0, "x", 1);
	assert_int_equal(feed(&s, &c, 100), 0);
	assert_int_equal(first_frame(&s, &w1, &w2), 0x8000u | SPDY_RST_STREAM);
	assert_int_equal(w1, 9);
	assert_int_equal(w2, SPDY_RST_INVALID_STREAM);
	spdy_out_consumed(&s, s.out_len);

	/* the client's pings (odd) are echoed, even ones not */
	uint8_t ping[4];
	put32(ping, 7);
	control(&c, SPDY_PING, 0, ping, 4);
	put32(ping, 8);
	control(&c, SPDY_PING, 0, ping, 4);
	assert_int_equal(feed(&s, &c, 5), 0);
	assert_int_equal(s.out_len, 12);
	assert_int_equal(first_frame(&s, &w1, NULL), 0x8000u | SPDY_PING);
	assert_int_equal(w1, 7);
	spdy_out_consumed(&s, s.out_len);

	/* sending: no flow control until the peer shows it */
	assert_int_equal(spdy_send_room(&s, 1), SPDY_DATA_MAX);
	uint8_t set[12];
	put32(set, 1);
	put32(set + 4, SPDY_SETTINGS_INITIAL_WINDOW_SIZE);
	put32(set + 8, 10);
	control(&c, SPDY_SETTINGS, 0, set, sizeof(set));
	assert_int_equal(feed(&s, &c, 100), 0);
	assert_int_equal(spdy_send_room(&s, 1), 10);
	assert_int_equal(spdy_data(&s, 1, "0123456789", 10, false), 0);
	assert_int_equal(spdy_send_room(&s, 1), 0);
	uint8_t wu[8];
	put32(wu, 1);
	put32(wu + 4, 100);
	control(&c, SPDY_WINDOW_UPDATE, 0, wu, sizeof(wu));
	assert_int_equal(feed(&s, &c, 100), 0);
	assert_int_equal(spdy_send_room(&s, 1), 100);
	assert_int_equal(spdy_data(&s, 1, NULL, 0, true), 0);
	assert_int_equal(spdy_send_room(&s, 1), 0); /* ended */
	spdy_out_consumed(&s, s.out_len);

	/* RST from the client */
	uint8_t rst[8];
	put32(rst, 1);
	put32(rst + 4, SPDY_RST_CANCEL);
	control(&c, SPDY_RST_STREAM, 0, rst, sizeof(rst));
	assert_int_equal(feed(&s, &c, 100), 0);
	assert_int_equal(seen.rst, 1);
	assert_false(spdy_stream_open(&s, 1));

	/* GOAWAY from the client */
	uint8_t ga[8] = { 0 };
	control(&c, SPDY_GOAWAY, 0, ga, sizeof(ga));
	assert_int_equal(feed(&s, &c, 100), 0);
	assert_int_equal(seen.goaway, 1);
	spdy_done(&s);
	client_done(&c);
}

/* Each of these ends the connection with a GOAWAY PROTOCOL_ERROR. */
static void expect_protocol_error(void (*build)(struct client *c))
{
	struct spdy s;
	struct seen seen = { 0 };
	struct client c;
	client_init(&c);
	assert_int_equal(spdy_init(&s, &cbs, &seen), 0);
	build(&c);
	assert_int_equal(feed(&s, &c, 7), -EPROTO);
	uint32_t w2;
	assert_int_equal(first_frame(&s, NULL, &w2), 0x8000u | SPDY_GOAWAY);
	assert_int_equal(w2, SPDY_GOAWAY_PROTOCOL_ERROR);
	spdy_done(&s);
	client_done(&c);
}

static void bad_version(struct client *c)
{
	syn_stream(c, 1, 0, "stdin");
	c->buf[1] = 2;
}

static void even_stream(struct client *c)
{
	syn_stream(c, 2, 0, "stdin");
}

static void decreasing_stream(struct client *c)
{
	syn_stream(c, 5, 0, "stdin");
	syn_stream(c, 3, 0, "stdout");
}

static void too_long_control(struct client *c)
{
	uint8_t f[8] = { 0x80, 3, 0, SPDY_SETTINGS, 0, 0x10, 0, 0 }; /* 1 MiB */
	memcpy(c->buf, f, 8);
	c->len = 8;
}

static void not_zlib(struct client *c)
{
	uint8_t p[20] = { 0, 0, 0, 1 };
	memcpy(p + 10, "notzlib!!!", 10);
	control(c, SPDY_SYN_STREAM, 0, p, sizeof(p));
}

static void too_many_pairs(struct client *c)
{
	uint8_t p[4096];
	put32(p, 1);
	put32(p + 4, 0);
	p[8] = p[9] = 0;
	/* a count far past what follows */
	uint8_t raw[4];
	put32(raw, 100000);
	c->def.next_in = raw;
	c->def.avail_in = 4;
	c->def.next_out = p + 10;
	c->def.avail_out = sizeof(p) - 10;
	assert_int_equal(deflate(&c->def, Z_SYNC_FLUSH), Z_OK);
	control(c, SPDY_SYN_STREAM, 0, p, sizeof(p) - 10 - c->def.avail_out + 10);
}

static void bad_lengths(struct client *c)
{
	uint8_t p[4096];
	put32(p, 1);
	put32(p + 4, 0);
	p[8] = p[9] = 0;
	/* a name length past the block's end: built by hand */
	uint8_t raw[12];
	put32(raw, 1);
	put32(raw + 4, 1000);
	memcpy(raw + 8, "abcd", 4);
	c->def.next_in = raw;
	c->def.avail_in = sizeof(raw);
	c->def.next_out = p + 10;
	c->def.avail_out = sizeof(p) - 10;
	assert_int_equal(deflate(&c->def, Z_SYNC_FLUSH), Z_OK);
	control(c, SPDY_SYN_STREAM, 0, p, sizeof(p) - c->def.avail_out);
}

static void nul_in_name(struct client *c)
{
	uint8_t p[4096];
	put32(p, 1);
	put32(p + 4, 0);
	p[8] = p[9] = 0;
	uint8_t raw[4 + 4 + 3 + 4 + 1] = { 0, 0, 0, 1, 0, 0, 0, 3, 'a', 0, 'b', 0, 0, 0, 1, 'v' };
	c->def.next_in = raw;
	c->def.avail_in = sizeof(raw);
	c->def.next_out = p + 10;
	c->def.avail_out = sizeof(p) - 10;
	assert_int_equal(deflate(&c->def, Z_SYNC_FLUSH), Z_OK);
	control(c, SPDY_SYN_STREAM, 0, p, sizeof(p) - c->def.avail_out);
}

static void data_on_stream_zero(struct client *c)
{
	data(c, 0, 0, "x", 1);
}

static void short_window_update(struct client *c)
{
	uint8_t wu[4] = { 0 };
	control(c, SPDY_WINDOW_UPDATE, 0, wu, sizeof(wu));
}

static void test_spdy_hostile(void **state)
{
	(void)state;
	expect_protocol_error(bad_version);
	expect_protocol_error(even_stream);
	expect_protocol_error(decreasing_stream);
	expect_protocol_error(too_long_control);
	expect_protocol_error(not_zlib);
	expect_protocol_error(too_many_pairs);
	expect_protocol_error(bad_lengths);
	expect_protocol_error(nul_in_name);
	expect_protocol_error(data_on_stream_zero);
	expect_protocol_error(short_window_update);
}

/* More streams than the bound: the rest are refused, the connection lives. */
static void test_spdy_stream_bound(void **state)
{
	(void)state;
	struct spdy s;
	struct seen seen = { 0 };
	struct client c;
	client_init(&c);
	static const struct spdy_callbacks none = { 0 };
	assert_int_equal(spdy_init(&s, &none, &seen), 0);
	for (uint32_t i = 0; i < SPDY_STREAMS_MAX + 1; i++) {
		syn_stream(&c, 2 * i + 1, 0, "stdin");
		assert_int_equal(feed(&s, &c, 4096), 0);
	}
	uint32_t w1, w2;
	assert_int_equal(first_frame(&s, &w1, &w2), 0x8000u | SPDY_RST_STREAM);
	assert_int_equal(w1, 2 * SPDY_STREAMS_MAX + 1);
	assert_int_equal(w2, SPDY_RST_REFUSED_STREAM);
	spdy_done(&s);
	client_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_spdy_streams),
		cmocka_unit_test(test_spdy_hostile),
		cmocka_unit_test(test_spdy_stream_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
