/* Mount propagation of container mounts; see ctrprop.h. */
#include "ctrprop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/cleanup.h"
#include "common/macro.h"

#define MOUNTINFO_MAX (16 << 20)

/* A mountinfo field with its \ooo escapes undone into out; false when it
 * does not fit. */
static bool unescape(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			c = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* mp holds path: the same, "/", or a parent directory of it. */
static bool holds(const char *mp, const char *path)
{
	size_t n = strlen(mp);
	if (strcmp(mp, "/") == 0)
		return true;
	return strncmp(mp, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int mountinfo_propagation(const char *mountinfo, const char *path, char *mnt, size_t mnt_size)
{
	int best = -1;
	size_t best_len = 0;
	char mp[4096];
	for (const char *line = mountinfo; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		/* fields: id parent major:minor root mount-point options
		 * [optional...] - fstype source super-options */
		const char *f[6] = { 0 };
		size_t fl[6] = { 0 };
		size_t nf = 0, i = 0;
		while (i < len && nf < 6) {
			while (i < len && line[i] == ' ')
				i++;
			size_t st = i;
			while (i < len && line[i] != ' ')
				i++;
			if (i > st) {
				f[nf] = line + st;
				fl[nf++] = i - st;
			}
		}
		if (nf == 6 && unescape(f[4], fl[4], mp, sizeof(mp)) && holds(mp, path) &&
		    strlen(mp) >= best_len) {
			int prop = 0;
			/* The optional fields, up to the lone "-". */
			while (i < len) {
				while (i < len && line[i] == ' ')
					i++;
				size_t st = i;
				while (i < len && line[i] != ' ')
					i++;
				if (i - st == 1 && line[st] == '-')
					break;
				if (i - st > 7 && strncmp(line + st, "shared:", 7) == 0)
					prop |= MNT_PROP_SHARED;
				else if (i - st > 7 && strncmp(line + st, "master:", 7) == 0)
					prop |= MNT_PROP_SLAVE;
			}
			best = prop;
			best_len = strlen(mp);
			snprintf(mnt, mnt_size, "%s", mp);
		}
		line = end ? end + 1 : NULL;
	}
	return best < 0 ? -ENOENT : best;
}

int ctr_check_propagation(const Runtime__V1__ContainerConfig *cfg, char *const *host_paths,
			  struct cric_err *err)
{
	_cleanup_free_ char *text = NULL;
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		int want = (int)cfg->mounts[i]->propagation;
		if (want != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER &&
		    want != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL)
			continue;
		if (!text) {
			size_t len = 0;
			int r = read_file("/proc/self/mountinfo", MOUNTINFO_MAX, &text, &len);
			if (r < 0)
				return err_set(err, r, "read /proc/self/mountinfo: %s",
					       strerror(-r));
		}
		char mp[4096];
		int prop = mountinfo_propagation(text, host_paths[i], mp, sizeof(mp));
		if (prop < 0)
			return err_set(err, -EIO, "mounts[%zu]: no mount holds \"%s\"", i,
				       host_paths[i]);
		bool bidi = want == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
		if (prop & MNT_PROP_SHARED || (!bidi && prop & MNT_PROP_SLAVE))
			continue;
		return err_set(err, -EINVAL,
			       "mounts[%zu].propagation %s: host_path \"%s\" is on mount \"%s\", "
			       "which is not %s (make it so, e.g. mount --make-rshared %s)",
			       i, bidi ? "BIDIRECTIONAL" : "HOST_TO_CONTAINER", host_paths[i], mp,
			       bidi ? "shared" : "shared or a slave", mp);
	}
	return 0;
}
