/*
 * test_src_cache.c - the online cache source against a canned upstream hub
 * (stub_http.h): answers keyed by a commit are asked once and kept, a
 * branch is asked again after its TTL, upstream trouble falls back to what
 * is kept, offline mode answers from meta/ alone, files are fetched into
 * the store (or relayed when the cache rules deny the repo).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "hfm/hash.h"
#include "hfm/src_cache.h"
#include "logcap.h"
#include "stub_http.h"
#include "tap.h"
#include "waitfor.h"

#define SHA1 "1111111111111111111111111111111111111111"
#define SHA2 "2222222222222222222222222222222222222222"
#define BLOB_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TREE_S "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define W_SIZE 300000

static char root[] = "/tmp/hfm-srccache-XXXXXX";
static struct hfm_store *store;
static struct stub *hub;
static char UP[64];
static char w_oid[HFM_SHA256_HEX + 1];   /* sub/w.bin: the stub's content of W_SIZE bytes */
static struct hfm_ctx nowait = { 0 };

static struct hfm_source *cache_new(int offline, unsigned ttl, const struct hfm_rules *rules,
				    const char *url)
{
	struct hfm_cachesrc_opts o = {
		.upstream_url = url ? url : UP,
		.store = store,
		.offline = offline,
		.metadata_ttl = ttl,
		.block_size = 64 * 1024,
		.cache_rules = rules,
		.log = logcap,
	};
	struct hfm_source *src = NULL;

	if (hfm_cachesrc_new(&src, &o))
		abort();
	return src;
}

static struct hfm_repo *repo_of(struct hfm_source *src, const char *name)
{
	struct hfm_repo_id id = { .type = HFM_MODEL };
	struct hfm_repo *r = NULL;

	snprintf(id.name, sizeof(id.name), "%s", name);
	if (src->ops->repo_open(&r, src, &id, &nowait))
		abort();
	return r;
}

static void info_route(const char *target, const char *sha, const char *extra)
{
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"id\":\"org/x\",\"sha\":\"%s\",\"lastModified\":\"2024-05-01T10:20:30.250Z\","
		 "\"createdAt\":\"2023-01-02T03:04:05.000Z\",\"private\":false,%s"
		 "\"xetEnabled\":true,\"siblings\":[]}", sha, extra ? extra : "\"gated\":false,");
	stub_route(hub, target, 200, NULL, body);
}

/* The text of <root>/<rel>, or "" (static buffer). */
static const char *meta_text(const char *rel)
{
	static char buf[65536];
	char path[512];
	ssize_t n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int meta_exists(const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return stat(path, &st) == 0;
}

/* Pretend <root>/<rel> was written `age_s` seconds ago. */
static void age(const char *rel, int age_s)
{
	char path[512];
	struct timespec t[2];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= age_s;
	t[1] = t[0];
	if (utimensat(AT_FDCWD, path, t, 0))
		abort();
}

static const struct hfm_entry *find(const struct hfm_list *l, const char *path)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (!strcmp(l->items[i]->path, path))
			return l->items[i];
	return NULL;
}

/* Read a whole body as the HTTP layer would; 1 if it is the stub's content. */
static int body_is_stub(struct hfm_body *b, uint64_t size)
{
	uint8_t *got = malloc(size), *want = malloc(size);
	struct waitfor t;
	uint64_t pos = 0;
	int ok = b->size == size;

	waitfor_init(&t);
	while (ok && pos < size) {
		ssize_t n;
		if (b->kind == HFM_BODY_FD) {
			n = pread(b->fd, got + pos, size - pos, (off_t)(b->offset + pos));
		} else {
			n = hfm_stream_read(b->stream, pos, size, (char *)got + pos, size - pos,
					    waitfor_arm(&t));
			if (n == HFM_EAGAIN) {
				ok = waitfor_woken(&t);
				continue;
			}
		}
		if (n <= 0)
			ok = 0;
		else
			pos += (uint64_t)n;
	}
	stub_fill(want, 0, size);
	ok = ok && !memcmp(got, want, size);
	waitfor_dispose(&t);
	free(got);
	free(want);
	return ok;
}

