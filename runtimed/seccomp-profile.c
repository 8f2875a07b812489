/* Seccomp Localhost profiles: see seccomp-profile.h. */
#include "seccomp-profile.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "caps.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "seccomp-default.h"

#define MAX_ARCHES 16
#define MAX_ARGS   6
#define MAX_ERRNO  4095

/* A machine as uname -m, Go (Docker's `arches`) and libseccomp name it. */
static const struct machine {
	const char *uname, *goarch, *scmp;
} machines[] = {
	{ "x86_64", "amd64", "SCMP_ARCH_X86_64" },
	{ "aarch64", "arm64", "SCMP_ARCH_AARCH64" },
	{ "i686", "386", "SCMP_ARCH_X86" },
	{ "armv7l", "arm", "SCMP_ARCH_ARM" },
	{ "ppc64le", "ppc64le", "SCMP_ARCH_PPC64LE" },
	{ "s390x", "s390x", "SCMP_ARCH_S390X" },
	{ "riscv64", "riscv64", "SCMP_ARCH_RISCV64" },
};

static const struct machine *machine_of(const char *uname_m)
{
	if (!uname_m) {
#if defined(__x86_64__)
		uname_m = "x86_64";
#elif defined(__aarch64__)
		uname_m = "aarch64";
#else
		uname_m = "";
#endif
	}
	for (size_t i = 0; i < ARRAY_SIZE(machines); i++)
		if (strcmp(machines[i].uname, uname_m) == 0)
			return &machines[i];
	return NULL;
}

void ctr_seccomp_host_detect(struct ctr_seccomp_host *host)
{
	struct utsname u;
	*host = (struct ctr_seccomp_host){ 0 };
	if (uname(&u) == 0 &&
	    sscanf(u.release, "%d.%d", &host->kernel_major, &host->kernel_minor) != 2)
		host->kernel_major = host->kernel_minor = 0;
}

int ctr_seccomp_profile_read(const char *path, json_t **ret, struct cric_err *err)
{
	if (!path || path[0] != '/')
		return err_set(err, -EINVAL, "seccomp profile \"%.200s\": not an absolute path",
			       path ? path : "");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_file(path, CTR_SECCOMP_PROFILE_MAX, &text, &len);
	if (r == -EINVAL)
		return err_set(err, -EINVAL, "seccomp profile \"%.200s\": not a regular file",
			       path);
	if (r == -EFBIG)
		return err_set(err, -EINVAL, "seccomp profile \"%.200s\": larger than %d bytes",
			       path, CTR_SECCOMP_PROFILE_MAX);
	if (r == -ENOENT)
		return err_set(err, -EINVAL, "seccomp profile \"%.200s\": no such file", path);
	if (r < 0)
		return err_set(err, r == -ENOMEM ? r : -EINVAL,
			       "seccomp profile \"%.200s\": cannot read it: %s", path,
			       strerror(-r));
	/* jansson's messages quote the text near the error: give only where. */
	json_error_t je;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return err_set(err, -EINVAL,
			       "seccomp profile \"%.200s\": not valid JSON (line %d, column %d)",
			       path, je.line, je.column);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return err_set(err, -EINVAL, "seccomp profile \"%.200s\": not a JSON object", path);
	}
	*ret = doc;
	return 0;
}

/* What one build carries. */
struct build {
	const char *path;
	uint64_t caps;
	const struct machine *m;
	int kmaj, kmin;
	struct cric_err *err;
	scmp_filter_ctx ctx;
	uint32_t def_action;
	size_t n_names;
};

static int bad(struct build *b, const char *field, const char *problem)
{
	return err_set(b->err, -EINVAL, "seccomp profile \"%.200s\": %s: %s", b->path, field,
		       problem);
}

