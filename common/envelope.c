/* Envelope and Reply codec, plus cric_result helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "ids.h"
#include "ipc.h"
#include "pbutil.h"
#include "proto/cric/internal.pb-c.h"

int64_t now_unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t deadline_in_ms(int64_t ms)
{
	return now_unix_ns() + ms * 1000000;
}

bool unix_socket_is_stale(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false; /* never replace anything but a socket */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED;
}

void cric_result_clear(struct cric_result *r)
{
	free(r->message);
	free(r->payload);
	memset(r, 0, sizeof(*r));
}

void cric_result_set(struct cric_result *r, unsigned code, const char *fmt, ...)
{
	cric_result_clear(r);
	r->code = code;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&r->message, fmt, ap) < 0)
		r->message = NULL;
	va_end(ap);
}

static int pack_message(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(m, buf);
	*ret = buf;
	*ret_len = n;
	return 0;
}

int envelope_pack(const char *method, const char *request_id, int64_t deadline_ns,
		  const void *payload, size_t len, uint8_t **ret, size_t *ret_len)
{
	Cric__Internal__Envelope env = CRIC__INTERNAL__ENVELOPE__INIT;
	env.method = (char *)method;
	env.request_id = (char *)request_id;
	env.deadline_unix_ns = deadline_ns;
	env.payload.data = (uint8_t *)payload;
	env.payload.len = len;
	return pack_message(&env.base, ret, ret_len);
}

static bool method_is_valid(const char *m)
{
	size_t n = strlen(m);
	if (n == 0 || n > IPC_METHOD_MAX)
		return false;
	for (const char *p = m; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}

int envelope_unpack(const uint8_t *data, size_t len, struct cric_envelope *env,
		    struct cric_err *err)
{
	if (len > IPC_MAX_MESSAGE)
		return err_set(err, -E2BIG, "envelope of %zu bytes is too large", len);
	_cleanup_pb_ Cric__Internal__Envelope *m =
	    cric__internal__envelope__unpack(NULL, len, data);
	if (!m)
		return err_set(err, -EBADMSG, "undecodable envelope");
	if (!method_is_valid(m->method))
		return err_set(err, -EINVAL, "envelope: invalid method name");
	if (m->request_id[0] && !id_is_safe_token(m->request_id, IPC_REQUEST_ID_MAX))
		return err_set(err, -EINVAL, "envelope: invalid request id");
	if (m->deadline_unix_ns < 0)
		return err_set(err, -EINVAL, "envelope: negative deadline");

	memset(env, 0, sizeof(*env));
	snprintf(env->method, sizeof(env->method), "%s", m->method);
	snprintf(env->request_id, sizeof(env->request_id), "%s", m->request_id);
	env->deadline_ns = m->deadline_unix_ns;
	env->payload = m->payload.data;
	env->len = m->payload.len;
	env->owner = TAKE_PTR(m);
	return 0;
}

void envelope_done(struct cric_envelope *env)
{
	if (env->owner)
		protobuf_c_message_free_unpacked(env->owner, NULL);
	env->owner = NULL;
	env->payload = NULL;
	env->len = 0;
}

int reply_pack(unsigned code, const char *message, const void *payload, size_t len, uint8_t **ret,
	       size_t *ret_len)
{
	Cric__Internal__Reply rep = CRIC__INTERNAL__REPLY__INIT;
	rep.code = code;
	rep.message = (char *)(message ? message : "");
	rep.payload.data = (uint8_t *)payload;
	rep.payload.len = len;
	return pack_message(&rep.base, ret, ret_len);
}

/* The payload field's tag and length, before the packed payload, into
 * buf (NULL: only counted). */
static size_t payload_prefix(size_t len, uint8_t *buf)
{
	uint8_t tmp[PB_VARINT_FIELD_MAX];
	return pb_len_prefix(buf ? buf : tmp,
			     pb_field_id(&cric__internal__reply__descriptor, "payload"), len);
}

size_t reply_packed_size(unsigned code, const char *message, const ProtobufCMessage *payload)
{
	Cric__Internal__Reply rep = CRIC__INTERNAL__REPLY__INIT;
	rep.code = code;
	rep.message = (char *)(message ? message : "");
	size_t n = cric__internal__reply__get_packed_size(&rep);
	size_t len = payload ? protobuf_c_message_get_packed_size(payload) : 0;
	return len ? n + payload_prefix(len, NULL) + len : n;
}

void reply_pack_into(unsigned code, const char *message, const ProtobufCMessage *payload,
		     uint8_t *buf)
{
	/* The Reply without its payload (empty bytes are not on the wire),
	 * then the payload field: the field order of reply_pack's. */
	Cric__Internal__Reply rep = CRIC__INTERNAL__REPLY__INIT;
	rep.code = code;
	rep.message = (char *)(message ? message : "");
	size_t n = cric__internal__reply__pack(&rep, buf);
	size_t len = payload ? protobuf_c_message_get_packed_size(payload) : 0;
	if (len) {
		n += payload_prefix(len, buf + n);
		protobuf_c_message_pack(payload, buf + n);
	}
}

int reply_unpack(const uint8_t *data, size_t len, struct cric_result *res)
{
	_cleanup_pb_ Cric__Internal__Reply *m = cric__internal__reply__unpack(NULL, len, data);
	if (!m || m->code > CODE_MAX)
		return -EBADMSG;
	struct cric_result r = { .code = m->code };
	if (m->message[0] && !(r.message = strdup(m->message)))
		return -ENOMEM;
	if (m->payload.len > 0) {
		/* Taken from the decoded message (the default allocator's
		 * malloc'd copy): not copied again. */
		r.payload = TAKE_PTR(m->payload.data);
		r.len = m->payload.len;
		m->payload.len = 0;
	}
	*res = r;
	return 0;
}
