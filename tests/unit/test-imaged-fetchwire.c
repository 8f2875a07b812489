/* imaged/fetchwire.h's frames and imaged/fetch.h's pool against hostile
 * helpers: a stand-in (fetch-helpers/hostile-fetch.py) that takes each
 * transfer's socket like cric-fetch and answers with malformed frames, or
 * dies midway; and /bin/true, a helper that exits at once. Every case is an
 * error for that transfer, never a crash, and the next transfer works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libgen.h>
#include <sys/socket.h>

#include "imaged/fetch.h"
#include "imaged/fetchwire.h"
#include "tests/unit/testutil.h"

static void test_frame_parse(void **state)
{
	(void)state;
	uint8_t buf[FETCH_FRAME_HDR + 8];
	struct fetch_frame f;
	size_t used = 0;

	fetch_frame_header(buf, FETCH_EV_BODY, 3);
	memcpy(buf + FETCH_FRAME_HDR, "abc", 3);
	/* Every prefix is "need more", the whole is one frame. */
	for (size_t n = 0; n < FETCH_FRAME_HDR + 3; n++)
		assert_int_equal(fetch_frame_parse(buf, n, &f, &used), 0);
	assert_int_equal(fetch_frame_parse(buf, sizeof(buf), &f, &used), 1);
	assert_int_equal(f.type, FETCH_EV_BODY);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.data, "abc", 3);
	assert_int_equal(used, FETCH_FRAME_HDR + 3);

	/* An unknown type, a length over the limit: refused at the header. */
	fetch_frame_header(buf, 0, 0);
	assert_int_equal(fetch_frame_parse(buf, FETCH_FRAME_HDR, &f, &used), -EBADMSG);
	fetch_frame_header(buf, 200, 0);
	assert_int_equal(fetch_frame_parse(buf, FETCH_FRAME_HDR, &f, &used), -EBADMSG);
	fetch_frame_header(buf, FETCH_EV_BODY, FETCH_FRAME_MAX + 1);
	assert_int_equal(fetch_frame_parse(buf, FETCH_FRAME_HDR, &f, &used), -EBADMSG);
	fetch_frame_header(buf, FETCH_EV_BODY, 0xffffffffu);
	assert_int_equal(fetch_frame_parse(buf, FETCH_FRAME_HDR, &f, &used), -EBADMSG);
	fetch_frame_header(buf, FETCH_EV_BODY, FETCH_FRAME_MAX);
	assert_int_equal(fetch_frame_parse(buf, FETCH_FRAME_HDR, &f, &used), 0);
}

static void test_done(void **state)
{
	(void)state;
	uint8_t buf[FETCH_FRAME_MAX];
	struct fetch_done d = { .err = -ECONNREFUSED, .status = 0 }, got;
	snprintf(d.msg, sizeof(d.msg), "Could not connect\x01 to server");
	size_t n = fetch_done_encode(&d, buf);
	assert_int_equal(fetch_done_parse(buf, n, &got), 0);
	assert_int_equal(got.err, -ECONNREFUSED);
	assert_string_equal(got.msg, "Could not connect? to server");

	struct fetch_done keep = { .err = 1, .status = 2, .msg = "kept" };
	got = keep;
	const uint8_t short_[] = { 0, 0, 0 };
	assert_int_equal(fetch_done_parse(short_, sizeof(short_), &got), -EBADMSG);
	const uint8_t big_err[] = { 0x10, 0x00, 0, 200 };
	assert_int_equal(fetch_done_parse(big_err, sizeof(big_err), &got), -EBADMSG);
	const uint8_t big_status[] = { 0, 0, 0x03, 0xe8 };
	assert_int_equal(fetch_done_parse(big_status, sizeof(big_status), &got), -EBADMSG);
	const uint8_t ctl[] = { 0, 0, 0, 200, 'a', '\n' };
	assert_int_equal(fetch_done_parse(ctl, sizeof(ctl), &got), -EBADMSG);
	memset(buf, 'a', sizeof(buf));
	buf[0] = buf[1] = buf[2] = 0;
	buf[3] = 200;
	assert_int_equal(fetch_done_parse(buf, 4 + FETCH_MSG_MAX, &got), -EBADMSG);
	/* Refused: the output is untouched. */
	assert_int_equal(got.err, 1);
	assert_string_equal(got.msg, "kept");
}

