/* CDI devices; see cdi.h. */
#include "cdi.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "runtimed/yaml-dl.h"

#define YAML_DEPTH_MAX 32
#define YAML_NODES_MAX 65536
#define CDI_LIST_MAX   1024 /* entries of any one list in a spec */

/* ---- YAML as JSON ---- */

struct yconv {
	yaml_parser_t p;
	size_t nodes;
	struct cric_err *err;
};

static int yerr(struct yconv *y, const char *what)
{
	return err_set(y->err, -EINVAL, "YAML line %zu: %s", y->p.mark.line + 1, what);
}

static json_t *plain_scalar(const char *s, size_t len)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		return json_false();
	if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0)
		return json_null();
	const char *p = s + (*s == '-' || *s == '+');
	if (*p && strspn(p, "0123456789") == strlen(p) && len <= 19) {
		/* octal 0o644 is not taken; a leading-zero decimal is read as
		 * YAML 1.1 octal ("0644"), as the reference parser does. */
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, p[0] == '0' && p[1] ? 8 : 10);
		if (!errno && !*end)
			return json_integer(v);
	}
	if (strncmp(p, "0x", 2) == 0 && p[2] &&
	    strspn(p + 2, "0123456789abcdefABCDEF") == strlen(p + 2) && len <= 18) {
		long long v = strtoll(s, NULL, 16);
		return json_integer(v);
	}
	return json_stringn(s, len);
}

static int ynode(struct yconv *y, yaml_event_t *ev, int depth, json_t **ret);

static int next(struct yconv *y, yaml_event_t *ev)
{
	if (!sym_yaml_parser_parse(&y->p, ev))
		return err_set(y->err, -EINVAL, "YAML line %zu: %s", y->p.problem_mark.line + 1,
			       y->p.problem ? y->p.problem : "does not parse");
	return 0;
}

/* The collection opened by ev, up to its end event. */
static int ycollection(struct yconv *y, bool map, int depth, json_t **ret)
{
	_cleanup_json_ json_t *out = map ? json_object() : json_array();
	if (!out)
		return -ENOMEM;
	for (;;) {
		yaml_event_t ev;
		int r = next(y, &ev);
		if (r < 0)
			return r;
		if (ev.type == (map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
			sym_yaml_event_delete(&ev);
			break;
		}
		_cleanup_free_ char *key = NULL;
		if (map) {
			if (ev.type != YAML_SCALAR_EVENT) {
				sym_yaml_event_delete(&ev);
				return yerr(y, "a mapping key is not a string");
			}
			key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
			sym_yaml_event_delete(&ev);
			if (!key)
				return -ENOMEM;
			if ((r = next(y, &ev)) < 0)
				return r;
		}
		json_t *v = NULL;
		r = ynode(y, &ev, depth + 1, &v);
		sym_yaml_event_delete(&ev);
		if (r < 0)
			return r;
		if (map && json_object_get(out, key)) {
			json_decref(v);
			return yerr(y, "a mapping key is given twice");
		}
		if ((map ? json_object_set_new(out, key, v) : json_array_append_new(out, v)) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(out);
	return 0;
}

static int ynode(struct yconv *y, yaml_event_t *ev, int depth, json_t **ret)
{
	if (depth > YAML_DEPTH_MAX)
		return yerr(y, "nested too deep");
	if (++y->nodes > YAML_NODES_MAX)
		return yerr(y, "too many nodes");
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *s = (const char *)ev->data.scalar.value;
		size_t len = ev->data.scalar.length;
		if (strlen(s) != len)
			return yerr(y, "a string holds a NUL");
		*ret = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(s, len)
									: json_stringn(s, len);
		return *ret ? 0 : yerr(y, "a string is not UTF-8");
	}
	case YAML_SEQUENCE_START_EVENT:
		return ycollection(y, false, depth, ret);
	case YAML_MAPPING_START_EVENT:
		return ycollection(y, true, depth, ret);
	case YAML_ALIAS_EVENT:
		return yerr(y, "aliases are not taken");
	default:
		return yerr(y, "unexpected event");
	}
}

int cdi_yaml_to_json(const char *text, size_t len, json_t **ret, struct cric_err *err)
{
	int r = yaml_dl_load(err);
	if (r < 0)
		return err_prefix(err, r, "YAML");
	struct yconv y = { .err = err };
	if (!sym_yaml_parser_initialize(&y.p))
		return -ENOMEM;
	sym_yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
	json_t *doc = NULL;
	/* stream start, document start, the node */
	for (int want = 0; r == 0 && !doc;) {
		yaml_event_t ev;
		if ((r = next(&y, &ev)) < 0)
			break;
		if (ev.type == YAML_STREAM_START_EVENT && want == 0)
			want = 1;
		else if (ev.type == YAML_DOCUMENT_START_EVENT && want == 1)
			want = 2;
		else if (want == 2)
			r = ynode(&y, &ev, 0, &doc);
		else
			r = yerr(&y, "no document");
		sym_yaml_event_delete(&ev);
	}
	sym_yaml_parser_delete(&y.p);
	if (r < 0)
		return r;
	*ret = doc;
	return 0;
}

/* ---- checking a spec ---- */

#define BAD(...) err_set(err, -EINVAL, __VA_ARGS__)

static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (!n || n > max || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
			return false;
	return true;
}

/* "vendor.com/class": a DNS subdomain, '/', a name of at most 63. */
static bool kind_ok(const char *k)
{
	const char *slash = strchr(k, '/');
	if (!slash || slash == k || (size_t)(slash - k) > 253 || strchr(slash + 1, '/'))
		return false;
	for (const char *p = k; p < slash; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && !strchr("-.", *p))
			return false;
	if (!isalnum((unsigned char)k[0]) || !isalnum((unsigned char)slash[-1]))
		return false;
	return name_ok(slash + 1, 63);
}

/* An optional array of strings, each passing ok (NULL: any). */
static int strings(const json_t *a, const char *what, bool (*ok)(const char *),
		   struct cric_err *err)
{
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > CDI_LIST_MAX)
		return BAD("%s must be a list of at most %d strings", what, CDI_LIST_MAX);
	size_t i;
	json_t *s;
	json_array_foreach (a, i, s)
		if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s) ||
		    (ok && !ok(json_string_value(s))))
			return BAD("%s[%zu] is not a valid string", what, i);
	return 0;
}

