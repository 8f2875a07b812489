/* Fuzz the suite configuration loader (common/config.c): config_load() with
 * arbitrary bytes as the main config file. Errors are fine; crashes, leaks
 * and undefined behaviour are not.
 *
 * The input is written to <tmp>/etc/cric/cric.json, where <tmp> is one
 * directory per fuzzer process (created on first use, removed at exit) that
 * also serves as --root. Nothing else is ever created there, so no drop-ins
 * (<tmp>/etc/cric/cric.d/) exist and every run sees the same file system. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"

static char root[PATH_MAX];
static char etc_cric[PATH_MAX + 16];
static char etc[PATH_MAX + 16];
static char path[PATH_MAX + 32];

static void cleanup_tmp(void)
{
	unlink(path);
	rmdir(etc_cric);
	rmdir(etc);
	rmdir(root);
}

static void setup_tmp(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/cric-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("fuzz-config: mkdtemp");
		abort();
	}
	snprintf(etc, sizeof(etc), "%s/etc", root);
	snprintf(etc_cric, sizeof(etc_cric), "%s/etc/cric", root);
	snprintf(path, sizeof(path), "%s/etc/cric/cric.json", root);
	if (mkdir(etc, 0700) < 0 || mkdir(etc_cric, 0700) < 0) {
		perror("fuzz-config: mkdir");
		abort();
	}
	atexit(cleanup_tmp);
}

static void write_input(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("fuzz-config: open");
		abort();
	}
	while (size > 0) {
		ssize_t k = write(fd, data, size);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			perror("fuzz-config: write");
			abort();
		}
		data += k;
		size -= (size_t)k;
	}
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Unknown keys log a warning per run: keep the fuzzer's output readable. */
	log_set_level(LOG_ERR);
	setup_tmp();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cric_config *c = NULL;
	struct cric_err err;
	memset(err.msg, 'x', sizeof(err.msg));

	write_input(data, size);
	int r = config_load(root, path, &c, &err);
	if (r < 0) {
		/* Outputs untouched on failure; every failure but OOM says why. */
		if (c || (r != -ENOMEM && !memchr(err.msg, '\0', sizeof(err.msg))))
			abort();
		return 0;
	}
	if (r != 0)
		abort();
	if (!c || !c->state_dir || !c->run_dir || !c->ipc_dir || !c->cri_socket ||
	    !c->cni_conf_dir || !c->cni_bin_dirs || c->workers < 1 || c->workers > 256)
		abort();
	char *url = config_ipc_url(c, "netd");
	free(url);
	config_free(c);
	return 0;
}
