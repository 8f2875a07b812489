/* AppArmor and SELinux: see lsm.h. */
#include "lsm.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"

#define APPARMOR_PROFILES "/sys/kernel/security/apparmor/profiles"

void ctr_lsm_detect(struct ctr_lsm *lsm)
{
	*lsm = (struct ctr_lsm){ 0 };
	_cleanup_free_ char *on = NULL;
	size_t len;
	/* The module is built in and enabled, and its securityfs is there. */
	lsm->apparmor = read_file("/sys/module/apparmor/parameters/enabled", 16, &on, &len) == 0 &&
			on[0] == 'Y' && access(APPARMOR_PROFILES, F_OK) == 0;
	lsm->selinux = access("/sys/fs/selinux/enforce", F_OK) == 0;
}

int ctr_lsm_apparmor_loaded(char **ret)
{
	size_t len;
	return read_file(APPARMOR_PROFILES, 4 * 1024 * 1024, ret, &len);
}

/* Whether profiles (the kernel's "name (mode)" lines) lists name. */
static bool apparmor_has(const char *profiles, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = profiles; p && *p;) {
		const char *eol = strchrnul(p, '\n');
		if ((size_t)(eol - p) > n + 1 && strncmp(p, name, n) == 0 && p[n] == ' ' &&
		    p[n + 1] == '(')
			return true;
		p = *eol ? eol + 1 : eol;
	}
	return false;
}

/* An AppArmor profile name: printable, no spaces, bounded. */
static bool apparmor_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= CTR_LSM_LABEL_MAX)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

enum aa_kind { AA_NONE, AA_DEFAULT, AA_UNCONFINED, AA_LOCALHOST };

/* The AppArmor choice of a SecurityProfile or the deprecated string. */
static int apparmor_kind(const Runtime__V1__SecurityProfile *p, const char *deprecated,
			 const char *field, enum aa_kind *kind, const char **name,
			 struct cric_err *err)
{
	*name = NULL;
	if (p) {
		switch (p->profile_type) {
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
			*kind = AA_DEFAULT;
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
			*kind = AA_UNCONFINED;
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
			*kind = AA_LOCALHOST;
			*name = p->localhost_ref ? p->localhost_ref : "";
			/* The kubelet's deprecated annotations had the prefix. */
			if (strncmp(*name, "localhost/", 10) == 0)
				*name += 10;
			break;
		default:
			return err_set(err, -EINVAL, "%s: unknown profile_type %d", field,
				       (int)p->profile_type);
		}
	} else if (!deprecated || !*deprecated) {
		*kind = AA_NONE;
		return 0;
	} else if (strcmp(deprecated, "runtime/default") == 0) {
		*kind = AA_DEFAULT;
		return 0;
	} else if (strcmp(deprecated, "unconfined") == 0) {
		*kind = AA_UNCONFINED;
		return 0;
	} else if (strncmp(deprecated, "localhost/", 10) == 0) {
		*kind = AA_LOCALHOST;
		*name = deprecated + 10;
	} else {
		return err_set(err, -EINVAL,
			       "apparmor_profile: not one of runtime/default, unconfined, "
			       "localhost/<profile>");
	}
	if (!apparmor_name_ok(*name))
		return err_set(err, -EINVAL,
			       "%s: Localhost needs a profile name (printable, no "
			       "spaces, under 256 bytes)",
			       field);
	return 0;
}

/* The profile of a process whose fields are prof (or the deprecated
 * string) and privileged, named field in messages. */
static int plan_apparmor(const Runtime__V1__SecurityProfile *prof, const char *deprecated,
			 bool privileged, const char *field, const struct ctr_lsm *lsm, char *out,
			 struct cric_err *err)
{
	enum aa_kind kind = AA_NONE;
	const char *name = NULL;
	int r = apparmor_kind(prof, deprecated, field, &kind, &name, err);
	if (r < 0)
		return r;
	if (kind == AA_NONE)
		kind = privileged ? AA_UNCONFINED : AA_DEFAULT;
	if (kind == AA_UNCONFINED || (kind == AA_DEFAULT && !lsm->apparmor))
		return 0;
	if (kind == AA_LOCALHOST && !lsm->apparmor)
		return err_set(err, -EINVAL,
			       "%s: Localhost profile \"%s\" asked, but this host has no AppArmor",
			       field, name);
	if (kind == AA_DEFAULT)
		name = CTR_APPARMOR_DEFAULT;
	if (!apparmor_has(lsm->apparmor_profiles, name))
		return err_set(err, kind == AA_DEFAULT ? -ENOPKG : -EINVAL,
			       "%s: AppArmor profile \"%s\" is not loaded%s%s%s", field, name,
			       kind == AA_DEFAULT && lsm->default_error[0] ? " (" : "",
			       kind == AA_DEFAULT ? lsm->default_error : "",
			       kind == AA_DEFAULT && lsm->default_error[0] ? ")" : "");
	snprintf(out, CTR_LSM_LABEL_MAX, "%s", name);
	return 0;
}