static bool env_ok(const char *s)
{
	const char *eq = strchr(s, '=');
	return eq && eq != s;
}

static bool abs_path_ok(const char *s)
{
	return s[0] == '/' && strlen(s) < PATH_MAX;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool access_ok(const char *s)
{
	if (strlen(s) > 3)
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("rwm", *p) || strchr(p + 1, *p))
			return false;
	return true;
}

static int check_node(const json_t *n, const char *w, struct cric_err *err)
{
	if (!json_is_object(n) || !str(n, "path") || !abs_path_ok(str(n, "path")))
		return BAD("%s.path must be an absolute path", w);
	const json_t *v;
	if ((v = json_object_get(n, "hostPath")) &&
	    (!json_is_string(v) || !abs_path_ok(json_string_value(v))))
		return BAD("%s.hostPath must be an absolute path", w);
	if ((v = json_object_get(n, "type")) &&
	    (!json_is_string(v) ||
	     (strcmp(json_string_value(v), "c") != 0 && strcmp(json_string_value(v), "b") != 0 &&
	      strcmp(json_string_value(v), "u") != 0)))
		return BAD("%s.type must be \"c\", \"u\" or \"b\"", w);
	static const char *const ints[] = { "major", "minor", "fileMode", "uid", "gid" };
	static const json_int_t max[] = { 4095, 1048575, 07777, UINT32_MAX - 1, UINT32_MAX - 1 };
	for (size_t i = 0; i < ARRAY_SIZE(ints); i++)
		if ((v = json_object_get(n, ints[i])) &&
		    (!json_is_integer(v) || json_integer_value(v) < 0 ||
		     json_integer_value(v) > max[i]))
			return BAD("%s.%s must be an integer 0..%lld", w, ints[i],
				   (long long)max[i]);
	if ((v = json_object_get(n, "permissions")) &&
	    (!json_is_string(v) || !access_ok(json_string_value(v))))
		return BAD("%s.permissions must be letters of \"rwm\"", w);
	return 0;
}

