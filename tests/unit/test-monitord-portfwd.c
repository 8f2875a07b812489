/* monitord/portfwd.h and its helper cric-portfwd, on the host's network
 * (no pod: test_portfwd.py does pods): a connection handed back works both
 * ways, and every refusal has its errno and a clear text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/cleanup.h"
#include "monitord/portfwd.h"
#include "tests/unit/testutil.h"

/* build/tests/<this> -> build/bin/cric-portfwd */
static char *helper_path(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	char *p = NULL;
	assert_true(asprintf(&p, "%s/../bin/cric-portfwd", exe) > 0);
	return p;
}

/* A listener on 127.0.0.1, its port in *port. */
static int listen_loopback(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void test_host_connection(void **state)
{
	(void)state;
	_cleanup_free_ char *helper = helper_path();
	uint16_t port;
	_cleanup_close_ int l = listen_loopback(&port);
	char why[256] = "";
	_cleanup_close_ int fd = portfwd_connect(helper, NULL, port, why, sizeof(why));
	assert_true(fd >= 0);
	_cleanup_close_ int peer = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(peer >= 0);
	assert_int_equal(write(fd, "ping", 4), 4);
	char buf[8] = "";
	assert_int_equal(read(peer, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(peer, "pong", 4), 4);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pong", 4);
	/* Blocking and close-on-exec, as documented. */
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void test_refusals(void **state)
{
	(void)state;
	_cleanup_free_ char *helper = helper_path();
	char why[256] = "", *dir = tmpdir_make("portfwd"), path[PATH_MAX];
	uint16_t port;
	/* A port nothing listens on: bind one, close it. */
	close(listen_loopback(&port));
	assert_int_equal(portfwd_connect(helper, NULL, port, why, sizeof(why)), -ECONNREFUSED);
	assert_non_null(strstr(why, "in the host: Connection refused"));
	/* No such namespace; a file that is not one; not absolute; port 0. */
	assert_int_equal(portfwd_connect(helper, tpath(path, dir, "none"), port, why, sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "open the network namespace"));
	write_bytes(tpath(path, dir, "plain"), "", 0, 0644);
	assert_int_equal(portfwd_connect(helper, path, port, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "enter the network namespace"));
	assert_int_equal(portfwd_connect(helper, "relative", port, why, sizeof(why)), -EINVAL);
	assert_int_equal(portfwd_connect(helper, NULL, 0, why, sizeof(why)), -EINVAL);
	/* No helper. */
	assert_int_equal(portfwd_connect("/nonexistent/cric-portfwd", NULL, port, why, sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/cric-portfwd"));
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_connection),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests_name("monitord-portfwd", tests, NULL, NULL);
}
