#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fsutil.h"
#include "log.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define DROPIN_MAX       256

static const char *const known_sections[] = {
	"gateway", "imaged", "stored", "netd", "runtimed", "monitord",
};

static char *prefixed(const char *root, const char *path)
{
	if (!root || !*root)
		return strdup(path);
	return path_join(root, path);
}

static json_t *config_defaults(const char *root)
{
	_cleanup_free_ char *state = prefixed(root, "/var/lib/cric");
	_cleanup_free_ char *run = prefixed(root, "/run/cric");
	_cleanup_free_ char *cni = prefixed(root, "/etc/cni/net.d");
	if (!state || !run || !cni)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s,"
			 " s:{s:s, s:[s,s]}}",
			 "state_dir", state, "run_dir", run, "ipc_dir", "", "cri_socket", "",
			 "log_level", "info", "gateway_user", "cric-gateway", "imaged_user",
			 "cric-imaged", "group", "cric", "workers", 16, "max_request_seconds", 600,
			 "cgroup_manager", "cgroupfs", "cni", "conf_dir", cni, "bin_dirs",
			 "/usr/lib/cni", "/opt/cni/bin");
}

/* The top-level keys of the suite's config and their JSON types: the one
 * list the per-file type check and the unknown-key warning share. */
static const struct {
	const char *key;
	json_type type;
} schema[] = {
	{ "state_dir", JSON_STRING },
	{ "run_dir", JSON_STRING },
	{ "ipc_dir", JSON_STRING },
	{ "cri_socket", JSON_STRING },
	{ "log_level", JSON_STRING },
	{ "gateway_user", JSON_STRING },
	{ "imaged_user", JSON_STRING },
	{ "group", JSON_STRING },
	{ "cgroup_manager", JSON_STRING },
	{ "workers", JSON_INTEGER },
	{ "max_request_seconds", JSON_INTEGER },
	{ "cni", JSON_OBJECT },
};

static const char *json_type_name(json_type t)
{
	return t == JSON_STRING ? "a string" : t == JSON_INTEGER ? "an integer" : "an object";
}

/* Type-check the known keys present in one file, so that an error names the
 * file it came from (after merging, the origin is lost). Values are checked
 * again, with ranges, on the merged document. */
static int check_types(const json_t *doc, struct cric_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(schema); i++) {
		json_t *v = json_object_get(doc, schema[i].key);
		if (v && json_typeof(v) != schema[i].type)
			return err_set(err, -EINVAL, "\"%s\" must be %s", schema[i].key,
				       json_type_name(schema[i].type));
	}
	json_t *cni = json_object_get(doc, "cni");
	if (cni && json_object_get(cni, "conf_dir") &&
	    !json_is_string(json_object_get(cni, "conf_dir")))
		return err_set(err, -EINVAL, "\"cni.conf_dir\" must be a string");
	if (cni && json_object_get(cni, "bin_dirs") &&
	    !json_is_array(json_object_get(cni, "bin_dirs")))
		return err_set(err, -EINVAL, "\"cni.bin_dirs\" must be an array of paths");
	return 0;
}

static int merge_file(json_t *doc, const char *path, bool must_exist, struct cric_err *err)
{
	char jerr[256];
	_cleanup_json_ json_t *add = NULL;
	int r = json_load_path(path, CONFIG_MAX_BYTES, &add, jerr, sizeof(jerr));
	if (r == -ENOENT && !must_exist)
		return 0;
	if (r < 0)
		return err_set(err, r, "config \"%s\": %s", path, jerr);
	if (!json_is_object(add))
		return err_set(err, -EINVAL, "config \"%s\": top level must be an object", path);
	r = check_types(add, err);
	if (r < 0)
		return err_prefix(err, r, "config \"%s\"", path);
	if (json_object_update_recursive(doc, add) < 0)
		return err_set(err, -ENOMEM, "config \"%s\": merge failed", path);
	return 0;
}

static int dropin_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static int merge_dropins(json_t *doc, const char *dir, struct cric_err *err)
{
	struct dirent **list = NULL;
	int n = scandir(dir, &list, dropin_filter, alphasort);
	if (n < 0)
		return errno == ENOENT
			   ? 0
			   : err_set(err, -errno, "config dir \"%s\": %s", dir, strerror(errno));
	int r = 0;
	if (n > DROPIN_MAX)
		r = err_set(err, -E2BIG, "config dir \"%s\": more than %d drop-ins", dir,
			    DROPIN_MAX);
	for (int i = 0; i < n; i++) {
		if (r == 0) {
			_cleanup_free_ char *p = path_join(dir, list[i]->d_name);
			r = p ? merge_file(doc, p, true, err) : -ENOMEM;
		}
		free(list[i]);
	}
	free(list);
	return r;
}

