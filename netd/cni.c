#include "cni.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cniconf.h"
#include "common/spawn.h"
#include "cniresult.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

static bool same_network(const struct cni_network *a, const struct cni_network *b)
{
	if (strcmp(a->name, b->name) != 0 || strcmp(a->cni_version, b->cni_version) != 0 ||
	    a->n_plugins != b->n_plugins)
		return false;
	for (unsigned i = 0; i < a->n_plugins; i++)
		if (strcmp(a->plugins[i], b->plugins[i]) != 0)
			return false;
	return true;
}

/* A parsed, valid config document as a list. */
static json_t *normalize(json_t *doc)
{
	json_t *plugins = json_object_get(doc, "plugins");
	_cleanup_json_ json_t *list = NULL;
	if (plugins)
		list =
		    json_pack("{s:O, s:O, s:O}", "cniVersion", json_object_get(doc, "cniVersion"),
			      "name", json_object_get(doc, "name"), "plugins", plugins);
	else
		list =
		    json_pack("{s:O, s:O, s:[O]}", "cniVersion", json_object_get(doc, "cniVersion"),
			      "name", json_object_get(doc, "name"), "plugins", doc);
	if (!list)
		return NULL;
	if (plugins && json_is_true(json_object_get(doc, "disableCheck")) &&
	    json_object_set_new(list, "disableCheck", json_true()) < 0)
		return NULL;
	return TAKE_PTR(list);
}

int cni_network_load(const char *conf_dir, char *const *bin_dirs, json_t **ret, char **conf_file,
		     struct cric_err *err)
{
	_cleanup_free_ struct cni_network *net = calloc(2, sizeof(*net));
	if (!net)
		return -ENOMEM;
	/* cni_network_find() writes its err even on success: use a scratch one. */
	struct cric_err why = { { 0 } };
	int r = cni_network_find(conf_dir, bin_dirs, &net[0], &why);
	if (r < 0)
		return err_set(err, r, "%s", why.msg);