static void routes(void)
{
	char body[2048], link[512], target[256];
	uint8_t *p = malloc(W_SIZE);

	stub_fill(p, 0, W_SIZE);
	hfm_sha256_hex(w_oid, p, W_SIZE);
	free(p);

	info_route("/api/models/org/x/revision/main", SHA1, NULL);
	info_route("/api/models/org/x/revision/" SHA1, SHA1, NULL);
	info_route("/api/models/org/x/revision/" SHA1 "?blobs=true", SHA1,
		   "\"gated\":false,\"blobs\":1,");
	info_route("/api/models/org/x/revision/v1", SHA1, NULL);
	/* the tree in two pages, the second with a Xet signal */
	snprintf(link, sizeof(link), "Link: <%s/api/models/org/x/tree/" SHA1
		 "?recursive=true&expand=false&cursor=2>; rel=\"next\"\r\n", UP);
	stub_route(hub, "/api/models/org/x/tree/" SHA1 "?recursive=true&expand=false", 200, link,
		   "[{\"type\":\"file\",\"oid\":\"" BLOB_A "\",\"size\":5,\"path\":\"a.txt\"},"
		   "{\"type\":\"directory\",\"oid\":\"" TREE_S "\",\"size\":0,\"path\":\"sub\"},"
		   "{\"type\":\"file\",\"oid\":\"" BLOB_A "\",\"size\":0,\"path\":\"empty\"}]");
	snprintf(body, sizeof(body),
		 "[{\"type\":\"file\",\"oid\":\"" BLOB_A "\",\"size\":%d,\"path\":\"sub/w.bin\","
		 "\"xetHash\":\"feed\",\"lfs\":{\"oid\":\"%s\",\"size\":%d,\"pointerSize\":134}}]",
		 W_SIZE, w_oid, W_SIZE);
	stub_route(hub, "/api/models/org/x/tree/" SHA1 "?recursive=true&expand=false&cursor=2",
		   200, NULL, body);
	stub_route(hub, "/api/models/org/x/tree/" SHA1 "?expand=true", 200, NULL,
		   "[{\"path\":\"a.txt\",\"lastCommit\":{\"id\":\"" SHA1 "\",\"title\":\"add a\","
		   "\"date\":\"2024-05-01T10:20:30.000Z\"}},{\"path\":\"sub\",\"lastCommit\":"
		   "{\"id\":\"" SHA1 "\",\"title\":\"add sub\",\"date\":\"2024-05-01T10:20:30.000Z\"}}]");
	stub_route(hub, "/api/models/org/x/refs?include_prs=1", 200, NULL,
		   "{\"branches\":[{\"name\":\"main\",\"ref\":\"refs/heads/main\",\"targetCommit\":\""
		   SHA1 "\"}],\"tags\":[{\"name\":\"v1\",\"ref\":\"refs/tags/v1\",\"targetCommit\":\""
		   SHA1 "\"}],\"converts\":[],\"pullRequests\":[]}");
	stub_route(hub, "/api/models/org/x/commits/" SHA1 "?limit=3", 200, NULL,
		   "[{\"id\":\"" SHA1 "\",\"title\":\"t1\",\"message\":\"m1\",\"date\":"
		   "\"2024-05-01T10:20:30.000Z\",\"authors\":[{\"user\":\"ana\"}]},"
		   "{\"id\":\"" SHA2 "\",\"title\":\"t2\",\"message\":\"m2\",\"date\":"
		   "\"2024-04-01T10:20:30.000Z\",\"authors\":[]},"
		   "{\"id\":\"" BLOB_A "\",\"title\":\"t3\",\"message\":\"m3\"}]");
	snprintf(target, sizeof(target), "/bytes/%d", W_SIZE);
	snprintf(link, sizeof(link), "Location: %s\r\n", target);
	stub_route(hub, "/org/x/resolve/" SHA1 "/sub/w.bin", 302, link, "moved");
	stub_route(hub, "/api/models/org/x/revision/nope", 404, "X-Error-Code: RevisionNotFound\r\n",
		   "{\"error\":\"Invalid rev id: nope\"}");
	stub_route(hub, "/api/models/org/missing/revision/main", 404,
		   "X-Error-Code: RepoNotFound\r\n", "{\"error\":\"Repository not found\"}");
	stub_route(hub, "/api/models/org/broken/revision/main", 500, NULL, "oops");
}

