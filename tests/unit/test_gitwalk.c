/*
 * The shallow boundary of an upload-pack answer (gitwalk.c): deepen N,
 * deepen-since T, deepen-relative and a shallow repository's own roots,
 * against a fixture history made here with git:
 *
 *     A(1000) <- B(2000) <- C(3000) <- M(5000)
 *                  ^                   /
 *                  +------ D(4000) <--+
 *
 * From M the depths are M 1, C 2, D 2, B 3, A 4 (committer times in
 * parentheses).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "hfm/gitwalk.h"
#include "fx_sh.h"
#include "tap.h"

static char T[256];
static char A[41], B[41], C[41], D[41], M[41];

/* A commit at committer (and author) time `t` in the work tree; its id into out. */
static int commit_at(char out[41], const char *msg, int t)
{
	fx_sh_line(out, 41, "cd %s/w && echo %s > f && git add f && "
		   "GIT_AUTHOR_DATE='@%d +0000' GIT_COMMITTER_DATE='@%d +0000' "
		   "git commit -q -m %s >/dev/null 2>&1; git rev-parse HEAD", T, msg, t, t, msg);
	return strlen(out) == 40 ? 0 : -1;
}

static int make_fixture(void)
{
	if (fx_sh("git init -q -b main %s/w && git -C %s/w config user.name t && "
		  "git -C %s/w config user.email t@t && git -C %s/w config commit.gpgsign false",
		  T, T, T, T))
		return -1;
	if (commit_at(A, "A", 1000) || commit_at(B, "B", 2000) ||
	    fx_sh("git -C %s/w checkout -q -b side", T) || commit_at(D, "D", 4000) ||
	    fx_sh("git -C %s/w checkout -q main", T) || commit_at(C, "C", 3000))
		return -1;
	/* M: a merge that keeps main's tree */
	if (fx_sh("cd %s/w && GIT_AUTHOR_DATE='@5000 +0000' GIT_COMMITTER_DATE='@5000 +0000' "
		  "git merge -q --no-ff -s ours -m M side >/dev/null", T))
		return -1;
	if (strlen(fx_sh_line(M, sizeof(M), "git -C %s/w rev-parse HEAD", T)) != 40)
		return -1;
	/* a shallow mirror of depth 2: its roots are C and D */
	return fx_sh("git clone -q --bare --depth 2 file://%s/w %s/shallow.git 2>/dev/null", T, T);
}

static void push_hex(struct hfm_oidv *v, const char *hex)
{
	struct hfm_git_oid id;

	if (!hfm_git_oid_parse(&id, hex, 40))
		hfm_oidv_push(v, &id);
}

/*
 * The pkt-lines' payloads as one string of "shallow X;unshallow Y;" in
 * the order given, ids as the letters of the fixture.
 */
static void lines_of(char *out, size_t cap, const struct hfm_buf *b)
{
	const char *p = b->ptr ? b->ptr : "";
	size_t off = 0, n = 0;
	const struct { const char *hex, *name; } names[] = {
		{ A, "A" }, { B, "B" }, { C, "C" }, { D, "D" }, { M, "M" },
	};

	out[0] = '\0';
	while (off + 4 <= b->len) {
		unsigned len;
		char word[16], hex[41], line[64];
		const char *name = "?";

		if (sscanf(p + off, "%4x", &len) != 1 || len < 4 || off + len > b->len)
			break;
		snprintf(line, sizeof(line), "%.*s", (int)(len - 4), p + off + 4);
		off += len;
		if (sscanf(line, "%15s %40s", word, hex) != 2)
			continue;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(hex, names[i].hex))
				name = names[i].name;
		n += (size_t)snprintf(out + n, cap - n, "%s %s;", word, name);
		if (n >= cap)
			break;
	}
}

/*
 * The shallow section for wants `want` (one id) with depth / since /
 * relative and the client's shallow commits `shallow` (NULL-terminated),
 * on repository `repo`: its lines into out (see lines_of), the return code.
 */
