/* Image platforms (os/architecture/variant, as in the OCI image index) and
 * how well an image built for one platform runs on another.
 *
 * Names are Go's GOOS/GOARCH values, as the OCI image spec asks: "linux",
 * "amd64", "arm64", "arm" with variant "v7". The rules follow containerd's
 * platforms package (normalisation and platforms.Only()): an amd64 host also
 * runs 386 images, an arm/v7 host also runs arm/v6 and arm/v5 ones, an arm64
 * host also runs 32-bit arm ones; an exact match is always preferred.
 *
 * Pure functions on caller memory: nothing here allocates, blocks or logs.
 * Functions that can fail return a negative errno, fill err (optional) only on
 * failure and write their output only on success.
 */
#pragma once

#include <stdbool.h>

#include "common/error.h"

/* Longest accepted os, architecture, variant or os.version value. */
#define PLATFORM_FIELD_MAX 63
/* "os/architecture/variant" and its NUL. */
#define PLATFORM_STRING_SIZE (3 * (PLATFORM_FIELD_MAX + 1))

struct platform {
	char os[PLATFORM_FIELD_MAX + 1];           /* "linux" */
	char architecture[PLATFORM_FIELD_MAX + 1]; /* "amd64", "arm64", "arm" ... */
	char variant[PLATFORM_FIELD_MAX + 1];      /* "" or "v7", "v8" ... */
	char os_version[PLATFORM_FIELD_MAX + 1];   /* "" or e.g. Windows' "10.0.17763.5458" */
};

/* The platform of an image for a Linux machine as uname(2) names it
 * ("x86_64" -> amd64, "aarch64" -> arm64/v8, "armv7l" -> arm/v7, "i686" ->
 * 386, "ppc64le", "s390x", "riscv64" ...). -EOPNOTSUPP (err says so) for a
 * machine it does not know. */
int platform_from_machine(const char *machine, struct platform *ret, struct cric_err *err);

/* This host's platform: os "linux" and uname()'s machine mapped as above. */
int platform_host(struct platform *ret, struct cric_err *err);

/* Parse "os/architecture[/variant]" (e.g. "linux/arm/v7"), the form of
 * `--platform` flags; the result is not normalised. -EINVAL if malformed. */
int platform_parse(const char *s, struct platform *ret, struct cric_err *err);

/* Normalise in place as containerd does: lower case; "x86_64" -> amd64,
 * "aarch64" -> arm64, "i386" -> 386, "armhf" -> arm/v7, "armel" -> arm/v6;
 * variants "8" -> "v8"; the default variants (amd64 "v1", arm64 "v8", arm "v7"
 * when empty) are spelled one way (amd64 "", arm64 "", arm "v7"). */
void platform_normalize(struct platform *p);

/* How well an image for `have` runs on `want`: 0 is an exact match (after
 * normalisation, so arm64 matches arm64/v8), 1, 2 ... are ever weaker
 * fallbacks (arm/v7 for arm/v6, amd64 for 386, ...), -1 means it does not run
 * (other os, other architecture, a newer variant). os.version is ignored. */
int platform_match(const struct platform *want, const struct platform *have);

/* Whether an image whose config says `image` runs on `host` (platform_host()):
 * platform_match() >= 0, except that an amd64 image's variant (x86-64 micro-
 * architecture level, "v2", "v3") is not held against the host, whose level
 * platform_host() does not detect. A variant counts elsewhere (an arm/v7
 * image does not run on an arm/v6 host; arm64 hosts run arm/v7 ones).
 * -ENOEXEC when it does not run, err naming both platforms ("image for
 * linux/s390x, this host is linux/amd64"). */
int platform_check_image(const struct platform *host, const struct platform *image,
			 struct cric_err *err);

/* "os/architecture[/variant]" into buf. */
void platform_format(const struct platform *p, char buf[static PLATFORM_STRING_SIZE]);