/*
 * Resolve `rev` of org/x with a new source on the same store: what it finds
 * kept is all it shares with the others (a source also shares an upstream
 * answer with requests for two seconds after it came).
 */
static int resolve_fresh(struct hfm_resolved *rc, const char *rev)
{
	struct hfm_source *src = cache_new(0, 3600, NULL, NULL);
	struct hfm_repo *r = repo_of(src, "org/x");
	int ret = src->ops->resolve(rc, r, rev, &nowait);

	src->ops->repo_close(r);
	src->ops->free(src);
	return ret;
}

static void test_resolve(struct hfm_source *src)
{
	struct hfm_repo *r = repo_of(src, "org/x");
	struct hfm_resolved rc;
	const char *rev_main = "/api/models/org/x/revision/main";

	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), 0, "resolve main");
	TAP_IS_STR(rc.commit, SHA1, "main: upstream's sha");
	TAP_IS_INT(rc.date_ms, 1714558830250LL, "main: lastModified with its milliseconds");
	TAP_IS_INT(rc.created_ms, 1672628645000LL, "main: createdAt");
	TAP_IS_STR(meta_text("meta/models/org/x/revs/main"), SHA1, "main: the mapping is kept");
	TAP_OK(strstr(meta_text("meta/models/org/x/commits/" SHA1 "/info.json"), "\"sha\"") &&
	       !strstr(meta_text("meta/models/org/x/commits/" SHA1 "/info.json"), "xetEnabled"),
	       "main: the commit's info is kept, without Xet signals");

	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), 0, "resolve main again");
	TAP_IS_INT(stub_hits(hub, rev_main), 1, "main again: within the TTL, not asked");
	TAP_IS_INT(src->ops->resolve(&rc, r, SHA1, &nowait), 0, "resolve the sha");
	TAP_IS_INT(stub_hits(hub, "/api/models/org/x/revision/" SHA1), 0,
		   "the sha: its info was kept by the branch's answer, not asked");
	{
		/* a commit's info is read and parsed once: then it comes from memory */
		char path[512], away[520];

		snprintf(path, sizeof(path), "%s/meta/models/org/x/commits/" SHA1 "/info.json", root);
		snprintf(away, sizeof(away), "%s.away", path);
		TAP_OK(rename(path, away) == 0, "the sha: its info file moved away");
		TAP_IS_INT(src->ops->resolve(&rc, r, SHA1, &nowait), 0, "the sha again: resolved");
		TAP_OK(!strcmp(rc.commit, SHA1) && rc.date_ms == 1714558830250LL &&
		       stub_hits(hub, "/api/models/org/x/revision/" SHA1) == 0,
		       "the sha again: from memory (neither the file nor upstream)");
		rename(away, path);
	}

	/* the branch moved upstream; the kept mapping is past its TTL */
	info_route(rev_main, SHA2, NULL);
	info_route("/api/models/org/x/revision/" SHA2, SHA2, NULL);
	age("meta/models/org/x/revs/main", 7200);
	TAP_IS_INT(resolve_fresh(&rc, "main"), 0, "main past the TTL: resolved");
	TAP_IS_INT(stub_hits(hub, rev_main), 2, "main past the TTL: asked again");
	TAP_IS_STR(rc.commit, SHA2, "main past the TTL: the new commit");

	/* upstream in trouble: the kept mapping, whatever its age */
	stub_route(hub, rev_main, 503, NULL, "busy");
	age("meta/models/org/x/revs/main", 7200);
	TAP_IS_INT(resolve_fresh(&rc, "main"), 0, "upstream 503: still resolved");
	TAP_IS_STR(rc.commit, SHA2, "upstream 503: from the kept mapping");
	TAP_OK(logcap_has("upstream unavailable, org/x@main from the cache"), "upstream 503: logged");
	info_route(rev_main, SHA2, NULL);

	TAP_IS_INT(src->ops->resolve(&rc, r, "nope", &nowait), HFM_ENOREV,
		   "RevisionNotFound upstream: HFM_ENOREV");
	src->ops->repo_close(r);
	r = repo_of(src, "org/missing");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), HFM_ENOREPO,
		   "RepoNotFound upstream: HFM_ENOREPO");
	src->ops->repo_close(r);
	r = repo_of(src, "org/unrouted");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), HFM_ENOREPO,
		   "a bare 404: HFM_ENOREPO");
	src->ops->repo_close(r);
	r = repo_of(src, "org/broken");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), HFM_EUPSTREAM,
		   "upstream 500, nothing kept: HFM_EUPSTREAM (502)");
	src->ops->repo_close(r);
	TAP_OK(!meta_exists("meta/models/org/missing/revs/main"), "nothing kept for errors");
}

