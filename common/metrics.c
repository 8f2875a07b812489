/* Counters, gauges and histograms of a daemon, and the Prometheus text
 * writer (metrics.h). */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

struct metric_series {
	char *values[METRIC_LABELS_MAX];
	double value;      /* counter, gauge; histogram: the sum */
	uint64_t *buckets; /* histogram: n_bounds + 1 counts (not cumulative) */
};

const double metric_latency_bounds[METRIC_N_LATENCY_BOUNDS] = { 0.005, 0.01, 0.025, 0.05, 0.1,
								0.25,  0.5,  1,     2.5,  5,
								10,    30,   60,    300 };

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric_family *registry_head;
static struct metric_family **registry_tail = &registry_head;

static size_t n_labels(const struct metric_family *f)
{
	size_t n = 0;
	while (n < METRIC_LABELS_MAX && f->labels[n])
		n++;
	return n;
}

static struct metric_series *series_new(struct metric_family *f, const char *const *values,
					bool other);

/* Under the lock. */
static void register_locked(struct metric_family *f)
{
	if (f->registered_)
		return;
	f->registered_ = true;
	f->next_ = NULL;
	*registry_tail = f;
	registry_tail = &f->next_;
	if (n_labels(f) == 0 && f->type != METRIC_GAUGE)
		(void)series_new(f, NULL, false); /* a counter without labels shows 0 */
}

void metric_register(struct metric_family *f)
{
	pthread_mutex_lock(&registry_lock);
	register_locked(f);
	pthread_mutex_unlock(&registry_lock);
}

/* A stored value (cut at METRIC_VALUE_MAX) against a caller's. */
static bool value_eq(const char *stored, const char *v)
{
	if (!v)
		v = "";
	return strnlen(v, METRIC_VALUE_MAX) == strlen(stored) &&
	       strncmp(stored, v, METRIC_VALUE_MAX) == 0;
}

static void series_free_values(struct metric_series *s)
{
	for (size_t i = 0; i < METRIC_LABELS_MAX; i++)
		free(s->values[i]);
	free(s->buckets);
}

/* Append a series (under the lock); NULL on OOM. */
static struct metric_series *series_new(struct metric_family *f, const char *const *values,
					bool other)
{
	if (f->n_series_ == f->cap_series_) {
		size_t cap = f->cap_series_ ? f->cap_series_ * 2 : 8;
		struct metric_series *n = realloc(f->series_, cap * sizeof(*n));
		if (!n)
			return NULL;
		f->series_ = n;
		f->cap_series_ = cap;
	}
	struct metric_series s = { { 0 } };
	size_t nl = n_labels(f);
	bool ok = true;
	for (size_t i = 0; i < nl; i++) {
		const char *v = other ? "_other" : values && values[i] ? values[i] : "";
		ok = ok && (s.values[i] = strndup(v, METRIC_VALUE_MAX)) != NULL;
	}
	if (ok && f->type == METRIC_HISTOGRAM)
		ok = (s.buckets = calloc(f->n_bounds + 1, sizeof(*s.buckets))) != NULL;
	if (!ok) {
		series_free_values(&s);
		return NULL;
	}
	f->series_[f->n_series_] = s;
	return &f->series_[f->n_series_++];
}

/* The series of these values, made if new (under the lock); NULL on OOM. */
static struct metric_series *series_find(struct metric_family *f, const char *const *values)
{
	register_locked(f);
	size_t nl = n_labels(f);
	for (size_t i = 0; i < f->n_series_; i++) {
		bool eq = true;
		for (size_t j = 0; eq && j < nl; j++)
			eq = value_eq(f->series_[i].values[j], values ? values[j] : NULL);
		if (eq)
			return &f->series_[i];
	}
	if (f->n_series_ < METRIC_SERIES_MAX - 1 || nl == 0)
		return series_new(f, values, false);
	/* Full: the last series is the "_other" one. */
	if (f->n_series_ == METRIC_SERIES_MAX - 1)
		return series_new(f, values, true);
	return &f->series_[f->n_series_ - 1];
}

void metric_add(struct metric_family *f, const char *const *values, double v)
{
	if (f->type == METRIC_HISTOGRAM || (f->type == METRIC_COUNTER && !(v >= 0)))
		return;
	pthread_mutex_lock(&registry_lock);
	struct metric_series *s = series_find(f, values);
	if (s)
		s->value += v;
	pthread_mutex_unlock(&registry_lock);
}

void metric_set(struct metric_family *f, const char *const *values, double v)
{
	if (f->type != METRIC_GAUGE)
		return;
	pthread_mutex_lock(&registry_lock);
	struct metric_series *s = series_find(f, values);
	if (s)
		s->value = v;
	pthread_mutex_unlock(&registry_lock);
}

