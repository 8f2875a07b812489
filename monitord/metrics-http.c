/* The Prometheus endpoint; see metrics-http.h. */
#include "metrics-http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/metrics.h"
#include "common/service.h"
#include "monitord/lazyhttp.h"
#include "monitord/mhd-dl.h"

#define CONNECTIONS_MAX   16
#define REQUEST_TIMEOUT_S 30

enum { P_GATEWAY, P_IMAGED, P_STORED, P_NETD, P_RUNTIMED, P_COUNT };
static const char *const peer_names[P_COUNT] = { "gateway", "imaged", "stored", "netd",
						 "runtimed" };

struct metrics_http {
	struct lazy_http *http; /* the listener, until mhd starts on it */
	struct MHD_Daemon *mhd; /* set by start_mhd(), on http's thread */
	struct cric_client *clients[P_COUNT];
	char method[IPC_METHOD_MAX + 1];
	char address[INET6_ADDRSTRLEN];
	bool v6;
	uint16_t port;
	int64_t started_ns;
	pthread_mutex_t lock; /* guards last_start */
	double last_start[P_COUNT];
};

static struct metric_family daemon_up = {
	.name = "cric_daemon_up",
	.help = "1 when the daemon answered the scrape's metrics call, else 0.",
	.type = METRIC_GAUGE,
	.labels = { "daemon" },
};

static struct metric_family daemon_restarts = {
	.name = "cric_daemon_restarts_total",
	.help = "Restarts of the daemon monitord saw between scrapes (a new start time), since "
		"monitord started.",
	.type = METRIC_COUNTER,
	.labels = { "daemon" },
};

static struct metric_family scrapes = {
	.name = "cric_metrics_scrapes_total",
	.help = "Scrapes of /metrics answered.",
	.type = METRIC_COUNTER,
};

/* ---- gathering ---- */

struct gather {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pending;
	struct cric_result res[P_COUNT];
};

struct slot {
	struct gather *g;
	unsigned i;
};

/* On nng's thread: keep the answer, wake the scrape. */
static void on_answer(void *arg, struct cric_result *res)
{
	struct slot *s = arg;
	pthread_mutex_lock(&s->g->lock);
	s->g->res[s->i] = *res;
	res->message = NULL;
	res->payload = NULL;
	res->len = 0;
	s->g->pending--;
	pthread_cond_signal(&s->g->cond);
	pthread_mutex_unlock(&s->g->lock);
}

static double start_time_of(const Cric__MetricsResponse *r)
{
	for (size_t i = 0; i < r->n_families; i++) {
		const Cric__MetricFamily *f = r->families[i];
		if (strcmp(f->name, "cric_process_start_time_seconds") == 0 && f->n_samples == 1)
			return f->samples[0]->value;
	}
	return 0;
}

/* Ask every peer at once; answers[i] their metrics or NULL. */
static void gather(struct metrics_http *mh, Cric__MetricsResponse **answers)
{
	struct gather g = { .pending = 0 };
	struct slot slots[P_COUNT];
	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	int64_t deadline = deadline_in_ms(METRICS_CALL_MS);
	for (unsigned i = 0; i < P_COUNT; i++) {
		slots[i] = (struct slot){ &g, i };
		g.res[i].code = CODE_UNAVAILABLE;
		if (!mh->clients[i])
			continue;
		pthread_mutex_lock(&g.lock);
		g.pending++;
		pthread_mutex_unlock(&g.lock);
		if (cric_client_call_async(mh->clients[i], mh->method, NULL, deadline, NULL, 0,
					   on_answer, &slots[i]) < 0) {
			pthread_mutex_lock(&g.lock);
			g.pending--;
			pthread_mutex_unlock(&g.lock);
		}
	}
	/* Every accepted call's callback comes, by its deadline at the latest. */
	pthread_mutex_lock(&g.lock);
	while (g.pending > 0)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);

	for (unsigned i = 0; i < P_COUNT; i++) {
		answers[i] = NULL;
		if (g.res[i].code == CODE_OK)
			answers[i] =
			    cric__metrics_response__unpack(NULL, g.res[i].len, g.res[i].payload);
		if (g.res[i].code != CODE_OK)
			log_debug("metrics: %s did not answer: %s", peer_names[i],
				  g.res[i].message ? g.res[i].message : "(no message)");
		cric_result_clear(&g.res[i]);
		/* The name is the peer's as we know it, whatever it said. */
		if (answers[i]) {
			/* (an empty string unpacks to protobuf-c's static one) */
			if (answers[i]->daemon != protobuf_c_empty_string)
				free(answers[i]->daemon);
			if (!(answers[i]->daemon = strdup(peer_names[i]))) {
				protobuf_c_message_free_unpacked(&answers[i]->base, NULL);
				answers[i] = NULL;
			}
		}
		metric_set(&daemon_up, METRIC_VALUES(peer_names[i]), answers[i] ? 1 : 0);
		metric_add(&daemon_restarts, METRIC_VALUES(peer_names[i]), 0);
		if (!answers[i])
			continue;
		double start = start_time_of(answers[i]);
		pthread_mutex_lock(&mh->lock);
		if (mh->last_start[i] != 0 && start != mh->last_start[i])
			metric_add(&daemon_restarts, METRIC_VALUES(peer_names[i]), 1);
		mh->last_start[i] = start;
		pthread_mutex_unlock(&mh->lock);
	}
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
}

