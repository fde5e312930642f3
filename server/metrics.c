/* metrics.c - counters, gauges, histograms and their exposition (see metrics.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "hfm/common.h"
#include "hfm/metrics.h"

#ifndef HFM_VERSION
#define HFM_VERSION "unknown"
#endif

/* ---- label sets --------------------------------------------------------- */

struct label {
	const char *name;
	const char *const *values;
	unsigned n;
};

#define LABEL(nm, vals) { nm, vals, sizeof(vals) / sizeof(vals[0]) }

static const char *const route_v[HFM_MR__N] = { "other", "file", "api", "ui", "health", "metrics" };
static const char *const source_v[HFM_MS__N] = { "none", "model-bin", "git", "cache", "other" };
static const char *const code_v[HFM_MC__N] = { "2xx", "3xx", "4xx", "5xx", "other" };
static const char *const cache_v[HFM_MCACHE__N - 1] = { "hit", "miss", "relay" };
static const char *const upkind_v[HFM_UPK__N] = { "other", "api", "blob", "relay" };
static const char *const uperr_v[HFM_UPE__N] = { "timeout", "transfer", "status", "other" };
static const char *const close_v[HFM_MCL__N] = { "head_timeout", "evicted", "refused" };
static const char *const owner_v[HFM_MO__N] = { "cache", "imported" };
static const char *const version_v[1] = { HFM_VERSION };

static const struct label L_route = LABEL("route", route_v);
static const struct label L_source = LABEL("source", source_v);
static const struct label L_code = LABEL("code", code_v);
static const struct label L_cache = LABEL("result", cache_v);
static const struct label L_upkind = LABEL("kind", upkind_v);
static const struct label L_uperr = LABEL("reason", uperr_v);
static const struct label L_close = LABEL("reason", close_v);
static const struct label L_owner = LABEL("owner", owner_v);
static const struct label L_version = LABEL("version", version_v);

/* ---- histogram bounds (in the observed unit) ---------------------------- */

#define MS 1000000ull
/* From an API answer from memory (under a millisecond) to a large file
 * over a slow link (minutes). */
static const uint64_t request_ns[] = {
	1 * MS, 2500000, 5 * MS, 10 * MS, 25 * MS, 50 * MS, 100 * MS, 250 * MS, 500 * MS,
	1000 * MS, 2500 * MS, 5000 * MS, 10000 * MS, 30000 * MS, 60000 * MS, 300000 * MS,
};
#define MAX_BOUNDS 16

/* ---- the families ------------------------------------------------------- */

enum type { COUNTER, GAUGE, HISTOGRAM };

struct family {
	const char *name;
	enum type type;
	unsigned first;                  /* enum hfm_metric, or hfm_histogram */
	const struct label *labels[3];
	int optional;                    /* gauge exposed only once set */
	const uint64_t *bounds;          /* histograms */
	unsigned nbounds;
	const char *help;
};

#define HIST(b) b, sizeof(b) / sizeof(b[0])

