/* imaged/registry.h and imaged/auth.h against a real registry: Debian's
 * docker-registry on 127.0.0.1 (random ports, temp storage), content pushed
 * through its HTTP API. Three registries share one storage dir: "open" (no
 * auth, the one content is pushed to), "token" (bearer tokens from
 * registry-fixture.py's token server) and "basic" (htpasswd). Skips when
 * /usr/bin/docker-registry or python3's cryptography is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "imaged/auth.h"
#include "imaged/manifest.h"
#include "imaged/reference.h"
#include "imaged/registry.h"
#include "testutil.h"

#define REGISTRY_BIN "/usr/bin/docker-registry"
#define PYTHON       "/usr/bin/python3"
#define REPO         "test/app"
#define BIG_SIZE     (48u << 20)
#define USER         "alice"
#define PASSWORD     "s3cret-pw"

extern char **environ;

enum { REG_OPEN, REG_TOKEN, REG_BASIC, N_REG };

struct fx {
	char *dir;
	char fixture[PATH_MAX];
	int port[N_REG];
	pid_t pid[N_REG];
	int token_port;
	pid_t token_pid;
	char token_log[PATH_MAX];

	char config_digest[IMAGE_DIGEST_LEN + 1];
	char small_digest[IMAGE_DIGEST_LEN + 1];
	char big_digest[IMAGE_DIGEST_LEN + 1];
	char corrupt_digest[IMAGE_DIGEST_LEN + 1];
	char manifest_digest[IMAGE_DIGEST_LEN + 1];
	char *manifest;
	unsigned char *small, *big;
	size_t small_len;
};

static struct fx *G;

/* --- helpers --- */

static void sha256_digest(const void *data, size_t len, char out[IMAGE_DIGEST_LEN + 1])
{
	unsigned char md[32];
	unsigned n = 0;
	assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
	char *p = stpcpy(out, "sha256:");
	for (unsigned i = 0; i < n; i++)
		p += sprintf(p, "%02x", md[i]);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Wait (polling connect, up to 15 s) until pid listens on port. */
static void wait_listening(pid_t pid, int port)
{
	for (int i = 0; i < 1500; i++) {
		if (port_open(port))
			return;
		assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still running */
		usleep(10000);
	}
	fail_msg("nothing listening on port %d", port);
}

static pid_t spawn(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static void stop(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static void registry_start(struct fx *fx, int which)
{
	char cfg[PATH_MAX], log[PATH_MAX], name[32];
	snprintf(name, sizeof(name), "config-%d.yml", which);
	tpath(cfg, fx->dir, name);
	tpath(log, fx->dir, "registry.log");
	char *argv[] = { REGISTRY_BIN, "serve", cfg, NULL };
	fx->pid[which] = spawn(argv, log);
	wait_listening(fx->pid[which], fx->port[which]);
}

static void registry_write_config(struct fx *fx, int which)
{
	char cfg[PATH_MAX], name[32], p[PATH_MAX], auth[2048] = "";
	if (which == REG_TOKEN)
		snprintf(auth, sizeof(auth),
			 "auth:\n  token:\n    realm: http://127.0.0.1:%d/token\n"
			 "    service: cric-test\n    issuer: cric-issuer\n"
			 "    rootcertbundle: %s/token.crt\n",
			 fx->token_port, fx->dir);
	else if (which == REG_BASIC)
		snprintf(auth, sizeof(auth),
			 "auth:\n  htpasswd:\n    realm: cric-basic\n    path: %s/htpasswd\n",
			 fx->dir);
	char *text = NULL;
	assert_true(
	    asprintf(&text,
		     "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
		     "storage:\n  filesystem:\n    rootdirectory: %s\n"
		     "  delete:\n    enabled: true\n"
		     "http:\n  addr: 127.0.0.1:%d\n%s",
		     tpath(p, fx->dir, "storage"), fx->port[which], auth) > 0);
	snprintf(name, sizeof(name), "config-%d.yml", which);
	write_text(tpath(cfg, fx->dir, name), text);
	free(text);
}

static int run_fixture(struct fx *fx, const char *out_file, const char *a1, const char *a2,
		       const char *a3)
{
	char *argv[] = { PYTHON, fx->fixture, (char *)a1, (char *)a2, (char *)a3, NULL };
	char log[PATH_MAX];
	pid_t pid = spawn(argv, out_file ? out_file : tpath(log, fx->dir, "fixture.log"));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --- pushing through the registry API --- */

struct resp {
	long status;
	char location[2048];
};

static size_t resp_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct resp *r = userdata;
	size_t n = size * nmemb;
	if (n > 10 && strncasecmp(ptr, "Location:", 9) == 0) {
		size_t len = n - 9;
		const char *v = ptr + 9;
		while (len && *v == ' ')
			v++, len--;
		while (len && (v[len - 1] == '\r' || v[len - 1] == '\n'))
			len--;
		snprintf(r->location, sizeof(r->location), "%.*s", (int)len, v);
	}
	return n;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

static void http(const char *method, const char *url, const char *content_type, const void *body,
		 size_t len, struct resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char ct[256];
	assert_non_null(c);
	memset(r, 0, sizeof(*r));
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "");
	if (content_type)
		h = curl_slist_append(h, ct);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, resp_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
}

static void push_blob(struct fx *fx, const void *data, size_t len, char digest[])
{
	char url[4096];
	struct resp r;
	sha256_digest(data, len, digest);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/" REPO "/blobs/uploads/",
		 fx->port[REG_OPEN]);
	http("POST", url, NULL, NULL, 0, &r);
	assert_int_equal(r.status, 202);
	if (r.location[0] == '/')
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s%sdigest=%s", fx->port[REG_OPEN],
			 r.location, strchr(r.location, '?') ? "&" : "?", digest);
	else
		snprintf(url, sizeof(url), "%s%sdigest=%s", r.location,
			 strchr(r.location, '?') ? "&" : "?", digest);
	http("PUT", url, "application/octet-stream", data, len, &r);
	assert_int_equal(r.status, 201);
}

static void fill_random(unsigned char *p, size_t n, unsigned seed)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (seed + 1);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

static void push_content(struct fx *fx)
{
	char config[512], url[512];
	struct resp r;

	fx->small_len = 4096;
	fx->small = malloc(fx->small_len);
	fx->big = malloc(BIG_SIZE);
	assert_non_null(fx->small);
	assert_non_null(fx->big);
	fill_random(fx->small, fx->small_len, 1);
	fill_random(fx->big, BIG_SIZE, 2);
	push_blob(fx, fx->small, fx->small_len, fx->small_digest);
	push_blob(fx, fx->big, BIG_SIZE, fx->big_digest);
	push_blob(fx, "to be corrupted\n", 16, fx->corrupt_digest);

	snprintf(config, sizeof(config),
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		 "\"diff_ids\":[\"%s\"]}}",
		 fx->small_digest);
	push_blob(fx, config, strlen(config), fx->config_digest);

	assert_true(asprintf(&fx->manifest,
			     "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\","
			     "\"config\":{\"mediaType\":\"" MEDIA_TYPE_OCI_CONFIG "\",\"digest\":"
			     "\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
			     "\"" MEDIA_TYPE_OCI_LAYER_TAR "\",\"digest\":\"%s\",\"size\":%zu}]}",
			     fx->config_digest, strlen(config), fx->small_digest,
			     fx->small_len) > 0);
	sha256_digest(fx->manifest, strlen(fx->manifest), fx->manifest_digest);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/" REPO "/manifests/v1",
		 fx->port[REG_OPEN]);
	http("PUT", url, MEDIA_TYPE_OCI_MANIFEST, fx->manifest, strlen(fx->manifest), &r);
	assert_int_equal(r.status, 201);
}

