/*
 * metrics.h - the daemon's counters, gauges and histograms, and /metrics
 * (the Prometheus text exposition format, version 0.0.4).
 *
 * Every metric is declared at compile time: a family (name, type, help)
 * with at most three labels, and each label's values a fixed list (the
 * enums below).  So the series are known before the first request, all
 * exposed from the start (a rate over a series that appears late misses
 * its first increments), and nothing a client sends -- a repo name, a
 * path, a user agent -- can add one.  docs/metrics.md lists them all.
 *
 * A series is one slot of a process-wide array of C11 atomics, named by
 * `enum hfm_metric`: a family with labels occupies consecutive slots, its
 * first slot plus the label values' offset (row-major, first label
 * slowest), so instrumenting a module is one line:
 *
 *     hfm_metrics_inc(HFM_M_UP_RETRIES + x->kind);
 *
 * Hooks never lock, allocate or fail; they cost one atomic add.
 *
 * Values that an object already keeps (the edge's connection counts, the
 * blob cache's totals, the hash index's size) are read when /metrics is
 * asked for, by a probe the owner registers (hfm_metrics_probe_add), which
 * copies them into their series with hfm_metrics_set().  A gauge family
 * marked optional (its values only exist while something owns them: the
 * store, an upstream) is exposed only once a series of it was set.
 *
 * The series are the process's: one daemon per process.  Unit tests that
 * run several servers in one process see them summed.
 *
 * Adding a metric: a slot range in `enum hfm_metric` (or a histogram in
 * `enum hfm_histogram`), a row in the family table in metrics.c, a line in
 * docs/metrics.md, and the hook or probe that moves it.  test_metrics
 * checks that the table covers every slot exactly once.
 *
 * Threading: every function may be called from any thread.  The
 * exposition and probe registration take one mutex; hooks take none.
 */
#ifndef HFM_METRICS_H
#define HFM_METRICS_H

#include <stdint.h>

#include "buf.h"

/* ---- label values ------------------------------------------------------- */

/* route: what kind of request (set by the app, handlers.c). */
enum hfm_m_route {
	HFM_MR_OTHER = 0,     /* no route: 404, bad path or head, refused at the edge */
	HFM_MR_FILE,          /* /resolve/, /raw/ */
	HFM_MR_API,           /* /api/... */
	HFM_MR_UI,            /* the web pages */
	HFM_MR_HEALTH,        /* /healthz */
	HFM_MR_METRICS,       /* /metrics */
	HFM_MR__N
};

/* source: which source answered (hfm_source_ops.kind), none when no source did. */
enum hfm_m_source {
	HFM_MS_NONE = 0,
	HFM_MS_MODELBIN,      /* "model-bin" */
	HFM_MS_GIT,           /* "git" */
	HFM_MS_CACHE,         /* "cache" */
	HFM_MS_OTHER,         /* a kind this table does not know yet */
	HFM_MS__N
};

/* code: the status class of the answer; other = none was sent. */
enum hfm_m_code { HFM_MC_2XX, HFM_MC_3XX, HFM_MC_4XX, HFM_MC_5XX, HFM_MC_OTHER, HFM_MC__N };

/* result: what the cache did for a file answer (0: the cache did not answer). */
enum hfm_m_cache {
	HFM_MCACHE_NONE = 0,
	HFM_MCACHE_HIT,       /* a complete object from the store */
	HFM_MCACHE_MISS,      /* bytes fetched (or being fetched) into the store */
	HFM_MCACHE_RELAY,     /* passed through from upstream, not stored (cache rules) */
	HFM_MCACHE__N
};

/* kind: what an upstream transfer is for (hfm_up_request.kind). */
enum hfm_m_upkind {
	HFM_UPK_OTHER = 0,
	HFM_UPK_API,          /* API answers cached under meta/ */
	HFM_UPK_BLOB,         /* blob bytes into partial/ */
	HFM_UPK_RELAY,        /* bytes relayed to a client unstored */
	HFM_UPK__N
};

/* reason: why an upstream transfer failed. */
enum hfm_m_uperr {
	HFM_UPE_TIMEOUT = 0,  /* connect failed or timed out, too slow */
	HFM_UPE_TRANSFER,     /* protocol or TLS error, connection dropped, body cut short */
	HFM_UPE_STATUS,       /* answered 429 or 5xx (after the retries) */
	HFM_UPE_OTHER,        /* the consumer gave up (a write failed, ...) */
	HFM_UPE__N
};

/* reason: why the edge closed a connection itself. */
enum hfm_m_close { HFM_MCL_HEAD_TIMEOUT = 0, HFM_MCL_EVICTED, HFM_MCL_REFUSED, HFM_MCL__N };

/* owner: who put an object into the store. */
enum hfm_m_owner { HFM_MO_CACHE = 0, HFM_MO_IMPORTED, HFM_MO__N };

/* ---- series ------------------------------------------------------------- */

