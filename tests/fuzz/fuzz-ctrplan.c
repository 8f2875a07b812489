/* Fuzz CreateContainer's plan (runtimed/ctrplan.c) with whatever decodes as
 * a ContainerConfig, against a fixed image config and passwd/group text:
 * the checks, the user, and the OCI spec must refuse or accept without
 * crashing; what they accept must be safe to build on (a clean log path
 * under the pod's log directory, absolute mount destinations, args that
 * start with a command). Refusals say why. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "runtimed/ctrplan.h"

static const char image_json[] =
    "{\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"true\"],"
    "\"Env\":[\"PATH=/bin\",\"A=1\"],\"User\":\"app:staff\",\"WorkingDir\":\"/w\","
    "\"StopSignal\":\"SIGQUIT\"}}";
static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
static const char group[] = "root:x:0:\nstaff:x:50:app\nvideo:x:44:app\n";

static void check_spec(const json_t *s)
{
	const json_t *args = json_object_get(json_object_get(s, "process"), "args");
	const char *a0 = json_string_value(json_array_get(args, 0));
	if (!a0 || !*a0)
		abort();
	size_t i;
	const json_t *m;
	json_array_foreach (json_object_get(s, "mounts"), i, m) {
		const char *d = json_string_value(json_object_get(m, "destination"));
		if (!d || !path_is_clean(d, true, PATH_MAX))
			abort();
	}
}

static void plan(const Runtime__V1__ContainerConfig *cfg, const json_t *img)
{
	static const struct ctr_pod pod = {
		.id = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
		.name = "web",
		.namespace = "default",
		.uid = "u",
		.hostname = "web",
		.dir = "/run/pod",
		.log_directory = "/var/log/pods/x",
		.infra_pid = 42,
		.netns = "/run/netns/x",
		.ipc_pin = "/run/ipc",
		.uts_pin = "/run/uts",
		.cgroup = "/cric/pod",
		.cgroup_parent = "",
	};
	char name[1024], log[PATH_MAX];
	struct cric_err err = { { 0 } };
	int r = ctr_plan_check(cfg, &pod, name, sizeof(name), log, sizeof(log), &err);
	if (r < 0) {
		if (r != -EINVAL || !err.msg[0])
			abort();
		return;
	}
	if (log[0] &&
	    (strncmp(log, "/var/log/pods/x/", 16) != 0 || !path_is_clean(log, true, PATH_MAX)))
		abort();
	struct ctr_user_spec us;
	struct ctr_user u;
	if (ctr_plan_user(cfg, img, &us, &err) < 0 ||
	    ctr_user_lookup(&us, passwd, group, &u, &err) < 0)
		return;
	char *paths[CTR_MAX_MOUNTS + 1] = { 0 };
	for (size_t i = 0; i < cfg->n_mounts && i < CTR_MAX_MOUNTS; i++)
		paths[i] = "/srv/host";
	const struct ctr_plan_in in = { .id = pod.id,
					.cfg = cfg,
					.pod = &pod,
					.image_config = img,
					.rootfs = "/rootfs",
					.user = &u,
					.host_paths = paths,
					.nofile = 1024,
					.caps_defaults = 0x20fb,
					.caps_grantable = (1ULL << 41) - 1 };
	json_t *s = NULL;
	r = ctr_plan_spec(&in, &s, &err);
	if (r == 0)
		check_spec(s);
	else if (!err.msg[0] && r != -ENOMEM)
		abort();
	json_decref(s);
	(void)ctr_plan_stop_signal(cfg, img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	Runtime__V1__ContainerConfig *cfg = runtime__v1__container_config__unpack(NULL, size, data);
	if (!cfg)
		return 0;
	json_t *img = json_loads(image_json, 0, NULL);
	if (img)
		plan(cfg, img);
	json_decref(img);
	runtime__v1__container_config__free_unpacked(cfg, NULL);
	return 0;
}