static const struct family families[] = {
	/* transport */
	{ "hfmirror_requests_total", COUNTER, HFM_M_REQUESTS, { &L_route, &L_source, &L_code }, 0, NULL, 0,
	  "Requests answered, by route class, answering source and status class." },
	{ "hfmirror_body_bytes_total", COUNTER, HFM_M_BODY_BYTES, { &L_source }, 0, NULL, 0,
	  "Response body bytes sent, by answering source." },
	{ "hfmirror_requests_in_flight", GAUGE, HFM_M_REQUESTS_IN_FLIGHT, { NULL }, 0, NULL, 0,
	  "Requests received and not yet answered completely." },
	{ "hfmirror_waits_total", COUNTER, HFM_M_WAITS, { NULL }, 0, NULL, 0,
	  "Times a request was suspended to wait for upstream or disk work." },
	{ "hfmirror_wait_timeouts_total", COUNTER, HFM_M_WAIT_TIMEOUTS, { NULL }, 0, NULL, 0,
	  "Requests answered 503 after waiting longer than wait-timeout." },
	{ "hfmirror_requests_rejected_total", COUNTER, HFM_M_REQUESTS_REJECTED, { NULL }, 0, NULL, 0,
	  "Request heads refused before routing (malformed, too large, bad Host)." },
	{ "hfmirror_connections_open", GAUGE, HFM_M_CONNECTIONS_OPEN, { NULL }, 0, NULL, 0,
	  "Client connections open now." },
	{ "hfmirror_connections_total", COUNTER, HFM_M_CONNECTIONS, { NULL }, 0, NULL, 0,
	  "Client connections accepted." },
	{ "hfmirror_connections_closed_total", COUNTER, HFM_M_CONNECTIONS_CLOSED, { &L_close }, 0, NULL, 0,
	  "Connections the server closed itself: at the head deadline, to make room at the "
	  "connection cap, or refused at the cap." },
	{ "hfmirror_start_time_seconds", GAUGE, HFM_M_START_TIME, { NULL }, 1, NULL, 0,
	  "When the server started, in seconds since the Unix epoch." },
	{ "hfmirror_build_info", GAUGE, HFM_M_BUILD_INFO, { &L_version }, 0, NULL, 0,
	  "Always 1; the version of the running binary is its label." },
	/* the cache */
	{ "hfmirror_cache_answers_total", COUNTER, HFM_M_CACHE_ANSWERS, { &L_cache }, 0, NULL, 0,
	  "File answers with a body from the online cache: hit (a complete object), miss "
	  "(fetched into the store), relay (passed through unstored)." },
	{ "hfmirror_cache_fills_in_flight", GAUGE, HFM_M_CACHE_FILLS_IN_FLIGHT, { NULL }, 0, NULL, 0,
	  "Upstream fetches writing blob bytes into the store now." },
	{ "hfmirror_cache_fetch_failures_total", COUNTER, HFM_M_CACHE_FETCH_FAILURES, { NULL }, 0, NULL, 0,
	  "Blob fetches that ended before their bytes were stored." },
	{ "hfmirror_cache_written_bytes_total", COUNTER, HFM_M_CACHE_WRITTEN_BYTES, { NULL }, 0, NULL, 0,
	  "Blob bytes written into the store by fetches." },
	{ "hfmirror_cache_verified_total", COUNTER, HFM_M_CACHE_VERIFIED, { NULL }, 0, NULL, 0,
	  "Blobs verified against their id and published into objects/." },
	{ "hfmirror_cache_corrupt_total", COUNTER, HFM_M_CACHE_CORRUPT, { NULL }, 0, NULL, 0,
	  "Blobs discarded because their content did not match their id." },
	{ "hfmirror_cache_evictions_total", COUNTER, HFM_M_CACHE_EVICTIONS, { NULL }, 0, NULL, 0,
	  "Blobs the evictor removed to keep the cache under its size limit." },
	{ "hfmirror_cache_evicted_bytes_total", COUNTER, HFM_M_CACHE_EVICTED_BYTES, { NULL }, 0, NULL, 0,
	  "Bytes the evictor freed." },
	{ "hfmirror_cache_limit_bytes", GAUGE, HFM_M_CACHE_LIMIT_BYTES, { NULL }, 1, NULL, 0,
	  "The cache's size limit (cache-size-limit); 0 = none." },
	/* upstream */
	{ "hfmirror_upstream_requests_total", COUNTER, HFM_M_UP_REQUESTS, { &L_upkind }, 0, NULL, 0,
	  "Upstream transfers started, by what they are for." },
	{ "hfmirror_upstream_bytes_total", COUNTER, HFM_M_UP_BYTES, { &L_upkind }, 0, NULL, 0,
	  "Upstream response body bytes received." },
	{ "hfmirror_upstream_retries_total", COUNTER, HFM_M_UP_RETRIES, { &L_upkind }, 0, NULL, 0,
	  "Upstream attempts repeated by the retry policy." },
	{ "hfmirror_upstream_errors_total", COUNTER, HFM_M_UP_ERRORS, { &L_upkind, &L_uperr }, 0, NULL, 0,
	  "Upstream transfers that failed, by what they were for and why." },
	{ "hfmirror_upstream_in_flight", GAUGE, HFM_M_UP_IN_FLIGHT, { &L_upkind }, 0, NULL, 0,
	  "Upstream transfers running now." },
	{ "hfmirror_upstream_connections_total", COUNTER, HFM_M_UP_CONNECTIONS, { NULL }, 0, NULL, 0,
	  "TCP connections opened to upstream hosts (reuse keeps it low)." },
	{ "hfmirror_upstream_unreachable_total", COUNTER, HFM_M_UP_UNREACHABLE, { NULL }, 0, NULL, 0,
	  "Times the upstream became unreachable (a hold-down began)." },
	{ "hfmirror_upstream_reachable", GAUGE, HFM_M_UP_REACHABLE, { NULL }, 1, NULL, 0,
	  "1 while the upstream is thought reachable, 0 during a hold-down." },
	{ "hfmirror_upstream_offline", GAUGE, HFM_M_UP_OFFLINE, { NULL }, 1, NULL, 0,
	  "1 when the cache never asks upstream (offline mode)." },
	/* the store */
	{ "hfmirror_store_bytes", GAUGE, HFM_M_STORE_BYTES, { &L_owner }, 1, NULL, 0,
	  "Bytes of complete objects in the store, by who put them there (disk blocks; "
	  "measured by the evictor's scan)." },
	{ "hfmirror_store_objects", GAUGE, HFM_M_STORE_OBJECTS, { &L_owner }, 1, NULL, 0,
	  "Complete objects in the store, by who put them there." },
	{ "hfmirror_store_partial_blobs", GAUGE, HFM_M_STORE_PARTIAL, { NULL }, 1, NULL, 0,
	  "Blobs still arriving under partial/." },
	{ "hfmirror_store_partial_bytes", GAUGE, HFM_M_STORE_PARTIAL_BYTES, { NULL }, 1, NULL, 0,
	  "Bytes the blobs under partial/ hold (disk blocks, maps included)." },
	{ "hfmirror_store_scan_timestamp_seconds", GAUGE, HFM_M_STORE_SCANNED, { NULL }, 1, NULL, 0,
	  "When the store gauges were last measured, in seconds since the Unix epoch." },
	{ "hfmirror_hashindex_entries", GAUGE, HFM_M_HASHINDEX_ENTRIES, { NULL }, 1, NULL, 0,
	  "Files in the model-bin hash index (each hashed once)." },
	/* git clients */
	{ "hfmirror_git_packs_total", COUNTER, HFM_M_GIT_PACKS, { NULL }, 1, NULL, 0,
	  "Upload-pack answers started for git clients." },
	{ "hfmirror_git_objects_total", COUNTER, HFM_M_GIT_OBJECTS, { NULL }, 1, NULL, 0,
	  "Objects sent to git clients in packs." },
	{ "hfmirror_git_whole_packs_total", COUNTER, HFM_M_GIT_WHOLE_PACKS, { NULL }, 1, NULL, 0,
	  "Upload-pack answers that sent a mirror's only pack as it is." },
	{ "hfmirror_git_packs_running", GAUGE, HFM_M_GIT_PACKS_RUNNING, { NULL }, 1, NULL, 0,
	  "Upload-pack answers being built now." },
};