/* Requests that need the same answer share one upstream request. */
static void test_shared(struct hfm_source *src)
{
	struct hfm_repo *r1 = repo_of(src, "org/x"), *r2 = repo_of(src, "org/x");
	struct waitfor t1, t2;
	struct hfm_ctx c1 = { 0 }, c2 = { 0 };
	struct hfm_resolved rc1, rc2;
	const char *v1 = "/api/models/org/x/revision/v1";

	waitfor_init(&t1);
	waitfor_init(&t2);
	stub_hold(hub, 1);
	c1.waiter = waitfor_arm(&t1);
	c2.waiter = waitfor_arm(&t2);
	TAP_IS_INT(src->ops->resolve(&rc1, r1, "v1", &c1), HFM_EAGAIN, "shared: the first waits");
	TAP_IS_INT(src->ops->resolve(&rc2, r2, "v1", &c2), HFM_EAGAIN, "shared: the second too");
	stub_hold(hub, 0);
	TAP_OK(waitfor_woken(&t1) && waitfor_woken(&t2), "shared: both woken by one answer");
	c1.waiter = waitfor_arm(&t1);
	c2.waiter = waitfor_arm(&t2);
	TAP_OK(src->ops->resolve(&rc1, r1, "v1", &c1) == 0 &&
	       src->ops->resolve(&rc2, r2, "v1", &c2) == 0 && !strcmp(rc1.commit, SHA1) &&
	       !strcmp(rc2.commit, SHA1), "shared: both re-runs resolve");
	TAP_IS_INT(stub_hits(hub, v1), 1, "shared: upstream was asked once");
	src->ops->repo_close(r1);
	src->ops->repo_close(r2);
	waitfor_dispose(&t1);
	waitfor_dispose(&t2);
}