static int check_mount(const json_t *m, const char *w, struct cric_err *err)
{
	if (!json_is_object(m) || !str(m, "hostPath") || !abs_path_ok(str(m, "hostPath")))
		return BAD("%s.hostPath must be an absolute path", w);
	if (!str(m, "containerPath") || !abs_path_ok(str(m, "containerPath")))
		return BAD("%s.containerPath must be an absolute path", w);
	const json_t *t = json_object_get(m, "type");
	if (t && (!json_is_string(t) || !json_string_length(t) || json_string_length(t) > 64))
		return BAD("%s.type must be a file system type", w);
	char what[128];
	snprintf(what, sizeof(what), "%s.options", w);
	return strings(json_object_get(m, "options"), what, NULL, err);
}

static bool hook_name_ok(const char *s)
{
	static const char *const names[] = { "prestart",       "createRuntime", "createContainer",
					     "startContainer", "poststart",     "poststop" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0)
			return true;
	return false;
}

static int check_hook(const json_t *h, const char *w, struct cric_err *err)
{
	if (!json_is_object(h) || !str(h, "hookName") || !hook_name_ok(str(h, "hookName")))
		return BAD("%s.hookName must be an OCI hook (createRuntime, createContainer, "
			   "startContainer, poststart, poststop, prestart)",
			   w);
	if (!str(h, "path") || !abs_path_ok(str(h, "path")))
		return BAD("%s.path must be an absolute path", w);
	const json_t *t = json_object_get(h, "timeout");
	if (t &&
	    (!json_is_integer(t) || json_integer_value(t) <= 0 || json_integer_value(t) > 3600))
		return BAD("%s.timeout must be 1..3600 seconds", w);
	char what[128];
	snprintf(what, sizeof(what), "%s.args", w);
	int r = strings(json_object_get(h, "args"), what, NULL, err);
	snprintf(what, sizeof(what), "%s.env", w);
	return r < 0 ? r : strings(json_object_get(h, "env"), what, env_ok, err);
}

