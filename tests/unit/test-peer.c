/* common/peer.h: callers from peer credentials (the daemons' users; root
 * peers by executable, pid reuse caught), and the server's check of every
 * request against the method's callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ipc.h"
#include "common/peer.h"
#include "common/service.h"
#include "testutil.h"

extern char **environ;

static const struct cric_identities ids = {
	.gateway_uid = 999,
	.imaged_uid = 995,
	.group_gid = 990,
	.bin_dir = "/usr/local/bin",
};

static void test_unprivileged_peers_by_uid(void **state)
{
	(void)state;
	assert_int_equal(caller_from_creds(&ids, 999, NULL), CALLER_GATEWAY);
	assert_int_equal(caller_from_creds(&ids, 995, NULL), CALLER_IMAGED);
	/* whatever it runs: the uid decides */
	assert_int_equal(caller_from_creds(&ids, 995, "/usr/local/bin/cric-runtimed"),
			 CALLER_IMAGED);
	assert_int_equal(caller_from_creds(&ids, 999, "/usr/local/bin/cricctl"), CALLER_GATEWAY);
	/* another user that reached the socket: a member of group cric */
	assert_int_equal(caller_from_creds(&ids, 1000, "/usr/local/bin/cric-netd"), CALLER_MEMBER);
	assert_int_equal(caller_from_creds(&ids, 65534, NULL), CALLER_MEMBER);
	/* daemons configured to run as root: their uids are no one's */
	const struct cric_identities none = { (uid_t)-1, (uid_t)-1, (gid_t)-1, NULL };
	assert_int_equal(caller_from_creds(&none, 999, NULL), CALLER_MEMBER);
	assert_int_equal(caller_from_creds(&none, (uid_t)-1, NULL), CALLER_MEMBER);
}

static void test_root_peers_by_executable(void **state)
{
	(void)state;
	static const struct {
		const char *exe;
		unsigned caller;
	} cases[] = {
		{ "/usr/local/bin/cric-runtimed", CALLER_RUNTIMED },
		{ "/usr/local/bin/cric-netd", CALLER_NETD },
		{ "/usr/local/bin/cric-stored", CALLER_STORED },
		{ "/usr/local/bin/cric-monitord", CALLER_MONITORD },
		{ "/usr/local/bin/cric-imaged", CALLER_IMAGED },
		{ "/usr/local/bin/cric-gateway", CALLER_GATEWAY },
		/* root's tools and anything else root runs */
		{ "/usr/local/bin/cricctl", CALLER_ADMIN },
		{ "/usr/local/bin/cric-call", CALLER_ADMIN },
		{ "/usr/bin/python3.11", CALLER_ADMIN },
		/* the name alone is not enough: the suite's directory */
		{ "/tmp/cric-runtimed", CALLER_ADMIN },
		{ "/usr/local/bin/x/cric-runtimed", CALLER_ADMIN },
		{ "/usr/local/binx/cric-runtimed", CALLER_ADMIN },
		{ "/usr/local/cric-runtimed", CALLER_ADMIN },
		{ "/usr/local/bin/cric-runtimed (deleted)", CALLER_ADMIN },
		{ "/usr/local/bin/cric-runtimedx", CALLER_ADMIN },
		{ "cric-runtimed", CALLER_ADMIN },
		{ "", CALLER_ADMIN },
		{ NULL, CALLER_ADMIN },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned got = caller_from_creds(&ids, 0, cases[i].exe);
		if (got != cases[i].caller)
			fail_msg("%s: %s, want %s", cases[i].exe ? cases[i].exe : "(null)",
				 caller_name(got), caller_name(cases[i].caller));
	}
	/* a bin dir given with a trailing slash */
	const struct cric_identities slash = { 999, 995, 990, "/opt/cric/bin/" };
	assert_int_equal(caller_from_creds(&slash, 0, "/opt/cric/bin/cric-netd"), CALLER_NETD);
	/* no bin dir known: every root peer is root's tool */
	const struct cric_identities nodir = { 999, 995, 990, NULL };
	assert_int_equal(caller_from_creds(&nodir, 0, "/usr/local/bin/cric-netd"), CALLER_ADMIN);
}

static void test_caller_names(void **state)
{
	(void)state;
	assert_string_equal(caller_name(CALLER_GATEWAY), "gateway");
	assert_string_equal(caller_name(CALLER_IMAGED), "imaged");
	assert_string_equal(caller_name(CALLER_RUNTIMED), "runtimed");
	assert_string_equal(caller_name(CALLER_ADMIN), "admin");
	assert_string_equal(caller_name(CALLER_MEMBER), "member");
	assert_string_equal(caller_name(0), "nobody");
	assert_string_equal(caller_name(CALLER_GATEWAY | CALLER_IMAGED), "nobody");
}

/* A real process whose executable is <dir>/cric-netd (a copy of sleep):
 * identified as netd while it runs; once it is gone its pid names nothing. */
static void test_identify_a_live_process(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* root peers only: the uid decides for others */
	char *dir = tmpdir_make("peer");
	char exe[PATH_MAX];
	snprintf(exe, sizeof(exe), "%s/cric-netd", dir);
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "cp /bin/sleep '%s'", exe);
	assert_int_equal(system(cmd), 0);
	pid_t pid;
	char *argv[] = { exe, "30", NULL };
	assert_int_equal(posix_spawn(&pid, exe, NULL, NULL, argv, environ), 0);

	const struct cric_identities here = { 999, 995, 990, dir };
	struct cric_peer p;
	peer_identify(&here, 0, 0, pid, &p);
	assert_string_equal(p.exe, exe);
	assert_string_equal(p.comm, "cric-netd");
	assert_int_equal(p.caller, CALLER_NETD);
	assert_int_equal(p.pid, pid);
	/* the same process as another user's: the uid decides */
	peer_identify(&here, 995, 995, pid, &p);
	assert_int_equal(p.caller, CALLER_IMAGED);

	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	peer_identify(&here, 0, 0, pid, &p);
	assert_string_equal(p.exe, "");
	assert_int_equal(p.caller, CALLER_ADMIN);
	/* ourselves: not one of the suite's daemons */
	peer_identify(&here, 0, 0, getpid(), &p);
	assert_true(p.exe[0] == '/');
	assert_int_equal(p.caller, CALLER_ADMIN);
	tmpdir_remove(dir);
}

