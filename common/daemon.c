#include "daemon.h"

#include <getopt.h>
#include <signal.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "fsutil.h"
#include "log.h"
#include "sdproto.h"

int daemon_parse_args(const char *name, int argc, char **argv, struct daemon_args *a)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	memset(a, 0, sizeof(*a));
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "r:c:l:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			a->root = optarg;
			break;
		case 'c':
			a->config = optarg;
			break;
		case 'l':
			a->log_level = optarg;
			break;
		case 'V':
			printf("cric-%s %s\n", name, CRIC_VERSION);
			return 0;
		case 'h':
			printf("Usage: cric-%s [--root DIR] [--config FILE] [--log-level LEVEL]\n"
			       "  --root DIR      put every default path under DIR\n"
			       "  --config FILE   main config (default <root>/etc/cric/cric.json)\n"
			       "  --log-level L   debug|info|notice|warning|error\n",
			       name);
			return 0;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cric-%s: unexpected argument \"%s\"\n", name, argv[optind]);
		return -EINVAL;
	}
	return 1;
}

void daemon_block_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void daemon_wait_signals(void (*on_hup)(void *arg), void *arg)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig < 0)
			continue; /* EINTR */
		if (sig == SIGHUP) {
			if (on_hup)
				on_hup(arg);
			continue;
		}
		log_info("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		return;
	}
}

struct daemon_state {
	const struct cric_daemon_desc *desc;
	struct daemon_args args;
	void *userdata;
};