	_cleanup_free_ char *content = NULL;
	size_t len = 0;
	r = read_file(net[0].file, CNI_CONF_MAX_BYTES, &content, &len);
	if (r < 0)
		return err_set(err, -EAGAIN, "CNI config \"%s\" changed while being read: %s",
			       net[0].file, strerror(-r));
	/* The file may have been replaced since it was chosen: what we read
	 * must be the network whose plugins were found. */
	r = cni_network_parse(content, len, has_suffix(net[0].file, ".conflist"), &net[1], &why);
	if (r < 0 || !same_network(&net[0], &net[1]))
		return err_set(err, -EAGAIN, "CNI config \"%s\" changed while being read",
			       net[0].file);
	_cleanup_json_ json_t *doc = json_loadb(content, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *list = doc ? normalize(doc) : NULL;
	if (!list)
		return -ENOMEM;
	if (conf_file && !(*conf_file = strdup(net[0].file))) {
		json_decref(list);
		return -ENOMEM;
	}
	*ret = list;
	return 0;
}

int cni_network_check(const json_t *list, struct cric_err *err)
{
	if (!json_is_object(list) || !json_is_array(json_object_get(list, "plugins")))
		return err_set(err, -EINVAL, "not a CNI network list");
	_cleanup_free_ char *s = json_dumps(list, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	_cleanup_free_ struct cni_network *net = malloc(sizeof(*net));
	if (!net)
		return -ENOMEM;
	int r = cni_network_parse(s, strlen(s), true, net, err);
	if (r < 0)
		return r;
	const json_t *dc = json_object_get(list, "disableCheck");
	if (dc && !json_is_boolean(dc))
		return err_set(err, -EINVAL, "\"disableCheck\" is not a boolean");
	return 0;
}

json_t *cni_plugin_config(const json_t *list, size_t idx, const json_t *runtime_config,
			  const json_t *prev_result)
{
	const json_t *plugin = json_array_get(json_object_get(list, "plugins"), idx);
	if (!json_is_object(plugin))
		return NULL;
	_cleanup_json_ json_t *conf = json_deep_copy(plugin);
	if (!conf ||
	    json_object_set_new(conf, "name", json_deep_copy(json_object_get(list, "name"))) < 0 ||
	    json_object_set_new(conf, "cniVersion",
				json_deep_copy(json_object_get(list, "cniVersion"))) < 0)
		return NULL;
	json_object_del(conf, "capabilities");
	json_object_del(conf, "prevResult");

	const json_t *caps = json_object_get(plugin, "capabilities");
	_cleanup_json_ json_t *rc = json_object();
	if (!rc)
		return NULL;
	const char *key;
	json_t *on;
	json_object_foreach ((json_t *)caps, key, on) {
		const json_t *data = json_object_get(runtime_config, key);
		if (json_is_true(on) && data &&
		    json_object_set_new(rc, key, json_deep_copy(data)) < 0)
			return NULL;
	}
	if (json_object_size(rc) > 0 &&
	    json_object_set_new(conf, "runtimeConfig", TAKE_PTR(rc)) < 0)
		return NULL;
	if (prev_result && json_object_set_new(conf, "prevResult", json_deep_copy(prev_result)) < 0)
		return NULL;
	return TAKE_PTR(conf);
}

char **cni_plugin_env(const char *command, const struct cni_attachment *a, char *const *bin_dirs)
{
	size_t plen = 1;
	for (char *const *d = bin_dirs; *d; d++)
		plen += strlen(*d) + 1;
	_cleanup_free_ char *cni_path = malloc(plen);
	if (!cni_path)
		return NULL;
	cni_path[0] = '\0';
	for (char *const *d = bin_dirs; *d; d++) {
		if (d != bin_dirs)
			strcat(cni_path, ":");
		strcat(cni_path, *d);
	}
	const char *path = getenv("PATH");
	const struct {
		const char *key, *value;
	} vars[] = {
		{ "CNI_COMMAND", command },
		{ "CNI_CONTAINERID", a->container_id },
		{ "CNI_NETNS", a->netns ? a->netns : "" },
		{ "CNI_IFNAME", a->ifname },
		{ "CNI_ARGS", a->cni_args ? a->cni_args : "" },
		{ "CNI_PATH", cni_path },
		{ "PATH", path && *path ? path : DEFAULT_PATH },
	};
	_cleanup_strv_free_ char **env = calloc(ARRAY_SIZE(vars) + 1, sizeof(char *));
	if (!env)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
		if (asprintf(&env[i], "%s=%s", vars[i].key, vars[i].value) < 0) {
			env[i] = NULL;
			return NULL;
		}
	return TAKE_PTR(env);
}

static int find_plugin(char *const *bin_dirs, const char *type, char **ret, struct cric_err *err)
{
	if (!*type || strchr(type, '/') || type[0] == '.')
		return err_set(err, -EINVAL, "invalid plugin type \"%.64s\"", type);
	for (char *const *d = bin_dirs; *d; d++) {
		_cleanup_free_ char *p = path_join(*d, type);
		struct stat st;
		if (!p)
			return -ENOMEM;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
			*ret = TAKE_PTR(p);
			return 0;
		}
	}
	return err_set(err, -ENOENT, "not found in the CNI bin dirs");
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run plugin idx with command; for ADD (result != NULL) return its result. */
static int run_plugin(const struct cni_runtime *rt, const json_t *list, size_t idx,
		      const char *command, const struct cni_attachment *a, const json_t *prev,
		      json_t **result, struct cric_err *err)
{
	const json_t *plugin = json_array_get(json_object_get(list, "plugins"), idx);
	const char *type = json_string_value(json_object_get(plugin, "type"));
	if (!type)
		return err_set(err, -EINVAL, "plugin %zu has no type", idx);

	_cleanup_free_ char *path = NULL;
	int r = find_plugin(rt->bin_dirs, type, &path, err);
	if (r < 0)
		return err_prefix(err, r, "plugin \"%s\" %s", type, command);
	_cleanup_json_ json_t *conf = cni_plugin_config(list, idx, a->runtime_config, prev);
	_cleanup_free_ char *input = conf ? json_dumps(conf, JSON_COMPACT) : NULL;
	_cleanup_strv_free_ char **env = cni_plugin_env(command, a, rt->bin_dirs);
	if (!input || !env)
		return -ENOMEM;

	const struct spawn_req x = {
		.path = path,
		.env = env,
		.input = input,
		.input_len = strlen(input),
		.timeout_ms = rt->timeout_ms ? rt->timeout_ms : CNI_DEFAULT_TIMEOUT_MS,
	};
	_cleanup_(spawn_result_done) struct spawn_result res = { 0 };
	int64_t start = mono_ms();
	r = spawn_run(&x, &res, err);
	if (r < 0)
		return err_prefix(err, r, "plugin \"%s\" %s", type, command);
	if (res.status != 0) {
		r = cni_error_describe(res.out, res.out_len, res.errout, res.status, err);
		return err_prefix(err, r, "plugin \"%s\" %s", type, command);
	}
	log_debug("CNI plugin \"%s\" %s done in %lld ms%s%.200s", type, command,
		  (long long)(mono_ms() - start), res.errout[0] ? "; stderr: " : "", res.errout);
	if (!result)
		return 0;

	json_t *doc = NULL;
	if (res.out_len == 0)
		return err_set(err, -EBADMSG, "plugin \"%s\" ADD printed no result", type);
	r = cni_output_load(res.out, res.out_len, &doc, err);
	if (r < 0)
		return err_prefix(err, r, "plugin \"%s\" ADD: invalid result", type);
	_cleanup_free_ struct cni_result *parsed = malloc(sizeof(*parsed));
	if (!parsed) {
		json_decref(doc);
		return -ENOMEM;
	}
	r = cni_result_parse(doc, json_string_value(json_object_get(list, "cniVersion")), parsed,
			     err);
	if (r < 0) {
		json_decref(doc);
		return err_prefix(err, r, "plugin \"%s\" ADD: invalid result", type);
	}
	*result = doc;
	return 0;
}

static size_t n_plugins(const json_t *list)
{
	return json_array_size(json_object_get(list, "plugins"));
}

int cni_add(const struct cni_runtime *rt, const json_t *list, const struct cni_attachment *a,
	    json_t **result, struct cric_err *err)
{
	_cleanup_json_ json_t *prev = NULL;
	size_t n = n_plugins(list);
	if (n == 0)
		return err_set(err, -EINVAL, "the network has no plugins");
	for (size_t i = 0; i < n; i++) {
		json_t *res = NULL;
		int r = run_plugin(rt, list, i, "ADD", a, prev, &res, err);
		if (r < 0)
			return r;
		json_decref(prev);
		prev = res;
	}
	*result = TAKE_PTR(prev);
	return 0;
}

int cni_del(const struct cni_runtime *rt, const json_t *list, const struct cni_attachment *a,
	    const json_t *prev_result, struct cric_err *err)
{
	int first = 0;
	for (size_t i = n_plugins(list); i-- > 0;) {
		struct cric_err e = { { 0 } };
		int r = run_plugin(rt, list, i, "DEL", a, prev_result, NULL, &e);
		if (r < 0 && first == 0)
			first = err_set(err, r, "%s", e.msg);
		else if (r < 0)
			log_warning("pod %s: %s, ignoring", a->container_id, e.msg);
	}
	return first;
}

bool cni_check_supported(const json_t *list)
{
	const char *v = json_string_value(json_object_get(list, "cniVersion"));
	return v && cni_version_valid(v) && cni_version_cmp(v, "0.4.0") >= 0 &&
	       !json_is_true(json_object_get(list, "disableCheck"));
}

int cni_check(const struct cni_runtime *rt, const json_t *list, const struct cni_attachment *a,
	      const json_t *prev_result, struct cric_err *err)
{
	if (!cni_check_supported(list))
		return err_set(err, -EOPNOTSUPP, "the network does not support CHECK");
	for (size_t i = 0; i < n_plugins(list); i++) {
		int r = run_plugin(rt, list, i, "CHECK", a, prev_result, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}