/* --- fixture --- */

static int group_teardown(void **state)
{
	struct fx *fx = *state;
	if (!fx)
		return 0;
	for (int i = 0; i < N_REG; i++)
		stop(&fx->pid[i]);
	stop(&fx->token_pid);
	tmpdir_remove(fx->dir);
	free(fx->manifest);
	free(fx->small);
	free(fx->big);
	free(fx);
	G = NULL;
	return 0;
}

static int group_setup(void **state)
{
	char p[PATH_MAX], q[PATH_MAX], hash_file[PATH_MAX];

	if (access(REGISTRY_BIN, X_OK) != 0) {
		print_message("SKIP: " REGISTRY_BIN " is not installed\n");
		return -1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	*state = G = fx;
	fx->dir = tmpdir_make("registry");
	char src[PATH_MAX];
	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(fx->fixture, sizeof(fx->fixture), "%s/registry-fixture.py", dirname(src));
	assert_int_equal(mkdir(tpath(p, fx->dir, "storage"), 0700), 0);

	if (run_fixture(fx, NULL, "certgen", tpath(p, fx->dir, "token.key"),
			tpath(q, fx->dir, "token.crt")) != 0) {
		print_message("SKIP: python3 cryptography is not available\n");
		group_teardown(state);
		return -1;
	}
	/* htpasswd: bcrypt from libcrypt, through python's crypt module */
	tpath(hash_file, fx->dir, "bcrypt.out");
	if (run_fixture(fx, hash_file, "bcrypt", PASSWORD, NULL) != 0) {
		print_message("SKIP: no bcrypt available for htpasswd\n");
		group_teardown(state);
		return -1;
	}
	char hash[256] = "";
	FILE *f = fopen(hash_file, "re");
	assert_non_null(f);
	assert_non_null(fgets(hash, sizeof(hash), f));
	fclose(f);
	hash[strcspn(hash, "\n")] = '\0';
	char line[512];
	snprintf(line, sizeof(line), USER ":%s\n", hash);
	write_text(tpath(p, fx->dir, "htpasswd"), line);

	fx->token_port = free_port();
	tpath(fx->token_log, fx->dir, "tokens.log");
	write_text(fx->token_log, "");
	char port[16];
	snprintf(port, sizeof(port), "%d", fx->token_port);
	char key[PATH_MAX], crt[PATH_MAX], log[PATH_MAX];
	char *argv[] = { PYTHON,
			 fx->fixture,
			 "token",
			 port,
			 (char *)tpath(key, fx->dir, "token.key"),
			 (char *)tpath(crt, fx->dir, "token.crt"),
			 (char *)"cric-test",
			 (char *)"cric-issuer",
			 USER,
			 PASSWORD,
			 fx->token_log,
			 NULL };
	fx->token_pid = spawn(argv, tpath(log, fx->dir, "token-server.log"));
	wait_listening(fx->token_pid, fx->token_port);

	for (int i = 0; i < N_REG; i++) {
		fx->port[i] = free_port();
		registry_write_config(fx, i);
		registry_start(fx, i);
	}
	push_content(fx);
	return 0;
}

/* build/tests/<this> -> build/bin/cric-fetch, the transport helper. */
static const char *fetch_helper(void)
{
	static char path[PATH_MAX];
	if (!path[0]) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		assert_true(n > 0);
		exe[n] = '\0';
		snprintf(path, sizeof(path), "%s/../bin/cric-fetch", dirname(exe));
	}
	return path;
}

static struct registry_client *client(unsigned low_speed)
{
	struct registry_client *c = NULL;
	struct registry_client_opts o = { .max_retries = -1,
					  .fetch_helper = fetch_helper(),
					  .progress_timeout_sec = low_speed,
					  .connect_timeout_sec = 5,
					  .retry_delay_ms = 20 };
	struct cric_err err = { "" };
	assert_int_equal(registry_client_new(&o, &c, &err), 0);
	return c;
}