/* Histograms have slots of their own (enum hfm_histogram). */
static const struct family histograms[] = {
	{ "hfmirror_request_duration_seconds", HISTOGRAM, HFM_H_REQUEST_SECONDS, { &L_route }, 0,
	  HIST(request_ns), "Time from a request's arrival to its last body byte, by route class." },
};
#define NFAM (sizeof(families) / sizeof(families[0]))
#define NHIST (sizeof(histograms) / sizeof(histograms[0]))

/* ---- storage ------------------------------------------------------------ */

static atomic_uint_least64_t values[HFM_M__N];
static atomic_uchar isset[HFM_M__N];
/* per label set: a count per bucket (not cumulative), the +Inf one, the sum */
static atomic_uint_least64_t hist[HFM_H__N][MAX_BOUNDS + 2];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;   /* probes, exposition */
static struct hfm_metrics_probe *probes;

void hfm_metrics_inc(enum hfm_metric m)
{
	atomic_fetch_add_explicit(&values[m], 1, memory_order_relaxed);
}

void hfm_metrics_add(enum hfm_metric m, uint64_t n)
{
	atomic_fetch_add_explicit(&values[m], n, memory_order_relaxed);
}

void hfm_metrics_sub(enum hfm_metric m, uint64_t n)
{
	atomic_fetch_sub_explicit(&values[m], n, memory_order_relaxed);
}

void hfm_metrics_set(enum hfm_metric m, int64_t v)
{
	atomic_store_explicit(&values[m], (uint64_t)v, memory_order_relaxed);
	if (!atomic_load_explicit(&isset[m], memory_order_relaxed))
		atomic_store(&isset[m], 1);
}

int64_t hfm_metrics_get(enum hfm_metric m)
{
	return (int64_t)atomic_load_explicit(&values[m], memory_order_relaxed);
}

static const struct family *hist_family(enum hfm_histogram h)
{
	for (size_t i = 0; i < NHIST; i++) {
		const struct family *f = &histograms[i];
		if ((unsigned)h >= f->first && (unsigned)h < f->first + f->labels[0]->n)
			return f;
	}
	return NULL;
}