/* An action name and its errnoRet as the libseccomp action runc makes. */
static int action_of(struct build *b, const char *field, const json_t *name, const json_t *eret,
		     uint32_t *ret)
{
	static const struct {
		const char *name;
		uint32_t act;
		bool has_ret;
	} acts[] = {
		{ "SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false },
		{ "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false },
		{ "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false },
		{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP, false },
		{ "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true },
		{ "SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true },
		{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false },
		{ "SCMP_ACT_LOG", SCMP_ACT_LOG, false },
	};
	const char *s = json_string_value(name);
	if (!s)
		return bad(b, field, "missing or not a string");
	if (strcmp(s, "SCMP_ACT_NOTIFY") == 0)
		return bad(b, field, "SCMP_ACT_NOTIFY needs a seccomp agent, which cric has not");
	json_int_t e = 1; /* runc: EPERM when none is given */
	if (eret && !json_is_null(eret)) {
		if (!json_is_integer(eret) || json_integer_value(eret) < 0 ||
		    json_integer_value(eret) > MAX_ERRNO)
			return bad(b, field, "its errnoRet is not an integer 0..4095");
		e = json_integer_value(eret);
	}
	for (size_t i = 0; i < ARRAY_SIZE(acts); i++)
		if (strcmp(acts[i].name, s) == 0) {
			*ret = acts[i].has_ret ? acts[i].act | (uint32_t)e : acts[i].act;
			return 0;
		}
	return bad(b, field, "not a seccomp action runc knows");
}

/* "SCMP_ARCH_X86_64" -> libseccomp's token, 0 if unknown. */
static uint32_t arch_token(const char *s)
{
	if (!s || strncmp(s, "SCMP_ARCH_", 10) != 0 || strlen(s) > 40)
		return 0;
	char lower[32];
	size_t k = 0;
	for (const char *a = s + 10; *a && k + 1 < sizeof(lower); a++, k++)
		lower[k] = (char)((*a >= 'A' && *a <= 'Z') ? *a - 'A' + 'a' : *a);
	lower[k] = '\0';
	return k ? seccomp_arch_resolve_name(lower) : 0;
}

static int add_arch(struct build *b, json_t *out, const json_t *a, const char *field)
{
	uint32_t tok = arch_token(json_string_value(a));
	if (!tok)
		return bad(b, field, "not an architecture libseccomp knows");
	if (json_array_size(out) >= MAX_ARCHES)
		return bad(b, field, "more than 16 architectures");
	int r = seccomp_arch_add(b->ctx, tok);
	if (r < 0 && r != -EEXIST)
		return bad(b, field, "libseccomp refuses the architecture");
	return json_array_append(out, (json_t *)a) < 0 ? -ENOMEM : 0;
}

/* `architectures`, or the `archMap` entry of this machine with its
 * subArchitectures (Docker's format), into out. */
static int plan_arches(struct build *b, const json_t *doc, json_t *out)
{
	const json_t *list = json_object_get(doc, "architectures");
	const json_t *map = json_object_get(doc, "archMap");
	char field[64];
	int r;
	if (list && !json_is_null(list) && !json_is_array(list))
		return bad(b, "architectures", "not an array");
	if (map && !json_is_null(map) && !json_is_array(map))
		return bad(b, "archMap", "not an array");
	if (json_array_size(list) && json_array_size(map))
		return bad(b, "architectures", "both architectures and archMap are given");
	size_t i, j;
	const json_t *v;
	json_array_foreach (list, i, v) {
		snprintf(field, sizeof(field), "architectures[%zu]", i);
		if ((r = add_arch(b, out, v, field)) < 0)
			return r;
	}
	if (json_array_size(map) > MAX_ARCHES)
		return bad(b, "archMap", "more than 16 entries");
	json_array_foreach (map, i, v) {
		snprintf(field, sizeof(field), "archMap[%zu].architecture", i);
		const json_t *a = json_object_get(v, "architecture");
		if (!json_is_object(v) || !arch_token(json_string_value(a)))
			return bad(b, field, "not an architecture libseccomp knows");
		if (!b->m || strcmp(json_string_value(a), b->m->scmp) != 0)
			continue;
		if ((r = add_arch(b, out, a, field)) < 0)
			return r;
		const json_t *subs = json_object_get(v, "subArchitectures");
		snprintf(field, sizeof(field), "archMap[%zu].subArchitectures", i);
		if (subs && !json_is_null(subs) && !json_is_array(subs))
			return bad(b, field, "not an array");
		const json_t *s;
		json_array_foreach (subs, j, s) {
			snprintf(field, sizeof(field), "archMap[%zu].subArchitectures[%zu]", i, j);
			if ((r = add_arch(b, out, s, field)) < 0)
				return r;
		}
	}
	return 0;
}

static bool kernel_at_least(struct build *b, const char *v, bool *ok)
{
	int maj, min, n = 0;
	if (!v || sscanf(v, "%4d.%4d%n", &maj, &min, &n) != 2 || (v[n] && v[n] != '.') || maj < 0 ||
	    min < 0) {
		*ok = false;
		return false;
	}
	*ok = true;
	return b->kmaj > maj || (b->kmaj == maj && b->kmin >= min);
}

static bool str_in(const json_t *list, const char *s)
{
	size_t i;
	const json_t *v;
	json_array_foreach (list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* Whether `includes` (include true) or `excludes` (false) of a rule
 * matches this container: includes every listed cap held, this arch
 * listed, the kernel at least minKernel; excludes any of them. A cap name
 * this host does not know is not held (Docker compares names). */
static int filter_matches(struct build *b, const json_t *f, bool include, const char *field,
			  bool *ret)
{
	const json_t *caps = json_object_get(f, "caps");
	const json_t *arches = json_object_get(f, "arches");
	const json_t *mink = json_object_get(f, "minKernel");
	if (!json_is_object(f) || (caps && !json_is_null(caps) && !json_is_array(caps)) ||
	    (arches && !json_is_null(arches) && !json_is_array(arches)) ||
	    (mink && !json_is_null(mink) && !json_is_string(mink)))
		return bad(b, field, "not an object of caps, arches (arrays), minKernel (string)");
	bool any = false, all = true;
	size_t i;
	const json_t *v;
	json_array_foreach (caps, i, v) {
		int c = -1;
		bool held = json_is_string(v) &&
			    ctr_caps_from_name(json_string_value(v), &c, NULL) == 0 &&
			    (b->caps & (UINT64_C(1) << c));
		any |= held;
		all &= held;
	}
	if (json_array_size(arches)) {
		bool here = b->m && str_in(arches, b->m->goarch);
		any |= here;
		all &= here;
	}
	if (json_string_length(mink)) {
		bool ok;
		bool newer = kernel_at_least(b, json_string_value(mink), &ok);
		if (!ok)
			return bad(b, field, "minKernel is not \"<major>.<minor>\"");
		any |= newer;
		all &= newer;
	}
	*ret = include ? all : any;
	return 0;
}

static int op_of(const char *s)
{
	static const struct {
		const char *name;
		int op;
	} ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE },
		{ "SCMP_CMP_LT", SCMP_CMP_LT },
		{ "SCMP_CMP_LE", SCMP_CMP_LE },
		{ "SCMP_CMP_EQ", SCMP_CMP_EQ },
		{ "SCMP_CMP_GE", SCMP_CMP_GE },
		{ "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};
	for (size_t i = 0; s && i < ARRAY_SIZE(ops); i++)
		if (strcmp(ops[i].name, s) == 0)
			return ops[i].op;
	return -1;
}

static bool newer_syscall(const char *name)
{
	for (size_t i = 0; ctr_seccomp_newer_syscalls[i]; i++)
		if (strcmp(ctr_seccomp_newer_syscalls[i], name) == 0)
			return true;
	return false;
}

/* A rule's args: checked, copied to out, and as libseccomp comparisons. */
static int plan_args(struct build *b, const json_t *args, const char *field, json_t *out,
		     struct scmp_arg_cmp *cmp, unsigned *n_cmp)
{
	char f[96];
	if (args && !json_is_null(args) && !json_is_array(args))
		return bad(b, field, "args is not an array");
	if (json_array_size(args) > MAX_ARGS)
		return bad(b, field, "more than 6 args");
	size_t i;
	const json_t *a;
	json_array_foreach (args, i, a) {
		snprintf(f, sizeof(f), "%s.args[%zu]", field, i);
		const json_t *idx = json_object_get(a, "index");
		const json_t *val = json_object_get(a, "value");
		const json_t *two = json_object_get(a, "valueTwo");
		int op = op_of(json_string_value(json_object_get(a, "op")));
		if (!json_is_object(a) || !json_is_integer(idx) || json_integer_value(idx) < 0 ||
		    json_integer_value(idx) >= MAX_ARGS)
			return bad(b, f, "index is not an integer 0..5");
		if (!json_is_integer(val) || json_integer_value(val) < 0 ||
		    (two && !json_is_null(two) &&
		     (!json_is_integer(two) || json_integer_value(two) < 0)))
			return bad(b, f, "value/valueTwo is not a non-negative integer");
		if (op < 0)
			return bad(b, f, "op is not a SCMP_CMP_* operator");
		json_int_t v2 = json_integer_value(two);
		cmp[i] = (struct scmp_arg_cmp){
			.arg = (unsigned)json_integer_value(idx),
			.op = (enum scmp_compare)op,
			.datum_a = (scmp_datum_t)json_integer_value(val),
			.datum_b = (scmp_datum_t)v2,
		};
		json_t *o = json_pack("{s:I, s:I, s:I, s:O}", "index", json_integer_value(idx),
				      "value", json_integer_value(val), "valueTwo", v2, "op",
				      json_object_get(a, "op"));
		if (!o || json_array_append_new(out, o) < 0)
			return -ENOMEM;
	}
	*n_cmp = (unsigned)json_array_size(args);
	return 0;
}

/* Add one syscall to the libseccomp filter as runc does: conditions on
 * distinct args in one rule (AND), repeated ones a rule each (OR). */
static int compile_call(struct build *b, uint32_t act, int nr, const struct scmp_arg_cmp *cmp,
			unsigned n)
{
	bool repeat = false;
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			repeat |= cmp[i].arg == cmp[j].arg;
	if (!repeat)
		return seccomp_rule_add_array(b->ctx, act, nr, n, cmp);
	for (unsigned i = 0; i < n; i++) {
		int r = seccomp_rule_add_array(b->ctx, act, nr, 1, &cmp[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int plan_rule(struct build *b, const json_t *rule, size_t idx, json_t *out)
{
	char field[64], f[96];
	snprintf(field, sizeof(field), "syscalls[%zu]", idx);
	if (!json_is_object(rule))
		return bad(b, field, "not an object");
	int r;
	bool match = false;
	const json_t *inc = json_object_get(rule, "includes");
	const json_t *exc = json_object_get(rule, "excludes");
	snprintf(f, sizeof(f), "%s.includes", field);
	if (inc && !json_is_null(inc) && (r = filter_matches(b, inc, true, f, &match)) < 0)
		return r;
	bool skip = inc && !json_is_null(inc) && !match;
	snprintf(f, sizeof(f), "%s.excludes", field);
	if (exc && !json_is_null(exc) && (r = filter_matches(b, exc, false, f, &match)) < 0)
		return r;
	skip |= exc && !json_is_null(exc) && match;

	snprintf(f, sizeof(f), "%s.action", field);
	uint32_t act;
	const json_t *eret = json_object_get(rule, "errnoRet");
	if ((r = action_of(b, f, json_object_get(rule, "action"), eret, &act)) < 0)
		return r;
	_cleanup_json_ json_t *names = json_array();
	_cleanup_json_ json_t *args = json_array();
	if (!names || !args)
		return -ENOMEM;
	struct scmp_arg_cmp cmp[MAX_ARGS] = { { 0 } };
	unsigned n_cmp = 0;
	if ((r = plan_args(b, json_object_get(rule, "args"), field, args, cmp, &n_cmp)) < 0)
		return r;

	const json_t *one = json_object_get(rule, "name");
	const json_t *list = json_object_get(rule, "names");
	if ((one && !json_is_null(one) && !json_is_string(one)) ||
	    (list && !json_is_null(list) && !json_is_array(list)))
		return bad(b, field, "name is not a string or names not an array");
	if (json_string_length(one) && json_array_append(names, (json_t *)one) < 0)
		return -ENOMEM;
	size_t i;
	const json_t *v;
	json_array_foreach (list, i, v)
		if (json_array_append(names, (json_t *)v) < 0)
			return -ENOMEM;
	if (json_array_size(names) == 0)
		return bad(b, field, "no syscall names");
	b->n_names += json_array_size(names);
	if (b->n_names > CTR_SECCOMP_MAX_NAMES)
		return bad(b, "syscalls", "more than 16384 syscall names");

	json_array_foreach (names, i, v) {
		snprintf(f, sizeof(f), "%s.names[%zu]", field, i);
		const char *name = json_string_value(v);
		if (!name || !*name || json_string_length(v) > 64)
			return bad(b, f, "not a syscall name");
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR) {
			if (newer_syscall(name))
				continue;
			return bad(b, f, "not a syscall this host's libseccomp knows");
		}
		/* runc adds no rule whose action is the default one. */
		if (skip || act == b->def_action)
			continue;
		if ((r = compile_call(b, act, nr, cmp, n_cmp)) < 0)
			return r == -ENOMEM ? r : bad(b, f, "libseccomp refuses the rule");
	}
	if (skip)
		return 0;
	_cleanup_json_ json_t *o =
	    json_pack("{s:O, s:O}", "names", names, "action", json_object_get(rule, "action"));
	if (!o)
		return -ENOMEM;
	/* errnoRet means something to ERRNO and TRACE only. */
	const char *an = json_string_value(json_object_get(rule, "action"));
	if (eret && !json_is_null(eret) &&
	    (strcmp(an, "SCMP_ACT_ERRNO") == 0 || strcmp(an, "SCMP_ACT_TRACE") == 0) &&
	    json_object_set(o, "errnoRet", (json_t *)eret) < 0)
		return -ENOMEM;
	if (json_array_size(args) && json_object_set(o, "args", args) < 0)
		return -ENOMEM;
	return json_array_append(out, o) < 0 ? -ENOMEM : 0;
}

static int plan_flags(struct build *b, const json_t *doc, json_t *oci)
{
	static const char *const known[] = { "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
					     "SECCOMP_FILTER_FLAG_SPEC_ALLOW" };
	const json_t *flags = json_object_get(doc, "flags");
	const json_t *lp = json_object_get(doc, "listenerPath");
	if (lp && !json_is_null(lp) && (!json_is_string(lp) || json_string_length(lp)))
		return bad(b, "listenerPath", "seccomp agents are not supported");
	if (!flags || json_is_null(flags))
		return 0;
	if (!json_is_array(flags) || json_array_size(flags) > ARRAY_SIZE(known))
		return bad(b, "flags", "not an array of SECCOMP_FILTER_FLAG_* names");
	size_t i;
	const json_t *v;
	json_array_foreach (flags, i, v) {
		bool ok = false;
		for (size_t k = 0; k < ARRAY_SIZE(known); k++)
			ok |= json_is_string(v) && strcmp(json_string_value(v), known[k]) == 0;
		if (!ok)
			return bad(b, "flags", "not an array of SECCOMP_FILTER_FLAG_* names");
	}
	return json_object_set(oci, "flags", (json_t *)flags) < 0 ? -ENOMEM : 0;
}

int ctr_seccomp_profile_build(const json_t *doc, const char *path, uint64_t caps,
			      const struct ctr_seccomp_host *host, json_t **out,
			      struct cric_err *err)
{
	struct build b = {
		.path = path ? path : "",
		.caps = caps,
		.m = machine_of(host ? host->machine : NULL),
		.kmaj = host ? host->kernel_major : 0,
		.kmin = host ? host->kernel_minor : 0,
		.err = err,
	};
	if (!json_is_object(doc))
		return bad(&b, "the document", "not a JSON object");
	const json_t *defact = json_object_get(doc, "defaultAction");
	const json_t *deferr = json_object_get(doc, "defaultErrnoRet");
	int r = action_of(&b, "defaultAction", defact, deferr, &b.def_action);
	if (r < 0)
		return r;
	_cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(b.def_action);
	if (!ctx)
		return err_set(err, -ENOMEM, "seccomp profile: libseccomp: out of memory");
	b.ctx = ctx; /* built as runc will build it; never loaded here */

	_cleanup_json_ json_t *oci = json_pack("{s:O}", "defaultAction", defact);
	_cleanup_json_ json_t *arches = json_array();
	_cleanup_json_ json_t *rules = json_array();
	if (!oci || !arches || !rules)
		return -ENOMEM;
	if (deferr && !json_is_null(deferr) &&
	    json_object_set(oci, "defaultErrnoRet", (json_t *)deferr) < 0)
		return -ENOMEM;
	if ((r = plan_arches(&b, doc, arches)) < 0 || (r = plan_flags(&b, doc, oci)) < 0)
		return r;
	const json_t *syscalls = json_object_get(doc, "syscalls");
	if (syscalls && !json_is_null(syscalls) && !json_is_array(syscalls))
		return bad(&b, "syscalls", "not an array");
	if (json_array_size(syscalls) > CTR_SECCOMP_MAX_RULES)
		return bad(&b, "syscalls", "more than 4096 rules");
	size_t i;
	const json_t *rule;
	json_array_foreach (syscalls, i, rule)
		if ((r = plan_rule(&b, rule, i, rules)) < 0)
			return r == -ENOMEM ? err_set(err, r, "seccomp profile: out of memory") : r;
	if (json_array_size(arches) && json_object_set(oci, "architectures", arches) < 0)
		return -ENOMEM;
	if (json_object_set(oci, "syscalls", rules) < 0)
		return -ENOMEM;
	*out = TAKE_PTR(oci);
	return 0;
}