static void ref_for(int port, const char *rest, struct image_ref *ref)
{
	char s[512];
	struct cric_err err = { "" };
	snprintf(s, sizeof(s), "127.0.0.1:%d/%s", port, rest);
	assert_int_equal(image_ref_parse(s, NULL, ref, &err), 0);
}

static int tmpfile_fd(const char *name, char path[PATH_MAX])
{
	tpath(path, G->dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	return fd;
}

static void assert_file_equals(const char *path, const void *data, size_t len)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((size_t)st.st_size, len);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char *buf = malloc(len ? len : 1);
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(buf, data, len);
	free(buf);
	close(fd);
}

static unsigned tokens_issued(void)
{
	FILE *f = fopen(G->token_log, "re");
	unsigned n = 0;
	int ch;
	assert_non_null(f);
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* --- pure parts --- */

static void test_challenge_parse(void **state)
{
	(void)state;
	struct auth_challenge ch;
	struct cric_err err = { "" };

	assert_int_equal(auth_challenge_parse("Bearer realm=\"https://auth.docker.io/token\","
					      "service=\"registry.docker.io\",scope=\"repository:"
					      "library/busybox:pull\"",
					      &ch, &err),
			 0);
	assert_int_equal(ch.scheme, AUTH_SCHEME_BEARER);
	assert_string_equal(ch.realm, "https://auth.docker.io/token");
	assert_string_equal(ch.service, "registry.docker.io");
	assert_string_equal(ch.scope, "repository:library/busybox:pull");

	assert_int_equal(auth_challenge_parse("basic realm=Registry", &ch, &err), 0);
	assert_int_equal(ch.scheme, AUTH_SCHEME_BASIC);
	assert_string_equal(ch.realm, "Registry");
	assert_string_equal(ch.scope, "");

	assert_int_equal(auth_challenge_parse("Bearer service=\"x\"", &ch, &err), -EINVAL);
	assert_int_equal(auth_challenge_parse("Bearer realm=\"unterminated", &ch, &err), -EINVAL);
	assert_int_equal(auth_challenge_parse("Negotiate abc", &ch, &err), -EOPNOTSUPP);
	assert_int_equal(auth_challenge_parse("Bearer realm", &ch, &err), -EINVAL);
}

static void test_creds(void **state)
{
	(void)state;
	char user[AUTH_USER_MAX + 1], pass[AUTH_PASSWORD_MAX + 1];
	struct cric_err err = { "" };

	struct registry_creds up = { .username = "u", .password = "p", .auth = "eDp5" };
	assert_int_equal(auth_creds_userpass(&up, user, pass, &err), 0);
	assert_string_equal(user, "u");
	assert_string_equal(pass, "p");

	struct registry_creds a = { .auth = "YWxpY2U6czNjcmV0LXB3" }; /* alice:s3cret-pw */
	assert_int_equal(auth_creds_userpass(&a, user, pass, &err), 0);
	assert_string_equal(user, USER);
	assert_string_equal(pass, PASSWORD);

	struct registry_creds bad = { .auth = "bm9jb2xvbg==" }; /* "nocolon" */
	assert_int_equal(auth_creds_userpass(&bad, user, pass, &err), -EINVAL);
	assert_null(strstr(err.msg, "bm9jb2xvbg"));
	struct registry_creds junk = { .auth = "!!!" };
	assert_int_equal(auth_creds_userpass(&junk, user, pass, &err), -EINVAL);
	struct registry_creds none = { .identity_token = "x" };
	assert_int_equal(auth_creds_userpass(&none, user, pass, &err), -ENOENT);
}

static void test_token_parse(void **state)
{
	(void)state;
	struct cric_err err = { "" };
	char *t = NULL;
	long ttl = 0;
	const char *ok = "{\"token\":\"abc.def\",\"expires_in\":300}";
	assert_int_equal(auth_token_parse(ok, strlen(ok), &t, &ttl, &err), 0);
	assert_string_equal(t, "abc.def");
	assert_int_equal(ttl, 300);
	free(t);
	const char *access = "{\"token\":\"\",\"access_token\":\"xyz\",\"expires_in\":-1}";
	assert_int_equal(auth_token_parse(access, strlen(access), &t, &ttl, &err), 0);
	assert_string_equal(t, "xyz");
	assert_int_equal(ttl, AUTH_DEFAULT_TTL);
	free(t);
	static const char *const bad[] = { "",
					   "[]",
					   "{\"token\":\"\"}",
					   "{\"token\":\"a b\"}",
					   "{\"token\":1}",
					   "{\"token\":\"secret-abc" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		t = (char *)0x1;
		assert_int_equal(auth_token_parse(bad[i], strlen(bad[i]), &t, &ttl, &err), -EPROTO);
		assert_ptr_equal(t, (char *)0x1);
		assert_null(strstr(err.msg, "secret"));
	}
}

static void test_creds_file_parse(void **state)
{
	(void)state;
	struct cric_err err = { "" };
	struct auth_file_creds f;
	const char *doc = "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"YTpi\"},"
			  "\"127.0.0.1:5000\":{\"username\":\"u\",\"password\":\"p\"},"
			  "\"https://quay.io\":{\"identitytoken\":\"rt\",\"email\":\"x\"},"
			  "\"empty.example\":{\"password\":\"p\",\"auth\":\"\"}},"
			  "\"credsStore\":\"desktop\"}";
	assert_int_equal(auth_creds_file_parse(doc, strlen(doc), "docker.io", &f, &err), 0);
	assert_string_equal(f.c.auth, "YTpi");
	assert_null(f.c.username);
	auth_file_creds_done(&f);
	assert_int_equal(auth_creds_file_parse(doc, strlen(doc), "127.0.0.1:5000", &f, &err), 0);
	assert_string_equal(f.c.username, "u");
	assert_string_equal(f.c.password, "p");
	auth_file_creds_done(&f);
	assert_int_equal(auth_creds_file_parse(doc, strlen(doc), "quay.io", &f, &err), 0);
	assert_string_equal(f.c.identity_token, "rt");
	auth_file_creds_done(&f);
	assert_null(f.auth);
	/* No entry, or one without a credential. */
	assert_int_equal(auth_creds_file_parse(doc, strlen(doc), "ghcr.io", &f, &err), -ENOENT);
	assert_int_equal(auth_creds_file_parse(doc, strlen(doc), "empty.example", &f, &err),
			 -ENOENT);
	/* Malformed: refused, the content never quoted. */
	const char *dup = "{\"auths\":{\"a\":{\"auth\":\"c2VjcmV0\"},\"a\":{}}}";
	assert_int_equal(auth_creds_file_parse(dup, strlen(dup), "a", &f, &err), -EINVAL);
	const char *trunc = "{\"auths\":{\"a\":{\"auth\":\"c2VjcmV0:oops}}";
	assert_int_equal(auth_creds_file_parse(trunc, strlen(trunc), "a", &f, &err), -EINVAL);
	assert_null(strstr(err.msg, "c2VjcmV0"));
	assert_int_equal(auth_creds_file_parse("[1]", 3, "a", &f, &err), -EINVAL);
}

static void test_cache(void **state)
{
	(void)state;
	_cleanup_auth_cache_ struct auth_cache *c = auth_cache_new();
	char *t = NULL, id[AUTH_IDENTITY_LEN + 1], anon[AUTH_IDENTITY_LEN + 1];
	assert_non_null(c);
	struct registry_creds up = { .username = USER, .password = PASSWORD };
	assert_int_equal(auth_cache_identity(c, &up, id, NULL), 0);
	assert_int_equal(auth_cache_identity(c, NULL, anon, NULL), 0);
	assert_int_equal(auth_cache_get(c, "r", "s", id, &t), -ENOENT);
	assert_int_equal(auth_cache_put(c, "r", "s", id, "tok", 60), 0);
	assert_int_equal(auth_cache_get(c, "r", "s", id, &t), 0);
	assert_string_equal(t, "tok");
	free(t);
	assert_int_equal(auth_cache_get(c, "r", "other", id, &t), -ENOENT);
	assert_int_equal(auth_cache_get(c, "r2", "s", id, &t), -ENOENT);
	/* Another identity (anonymous included) never gets it. */
	assert_int_equal(auth_cache_get(c, "r", "s", anon, &t), -ENOENT);
	/* A token about to expire is not kept. */
	assert_int_equal(auth_cache_put(c, "r", "short", id, "tok", 3), 0);
	assert_int_equal(auth_cache_get(c, "r", "short", id, &t), -ENOENT);
	/* Dropping one identity's token keeps the others'. */
	assert_int_equal(auth_cache_put(c, "r", "s", anon, "anon-tok", 60), 0);
	auth_cache_drop(c, "r", "s", id);
	assert_int_equal(auth_cache_get(c, "r", "s", id, &t), -ENOENT);
	assert_int_equal(auth_cache_get(c, "r", "s", anon, &t), 0);
	assert_string_equal(t, "anon-tok");
	free(t);
	/* Bounded: more scopes than entries evict the oldest. */
	for (int i = 0; i < AUTH_CACHE_ENTRIES + 10; i++) {
		char scope[32];
		snprintf(scope, sizeof(scope), "s%d", i);
		assert_int_equal(auth_cache_put(c, "r", scope, id, "tok", 60), 0);
	}
	assert_int_equal(auth_cache_get(c, "r", "s0", id, &t), -ENOENT);
	assert_int_equal(auth_cache_get(c, "r", "s137", id, &t), 0);
	free(t);
}

static void test_cache_identity(void **state)
{
	(void)state;
	_cleanup_auth_cache_ struct auth_cache *c = auth_cache_new(), *c2 = auth_cache_new();
	char a[AUTH_IDENTITY_LEN + 1], b[AUTH_IDENTITY_LEN + 1];
	struct cric_err err = { "" };
	assert_non_null(c);
	assert_non_null(c2);

	struct registry_creds up = { .username = USER, .password = PASSWORD };
	struct registry_creds b64 = { .auth = "YWxpY2U6czNjcmV0LXB3" }; /* alice:s3cret-pw */
	assert_int_equal(auth_cache_identity(c, &up, a, &err), 0);
	assert_int_equal(strlen(a), AUTH_IDENTITY_LEN);
	assert_null(strstr(a, PASSWORD));
	/* The same credentials in the "auth" form are the same identity. */
	assert_int_equal(auth_cache_identity(c, &b64, b, &err), 0);
	assert_string_equal(a, b);
	/* registry_token is not an identity: it is never cached. */
	struct registry_creds up_tok = { .username = USER,
					 .password = PASSWORD,
					 .registry_token = "x" };
	assert_int_equal(auth_cache_identity(c, &up_tok, b, &err), 0);
	assert_string_equal(a, b);
	/* A per-process (per-cache) key: the same credentials differ elsewhere. */
	assert_int_equal(auth_cache_identity(c2, &up, b, &err), 0);
	assert_string_not_equal(a, b);

	/* Everything else is another identity. */
	const struct registry_creds others[] = {
		{ 0 },
		{ .username = USER },
		{ .username = USER, .password = "s3cret-pwX" },
		{ .username = "alice:s3cret", .password = "pw" }, /* same "user:pass" bytes */
		{ .username = "alices", .password = "3cret-pw" },
		{ .identity_token = "refresh-1" },
		{ .identity_token = "refresh-2" },
		{ .username = USER, .password = PASSWORD, .identity_token = "refresh-1" },
	};
	char ids[ARRAY_SIZE(others)][AUTH_IDENTITY_LEN + 1];
	for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
		assert_int_equal(auth_cache_identity(c, &others[i], ids[i], &err), 0);
		assert_string_not_equal(ids[i], a);
		for (size_t k = 0; k < i; k++)
			if (!(i == 7 && k == 5)) /* the refresh token wins, as when fetching */
				assert_string_not_equal(ids[i], ids[k]);
	}
	assert_string_equal(ids[7], ids[5]);
	/* NULL creds are anonymous, like empty ones. */
	assert_int_equal(auth_cache_identity(c, NULL, b, &err), 0);
	assert_string_equal(b, ids[0]);

	/* Malformed "auth": refused, never quoted. */
	struct registry_creds bad = { .auth = "bm9jb2xvbg==" };
	assert_int_equal(auth_cache_identity(c, &bad, b, &err), -EINVAL);
	assert_null(strstr(err.msg, "bm9jb2xvbg"));
}

