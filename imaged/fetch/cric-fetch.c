/* cric-fetch: imaged's HTTP(S) transport, in a process of its own (see
 * imaged/fetch.h). imaged starts it on its first transfer, as imaged's
 * unprivileged user, with one end of a control socket on fd 3; over it
 * imaged passes (SCM_RIGHTS) one stream socket per transfer. Each is served
 * on a thread of its own: the request's frames (imaged/fetchwire.h), one
 * libcurl transfer, its header lines and body bytes streamed back, and a
 * FETCH_EV_DONE. It only moves bytes: imaged parses the headers, bounds and
 * hashes the body, and stops a transfer by closing its socket.
 *
 * Lifetime: it exits when the control socket closes (imaged exited or
 * retired it) or after argv[1] seconds without a transfer.
 * Usage: cric-fetch IDLE_SECONDS */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "imaged/fetchwire.h"

#define CTL_FD             3
#define REQUEST_TIMEOUT_MS 10000 /* for imaged to send the whole request */
#define MAX_TRANSFERS      256

static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned active;
static time_t last_done;

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)h, (void)a, (void)u;
	pthread_mutex_lock(&share_locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
	(void)h, (void)u;
	pthread_mutex_unlock(&share_locks[d]);
}

static time_t now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* A CURLcode as a negative errno (registry.h's transport errors). */
static int curl_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_TOO_MANY_REDIRECTS:
		return -ELOOP;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPROTONOSUPPORT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* One request's fields, NUL-terminated copies. */
struct request {
	char *url, *protocols, *user_agent, *ca_file, *bearer, *user, *pass, *post;
	long max_redirs; /* -1: do not follow */
	long connect_timeout, timeout;
	struct curl_slist *headers;
	unsigned n_headers;
};

static void request_done(struct request *q)
{
	char **s[] = { &q->url,    &q->protocols, &q->user_agent, &q->ca_file,
		       &q->bearer, &q->user,      &q->pass,       &q->post };
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (*s[i])
			explicit_bzero(*s[i], strlen(*s[i]));
		free(*s[i]);
	}
	curl_slist_free_all(q->headers);
}

static char *dup_field(const struct fetch_frame *f)
{
	if (memchr(f->data, '\0', f->len))
		return NULL;
	char *s = malloc(f->len + 1);
	if (s) {
		memcpy(s, f->data, f->len);
		s[f->len] = '\0';
	}
	return s;
}

static int field_set(char **dst, const struct fetch_frame *f)
{
	if (*dst)
		return -EBADMSG;
	return (*dst = dup_field(f)) ? 0 : -EBADMSG;
}

static int field_long(long *dst, const struct fetch_frame *f)
{
	char buf[16];
	if (f->len == 0 || f->len >= sizeof(buf))
		return -EBADMSG;
	memcpy(buf, f->data, f->len);
	buf[f->len] = '\0';
	char *end;
	long v = strtol(buf, &end, 10);
	if (*end || v < 0 || v > 86400)
		return -EBADMSG;
	*dst = v;
	return 0;
}

