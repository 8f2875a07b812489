/* runtimed/seccomp-profile.h: Localhost profiles read from real files
 * (missing, a directory, too large, not JSON, through a symlink), built
 * for a machine and kernel (archMap, includes/excludes by caps, arch and
 * minKernel), compiled by libseccomp (unknown names and bad fields
 * refused), and no error ever quoting the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "runtimed/seccomp-profile.h"
#include "testutil.h"

#define SYS_ADMIN (UINT64_C(1) << 21)
#define SECRET    "S3CRET-TOKEN"

static const struct ctr_seccomp_host x86_510 = { "x86_64", 5, 10 };

/* Read path, expecting r; the message names path and says want, and
 * quotes nothing of the file. */
static void read_fails(const char *path, const char *want)
{
	json_t *doc = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(ctr_seccomp_profile_read(path, &doc, &err), -EINVAL);
	assert_null(doc);
	if (!strstr(err.msg, want) || !strstr(err.msg, path))
		fail_msg("\"%s\" lacks \"%s\" or the path", err.msg, want);
	assert_null(strstr(err.msg, SECRET));
}

static void test_read(void **state)
{
	(void)state;
	char *dir = tmpdir_make("seccomp-profile");
	char path[PATH_MAX], link[PATH_MAX];
	snprintf(path, sizeof(path), "%s/missing.json", dir);
	read_fails(path, "no such file");
	read_fails(dir, "not a regular file");
	read_fails("relative.json", "not an absolute path");

	snprintf(path, sizeof(path), "%s/bad.json", dir);
	write_text(path, "{\"defaultAction\": \"SCMP_ACT_ALLOW\", " SECRET " }");
	read_fails(path, "not valid JSON (line 1");
	write_text(path, "[\"" SECRET "\"]");
	read_fails(path, "not a JSON object");
	write_text(path, "{\"a\": 1, \"a\": 2}");
	read_fails(path, "not valid JSON");

	snprintf(path, sizeof(path), "%s/big.json", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, CTR_SECCOMP_PROFILE_MAX + 1), 0);
	close(fd);
	read_fails(path, "larger than");

	/* Through a symlink (the kubelet's root-dir may hold some). */
	snprintf(path, sizeof(path), "%s/good.json", dir);
	snprintf(link, sizeof(link), "%s/link.json", dir);
	write_text(path, "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}");
	assert_int_equal(symlink(path, link), 0);
	json_t *doc = NULL;
	assert_int_equal(ctr_seccomp_profile_read(link, &doc, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(doc, "defaultAction")),
			    "SCMP_ACT_ALLOW");
	json_decref(doc);
	tmpdir_remove(dir);
}

static json_t *build(const char *text, uint64_t caps, const struct ctr_seccomp_host *host)
{
	json_t *doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	json_t *out = NULL;
	struct cric_err err = { { 0 } };
	int r = ctr_seccomp_profile_build(doc, "/p.json", caps, host, &out, &err);
	if (r < 0)
		fail_msg("build: %s", err.msg);
	json_decref(doc);
	return out;
}

/* The rule of out naming name, or NULL. */
static json_t *rule_of(json_t *out, const char *name)
{
	size_t i, j;
	json_t *r, *n;
	json_array_foreach (json_object_get(out, "syscalls"), i, r)
		json_array_foreach (json_object_get(r, "names"), j, n)
			if (strcmp(json_string_value(n), name) == 0)
				return r;
	return NULL;
}