static void test_insecure(void **state)
{
	(void)state;
	const char *const insecure[] = { "reg.local:5000", NULL };
	struct registry_client_opts o = { .insecure = insecure, .fetch_helper = fetch_helper() };
	_cleanup_(registry_client_freep) struct registry_client *c = NULL;
	assert_int_equal(registry_client_new(&o, &c, NULL), 0);
	assert_true(registry_is_insecure(c, "localhost"));
	assert_true(registry_is_insecure(c, "localhost:5000"));
	assert_true(registry_is_insecure(c, "127.0.0.1:5000"));
	assert_true(registry_is_insecure(c, "127.9.8.7"));
	assert_true(registry_is_insecure(c, "[::1]:5000"));
	assert_true(registry_is_insecure(c, "reg.local:5000"));
	assert_false(registry_is_insecure(c, "reg.local"));
	assert_false(registry_is_insecure(c, "docker.io"));
	assert_false(registry_is_insecure(c, "128.0.0.1:5000"));
	assert_false(registry_is_insecure(c, "[::2]:5000"));
	assert_false(registry_is_insecure(c, "localhost.evil.com"));
}

/* --- against the registry --- */

static void test_manifest_by_tag_and_digest(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	_cleanup_(registry_manifest_freep) struct registry_manifest *m = NULL;

	ref_for(fx->port[REG_OPEN], REPO ":v1", &ref);
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m, &err), 0);
	assert_string_equal(m->digest, fx->manifest_digest);
	assert_string_equal(m->content_type, MEDIA_TYPE_OCI_MANIFEST);
	assert_int_equal(m->len, strlen(fx->manifest));
	assert_memory_equal(m->body, fx->manifest, m->len);

	/* It parses as what was pushed. */
	_cleanup_manifest_ struct manifest *parsed = NULL;
	assert_int_equal(manifest_parse(m->body, m->len, m->content_type, &parsed, &err), 0);

	_cleanup_(registry_manifest_freep) struct registry_manifest *m2 = NULL;
	char s[256];
	snprintf(s, sizeof(s), REPO "@%s", fx->manifest_digest);
	ref_for(fx->port[REG_OPEN], s, &ref);
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m2, &err), 0);
	assert_string_equal(m2->digest, fx->manifest_digest);
	assert_memory_equal(m2->body, fx->manifest, m2->len);

	/* An explicit reference in the same repository. */
	_cleanup_(registry_manifest_freep) struct registry_manifest *m3 = NULL;
	assert_int_equal(
	    registry_fetch_manifest(c, &ref, fx->manifest_digest, NULL, NULL, &m3, &err), 0);
	assert_int_equal(registry_fetch_manifest(c, &ref, "bad/tag", NULL, NULL, &m3, &err),
			 -EINVAL);
}