/* Move monitord's cric_daemon_* families (labelled by daemon already)
 * out of its own answer into *ret, an answer without a daemon. */
static int split_suite_families(Cric__MetricsResponse *own, Cric__MetricsResponse **ret)
{
	Cric__MetricsResponse *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	cric__metrics_response__init(s);
	if (!(s->families = calloc(own->n_families + 1, sizeof(*s->families)))) {
		free(s);
		return -ENOMEM;
	}
	size_t keep = 0;
	for (size_t i = 0; i < own->n_families; i++) {
		if (strncmp(own->families[i]->name, "cric_daemon_", 12) == 0)
			s->families[s->n_families++] = own->families[i];
		else
			own->families[keep++] = own->families[i];
	}
	own->n_families = keep;
	*ret = s;
	return 0;
}

/* The page (malloc'd), NULL on OOM. */
static char *scrape(struct metrics_http *mh, size_t *len)
{
	Cric__MetricsResponse *answers[P_COUNT + 2] = { NULL };
	gather(mh, answers + 2);
	metric_set(&daemon_up, METRIC_VALUES("monitord"), 1);
	metric_add(&daemon_restarts, METRIC_VALUES("monitord"), 0);
	metric_add(&scrapes, NULL, 1);
	char *page = NULL;
	if (metrics_snapshot("monitord", mh->started_ns, &answers[1]) == 0 &&
	    split_suite_families(answers[1], &answers[0]) == 0)
		page = metrics_format(answers, ARRAY_SIZE(answers), len);
	for (size_t i = 0; i < ARRAY_SIZE(answers); i++)
		if (answers[i])
			protobuf_c_message_free_unpacked(&answers[i]->base, NULL);
	return page;
}