static int shallow_lines(char *out, size_t cap, const char *repo, int depth, int64_t since,
			 int relative, const char *const *shallow)
{
	struct hfm_upload_req q;
	struct hfm_gitwalk w;
	struct hfm_buf b = HFM_BUF_INIT(1 << 16);
	git_repository *g = NULL;
	git_odb *odb = NULL;
	atomic_int cancelled = 0;
	char path[512];
	int rc;

	out[0] = '\0';
	memset(&q, 0, sizeof(q));
	q.version = 2;
	q.cmd = HFM_GIT_CMD_FETCH;
	q.depth = depth;
	q.deepen_since = since;
	q.deepen_relative = relative;
	push_hex(&q.wants, M);
	for (; shallow && *shallow; shallow++)
		push_hex(&q.shallows, *shallow);
	snprintf(path, sizeof(path), "%s/%s", T, repo);
	if (git_repository_open(&g, path) < 0 || git_repository_odb(&odb, g) < 0) {
		rc = -1000;
		goto cleanup;
	}
	hfm_gitwalk_init(&w, g, odb, &q, &cancelled);
	rc = hfm_gitwalk_classify(&w);
	if (!rc)
		rc = hfm_gitwalk_shallow(&w, &b);
	if (!rc)
		lines_of(out, cap, &b);
	hfm_gitwalk_dispose(&w);
cleanup:
	git_odb_free(odb);
	git_repository_free(g);
	hfm_buf_dispose(&b);
	hfm_upload_req_dispose(&q);
	return rc;
}

/* The lines sorted, so a test does not depend on the table's order. */
static const char *sorted(char *s)
{
	char *parts[16], buf[512], *save = NULL, *t;
	size_t n = 0, i, j;

	snprintf(buf, sizeof(buf), "%s", s);
	for (t = strtok_r(buf, ";", &save); t && n < 16; t = strtok_r(NULL, ";", &save))
		parts[n++] = t;
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(parts[j - 1], parts[j]) > 0; j--) {
			char *x = parts[j];
			parts[j] = parts[j - 1];
			parts[j - 1] = x;
		}
	s[0] = '\0';
	for (i = 0; i < n; i++) {
		strcat(s, parts[i]);
		strcat(s, ";");
	}
	return s;
}

/* One request and the shallow section it must get (lines sorted, as sorted() makes them). */
struct shallow_case {
	const char *repo;
	int depth;
	int64_t since;
	int relative;
	int client_shallow;                  /* the client is shallow at C and D (a clone of depth 2) */
	int rc;
	const char *lines, *what;
};

static const struct shallow_case cases[] = {
	{ "w", 1, 0, 0, 0, 0, "shallow M;", "depth 1: the want is the boundary" },
	{ "w", 2, 0, 0, 0, 0, "shallow C;shallow D;", "depth 2: both parents of the merge" },
	{ "w", 3, 0, 0, 0, 0, "shallow B;", "depth 3: B, reached by two paths at the same depth" },
	{ "w", 4, 0, 0, 0, 0, "shallow A;", "depth 4: a root at the limit is shallow too (as git says it)" },
	{ "w", 5, 0, 0, 0, 0, "", "depth 5: past the root, the whole history, nothing shallow" },
	{ "w", 0, 2500, 0, 0, 0, "shallow C;shallow D;", "since 2500: B is older, C and D are the boundary" },
	{ "w", 0, 3500, 0, 0, 0, "shallow D;shallow M;", "since 3500: C is older too, M is a boundary, D as well" },
	{ "w", 0, 1500, 0, 0, 0, "shallow B;", "since 1500: only A is older" },
	{ "w", 0, 500, 0, 0, 0, "", "since 500: nothing is older, nothing shallow" },
	{ "w", 0, 6000, 0, 0, HFM_EINVAL, "", "since after every want: git's error" },
	{ "w", 1, 0, 1, 1, 0, "shallow B;unshallow C;unshallow D;",
	  "deepen-relative 1: one deeper than the nearest client shallow commit" },
	{ "w", 2, 0, 0, 1, 0, "", "deepen 2 for that client: the boundary is where it is shallow already" },
	{ "shallow.git", 5, 0, 0, 0, 0, "shallow C;shallow D;", "a shallow mirror, depth 5: its roots are a boundary" },
	{ "shallow.git", 1, 0, 0, 0, 0, "shallow M;", "a shallow mirror, depth 1: the depth comes first" },
	{ "shallow.git", 0, 2500, 0, 0, 0, "shallow C;shallow D;",
	  "a shallow mirror, since 2500: its roots, all newer than T" },
};

static void test_cases(void)
{
	const char *const client[] = { C, D, NULL };
	char got[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct shallow_case *k = &cases[i];

		TAP_IS_INT(shallow_lines(got, sizeof(got), k->repo, k->depth, k->since, k->relative,
					 k->client_shallow ? client : NULL), k->rc, "%s", k->what);
		TAP_IS_STR(sorted(got), k->lines, "... its lines");
	}
}

int main(void)
{
	snprintf(T, sizeof(T), "/tmp/hfm-gitwalk-XXXXXX");
	if (!mkdtemp(T))
		return 1;
	git_libgit2_init();
	if (make_fixture()) {
		printf("Bail out! could not make the fixture repositories\n");
		return 1;
	}
	test_cases();
	git_libgit2_shutdown();
	fx_sh("rm -rf %s", T);
	return tap_done();
}