static void test_lists(struct hfm_source *src)
{
	struct hfm_repo *r = repo_of(src, "org/x");
	const char *tree = "/api/models/org/x/tree/" SHA1 "?recursive=true&expand=false";
	const char *paths[] = { "sub/w.bin", "nothing", "a.txt" };
	const struct hfm_entry *e;
	struct hfm_list *l = NULL;
	struct hfm_buf info = HFM_BUF_INIT(1 << 20);
	struct hfm_resolved rc = { .commit = SHA1 };
	struct hfm_refs *refs = NULL;
	struct hfm_commits *cm = NULL;

	TAP_IS_INT(src->ops->list(&l, r, SHA1, "", HFM_LIST_RECURSIVE, &nowait), 0,
		   "list: the whole tree");
	TAP_OK(l && l->n == 4 && !strcmp(l->items[0]->path, "a.txt") &&
	       !strcmp(l->items[3]->path, "sub/w.bin"), "list: both pages, sorted");
	e = find(l, "sub/w.bin");
	TAP_OK(e && e->is_lfs && e->size == W_SIZE && !strcmp(e->lfs_oid, w_oid) &&
	       e->pointer_size == 134, "list: an LFS file's ids and size");
	e = find(l, "sub");
	TAP_OK(e && e->is_dir && e->size == 0, "list: a directory");
	TAP_OK(meta_exists("meta/models/org/x/commits/" SHA1 "/tree.json") &&
	       !strstr(meta_text("meta/models/org/x/commits/" SHA1 "/tree.json"), "xetHash"),
	       "list: the merged tree is kept without Xet signals");
	hfm_list_free(l);
	TAP_IS_INT(src->ops->list(&l, r, SHA1, "sub", 0, &nowait), 0, "list a directory");
	TAP_OK(l && l->n == 1 && find(l, "sub/w.bin"), "list a directory: what is in it");
	hfm_list_free(l);
	TAP_IS_INT(src->ops->list(&l, r, SHA1, "a.txt", 0, &nowait), HFM_ENOENT,
		   "list a file: EntryNotFound");
	TAP_IS_INT(src->ops->stat(&l, r, SHA1, paths, 3, 0, &nowait), 0, "stat");
	TAP_OK(l && l->n == 2 && !strcmp(l->items[0]->path, "sub/w.bin") &&
	       !strcmp(l->items[1]->path, "a.txt"), "stat: the paths that exist, in order");
	hfm_list_free(l);
	TAP_IS_INT(stub_hits(hub, tree), 1, "the tree was asked once for all of these");
	TAP_IS_INT(src->ops->list(&l, r, "main", "", 0, &nowait), HFM_ENOREV,
		   "list at a branch name: lists take commits");

	/* lastCommit from the expanded listing of each directory touched */
	TAP_IS_INT(src->ops->list(&l, r, SHA1, "", HFM_LIST_EXPAND, &nowait), 0, "list, expanded");
	e = find(l, "sub");
	TAP_OK(e && e->last_commit && !strcmp(e->last_commit->title, "add sub") &&
	       !strcmp(e->last_commit->id, SHA1), "expanded: a directory's last commit");
	hfm_list_free(l);
	TAP_IS_INT(src->ops->stat(&l, r, SHA1, paths, 3, HFM_LIST_EXPAND, &nowait), 0,
		   "stat, expanded (sub/ was never expanded upstream)");
	e = find(l, "a.txt");
	TAP_OK(e && e->last_commit && !strcmp(e->last_commit->title, "add a"),
	       "expanded: a file's last commit, from the kept listing");
	e = find(l, "sub/w.bin");
	TAP_OK(e && !e->last_commit, "expanded: none where upstream had none");
	hfm_list_free(l);
	TAP_IS_INT(stub_hits(hub, "/api/models/org/x/tree/" SHA1 "?expand=true"), 1,
		   "expanded: the root's listing was asked once");

	TAP_IS_INT(src->ops->info(&info, r, &rc, 0, &nowait), 0, "info");
	TAP_OK(strstr(info.ptr, "\"sha\":\"" SHA1 "\"") && !strstr(info.ptr, "xetEnabled"),
	       "info: upstream's, without Xet signals");
	hfm_buf_reset(&info);
	TAP_IS_INT(src->ops->info(&info, r, &rc, HFM_INFO_BLOBS, &nowait), 0, "info with blobs");
	TAP_OK(strstr(info.ptr, "\"blobs\":1") != NULL, "info with blobs: its own answer");
	TAP_OK(meta_exists("meta/models/org/x/commits/" SHA1 "/info-blobs.json"),
	       "info with blobs: kept apart");
	hfm_buf_dispose(&info);

	TAP_IS_INT(src->ops->refs(&refs, r, &nowait), 0, "refs");
	TAP_OK(refs && refs->n[HFM_REFS_BRANCH] == 1 && refs->n[HFM_REFS_TAG] == 1 &&
	       !strcmp(refs->v[HFM_REFS_TAG][0].name, "v1") &&
	       !strcmp(refs->v[HFM_REFS_TAG][0].target, SHA1), "refs: branches and tags");
	hfm_refs_free(refs);

	TAP_IS_INT(src->ops->commits(&cm, r, SHA1, 0, 2, &nowait), 0, "commits");
	TAP_OK(cm && cm->n == 2 && cm->more && !strcmp(cm->v[0].title, "t1") &&
	       cm->v[0].author && !strcmp(cm->v[0].author, "ana") && !cm->v[1].author,
	       "commits: a page, and more to come");
	hfm_commits_free(cm);
	src->ops->repo_close(r);
}

