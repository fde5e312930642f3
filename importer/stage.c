/* stage.c - the staging area of a bundle import and its verifying workers (stage.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hfm/fsutil.h"
#include "hfm/hash.h"
#include "stage.h"

#define UNUSED_FOR_S (7 * 86400)

struct job;

/* A piece of an entry for a worker; buf NULL: the entry ends. */
struct node {
	struct node *next;
	struct job *job;
	unsigned char *buf;
	size_t len;
};

struct job {
	struct node end;
	char *name, *where;              /* the member, for messages */
	char *where_end;                 /* set before the end node is queued */
	char key[HFM_IMP_STAGE_KEY_MAX]; /* where it is staged */
	char digest[HFM_SHA256_HEX + 1];
	int sha1;                        /* a git blob id, else a sha256 */
	uint64_t size, got;              /* got: bytes hashed (by the worker) */
	int fd;                          /* opened and written by the reading thread */
	int wfail;                       /* a write failed: set before the next piece is queued */
	struct hfm_hashctx *h;
};

struct worker {
	struct hfm_imp_stage *st;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct node *head, *tail;
	uint64_t queued;                 /* bytes waiting: where the next entry goes */
	int stop;
};

struct hfm_imp_stage {
	struct hfm_store *store;
	char *path, *rel;                /* absolute; relative to the store root */
	int fd, lock_fd;
	struct worker *w;
	unsigned nworkers;
	pthread_mutex_t lock;            /* everything below */
	pthread_cond_t cond;
	unsigned char **free_bufs;
	size_t nfree, nbufs;
	size_t inflight;                 /* entries handed over, not yet finished */
	int err;
	char *errmsg;
	char **recent;                   /* verified since the last checkpoint */
	size_t nrecent;
	char **durable;                  /* sorted */
	size_t ndurable;
	struct job *cur;                 /* the entry being handed over */
	struct worker *curw;
	atomic_uint seq;
	/* a checkpoint running beside the reading (hfm_imp_stage_checkpoint_start) */
	pthread_t bg;
	int bg_running;
	char **bg_names;
	size_t bg_n;
	int bg_rc;
	char *bg_msg;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void hfm_imp_stage_rmtree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- failures ------------------------------------------------------------------- */

static int failed(struct hfm_imp_stage *st)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = st->err;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Record the first failure (a message of the calling thread). */
static void fail(struct hfm_imp_stage *st, int rc, const struct job *j)
{
	pthread_mutex_lock(&st->lock);
	if (!st->err) {
		st->err = rc;
		st->errmsg = hfm_asprintf("%s, %s: %s", j->where, j->name, hfm_error_last());
	}
	pthread_mutex_unlock(&st->lock);
}

/* The first failure, as this thread's error. */
static int first_error(struct hfm_imp_stage *st)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = st->err;
	if (rc)
		hfm_error_set(rc, "%s", st->errmsg);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* ---- the workers -------------------------------------------------------------------- */

static void release_buf(struct hfm_imp_stage *st, unsigned char *buf)
{
	pthread_mutex_lock(&st->lock);
	st->free_bufs[st->nfree++] = buf;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

static int job_open(struct hfm_imp_stage *st, struct job *j)
{
	char dir[HFM_IMP_STAGE_KEY_MAX], *slash;

	j->fd = openat(st->fd, j->key, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (j->fd < 0 && errno == ENOENT) {
		snprintf(dir, sizeof(dir), "%s", j->key);
		if ((slash = strrchr(dir, '/')))
			*slash = '\0';
		if (mkdirat(st->fd, dir, 0755) == 0 || errno == EEXIST)
			j->fd = openat(st->fd, j->key, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				       0644);
	}
	if (j->fd < 0)
		return hfm_error_set(HFM_EIO, "cannot stage it in %s: %s", st->path, strerror(errno));
	j->h = hfm_hashctx_new(j->size, j->sha1, !j->sha1);
	return 0;
}

static void job_data(struct hfm_imp_stage *st, struct job *j, const unsigned char *p, size_t n)
{
	if (failed(st) || j->wfail)
		return;
	hfm_hashctx_update(j->h, p, n);
	j->got += n;
}

void hfm_imp_stage_key(char out[HFM_IMP_STAGE_KEY_MAX], const struct hfm_bundle_item *it)
{
	if (it->kind == HFM_BUNDLE_OBJECT)
		snprintf(out, HFM_IMP_STAGE_KEY_MAX, "objects/%.2s/%s", it->digest, it->digest);
	else
		snprintf(out, HFM_IMP_STAGE_KEY_MAX, "sha256/%s", it->digest);
}

static void job_end(struct hfm_imp_stage *st, struct job *j)
{
	char sha1[HFM_SHA1_HEX + 1], sha256[HFM_SHA256_HEX + 1];
	int rc = 0;

	if (j->where_end) {
		free(j->where);
		j->where = j->where_end;
		j->where_end = NULL;
	}
	if (j->h)
		hfm_hashctx_final(j->h, sha1, sha256);
	if (j->fd >= 0)
		close(j->fd);
	if (j->fd < 0 || j->wfail) {
		rc = HFM_ERROR;          /* never opened, or a write failed: already said */
	} else if (j->got == j->size && !strcmp(j->sha1 ? sha1 : sha256, j->digest)) {
		rc = 0;                  /* verified: kept for a retry even if another entry failed */
	} else if (failed(st)) {
		rc = HFM_ERROR;          /* not hashed to the end: another entry failed */
	} else if (j->got != j->size) {
		rc = hfm_error_set(HFM_ECORRUPT, "%llu bytes, the manifest says %llu",
				   (unsigned long long)j->got, (unsigned long long)j->size);
	} else {
		rc = hfm_error_set(HFM_ECORRUPT, "its content hashes to %s, the manifest says "
				   "%s: the bundle is damaged (copy it again) or was changed",
				   j->sha1 ? sha1 : sha256, j->digest);
	}
	j->fd = -1;
	if (rc) {
		if (rc != HFM_ERROR)
			fail(st, rc, j);
		unlinkat(st->fd, j->key, 0);
	}
	pthread_mutex_lock(&st->lock);
	if (!rc) {
		st->recent = hfm_realloc(st->recent, (st->nrecent + 1) * sizeof(*st->recent));
		st->recent[st->nrecent++] = hfm_strdup(j->key);
	}
	st->inflight--;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	free(j->name);
	free(j->where);
	free(j);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct hfm_imp_stage *st = w->st;

	for (;;) {
		struct node *n;

		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		n = w->head;
		if (n) {
			w->head = n->next;
			if (!w->head)
				w->tail = NULL;
		}
		pthread_mutex_unlock(&w->lock);
		if (!n)
			break;
		if (n->buf) {
			job_data(st, n->job, n->buf, n->len);
			release_buf(st, n->buf);
			pthread_mutex_lock(&w->lock);
			w->queued -= n->len;
			pthread_mutex_unlock(&w->lock);
			free(n);
		} else {
			job_end(st, n->job);     /* n is the job's own end node: freed with it */
		}
	}
	return NULL;
}

static void enqueue(struct worker *w, struct node *n)
{
	n->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = n;
	else
		w->head = n;
	w->tail = n;
	w->queued += n->len;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* ---- handing entries over -------------------------------------------------------------- */

int hfm_imp_stage_begin(struct hfm_imp_stage *st, const struct hfm_bundle_item *it,
			const char *where)
{
	struct job *j;
	uint64_t least = UINT64_MAX;
	int rc;

	if ((rc = first_error(st)))
		return rc;
	j = hfm_calloc(1, sizeof(*j));
	j->name = hfm_strdup(it->name);
	j->where = hfm_strdup(where);
	hfm_imp_stage_key(j->key, it);
	snprintf(j->digest, sizeof(j->digest), "%s", it->digest);
	j->sha1 = it->kind == HFM_BUNDLE_OBJECT && strlen(it->digest) == HFM_SHA1_HEX;
	j->size = it->size;
	j->fd = -1;
	j->end.job = j;
	if ((rc = job_open(st, j))) {
		rc = hfm_error_set(rc, "%s, %s: %s", where, it->name, hfm_error_last());
		free(j->name);
		free(j->where);
		free(j);
		return rc;
	}
	st->cur = j;
	for (unsigned i = 0; i < st->nworkers; i++) {
		pthread_mutex_lock(&st->w[i].lock);
		if (st->w[i].queued < least) {
			least = st->w[i].queued;
			st->curw = &st->w[i];
		}
		pthread_mutex_unlock(&st->w[i].lock);
	}
	pthread_mutex_lock(&st->lock);
	st->inflight++;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

unsigned char *hfm_imp_stage_buffer(struct hfm_imp_stage *st)
{
	unsigned char *b;

	pthread_mutex_lock(&st->lock);
	while (!st->nfree)
		pthread_cond_wait(&st->cond, &st->lock);
	b = st->free_bufs[--st->nfree];
	pthread_mutex_unlock(&st->lock);
	return b;
}

int hfm_imp_stage_push(struct hfm_imp_stage *st, unsigned char *buf, size_t n)
{
	struct node *nd = hfm_calloc(1, sizeof(*nd));
	struct job *j = st->cur;

	/*
	 * This thread writes, the worker hashes: the copy into the page cache
	 * (what tar does) and the hash of the same bytes run on two cores, so a
	 * large entry is not one thread's serial work.
	 */
	if (!j->wfail && hfm_write_all(j->fd, buf, n) < 0) {
		fail(st, hfm_error_set(HFM_EIO, "writing to %s: %s", st->path, strerror(errno)), j);
		j->wfail = 1;
	}
	nd->job = j;
	nd->buf = buf;
	nd->len = n;
	enqueue(st->curw, nd);
	return first_error(st);
}

int hfm_imp_stage_end(struct hfm_imp_stage *st, const char *where)
{
	if (where)
		st->cur->where_end = hfm_strdup(where);
	enqueue(st->curw, &st->cur->end);
	st->cur = NULL;
	return first_error(st);
}

int hfm_imp_stage_drain(struct hfm_imp_stage *st)
{
	pthread_mutex_lock(&st->lock);
	while (st->inflight)
		pthread_cond_wait(&st->cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
	return first_error(st);
}

/* ---- durability ----------------------------------------------------------------------- */

static int is_durable(const struct hfm_imp_stage *st, const char *name)
{
	return st->ndurable && bsearch(&name, st->durable, st->ndurable, sizeof(*st->durable),
				       cmp_str) != NULL;
}

/* Make `names` durable (syncfs) and append them to `durable`: 0 or an error (a message). */
static int make_durable(struct hfm_imp_stage *st, char **names, size_t n)
{
	struct hfm_buf lines = HFM_BUF_INIT((size_t)1 << 30);
	int fd, rc = 0;

	/* every name given was written before: syncfs makes it durable */
	if (syncfs(st->fd) < 0)
		rc = hfm_error_set(HFM_EIO, "sync %s: %s", st->path, strerror(errno));
	for (size_t i = 0; i < n; i++)
		hfm_buf_printf(&lines, "%s\n", names[i]);
	fd = rc ? -1 : openat(st->fd, "durable", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (!rc && (fd < 0 || hfm_write_all(fd, lines.ptr, lines.len) < 0 || fdatasync(fd) < 0))
		rc = hfm_error_set(HFM_EIO, "%s/durable: %s", st->path, strerror(errno));
	if (fd >= 0)
		close(fd);
	hfm_buf_dispose(&lines);
	return rc;
}

/* The names a checkpoint made durable join the list hfm_imp_stage_check() trusts. */
static void add_durable(struct hfm_imp_stage *st, char **names, size_t n)
{
	st->durable = hfm_realloc(st->durable, (st->ndurable + n + 1) * sizeof(*st->durable));
	memcpy(st->durable + st->ndurable, names, n * sizeof(*names));
	st->ndurable += n;
	qsort(st->durable, st->ndurable, sizeof(*st->durable), cmp_str);
	free(names);
}

/* Take the names verified since the last checkpoint. */
static char **take_recent(struct hfm_imp_stage *st, size_t *n)
{
	char **names;

	pthread_mutex_lock(&st->lock);
	names = st->recent;
	*n = st->nrecent;
	st->recent = NULL;
	st->nrecent = 0;
	pthread_mutex_unlock(&st->lock);
	return names;
}

static void *bg_main(void *arg)
{
	struct hfm_imp_stage *st = arg;

	if ((st->bg_rc = make_durable(st, st->bg_names, st->bg_n)))
		st->bg_msg = hfm_strdup(hfm_error_last());
	return NULL;
}

/* Wait for the background checkpoint, if one runs: its verdict. */
static int bg_join(struct hfm_imp_stage *st)
{
	int rc;

	if (!st->bg_running)
		return 0;
	pthread_join(st->bg, NULL);
	st->bg_running = 0;
	rc = st->bg_rc;
	if (rc) {
		/* not durable: the names stay untrusted, a later run hashes them again */
		for (size_t i = 0; i < st->bg_n; i++)
			free(st->bg_names[i]);
		free(st->bg_names);
		hfm_error_set(rc, "%s", st->bg_msg);
		free(st->bg_msg);
		st->bg_msg = NULL;
	} else {
		add_durable(st, st->bg_names, st->bg_n);
	}
	st->bg_names = NULL;
	st->bg_n = 0;
	st->bg_rc = 0;
	return rc;
}

int hfm_imp_stage_checkpoint_start(struct hfm_imp_stage *st)
{
	int rc;

	if ((rc = bg_join(st)))
		return rc;
	st->bg_names = take_recent(st, &st->bg_n);
	if (!st->bg_n) {
		free(st->bg_names);
		st->bg_names = NULL;
		return 0;
	}
	if (pthread_create(&st->bg, NULL, bg_main, st) == 0) {
		st->bg_running = 1;
		return 0;
	}
	/* no thread: do it here */
	rc = make_durable(st, st->bg_names, st->bg_n);
	st->bg_running = 0;
	if (!rc)
		add_durable(st, st->bg_names, st->bg_n);
	else {
		for (size_t i = 0; i < st->bg_n; i++)
			free(st->bg_names[i]);
		free(st->bg_names);
	}
	st->bg_names = NULL;
	st->bg_n = 0;
	return rc;
}

int hfm_imp_stage_checkpoint(struct hfm_imp_stage *st)
{
	char **names;
	size_t n;
	int rc = bg_join(st);

	if (rc)
		return rc;
	names = take_recent(st, &n);
	if (!n) {
		free(names);
		return 0;
	}
	rc = make_durable(st, names, n);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return rc;
	}
	add_durable(st, names, n);
	return 0;
}

int hfm_imp_stage_check(struct hfm_imp_stage *st, const struct hfm_bundle_item *it, int *staged)
{
	char key[HFM_IMP_STAGE_KEY_MAX];
	struct stat s;
	int fd, rc;

	*staged = 0;
	hfm_imp_stage_key(key, it);
	if (fstatat(st->fd, key, &s, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(s.st_mode) ||
	    (uint64_t)s.st_size != it->size)
		return 0;
	if (is_durable(st, key)) {
		*staged = 1;
		return 0;
	}
	/* staged after the last checkpoint: hash it again */
	fd = openat(st->fd, key, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (it->kind == HFM_BUNDLE_OBJECT) {
		rc = hfm_store_verify_fd(fd, it->size, it->digest);
	} else {
		char sha[HFM_SHA256_HEX + 1];

		rc = hfm_hash_fd(fd, it->size, NULL, sha, NULL);
		if (!rc && strcmp(sha, it->digest))
			rc = HFM_ECORRUPT;
	}
	close(fd);
	if (rc) {
		unlinkat(st->fd, key, 0);
		hfm_error_clear();
		return 0;
	}
	*staged = 1;
	pthread_mutex_lock(&st->lock);
	st->recent = hfm_realloc(st->recent, (st->nrecent + 1) * sizeof(*st->recent));
	st->recent[st->nrecent++] = hfm_strdup(key);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

/* ---- opening ---------------------------------------------------------------------------- */

/* A staging area last used more than a week ago is stale: start afresh. */
static void sweep(struct hfm_imp_stage *st)
{
	struct stat s;

	if (fstat(st->lock_fd, &s) == 0 && s.st_size == 0 && s.st_mtime < time(NULL) - UNUSED_FOR_S) {
		static const char *const sub[] = { "objects", "sha256", "git" };

		for (size_t i = 0; i < HFM_ARRAY_SIZE(sub); i++) {
			char *p = hfm_asprintf("%s/%s", st->path, sub[i]);
			hfm_imp_stage_rmtree(p);
			free(p);
		}
		unlinkat(st->fd, "durable", 0);
	}
}

static void read_durable(struct hfm_imp_stage *st)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd = openat(st->fd, "durable", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !(f = fdopen(fd, "r"))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break;               /* a torn last line: not trusted */
		line[n - 1] = '\0';
		st->durable = hfm_realloc(st->durable, (st->ndurable + 1) * sizeof(*st->durable));
		st->durable[st->ndurable++] = hfm_strdup(line);
	}
	free(line);
	fclose(f);
	if (st->ndurable)
		qsort(st->durable, st->ndurable, sizeof(*st->durable), cmp_str);
}

int hfm_imp_stage_open(struct hfm_imp_stage **out, struct hfm_store *store, unsigned workers)
{
	struct hfm_imp_stage *st = hfm_calloc(1, sizeof(*st));
	long ncpu;
	int rc = 0;

	st->store = store;
	st->fd = st->lock_fd = -1;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->rel = hfm_strdup("tmp/bundle-staging");
	st->path = hfm_asprintf("%s/%s", store->root, st->rel);
	if ((rc = hfm_store_mkdirs(store, st->rel)))
		goto out;
	st->fd = openat(store->root_fd, st->rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	st->lock_fd = st->fd < 0 ? -1 : openat(st->fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (st->lock_fd < 0) {
		rc = hfm_error_set(HFM_EIO, "%s: %s", st->path, strerror(errno));
		goto out;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "hfmirror-import: waiting for another bundle import into %s to "
			"end\n", store->root);
		while (flock(st->lock_fd, LOCK_EX) < 0 && errno == EINTR)
			;
	}
	sweep(st);
	futimens(st->lock_fd, NULL);     /* in use */
	if (mkdirat(st->fd, "objects", 0755) < 0 && errno != EEXIST)
		rc = hfm_error_set(HFM_EIO, "%s/objects: %s", st->path, strerror(errno));
	if (!rc && mkdirat(st->fd, "sha256", 0755) < 0 && errno != EEXIST)
		rc = hfm_error_set(HFM_EIO, "%s/sha256: %s", st->path, strerror(errno));
	if (rc)
		goto out;
	read_durable(st);
	/*
	 * The reading thread (writing, creating the files) is the longest
	 * chain and keeps a core busy: one worker per other core hashes, and
	 * enough buffers (8 MiB a worker, 32 MiB at least) let it read on when
	 * a worker loses its core for a moment on a busy machine.
	 */
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	st->nworkers = workers ? workers : ncpu > 2 ? (unsigned)ncpu - 1 : 1;
	st->nbufs = 32 * st->nworkers + 96;
	st->free_bufs = hfm_calloc(st->nbufs, sizeof(*st->free_bufs));
	for (size_t i = 0; i < st->nbufs; i++)
		st->free_bufs[st->nfree++] = hfm_malloc(HFM_IMP_STAGE_CHUNK);
	st->w = hfm_calloc(st->nworkers, sizeof(*st->w));
	for (unsigned i = 0; i < st->nworkers; i++) {
		struct worker *w = &st->w[i];

		w->st = st;
		pthread_mutex_init(&w->lock, NULL);
		pthread_cond_init(&w->cond, NULL);
		if (pthread_create(&w->thread, NULL, worker_main, w)) {
			st->nworkers = i;
			rc = hfm_error_set(HFM_EIO, "cannot start a verifying thread");
			goto out;
		}
	}
out:
	if (rc) {
		hfm_imp_stage_free(st, 0);
		return rc;
	}
	*out = st;
	return 0;
}

void hfm_imp_stage_free(struct hfm_imp_stage *st, int remove)
{
	size_t i;

	if (!st)
		return;
	bg_join(st);
	for (i = 0; i < st->nworkers; i++) {
		pthread_mutex_lock(&st->w[i].lock);
		st->w[i].stop = 1;
		pthread_cond_signal(&st->w[i].cond);
		pthread_mutex_unlock(&st->w[i].lock);
	}
	for (i = 0; i < st->nworkers; i++) {
		pthread_join(st->w[i].thread, NULL);
		pthread_mutex_destroy(&st->w[i].lock);
		pthread_cond_destroy(&st->w[i].cond);
	}
	free(st->w);
	for (i = 0; i < st->nfree; i++)
		free(st->free_bufs[i]);
	free(st->free_bufs);
	for (i = 0; i < st->nrecent; i++)
		free(st->recent[i]);
	free(st->recent);
	for (i = 0; i < st->ndurable; i++)
		free(st->durable[i]);
	free(st->durable);
	free(st->errmsg);
	if (remove && st->path)
		hfm_imp_stage_rmtree(st->path);
	if (st->fd >= 0)
		close(st->fd);
	if (st->lock_fd >= 0)
		close(st->lock_fd);     /* after the removal: the lock held to the end */
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	free(st->path);
	free(st->rel);
	free(st);
}

int hfm_imp_stage_fd(const struct hfm_imp_stage *st)
{
	return st->fd;
}

const char *hfm_imp_stage_path(const struct hfm_imp_stage *st)
{
	return st->path;
}

unsigned hfm_imp_stage_workers(const struct hfm_imp_stage *st)
{
	return st->nworkers;
}