static int read_request(struct fetch_reader *rd, struct request *q)
{
	*q = (struct request){ .max_redirs = -1, .connect_timeout = 30 };
	for (;;) {
		struct fetch_frame f;
		int r = fetch_reader_next(rd, REQUEST_TIMEOUT_MS, &f);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : r;
		switch (f.type) {
		case FETCH_REQ_URL:
			r = field_set(&q->url, &f);
			break;
		case FETCH_REQ_PROTOCOLS:
			r = field_set(&q->protocols, &f);
			break;
		case FETCH_REQ_MAX_REDIRS:
			r = field_long(&q->max_redirs, &f);
			break;
		case FETCH_REQ_CONNECT_TIMEOUT:
			r = field_long(&q->connect_timeout, &f);
			break;
		case FETCH_REQ_TIMEOUT:
			r = field_long(&q->timeout, &f);
			break;
		case FETCH_REQ_USER_AGENT:
			r = field_set(&q->user_agent, &f);
			break;
		case FETCH_REQ_HEADER: {
			char *h = dup_field(&f);
			struct curl_slist *l = h && q->n_headers < FETCH_MAX_HEADERS
						   ? curl_slist_append(q->headers, h)
						   : NULL;
			free(h);
			if (!l)
				return -EBADMSG;
			q->headers = l;
			q->n_headers++;
			break;
		}
		case FETCH_REQ_CA_FILE:
			r = field_set(&q->ca_file, &f);
			break;
		case FETCH_REQ_BEARER:
			r = field_set(&q->bearer, &f);
			break;
		case FETCH_REQ_USER:
			r = field_set(&q->user, &f);
			break;
		case FETCH_REQ_PASS:
			r = field_set(&q->pass, &f);
			break;
		case FETCH_REQ_POST:
			r = field_set(&q->post, &f);
			break;
		case FETCH_REQ_END:
			return q->url && q->protocols ? 0 : -EBADMSG;
		default:
			return -EBADMSG;
		}
		if (r < 0)
			return r;
	}
}

struct conn {
	int fd;
	bool gone; /* imaged closed it: the transfer stops */
};

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct conn *c = userdata;
	size_t n = size * nmemb;
	if (fetch_write_frame(c->fd, FETCH_EV_HEADER, ptr,
			      n < FETCH_FRAME_MAX ? n : FETCH_FRAME_MAX) < 0) {
		c->gone = true;
		return 0;
	}
	return n;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct conn *c = userdata;
	size_t n = size * nmemb;
	for (size_t done = 0; done < n;) {
		size_t k = n - done < FETCH_FRAME_MAX ? n - done : FETCH_FRAME_MAX;
		if (fetch_write_frame(c->fd, FETCH_EV_BODY, ptr + done, k) < 0) {
			c->gone = true;
			return 0;
		}
		done += k;
	}
	return n;
}

/* While curl waits on the network: has imaged closed the transfer? */
static int on_progress(void *userdata, curl_off_t a, curl_off_t b, curl_off_t c_, curl_off_t d)
{
	(void)a, (void)b, (void)c_, (void)d;
	struct conn *c = userdata;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN | POLLRDHUP };
	if (poll(&pfd, 1, 0) > 0 && pfd.revents) {
		c->gone = true; /* imaged sends nothing after the request: a close */
		return 1;
	}
	return 0;
}

static void setopts(CURL *h, const struct request *q, struct conn *c)
{
	curl_easy_setopt(h, CURLOPT_SHARE, share);
	curl_easy_setopt(h, CURLOPT_URL, q->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* Fewer, larger writes: each is a frame and a wakeup of imaged. */
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 128L * 1024);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, q->protocols);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, q->protocols);
	if (q->max_redirs >= 0) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, q->max_redirs);
	}
	/* Credentials go to the URL's host only, never to a redirect target. */
	curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, q->connect_timeout);
	if (q->timeout > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT, q->timeout);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	if (q->user_agent)
		curl_easy_setopt(h, CURLOPT_USERAGENT, q->user_agent);
	if (q->headers)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, q->headers);
	if (q->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, q->ca_file);
	if (q->bearer) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, q->bearer);
	} else if (q->user && q->pass) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, q->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, q->pass);
	}
	if (q->post)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->post);
}