enum hfm_metric {
	/* transport (http.c, edge.c) */
	HFM_M_REQUESTS,                  /* [route][source][code]: hfm_metrics_request() */
	HFM_M_BODY_BYTES = HFM_M_REQUESTS + HFM_MR__N * HFM_MS__N * HFM_MC__N,   /* [source] */
	HFM_M_REQUESTS_IN_FLIGHT = HFM_M_BODY_BYTES + HFM_MS__N,
	HFM_M_WAITS,
	HFM_M_WAIT_TIMEOUTS,
	HFM_M_REQUESTS_REJECTED,
	HFM_M_CONNECTIONS_OPEN,
	HFM_M_CONNECTIONS,
	HFM_M_CONNECTIONS_CLOSED,        /* [reason] */
	HFM_M_START_TIME = HFM_M_CONNECTIONS_CLOSED + HFM_MCL__N,
	HFM_M_BUILD_INFO,
	/* the cache (src_cache.c, blobcache.c, evict.c) */
	HFM_M_CACHE_ANSWERS,             /* [result], from HFM_MCACHE_HIT */
	HFM_M_CACHE_FILLS_IN_FLIGHT = HFM_M_CACHE_ANSWERS + HFM_MCACHE__N - 1,
	HFM_M_CACHE_FETCH_FAILURES,
	HFM_M_CACHE_WRITTEN_BYTES,
	HFM_M_CACHE_VERIFIED,
	HFM_M_CACHE_CORRUPT,
	HFM_M_CACHE_EVICTIONS,
	HFM_M_CACHE_EVICTED_BYTES,
	HFM_M_CACHE_LIMIT_BYTES,
	/* upstream (upstream.c) */
	HFM_M_UP_REQUESTS,               /* [kind] */
	HFM_M_UP_BYTES = HFM_M_UP_REQUESTS + HFM_UPK__N,                         /* [kind] */
	HFM_M_UP_RETRIES = HFM_M_UP_BYTES + HFM_UPK__N,                          /* [kind] */
	HFM_M_UP_ERRORS = HFM_M_UP_RETRIES + HFM_UPK__N,                         /* [kind][reason] */
	HFM_M_UP_IN_FLIGHT = HFM_M_UP_ERRORS + HFM_UPK__N * HFM_UPE__N,          /* [kind] */
	HFM_M_UP_CONNECTIONS = HFM_M_UP_IN_FLIGHT + HFM_UPK__N,
	HFM_M_UP_UNREACHABLE,
	HFM_M_UP_REACHABLE,
	HFM_M_UP_OFFLINE,
	/* the store (evict.c) and the hash index */
	HFM_M_STORE_BYTES,               /* [owner] */
	HFM_M_STORE_OBJECTS = HFM_M_STORE_BYTES + HFM_MO__N,                     /* [owner] */
	HFM_M_STORE_PARTIAL = HFM_M_STORE_OBJECTS + HFM_MO__N,
	HFM_M_STORE_PARTIAL_BYTES,
	HFM_M_STORE_SCANNED,
	HFM_M_HASHINDEX_ENTRIES,
	/* git clients (h_git.c's probe copies the pack pool's stats) */
	HFM_M_GIT_PACKS,
	HFM_M_GIT_OBJECTS,
	HFM_M_GIT_WHOLE_PACKS,
	HFM_M_GIT_PACKS_RUNNING,
	HFM_M__N
};

/* Histograms, each with its bucket bounds in metrics.c. */
enum hfm_histogram {
	HFM_H_REQUEST_SECONDS,           /* [route], observed in ns */
	HFM_H__N = HFM_H_REQUEST_SECONDS + HFM_MR__N
};

/* The slot of an upstream failure. */
static inline enum hfm_metric hfm_m_up_error(enum hfm_m_upkind kind, enum hfm_m_uperr reason)
{
	return (enum hfm_metric)(HFM_M_UP_ERRORS + (unsigned)kind * HFM_UPE__N + (unsigned)reason);
}

/* ---- hooks -------------------------------------------------------------- */

void hfm_metrics_inc(enum hfm_metric m);
void hfm_metrics_add(enum hfm_metric m, uint64_t n);
/* Gauges only: down by n. */
void hfm_metrics_sub(enum hfm_metric m, uint64_t n);
/* Gauges, and counters copied from an owner's own total (probes). */
void hfm_metrics_set(enum hfm_metric m, int64_t v);
int64_t hfm_metrics_get(enum hfm_metric m);
/* One observation (in the histogram's unit: ns for the _seconds ones). */
void hfm_metrics_observe(enum hfm_histogram h, uint64_t v);

/* The source label of a hfm_source_ops.kind (NULL: none). */
enum hfm_m_source hfm_metrics_source_of(const char *kind);
/* The code label of an HTTP status (0: none sent). */
enum hfm_m_code hfm_metrics_code_of(unsigned status);
/* A request is over: hfmirror_requests_total and the duration histogram. */
void hfm_metrics_request(enum hfm_m_route route, enum hfm_m_source src, unsigned status,
			 uint64_t ns);

/* ---- probes ------------------------------------------------------------- */

/*
 * A callback run at each exposition, before anything is written, to copy
 * values an object keeps into their series.  The struct is the caller's
 * and stays linked until hfm_metrics_probe_remove(), which returns once
 * no call of it runs: call that before freeing what `read` reads.  `read`
 * must not call the exposition or the probe functions.
 */
struct hfm_metrics_probe {
	void (*read)(void *cls);
	void *cls;
	struct hfm_metrics_probe *next;      /* the list's */
};
void hfm_metrics_probe_add(struct hfm_metrics_probe *p);
void hfm_metrics_probe_remove(struct hfm_metrics_probe *p);

/* ---- the exposition ----------------------------------------------------- */

/* Run the probes, then append every family to `out` as Prometheus text 0.0.4. */
void hfm_metrics_expose(struct hfm_buf *out);
/* The Content-Type of that text. */
#define HFM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A label value escaped for the text format (\\, \" and \n). */
void hfm_metrics_escape_label(struct hfm_buf *out, const char *s);
/* A HELP text escaped for the text format (\\ and \n). */
void hfm_metrics_escape_help(struct hfm_buf *out, const char *s);

/*
 * For tests: 0 when the family table covers every slot of enum hfm_metric
 * and enum hfm_histogram exactly once, in order, and histogram bounds
 * rise; else HFM_EINVAL with the first fault in hfm_error_last().
 */
int hfm_metrics_check_table(void);

#endif
