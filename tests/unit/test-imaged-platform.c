/* imaged/platform.h: host platform, normalisation and matching (containerd's
 * platforms.Only() rules). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "imaged/platform.h"
#include "testutil.h"

static struct platform P(const char *os, const char *arch, const char *variant) {
	struct platform p;
	memset(&p, 0, sizeof(p));
	snprintf(p.os, sizeof(p.os), "%s", os);
	snprintf(p.architecture, sizeof(p.architecture), "%s", arch);
	snprintf(p.variant, sizeof(p.variant), "%s", variant);
	return p;
}

static void
test_from_machine(void **state)
{
	(void)state;
	static const struct {
		const char *machine, *arch, *variant;
	} cases[] = {
		{ "x86_64", "amd64", "" },
		{ "amd64", "amd64", "" },
		{ "i386", "386", "" },
		{ "i686", "386", "" },
		{ "aarch64", "arm64", "v8" },
		{ "arm64", "arm64", "v8" },
		{ "armv7l", "arm", "v7" },
		{ "armv7", "arm", "v7" },
		{ "armv6l", "arm", "v6" },
		{ "armv5tel", "arm", "v5" },
		{ "armv8l", "arm", "v8" },
		{ "ppc64le", "ppc64le", "" },
		{ "ppc64", "ppc64", "" },
		{ "s390x", "s390x", "" },
		{ "riscv64", "riscv64", "" },
		{ "loongarch64", "loong64", "" },
		{ "mips64", __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? "mips64" : "mips64le", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct platform p;
		assert_int_equal(platform_from_machine(cases[i].machine, &p, NULL), 0);
		assert_string_equal(p.os, "linux");
		assert_string_equal(p.architecture, cases[i].arch);
		assert_string_equal(p.variant, cases[i].variant);
		assert_string_equal(p.os_version, "");
	}
	struct platform p = P("x", "y", "z"), copy = p;
	struct cric_err err;
	assert_int_equal(platform_from_machine("pdp11", &p, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "unknown machine \"pdp11\""));
	assert_int_equal(platform_from_machine("", &p, NULL), -EOPNOTSUPP);
	assert_int_equal(platform_from_machine(NULL, &p, NULL), -EOPNOTSUPP);
	assert_memory_equal(&p, &copy, sizeof(p));
}

static void test_host(void **state)
{
	(void)state;
	struct utsname u;
	struct platform host, expect;
	struct cric_err err;
	assert_int_equal(uname(&u), 0);
	REQUIRE(platform_from_machine(u.machine, &expect, NULL) == 0,
		"machine \"%s\" has no OCI platform to compare with", u.machine);
	assert_int_equal(platform_host(&host, &err), 0);
	assert_memory_equal(&host, &expect, sizeof(host));
	assert_string_equal(host.os, "linux");
	/* The host always runs its own images best. */
	assert_int_equal(platform_match(&host, &host), 0);
}

static void test_parse_format(void **state)
{
	(void)state;
	struct platform p;
	char buf[PLATFORM_STRING_SIZE];
	struct cric_err err;
	assert_int_equal(platform_parse("linux/arm/v7", &p, &err), 0);
	assert_string_equal(p.os, "linux");
	assert_string_equal(p.architecture, "arm");
	assert_string_equal(p.variant, "v7");
	platform_format(&p, buf);
	assert_string_equal(buf, "linux/arm/v7");
	assert_int_equal(platform_parse("linux/amd64", &p, &err), 0);
	assert_string_equal(p.variant, "");
	platform_format(&p, buf);
	assert_string_equal(buf, "linux/amd64");
	assert_int_equal(platform_parse("windows/amd64", &p, &err), 0);

	static const char *bad[] = { "",          "linux",        "linux/",
				     "/amd64",    "linux//v7",    "linux/arm/v7/x",
				     "linux/a b", "linux/amd64/", "linux/\xff",
				     NULL };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct platform q = P("u", "n", "t"), copy = q;
		assert_int_equal(platform_parse(bad[i], &q, &err), -EINVAL);
		assert_memory_equal(&q, &copy, sizeof(q));
	}
	char longest[200];
	memset(longest, 'a', sizeof(longest));
	snprintf(longest, sizeof(longest), "linux/%.*s", PLATFORM_FIELD_MAX, longest + 100);
	assert_int_equal(platform_parse(longest, &p, &err), 0);
	snprintf(longest, sizeof(longest), "linux/%.*s", PLATFORM_FIELD_MAX + 1, longest + 100);
	assert_int_equal(platform_parse(longest, &p, &err), -EINVAL);
}