/* A part of an SELinux context: [A-Za-z0-9_.-], and for the level also
 * ':' and ',' ("s0:c1,c2"). */
static bool selinux_part_ok(const char *s, bool level)
{
	if (strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-' ||
		      (level && (*s == ':' || *s == ','))))
			return false;
	return true;
}

static bool empty(const char *s)
{
	return !s || !*s;
}

static int selinux_check(const Runtime__V1__SELinuxOption *o, const struct ctr_lsm *lsm,
			 const char *field, bool *asked, struct cric_err *err)
{
	*asked = o && !(empty(o->user) && empty(o->role) && empty(o->type) && empty(o->level));
	if (!*asked)
		return 0;
	if (!lsm->selinux)
		return err_set(err, -EINVAL,
			       "%s: an SELinux label is asked, but this host has no SELinux",
			       field);
	if (!selinux_part_ok(o->user ? o->user : "", false) ||
	    !selinux_part_ok(o->role ? o->role : "", false) ||
	    !selinux_part_ok(o->type ? o->type : "", false) ||
	    !selinux_part_ok(o->level ? o->level : "", true))
		return err_set(err, -EINVAL, "%s: not an SELinux user, role, type and level",
			       field);
	return 0;
}

static const char *or_default(const char *s, const char *dflt)
{
	return empty(s) ? dflt : s;
}

static int plan(const Runtime__V1__SecurityProfile *aa, const char *aa_deprecated, bool privileged,
		const Runtime__V1__SELinuxOption *o, const char *aa_field, const char *se_field,
		const struct ctr_lsm *lsm, struct ctr_lsm_plan *ret, struct cric_err *err)
{
	struct ctr_lsm_plan p = { { 0 } };
	int r = plan_apparmor(aa, aa_deprecated, privileged, aa_field, lsm, p.apparmor, err);
	if (r < 0)
		return r;
	bool asked = false;
	if ((r = selinux_check(o, lsm, se_field, &asked, err)) < 0)
		return r;
	if (asked && o) {
		const char *level = or_default(o->level, "s0");
		snprintf(p.process_label, sizeof(p.process_label), "%s:%s:%s:%s",
			 or_default(o->user, "system_u"), or_default(o->role, "system_r"),
			 or_default(o->type, "container_t"), level);
		snprintf(p.mount_label, sizeof(p.mount_label), "%s:object_r:container_file_t:%s",
			 or_default(o->user, "system_u"), level);
	}
	*ret = p;
	return 0;
}

int ctr_lsm_plan_container(const Runtime__V1__LinuxContainerSecurityContext *sc,
			   const struct ctr_lsm *lsm, struct ctr_lsm_plan *ret,
			   struct cric_err *err)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	const char *deprecated = sc ? sc->apparmor_profile : NULL;
#pragma GCC diagnostic pop
	const char *field = sc && sc->apparmor ? "apparmor" : "apparmor_profile";
	return plan(sc ? sc->apparmor : NULL, deprecated, sc && sc->privileged,
		    sc ? sc->selinux_options : NULL, field, "selinux_options", lsm, ret, err);
}

int ctr_lsm_plan_pod(const Runtime__V1__LinuxSandboxSecurityContext *sc, const struct ctr_lsm *lsm,
		     struct ctr_lsm_plan *ret, struct cric_err *err)
{
	return plan(sc ? sc->apparmor : NULL, NULL, sc && sc->privileged,
		    sc ? sc->selinux_options : NULL, "linux.security_context.apparmor",
		    "linux.security_context.selinux_options", lsm, ret, err);
}

