/* netd's manager: the CNI settings from the config (conf dir, plugin dirs,
 * plugin timeout; replaced on SIGHUP while calls may be running) and the pod
 * networks (pods.h).
 *
 * Config: "cni": {"conf_dir", "bin_dirs"}, and section "netd":
 *   "cni_plugin_timeout_seconds": 60   a plugin run is killed after this long
 */
#pragma once

#include <pthread.h>

#include "cni.h"
#include "common/config.h"
#include "pods.h"

struct netd {
	pthread_mutex_t lock; /* guards the settings below */
	char *conf_dir;
	char **bin_dirs;
	unsigned plugin_timeout_ms;
	struct pods *pods;
};

int netd_new(const struct cric_config *cfg, struct netd **ret, struct cric_err *err);
/* Accepts NULL. */
void netd_free(struct netd *n);
/* The settings of a new config; on error the old ones stay. */
int netd_set_config(struct netd *n, const struct cric_config *cfg, struct cric_err *err);

/* The CNI settings of this moment, copied: a reload may replace them while
 * a call runs its plugins. */
struct netd_settings {
	char *conf_dir;
	char **bin_dirs;
	struct cni_runtime rt;
};
int netd_settings_get(struct netd *n, struct netd_settings *s);
void netd_settings_done(struct netd_settings *s);
