/*
 * common.h - error codes, allocation and the per-thread error message.
 *
 * Every fallible function in hfmirror returns int: 0 (HFM_OK) on success or
 * one of the negative HFM_E* codes below.  A function that fails may leave a
 * human-readable reason with hfm_error_set(); the HTTP layer turns the code
 * into the Hub's status and X-Error-Code and the reason into X-Error-Message.
 *
 * Allocation never fails from the caller's point of view: hfm_malloc() and
 * friends abort the process on out-of-memory, as Redis's zmalloc does.
 * Inputs from the network are bounded long before memory runs out (see
 * buf.h), so OOM here means the machine is broken, not that a client is
 * hostile.
 */
#ifndef HFM_COMMON_H
#define HFM_COMMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

enum hfm_error {
	HFM_OK = 0,
	HFM_ERROR = -1,        /* generic failure, see hfm_error_last() */
	HFM_ENOREPO = -2,      /* repository not found         -> 404 RepoNotFound */
	HFM_ENOREV = -3,       /* revision not found           -> 404 RevisionNotFound */
	HFM_ENOENT = -4,       /* path not found in a revision -> 404 EntryNotFound */
	HFM_EAGAIN = -5,       /* not ready; a waiter was armed and will be woken */
	HFM_EINVAL = -6,       /* malformed input              -> 400 */
	HFM_ETOOBIG = -7,      /* a bound was exceeded         -> 413 / 431 */
	HFM_EUPSTREAM = -8,    /* upstream failed or lied      -> 502 */
	HFM_ETIMEOUT = -9,     /* upstream unreachable / slow  -> 504 */
	HFM_EGATED = -10,      /* gated repo, no access        -> 401/403 GatedRepo */
	HFM_EIO = -11,         /* local disk error             -> 500 */
	HFM_EOFFLINE = -12,    /* offline, nothing cached      -> 503 (sources map it to the Hub's 404s) */
	HFM_EDENIED = -13,     /* access rules deny the repo   -> 404 RepoNotFound */
	HFM_ECORRUPT = -14,    /* stored data failed verification */
	HFM_EUNAVAIL = -15,    /* content known, missing, cannot be fetched -> 502 */
	HFM_EAUTH = -16,       /* no valid token where one is needed -> 401 */
	HFM_ERATE = -17,       /* too many failed token checks from a client -> 429 */
};

#define HFM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define HFM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HFM_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define HFM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HFM_NORETURN __attribute__((noreturn))
#else
#define HFM_PRINTF(f, a)
#define HFM_NORETURN
#endif

/* Allocation: abort on OOM, never return NULL. */
void *hfm_malloc(size_t n);
void *hfm_calloc(size_t nmemb, size_t n);
void *hfm_realloc(void *p, size_t n);
char *hfm_strdup(const char *s);
char *hfm_strndup(const char *s, size_t n);
char *hfm_asprintf(const char *fmt, ...) HFM_PRINTF(1, 2);
/*
 * Append one zeroed element of `size` bytes to the array *vp of *n elements
 * (vp: the address of the array pointer) and return it.  The array grows by
 * doubling at powers of two, so it needs no capacity field; *n counts.
 */
void *hfm_array_push(void *vp, size_t *n, size_t size);

/*
 * Per-thread error message.  hfm_error_set() formats a reason and returns
 * `code` so it can be used as `return hfm_error_set(HFM_ENOENT, "...")`.
 * hfm_error_last() returns the last message of this thread ("" if none); it
 * stays valid until the next hfm_error_set()/hfm_error_clear() on the thread.
 */
int hfm_error_set(int code, const char *fmt, ...) HFM_PRINTF(2, 3);
void hfm_error_clear(void);
const char *hfm_error_last(void);
const char *hfm_strerror(int code);

/*
 * Progress of one long operation on one file (hashing, verifying, copying):
 * `done` of `total` bytes have been read.  Called from inside the operation,
 * about once per MiB, on the caller's thread.
 */
typedef void hfm_progress_fn(void *payload, uint64_t done, uint64_t total);

/* Wall clock in milliseconds since the epoch, and a monotonic clock in ns. */
int64_t hfm_now_ms(void);
uint64_t hfm_mono_ns(void);

/*
 * A condition variable whose timed waits take hfm_mono_ns() deadlines (so a
 * wall clock step neither cuts a wait short nor stretches it), and such a
 * wait: pthread_cond_timedwait's result.
 */
void hfm_cond_init_mono(pthread_cond_t *c);
int hfm_cond_wait_mono(pthread_cond_t *c, pthread_mutex_t *m, uint64_t deadline_ns);

/*
 * Format a millisecond timestamp as the Hub does: "YYYY-MM-DDTHH:MM:SS.mmmZ"
 * (UTC).  `out` must hold HFM_ISO_DATE_LEN + 1 bytes.
 */
#define HFM_ISO_DATE_LEN 24
void hfm_iso_date(char *out, int64_t ms);
/* 1 if the n bytes at s are such a date (digits where digits go; the order
 * of two of them is then their order as strings). */
int hfm_iso_date_valid(const char *s, size_t n);

/* Case-insensitive ASCII comparison helpers. */
int hfm_strieq(const char *a, const char *b);
int hfm_strnieq(const char *a, const char *b, size_t n);

/*
 * Decode the UTF-8 sequence at `s` (n > 0 bytes available): its length, with
 * the code point in *cp (cp may be NULL), or 0 if the bytes there are not
 * valid UTF-8 (overlongs, surrogates, > U+10FFFF and truncated sequences are
 * invalid).
 */
size_t hfm_utf8_next(uint32_t *cp, const char *s, size_t n);

/*
 * Parse a boolean query value the way Python and JS clients spell it:
 * "true"/"True"/"1"/"yes" and "false"/"False"/"0"/"no" (any case).
 * Returns `dflt` for NULL or anything else.
 */
int hfm_parse_bool(const char *s, int dflt);

#endif
