/* common/sdproto.h: sd_notify's datagram to $NOTIFY_SOCKET (a path and an
 * abstract name), and journald's native encoding of a record, read back
 * from sockets bound here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>

#include "common/sdproto.h"
#include "testutil.h"

/* A datagram socket bound to name (a path or "@abstract"). */
static int bound(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	assert_true(n < sizeof(sa.sun_path));
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

/* The next datagram on fd (none waiting: -1). */
static ssize_t next(int fd, char *buf, size_t size)
{
	return recv(fd, buf, size, MSG_DONTWAIT);
}

static void test_notify_reaches_a_path_and_an_abstract_socket(void **state)
{
	(void)state;
	char *dir = tmpdir_make("sdproto");
	char path[PATH_MAX], buf[256];
	int fd = bound(tpath(path, dir, "notify"));
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(sd_proto_notify("READY=1"), 0);
	ssize_t k = next(fd, buf, sizeof(buf));
	assert_int_equal(k, 7);
	assert_memory_equal(buf, "READY=1", 7);
	assert_int_equal(sd_proto_notifyf("STATUS=serving on %s\nMAINPID=%d", "x", 42), 0);
	k = next(fd, buf, sizeof(buf) - 1);
	assert_true(k > 0);
	buf[k] = '\0';
	assert_string_equal(buf, "STATUS=serving on x\nMAINPID=42");
	close(fd);

	char abstract[64];
	snprintf(abstract, sizeof(abstract), "@cric-test-sdproto-%d", (int)getpid());
	fd = bound(abstract);
	setenv("NOTIFY_SOCKET", abstract, 1);
	assert_int_equal(sd_proto_notify("STOPPING=1"), 0);
	assert_int_equal(next(fd, buf, sizeof(buf)), 10);
	assert_memory_equal(buf, "STOPPING=1", 10);
	close(fd);

	/* No manager: nothing to tell; one that is gone: its error. */
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sd_proto_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", tpath(path, dir, "gone"), 1);
	assert_int_equal(sd_proto_notify("READY=1"), -ENOENT);
	setenv("NOTIFY_SOCKET", "relative", 1);
	assert_int_equal(sd_proto_notify("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(unlink(tpath(path, dir, "notify")), 0);
	tmpdir_remove(dir);
}

#define IOV(s)                                                                                     \
	{                                                                                          \
		(void *)(s), sizeof(s) - 1                                                         \
	}

static void test_journal_fields_plain_and_binary(void **state)
{
	(void)state;
	char *dir = tmpdir_make("sdproto");
	char path[PATH_MAX], buf[512];
	int fd = bound(tpath(path, dir, "journal"));
	struct iovec iov[] = { IOV("MESSAGE=two\nlines"), IOV("PRIORITY=4"), IOV("EMPTY=") };
	assert_int_equal(sd_proto_journal_send(iov, 3, path), 0);
	ssize_t k = next(fd, buf, sizeof(buf));
	/* "MESSAGE\n" + 9 as 64-bit little-endian + "two\nlines\n", then the
	 * plain fields. */
	static const char want[] = "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\nPRIORITY=4\nEMPTY=\n";
	assert_int_equal(k, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);

	/* Not a field; a record over the bound: refused, nothing sent. */
	struct iovec bad[] = { IOV("MESSAGE=x"), IOV("no equals sign") };
	assert_int_equal(sd_proto_journal_send(bad, 2, path), -EINVAL);
	struct iovec noname[] = { IOV("=x") };
	assert_int_equal(sd_proto_journal_send(noname, 1, path), -EINVAL);
	static char big[SD_PROTO_JOURNAL_MAX + 1];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "MESSAGE=", 8);
	struct iovec huge[] = { { big, sizeof(big) - 1 } };
	assert_int_equal(sd_proto_journal_send(huge, 1, path), -E2BIG);
	assert_true(next(fd, buf, sizeof(buf)) < 0);
	close(fd);
	assert_int_equal(unlink(path), 0);
	/* Nobody listening: the error, no crash. */
	assert_int_equal(sd_proto_journal_send(iov, 3, path), -ENOENT);
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_reaches_a_path_and_an_abstract_socket),
		cmocka_unit_test(test_journal_fields_plain_and_binary),
	};
	return cmocka_run_group_tests_name("sdproto", tests, NULL, NULL);
}