void metric_observe(struct metric_family *f, const char *const *values, double v)
{
	if (f->type != METRIC_HISTOGRAM || isnan(v))
		return;
	pthread_mutex_lock(&registry_lock);
	struct metric_series *s = series_find(f, values);
	if (s) {
		size_t b = 0;
		while (b < f->n_bounds && v > f->bounds[b])
			b++;
		s->buckets[b]++;
		s->value += v;
	}
	pthread_mutex_unlock(&registry_lock);
}

double metric_seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- snapshot ---- */

static void family_free(Cric__MetricFamily *f)
{
	if (f)
		protobuf_c_message_free_unpacked(&f->base, NULL);
}

static Cric__MetricFamily *family_new(const char *name, const char *help, enum metric_type type,
				      size_t n_samples)
{
	Cric__MetricFamily *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	cric__metric_family__init(f);
	f->type = (Cric__MetricFamily__Type)type;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	f->samples = calloc(n_samples ? n_samples : 1, sizeof(*f->samples));
	if (!f->name || !f->help || !f->samples) {
		family_free(f);
		return NULL;
	}
	return f;
}

static Cric__MetricSample *sample_new(const struct metric_family *mf, const struct metric_series *s)
{
	Cric__MetricSample *out = calloc(1, sizeof(*out));
	if (!out)
		return NULL;
	cric__metric_sample__init(out);
	size_t nl = mf ? n_labels(mf) : 0;
	if (nl && !(out->labels = calloc(nl, sizeof(*out->labels))))
		goto fail;
	for (size_t i = 0; i < nl; i++) {
		Cric__MetricLabel *l = calloc(1, sizeof(*l));
		if (!l)
			goto fail;
		cric__metric_label__init(l);
		out->labels[out->n_labels++] = l;
		if (!(l->name = strdup(mf->labels[i])) || !(l->value = strdup(s->values[i])))
			goto fail;
	}
	out->value = s->value;
	if (mf && mf->type == METRIC_HISTOGRAM) {
		if (!(out->buckets = calloc(mf->n_bounds + 1, sizeof(*out->buckets))))
			goto fail;
		uint64_t cum = 0;
		for (size_t b = 0; b <= mf->n_bounds; b++)
			out->buckets[b] = cum += s->buckets[b];
		out->n_buckets = mf->n_bounds + 1;
	}
	return out;
fail:
	protobuf_c_message_free_unpacked(&out->base, NULL);
	return NULL;
}

/* A copy of a registered family (under the lock). */
static Cric__MetricFamily *family_snapshot(const struct metric_family *mf)
{
	Cric__MetricFamily *f = family_new(mf->name, mf->help, mf->type, mf->n_series_);
	if (!f)
		return NULL;
	if (mf->type == METRIC_HISTOGRAM && mf->n_bounds) {
		if (!(f->bounds = calloc(mf->n_bounds, sizeof(*f->bounds)))) {
			family_free(f);
			return NULL;
		}
		memcpy(f->bounds, mf->bounds, mf->n_bounds * sizeof(*f->bounds));
		f->n_bounds = mf->n_bounds;
	}
	for (size_t i = 0; i < mf->n_series_; i++) {
		Cric__MetricSample *s = sample_new(mf, &mf->series_[i]);
		if (!s) {
			family_free(f);
			return NULL;
		}
		f->samples[f->n_samples++] = s;
	}
	return f;
}

/* One process gauge (or counter) without labels. */
static Cric__MetricFamily *process_family(const char *name, const char *help, enum metric_type type,
					  double v)
{
	Cric__MetricFamily *f = family_new(name, help, type, 1);
	struct metric_series s = { .value = v };
	if (f && !(f->samples[0] = sample_new(NULL, &s))) {
		family_free(f);
		return NULL;
	}
	if (f)
		f->n_samples = 1;
	return f;
}

static double process_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long size = 0, resident = 0;
	if (!f)
		return NAN;
	int n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : NAN;
}

static double process_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return NAN;
	double n = -1; /* the directory's own fd */
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static double process_cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return NAN;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static pthread_mutex_t collectors_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	metric_collect_fn fn;
	void *arg;
} collectors[METRIC_COLLECTORS_MAX];

int metric_collector_add(metric_collect_fn fn, void *arg)
{
	int r = -ENOSPC;
	pthread_mutex_lock(&collectors_lock);
	for (size_t i = 0; r < 0 && i < METRIC_COLLECTORS_MAX; i++)
		if (!collectors[i].fn) {
			collectors[i].fn = fn;
			collectors[i].arg = arg;
			r = 0;
		}
	pthread_mutex_unlock(&collectors_lock);
	return r;
}