static void test_manifest_unknown(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	struct registry_manifest *m = NULL;

	ref_for(fx->port[REG_OPEN], REPO ":nope", &ref);
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m, &err), -ENOENT);
	assert_null(m);
	assert_non_null(strstr(err.msg, "not found"));
	ref_for(fx->port[REG_OPEN], "no/such/repo:v1", &ref);
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m, &err), -ENOENT);
	/* By a digest the registry does not have. */
	ref_for(fx->port[REG_OPEN], REPO ":v1", &ref);
	char unknown[IMAGE_DIGEST_LEN + 1];
	sha256_digest("never pushed", 12, unknown);
	assert_int_equal(registry_fetch_manifest(c, &ref, unknown, NULL, NULL, &m, &err), -ENOENT);
}

static void test_blob(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	char path[PATH_MAX];
	uint64_t size = 0;
	unsigned resumes = 7;

	ref_for(fx->port[REG_OPEN], REPO ":v1", &ref);
	_cleanup_close_ int fd = tmpfile_fd("small", path);
	assert_int_equal(registry_fetch_blob(c, &ref, fx->small_digest, fd, (int64_t)fx->small_len,
					     NULL, NULL, &size, &resumes, &err),
			 0);
	assert_int_equal(size, fx->small_len);
	assert_int_equal(resumes, 0);
	assert_file_equals(path, fx->small, fx->small_len);

	/* Size unknown. */
	_cleanup_close_ int fd2 = tmpfile_fd("small2", path);
	assert_int_equal(
	    registry_fetch_blob(c, &ref, fx->small_digest, fd2, -1, NULL, NULL, NULL, NULL, &err),
	    0);
	assert_file_equals(path, fx->small, fx->small_len);

	/* Big, streamed. */
	_cleanup_close_ int fd3 = tmpfile_fd("big", path);
	assert_int_equal(registry_fetch_blob(c, &ref, fx->big_digest, fd3, BIG_SIZE, NULL, NULL,
					     &size, NULL, &err),
			 0);
	assert_int_equal(size, BIG_SIZE);
	assert_file_equals(path, fx->big, BIG_SIZE);
	unlink(path);
}

