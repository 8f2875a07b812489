#include "netd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/macro.h"

#define PLUGIN_TIMEOUT_KEY "cni_plugin_timeout_seconds"

void netd_free(struct netd *n)
{
	if (!n)
		return;
	pods_free(n->pods);
	free(n->conf_dir);
	strv_free(n->bin_dirs);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

/* "netd": {"cni_plugin_timeout_seconds": N}, 1..3600, default 60. */
static int plugin_timeout_ms(const struct cric_config *cfg, unsigned *ret, struct cric_err *err)
{
	const json_t *v = json_object_get(json_object_get(cfg->doc, "netd"), PLUGIN_TIMEOUT_KEY);
	if (!v) {
		*ret = CNI_DEFAULT_TIMEOUT_MS;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 3600)
		return config_bad_key(cfg, "netd", PLUGIN_TIMEOUT_KEY, "an integer from 1 to 3600",
				      err);
	*ret = (unsigned)json_integer_value(v) * 1000;
	return 0;
}

int netd_set_config(struct netd *n, const struct cric_config *cfg, struct cric_err *err)
{
	unsigned timeout_ms = CNI_DEFAULT_TIMEOUT_MS;
	int r = plugin_timeout_ms(cfg, &timeout_ms, err);
	if (r < 0)
		return r;
	char *dir = strdup(cfg->cni_conf_dir);
	char **bins = strv_copy(cfg->cni_bin_dirs);
	if (!dir || !bins) {
		free(dir);
		strv_free(bins);
		return -ENOMEM;
	}
	pthread_mutex_lock(&n->lock);
	free(n->conf_dir);
	strv_free(n->bin_dirs);
	n->conf_dir = dir;
	n->bin_dirs = bins;
	n->plugin_timeout_ms = timeout_ms;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

void netd_settings_done(struct netd_settings *s)
{
	free(s->conf_dir);
	strv_free(s->bin_dirs);
}

int netd_settings_get(struct netd *n, struct netd_settings *s)
{
	pthread_mutex_lock(&n->lock);
	s->conf_dir = strdup(n->conf_dir);
	s->bin_dirs = strv_copy(n->bin_dirs);
	s->rt.timeout_ms = n->plugin_timeout_ms;
	pthread_mutex_unlock(&n->lock);
	s->rt.bin_dirs = s->bin_dirs;
	return s->conf_dir && s->bin_dirs ? 0 : -ENOMEM;
}

int netd_new(const struct cric_config *cfg, struct netd **ret, struct cric_err *err)
{
	struct netd *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	_cleanup_free_ char *state = path_join(cfg->state_dir, "netd");
	_cleanup_free_ char *run = path_join(cfg->run_dir, "netd");
	int r = state && run ? netd_set_config(n, cfg, err) : -ENOMEM;
	if (r == 0) {
		const struct cni_runtime rt = { .bin_dirs = n->bin_dirs,
						.timeout_ms = n->plugin_timeout_ms };
		r = pods_open(state, run, &rt, &n->pods, err);
	}
	if (r < 0) {
		netd_free(n);
		return r;
	}
	*ret = n;
	return 0;
}
