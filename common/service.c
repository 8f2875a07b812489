/* Services from their protobuf-c descriptors: names, typed calls, the
 * servers' method tables. See service.h. */
#include "service.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

const ProtobufCServiceDescriptor *const cric_internal_services[] = {
	&cric__health__descriptor,
	&cric__netd__netd__descriptor,
	&cric__stored__stored__descriptor,
	&cric__imaged__imaged__descriptor,
	&cric__monitord__monitord__descriptor,
	&cric__runtimed__runtimed__descriptor,
};
const size_t cric_n_internal_services = ARRAY_SIZE(cric_internal_services);

static bool is_internal(const ProtobufCServiceDescriptor *svc)
{
	return strcmp(svc->package, "cric") == 0 || strncmp(svc->package, "cric.", 5) == 0;
}

const ProtobufCMethodDescriptor *cric_method_desc(struct cric_method_ref m)
{
	if (!m.service || m.service->magic != PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC ||
	    m.index >= m.service->n_methods)
		return NULL;
	return &m.service->methods[m.index];
}

int cric_method_name(struct cric_method_ref m, char *buf, size_t size)
{
	const ProtobufCMethodDescriptor *md = cric_method_desc(m);
	if (!md)
		return -EINVAL;
	int n = is_internal(m.service) ? snprintf(buf, size, "%s.%s", m.service->package, md->name)
				       : snprintf(buf, size, "/%s/%s", m.service->name, md->name);
	if (n < 0 || (size_t)n >= size || n > IPC_METHOD_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int cric_method_find(const ProtobufCServiceDescriptor *svc, const char *name,
		     struct cric_method_ref *ret)
{
	for (unsigned i = 0; i < svc->n_methods; i++) {
		const struct cric_method_ref m = { svc, i };
		char buf[IPC_METHOD_MAX + 1];
		if (cric_method_name(m, buf, sizeof(buf)) == 0 && strcmp(buf, name) == 0) {
			*ret = m;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- client ---- */

/* A bug of the caller: nothing is sent. */
_printf_(2, 3) static unsigned refuse(char **message, const char *fmt, ...)
{
	if (message) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(message, fmt, ap) < 0)
			*message = NULL;
		va_end(ap);
	}
	return CODE_INTERNAL;
}

unsigned cric_call(struct cric_client *c, struct cric_method_ref m, const char *request_id,
		   int64_t deadline_ns, const ProtobufCMessage *req, ProtobufCMessage **out,
		   char **message)
{
	*out = NULL;
	if (message)
		*message = NULL;
	const ProtobufCMethodDescriptor *md = cric_method_desc(m);
	char name[IPC_METHOD_MAX + 1];
	if (!md || cric_method_name(m, name, sizeof(name)) < 0)
		return refuse(message, "call %s: no method %u in %s", cric_client_name(c), m.index,
			      m.service ? m.service->name : "(no service)");
	if (!req || req->descriptor != md->input)
		return refuse(message, "call %s: %s takes a %s, not a %s", cric_client_name(c),
			      name, md->input->name, req ? req->descriptor->name : "NULL");
	return cric_client_call_pb(c, name, request_id, deadline_ns, req, md->output, out, message);
}

int64_t cric_deadline(int64_t caller_deadline_ns, uint32_t cap_ms)
{
	int64_t cap = cap_ms ? deadline_in_ms(cap_ms) : 0;
	if (caller_deadline_ns <= 0)
		return cap;
	return cap && cap < caller_deadline_ns ? cap : caller_deadline_ns;
}

/* ---- server ---- */

static int check_service(const char *daemon, const struct cric_service *s, size_t *n_entries,
			 struct cric_err *err)
{
	const ProtobufCServiceDescriptor *d = s->desc;
	if (!d || d->magic != PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC)
		return err_set(err, -EINVAL, "%s: a service without a descriptor", daemon);
	if (s->n_handlers && !s->handlers)
		return err_set(err, -EINVAL, "%s: %s: no handler table", daemon, d->name);
	if (d->n_methods > 1024)
		return err_set(err, -E2BIG, "%s: %s: %u methods", daemon, d->name, d->n_methods);
	bool seen[1024] = { false };
	for (size_t i = 0; i < s->n_handlers; i++) {
		const struct cric_handler *h = &s->handlers[i];
		if (h->method.service != d)
			return err_set(err, -EINVAL, "%s: line %zu of %s's table is a method of %s",
				       daemon, i, d->name,
				       h->method.service ? h->method.service->name : "no service");
		if (h->method.index >= d->n_methods)
			return err_set(err, -EINVAL,
				       "%s: line %zu of %s's table: %s has no method %u", daemon, i,
				       d->name, d->name, h->method.index);
		if (seen[h->method.index])
			return err_set(err, -EINVAL, "%s: %s.%s is listed twice", daemon, d->name,
				       d->methods[h->method.index].name);
		seen[h->method.index] = true;
	}
	if (!s->partial)
		for (unsigned m = 0; m < d->n_methods; m++)
			if (!seen[m])
				return err_set(err, -EINVAL,
					       "%s: %s.%s has no line in the table (a handler, "
					       "or NULL for UNIMPLEMENTED)",
					       daemon, d->name, d->methods[m].name);
	*n_entries += s->partial ? d->n_methods : s->n_handlers;
	return 0;
}

static const struct cric_handler *line_for(const struct cric_service *s, unsigned m)
{
	for (size_t i = 0; i < s->n_handlers; i++)
		if (s->handlers[i].method.index == m)
			return &s->handlers[i];
	return NULL;
}

int cric_method_table_build(const char *daemon, const struct cric_service *services, size_t n,
			    struct cric_method_table *ret, struct cric_err *err)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		int r = check_service(daemon, &services[i], &total, err);
		if (r < 0)
			return r;
	}
	_cleanup_free_ struct cric_route_entry *e = calloc(total ? total : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct cric_service *s = &services[i];
		for (unsigned m = 0; m < s->desc->n_methods; m++) {
			const struct cric_handler *h = line_for(s, m);
			if (!h && !s->partial)
				continue;
			struct cric_route_entry *re = &e[k++];
			re->method = (struct cric_method_ref){ s->desc, m };
			re->md = &s->desc->methods[m];
			re->handler = h;
			if (cric_method_name(re->method, re->name, sizeof(re->name)) < 0)
				return err_set(err, -ENAMETOOLONG, "%s: %s.%s: name too long",
					       daemon, s->desc->name, re->md->name);
			for (size_t j = 0; j + 1 < k; j++)
				if (strcmp(e[j].name, re->name) == 0)
					return err_set(err, -EINVAL, "%s: two methods named %s",
						       daemon, re->name);
		}
	}
	ret->entries = TAKE_PTR(e);
	ret->n = k;
	return 0;
}

const struct cric_route_entry *cric_method_table_find(const struct cric_method_table *t,
						      const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->entries[i].name, name) == 0)
			return &t->entries[i];
	return NULL;
}

void cric_method_table_done(struct cric_method_table *t)
{
	free(t->entries);
	t->entries = NULL;
	t->n = 0;
}
