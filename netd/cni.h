/* CNI network execution (CNI spec, section 3: execution of network
 * configurations): the pod network read in full, the per-plugin execution
 * configuration, and the ADD / DEL / CHECK chains.
 *
 * A network here is always a list: {"cniVersion", "name", "disableCheck"?,
 * "plugins": [...]} (a single-plugin .conf becomes a one-plugin list). It is
 * what netd caches beside each pod's result, so that DEL and CHECK use the
 * configuration the pod was added with even if the conf dir changed since.
 *
 * Every function may block for as long as the plugins run (each bounded by
 * the runtime's timeout); none keeps state, so calls for different pods may
 * run in parallel. Calls for one pod must not overlap (the spec's rule; the
 * caller serialises them).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

#define CNI_DEFAULT_TIMEOUT_MS (60u * 1000)

struct cni_runtime {
	char *const *bin_dirs; /* NULL-terminated: plugin lookup order and CNI_PATH */
	unsigned timeout_ms;   /* per plugin run */
};

/* One attachment of a pod to the network (the spec's "attachment
 * parameters"), the same for its ADD, CHECK and DEL. */
struct cni_attachment {
	const char *container_id;     /* CNI_CONTAINERID: the pod id */
	const char *netns;            /* CNI_NETNS; "" when the namespace is gone */
	const char *ifname;           /* CNI_IFNAME */
	const char *cni_args;         /* CNI_ARGS */
	const json_t *runtime_config; /* capability -> data; NULL for none */
};

/* Find the pod network in conf_dir (cniconf.h: the lexically first valid
 * file, all plugins present), read it in full and return it as a list.
 * *conf_file (optional) gets the file's path. Errors as cni_network_find():
 * -ENOENT no network, -ENOEXEC a plugin is missing; -EAGAIN when the file
 * changed while it was read. */
int cni_network_load(const char *conf_dir, char *const *bin_dirs, json_t **ret, char **conf_file,
		     struct cric_err *err);

/* Re-validate a list (e.g. read back from a cache file): -EINVAL if it is
 * not one cni_network_load() could have returned. */
int cni_network_check(const json_t *list, struct cric_err *err);

/* The execution configuration for plugin idx of list: the plugin object
 * with the list's "name" and "cniVersion", without "capabilities", with
 * "runtimeConfig" holding the entries of runtime_config whose capability
 * the plugin declares true (left as written when none match, as libcni
 * does), and "prevResult" when prev_result is not NULL. NULL on OOM or a
 * bad index. */
json_t *cni_plugin_config(const json_t *list, size_t idx, const json_t *runtime_config,
			  const json_t *prev_result);

/* The environment of a plugin run: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 * CNI_IFNAME, CNI_ARGS, CNI_PATH (bin_dirs joined with ':') and PATH (netd's,
 * or a standard one). NULL-terminated, free with strv_free(); NULL on OOM. */
char **cni_plugin_env(const char *command, const struct cni_attachment *a, char *const *bin_dirs);

/* ADD: run the plugins in order, each getting the previous one's result.
 * On success *result is the last plugin's (validated) result. On failure
 * nothing is undone: the caller runs cni_del() to roll back. err reads
 * "plugin \"bridge\" ADD: <the plugin's message>". */
int cni_add(const struct cni_runtime *rt, const json_t *list, const struct cni_attachment *a,
	    json_t **result, struct cric_err *err);

/* DEL: run the plugins in reverse order with prev_result (the cached ADD
 * result; NULL when there is none, e.g. rolling back a failed ADD). Every
 * plugin runs even if an earlier one failed; the first failure is returned.
 * Plugins treat a DEL of what is already gone as success, so it may be
 * repeated. */
int cni_del(const struct cni_runtime *rt, const json_t *list, const struct cni_attachment *a,
	    const json_t *prev_result, struct cric_err *err);

/* Whether CHECK may run for list: cniVersion >= 0.4.0, no "disableCheck". */
bool cni_check_supported(const json_t *list);

/* CHECK: run the plugins in order with prev_result, stop at the first
 * failure. -EOPNOTSUPP when !cni_check_supported(list). */
int cni_check(const struct cni_runtime *rt, const json_t *list, const struct cni_attachment *a,
	      const json_t *prev_result, struct cric_err *err);