static void test_files(struct hfm_source *src)
{
	struct hfm_repo *r = repo_of(src, "org/x");
	const struct hfm_entry *e;
	struct hfm_list *l = NULL;
	struct hfm_body b;
	struct hfm_buf ptr = HFM_BUF_INIT(1024);

	TAP_IS_INT(src->ops->list(&l, r, SHA1, "", HFM_LIST_RECURSIVE, &nowait), 0, "files: listed");
	e = find(l, "sub/w.bin");
	TAP_IS_INT(src->ops->open(&b, r, SHA1, e, 0, &nowait), 0, "open an LFS file not in the store");
	TAP_IS_INT(b.kind, HFM_BODY_STREAM, "... a stream");
	TAP_IS_STR(b.source_kind, "cache", "... from the cache");
	TAP_OK(body_is_stub(&b, W_SIZE), "... whose bytes come from upstream's resolve URL");
	hfm_body_dispose(&b);
	TAP_OK(hfm_store_object_exists(store, w_oid), "... and are kept in the store under its oid");
	TAP_IS_INT(src->ops->open(&b, r, SHA1, e, 0, &nowait), 0, "open it again");
	TAP_IS_INT(b.kind, HFM_BODY_FD, "... from the store (an fd)");
	TAP_OK(body_is_stub(&b, W_SIZE), "... same bytes");
	hfm_body_dispose(&b);
	TAP_IS_INT(stub_hits(hub, "/org/x/resolve/" SHA1 "/sub/w.bin"), 1,
		   "upstream was asked for it once");

	TAP_IS_INT(src->ops->open(&b, r, SHA1, e, HFM_OPEN_RAW, &nowait), 0, "open the pointer");
	hfm_lfs_pointer(&ptr, w_oid, W_SIZE);
	TAP_OK(b.kind == HFM_BODY_MEM && b.size == ptr.len && !memcmp(b.mem, ptr.ptr, ptr.len),
	       "... made from the ids");
	hfm_body_dispose(&b);
	hfm_buf_dispose(&ptr);
	TAP_IS_INT(src->ops->open(&b, r, SHA1, find(l, "empty"), 0, &nowait), 0, "open an empty file");
	TAP_OK(b.kind == HFM_BODY_MEM && b.size == 0, "... nothing to fetch");
	hfm_body_dispose(&b);
	TAP_IS_INT(src->ops->open(&b, r, SHA1, find(l, "sub"), 0, &nowait), HFM_ENOENT,
		   "open a directory: EntryNotFound");
	hfm_list_free(l);
	src->ops->repo_close(r);
}

/* A second process on the same store, offline: meta/ and objects/ alone. */
static void test_offline(void)
{
	struct hfm_source *src = cache_new(1, 60, NULL, NULL);
	struct hfm_repo *r = repo_of(src, "org/x");
	struct hfm_resolved rc;
	struct hfm_list *l = NULL;
	struct hfm_refs *refs = NULL;
	struct hfm_buf info = HFM_BUF_INIT(1 << 20);
	struct hfm_body b;
	const struct hfm_entry *e;
	int n0 = stub_requests(hub);

	age("meta/models/org/x/revs/main", 7200);
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), 0, "offline: resolve main");
	TAP_IS_STR(rc.commit, SHA2, "offline: the kept mapping, whatever its age");
	TAP_IS_INT(src->ops->resolve(&rc, r, "v1", &nowait), 0, "offline: a tag seen before");
	TAP_IS_INT(src->ops->resolve(&rc, r, "v2", &nowait), HFM_ENOREV,
		   "offline: a revision never seen: RevisionNotFound");
	TAP_IS_INT(src->ops->list(&l, r, SHA1, "", HFM_LIST_RECURSIVE | HFM_LIST_EXPAND, &nowait), 0,
		   "offline: list a commit seen before");
	TAP_OK(l && l->n == 4, "offline: the whole kept tree");
	e = find(l, "a.txt");
	TAP_OK(e && e->last_commit, "offline: lastCommit where its listing was kept");
	e = find(l, "sub/w.bin");
	TAP_OK(e && !e->last_commit, "offline: none where it was not (and no error)");
	TAP_IS_INT(src->ops->open(&b, r, SHA1, e, 0, &nowait), 0, "offline: open a kept blob");
	TAP_OK(b.kind == HFM_BODY_FD && body_is_stub(&b, W_SIZE), "offline: from the store");
	hfm_body_dispose(&b);
	TAP_IS_INT(src->ops->open(&b, r, SHA1, find(l, "a.txt"), 0, &nowait), HFM_EUNAVAIL,
		   "offline: a file never fetched is unavailable");
	hfm_list_free(l);
	TAP_IS_INT(src->ops->list(&l, r, SHA2, "", 0, &nowait), HFM_EOFFLINE,
		   "offline: the tree of a commit never listed");
	rc = (struct hfm_resolved){ .commit = SHA1 };
	TAP_IS_INT(src->ops->info(&info, r, &rc, 0, &nowait), 0, "offline: info kept");
	hfm_buf_dispose(&info);
	TAP_IS_INT(src->ops->refs(&refs, r, &nowait), 0, "offline: refs kept");
	hfm_refs_free(refs);
	src->ops->repo_close(r);
	r = repo_of(src, "org/never");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), HFM_ENOREPO,
		   "offline: a repo never seen: RepoNotFound");
	src->ops->repo_close(r);
	TAP_IS_INT(stub_requests(hub), n0, "offline: upstream never asked");
	src->ops->free(src);
}