static int check_list(const json_t *e, const char *key, const char *w,
		      int (*check)(const json_t *, const char *, struct cric_err *),
		      struct cric_err *err)
{
	const json_t *a = json_object_get(e, key);
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > CDI_LIST_MAX)
		return BAD("%s.%s must be a list of at most %d", w, key, CDI_LIST_MAX);
	size_t i;
	json_t *v;
	json_array_foreach (a, i, v) {
		char what[96];
		snprintf(what, sizeof(what), "%s.%s[%zu]", w, key, i);
		int r = check(v, what, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_edits(const json_t *e, const char *w, struct cric_err *err)
{
	if (!e)
		return 0;
	if (!json_is_object(e))
		return BAD("%s must be an object", w);
	char what[96];
	snprintf(what, sizeof(what), "%s.env", w);
	int r = strings(json_object_get(e, "env"), what, env_ok, err);
	if (r == 0)
		r = check_list(e, "deviceNodes", w, check_node, err);
	if (r == 0)
		r = check_list(e, "mounts", w, check_mount, err);
	if (r == 0)
		r = check_list(e, "hooks", w, check_hook, err);
	return r;
}

static int check_spec(const json_t *s, struct cric_err *err)
{
	if (!json_is_object(s))
		return BAD("the spec is not an object");
	const char *v = str(s, "cdiVersion");
	if (!v || !isdigit((unsigned char)v[0]) || strlen(v) > 32 ||
	    strspn(v, "0123456789.") != strlen(v))
		return BAD("cdiVersion must be a version like \"0.6.0\"");
	const char *k = str(s, "kind");
	if (!k || !kind_ok(k))
		return BAD("kind must be like \"vendor.com/class\"");
	int r = check_edits(json_object_get(s, "containerEdits"), "containerEdits", err);
	if (r < 0)
		return r;
	const json_t *devs = json_object_get(s, "devices");
	if (!json_is_array(devs) || !json_array_size(devs) || json_array_size(devs) > CDI_LIST_MAX)
		return BAD("devices must be a list of 1..%d devices", CDI_LIST_MAX);
	size_t i;
	json_t *d;
	json_array_foreach (devs, i, d) {
		const char *n = json_is_object(d) ? str(d, "name") : NULL;
		if (!n || !name_ok(n, 253))
			return BAD("devices[%zu].name is not a valid name", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(str(json_array_get(devs, j), "name"), n) == 0)
				return BAD("devices[%zu].name \"%s\" is given twice", i, n);
		char what[64];
		snprintf(what, sizeof(what), "devices[%zu].containerEdits", i);
		if ((r = check_edits(json_object_get(d, "containerEdits"), what, err)) < 0)
			return r;
	}
	return 0;
}

int cdi_spec_parse(const char *text, size_t len, bool yaml, json_t **ret, struct cric_err *err)
{
	if (len > CDI_SPEC_MAX)
		return BAD("larger than %d bytes", CDI_SPEC_MAX);
	_cleanup_json_ json_t *doc = NULL;
	if (yaml) {
		int r = cdi_yaml_to_json(text, len, &doc, err);
		if (r < 0)
			return r;
	} else {
		json_error_t je;
		doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
		if (!doc)
			return BAD("JSON line %d: %s", je.line, je.text);
	}
	int r = check_spec(doc, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(doc);
	return 0;
}

/* ---- resolving names ---- */

/* Edits the spec or device has that cric does not apply. */
static int unsupported(const json_t *e, const char *name, struct cric_err *err)
{
	static const char *const keys[] = { "additionalGids", "additionalGIDs", "intelRdt" };
	for (size_t i = 0; e && i < ARRAY_SIZE(keys); i++)
		if (json_object_get(e, keys[i]))
			return err_set(err, -EOPNOTSUPP,
				       "CDI_devices \"%s\": containerEdits.%s is not supported",
				       name, keys[i]);
	return 0;
}

static int add_edits(json_t *acc, const json_t *e)
{
	static const char *const lists[] = { "env", "deviceNodes", "mounts", "hooks" };
	for (size_t i = 0; e && i < ARRAY_SIZE(lists); i++) {
		const json_t *a = json_object_get(e, lists[i]);
		size_t j;
		json_t *v;
		json_array_foreach (a, j, v) {
			json_t *c = json_deep_copy(v);
			if (!c || json_array_append_new(json_object_get(acc, lists[i]), c) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* The spec and device of name "kind=dev" in specs (the last that has it). */
static const json_t *find(const json_t *specs, const char *name, const json_t **spec)
{
	const char *eq = strchr(name, '=');
	if (!eq)
		return NULL;
	size_t klen = (size_t)(eq - name);
	const json_t *found = NULL;
	size_t i;
	json_t *s;
	json_array_foreach (specs, i, s) {
		const char *k = str(s, "kind");
		if (strlen(k) != klen || strncmp(k, name, klen) != 0)
			continue;
		size_t j;
		json_t *d;
		json_array_foreach (json_object_get(s, "devices"), j, d)
			if (strcmp(str(d, "name"), eq + 1) == 0) {
				found = d;
				*spec = s;
			}
	}
	return found;
}

int cdi_edits_for(const json_t *specs, char *const *names, char *const *sources, size_t n,
		  json_t **ret, struct cric_err *err)
{
	if (n > CDI_MAX_DEVICES)
		return err_set(err, -E2BIG, "CDI_devices: more than %d", CDI_MAX_DEVICES);
	_cleanup_json_ json_t *acc =
	    json_pack("{s:[], s:[], s:[], s:[]}", "env", "deviceNodes", "mounts", "hooks");
	_cleanup_json_ json_t *applied = json_array(); /* specs whose edits are in */
	if (!acc || !applied)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i] ? names[i] : "";
		const json_t *spec = NULL;
		const json_t *dev = find(specs, name, &spec);
		char field[32];
		snprintf(field, sizeof(field), "CDI_devices[%zu]", i);
		const char *src = sources && sources[i] ? sources[i] : field;
		if (!dev)
			return err_set(err, -EINVAL, "%s \"%.300s\": no CDI spec file provides it",
				       src, name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(names[j] ? names[j] : "", name) == 0)
				return err_set(err, -EINVAL, "%s \"%s\" is named twice", src, name);
		const json_t *se = json_object_get(spec, "containerEdits");
		const json_t *de = json_object_get(dev, "containerEdits");
		int r = unsupported(se, name, err);
		if (r == 0)
			r = unsupported(de, name, err);
		if (r < 0)
			return r;
		bool seen = false;
		size_t k;
		json_t *a;
		json_array_foreach (applied, k, a)
			seen |= a == spec;
		if (!seen &&
		    (json_array_append(applied, (json_t *)spec) < 0 || add_edits(acc, se) < 0))
			return -ENOMEM;
		if (add_edits(acc, de) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(acc);
	return 0;
}

static bool cdi_file(const char *name, bool *yaml)
{
	size_t n = strlen(name);
	if (name[0] == '.')
		return false;
	*yaml = (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
		(n > 4 && strcmp(name + n - 4, ".yml") == 0);
	return *yaml || (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every spec file of dir that parses, appended to specs. */
static int load_dir(const char *dir, json_t *specs, size_t *files, size_t *skipped)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, by_name);
	if (n < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	int r = 0;
	for (int i = 0; i < n; i++) {
		bool yaml;
		_cleanup_free_ char *path = NULL;
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		struct stat st;
		if (r == 0 && cdi_file(ents[i]->d_name, &yaml) && ++*files <= CDI_MAX_FILES &&
		    (path = path_join(dir, ents[i]->d_name)) && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			struct cric_err e = { 0 };
			json_t *spec = NULL;
			int q = read_file(path, CDI_SPEC_MAX, &text, &len);
			if (q < 0)
				err_set(&e, q, "%s", strerror(-q));
			else
				q = cdi_spec_parse(text, len, yaml, &spec, &e);
			if (q < 0) {
				log_warning("CDI spec \"%s\": %s, ignoring", path, e.msg);
				++*skipped;
			} else if (json_array_append_new(specs, spec) < 0)
				r = -ENOMEM;
		}
		free(ents[i]);
	}
	free(ents);
	return r;
}

/* A node without type, major or minor gets them from the host's node. */
static int complete_node(json_t *n, struct cric_err *err)
{
	const char *path = str(n, "path");
	const char *host = str(n, "hostPath") ? str(n, "hostPath") : path;
	struct stat st;
	if (stat(host, &st) < 0)
		return err_set(err, -EINVAL, "CDI device node \"%s\": %s", host, strerror(errno));
	if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
		return err_set(err, -EINVAL, "CDI device node \"%s\" is not a device", host);
	const char *t = str(n, "type");
	char type[2] = { S_ISBLK(st.st_mode) ? 'b' : 'c', '\0' };
	if (t && (t[0] == 'b') != (type[0] == 'b'))
		return err_set(err, -EINVAL, "CDI device node \"%s\" is not of type %s", host, t);
	if (!json_object_get(n, "major") || !json_object_get(n, "minor")) {
		json_object_set_new(n, "major", json_integer(major(st.st_rdev)));
		json_object_set_new(n, "minor", json_integer(minor(st.st_rdev)));
	}
	if (!json_object_get(n, "fileMode"))
		json_object_set_new(n, "fileMode", json_integer(st.st_mode & 07777));
	json_object_set_new(n, "type", json_string(t && t[0] == 'u' ? "c" : type));
	json_object_del(n, "hostPath");
	if (!str(n, "permissions"))
		json_object_set_new(n, "permissions", json_string("rwm"));
	return 0;
}

/* "vendor.com/class=name": a kind, '=', a device name. */
static bool qualified_ok(const char *s)
{
	const char *eq = strchr(s, '=');
	if (!eq || eq - s > 320)
		return false;
	char kind[321];
	memcpy(kind, s, (size_t)(eq - s));
	kind[eq - s] = '\0';
	const char *dev = eq + 1;
	size_t n = strlen(dev);
	if (!kind_ok(kind) || !n || n > 253 || !isalnum((unsigned char)dev[0]) ||
	    !isalnum((unsigned char)dev[n - 1]))
		return false;
	for (const char *p = dev; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.:", *p))
			return false;
	return true;
}

static bool asked(const struct cdi_request *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->names[i], name) == 0)
			return true;
	return false;
}

int cdi_request_collect(char *const *field, size_t n_field, char *const *ann_keys,
			char *const *ann_values, size_t n_ann, struct cdi_request *ret,
			struct cric_err *err)
{
	ret->n = 0;
	ret->name_buf = NULL;
	if (n_field > CDI_MAX_DEVICES)
		return err_set(err, -E2BIG, "CDI_devices: more than %d", CDI_MAX_DEVICES);
	for (size_t i = 0; i < n_field; i++) {
		ret->names[i] = field[i] ? field[i] : "";
		snprintf(ret->source_buf[i], CDI_SOURCE_MAX, "CDI_devices[%zu]", i);
		ret->sources[i] = ret->source_buf[i];
	}
	ret->n = n_field;
	/* The annotations' values, copied once and split in place. */
	size_t total = 0;
	for (size_t i = 0; i < n_ann; i++)
		if (strncmp(ann_keys[i], CDI_ANNOTATION_PREFIX, strlen(CDI_ANNOTATION_PREFIX)) == 0)
			total += strlen(ann_values[i]) + 1;
	if (!total)
		return 0;
	char *buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	ret->name_buf = buf;
	for (size_t i = 0; i < n_ann; i++) {
		const char *key = ann_keys[i];
		if (strncmp(key, CDI_ANNOTATION_PREFIX, strlen(CDI_ANNOTATION_PREFIX)) != 0)
			continue;
		size_t len = strlen(ann_values[i]);
		memcpy(buf, ann_values[i], len + 1);
		char *save = NULL;
		for (char *tok = buf;; tok = NULL) {
			char *name = strtok_r(tok, ",", &save);
			if (!name)
				break;
			if (!qualified_ok(name))
				return err_set(
				    err, -EINVAL,
				    "annotation \"%.200s\": \"%.200s\" is not a "
				    "fully-qualified CDI device name (vendor.com/class=name)",
				    key, name);
			if (asked(ret, name))
				continue;
			if (ret->n == CDI_MAX_DEVICES)
				return err_set(
				    err, -E2BIG,
				    "CDI_devices and cdi.k8s.io/ annotations: more than %d "
				    "devices",
				    CDI_MAX_DEVICES);
			ret->names[ret->n] = name;
			snprintf(ret->source_buf[ret->n], CDI_SOURCE_MAX, "annotation \"%.200s\"",
				 key);
			ret->sources[ret->n] = ret->source_buf[ret->n];
			ret->n++;
		}
		/* strtok_r skips empty fields; CDI's parser refuses them. */
		if (len == 0 || ann_values[i][0] == ',' || ann_values[i][len - 1] == ',' ||
		    strstr(ann_values[i], ",,"))
			return err_set(err, -EINVAL,
				       "annotation \"%.200s\": an empty CDI device name", key);
		buf += len + 1;
	}
	return 0;
}

void cdi_request_done(struct cdi_request *r)
{
	free(r->name_buf);
	r->name_buf = NULL;
	r->n = 0;
}

int cdi_resolve(char *const *dirs, char *const *names, char *const *sources, size_t n, json_t **ret,
		struct cric_err *err)
{
	if (n > CDI_MAX_DEVICES)
		return err_set(err, -E2BIG, "CDI_devices: more than %d", CDI_MAX_DEVICES);
	_cleanup_json_ json_t *specs = json_array();
	if (!specs)
		return -ENOMEM;
	size_t files = 0, skipped = 0;
	for (size_t i = 0; dirs && dirs[i]; i++) {
		int r = load_dir(dirs[i], specs, &files, &skipped);
		if (r < 0)
			return err_set(err, r, "read CDI spec directory \"%s\": %s", dirs[i],
				       strerror(-r));
	}
	_cleanup_json_ json_t *edits = NULL;
	int r = cdi_edits_for(specs, names, sources, n, &edits, err);
	if (r == -EINVAL && skipped)
		return err_prefix(err, r,
				  "%zu CDI spec file(s) were skipped as invalid (runtimed's log "
				  "names them)",
				  skipped);
	if (r < 0)
		return r;
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(edits, "deviceNodes"), i, v)
		if ((r = complete_node(v, err)) < 0)
			return r;
	json_array_foreach (json_object_get(edits, "mounts"), i, v) {
		if (!json_object_get(v, "type"))
			json_object_set_new(v, "type", json_string("bind"));
		if (!json_object_get(v, "options"))
			json_object_set_new(v, "options", json_pack("[s,s]", "rbind", "rprivate"));
	}
	*ret = TAKE_PTR(edits);
	return 0;
}
