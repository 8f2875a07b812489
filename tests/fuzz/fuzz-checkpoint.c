/* Fuzz a checkpoint archive given to CreateContainer (runtimed/checkpoint.c):
 * arbitrary bytes as the archive, checked (ckpt_archive_is_checkpoint) and
 * unpacked (ckpt_archive_extract) into a fresh <base>/out per input, beside
 * a file <base>/canary. After each input, whatever the outcome:
 *  - the canary is unchanged and <base> holds nothing but canary, in and
 *    out (nothing lands outside out/: no "..", absolute name or link);
 *  - out/ holds only regular files and directories;
 *  - the contract holds: 0 with an image name, or a negative errno with a
 *    message and no image.
 * Seeds: small archives in tests/fuzz/corpus/fuzz-checkpoint/, some of
 * them hostile (".." members, absolute names, links). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtimed/checkpoint.h"

static char base[PATH_MAX], in[PATH_MAX + 8], out[PATH_MAX + 8], canary[PATH_MAX + 8];
static const char canary_text[] = "do not touch";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static int only_files(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)p;
	(void)ftw;
	if (flag != FTW_F && flag != FTW_D && flag != FTW_DP)
		abort();
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		abort();
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(base, sizeof(base), "%s/fuzz-checkpoint-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base))
		abort();
	snprintf(in, sizeof(in), "%s/in", base);
	snprintf(out, sizeof(out), "%s/out", base);
	snprintf(canary, sizeof(canary), "%s/canary", base);
	int fd = open(canary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, canary_text, sizeof(canary_text)) != sizeof(canary_text))
		abort();
	close(fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	if (mkdir(out, 0700) < 0)
		abort();
	(void)ckpt_archive_is_checkpoint(in);
	struct cric_err err = { { 0 } };
	char *image = NULL;
	int r = ckpt_archive_extract(in, out, &image, &err);
	if (r == 0 ? !image || !*image : r > 0 || r < -4095 || image || !err.msg[0])
		abort();
	free(image);
	if (nftw(out, only_files, 16, FTW_PHYS | FTW_DEPTH) < 0)
		abort();
	/* Nothing beside in, out and the canary; the canary as it was. */
	DIR *d = opendir(base);
	if (!d)
		abort();
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "in") &&
		    strcmp(e->d_name, "out") && strcmp(e->d_name, "canary"))
			abort();
	closedir(d);
	char buf[64] = "";
	fd = open(canary, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != sizeof(canary_text) ||
	    memcmp(buf, canary_text, sizeof(canary_text)) != 0)
		abort();
	close(fd);
	if (nftw(out, rm_one, 16, FTW_PHYS | FTW_DEPTH) < 0)
		abort();
	return 0;
}
