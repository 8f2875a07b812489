#include "platform.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#define streq(a, b) (strcmp((a), (b)) == 0)

static void set(char dst[static PLATFORM_FIELD_MAX + 1], const char *src)
{
	snprintf(dst, PLATFORM_FIELD_MAX + 1, "%s", src);
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static bool big_endian(void)
{
	return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
}

int platform_from_machine(const char *machine, struct platform *ret, struct cric_err *err)
{
	static const struct {
		const char *machine, *arch, *variant;
	} exact[] = {
		{ "x86_64", "amd64", "" },
		{ "amd64", "amd64", "" },
		{ "i386", "386", "" },
		{ "i486", "386", "" },
		{ "i586", "386", "" },
		{ "i686", "386", "" },
		{ "aarch64", "arm64", "v8" },
		{ "arm64", "arm64", "v8" },
		{ "aarch64_be", "arm64be", "" },
		{ "armv8l", "arm", "v8" },
		{ "ppc64le", "ppc64le", "" },
		{ "ppc64", "ppc64", "" },
		{ "ppc", "ppc", "" },
		{ "s390x", "s390x", "" },
		{ "riscv64", "riscv64", "" },
		{ "loongarch64", "loong64", "" },
		{ "sparc64", "sparc64", "" },
	};
	/* armv7l, armv7hl, armv6l, armv5tel, armv5tejl ... */
	static const struct {
		const char *prefix, *variant;
	} arm[] = { { "armv7", "v7" }, { "armv6", "v6" }, { "armv5", "v5" } };

	struct platform p;
	memset(&p, 0, sizeof(p));
	set(p.os, "linux");
	if (!machine)
		machine = "";
	for (size_t i = 0; i < ARRAY_SIZE(exact) && !p.architecture[0]; i++)
		if (streq(machine, exact[i].machine)) {
			set(p.architecture, exact[i].arch);
			set(p.variant, exact[i].variant);
		}
	for (size_t i = 0; i < ARRAY_SIZE(arm) && !p.architecture[0]; i++)
		if (strncmp(machine, arm[i].prefix, strlen(arm[i].prefix)) == 0) {
			set(p.architecture, "arm");
			set(p.variant, arm[i].variant);
		}
	/* uname(2) says "mips64"/"mips" for both byte orders. */
	if (!p.architecture[0] && (streq(machine, "mips64") || streq(machine, "mips")))
		snprintf(p.architecture, sizeof(p.architecture), "%s%s", machine,
			 big_endian() ? "" : "le");
	if (!p.architecture[0])
		return err_set(err, -EOPNOTSUPP, "unknown machine \"%.64s\"", machine);
	*ret = p;
	return 0;
}

int platform_host(struct platform *ret, struct cric_err *err)
{
	struct utsname u;
	if (uname(&u) < 0)
		return err_set(err, negative_errno(), "uname: %m");
	return platform_from_machine(u.machine, ret, err);
}

static bool field_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

int platform_parse(const char *s, struct platform *ret, struct cric_err *err)
{
	struct platform p;
	memset(&p, 0, sizeof(p));
	char *fields[] = { p.os, p.architecture, p.variant };
	size_t n = 0, len = 0;
	for (const char *c = s ? s : "";; c++) {
		if (*c == '/' || *c == '\0') {
			if (len == 0)
				return err_set(err, -EINVAL,
					       "invalid platform \"%.64s\": empty field",
					       s ? s : "");
			n++;
			len = 0;
			if (*c == '\0')
				break;
			if (n == ARRAY_SIZE(fields))
				return err_set(
				    err, -EINVAL,
				    "invalid platform \"%.64s\": more than os/arch/variant", s);
			continue;
		}
		if (!field_char_ok(*c) || len >= PLATFORM_FIELD_MAX)
			return err_set(err, -EINVAL, "invalid platform \"%.64s\"", s);
		fields[n][len++] = *c;
	}
	if (n < 2)
		return err_set(err, -EINVAL,
			       "invalid platform \"%.64s\": want os/architecture[/variant]", s);
	*ret = p;
	return 0;
}

void platform_normalize(struct platform *p)
{
	lower(p->os);
	lower(p->architecture);
	lower(p->variant);
	if (streq(p->os, "macos"))
		set(p->os, "darwin");

	const char *a = p->architecture, *v = p->variant;
	if (streq(a, "i386")) {
		set(p->architecture, "386");
		set(p->variant, "");
	} else if (streq(a, "x86_64") || streq(a, "x86-64") || streq(a, "amd64")) {
		set(p->architecture, "amd64");
		if (streq(v, "v1"))
			set(p->variant, "");
	} else if (streq(a, "aarch64") || streq(a, "arm64")) {
		set(p->architecture, "arm64");
		if (streq(v, "8") || streq(v, "v8"))
			set(p->variant, "");
	} else if (streq(a, "armhf")) {
		set(p->architecture, "arm");
		set(p->variant, "v7");
	} else if (streq(a, "armel")) {
		set(p->architecture, "arm");
		set(p->variant, "v6");
	} else if (streq(a, "arm")) {
		if (streq(v, "") || streq(v, "7"))
			set(p->variant, "v7");
		else if (streq(v, "5") || streq(v, "6") || streq(v, "8")) {
			char tmp[8];
			snprintf(tmp, sizeof(tmp), "v%s", v);
			set(p->variant, tmp);
		}
	}
}

/* "vN" or "vN.M" with small numbers; false otherwise. */
static bool parse_variant(const char *v, int *major, int *minor)
{
	int ma = 0, mi = 0, n = 0;
	if (v[0] != 'v' || v[1] < '0' || v[1] > '9')
		return false;
	if (sscanf(v + 1, "%2d%n", &ma, &n) != 1)
		return false;
	v += 1 + n;
	if (*v == '.') {
		if (v[1] < '0' || v[1] > '9' || sscanf(v + 1, "%2d%n", &mi, &n) != 1)
			return false;
		v += 1 + n;
	}
	if (*v != '\0')
		return false;
	*major = ma;
	*minor = mi;
	return true;
}

#define MAX_CANDIDATES 64

struct candidates {
	size_t n;
	struct {
		char arch[PLATFORM_FIELD_MAX + 1];
		char variant[PLATFORM_FIELD_MAX + 1];
	} c[MAX_CANDIDATES];
};

static void add(struct candidates *cs, const char *arch, const char *variant)
{
	if (cs->n >= MAX_CANDIDATES)
		return;
	set(cs->c[cs->n].arch, arch);
	set(cs->c[cs->n].variant, variant);
	cs->n++;
}

/* "v<major>" or, with minor > 0, "v<major>.<minor>". */
static void add_numbered(struct candidates *cs, const char *arch, int major, int minor)
{
	char v[16];
	if (minor > 0)
		snprintf(v, sizeof(v), "v%d.%d", major, minor);
	else
		snprintf(v, sizeof(v), "v%d", major);
	add(cs, arch, v);
}

static void add_arm32(struct candidates *cs, int from)
{
	for (int k = from; k >= 5; k--)
		add_numbered(cs, "arm", k, 0);
}

/* containerd's platformVector(): what a (normalised) platform runs, best
 * first. */
static void candidates_of(const struct platform *w, struct candidates *cs)
{
	const char *a = w->architecture;
	int major = 0, minor = 0;
	bool numbered = parse_variant(w->variant, &major, &minor);

	cs->n = 0;
	add(cs, a, w->variant);
	if (streq(a, "amd64")) {
		if (numbered && major > 1) {
			for (int k = major - 1; k >= 2; k--)
				add_numbered(cs, "amd64", k, 0);
			add(cs, "amd64", "");
		}
		add(cs, "386", "");
	} else if (streq(a, "arm")) {
		if (numbered && major > 5)
			add_arm32(cs, major - 1);
	} else if (streq(a, "arm64")) {
		if (!w->variant[0]) {
			major = 8;
			minor = 0;
		} else if (!numbered || major < 8 || major > 9) {
			return;
		}
		if (major == 9) {
			for (int k = minor - 1; k >= 0; k--)
				add_numbered(cs, "arm64", major, k);
			/* v9.x is compatible with v8.(x+5) */
			minor += 5;
			major = 8;
			add_numbered(cs, "arm64", 8, minor);
		}
		if (major == 8) {
			for (int k = minor - 1; k >= 1; k--)
				add_numbered(cs, "arm64", 8, k);
			if (minor > 0)
				add(cs, "arm64", ""); /* v8, normalised */
		}
		add_arm32(cs, 8);
	}
}

int platform_match(const struct platform *want, const struct platform *have)
{
	struct platform w = *want, h = *have;
	platform_normalize(&w);
	platform_normalize(&h);
	if (!streq(w.os, h.os))
		return -1;
	struct candidates cs;
	candidates_of(&w, &cs);
	for (size_t i = 0; i < cs.n; i++)
		if (streq(cs.c[i].arch, h.architecture) && streq(cs.c[i].variant, h.variant))
			return (int)i;
	return -1;
}

int platform_check_image(const struct platform *host, const struct platform *image,
			 struct cric_err *err)
{
	struct platform h = *host, i = *image;
	platform_normalize(&h);
	platform_normalize(&i);
	if (streq(h.architecture, "amd64") && streq(i.architecture, "amd64"))
		set(i.variant, h.variant);
	if (platform_match(&h, &i) >= 0)
		return 0;
	char have[PLATFORM_STRING_SIZE], want[PLATFORM_STRING_SIZE];
	platform_format(image, have);
	platform_format(host, want);
	return err_set(err, -ENOEXEC, "image for %s, this host is %s", have, want);
}

void platform_format(const struct platform *p, char buf[static PLATFORM_STRING_SIZE])
{
	snprintf(buf, PLATFORM_STRING_SIZE, "%s/%s%s%s", p->os, p->architecture,
		 p->variant[0] ? "/" : "", p->variant);
}