static int get_string(json_t *doc, const char *key, char **ret, struct cric_err *err)
{
	json_t *v = json_object_get(doc, key);
	if (!json_is_string(v))
		return err_set(err, -EINVAL, "config: \"%s\" must be a string", key);
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : -ENOMEM;
}

static int get_uint(json_t *doc, const char *key, unsigned min, unsigned max, unsigned *ret,
		    struct cric_err *err)
{
	json_t *v = json_object_get(doc, key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return err_set(err, -EINVAL, "config: \"%s\" must be an integer in %u..%u", key,
			       min, max);
	*ret = (unsigned)json_integer_value(v);
	return 0;
}

/* A user by name or number into *uid and its primary group *gid; both -1
 * when name is empty or no such user exists (the daemon that needs it
 * says so when it starts). */
static int resolve_user(const char *key, const char *name, uid_t *uid, gid_t *gid,
			struct cric_err *err)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (!name || !*name)
		return 0;
	struct passwd pw, *res = NULL;
	char buf[4096];
	char *end;
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	bool numeric = name[0] >= '0' && name[0] <= '9' && errno == 0 && *end == '\0';
	if (numeric && v >= UINT_MAX)
		return err_set(err, -EINVAL, "config: %s \"%s\" is not a valid uid", key, name);
	if (numeric ? getpwuid_r((uid_t)v, &pw, buf, sizeof(buf), &res) != 0
		    : getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0)
		res = NULL;
	if (numeric) {
		*uid = (uid_t)v;
		*gid = res ? res->pw_gid : (gid_t)v;
	} else if (res) {
		*uid = res->pw_uid;
		*gid = res->pw_gid;
	}
	if (*uid == 0)
		return err_set(err, -EINVAL,
			       "config: %s must not be root (\"\" runs the daemon as root)", key);
	return 0;
}

static int resolve_group(const char *name, gid_t *ret)
{
	*ret = (gid_t)-1;
	if (!name || !*name)
		return 0;
	struct group gr, *res = NULL;
	char buf[16384];
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res)
		*ret = res->gr_gid;
	return 0;
}

bool config_daemon_user(const struct cric_config *c, const char *daemon, uid_t *uid, gid_t *gid)
{
	if (strcmp(daemon, "gateway") == 0 && *c->gateway_user) {
		*uid = c->gateway_uid;
		*gid = c->gateway_gid;
		return true;
	}
	if (strcmp(daemon, "imaged") == 0 && *c->imaged_user) {
		*uid = c->imaged_uid;
		*gid = c->imaged_gid;
		return true;
	}
	return false;
}

uid_t config_daemon_peer_uid(const struct cric_config *c, const char *daemon)
{
	uid_t uid;
	gid_t gid;
	return config_daemon_user(c, daemon, &uid, &gid) ? uid : (uid_t)-1;
}

static int parse_cni(struct cric_config *c, struct cric_err *err)
{
	json_t *cni = json_object_get(c->doc, "cni");
	if (!json_is_object(cni))
		return err_set(err, -EINVAL, "config: \"cni\" must be an object");
	if (!json_is_string(json_object_get(cni, "conf_dir")))
		return err_set(err, -EINVAL, "config: \"cni.conf_dir\" must be a string");
	if (!(c->cni_conf_dir = strdup(json_string_value(json_object_get(cni, "conf_dir")))))
		return -ENOMEM;
	json_t *dirs = json_object_get(cni, "bin_dirs");
	if (!json_is_array(dirs) || json_array_size(dirs) > 64)
		return err_set(err, -EINVAL, "config: cni.bin_dirs must be an array of paths");
	c->cni_bin_dirs = calloc(json_array_size(dirs) + 1, sizeof(char *));
	if (!c->cni_bin_dirs)
		return -ENOMEM;
	size_t i;
	json_t *d;
	json_array_foreach (dirs, i, d) {
		if (!json_is_string(d) || json_string_value(d)[0] != '/')
			return err_set(err, -EINVAL,
				       "config: cni.bin_dirs[%zu] must be an absolute path", i);
		if (!(c->cni_bin_dirs[i] = strdup(json_string_value(d))))
			return -ENOMEM;
	}
	return 0;
}

static void warn_unknown_keys(const json_t *doc)
{
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)doc, key, v) {
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(schema) && !ok; i++)
			ok = strcmp(key, schema[i].key) == 0;
		for (size_t i = 0; i < ARRAY_SIZE(known_sections) && !ok; i++)
			ok = strcmp(key, known_sections[i]) == 0 && json_is_object(v);
		if (!ok)
			log_warning("config: unknown key \"%s\", ignoring", key);
	}
}

static int derive_path(char **field, const char *base, const char *name)
{
	if (*field && **field)
		return 0;
	free(*field);
	*field = path_join(base, name);
	return *field ? 0 : -ENOMEM;
}

