/* runtimed/apparmor.h: the cric-default profile's text and the decision
 * to load it; the install with a missing and a failing parser; and,
 * where AppArmor's parser is installed, the text checked by it (-Q -K: no
 * kernel module needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "runtimed/apparmor.h"
#include "testutil.h"

static void test_decision(void **state)
{
	(void)state;
	const struct ctr_lsm none = { 0 }, selinux = { .selinux = true };
	const struct ctr_lsm aa = { .apparmor = true };
	assert_false(ctr_apparmor_should_load(&none));
	assert_false(ctr_apparmor_should_load(&selinux));
	assert_true(ctr_apparmor_should_load(&aa));
}

/* The text's shape: one profile named cric-default, braces balanced, every
 * rule line ending with ',', the rules the header promises. */
static void test_text(void **state)
{
	(void)state;
	const char *t = ctr_apparmor_default_profile();
	assert_non_null(strstr(t, "\n#include <tunables/global>\n"));
	assert_non_null(strstr(t, "\nprofile cric-default flags=(attach_disconnected,"
				  "mediate_deleted) {\n"));
	int depth = 0, rules = 0;
	for (const char *l = t; *l;) {
		size_t n = strcspn(l, "\n");
		char line[256];
		assert_true(n < sizeof(line));
		memcpy(line, l, n);
		line[n] = '\0';
		const char *s = line + strspn(line, " ");
		bool inside = depth == 1; /* a line of the profile's body */
		int glob = 0;             /* {a,b} alternatives within a rule */
		for (const char *c = s; *c && *c != '#'; c++) {
			if (inside)
				glob += *c == '{' ? 1 : *c == '}' ? -1 : 0;
			else
				depth += *c == '{' ? 1 : 0;
		}
		if (inside && strcmp(s, "}") == 0)
			depth = 0;
		else if (inside && *s && *s != '#') {
			if (glob != 0 || s[strlen(s) - 1] != ',')
				fail_msg("not a rule ending with a comma: \"%s\"", s);
			rules++;
		}
		assert_true(depth >= 0 && depth <= 1);
		l += n + (l[n] == '\n');
	}
	assert_int_equal(depth, 0);
	assert_true(rules >= 15);
	static const char *const want[] = {
		"  deny mount,\n",
		"  deny @{PROC}/sys/** w,\n",
		"  ptrace (trace, read, tracedby, readby) peer=cric-default,\n",
		"  signal (receive) peer=unconfined,\n",
		"  deny /sys/firmware/** r,\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
		if (!strstr(t, want[i]))
			fail_msg("missing rule %s", want[i]);
}

/* The parser missing or refusing: an error naming it and why (what a
 * RuntimeDefault container is then refused with), the profile written. */
static void test_install_failures(void **state)
{
	(void)state;
	char *dir = tmpdir_make("apparmor");
	char sub[PATH_MAX], p[PATH_MAX];
	tpath(sub, dir, "run/apparmor");
	struct cric_err err = { { 0 } };
	assert_int_equal(
	    ctr_apparmor_install("/nonexistent/apparmor_parser", sub, CTR_APPARMOR_LOAD, &err),
	    -ENOENT);
	if (!strstr(err.msg, "/nonexistent/apparmor_parser: not found"))
		fail_msg("%s", err.msg);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(read_file(tpath(p, sub, "cric-default"), 1 << 20, &text, &len), 0);
	assert_string_equal(text, ctr_apparmor_default_profile());
	free(text);
	assert_int_equal(ctr_apparmor_install("/bin/false", sub, CTR_APPARMOR_LOAD, &err), -EINVAL);
	if (!strstr(err.msg, "/bin/false -r") || !strstr(err.msg, "failed"))
		fail_msg("%s", err.msg);
	tmpdir_remove(dir);
}

/* AppArmor's own parser reads the text (no kernel module needed with
 * -Q -K). Where the parser is not installed, the failure path above is
 * what runs; this says so. */
static void test_parser_accepts_it(void **state)
{
	(void)state;
	if (access(CTR_APPARMOR_PARSER, X_OK) != 0) {
		print_message("NOTE: %s not installed: the profile's syntax was checked by "
			      "shape only\n",
			      CTR_APPARMOR_PARSER);
		return;
	}
	char *dir = tmpdir_make("apparmor-check");
	struct cric_err err = { { 0 } };
	if (ctr_apparmor_install(CTR_APPARMOR_PARSER, dir, CTR_APPARMOR_CHECK, &err) < 0)
		fail_msg("%s", err.msg);
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decision),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_install_failures),
		cmocka_unit_test(test_parser_accepts_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
