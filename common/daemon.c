#include "daemon.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "caps.h"
#include "fsutil.h"
#include "log.h"

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

	sd_notify(0, "RELOADING=1");
	if (config_load(a->root, a->config, &cfg, &err) < 0) {
		log_error("reload: %s; keeping the running configuration", err.msg);
		return NULL;
	}
	log_set_level_name(a->log_level ? a->log_level : cfg->log_level);
	return cfg;
}

void daemon_reload_done(void)
{
	sd_notify(0, "READY=1");
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

static int make_dirs(const struct cric_config *cfg, const char *name, struct cric_err *err)
{
	_cleanup_free_ char *state = path_join(cfg->state_dir, name);
	_cleanup_free_ char *run = path_join(cfg->run_dir, name);
	if (!state || !run)
		return -ENOMEM;
	const struct {
		const char *path;
		mode_t mode;
	} dirs[] = {
		{ state, 0700 },
		{ run, 0700 },
		{ cfg->ipc_dir, 0755 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int r = mkdir_p(dirs[i].path, dirs[i].mode);
		if (r < 0)
			return err_set(err, r, "create \"%s\": %s", dirs[i].path, strerror(-r));
	}
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
	if ((r = make_dirs(cfg, desc->name, &err)) < 0 ||
	    (r = caps_restrict(desc->caps, desc->n_caps, desc->all_caps, desc->no_new_privs,
			       &err)) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	if (desc->init && (r = desc->init(cfg, &st.userdata, &err)) < 0) {
		log_error("init: %s", err.msg);
		return 1;
	}

	_cleanup_free_ char *url = config_ipc_url(cfg, desc->name);
	struct cric_server_config scfg = {
		.daemon = desc->name,
		.version = CRIC_VERSION,
		.url = url,
		.allowed_uid = cfg->service_uid,
		.workers = cfg->workers,
		.services = desc->services,
		.n_services = desc->n_services,
		.userdata = st.userdata,
	};
	if (!url || (r = cric_server_start(&scfg, &server, &err)) < 0) {
		log_error("%s", url ? err.msg : "out of memory");
		if (desc->done)
			desc->done(st.userdata);
		return 1;
	}

	log_info("cric %s %s ready on %s (%u workers)", desc->name, CRIC_VERSION, url,
		 cfg->workers);
	sd_notifyf(0, "READY=1\nSTATUS=serving on %s\nMAINPID=%d", url, (int)getpid());

	daemon_wait_signals(reload, &st);

	sd_notify(0, "STOPPING=1");
	cric_server_stop(server);
	if (desc->done)
		desc->done(st.userdata);
	log_info("stopped");
	return 0;
}