/* ---- HTTP ---- */

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status, char *body,
				   size_t len, const char *type)
{
	struct MHD_Response *r =
	    sym_MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	sym_MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		sym_MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result ret = sym_MHD_queue_response(conn, status, r);
	sym_MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer_plain(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	char *body = strdup(msg);
	return body ? answer_text(conn, status, body, strlen(body), "text/plain; charset=utf-8")
		    : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)upload;
	struct metrics_http *mh = cls;
	if (!*con_cls) {
		*con_cls = mh; /* headers seen; answer once the (empty) body is in */
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* a body is not wanted: dropped */
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") != 0)
		return answer_plain(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return answer_plain(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD\n");
	size_t len = 0;
	char *page = scrape(mh, &len);
	if (!page)
		return answer_plain(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return answer_text(conn, MHD_HTTP_OK, page, len,
			   "text/plain; version=0.0.4; charset=utf-8");
}

static void mhd_log(void *cls, const char *fmt, va_list ap) _printf_(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	log_debug("metrics http: %s", buf);
}

/* ---- start and stop ---- */

static int config_of(const struct cric_config *cfg, struct metrics_http *mh, bool *enabled,
		     struct cric_err *err)
{
	const json_t *sec = json_object_get(cfg->doc, "monitord");
	const json_t *en = json_object_get(sec, "metrics_enabled");
	const json_t *addr = json_object_get(sec, "metrics_address");
	const json_t *port = json_object_get(sec, "metrics_port");
	if (en && !json_is_boolean(en))
		return config_bad_key(cfg, "monitord", "metrics_enabled", "true or false", err);
	*enabled = !en || json_is_true(en);
	const char *a = "127.0.0.1";
	if (addr && !json_is_string(addr))
		return config_bad_key(cfg, "monitord", "metrics_address", "an IP address", err);
	if (addr)
		a = json_string_value(addr);
	struct in6_addr tmp;
	if (inet_pton(AF_INET, a, &tmp) == 1)
		mh->v6 = false;
	else if (inet_pton(AF_INET6, a, &tmp) == 1)
		mh->v6 = true;
	else
		return config_bad_key(cfg, "monitord", "metrics_address", "an IP address", err);
	snprintf(mh->address, sizeof(mh->address), "%s", a);
	if (port && (!json_is_integer(port) || json_integer_value(port) < 0 ||
		     json_integer_value(port) > 65535))
		return config_bad_key(cfg, "monitord", "metrics_port", "a port (0: ephemeral)",
				      err);
	mh->port = port ? (uint16_t)json_integer_value(port) : METRICS_PORT_DEFAULT;
	return 0;
}

static int listen_on(const struct metrics_http *mh)
{
	struct sockaddr_in sa4 = { .sin_family = AF_INET, .sin_port = htons(mh->port) };
	struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(mh->port) };
	inet_pton(AF_INET, mh->address, &sa4.sin_addr);
	inet_pton(AF_INET6, mh->address, &sa6.sin6_addr);
	int fd = socket(mh->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (mh->v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, mh->v6 ? (struct sockaddr *)&sa6 : (struct sockaddr *)&sa4,
		 mh->v6 ? sizeof(sa6) : sizeof(sa4)) < 0 ||
	    listen(fd, 64) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* lazyhttp's start: the HTTP server on fd, made on a thread of no
 * capabilities, which it keeps. */
static int start_mhd(void *ud, int fd, struct cric_err *err)
{
	struct metrics_http *mh = ud;
	int r = mhd_dl_load(err);
	if (r < 0)
		return r;
	mh->mhd = sym_MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
		(mh->v6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, on_request, mh, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)REQUEST_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)(16 * 1024), MHD_OPTION_END);
	return mh->mhd ? 0 : err_set(err, -EIO, "libmicrohttpd did not start");
}

/* The clients to the peers (opened here, on a thread with monitord's
 * privileges: nng dials from its own threads). */
static int open_clients(const struct cric_config *cfg, struct metrics_http *mh,
			struct cric_err *err)
{
	for (unsigned i = 0; i < P_COUNT; i++) {
		_cleanup_free_ char *url = NULL;
		if (i == P_GATEWAY) {
			_cleanup_free_ char *dir = path_join(cfg->run_dir, "gateway");
			if (!dir || asprintf(&url, "ipc://%s/ipc.sock", dir) < 0)
				url = NULL;
		} else {
			url = config_ipc_url(cfg, peer_names[i]);
		}
		if (!url)
			return -ENOMEM;
		int r = cric_client_open_peer(peer_names[i], url,
					      config_daemon_peer_uid(cfg, peer_names[i]),
					      &mh->clients[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

int metrics_http_open(const struct cric_config *cfg, struct metrics_http **ret,
		      struct cric_err *err)
{
	*ret = NULL;
	struct metrics_http *mh = calloc(1, sizeof(*mh));
	if (!mh)
		return -ENOMEM;
	pthread_mutex_init(&mh->lock, NULL);
	mh->started_ns = now_unix_ns();
	bool enabled = true;
	int r = config_of(cfg, mh, &enabled, err);
	if (r == 0 && enabled)
		r = cric_method_name(CRIC_HEALTH(metrics), mh->method, sizeof(mh->method));
	if (r == 0 && enabled)
		r = open_clients(cfg, mh, err);
	if (r < 0 || !enabled) {
		if (r == -ENAMETOOLONG || r == -EINVAL)
			r = err_set(err, r, "metrics: method name: %s", strerror(-r));
		metrics_http_free(mh);
		if (!enabled && r == 0)
			log_info("metrics endpoint disabled (monitord.metrics_enabled)");
		return r;
	}
	metric_register(&scrapes);
	int fd = listen_on(mh);
	if (fd < 0) {
		log_warning("metrics: cannot listen on %s port %u: %s, ignoring", mh->address,
			    (unsigned)mh->port, strerror(-fd));
		metrics_http_free(mh);
		return 0;
	}
	int port = lazy_http_port(fd);
	if (port > 0)
		mh->port = (uint16_t)port;
	/* Started at the first scrape: no libmicrohttpd until then. */
	struct cric_err lerr = { { 0 } };
	if ((r = lazy_http_open(fd, "metrics", false, start_mhd, mh, &mh->http, &lerr)) < 0) {
		log_warning("metrics: %s, ignoring", lerr.msg[0] ? lerr.msg : strerror(-r));
		metrics_http_free(mh);
		return 0;
	}
	log_info("metrics on http://%s%s%s:%u/metrics", mh->v6 ? "[" : "", mh->address,
		 mh->v6 ? "]" : "", (unsigned)mh->port);
	*ret = mh;
	return 0;
}

void metrics_http_free(struct metrics_http *mh)
{
	if (!mh)
		return;
	lazy_http_free(mh->http); /* after it, mhd is set or never will be */
	if (mh->mhd)
		sym_MHD_stop_daemon(mh->mhd);
	for (unsigned i = 0; i < P_COUNT; i++)
		cric_client_close(mh->clients[i]);
	pthread_mutex_destroy(&mh->lock);
	free(mh);
}

uint16_t metrics_http_port(const struct metrics_http *mh)
{
	return mh ? mh->port : 0;
}