/* The start time is field 22 of /proc/<pid>/stat, counted after the
 * command name (which may hold spaces and parentheses); it does not change
 * while the process runs and its memory does (field 23, vsize, does). */
static void test_start_time(void **state)
{
	(void)state;
	FILE *f = fopen("/proc/self/stat", "r");
	assert_non_null(f);
	char buf[1024];
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	char *p = strrchr(buf, ')') + 2; /* field 3 */
	for (int field = 3; field < 22; field++)
		p = strchr(p, ' ') + 1;
	unsigned long long want = strtoull(p, NULL, 10);
	assert_true(want > 0);
	assert_true(peer_start_time(getpid()) == want);
	void *big = malloc(64 << 20);
	assert_non_null(big);
	memset(big, 1, 64 << 20);
	assert_true(peer_start_time(getpid()) == want);
	free(big);
	assert_true(peer_start_time(0) == 0);
	assert_true(peer_start_time(INT32_MAX) == 0);
}

static int h_status(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		    ProtobufCMessage **resp, struct cric_err *err)
{
	(void)req;
	(void)err;
	int *calls = userdata;
	(*calls)++;
	assert_int_equal(call->caller, CALLER_ADMIN);
	assert_int_equal(call->peer_pid, getpid());
	Cric__Netd__NetworkStatusResponse *out = malloc(sizeof(*out));
	if (!out)
		return -ENOMEM;
	cric__netd__network_status_response__init(out);
	*resp = &out->base;
	return 0;
}

static int h_never(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		   ProtobufCMessage **resp, struct cric_err *err)
{
	(void)call;
	(void)req;
	(void)resp;
	(void)err;
	int *calls = userdata;
	(*calls)++;
	return -EIO;
}

/* The server checks every request: a method whose line does not name the
 * caller (here root's test binary: CALLER_ADMIN) answers PERMISSION_DENIED
 * and its handler never runs; one that does runs. */
static void test_server_enforces_callers(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* the socket is group cric's, 0660: root's test */
	char *dir = tmpdir_make("peer-srv");
	char url[PATH_MAX];
	snprintf(url, sizeof(url), "ipc://%s/netd.sock", dir);
	const struct cric_handler lines[] = {
		{ CRIC_NETD(network_status), h_status, .callers = CALLER_RUNTIMED | CALLER_ADMIN },
		{ CRIC_NETD(setup_pod_network), h_never, .callers = CALLER_RUNTIMED },
		{ CRIC_NETD(teardown_pod_network), h_never, .callers = CALLER_RUNTIMED },
		{ CRIC_NETD(pod_network_status), h_never, .callers = 0 },
	};
	const struct cric_service svc[] = { { &cric__netd__netd__descriptor, lines, 4 } };
	int calls = 0;
	struct cric_server_config cfg = {
		.daemon = "netd",
		.version = "t",
		.url = url,
		.ids = { 999, 995, (gid_t)-1, NULL },
		.workers = 2,
		.services = svc,
		.n_services = 1,
		.userdata = &calls,
	};
	struct cric_server *s = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(cric_server_start(&cfg, &s, &err), 0);
	struct stat st;
	assert_int_equal(stat(url + 6, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);

	struct cric_client *c = NULL;
	assert_int_equal(cric_client_open("netd", url, &c, &err), 0);
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	Cric__Netd__SetupPodNetworkRequest setup = CRIC__NETD__SETUP_POD_NETWORK_REQUEST__INIT;
	assert_int_equal(cric_call(c, CRIC_NETD(setup_pod_network), NULL, deadline_in_ms(5000),
				   &setup.base, &out, &msg),
			 CODE_PERMISSION_DENIED);
	assert_null(out);
	assert_non_null(strstr(msg, "cric.netd.SetupPodNetwork may not be called by admin"));
	free(msg);
	msg = NULL;
	Cric__Netd__PodNetworkStatusRequest pst = CRIC__NETD__POD_NETWORK_STATUS_REQUEST__INIT;
	assert_int_equal(cric_call(c, CRIC_NETD(pod_network_status), NULL, deadline_in_ms(5000),
				   &pst.base, &out, &msg),
			 CODE_PERMISSION_DENIED);
	free(msg);
	msg = NULL;
	assert_int_equal(calls, 0);

	Cric__Netd__NetworkStatusRequest ns = CRIC__NETD__NETWORK_STATUS_REQUEST__INIT;
	assert_int_equal(cric_call(c, CRIC_NETD(network_status), NULL, deadline_in_ms(5000),
				   &ns.base, &out, &msg),
			 CODE_OK);
	assert_int_equal(calls, 1);
	protobuf_c_message_free_unpacked(out, NULL);
	cric_client_close(c);
	cric_server_stop(s);
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unprivileged_peers_by_uid),
		cmocka_unit_test(test_root_peers_by_executable),
		cmocka_unit_test(test_caller_names),
		cmocka_unit_test(test_start_time),
		cmocka_unit_test(test_identify_a_live_process),
		cmocka_unit_test(test_server_enforces_callers),
	};
	return cmocka_run_group_tests_name("peer", tests, NULL, NULL);
}