/* Cache rules deny a repo: its files are relayed and nothing of it is kept. */
static void test_denied(struct hfm_rules *allow_x)
{
	struct hfm_source *src = cache_new(0, 60, allow_x, NULL);
	struct hfm_repo *r = repo_of(src, "org/y");
	struct hfm_resolved rc;
	struct hfm_list *l = NULL;
	struct hfm_body b;
	char body[512], oid[HFM_SHA256_HEX + 1];
	uint8_t *p = malloc(70000);

	stub_fill(p, 0, 70000);
	hfm_sha256_hex(oid, p, 70000);
	free(p);
	info_route("/api/models/org/y/revision/main", SHA1, NULL);
	snprintf(body, sizeof(body), "[{\"type\":\"file\",\"oid\":\"" BLOB_A "\",\"size\":70000,"
		 "\"path\":\"y.bin\",\"lfs\":{\"oid\":\"%s\",\"size\":70000,\"pointerSize\":134}}]",
		 oid);
	stub_route(hub, "/api/models/org/y/tree/" SHA1 "?recursive=true&expand=false", 200, NULL,
		   body);
	stub_route(hub, "/org/y/resolve/" SHA1 "/y.bin", 302, "Location: /bytes/70000\r\n", "");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), 0, "denied: resolves");
	TAP_IS_INT(src->ops->list(&l, r, SHA1, "", HFM_LIST_RECURSIVE, &nowait), 0, "denied: lists");
	TAP_IS_INT(src->ops->open(&b, r, SHA1, find(l, "y.bin"), 0, &nowait), 0, "denied: opens");
	TAP_OK(b.kind == HFM_BODY_STREAM && body_is_stub(&b, 70000), "denied: relayed");
	hfm_body_dispose(&b);
	hfm_list_free(l);
	TAP_OK(!hfm_store_object_exists(store, oid), "denied: the file was not kept");
	TAP_OK(!meta_exists("meta/models/org/y"), "denied: nor its metadata");
	src->ops->repo_close(r);
	src->ops->free(src);
}

/* Gated repos: the files need a token upstream accepts. */
static void test_gated(struct hfm_source *src)
{
	struct hfm_repo *r = repo_of(src, "org/g");
	struct hfm_ctx tok = { .authorization = "Bearer hf_ok" };
	struct hfm_resolved rc;

	info_route("/api/models/org/g/revision/main", SHA1, "\"gated\":\"auto\",");
	stub_route(hub, "/api/models/org/g/auth-check", 403, "X-Error-Code: GatedRepo\r\n",
		   "{\"error\":\"gated\"}");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), 0, "gated: metadata is public");
	TAP_OK(strstr(meta_text("meta/models/org/g/access"), "gated") != NULL,
	       "gated: the mark is kept");
	TAP_IS_INT(src->ops->access(r, &nowait), HFM_EGATED, "gated: no token, no files");
	src->ops->repo_close(r);

	stub_route(hub, "/api/models/org/g/auth-check", 200, NULL, "{}");
	r = repo_of(src, "org/g");
	TAP_IS_INT(src->ops->access(r, &tok), 0, "gated: a token upstream accepts");
	src->ops->repo_close(r);
}