static void test_reader(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct fetch_reader *rd = malloc(sizeof(*rd));
	assert_non_null(rd);
	fetch_reader_init(rd, sv[0]);
	struct fetch_frame f;

	/* Nothing yet: a timeout. Then frames written whole and in pieces. */
	assert_int_equal(fetch_reader_next(rd, 10, &f), 0);
	assert_int_equal(fetch_write_str(sv[1], FETCH_EV_HEADER, "HTTP/1.1 200 OK\r\n"), 0);
	assert_int_equal(fetch_reader_next(rd, 1000, &f), 1);
	assert_int_equal(f.type, FETCH_EV_HEADER);
	assert_int_equal(f.len, 17);
	static uint8_t big[FETCH_FRAME_MAX];
	memset(big, 'z', sizeof(big));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fetch_write_frame(sv[1], FETCH_EV_BODY, big, sizeof(big)), 0);
		assert_int_equal(fetch_reader_next(rd, 1000, &f), 1);
		assert_int_equal(f.len, FETCH_FRAME_MAX);
		assert_int_equal(f.data[FETCH_FRAME_MAX - 1], 'z');
	}
	assert_int_equal(fetch_write_frame(sv[1], FETCH_EV_BODY, big, FETCH_FRAME_MAX + 1), -E2BIG);

	/* Half a frame, then the peer goes. */
	uint8_t hdr[FETCH_FRAME_HDR];
	fetch_frame_header(hdr, FETCH_EV_BODY, 10);
	assert_int_equal(write(sv[1], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(write(sv[1], "abc", 3), 3);
	assert_int_equal(fetch_reader_next(rd, 10, &f), 0);
	close(sv[1]);
	assert_int_equal(fetch_reader_next(rd, 1000, &f), -ECONNRESET);
	close(sv[0]);

	/* A length over the limit. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fetch_reader_init(rd, sv[0]);
	fetch_frame_header(hdr, FETCH_EV_BODY, FETCH_FRAME_MAX + 1);
	assert_int_equal(write(sv[1], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(fetch_reader_next(rd, 1000, &f), -EBADMSG);
	close(sv[0]);
	close(sv[1]);
	free(rd);
}

/* --- the pool against hostile helpers --- */

struct sink {
	char body[64];
	size_t len;
	unsigned headers;
};

static int on_header(void *u, const char *line, size_t len)
{
	(void)line, (void)len;
	((struct sink *)u)->headers++;
	return 0;
}

static int on_body(void *u, const char *data, size_t len)
{
	struct sink *s = u;
	if (len > sizeof(s->body) - s->len)
		return -1;
	memcpy(s->body + s->len, data, len);
	s->len += len;
	return 0;
}

static int on_tick(void *u)
{
	(void)u;
	return 0;
}

static const struct fetch_ops ops = { on_header, on_body, on_tick };

static char *hostile_path(void)
{
	char exe[PATH_MAX], *p = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	/* build/tests/<this> -> tests/unit/fetch-helpers/ of the tree. */
	assert_true(
	    asprintf(&p, "%s/../../tests/unit/fetch-helpers/hostile-fetch.py", dirname(exe)) > 0);
	return p;
}

static int run(struct fetch_pool *p, struct sink *s, struct fetch_done *d, struct cric_err *err)
{
	const struct fetch_req rq = { .url = "http://127.0.0.1:1/x", .max_redirs = -1 };
	*s = (struct sink){ 0 };
	return fetch_perform(p, &rq, &ops, s, d, err);
}

static void test_hostile_helper(void **state)
{
	(void)state;
	char *path = hostile_path();
	struct fetch_pool *p = NULL;
	struct cric_err err = { "" };
	struct fetch_done d;
	struct sink s;
	assert_int_equal(fetch_pool_new(path, 5, &p, &err), 0);

	setenv("HOSTILE_MODE", "ok", 1);
	assert_int_equal(run(p, &s, &d, &err), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.status, 200);
	assert_int_equal(s.len, 2);
	assert_memory_equal(s.body, "hi", 2);
	pid_t first = fetch_pool_helper_pid(p);
	assert_true(first > 0);

	/* Each lie is an error of that transfer; the helper is kept. */
	const char *modes[] = { "garbage", "huge", "baddone" };
	for (size_t i = 0; i < 3; i++) {
		/* (the running helper reads the mode at start: a new one each time) */
		fetch_pool_free(p);
		setenv("HOSTILE_MODE", modes[i], 1);
		assert_int_equal(fetch_pool_new(path, 5, &p, &err), 0);
		err.msg[0] = '\0';
		assert_int_equal(run(p, &s, &d, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "fetch helper: malformed"));
	}

	/* Dying after the first event: -ECONNRESET, no retry; the next
	 * transfer starts a new helper. */
	fetch_pool_free(p);
	setenv("HOSTILE_MODE", "midway", 1);
	assert_int_equal(fetch_pool_new(path, 5, &p, &err), 0);
	assert_int_equal(run(p, &s, &d, &err), -ECONNRESET);
	assert_non_null(strstr(err.msg, "cric-fetch) exited during the transfer"));
	assert_int_equal(s.headers, 1);
	assert_int_equal(run(p, &s, &d, &err), -ECONNRESET);
	fetch_pool_free(p);
	unsetenv("HOSTILE_MODE");
	free(path);
}

static void test_helper_exits_at_once(void **state)
{
	(void)state;
	struct fetch_pool *p = NULL;
	struct cric_err err = { "" };
	struct fetch_done d;
	struct sink s;
	assert_int_equal(fetch_pool_new("/bin/true", 5, &p, &err), 0);
	/* Tried twice (the second on a new helper), then a clear error. */
	int r = run(p, &s, &d, &err);
	assert_true(r == -ECONNRESET || r == -EPIPE);
	assert_non_null(strstr(err.msg, "fetch helper"));
	fetch_pool_free(p);

	assert_int_equal(fetch_pool_new("/nonexistent/cric-fetch", 5, &p, &err), -ENOPKG);
	assert_non_null(strstr(err.msg, "/nonexistent/cric-fetch"));
}

/* --- the real helper over TLS --- */

static const char TLS_SERVER[] = "import http.server, os, ssl, sys\n"
				 "d = sys.argv[1]\n"
				 "class H(http.server.BaseHTTPRequestHandler):\n"
				 "    def do_GET(self):\n"
				 "        body = b'x' * int(self.path[1:])\n"
				 "        self.send_response(200)\n"
				 "        self.send_header('Content-Length', str(len(body)))\n"
				 "        self.end_headers()\n"
				 "        self.wfile.write(body)\n"
				 "    def log_message(self, *a):\n"
				 "        pass\n"
				 "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
				 "s.handle_error = lambda *a: None\n"
				 "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
				 "c.load_cert_chain(d + '/c.pem', d + '/k.pem')\n"
				 "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
				 "open(d + '/port.tmp', 'w').write(str(s.server_address[1]))\n"
				 "os.rename(d + '/port.tmp', d + '/port')\n"
				 "s.serve_forever()\n";

static char *real_helper(void)
{
	char exe[PATH_MAX], *p = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_true(asprintf(&p, "%s/../bin/cric-fetch", dirname(exe)) > 0);
	return p;
}

static int stop_at_first_body(void *u, const char *data, size_t len)
{
	(void)u, (void)data, (void)len;
	return -1;
}

static void test_tls_with_the_real_helper(void **state)
{
	(void)state;
	char *dir = tmpdir_make("fetch-tls"), cmd[2 * PATH_MAX], path[PATH_MAX];
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
		 "-addext subjectAltName=IP:127.0.0.1 -keyout %s/k.pem -out %s/c.pem "
		 ">/dev/null 2>&1",
		 dir, dir);
	assert_int_equal(system(cmd), 0);
	pid_t srv = fork();
	assert_true(srv >= 0);
	if (srv == 0) {
		execl("/usr/bin/python3", "python3", "-c", TLS_SERVER, dir, (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/port", dir);
	int port = 0;
	for (int i = 0; i < 500 && !port; i++) {
		FILE *f = fopen(path, "re");
		if (f) {
			assert_int_equal(fscanf(f, "%d", &port), 1);
			fclose(f);
		} else {
			usleep(10000);
		}
	}
	assert_true(port > 0);

	char *helper = real_helper(), url[128], ca[PATH_MAX];
	struct fetch_pool *p = NULL;
	struct cric_err err = { "" };
	struct fetch_done d;
	struct sink s;
	snprintf(ca, sizeof(ca), "%s/c.pem", dir);
	assert_int_equal(fetch_pool_new(helper, 5, &p, &err), 0);

	/* Verified against the CA file given: the body comes whole. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/40", port);
	struct fetch_req rq = {
		.url = url, .max_redirs = 3, .connect_timeout_sec = 5, .ca_file = ca
	};
	s = (struct sink){ 0 };
	assert_int_equal(fetch_perform(p, &rq, &ops, &s, &d, &err), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.status, 200);
	assert_int_equal(s.len, 40);

	/* Stopped by imaged at the first body bytes (the helper's curl sees
	 * the socket close), and the next request still works. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/10000000", port);
	const struct fetch_ops stop_ops = { on_header, stop_at_first_body, on_tick };
	assert_int_equal(fetch_perform(p, &rq, &stop_ops, &s, &d, &err), -ECANCELED);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/7", port);
	s = (struct sink){ 0 };
	assert_int_equal(fetch_perform(p, &rq, &ops, &s, &d, &err), 0);
	assert_int_equal(s.len, 7);

	/* Without the CA: the certificate is refused; http without
	 * allow_http: not even tried. */
	rq.ca_file = NULL;
	assert_int_equal(fetch_perform(p, &rq, &ops, &s, &d, &err), 0);
	assert_int_equal(d.err, -EPROTO);
	assert_true(d.msg[0] != '\0');
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/7", port);
	assert_int_equal(fetch_perform(p, &rq, &ops, &s, &d, &err), 0);
	assert_int_equal(d.err, -EPROTONOSUPPORT);
	assert_true(fetch_pool_helper_pid(p) > 0);
	fetch_pool_free(p);

	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	tmpdir_remove(dir);
	free(helper);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_parse),
		cmocka_unit_test(test_done),
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_hostile_helper),
		cmocka_unit_test(test_helper_exits_at_once),
		cmocka_unit_test(test_tls_with_the_real_helper),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