void metric_collector_remove(metric_collect_fn fn, void *arg)
{
	pthread_mutex_lock(&collectors_lock);
	for (size_t i = 0; i < METRIC_COLLECTORS_MAX; i++)
		if (collectors[i].fn == fn && collectors[i].arg == arg)
			collectors[i].fn = NULL;
	pthread_mutex_unlock(&collectors_lock);
}

/* Collections run one at a time, outside the registry's lock (they set
 * gauges). */
static void collect(void)
{
	pthread_mutex_lock(&collectors_lock);
	for (size_t i = 0; i < METRIC_COLLECTORS_MAX; i++)
		if (collectors[i].fn)
			collectors[i].fn(collectors[i].arg);
	pthread_mutex_unlock(&collectors_lock);
}

int metrics_snapshot(const char *daemon, int64_t started_ns, Cric__MetricsResponse **ret)
{
	collect();
	Cric__MetricsResponse *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	cric__metrics_response__init(r);
	const size_t n_process = 4;
	size_t n = n_process;
	pthread_mutex_lock(&registry_lock);
	for (struct metric_family *f = registry_head; f; f = f->next_)
		n++;
	bool ok = (r->daemon = strdup(daemon ? daemon : "")) &&
		  (r->families = calloc(n, sizeof(*r->families)));
	for (struct metric_family *f = registry_head; ok && f; f = f->next_)
		ok = (r->families[r->n_families++] = family_snapshot(f)) != NULL;
	pthread_mutex_unlock(&registry_lock);
	if (ok) {
		Cric__MetricFamily *p[] = {
			process_family("cric_process_resident_memory_bytes",
				       "Resident memory of the daemon's process in bytes.",
				       METRIC_GAUGE, process_rss_bytes()),
			process_family("cric_process_open_fds",
				       "File descriptors the daemon's process holds open.",
				       METRIC_GAUGE, process_open_fds()),
			process_family("cric_process_start_time_seconds",
				       "When the daemon started, in seconds since the epoch.",
				       METRIC_GAUGE, (double)started_ns / 1e9),
			process_family("cric_process_cpu_seconds_total",
				       "CPU time (user and system) the daemon's process used.",
				       METRIC_COUNTER, process_cpu_seconds()),
		};
		for (size_t i = 0; i < ARRAY_SIZE(p); i++) {
			if (p[i])
				r->families[r->n_families++] = p[i];
			ok = ok && p[i];
		}
	}
	if (!ok) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

/* ---- the text format ---- */

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || (colon && *s == ':')))
			return false;
	return true;
}

void metrics_escape(FILE *f, const char *s, bool label_value)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"' && label_value)
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* A float as Go's strconv writes it for Prometheus: the shortest form
 * that reads back the same, +Inf, -Inf, NaN. */
static void write_float(FILE *f, double v)
{
	if (isnan(v)) {
		fputs("NaN", f);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", f);
		return;
	}
	char buf[40];
	if (v > -1e15 && v < 1e15 && v == (double)(long long)v) {
		fprintf(f, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, f);
}

static bool sample_labels_ok(const Cric__MetricSample *s, const char *daemon)
{
	for (size_t i = 0; i < s->n_labels; i++) {
		const char *n = s->labels[i]->name;
		if (!name_ok(n, false) || strncmp(n, "__", 2) == 0 || strcmp(n, "le") == 0 ||
		    (daemon && strcmp(n, "daemon") == 0))
			return false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(n, s->labels[j]->name) == 0)
				return false;
	}
	return true;
}

/* name{daemon="..",labels..,le=".."} */
static void write_labels(FILE *f, const char *daemon, const Cric__MetricSample *s, const char *le)
{
	if (!daemon && s->n_labels == 0 && !le)
		return;
	const char *sep = "";
	fputc('{', f);
	if (daemon) {
		fputs("daemon=\"", f);
		metrics_escape(f, daemon, true);
		fputc('"', f);
		sep = ",";
	}
	for (size_t i = 0; i < s->n_labels; i++) {
		fprintf(f, "%s%s=\"", sep, s->labels[i]->name);
		metrics_escape(f, s->labels[i]->value, true);
		fputc('"', f);
		sep = ",";
	}
	if (le)
		fprintf(f, "%sle=\"%s\"", sep, le);
	fputc('}', f);
}

static bool bounds_ok(const Cric__MetricFamily *fam)
{
	if (fam->n_bounds > METRIC_BOUNDS_MAX)
		return false;
	for (size_t i = 0; i < fam->n_bounds; i++)
		if (!isfinite(fam->bounds[i]) || (i > 0 && !(fam->bounds[i] > fam->bounds[i - 1])))
			return false;
	return true;
}

