#include "cniconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

static bool plugin_type_is_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n >= 64 || t[0] == '.')
		return false;
	for (const char *p = t; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

/* CNI spec: network names match ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ (plugins such
 * as host-local build paths from them). */
static bool network_name_is_valid(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

static int add_plugin(struct cni_network *net, json_t *plugin, size_t idx, struct cric_err *err)
{
	const char *type = json_string_value(json_object_get(plugin, "type"));
	if (!json_is_object(plugin) || !type)
		return err_set(err, -EINVAL, "plugin %zu has no \"type\"", idx);
	if (!plugin_type_is_valid(type))
		return err_set(err, -EINVAL, "plugin %zu: invalid type \"%.64s\"", idx, type);
	if (net->n_plugins >= CNI_MAX_PLUGINS)
		return err_set(err, -EINVAL, "more than %d plugins", CNI_MAX_PLUGINS);
	snprintf(net->plugins[net->n_plugins++], sizeof(net->plugins[0]), "%s", type);
	return 0;
}

int cni_network_parse(const char *content, size_t len, bool is_list, struct cni_network *net,
		      struct cric_err *err)
{
	json_error_t jerr;
	_cleanup_json_ json_t *doc = json_loadb(content, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return err_set(err, -EINVAL, "invalid JSON at line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(doc))
		return err_set(err, -EINVAL, "not a JSON object");

	struct cni_network n;
	memset(&n, 0, sizeof(n));
	const char *name = json_string_value(json_object_get(doc, "name"));
	const char *version = json_string_value(json_object_get(doc, "cniVersion"));
	if (!name || strlen(name) >= sizeof(n.name) || !network_name_is_valid(name))
		return err_set(err, -EINVAL, "missing or invalid \"name\"");
	if (!version || !*version || strlen(version) >= sizeof(n.cni_version))
		return err_set(err, -EINVAL, "missing or invalid \"cniVersion\"");
	snprintf(n.name, sizeof(n.name), "%s", name);
	snprintf(n.cni_version, sizeof(n.cni_version), "%s", version);

	json_t *plugins = json_object_get(doc, "plugins");
	if (is_list || plugins) {
		if (!json_is_array(plugins) || json_array_size(plugins) == 0)
			return err_set(err, -EINVAL, "\"plugins\" must be a non-empty array");
		size_t i;
		json_t *p;
		json_array_foreach (plugins, i, p) {
			int r = add_plugin(&n, p, i, err);
			if (r < 0)
				return r;
		}
	} else {
		int r = add_plugin(&n, doc, 0, err);
		if (r < 0)
			return r;
	}
	*net = n;
	return 0;
}

static int conf_filter(const struct dirent *d)
{
	return d->d_name[0] != '.' &&
	       (has_suffix(d->d_name, ".conflist") || has_suffix(d->d_name, ".conf") ||
		has_suffix(d->d_name, ".json"));
}

static int check_plugins(const struct cni_network *net, char *const *bin_dirs, struct cric_err *err)
{
	for (unsigned i = 0; i < net->n_plugins; i++) {
		bool found = false;
		for (char *const *d = bin_dirs; *d && !found; d++) {
			_cleanup_free_ char *p = path_join(*d, net->plugins[i]);
			struct stat st;
			found =
			    p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
		}
		if (!found) {
			char dirs[1024] = "";
			for (char *const *d = bin_dirs; *d; d++)
				snprintf(dirs + strlen(dirs), sizeof(dirs) - strlen(dirs), "%s%s",
					 d == bin_dirs ? "" : ":", *d);
			return err_set(err, -ENOEXEC,
				       "CNI plugin \"%s\" of network \"%s\" (%s) not found in %s",
				       net->plugins[i], net->name, net->file, dirs);
		}
	}
	return 0;
}

int cni_network_find(const char *conf_dir, char *const *bin_dirs, struct cni_network *net,
		     struct cric_err *err)
{
	struct dirent **list = NULL;
	int n = scandir(conf_dir, &list, conf_filter, alphasort);
	if (n < 0)
		return err_set(err, -ENOENT, "no CNI network config: cannot read \"%s\": %s",
			       conf_dir, strerror(errno));
	int r = -ENOENT;
	bool found = false;
	for (int i = 0; i < n; i++) {
		if (!found) {
			_cleanup_free_ char *path = path_join(conf_dir, list[i]->d_name);
			_cleanup_free_ char *content = NULL;
			size_t len;
			struct cric_err perr = { { 0 } };
			int k =
			    path ? read_file(path, CNI_CONF_MAX_BYTES, &content, &len) : -ENOMEM;
			if (k < 0) {
				log_warning("CNI config \"%s\": %s, ignoring", list[i]->d_name,
					    strerror(-k));
			} else if ((k = cni_network_parse(content, len,
							  has_suffix(list[i]->d_name, ".conflist"),
							  net, &perr)) < 0) {
				log_warning("CNI config \"%s\": %s, ignoring", path, perr.msg);
			} else {
				snprintf(net->file, sizeof(net->file), "%s", path);
				found = true;
				r = check_plugins(net, bin_dirs, err);
			}
		}
		free(list[i]);
	}
	free(list);
	if (!found)
		return err_set(err, -ENOENT, "no valid CNI network config found in \"%s\"",
			       conf_dir);
	return r;
}