void hfm_metrics_observe(enum hfm_histogram h, uint64_t v)
{
	const struct family *f = hist_family(h);
	unsigned b = 0;

	if (!f)
		return;
	while (b < f->nbounds && v > f->bounds[b])
		b++;
	atomic_fetch_add_explicit(&hist[h][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hist[h][MAX_BOUNDS + 1], v, memory_order_relaxed);
}

enum hfm_m_source hfm_metrics_source_of(const char *kind)
{
	if (!kind)
		return HFM_MS_NONE;
	for (unsigned i = 1; i < HFM_MS_OTHER; i++)
		if (!strcmp(kind, source_v[i]))
			return (enum hfm_m_source)i;
	return HFM_MS_OTHER;
}

enum hfm_m_code hfm_metrics_code_of(unsigned status)
{
	return status >= 200 && status < 600 ? (enum hfm_m_code)(status / 100 - 2) : HFM_MC_OTHER;
}

void hfm_metrics_request(enum hfm_m_route route, enum hfm_m_source src, unsigned status,
			 uint64_t ns)
{
	if ((unsigned)route >= HFM_MR__N)
		route = HFM_MR_OTHER;
	if ((unsigned)src >= HFM_MS__N)
		src = HFM_MS_OTHER;
	hfm_metrics_inc((enum hfm_metric)(HFM_M_REQUESTS +
		((unsigned)route * HFM_MS__N + (unsigned)src) * HFM_MC__N + hfm_metrics_code_of(status)));
	hfm_metrics_observe((enum hfm_histogram)(HFM_H_REQUEST_SECONDS + route), ns);
}

/* ---- probes ------------------------------------------------------------- */

void hfm_metrics_probe_add(struct hfm_metrics_probe *p)
{
	pthread_mutex_lock(&lock);
	p->next = probes;
	probes = p;
	pthread_mutex_unlock(&lock);
}

void hfm_metrics_probe_remove(struct hfm_metrics_probe *p)
{
	pthread_mutex_lock(&lock);
	for (struct hfm_metrics_probe **pp = &probes; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	pthread_mutex_unlock(&lock);
}

/* ---- the exposition ----------------------------------------------------- */

void hfm_metrics_escape_label(struct hfm_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			hfm_buf_puts(out, "\\\\");
		else if (*s == '"')
			hfm_buf_puts(out, "\\\"");
		else if (*s == '\n')
			hfm_buf_puts(out, "\\n");
		else
			hfm_buf_putc(out, *s);
	}
}

void hfm_metrics_escape_help(struct hfm_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			hfm_buf_puts(out, "\\\\");
		else if (*s == '\n')
			hfm_buf_puts(out, "\\n");
		else
			hfm_buf_putc(out, *s);
	}
}

static unsigned nseries(const struct family *f)
{
	unsigned n = 1;
	for (int i = 0; i < 3 && f->labels[i]; i++)
		n *= f->labels[i]->n;
	return n;
}

/* The labels of series `k` of f, with `extra` (`le="…"`) last; nothing when there are none. */
static void put_labels(struct hfm_buf *out, const struct family *f, unsigned k, const char *extra)
{
	unsigned idx[3] = { 0 }, nl = 0;

	while (nl < 3 && f->labels[nl])
		nl++;
	for (unsigned i = nl; i-- > 0;) {
		idx[i] = k % f->labels[i]->n;
		k /= f->labels[i]->n;
	}
	if (!nl && !extra)
		return;
	hfm_buf_putc(out, '{');
	for (unsigned i = 0; i < nl; i++) {
		hfm_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]->name);
		hfm_metrics_escape_label(out, f->labels[i]->values[idx[i]]);
		hfm_buf_putc(out, '"');
	}
	if (extra)
		hfm_buf_printf(out, "%s%s", nl ? "," : "", extra);
	hfm_buf_putc(out, '}');
}

/* ns as seconds, exactly: "0.0025", "300", "1.5". */
static void fmt_seconds(char *out, size_t n, uint64_t ns)
{
	int k = snprintf(out, n, "%llu.%09llu", (unsigned long long)(ns / 1000000000ull),
			 (unsigned long long)(ns % 1000000000ull));
	while (k > 0 && out[k - 1] == '0')
		out[--k] = '\0';
	if (k > 0 && out[k - 1] == '.')
		out[--k] = '\0';
}