static const char docker_like[] =
    "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 1,"
    " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\","
    "   \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},"
    "  {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": [\"SCMP_ARCH_ARM\"]}],"
    " \"syscalls\": ["
    "  {\"names\": [\"read\", \"write\", \"mseal\"], \"action\": \"SCMP_ACT_ALLOW\"},"
    "  {\"name\": \"getpid\", \"action\": \"SCMP_ACT_ALLOW\", \"comment\": \"old form\"},"
    "  {\"names\": [\"sethostname\"], \"action\": \"SCMP_ACT_ALLOW\","
    "   \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},"
    "  {\"names\": [\"arch_prctl\"], \"action\": \"SCMP_ACT_ALLOW\","
    "   \"includes\": {\"arches\": [\"amd64\", \"x32\"]}},"
    "  {\"names\": [\"set_tls\"], \"action\": \"SCMP_ACT_ALLOW\","
    "   \"includes\": {\"arches\": [\"arm\", \"arm64\"]}},"
    "  {\"names\": [\"pidfd_open\"], \"action\": \"SCMP_ACT_ALLOW\","
    "   \"includes\": {\"minKernel\": \"5.3\"}},"
    "  {\"names\": [\"unshare\"], \"action\": \"SCMP_ACT_ALLOW\","
    "   \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\", \"CAP_NOT_A_CAP\"]}},"
    "  {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\","
    "   \"args\": [{\"index\": 0, \"value\": 0, \"op\": \"SCMP_CMP_EQ\"}]},"
    "  {\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 97,"
    "   \"args\": [{\"index\": 0, \"value\": 40, \"op\": \"SCMP_CMP_EQ\"},"
    "              {\"index\": 0, \"value\": 16, \"op\": \"SCMP_CMP_EQ\"}]},"
    "  {\"names\": [\"kill\"], \"action\": \"SCMP_ACT_ERRNO\"}"
    " ]}";

static void test_build(void **state)
{
	(void)state;
	json_t *out = build(docker_like, 0, &x86_510);
	assert_string_equal(json_string_value(json_object_get(out, "defaultAction")),
			    "SCMP_ACT_ERRNO");
	assert_int_equal(json_integer_value(json_object_get(out, "defaultErrnoRet")), 1);
	json_t *arches = json_object_get(out, "architectures");
	assert_int_equal(json_array_size(arches), 3);
	assert_string_equal(json_string_value(json_array_get(arches, 0)), "SCMP_ARCH_X86_64");
	assert_string_equal(json_string_value(json_array_get(arches, 2)), "SCMP_ARCH_X32");
	assert_non_null(rule_of(out, "read"));
	assert_non_null(rule_of(out, "mseal")); /* newer than libseccomp: kept for runc */
	assert_non_null(rule_of(out, "getpid"));
	assert_null(rule_of(out, "sethostname")); /* no CAP_SYS_ADMIN */
	assert_non_null(rule_of(out, "arch_prctl"));
	assert_null(rule_of(out, "set_tls"));
	assert_non_null(rule_of(out, "pidfd_open"));
	assert_non_null(rule_of(out, "unshare"));
	json_t *arg = json_array_get(json_object_get(rule_of(out, "personality"), "args"), 0);
	assert_int_equal(json_integer_value(json_object_get(arg, "index")), 0);
	assert_string_equal(json_string_value(json_object_get(arg, "op")), "SCMP_CMP_EQ");
	assert_int_equal(json_integer_value(json_object_get(rule_of(out, "socket"), "errnoRet")),
			 97);
	/* Same action as the default: passed on, runc skips it as we did. */
	assert_non_null(rule_of(out, "kill"));
	json_decref(out);

	/* With CAP_SYS_ADMIN, on an old kernel, on arm64. */
	const struct ctr_seccomp_host arm_44 = { "aarch64", 4, 4 };
	out = build(docker_like, SYS_ADMIN, &arm_44);
	arches = json_object_get(out, "architectures");
	assert_int_equal(json_array_size(arches), 2);
	assert_string_equal(json_string_value(json_array_get(arches, 0)), "SCMP_ARCH_AARCH64");
	assert_non_null(rule_of(out, "sethostname"));
	assert_null(rule_of(out, "arch_prctl"));
	assert_non_null(rule_of(out, "set_tls"));
	assert_null(rule_of(out, "pidfd_open"));
	assert_null(rule_of(out, "unshare"));
	json_decref(out);

	/* The OCI form: architectures as given, flags passed on. */
	out = build("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
		    "[\"SCMP_ARCH_X86_64\"], \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"], "
		    "\"syscalls\": [{\"names\": [\"sethostname\"], \"action\": \"SCMP_ACT_ERRNO\", "
		    "\"errnoRet\": 1}]}",
		    0, NULL);
	assert_int_equal(json_array_size(json_object_get(out, "architectures")), 1);
	assert_int_equal(json_array_size(json_object_get(out, "flags")), 1);
	assert_non_null(rule_of(out, "sethostname"));
	json_decref(out);
}

/* Every refusal: -EINVAL, the field named, nothing of the file quoted. */
static void test_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *doc, *field;
	} bad[] = {
		{ "{}", "defaultAction" },
		{ "{\"defaultAction\": \"" SECRET "\"}", "defaultAction" },
		{ "{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "defaultAction" },
		{ "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 5000}",
		  "defaultAction" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/x\"}",
		  "listenerPath" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"" SECRET "\"]}", "flags" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"" SECRET "\"]}",
		  "architectures[0]" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86\"],"
		  " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\"}]}",
		  "both" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": {}}", "syscalls" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [7]}", "syscalls[0]" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"" SECRET
		  "\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
		  "syscalls[0].names[0]" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
		  " \"action\": \"" SECRET "\"}]}",
		  "syscalls[0].action" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [],"
		  " \"action\": \"SCMP_ACT_ERRNO\"}]}",
		  "syscalls[0]: no syscall names" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
		  " \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 6, \"value\": 0,"
		  " \"op\": \"SCMP_CMP_EQ\"}]}]}",
		  "syscalls[0].args[0]" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
		  " \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": -1,"
		  " \"op\": \"SCMP_CMP_EQ\"}]}]}",
		  "syscalls[0].args[0]" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
		  " \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1,"
		  " \"op\": \"" SECRET "\"}]}]}",
		  "syscalls[0].args[0]" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
		  " \"action\": \"SCMP_ACT_ERRNO\", \"includes\": {\"minKernel\": \"" SECRET
		  "\"}}]}",
		  "syscalls[0].includes" },
		{ "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
		  " \"action\": \"SCMP_ACT_ERRNO\", \"excludes\": [1]}]}",
		  "syscalls[0].excludes" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *doc = json_loads(bad[i].doc, 0, NULL);
		assert_non_null(doc);
		json_t *out = NULL;
		struct cric_err err = { { 0 } };
		int r = ctr_seccomp_profile_build(doc, "/p.json", 0, &x86_510, &out, &err);
		json_decref(doc);
		if (r != -EINVAL || out || !strstr(err.msg, bad[i].field) ||
		    !strstr(err.msg, "\"/p.json\"") || strstr(err.msg, SECRET))
			fail_msg("case %zu: %d \"%s\"", i, r, err.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