int ctr_lsm_check_pod(const Runtime__V1__LinuxSandboxSecurityContext *sc, const struct ctr_lsm *lsm,
		      struct cric_err *err)
{
	if (!sc)
		return 0;
	enum aa_kind kind = AA_NONE;
	const char *name = NULL;
	int r =
	    apparmor_kind(sc->apparmor, NULL, "linux.security_context.apparmor", &kind, &name, err);
	if (r < 0)
		return r;
	if (kind == AA_LOCALHOST && !lsm->apparmor)
		return err_set(
		    err, -EINVAL,
		    "linux.security_context.apparmor: Localhost profile \"%s\" asked, but "
		    "this host has no AppArmor",
		    name);
	bool asked = false;
	return selinux_check(sc->selinux_options, lsm, "linux.security_context.selinux_options",
			     &asked, err);
}

/* Directories of the node no volume may relabel (the peers keep such a
 * list too): the root and the system trees. */
static bool relabel_forbidden(const char *p)
{
	static const char *const sys[] = { "/",        "/bin",    "/boot",  "/dev",     "/etc",
					   "/home",    "/lib",    "/lib64", "/opt",     "/proc",
					   "/root",    "/run",    "/sbin",  "/srv",     "/sys",
					   "/tmp",     "/usr",    "/var",   "/var/lib", "/var/log",
					   "/var/run", "/var/tmp" };
	for (size_t i = 0; i < sizeof(sys) / sizeof(*sys); i++)
		if (strcmp(p, sys[i]) == 0)
			return true;
	return false;
}

int ctr_lsm_plan_relabels(const Runtime__V1__ContainerConfig *cfg, char *const *host_paths,
			  const struct ctr_lsm *lsm, const struct ctr_lsm_plan *plan,
			  struct ctr_relabel *ret, size_t *n, struct cric_err *err)
{
	*n = 0;
	if (!lsm->selinux)
		return 0;
	const char *label =
	    plan && plan->mount_label[0] ? plan->mount_label : CTR_SELINUX_FILE_DEFAULT;
	size_t k = 0;
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		if (!cfg->mounts[i]->selinux_relabel)
			continue;
		const char *p = host_paths ? host_paths[i] : NULL;
		if (!p)
			return err_set(err, -EINVAL, "mounts[%zu].host_path is required", i);
		if (relabel_forbidden(p))
			return err_set(
			    err, -EINVAL,
			    "mounts[%zu].selinux_relabel: relabelling the node's \"%s\" is "
			    "not allowed",
			    i, p);
		ret[k].path = p;
		snprintf(ret[k].label, sizeof(ret[k].label), "%s", label);
		k++;
	}
	*n = k;
	return 0;
}

#define RELABEL_DEPTH_MAX 64

static int set_label(const char *path, const char *label)
{
	if (lsetxattr(path, "security.selinux", label, strlen(label) + 1, 0) < 0 &&
	    errno != ENOTSUP)
		return negative_errno();
	return 0;
}

/* path (a directory on device dev) and everything under it. */
static int relabel_tree(const char *path, dev_t dev, const char *label, int depth)
{
	int r = set_label(path, label);
	if (r < 0)
		return r;
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return negative_errno();
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		_cleanup_free_ char *sub = path_join(path, e->d_name);
		if (!sub)
			return -ENOMEM;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (st.st_dev != dev)
			continue; /* another filesystem mounted inside: not ours */
		if (S_ISDIR(st.st_mode))
			r = depth < RELABEL_DEPTH_MAX ? relabel_tree(sub, dev, label, depth + 1)
						      : -ELOOP;
		else
			r = set_label(sub, label);
		if (r < 0)
			return r;
	}
	return 0;
}

int ctr_lsm_relabel(const struct ctr_relabel *rl, struct cric_err *err)
{
	struct stat st;
	int r = lstat(rl->path, &st) < 0 ? negative_errno()
		: S_ISDIR(st.st_mode)    ? relabel_tree(rl->path, st.st_dev, rl->label, 0)
					 : set_label(rl->path, rl->label);
	if (r < 0)
		return err_set(err, r, "relabel \"%s\" to \"%s\": %s", rl->path, rl->label,
			       strerror(-r));
	return 0;
}