static void test_blob_mismatch(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	char path[PATH_MAX], data[PATH_MAX];

	ref_for(fx->port[REG_OPEN], REPO ":v1", &ref);

	/* A manifest claiming another size. */
	_cleanup_close_ int fd = tmpfile_fd("mismatch", path);
	assert_int_equal(registry_fetch_blob(c, &ref, fx->small_digest, fd,
					     (int64_t)fx->small_len + 1, NULL, NULL, NULL, NULL,
					     &err),
			 -EBADMSG);
	assert_int_equal(registry_fetch_blob(c, &ref, fx->small_digest, fd,
					     (int64_t)fx->small_len - 1, NULL, NULL, NULL, NULL,
					     &err),
			 -EBADMSG);

	/* Corrupt the registry's copy (same length): the digest check catches it. */
	snprintf(data, sizeof(data), "%s/storage/docker/registry/v2/blobs/sha256/%.2s/%s/data",
		 fx->dir, fx->corrupt_digest + 7, fx->corrupt_digest + 7);
	write_text(data, "TO BE CORRUPTED\n");
	assert_int_equal(
	    registry_fetch_blob(c, &ref, fx->corrupt_digest, fd, 16, NULL, NULL, NULL, NULL, &err),
	    -EBADMSG);
	assert_non_null(strstr(err.msg, "content has digest"));

	/* Unknown blob. */
	char unknown[IMAGE_DIGEST_LEN + 1];
	sha256_digest("never pushed", 12, unknown);
	assert_int_equal(
	    registry_fetch_blob(c, &ref, unknown, fd, -1, NULL, NULL, NULL, NULL, &err), -ENOENT);
	assert_int_equal(
	    registry_fetch_blob(c, &ref, "sha256:abc", fd, -1, NULL, NULL, NULL, NULL, &err),
	    -EINVAL);
}

struct kill_ctx {
	struct fx *fx;
	bool restart;
	unsigned calls;
	uint64_t killed_at;
	bool went_back; /* progress after the kill restarted below killed_at */
};

static void kill_midway(void *userdata, uint64_t total)
{
	struct kill_ctx *k = userdata;
	k->calls++;
	if (k->killed_at && total < k->killed_at)
		k->went_back = true;
	if (k->killed_at || total < (1u << 20))
		return;
	k->killed_at = total;
	stop(&k->fx->pid[REG_OPEN]);
	if (k->restart)
		registry_start(k->fx, REG_OPEN);
}

static void test_blob_resume(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	char path[PATH_MAX];
	uint64_t size = 0;
	unsigned resumes = 0;
	struct kill_ctx k = { .fx = fx, .restart = true };
	struct registry_blob_opts bo = { .progress = kill_midway, .userdata = &k };

	ref_for(fx->port[REG_OPEN], REPO ":v1", &ref);
	_cleanup_close_ int fd = tmpfile_fd("resume", path);
	int r = registry_fetch_blob(c, &ref, fx->big_digest, fd, BIG_SIZE, NULL, &bo, &size,
				    &resumes, &err);
	if (r < 0)
		print_message("fetch: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_true(k.killed_at > 0 && k.killed_at < BIG_SIZE);
	assert_true(resumes >= 1);
	assert_false(k.went_back); /* resumed with Range, not started over */
	assert_int_equal(size, BIG_SIZE);
	assert_file_equals(path, fx->big, BIG_SIZE);
	unlink(path);
}

static void test_blob_registry_down(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	char path[PATH_MAX];
	struct kill_ctx k = { .fx = fx, .restart = false };
	struct registry_blob_opts bo = { .progress = kill_midway, .userdata = &k };

	ref_for(fx->port[REG_OPEN], REPO ":v1", &ref);
	_cleanup_close_ int fd = tmpfile_fd("down", path);
	int r =
	    registry_fetch_blob(c, &ref, fx->big_digest, fd, BIG_SIZE, NULL, &bo, NULL, NULL, &err);
	assert_true(r == -ECONNREFUSED || r == -ECONNRESET);
	assert_true(k.killed_at > 0);
	assert_non_null(strstr(err.msg, "127.0.0.1"));

	/* Back up: a new pull into a fresh file succeeds. */
	registry_start(fx, REG_OPEN);
	_cleanup_close_ int fd2 = tmpfile_fd("down2", path);
	assert_int_equal(registry_fetch_blob(c, &ref, fx->big_digest, fd2, BIG_SIZE, NULL, NULL,
					     NULL, NULL, &err),
			 0);
	assert_file_equals(path, fx->big, BIG_SIZE);
	unlink(path);
	tpath(path, fx->dir, "down");
	unlink(path);
}

static void test_token_auth(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	struct registry_creds creds = { .username = USER, .password = PASSWORD };
	char path[PATH_MAX];

	ref_for(fx->port[REG_TOKEN], REPO ":v1", &ref);
	unsigned before = tokens_issued();
	_cleanup_(registry_manifest_freep) struct registry_manifest *m = NULL;
	int r = registry_fetch_manifest(c, &ref, NULL, NULL, &creds, &m, &err);
	if (r < 0)
		print_message("fetch: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_string_equal(m->digest, fx->manifest_digest);
	assert_int_equal(tokens_issued(), before + 1);

	/* The cached token serves the next requests of the same scope. */
	_cleanup_close_ int fd = tmpfile_fd("token-blob", path);
	assert_int_equal(registry_fetch_blob(c, &ref, fx->small_digest, fd, (int64_t)fx->small_len,
					     &creds, NULL, NULL, NULL, &err),
			 0);
	assert_file_equals(path, fx->small, fx->small_len);
	_cleanup_(registry_manifest_freep) struct registry_manifest *m2 = NULL;
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, &creds, &m2, &err), 0);
	assert_int_equal(tokens_issued(), before + 1);

	/* The cached token is that user's alone: anonymous and wrong
	 * credentials on the same client are refused, and the user's own
	 * requests still use it. */
	struct registry_manifest *denied = NULL;
	struct registry_creds wrong_pw = { .username = USER, .password = "not-the-password" };
	struct registry_creds other_user = { .username = "mallory", .password = PASSWORD };
	for (int round = 0; round < 2; round++) {
		assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &denied, &err),
				 -EACCES);
		assert_int_equal(
		    registry_fetch_manifest(c, &ref, NULL, NULL, &wrong_pw, &denied, &err),
		    -EACCES);
		assert_int_equal(
		    registry_fetch_manifest(c, &ref, NULL, NULL, &other_user, &denied, &err),
		    -EACCES);
		assert_null(denied);
	}
	unsigned after_others = tokens_issued();
	_cleanup_(registry_manifest_freep) struct registry_manifest *m4 = NULL;
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, &creds, &m4, &err), 0);
	assert_int_equal(tokens_issued(), after_others);

	/* Another client has its own cache. */
	_cleanup_(registry_client_freep) struct registry_client *c2 = client(0);
	struct registry_manifest *m3 = NULL;

	/* Wrong password: the token server refuses; the message names the
	 * registry, never the secret. */
	struct registry_creds wrong = { .username = USER, .password = "hunter2-wrong" };
	assert_int_equal(registry_fetch_manifest(c2, &ref, NULL, NULL, &wrong, &m3, &err), -EACCES);
	assert_non_null(strstr(err.msg, ref.domain));
	assert_null(strstr(err.msg, "hunter2"));

	/* Anonymous: a token granting nothing, so a 401 after auth. */
	assert_int_equal(registry_fetch_manifest(c2, &ref, NULL, NULL, NULL, &m3, &err), -EACCES);
	assert_non_null(strstr(err.msg, ref.domain));
	assert_null(m3);

	/* registry_token sent as is: a bogus one is refused. */
	struct registry_creds tok = { .registry_token = "not-a-jwt-secret" };
	assert_int_equal(registry_fetch_manifest(c2, &ref, NULL, NULL, &tok, &m3, &err), -EACCES);
	assert_null(strstr(err.msg, "not-a-jwt"));
}