int daemon_prepare(const char *name, const char *ident, int argc, char **argv,
		   struct daemon_args *a, struct cric_config **ret)
{
	struct cric_err err = { { 0 } };
	/* Before any thread: glibc gives each thread that meets contention an
	 * arena of its own (up to 8 per core), which keeps what it once held.
	 * Two bound that; measured with the bench (60 pod cycles, then a
	 * 4,000-call burst): 35.7 MiB PSS of the six daemons before, 33.0
	 * after; the calls are short, so the lock is rarely contended. */
	(void)mallopt(M_ARENA_MAX, 2);
	log_open(ident);
	/* The process name scripts look for (cric-up, cric-down), also when a
	 * wrapper such as valgrind exec'd us under its own. */
	char comm[16];
	snprintf(comm, sizeof(comm), "cric-%s", name);
	(void)prctl(PR_SET_NAME, comm);
	int r = daemon_parse_args(name, argc, argv, a);
	if (r <= 0)
		return r < 0 ? 2 : 0;
	if (a->log_level && log_set_level_name(a->log_level) < 0) {
		log_error("unknown log level \"%s\"", a->log_level);
		return 2;
	}
	if (config_load(a->root, a->config, ret, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	if (!a->log_level)
		log_set_level_name((*ret)->log_level);
	return -1;
}

struct cric_config *daemon_reload_begin(const struct daemon_args *a)
{
	struct cric_err err = { { 0 } };
	struct cric_config *cfg = NULL;

	sd_proto_notify("RELOADING=1");
	if (config_load(a->root, a->config, &cfg, &err) < 0) {
		log_error("reload: %s; keeping the running configuration", err.msg);
		return NULL;
	}
	log_set_level_name(a->log_level ? a->log_level : cfg->log_level);
	return cfg;
}

void daemon_reload_done(void)
{
	sd_proto_notify("READY=1");
}

static void reload(void *arg)
{
	struct daemon_state *st = arg;
	struct cric_err err = { { 0 } };
	struct cric_config *cfg = daemon_reload_begin(&st->args);
	if (cfg) {
		if (!st->desc->reload)
			log_info("log level reloaded from \"%s\" (the rest of the configuration "
				 "applies at the next start)",
				 cfg->config_file);
		else if (st->desc->reload(st->userdata, cfg, &err) < 0)
			log_error("reload: %s; keeping the running configuration", err.msg);
		else
			log_info("configuration reloaded from \"%s\"", cfg->config_file);
		config_free(cfg);
	}
	daemon_reload_done();
}

/* mkdir -p path, then (as root) make it exactly mode uid:gid. */
static int own_dir(const char *path, mode_t mode, uid_t uid, gid_t gid, bool tree,
		   struct cric_err *err)
{
	int r = mkdir_p(path, mode);
	if (r < 0)
		return err_set(err, r, "create \"%s\": %s", path, strerror(-r));
	if (geteuid() != 0)
		return 0;
	struct stat st;
	if (lstat(path, &st) < 0)
		return err_set(err, -errno, "stat \"%s\": %m", path);
	/* A daemon that ran as root before leaves files its user must own. */
	if (tree && (st.st_uid != uid || st.st_gid != gid))
		r = chown_tree(path, uid, gid);
	else if (st.st_uid != uid || st.st_gid != gid)
		r = lchown(path, uid, gid) < 0 ? -errno : 0;
	if (r == 0 && (st.st_mode & 07777) != mode && chmod(path, mode) < 0)
		r = -errno;
	if (r < 0)
		return err_set(err, r, "give \"%s\" to %ld:%ld mode %04o: %s", path, (long)uid,
			       (long)gid, (unsigned)mode, strerror(-r));
	return 0;
}

/* As root: link (the daemon's well-known socket path) -> target. A live
 * socket there is another daemon's: refused. */
static int place_link(const char *link, const char *target, struct cric_err *err)
{
	char cur[PATH_MAX];
	ssize_t n = readlink(link, cur, sizeof(cur) - 1);
	if (n > 0) {
		cur[n] = '\0';
		if (strcmp(cur, target) == 0)
			return 0;
	}
	struct stat st;
	if (lstat(link, &st) == 0) {
		if (S_ISSOCK(st.st_mode) && !unix_socket_is_stale(link))
			return err_set(err, -EADDRINUSE, "\"%s\" is in use", link);
		if (!S_ISSOCK(st.st_mode) && !S_ISLNK(st.st_mode))
			return err_set(err, -EEXIST, "\"%s\" exists and is not a socket", link);
		if (unlink(link) < 0 && errno != ENOENT)
			return err_set(err, -errno, "remove \"%s\": %m", link);
	}
	if (symlink(target, link) < 0)
		return err_set(err, -errno, "link \"%s\" to \"%s\": %m", link, target);
	return 0;
}

int daemon_identity_setup(const struct cric_config *cfg, const char *name, const char *sock_name,
			  const char *public_path, unsigned flags, struct daemon_identity *ret,
			  struct cric_err *err)
{
	bool for_group = flags & DAEMON_SOCKET_FOR_GROUP;
	struct daemon_identity id = { .uid = 0, .gid = 0, .group = cfg->group_gid };
	id.as_user = config_daemon_user(cfg, name, &id.uid, &id.gid);
	/* Primary group cric, as the units' Group=cric: what the daemon makes
	 * is the group's (its own dirs decide who reaches it). */
	if (id.as_user && id.group != (gid_t)-1)
		id.gid = id.group;
	if (id.as_user && id.uid == (uid_t)-1)
		return err_set(err, -ENOENT,
			       "the user cric-%s runs as, \"%s\", does not exist: create it "
			       "(deploy/install-deps, make install) or set \"%s_user\": \"\" "
			       "to run it as root",
			       name,
			       strcmp(name, "gateway") == 0 ? cfg->gateway_user : cfg->imaged_user,
			       name);
	uid_t euid = geteuid();
	if (euid != 0 && (!id.as_user || euid != id.uid))
		return err_set(err, -EPERM,
			       "cric-%s must be started as root%s (running as uid %ld)", name,
			       id.as_user ? " or as its user" : "", (long)euid);

	_cleanup_free_ char *state = path_join(cfg->state_dir, name);
	_cleanup_free_ char *run = path_join(cfg->run_dir, name);
	if (!state || !run)
		return -ENOMEM;
	gid_t group = id.group != (gid_t)-1 ? id.group : 0;
	/* Set-group-ID: the sockets made there are group cric's. netd has no
	 * CAP_CHOWN: when it made the directory first, the next daemon that
	 * has it (stored, runtimed, monitord, or the gateway and imaged while
	 * still root) fixes it. */
	int r = own_dir(cfg->ipc_dir, id.group != (gid_t)-1 ? 02750 : 0755, 0, group, false, err);
	if (r == -EPERM) {
		log_warning("%s, leaving it to a daemon that may", err->msg);
		r = 0;
	}
	if (r == 0 && !(flags & DAEMON_NO_STATE))
		r = own_dir(state, 0700, id.uid, id.gid, id.as_user, err);
	if (r == 0)
		r = own_dir(run, id.as_user && for_group ? 02750 : 0700, id.uid, id.gid, id.as_user,
			    err);
	if (r < 0)
		return r;

	const char *listen = public_path;
	char path[PATH_MAX];
	if (id.as_user) {
		if (snprintf(path, sizeof(path), "%s/%s", run, sock_name) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		listen = path;
		if (euid == 0 && (r = place_link(public_path, path, err)) < 0)
			return r;
	}
	if (strlen(listen) >= sizeof(id.listen_path))
		return err_set(err, -ENAMETOOLONG, "socket path \"%s\" too long", listen);
	snprintf(id.listen_path, sizeof(id.listen_path), "%s", listen);
	if (id.as_user && euid == 0 && (r = caps_become_user(id.uid, id.gid, id.group, err)) < 0)
		return r;
	*ret = id;
	return 0;
}

int daemon_main(const struct cric_daemon_desc *desc, int argc, char **argv)
{
	struct daemon_state st = { .desc = desc };
	struct cric_err err = { { 0 } };
	_cleanup_(config_freep) struct cric_config *cfg = NULL;
	struct cric_server *server = NULL;

	int r = daemon_prepare(desc->name, desc->name, argc, argv, &st.args, &cfg);
	if (r >= 0)
		return r;

	/* A wrong method table stops the daemon before it touches anything
	 * (the server builds it again when it starts). */
	struct cric_method_table table = { 0 };
	if ((r = cric_method_table_build(desc->name, desc->services, desc->n_services, &table,
					 &err)) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	cric_method_table_done(&table);

	daemon_block_signals();
	struct daemon_identity id;
	_cleanup_free_ char *public_path = NULL;
	if (asprintf(&public_path, "%s/%s.sock", cfg->ipc_dir, desc->name) < 0) {
		log_error("out of memory");
		return 1;
	}
	_cleanup_free_ char *sock_name = NULL;
	if (asprintf(&sock_name, "%s.sock", desc->name) < 0) {
		log_error("out of memory");
		return 1;
	}
	if ((r = daemon_identity_setup(cfg, desc->name, sock_name, public_path,
				       DAEMON_SOCKET_FOR_GROUP, &id, &err)) < 0 ||
	    (r = caps_restrict(desc->caps, desc->n_caps, desc->all_caps, desc->no_new_privs,
			       &err)) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	if (desc->init && (r = desc->init(cfg, &st.userdata, &err)) < 0) {
		log_error("init: %s", err.msg);
		return 1;
	}

	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "ipc://%s", id.listen_path) < 0)
		url = NULL;
	struct cric_server_config scfg = {
		.daemon = desc->name,
		.version = CRIC_VERSION,
		.url = url,
		.ids = { .gateway_uid = cfg->gateway_uid,
			 .imaged_uid = cfg->imaged_uid,
			 .group_gid = cfg->group_gid },
		.workers = cfg->workers,
		.services = desc->services,
		.n_services = desc->n_services,
		.userdata = st.userdata,
		.cancelled = desc->cancelled,
	};
	if (!url || (r = cric_server_start(&scfg, &server, &err)) < 0) {
		log_error("%s", url ? err.msg : "out of memory");
		if (desc->done)
			desc->done(st.userdata);
		return 1;
	}

	log_info("cric %s %s ready on %s (%u workers, uid %ld)", desc->name, CRIC_VERSION, url,
		 cfg->workers, (long)geteuid());
	sd_proto_notifyf("READY=1\nSTATUS=serving on %s\nMAINPID=%d", url, (int)getpid());

	daemon_wait_signals(reload, &st);

	sd_proto_notify("STOPPING=1");
	if (desc->stopping)
		desc->stopping(st.userdata);
	cric_server_stop(server);
	if (desc->done)
		desc->done(st.userdata);
	log_info("stopped");
	return 0;
}
