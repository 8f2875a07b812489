/* CNI network configuration discovery (CNI spec: network configuration
 * lists). The lexically first valid .conflist/.conf/.json file of the conf
 * dir is the pod network; invalid files are skipped with a warning, as libcni
 * does. A network is usable when every plugin it chains exists as an
 * executable in one of the bin dirs. */
#pragma once

#include <stdbool.h>

#include "common/error.h"

#define CNI_CONF_MAX_BYTES (1024 * 1024)
#define CNI_MAX_PLUGINS    32

struct cni_network {
	char file[4096];
	char name[256];
	char cni_version[32];
	unsigned n_plugins;
	char plugins[CNI_MAX_PLUGINS][64]; /* plugin "type"s, in chain order */
};

/* Parse one config file's content (a conflist, or a single-plugin conf which
 * becomes a one-plugin list). -EINVAL with err filled if it is not valid. */
int cni_network_parse(const char *content, size_t len, bool is_list, struct cni_network *net,
		      struct cric_err *err);

/* Find the network in conf_dir. 0: found and usable. -ENOENT: no valid config
 * (err says why). -ENOEXEC: found, but a plugin binary is missing (err names
 * it; net filled). */
int cni_network_find(const char *conf_dir, char *const *bin_dirs, struct cni_network *net,
		     struct cric_err *err);
