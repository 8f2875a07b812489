/* A pod's stored config edited in place: see sandbox_edit_config() in
 * sandbox.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sandbox-int.h"

/* With the op lock held. */
static int edit_locked(struct sandbox_mgr *m, struct sandbox *sb, sandbox_config_edit_fn edit,
		       void *userdata, struct cric_err *err)
{
	pthread_mutex_lock(&m->lock);
	size_t cur_len = sb->config_len;
	void *cur = malloc(cur_len ? cur_len : 1);
	if (cur && cur_len)
		memcpy(cur, sb->config, cur_len);
	pthread_mutex_unlock(&m->lock);
	if (!cur)
		return -ENOMEM;
	void *buf = NULL;
	size_t len = 0;
	int r = edit(userdata, cur, cur_len, &buf, &len, err);
	free(cur);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	uint8_t *old = sb->config;
	size_t old_len = sb->config_len;
	sb->config = buf;
	sb->config_len = len;
	free(sb->entry); /* made from the config */
	sb->entry = NULL;
	pthread_mutex_unlock(&m->lock);
	r = record_save(m, sb);
	if (r < 0) {
		pthread_mutex_lock(&m->lock);
		sb->config = old;
		sb->config_len = old_len;
		pthread_mutex_unlock(&m->lock);
		free(buf);
		return err_set(err, r, "save the pod's record: %s", strerror(-r));
	}
	free(old);
	return 0;
}

int sandbox_edit_config(struct sandbox_mgr *m, const char *id, sandbox_config_edit_fn edit,
			void *userdata, struct cric_err *err)
{
	struct sandbox *sb = NULL;
	int r = lookup(m, id, &sb, err);
	if (r < 0 || !sb)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&sb->op);
	r = sb->removed ? err_set(err, -ENOENT, "pod sandbox %s was removed", sb->id)
			: edit_locked(m, sb, edit, userdata, err);
	if (r == 0)
		log_info("pod sandbox %s: config updated", sb->id);
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	return r;
}