static void test_basic_auth(void **state)
{
	struct fx *fx = *state;
	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	struct registry_manifest *m = NULL;

	ref_for(fx->port[REG_BASIC], REPO ":v1", &ref);
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m, &err), -EACCES);
	assert_non_null(strstr(err.msg, "requires credentials"));

	struct registry_creds wrong = { .username = USER, .password = "hunter2-wrong" };
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, &wrong, &m, &err), -EACCES);
	assert_non_null(strstr(err.msg, ref.domain));
	assert_null(strstr(err.msg, "hunter2"));

	struct registry_creds up = { .username = USER, .password = PASSWORD };
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, &up, &m, &err), 0);
	assert_string_equal(m->digest, fx->manifest_digest);
	m = registry_manifest_free(m);

	struct registry_creds b64 = { .auth = "YWxpY2U6czNjcmV0LXB3" };
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, &b64, &m, &err), 0);
	m = registry_manifest_free(m);

	char path[PATH_MAX];
	_cleanup_close_ int fd = tmpfile_fd("basic-blob", path);
	assert_int_equal(registry_fetch_blob(c, &ref, fx->small_digest, fd, (int64_t)fx->small_len,
					     &b64, NULL, NULL, NULL, &err),
			 0);
	assert_file_equals(path, fx->small, fx->small_len);
}

/* A redirect to another host (blob storage) does not carry the registry's
 * credentials. */
static void test_redirect(void **state)
{
	struct fx *fx = *state;
	char data[PATH_MAX], log[PATH_MAX], out[PATH_MAX], port[16];
	const char content[] = "blob behind a redirect\n";
	char digest[IMAGE_DIGEST_LEN + 1];

	sha256_digest(content, sizeof(content) - 1, digest);
	write_text(tpath(data, fx->dir, "redirect.data"), content);
	write_text(tpath(log, fx->dir, "redirect.log"), "");
	int p = free_port();
	snprintf(port, sizeof(port), "%d", p);
	char *argv[] = { PYTHON, fx->fixture, (char *)"redirect", port, data, log, NULL };
	char slog[PATH_MAX];
	pid_t pid = spawn(argv, tpath(slog, fx->dir, "redirect-server.log"));
	wait_listening(pid, p);

	_cleanup_(registry_client_freep) struct registry_client *c = client(0);
	struct image_ref ref;
	struct cric_err err = { "" };
	struct registry_creds creds = { .username = USER, .password = PASSWORD };
	ref_for(p, REPO ":v1", &ref);
	_cleanup_close_ int fd = tmpfile_fd("redirected", out);
	int r = registry_fetch_blob(c, &ref, digest, fd, sizeof(content) - 1, &creds, NULL, NULL,
				    NULL, &err);
	stop(&pid);
	if (r < 0)
		print_message("fetch: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_file_equals(out, content, sizeof(content) - 1);

	char line[64] = "";
	FILE *f = fopen(log, "re");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_string_equal(line, "storage auth=no\n");
}

static void test_low_speed_timeout(void **state)
{
	(void)state;
	/* A listener that never accepts: the connection completes in the
	 * backlog and no byte ever comes back. */
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 8), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &len), 0);

	_cleanup_(registry_client_freep) struct registry_client *c = client(1);
	struct image_ref ref;
	struct cric_err err = { "" };
	struct registry_manifest *m = NULL;
	ref_for(ntohs(a.sin_port), REPO ":v1", &ref);
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m, &err), -ETIMEDOUT);
	close(ls);

	/* Nothing listening at all. */
	ref_for(free_port(), REPO ":v1", &ref);
	assert_int_equal(registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m, &err),
			 -ECONNREFUSED);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A registry that trickles a blob (2 bytes every 0.5 s: never silent for
 * long) fails the fetch once it is late for progress_min_bytes, with a
 * message naming the registry and the blob; a caller's deadline stops a
 * fetch that still makes progress by that measure. */
