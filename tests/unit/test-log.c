/* common/log.h: the journal's fields of a record, and the records that go
 * through the journal's native protocol (sdproto.h) to a socket read here (in
 * a private mount namespace, where /run/systemd/journal/socket is ours:
 * journald does not run on these machines). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

static const struct log_ctx story = {
	.method = "/runtime.v1.RuntimeService/StartContainer",
	.request_id = "0123456789abcdef",
	.pod_id = "aaaa",
	.pod_name = "web",
	.pod_namespace = "default",
	.container_id = "cccc",
	.image = "registry.example/app:1",
};

/* The value of field name in iov, or NULL. */
static char *field(const struct iovec *iov, size_t n, const char *name)
{
	static char out[256];
	size_t k = strlen(name);
	for (size_t i = 0; i < n; i++) {
		const char *p = iov[i].iov_base;
		if (iov[i].iov_len > k && strncmp(p, name, k) == 0 && p[k] == '=') {
			snprintf(out, sizeof(out), "%.*s", (int)(iov[i].iov_len - k - 1),
				 p + k + 1);
			return out;
		}
	}
	return NULL;
}

static void test_fields_of_a_container_story(void **state)
{
	(void)state;
	char buf[4096];
	struct iovec iov[LOG_JOURNAL_FIELDS];
	size_t n = log_journal_fields(LOG_WARNING, "cric-runtimed", "started", &story, buf,
				      sizeof(buf), iov);
	assert_int_equal(n, 10);
	assert_string_equal(field(iov, n, "MESSAGE"), "started");
	assert_string_equal(field(iov, n, "PRIORITY"), "4");
	assert_string_equal(field(iov, n, "SYSLOG_IDENTIFIER"), "cric-runtimed");
	assert_string_equal(field(iov, n, "CRI_METHOD"), story.method);
	assert_string_equal(field(iov, n, "CRIC_REQUEST"), story.request_id);
	assert_string_equal(field(iov, n, "POD_ID"), "aaaa");
	assert_string_equal(field(iov, n, "POD_NAME"), "web");
	assert_string_equal(field(iov, n, "POD_NAMESPACE"), "default");
	assert_string_equal(field(iov, n, "CONTAINER_ID"), "cccc");
	assert_string_equal(field(iov, n, "IMAGE"), story.image);
}

static void test_unknown_fields_are_left_out_and_long_values_cut(void **state)
{
	(void)state;
	const struct log_ctx none = { 0 };
	char buf[64];
	struct iovec iov[LOG_JOURNAL_FIELDS];
	char msg[200];
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	size_t n = log_journal_fields(LOG_INFO, "t", msg, &none, buf, sizeof(buf), iov);
	assert_int_equal(n, 1); /* MESSAGE filled the buffer */
	assert_int_equal(iov[0].iov_len, sizeof(buf) - 1);
	assert_null(field(iov, n, "CONTAINER_ID"));
	char big[256];
	n = log_journal_fields(LOG_INFO, "t", "m", &none, big, sizeof(big), iov);
	assert_int_equal(n, 3); /* MESSAGE, SYSLOG_IDENTIFIER, PRIORITY */
	assert_null(field(iov, n, "CRI_METHOD"));
}

/* In a child: our own /run, a datagram socket where journald's would be,
 * stderr named by JOURNAL_STREAM; log one record and check what came. */
static int journal_child(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
		return 77;
	if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
		return 2;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX,
				  .sun_path = "/run/systemd/journal/socket" };
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 3;
	struct stat st;
	char env[64];
	if (fstat(STDERR_FILENO, &st) < 0)
		return 4;
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_open("cric-test");
	log_ctx_set(&story);
	log_warning("container %s started", "cccc");
	char buf[8192];
	ssize_t k = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (k <= 0)
		return 5;
	buf[k] = '\0';
	const char *want[] = {
		"MESSAGE=container cccc started\n",
		"PRIORITY=4\n",
		"SYSLOG_IDENTIFIER=cric-test\n",
		"CRI_METHOD=/runtime.v1.RuntimeService/StartContainer\n",
		"CRIC_REQUEST=0123456789abcdef\n",
		"POD_ID=aaaa\n",
		"POD_NAME=web\n",
		"POD_NAMESPACE=default\n",
		"CONTAINER_ID=cccc\n",
		"IMAGE=registry.example/app:1\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(buf, want[i])) {
			fprintf(stderr, "missing %s in:\n%s\n", want[i], buf);
			return 6;
		}
	/* A stderr that is not the journal's stream: lines, no journal. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_detect_journal();
	log_info("to stderr");
	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		return 7;
	return 0;
}

static void test_records_reach_the_journal_socket(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* a mount namespace of our own */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(journal_child());
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip(); /* no mount namespaces here */
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_of_a_container_story),
		cmocka_unit_test(test_unknown_fields_are_left_out_and_long_values_cut),
		cmocka_unit_test(test_records_reach_the_journal_socket),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