static void test_normalize(void **state)
{
	(void)state;
	static const struct {
		const char *os, *arch, *variant, *n_os, *n_arch, *n_variant;
	} cases[] = {
		{ "linux", "x86_64", "", "linux", "amd64", "" },
		{ "Linux", "AMD64", "v1", "linux", "amd64", "" },
		{ "linux", "x86-64", "v3", "linux", "amd64", "v3" },
		{ "linux", "i386", "x", "linux", "386", "" },
		{ "linux", "aarch64", "", "linux", "arm64", "" },
		{ "linux", "arm64", "v8", "linux", "arm64", "" },
		{ "linux", "arm64", "8", "linux", "arm64", "" },
		{ "linux", "arm64", "v8.2", "linux", "arm64", "v8.2" },
		{ "linux", "armhf", "", "linux", "arm", "v7" },
		{ "linux", "armel", "", "linux", "arm", "v6" },
		{ "linux", "arm", "", "linux", "arm", "v7" },
		{ "linux", "arm", "7", "linux", "arm", "v7" },
		{ "linux", "arm", "6", "linux", "arm", "v6" },
		{ "linux", "arm", "V5", "linux", "arm", "v5" },
		{ "macos", "arm64", "", "darwin", "arm64", "" },
		{ "linux", "ppc64le", "", "linux", "ppc64le", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct platform p = P(cases[i].os, cases[i].arch, cases[i].variant);
		platform_normalize(&p);
		assert_string_equal(p.os, cases[i].n_os);
		assert_string_equal(p.architecture, cases[i].n_arch);
		assert_string_equal(p.variant, cases[i].n_variant);
	}
}

static void test_match(void **state)
{
	(void)state;
	static const struct {
		const char *want, *have;
		int rank;
	} cases[] = {
		/* exact, after normalisation */
		{ "linux/amd64", "linux/amd64", 0 },
		{ "linux/amd64", "linux/x86_64", 0 },
		{ "linux/amd64", "linux/amd64/v1", 0 },
		{ "linux/arm64/v8", "linux/arm64", 0 },
		{ "linux/arm64/v8", "linux/arm64/v8", 0 },
		{ "linux/arm64/v8", "linux/aarch64", 0 },
		{ "linux/arm/v7", "linux/arm/v7", 0 },
		{ "linux/arm/v7", "linux/arm", 0 },
		{ "linux/arm/v7", "linux/armhf", 0 },
		{ "linux/ppc64le", "linux/ppc64le", 0 },
		{ "linux/s390x", "linux/s390x", 0 },
		{ "linux/riscv64", "linux/riscv64", 0 },
		/* fallbacks, weaker the further */
		{ "linux/amd64", "linux/386", 1 },
		{ "linux/amd64/v3", "linux/amd64/v2", 1 },
		{ "linux/amd64/v3", "linux/amd64", 2 },
		{ "linux/amd64/v3", "linux/386", 3 },
		{ "linux/arm/v7", "linux/arm/v6", 1 },
		{ "linux/arm/v7", "linux/arm/v5", 2 },
		{ "linux/arm/v7", "linux/armel", 1 },
		{ "linux/arm/v8", "linux/arm/v7", 1 },
		{ "linux/arm64/v8", "linux/arm/v8", 1 },
		{ "linux/arm64/v8", "linux/arm/v7", 2 },
		{ "linux/arm64/v8", "linux/arm/v5", 4 },
		{ "linux/arm64/v8.2", "linux/arm64/v8.1", 1 },
		{ "linux/arm64/v8.2", "linux/arm64", 2 },
		{ "linux/arm64/v9", "linux/arm64/v8.5", 1 },
		{ "linux/arm64/v9", "linux/arm64", 6 },
		{ "linux/arm64/v9.1", "linux/arm64/v9", 1 },
		/* no */
		{ "linux/amd64", "windows/amd64", -1 },
		{ "linux/amd64", "linux/arm64", -1 },
		{ "linux/amd64", "linux/amd64/v2", -1 },
		{ "linux/386", "linux/amd64", -1 },
		{ "linux/arm/v6", "linux/arm/v7", -1 },
		{ "linux/arm/v7", "linux/arm64", -1 },
		{ "linux/arm64/v8", "linux/arm64/v9", -1 },
		{ "linux/arm64/v8", "linux/arm64/v8.2", -1 },
		{ "linux/ppc64le", "linux/ppc64", -1 },
		{ "linux/amd64", "unknown/unknown", -1 },
		{ "linux/s390x", "linux/s390", -1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct platform w, h;
		assert_int_equal(platform_parse(cases[i].want, &w, NULL), 0);
		assert_int_equal(platform_parse(cases[i].have, &h, NULL), 0);
		int rank = platform_match(&w, &h);
		if (rank != cases[i].rank)
			print_message("match(%s, %s) = %d, want %d\n", cases[i].want, cases[i].have,
				      rank, cases[i].rank);
		assert_int_equal(rank, cases[i].rank);
	}
	/* os.version does not matter on Linux. */
	struct platform w = P("linux", "amd64", ""), h = w;
	snprintf(h.os_version, sizeof(h.os_version), "5.10");
	assert_int_equal(platform_match(&w, &h), 0);
}

static void test_check_image(void **state)
{
	(void)state;
	static const struct {
		const char *host, *image;
		bool runs;
	} cases[] = {
		{ "linux/amd64", "linux/amd64", true },
		{ "linux/amd64", "linux/x86_64", true },
		{ "linux/amd64", "linux/386", true },
		/* The host's x86-64 level is not known: not held against it. */
		{ "linux/amd64", "linux/amd64/v2", true },
		{ "linux/amd64", "linux/amd64/v3", true },
		{ "linux/arm64/v8", "linux/arm64", true },
		{ "linux/arm64/v8", "linux/arm/v7", true },
		{ "linux/arm/v7", "linux/arm", true },
		{ "linux/arm/v7", "linux/arm/v6", true },
		{ "linux/amd64", "linux/arm64", false },
		{ "linux/amd64", "linux/s390x", false },
		{ "linux/amd64", "linux/arm/v7", false },
		{ "linux/amd64", "windows/amd64", false },
		{ "linux/arm64/v8", "linux/amd64", false },
		{ "linux/386", "linux/amd64", false },
		/* The variant where it matters. */
		{ "linux/arm/v6", "linux/arm/v7", false },
		{ "linux/arm/v6", "linux/arm", false }, /* arm means arm/v7 */
		{ "linux/arm64/v8", "linux/arm64/v9", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct platform h, img;
		struct cric_err err = { "" };
		assert_int_equal(platform_parse(cases[i].host, &h, NULL), 0);
		assert_int_equal(platform_parse(cases[i].image, &img, NULL), 0);
		int r = platform_check_image(&h, &img, &err);
		if (r != (cases[i].runs ? 0 : -ENOEXEC))
			print_message("check(%s, %s) = %d\n", cases[i].host, cases[i].image, r);
		assert_int_equal(r, cases[i].runs ? 0 : -ENOEXEC);
		if (!cases[i].runs) {
			/* The message names both, as given. */
			assert_non_null(strstr(err.msg, cases[i].image));
			assert_non_null(strstr(err.msg, cases[i].host));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_machine), cmocka_unit_test(test_host),
		cmocka_unit_test(test_parse_format), cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_match),        cmocka_unit_test(test_check_image),
	};
	return cmocka_run_group_tests_name("imaged-platform", tests, NULL, NULL);
}