/*
 * The upstream cannot be reached (a closed port): what is not stored is
 * answered as offline answers it -- RepoNotFound, RevisionNotFound, a listed
 * file unavailable -- with a message that says why; what is stored is served.
 */
static void test_unreachable(const char *url)
{
	struct hfm_source *src = cache_new(0, 60, NULL, url);
	struct hfm_repo *r = repo_of(src, "org/z");
	struct hfm_resolved rc;
	struct hfm_list *l = NULL;
	struct hfm_body b;

	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), HFM_ENOREPO,
		   "unreachable, a repo never seen: RepoNotFound (not a 504)");
	TAP_IS_STR(hfm_error_last(), "org/z is not in this mirror and the upstream is unreachable",
		   "unreachable: the message says why");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), HFM_ENOREPO,
		   "unreachable, asked again: RepoNotFound");
	src->ops->repo_close(r);

	r = repo_of(src, "org/x");
	TAP_IS_INT(src->ops->resolve(&rc, r, "main", &nowait), 0,
		   "unreachable: a kept branch, whatever its age");
	TAP_IS_STR(rc.commit, SHA2, "unreachable: the kept mapping");
	TAP_IS_INT(src->ops->resolve(&rc, r, "v2", &nowait), HFM_ENOREV,
		   "unreachable, a revision never seen: RevisionNotFound");
	TAP_OK(strstr(hfm_error_last(), "upstream is unreachable") != NULL,
	       "unreachable, revision: the message says why");
	TAP_IS_INT(src->ops->resolve(&rc, r, SHA2 "", &nowait), 0, "unreachable: a kept commit");
	TAP_IS_INT(src->ops->list(&l, r, SHA1, "", HFM_LIST_RECURSIVE, &nowait), 0,
		   "unreachable: a kept tree");
	TAP_IS_INT(src->ops->open(&b, r, SHA1, find(l, "sub/w.bin"), 0, &nowait), 0,
		   "unreachable: a kept blob");
	hfm_body_dispose(&b);
	TAP_IS_INT(src->ops->open(&b, r, SHA1, find(l, "a.txt"), 0, &nowait), HFM_EUNAVAIL,
		   "unreachable: a listed file never fetched is unavailable (502)");
	hfm_list_free(l);
	src->ops->repo_close(r);
	src->ops->free(src);
}

int main(void)
{
	struct hfm_rule allow_x = { .repo = "org/x", .allow = 1 };
	struct hfm_rules *rules = NULL;
	struct hfm_source *src;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	char cmd[300], url[64];
	int rc0, sock;

	signal(SIGPIPE, SIG_IGN);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	if (!mkdtemp(root) || hfm_store_open(&store, root, 1) ||
	    hfm_rules_compile(&rules, &allow_x, 1, NULL)) {
		printf("Bail out! cannot make a store\n");
		return 1;
	}
	hub = stub_start();
	snprintf(UP, sizeof(UP), "http://127.0.0.1:%d", stub_port(hub));
	routes();

	src = cache_new(0, 3600, NULL, NULL);
	TAP_OK(src->ops->opens_foreign, "the cache may open other sources' entries");
	test_resolve(src);
	test_shared(src);
	test_lists(src);
	test_files(src);
	test_gated(src);
	src->ops->free(src);
	test_offline();
	test_denied(rules);

	/* a port that refuses connections: upstream unreachable */
	sock = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(sock, (struct sockaddr *)&a, sizeof(a));
	getsockname(sock, (struct sockaddr *)&a, &al);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	test_unreachable(url);
	close(sock);

	stub_stop(hub);
	hfm_rules_free(rules);
	hfm_store_free(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	rc0 = system(cmd);
	(void)rc0;
	return tap_done();
}