static int check_abs(const char *key, const char *path, struct cric_err *err)
{
	if (!path || path[0] != '/' || strlen(path) >= 108 - 32)
		return err_set(err, -EINVAL,
			       "config: \"%s\" must be an absolute path shorter than 76 "
			       "bytes (unix socket limits), got \"%s\"",
			       key, path);
	return 0;
}

int config_load(const char *root, const char *config_file, struct cric_config **ret,
		struct cric_err *err)
{
	_cleanup_(config_freep) struct cric_config *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (root && *root && root[0] != '/')
		return err_set(err, -EINVAL, "--root must be an absolute path, got \"%s\"", root);
	c->root = strdup(root ? root : "");
	c->config_file = config_file ? strdup(config_file) : prefixed(root, "/etc/cric/cric.json");
	c->doc = config_defaults(root);
	if (!c->root || !c->config_file || !c->doc)
		return -ENOMEM;

	int r = merge_file(c->doc, c->config_file, config_file != NULL, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = strdup(c->config_file);
	if (!dir)
		return -ENOMEM;
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	_cleanup_free_ char *dropins = path_join(slash ? (*dir ? dir : "/") : ".", "cric.d");
	if (!dropins)
		return -ENOMEM;
	r = merge_dropins(c->doc, dropins, err);
	if (r < 0)
		return r;

	const struct {
		const char *key;
		char **field;
	} strings[] = {
		{ "state_dir", &c->state_dir },
		{ "run_dir", &c->run_dir },
		{ "ipc_dir", &c->ipc_dir },
		{ "cri_socket", &c->cri_socket },
		{ "log_level", &c->log_level },
		{ "gateway_user", &c->gateway_user },
		{ "imaged_user", &c->imaged_user },
		{ "group", &c->group },
		{ "cgroup_manager", &c->cgroup_manager },
	};
	for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
		if ((r = get_string(c->doc, strings[i].key, strings[i].field, err)) < 0)
			return r;
	if ((r = get_uint(c->doc, "workers", 1, 256, &c->workers, err)) < 0)
		return r;
	if ((r = get_uint(c->doc, "max_request_seconds", 1, 86400, &c->max_request_seconds, err)) <
	    0)
		return r;
	if ((r = parse_cni(c, err)) < 0 ||
	    (r = resolve_user("gateway_user", c->gateway_user, &c->gateway_uid, &c->gateway_gid,
			      err)) < 0 ||
	    (r = resolve_user("imaged_user", c->imaged_user, &c->imaged_uid, &c->imaged_gid, err)) <
		0 ||
	    (r = resolve_group(c->group, &c->group_gid)) < 0)
		return r;
	if ((r = derive_path(&c->ipc_dir, c->run_dir, "ipc")) < 0 ||
	    (r = derive_path(&c->cri_socket, c->run_dir, "cric.sock")) < 0)
		return r;
	const struct {
		const char *key;
		const char *path;
	} paths[] = {
		{ "state_dir", c->state_dir },
		{ "run_dir", c->run_dir },
		{ "ipc_dir", c->ipc_dir },
		{ "cri_socket", c->cri_socket },
	};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if ((r = check_abs(paths[i].key, paths[i].path, err)) < 0)
			return r;
	if (strcmp(c->cgroup_manager, "cgroupfs") != 0 && strcmp(c->cgroup_manager, "systemd") != 0)
		return err_set(err, -EINVAL,
			       "config: cgroup_manager must be \"cgroupfs\" or \"systemd\", "
			       "got \"%s\"",
			       c->cgroup_manager);
	if (log_level_from_name(c->log_level) < 0)
		return err_set(err, -EINVAL, "config: unknown log_level \"%s\"", c->log_level);
	warn_unknown_keys(c->doc);

	*ret = TAKE_PTR(c);
	return 0;
}

struct cric_config *config_free(struct cric_config *c)
{
	if (!c)
		return NULL;
	free(c->root);
	free(c->config_file);
	free(c->state_dir);
	free(c->run_dir);
	free(c->ipc_dir);
	free(c->cri_socket);
	free(c->log_level);
	free(c->cgroup_manager);
	free(c->gateway_user);
	free(c->imaged_user);
	free(c->group);
	free(c->cni_conf_dir);
	strv_free(c->cni_bin_dirs);
	json_decref(c->doc);
	free(c);
	return NULL;
}

char *config_ipc_url(const struct cric_config *c, const char *daemon)
{
	char *url = NULL;
	if (asprintf(&url, "ipc://%s/%s.sock", c->ipc_dir, daemon) < 0)
		return NULL;
	return url;
}

char *config_staging_dir(const struct cric_config *c)
{
	char *dir = NULL;
	if (asprintf(&dir, "%s/imaged/staging", c->state_dir) < 0)
		return NULL;
	return dir;
}

int config_bad_key(const struct cric_config *c, const char *section, const char *key,
		   const char *want, struct cric_err *err)
{
	return err_set(err, -EINVAL, "config \"%s\": \"%s.%s\" must be %s", c->config_file, section,
		       key, want);
}
