/* CDI (Container Device Interface) devices of a container: CDI_devices
 * names ("vendor.com/class=name") resolved from the CDI spec files in
 * the configured directories (runtimed's "cdi_spec_dirs", by default
 * /etc/cdi then /var/run/cdi: a later directory's device of the same
 * name wins), JSON (*.json) or YAML (*.yaml, *.yml).
 *
 * What a device brings is its spec's containerEdits and its own: env,
 * deviceNodes, mounts and hooks (additionalGids and intelRdt are refused
 * when a requested device has them: never a silently weaker container).
 * The edits come back as one JSON object the plan applies
 * (ctr_plan_devices_and_cdi in ctrplan.h):
 *
 *   {"env": ["K=V", ...],
 *    "deviceNodes": [{"path", "type" ("c"/"b"), "major", "minor",
 *                     "permissions", ["fileMode", "uid", "gid"]}, ...],
 *    "mounts": [{"hostPath", "containerPath", "type", "options": [...]}],
 *    "hooks": [{"hookName", "path", ["args", "env", "timeout"]}, ...]}
 *
 * Spec files are hostile input: at most CDI_SPEC_MAX bytes, nesting and
 * node counts bounded, YAML aliases refused, every field checked before
 * use. A file that does not parse or check is skipped with a warning (as
 * the reference registry does); a requested name no file provides is
 * -EINVAL naming it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define CDI_SPEC_MAX    (1 << 20)
#define CDI_MAX_FILES   256
#define CDI_MAX_DEVICES 128 /* CDI_devices of one container */

/* Pure: a spec file's text (YAML when yaml, else JSON) parsed and
 * checked into *ret. -EINVAL with err saying what is wrong. */
int cdi_spec_parse(const char *text, size_t len, bool yaml, json_t **ret, struct cric_err *err);

/* Pure: YAML text as JSON (mappings with string keys, sequences,
 * scalars: plain true/false/null/integers typed, everything else a
 * string); the first document only. -EINVAL for what it cannot be. */
int cdi_yaml_to_json(const char *text, size_t len, json_t **ret, struct cric_err *err);

/* Pure: the edits of the named devices (sources[i] says where names[i]
 * came from in messages; NULL: "CDI_devices[i]") out of specs (an array of parsed
 * specs, later ones winning for a name): the spec-level edits once per
 * spec, then each device's. Device nodes are left as the spec says
 * (type/major/minor may be missing: cdi_resolve fills them in). */
int cdi_edits_for(const json_t *specs, char *const *names, char *const *sources, size_t n,
		  json_t **ret, struct cric_err *err);

/* What a container asks for: its CDI_devices, then the names of its
 * annotations "cdi.k8s.io/<anything>" (the CDI annotation format the
 * kubelet's device plugin path and the CDI producer library write: the
 * value a comma-separated list of fully-qualified names
 * "vendor.com/class=name"), a name already asked for not again (as
 * containerd merges the two). names[i] points into the inputs; sources[i]
 * is where it came from, for messages ("CDI_devices[0]", "annotation
 * \"cdi.k8s.io/x\""), CDI_SOURCE_MAX bytes each. Both arrays hold
 * CDI_MAX_DEVICES. Pure. A malformed name in an annotation: -EINVAL
 * naming the annotation; more than CDI_MAX_DEVICES in all: -E2BIG. */
#define CDI_ANNOTATION_PREFIX "cdi.k8s.io/"
#define CDI_SOURCE_MAX        320
struct cdi_request {
	char *names[CDI_MAX_DEVICES];
	char *sources[CDI_MAX_DEVICES];
	char source_buf[CDI_MAX_DEVICES][CDI_SOURCE_MAX];
	char *name_buf; /* the annotations' values, split (owned) */
	size_t n;
};
int cdi_request_collect(char *const *field, size_t n_field, char *const *ann_keys,
			char *const *ann_values, size_t n_ann, struct cdi_request *ret,
			struct cric_err *err);
void cdi_request_done(struct cdi_request *r);

/* The edits for names (n of them) from the spec files under dirs (NULL
 * terminated); device nodes without type/major/minor completed from the
 * host node (hostPath, else path), which must exist. */
int cdi_resolve(char *const *dirs, char *const *names, char *const *sources, size_t n, json_t **ret,
		struct cric_err *err);