static void test_trickle_and_deadline(void **state)
{
	struct fx *fx = *state;
	char data[PATH_MAX], out[PATH_MAX], port[16], slog[PATH_MAX];
	char content[4096];
	memset(content, 'z', sizeof(content));
	char digest[IMAGE_DIGEST_LEN + 1];
	sha256_digest(content, sizeof(content), digest);
	write_bytes(tpath(data, fx->dir, "trickle.data"), content, sizeof(content), 0644);
	int p = free_port();
	snprintf(port, sizeof(port), "%d", p);
	char *argv[] = { PYTHON, fx->fixture, (char *)"trickle", port, data, NULL };
	pid_t pid = spawn(argv, tpath(slog, fx->dir, "trickle-server.log"));
	wait_listening(pid, p);
	struct image_ref ref;
	ref_for(p, REPO ":v1", &ref);

	_cleanup_(registry_client_freep) struct registry_client *c = client(2);
	struct cric_err err = { "" };
	_cleanup_close_ int fd = tmpfile_fd("trickled", out);
	double t0 = mono_s();
	int r =
	    registry_fetch_blob(c, &ref, digest, fd, sizeof(content), NULL, NULL, NULL, NULL, &err);
	double took = mono_s() - t0;
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(took >= 1.9 && took < 6);
	assert_non_null(strstr(err.msg, "stalled"));
	assert_non_null(strstr(err.msg, digest));
	assert_non_null(strstr(err.msg, ref.domain));

	/* A token endpoint that trickles holds the pull no longer. */
	struct registry_manifest *m = NULL;
	t0 = mono_s();
	r = registry_fetch_manifest(c, &ref, NULL, NULL, NULL, &m, &err);
	took = mono_s() - t0;
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(took >= 1.9 && took < 6);

	/* 4 bytes in 2 s are progress at a floor of 4 bytes: only the
	 * caller's deadline (3.5 s away) ends it. */
	struct registry_client *c4 = NULL;
	struct registry_client_opts o = { .max_retries = -1,
					  .fetch_helper = fetch_helper(),
					  .progress_timeout_sec = 2,
					  .progress_min_bytes = 2,
					  .connect_timeout_sec = 5 };
	assert_int_equal(registry_client_new(&o, &c4, &err), 0);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct registry_blob_opts bo = {
		.deadline_ns = now.tv_sec * 1000000000LL + now.tv_nsec + 3500000000LL,
	};
	assert_int_equal(ftruncate(fd, 0), 0);
	t0 = mono_s();
	r = registry_fetch_blob(c4, &ref, digest, fd, sizeof(content), NULL, &bo, NULL, NULL, &err);
	took = mono_s() - t0;
	registry_client_free(c4);
	stop(&pid);
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(took >= 3.4 && took < 6);
	assert_non_null(strstr(err.msg, "deadline"));
	assert_non_null(strstr(err.msg, digest));
}

/* NULL if the live tests can run, else why not. */
static const char *missing_prerequisite(void)
{
	if (access(REGISTRY_BIN, X_OK) != 0)
		return REGISTRY_BIN " is not installed";
	char *argv[] = { PYTHON,
			 (char *)"-W",
			 (char *)"ignore",
			 (char *)"-c",
			 (char *)"import cryptography, crypt; "
				 "assert crypt.crypt('x', crypt.mksalt(crypt.METHOD_BLOWFISH))",
			 NULL };
	pid_t pid;
	int status;
	if (posix_spawn(&pid, PYTHON, NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return PYTHON " with the cryptography module and bcrypt in crypt is not available";
	return NULL;
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_challenge_parse), cmocka_unit_test(test_creds),
		cmocka_unit_test(test_token_parse),     cmocka_unit_test(test_creds_file_parse),
		cmocka_unit_test(test_cache),           cmocka_unit_test(test_cache_identity),
		cmocka_unit_test(test_insecure),        cmocka_unit_test(test_low_speed_timeout),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_manifest_by_tag_and_digest),
		cmocka_unit_test(test_manifest_unknown),
		cmocka_unit_test(test_blob),
		cmocka_unit_test(test_blob_mismatch),
		cmocka_unit_test(test_token_auth),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_redirect),
		cmocka_unit_test(test_trickle_and_deadline),
		cmocka_unit_test(test_blob_resume),
		cmocka_unit_test(test_blob_registry_down),
	};
	int failed = cmocka_run_group_tests_name("registry-offline", pure, NULL, NULL);
	const char *missing = missing_prerequisite();
	if (missing && test_in_ci()) {
		printf("FAIL: registry-live: %s (a missing prerequisite fails under CI=true)\n",
		       missing);
		return failed | 1;
	}
	if (missing) {
		printf("SKIP: registry-live: %s\n", missing);
		return failed;
	}
	return failed |
	       cmocka_run_group_tests_name("registry-live", live, group_setup, group_teardown);
}
