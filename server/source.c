/* source.c - snapshots, lists, refs and bodies shared by every source. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/source.h"

void hfm_commit_dispose(struct hfm_commit *c)
{
	free(c->title);
	free(c->message);
	free(c->author);
	c->title = c->message = c->author = NULL;
}

struct hfm_snapshot *hfm_snapshot_ref(struct hfm_snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

void hfm_snapshot_unref(struct hfm_snapshot *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		s->release(s);
}

ssize_t hfm_snapshot_find(const struct hfm_snapshot *s, const char *path)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->entries[mid].path, path);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* First index whose path is >= key (strcmp order). */
static size_t lower_bound(const struct hfm_snapshot *s, const char *key, size_t keylen)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *p = s->entries[mid].path;
		int c = strncmp(p, key, keylen);

		if (c == 0 && strlen(p) < keylen)
			c = -1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void hfm_snapshot_under(const struct hfm_snapshot *s, const char *dir,
			size_t *from, size_t *to)
{
	size_t dl = strlen(dir);
	char *prefix;

	if (dl == 0) {
		*from = 0;
		*to = s->n;
		return;
	}
	prefix = hfm_malloc(dl + 2);
	memcpy(prefix, dir, dl);
	prefix[dl] = '/';
	prefix[dl + 1] = '\0';
	*from = lower_bound(s, prefix, dl + 1);
	/* the run ends at the first path that no longer starts with prefix */
	prefix[dl] = '/' + 1;
	*to = lower_bound(s, prefix, dl + 1);
	free(prefix);
}

struct hfm_list *hfm_list_new(struct hfm_snapshot *snap, size_t cap)
{
	struct hfm_list *l = hfm_calloc(1, sizeof(*l));

	l->cap = cap ? cap : 1;
	l->items = hfm_malloc(l->cap * sizeof(*l->items));
	if (snap)
		l->snap = hfm_snapshot_ref(snap);
	return l;
}

void hfm_list_push(struct hfm_list *l, const struct hfm_entry *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->items = hfm_realloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->n++] = e;
}

void hfm_list_free(struct hfm_list *l)
{
	if (!l)
		return;
	if (l->release)
		l->release(l);
	if (l->snap)
		hfm_snapshot_unref(l->snap);
	free(l->items);
	free(l);
}

int hfm_snapshot_list(struct hfm_list **out, struct hfm_snapshot *s,
		      const char *path, int recursive)
{
	size_t from, to, i, dl = strlen(path);
	struct hfm_list *l;

	if (dl) {
		ssize_t at = hfm_snapshot_find(s, path);
		if (at < 0 || !s->entries[at].is_dir)
			return hfm_error_set(HFM_ENOENT, "%s does not exist at %s", path,
					     s->commit);
	}
	hfm_snapshot_under(s, path, &from, &to);
	l = hfm_list_new(s, recursive ? to - from : 64);
	for (i = from; i < to; i++) {
		const char *rel = s->entries[i].path + (dl ? dl + 1 : 0);

		if (!recursive && strchr(rel, '/'))
			continue;
		hfm_list_push(l, &s->entries[i]);
	}
	*out = l;
	return 0;
}

int hfm_snapshot_stat(struct hfm_list **out, struct hfm_snapshot *s,
		      const char *const *paths, size_t n)
{
	struct hfm_list *l = hfm_list_new(s, n);
	size_t i;

	for (i = 0; i < n; i++) {
		ssize_t at = hfm_snapshot_find(s, paths[i]);
		if (at >= 0)
			hfm_list_push(l, &s->entries[at]);
	}
	*out = l;
	return 0;
}

struct hfm_refs *hfm_refs_new(void)
{
	return hfm_calloc(1, sizeof(struct hfm_refs));
}

void hfm_refs_add(struct hfm_refs *r, int kind, const char *name, const char *ref,
		  const char *target)
{
	struct hfm_ref *e;

	r->v[kind] = hfm_realloc(r->v[kind], (r->n[kind] + 1) * sizeof(struct hfm_ref));
	e = &r->v[kind][r->n[kind]++];
	e->name = hfm_strdup(name);
	e->ref = hfm_strdup(ref);
	memcpy(e->target, target, HFM_SHA1_HEX);
	e->target[HFM_SHA1_HEX] = '\0';
}

void hfm_refs_free(struct hfm_refs *r)
{
	size_t k, i;

	if (!r)
		return;
	for (k = 0; k < 4; k++) {
		for (i = 0; i < r->n[k]; i++) {
			free(r->v[k][i].name);
			free(r->v[k][i].ref);
		}
		free(r->v[k]);
	}
	free(r);
}

void hfm_commits_free(struct hfm_commits *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		hfm_commit_dispose(&c->v[i]);
	free(c->v);
	free(c);
}

ssize_t hfm_stream_read(struct hfm_stream *s, uint64_t pos, uint64_t end, char *buf,
			size_t max, struct hfm_waiter *w)
{
	if (pos >= end || !max)
		return hfm_error_set(HFM_EINVAL, "read past the end of a stream");
	return s->ops->read(s, pos, end, buf, max, w);
}

int hfm_stream_prime(struct hfm_stream *s, uint64_t start, uint64_t end, struct hfm_waiter *w)
{
	if (!s->ops->prime || start >= end || !w)
		return 0;
	return s->ops->prime(s, start, end, w);
}

void hfm_stream_free(struct hfm_stream *s)
{
	if (s)
		s->ops->free(s);
}

void hfm_body_dispose(struct hfm_body *b)
{
	if (b->kind == HFM_BODY_FD && b->fd >= 0)
		close(b->fd);
	if (b->kind == HFM_BODY_MEM && b->mem_free)
		b->mem_free(b->mem_cls);
	if (b->kind == HFM_BODY_STREAM && b->stream)
		hfm_stream_free(b->stream);
	b->stream = NULL;
	b->fd = -1;
	b->mem = NULL;
	b->mem_free = NULL;
}
