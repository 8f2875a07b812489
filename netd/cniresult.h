/* What CNI plugins print: results of ADD and error documents (CNI spec,
 * section 5 "Result types" and "Error"), and cniVersion comparison.
 *
 * Results are validated as hostile input before anything is taken from them
 * or handed on: the 0.3.0 .. 1.x "ips" form (0.4.0 and 1.0.0 included; 1.0.0
 * dropped ips[].version, 0.x requires nothing of us beyond checking it when
 * present) and the old 0.1/0.2 "ip4"/"ip6" form. Pure functions: no I/O,
 * thread-safe.
 */
#pragma once

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define CNI_RESULT_MAX_IPS    32
#define CNI_RESULT_MAX_IFACES 32
#define CNI_VERSION_MAX       32 /* bytes, with the NUL */

struct cni_ip {
	int family;                     /* AF_INET or AF_INET6 */
	char address[INET6_ADDRSTRLEN]; /* canonical text, no prefix length */
	unsigned prefix_len;
	int interface;   /* index into the result's "interfaces", -1 if not given */
	bool in_sandbox; /* on an interface inside the pod's namespace, or not said */
};

struct cni_result {
	char cni_version[CNI_VERSION_MAX];
	unsigned n_ips;
	struct cni_ip ips[CNI_RESULT_MAX_IPS];
};

/* Parse plugin stdout as one JSON object (no trailing data, no duplicate
 * keys). -EBADMSG with err filled otherwise. */
int cni_output_load(const char *data, size_t len, json_t **ret, struct cric_err *err);

/* Validate a result document. Its own "cniVersion" decides the form; when it
 * has none, fallback_version (the config's) does. -EBADMSG with err naming
 * the bad field. res is written only on success. */
int cni_result_parse(const json_t *doc, const char *fallback_version, struct cni_result *res,
		     struct cric_err *err);

/* Number of the pod's addresses (in_sandbox) copied to out[] (at most max),
 * in result order: out[0] is the primary address. */
size_t cni_result_pod_ips(const struct cni_result *res, const struct cni_ip **out, size_t max);

/* Describe a failed plugin run (exit status != 0) from what it printed: the
 * CNI error document on stdout ("msg: details (CNI error code N)"), else the
 * first line of stderr, else of stdout, else the exit status. out is out_len
 * bytes (no NUL needed); errout is a C string or NULL. Control characters
 * are replaced, lengths bounded. Always fills err; returns the errno for
 * it: -EAGAIN for code 11 ("try again later"), -EIO otherwise. */
int cni_error_describe(const char *out, size_t out_len, const char *errout, int status,
		       struct cric_err *err);

/* "MAJOR.MINOR.PATCH" with each part 0..9999. */
bool cni_version_valid(const char *v);
/* <0, 0, >0 like strcmp; an invalid version sorts as 0.0.0. */
int cni_version_cmp(const char *a, const char *b);