static void write_sample(FILE *f, const Cric__MetricFamily *fam, const char *daemon,
			 const Cric__MetricSample *s)
{
	if (!sample_labels_ok(s, daemon))
		return;
	if (fam->type != CRIC__METRIC_FAMILY__TYPE__HISTOGRAM) {
		fputs(fam->name, f);
		write_labels(f, daemon, s, NULL);
		fputc(' ', f);
		write_float(f, s->value);
		fputc('\n', f);
		return;
	}
	if (s->n_buckets != fam->n_bounds + 1)
		return;
	for (size_t b = 1; b < s->n_buckets; b++)
		if (s->buckets[b] < s->buckets[b - 1])
			return;
	for (size_t b = 0; b < s->n_buckets; b++) {
		char le[40] = "+Inf";
		if (b < fam->n_bounds) {
			FILE *m = fmemopen(le, sizeof(le) - 1, "w");
			if (!m)
				return;
			write_float(m, fam->bounds[b]);
			fclose(m);
		}
		fprintf(f, "%s_bucket", fam->name);
		write_labels(f, daemon, s, le);
		fprintf(f, " %llu\n", (unsigned long long)s->buckets[b]);
	}
	fprintf(f, "%s_sum", fam->name);
	write_labels(f, daemon, s, NULL);
	fputc(' ', f);
	write_float(f, s->value);
	fprintf(f, "\n%s_count", fam->name);
	write_labels(f, daemon, s, NULL);
	fprintf(f, " %llu\n", (unsigned long long)s->buckets[s->n_buckets - 1]);
}

static bool family_ok(const Cric__MetricFamily *fam)
{
	return fam && name_ok(fam->name, true) && strlen(fam->name) < 200 &&
	       (fam->type == CRIC__METRIC_FAMILY__TYPE__COUNTER ||
		fam->type == CRIC__METRIC_FAMILY__TYPE__GAUGE ||
		(fam->type == CRIC__METRIC_FAMILY__TYPE__HISTOGRAM && bounds_ok(fam)));
}

static bool same_bounds(const Cric__MetricFamily *a, const Cric__MetricFamily *b)
{
	return a->n_bounds == b->n_bounds &&
	       (a->n_bounds == 0 ||
		memcmp(a->bounds, b->bounds, a->n_bounds * sizeof(double)) == 0);
}

static const char *type_name(Cric__MetricFamily__Type t)
{
	return t == CRIC__METRIC_FAMILY__TYPE__COUNTER ? "counter"
	       : t == CRIC__METRIC_FAMILY__TYPE__GAUGE ? "gauge"
						       : "histogram";
}

/* Has an earlier family (answer a, index i) the same name? */
static bool written_before(Cric__MetricsResponse *const *answers, size_t a, size_t i)
{
	const char *name = answers[a]->families[i]->name;
	for (size_t pa = 0; pa <= a; pa++) {
		const Cric__MetricsResponse *r = answers[pa];
		if (!r)
			continue; /* a daemon that did not answer */
		size_t end = pa == a ? i : r->n_families;
		for (size_t pi = 0; pi < end; pi++)
			if (family_ok(r->families[pi]) && strcmp(r->families[pi]->name, name) == 0)
				return true;
	}
	return false;
}

char *metrics_format(Cric__MetricsResponse *const *answers, size_t n, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	for (size_t a = 0; a < n; a++) {
		if (!answers[a])
			continue;
		for (size_t i = 0; i < answers[a]->n_families; i++) {
			const Cric__MetricFamily *fam = answers[a]->families[i];
			if (!family_ok(fam) || written_before(answers, a, i))
				continue;
			fprintf(f, "# HELP %s ", fam->name);
			metrics_escape(f, fam->help, false);
			fprintf(f, "\n# TYPE %s %s\n", fam->name, type_name(fam->type));
			/* This family's samples from this answer on, every answer's
			 * families of the name and type (the first of each). */
			for (size_t b = a; b < n; b++) {
				const Cric__MetricsResponse *r = answers[b];
				if (!r)
					continue;
				const char *daemon = r->daemon && r->daemon[0] ? r->daemon : NULL;
				for (size_t j = b == a ? i : 0; j < r->n_families; j++) {
					const Cric__MetricFamily *o = r->families[j];
					if (!family_ok(o) || strcmp(o->name, fam->name) != 0)
						continue;
					if (o->type == fam->type && same_bounds(o, fam))
						for (size_t k = 0; k < o->n_samples; k++)
							write_sample(f, o, daemon, o->samples[k]);
					break;
				}
			}
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}
