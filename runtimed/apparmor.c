/* The cric-default AppArmor profile; see apparmor.h. */
#include "apparmor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/spawn.h"

/* Our own text: the rules say what they are for. */
static const char profile[] =
    "# " CTR_APPARMOR_DEFAULT ": the profile cric gives containers that ask for\n"
    "# RuntimeDefault. Written by cric-runtimed at start; edits are lost.\n"
    "#include <tunables/global>\n"
    "\n"
    "profile " CTR_APPARMOR_DEFAULT " flags=(attach_disconnected,mediate_deleted) {\n"
    "  #include <abstractions/base>\n"
    "\n"
    "  # What capabilities, namespaces and seccomp already bound.\n"
    "  file,\n"
    "  network,\n"
    "  capability,\n"
    "\n"
    "  # The runtime made the container's mounts; the container makes none.\n"
    "  deny mount,\n"
    "  deny umount,\n"
    "  deny pivot_root,\n"
    "\n"
    "  # Signals and tracing within the profile; the runtime may signal.\n"
    "  signal (send, receive) peer=" CTR_APPARMOR_DEFAULT ",\n"
    "  signal (receive) peer=unconfined,\n"
    "  ptrace (trace, read, tracedby, readby) peer=" CTR_APPARMOR_DEFAULT ",\n"
    "\n"
    "  # The node's kernel knobs and views.\n"
    "  deny @{PROC}/* w,\n"
    "  deny @{PROC}/sys/** w,\n"
    "  deny @{PROC}/{kcore,kmsg,sysrq-trigger,timer_list} rwklx,\n"
    "  deny /sys/{block,bus,class,dev,devices,firmware,hypervisor,kernel,module,power}/** wl,\n"
    "  deny /sys/fs/[^c]*/** wl,\n"
    "  deny /sys/firmware/** r,\n"
    "  deny /sys/kernel/{debug,security}/** r,\n"
    "}\n";

const char *ctr_apparmor_default_profile(void)
{
	return profile;
}

bool ctr_apparmor_should_load(const struct ctr_lsm *lsm)
{
	return lsm->apparmor;
}

/* The parser's first line saying "error" (or its first line), bounded. */
static void first_error(const char *text, char *buf, size_t size)
{
	const char *p = strstr(text, "error");
	const char *line = text;
	if (p) {
		while (p > text && p[-1] != '\n')
			p--;
		line = p;
	}
	size_t n = strcspn(line, "\n");
	snprintf(buf, size, "%.*s", (int)(n < 300 ? n : 300), line);
}

int ctr_apparmor_install(const char *parser, const char *dir, enum ctr_apparmor_mode mode,
			 struct cric_err *err)
{
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return err_set(err, r, "create \"%s\": %s", dir, strerror(-r));
	_cleanup_free_ char *path = path_join(dir, CTR_APPARMOR_DEFAULT);
	if (!path)
		return -ENOMEM;
	if ((r = write_file_atomic(path, profile, strlen(profile), 0600)) < 0)
		return err_set(err, r, "write \"%s\": %s", path, strerror(-r));
	char *load[] = { (char *)parser, "-r", path, NULL };
	char *check[] = { (char *)parser, "-Q", "-K", path, NULL };
	char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	const struct spawn_req req = {
		.path = parser,
		.argv = mode == CTR_APPARMOR_LOAD ? load : check,
		.env = env,
		.timeout_ms = 30000,
	};
	struct spawn_result res;
	struct cric_err e;
	r = spawn_run(&req, &res, &e);
	if (r == -ENOENT)
		return err_set(err, r, "%s: not found (install AppArmor's userspace tools)",
			       parser);
	if (r < 0)
		return err_set(err, r, "run %s: %s", parser, e.msg);
	int status = res.status;
	char why[320];
	first_error(res.errout, why, sizeof(why));
	spawn_result_done(&res);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(err, -EINVAL, "%s %s \"%s\" failed: %s", parser,
			       mode == CTR_APPARMOR_LOAD ? "-r" : "-Q -K", path,
			       *why ? why : "no message");
	return 0;
}