static void put_histogram(struct hfm_buf *out, const struct family *f, unsigned k)
{
	uint64_t cum = 0, sum;
	char le[48], num[40];
	unsigned h = f->first + k;

	for (unsigned b = 0; b <= f->nbounds; b++) {
		cum += atomic_load_explicit(&hist[h][b], memory_order_relaxed);
		if (b < f->nbounds) {
			fmt_seconds(num, sizeof(num), f->bounds[b]);
			snprintf(le, sizeof(le), "le=\"%s\"", num);
		} else {
			snprintf(le, sizeof(le), "le=\"+Inf\"");
		}
		hfm_buf_printf(out, "%s_bucket", f->name);
		put_labels(out, f, k, le);
		hfm_buf_printf(out, " %llu\n", (unsigned long long)cum);
	}
	sum = atomic_load_explicit(&hist[h][MAX_BOUNDS + 1], memory_order_relaxed);
	fmt_seconds(num, sizeof(num), sum);
	hfm_buf_printf(out, "%s_sum", f->name);
	put_labels(out, f, k, NULL);
	hfm_buf_printf(out, " %s\n", num);
	hfm_buf_printf(out, "%s_count", f->name);
	put_labels(out, f, k, NULL);
	hfm_buf_printf(out, " %llu\n", (unsigned long long)cum);
}

static const char *type_name(enum type t)
{
	return t == COUNTER ? "counter" : t == GAUGE ? "gauge" : "histogram";
}

static void put_family(struct hfm_buf *out, const struct family *f)
{
	unsigned n = nseries(f);

	if (f->optional) {
		unsigned k = 0;
		while (k < n && !atomic_load(&isset[f->first + k]))
			k++;
		if (k == n)
			return;
	}
	hfm_buf_printf(out, "# HELP %s ", f->name);
	hfm_metrics_escape_help(out, f->help);
	hfm_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type));
	for (unsigned k = 0; k < n; k++) {
		if (f->type == HISTOGRAM) {
			put_histogram(out, f, k);
			continue;
		}
		uint64_t v = atomic_load_explicit(&values[f->first + k], memory_order_relaxed);
		hfm_buf_puts(out, f->name);
		put_labels(out, f, k, NULL);
		if (f->type == GAUGE)
			hfm_buf_printf(out, " %lld\n", (long long)(int64_t)v);
		else
			hfm_buf_printf(out, " %llu\n", (unsigned long long)v);
	}
}

void hfm_metrics_expose(struct hfm_buf *out)
{
	pthread_mutex_lock(&lock);
	for (struct hfm_metrics_probe *p = probes; p; p = p->next)
		p->read(p->cls);
	atomic_store(&values[HFM_M_BUILD_INFO], 1);
	for (size_t i = 0; i < NFAM; i++)
		put_family(out, &families[i]);
	for (size_t i = 0; i < NHIST; i++)
		put_family(out, &histograms[i]);
	pthread_mutex_unlock(&lock);
}

int hfm_metrics_check_table(void)
{
	unsigned next = 0, next_h = 0;

	for (size_t i = 0; i < NFAM + NHIST; i++) {
		const struct family *f = i < NFAM ? &families[i] : &histograms[i - NFAM];
		unsigned *at = i < NFAM ? &next : &next_h;
		if (f->first != *at)
			return hfm_error_set(HFM_EINVAL, "%s starts at slot %u, not %u", f->name,
					     f->first, *at);
		if ((f->type == HISTOGRAM) != (i >= NFAM))
			return hfm_error_set(HFM_EINVAL, "%s: histograms go in histograms[]", f->name);
		if (f->type == HISTOGRAM && (!f->labels[0] || f->labels[1] || f->nbounds > MAX_BOUNDS))
			return hfm_error_set(HFM_EINVAL, "%s: one label and %u bounds at most", f->name,
					     MAX_BOUNDS);
		for (unsigned b = 1; b < f->nbounds; b++)
			if (f->bounds[b] <= f->bounds[b - 1])
				return hfm_error_set(HFM_EINVAL, "%s: bounds do not rise", f->name);
		*at += nseries(f);
	}
	if (next != HFM_M__N)
		return hfm_error_set(HFM_EINVAL, "the families cover %u slots of %u", next, HFM_M__N);
	if (next_h != HFM_H__N)
		return hfm_error_set(HFM_EINVAL, "the histograms cover %u slots of %u", next_h,
				     HFM_H__N);
	return 0;
}