static void serve(int fd)
{
	struct fetch_reader *rd = malloc(sizeof(*rd));
	struct request q = { 0 };
	struct conn c = { .fd = fd };
	struct fetch_done d = { 0 };

	if (!rd)
		return;
	fetch_reader_init(rd, fd);
	int r = read_request(rd, &q);
	free(rd);
	if (r < 0) {
		d.err = r;
		snprintf(d.msg, sizeof(d.msg), "fetch helper: bad request: %s", strerror(-r));
	} else {
		CURL *h = curl_easy_init();
		if (!h) {
			d.err = -ENOMEM;
			snprintf(d.msg, sizeof(d.msg), "fetch helper: out of memory");
		} else {
			setopts(h, &q, &c);
			CURLcode cc = curl_easy_perform(h);
			long status = 0;
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
			d.err = curl_errno(cc);
			d.status = (int)status;
			if (cc != CURLE_OK)
				snprintf(d.msg, sizeof(d.msg), "%s", curl_easy_strerror(cc));
			curl_easy_cleanup(h);
		}
	}
	request_done(&q);
	if (!c.gone) {
		uint8_t buf[4 + FETCH_MSG_MAX];
		size_t n = fetch_done_encode(&d, buf);
		(void)fetch_write_frame(fd, FETCH_EV_DONE, buf, n);
	}
}

static void *transfer_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	serve(fd);
	close(fd);
	pthread_mutex_lock(&state_lock);
	active--;
	last_done = now_sec();
	pthread_mutex_unlock(&state_lock);
	return NULL;
}

/* One transfer's socket from the control socket: >= 0, -EAGAIN for a
 * message without one, -ECONNRESET when imaged closed it. */
static int recv_fd(void)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(CTL_FD, &m, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? -EAGAIN : -ECONNRESET;
	if (n == 0)
		return -ECONNRESET;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (!h || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS ||
	    h->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EAGAIN;
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof(fd));
	return fd;
}

static void start_transfer(int fd)
{
	pthread_attr_t attr;
	pthread_t t;
	pthread_mutex_lock(&state_lock);
	bool room = active < MAX_TRANSFERS;
	if (room)
		active++;
	pthread_mutex_unlock(&state_lock);
	if (!room) {
		close(fd); /* imaged sees the end before any event: an error */
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 1024 * 1024); /* TLS, curl's resolver */
	if (pthread_create(&t, &attr, transfer_thread, (void *)(intptr_t)fd) != 0) {
		close(fd);
		pthread_mutex_lock(&state_lock);
		active--;
		pthread_mutex_unlock(&state_lock);
	}
	pthread_attr_destroy(&attr);
}

int main(int argc, char **argv)
{
	long idle = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
	if (idle < 1 || idle > 86400) {
		fprintf(stderr, "usage: cric-fetch IDLE_SECONDS (started by cric-imaged)\n");
		return 2;
	}
	/* Nothing else of imaged's: only the control socket and stdio (one
	 * by one where close_range is filtered). */
	if (close_range(CTL_FD + 1, ~0U, 0) < 0) {
		long max = sysconf(_SC_OPEN_MAX);
		for (long fd = CTL_FD + 1; fd < (max > 0 ? max : 65536); fd++)
			close((int)fd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("cric-fetch: no_new_privs");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(share = curl_share_init())) {
		fprintf(stderr, "cric-fetch: cannot initialise libcurl\n");
		return 1;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_locks[i], NULL);
	curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	/* Connections, TLS sessions and DNS answers are reused across
	 * transfers to one registry (a pull's many blobs). */
	curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);

	last_done = now_sec();
	for (;;) {
		struct pollfd pfd = { .fd = CTL_FD, .events = POLLIN };
		int p = poll(&pfd, 1, 1000);
		if (p < 0 && errno != EINTR)
			_exit(1);
		if (p > 0) {
			if (pfd.revents & POLLIN) {
				int fd = recv_fd();
				if (fd == -ECONNRESET)
					_exit(0);
				if (fd >= 0)
					start_transfer(fd);
				continue;
			}
			_exit(0); /* POLLHUP, POLLERR: imaged went */
		}
		pthread_mutex_lock(&state_lock);
		bool idle_out = active == 0 && now_sec() - last_done >= idle;
		pthread_mutex_unlock(&state_lock);
		/* In-flight transfers die with us: fds queued on the control
		 * socket are closed unread, and imaged retries those. */
		if (idle_out)
			_exit(0);
	}
}
