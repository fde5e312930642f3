/*
 * The store's bare mirror of one repo (mirror.h): created once, locked
 * against a second import, and step 3 of an import: refs set, counted as new
 * or moved, refs the source lacks left alone, HEAD, and the shallow list.
 * git reads the results back.
 */
#include <sys/wait.h>

#include "dirtree.h"
#include "import_fixture.h"
#include "mirror.h"

static char M[512];

static char *hex(char out[GIT_OID_HEXSZ + 1], const git_oid *id)
{
	return git_oid_tostr(out, GIT_OID_HEXSZ + 1, id);
}

/* A commit on the empty tree, with `parent` (may be NULL), at `when`. */
static void commit(git_oid *out, git_repository *repo, const git_oid *parent, int when)
{
	git_treebuilder *tb = NULL;
	git_oid tree;

	if (git_treebuilder_new(&tb, repo, NULL) < 0 || git_treebuilder_write(&tree, tb) < 0 ||
	    hfm_imp_dir_commit(out, repo, &tree, parent, when, "c\n")) {
		printf("# commit: %s\n", git_error_last() ? git_error_last()->message : "");
		exit(1);
	}
	git_treebuilder_free(tb);
}

/* A commit whose parent is not in the repo (a shallow clone's last one). */
static void shallow_commit(git_oid *out, git_repository *repo)
{
	static const char text[] =
		"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
		"parent 9999999999999999999999999999999999999999\n"
		"author a <a@example.com> 1700000000 +0000\n"
		"committer a <a@example.com> 1700000000 +0000\n\nshallow\n";
	git_odb *odb = NULL;

	if (git_repository_odb(&odb, repo) < 0 ||
	    git_odb_write(out, odb, text, sizeof(text) - 1, GIT_OBJECT_COMMIT) < 0) {
		printf("# odb write failed\n");
		exit(1);
	}
	git_odb_free(odb);
}

static void open_job(struct fx_job *x, int *lock_fd)
{
	fx_job_start(x, "/src/m", "acme/m", HFM_IMP_SRC_CLONE, 0);
	if (hfm_imp_mirror_open(&x->job, lock_fd)) {
		printf("# mirror open: %s\n", hfm_error_last());
		exit(1);
	}
}

static char *refs_of(char *out, size_t n)
{
	return fx_sh_text(out, n, "git --git-dir='%s' for-each-ref "
			  "--format='%%(refname) %%(objectname)'", M);
}

static void test_refs(void)
{
	struct fx_job x;
	git_oid c1, c2, c3, c4;
	char h1[41], h2[41], h3[41], h4[41], got[1024], want[1024];
	const char *said;
	int lock = -1;

	fx_job_start(&x, "/src/m", "acme/m", HFM_IMP_SRC_CLONE, 0);
	TAP_IS_INT(hfm_imp_mirror_open(&x.job, &lock), 0, "open a mirror that does not exist");
	snprintf(M, sizeof(M), "%s/store/mirrors/models/acme/m.git", fx_dir);
	TAP_IS_STR(x.job.mirror_path, M, "at mirrors/<type>/<org>/<name>.git");
	TAP_OK(x.job.mirror && git_repository_is_bare(x.job.mirror), "a bare repository, open");
	TAP_OK(lock >= 0, "and locked");
	said = fx_capture_new(&x.said);
	TAP_OK(strstr(said, "created mirror ") != NULL, "its creation is said");
	TAP_IS_STR(fx_sh_line(got, sizeof(got), "git --git-dir='%s' symbolic-ref HEAD", M),
		   "refs/heads/main", "a new mirror's HEAD is main");
	TAP_IS_STR(fx_sh_line(got, sizeof(got), "ls '%s/store/tmp' | grep -c mirror-", fx_dir),
		   "0", "nothing left under tmp/");

	commit(&c1, x.job.mirror, NULL, 1700000000);
	commit(&c2, x.job.mirror, &c1, 1700000100);
	commit(&c3, x.job.mirror, &c2, 1700000200);
	hex(h1, &c1);
	hex(h2, &c2);
	hex(h3, &c3);
	hfm_imp_job_add_ref(&x.job, "refs/heads/main", &c1);
	hfm_imp_job_add_ref(&x.job, "refs/pr/1", &c2);
	hfm_imp_job_add_ref(&x.job, "refs/tags/v1", &c1);
	x.job.head = hfm_strdup("main");
	TAP_IS_INT(hfm_imp_mirror_update(&x.job), 0, "step 3");
	TAP_OK(x.job.refs_new == 3 && x.job.refs_moved == 0, "three new refs");
	snprintf(want, sizeof(want), "refs/heads/main %s\nrefs/pr/1 %s\nrefs/tags/v1 %s", h1, h2,
		 h1);
	TAP_IS_STR(refs_of(got, sizeof(got)), want, "git sees them");
	hfm_imp_mirror_unlock(lock);
	fx_job_end(&x);

	open_job(&x, &lock);
	TAP_OK(strstr(fx_capture_new(&x.said), "created") == NULL, "an existing mirror is opened");
	hfm_imp_job_add_ref(&x.job, "refs/heads/main", &c1);
	hfm_imp_job_add_ref(&x.job, "refs/pr/1", &c2);
	hfm_imp_job_add_ref(&x.job, "refs/tags/v1", &c1);
	TAP_IS_INT(hfm_imp_mirror_update(&x.job), 0, "the same refs again");
	TAP_OK(x.job.refs_new == 0 && x.job.refs_moved == 0, "nothing new, nothing moved");
	hfm_imp_mirror_unlock(lock);
	fx_job_end(&x);

	open_job(&x, &lock);
	hfm_imp_job_add_ref(&x.job, "refs/heads/main", &c2);
	hfm_imp_job_add_ref(&x.job, "refs/heads/dev", &c3);
	hfm_imp_job_add_ref(&x.job, "refs/tags/v1", &c1);
	x.job.head = hfm_strdup("dev");
	TAP_IS_INT(hfm_imp_mirror_update(&x.job), 0, "main moves, dev is new, pr/1 is not listed");
	TAP_OK(x.job.refs_new == 1 && x.job.refs_moved == 1, "one new, one moved");
	snprintf(want, sizeof(want),
		 "refs/heads/dev %s\nrefs/heads/main %s\nrefs/pr/1 %s\nrefs/tags/v1 %s", h3, h2, h2,
		 h1);
	TAP_IS_STR(refs_of(got, sizeof(got)), want, "a ref the source lacks is left alone");
	TAP_IS_STR(fx_sh_line(got, sizeof(got), "git --git-dir='%s' symbolic-ref HEAD", M),
		   "refs/heads/dev", "HEAD names the branch given");

	/* shallow: only commits whose parents the mirror lacks are listed */
	shallow_commit(&c4, x.job.mirror);
	hex(h4, &c4);
	hfm_imp_job_add_ref(&x.job, "refs/heads/shallow", &c4);
	x.job.shallow = hfm_malloc(2 * sizeof(char *));
	x.job.shallow[0] = hfm_strdup(h4);
	x.job.shallow[1] = hfm_strdup(h2);
	x.job.nshallow = 2;
	TAP_IS_INT(hfm_imp_mirror_update(&x.job), 0, "step 3 with a shallow list");
	snprintf(want, sizeof(want), "%s", h4);
	TAP_IS_STR(fx_sh_text(got, sizeof(got), "cat '%s/shallow'", M), want,
		   "the mirror's shallow file lists the commit whose parent is absent, only");
	TAP_IS_INT(hfm_imp_mirror_update(&x.job), 0, "again");
	TAP_IS_STR(fx_sh_text(got, sizeof(got), "cat '%s/shallow'", M), want, "listed once");
	TAP_IS_INT(fx_sh("git --git-dir='%s' log --oneline shallow >/dev/null 2>&1", M), 0,
		   "git walks the shallow branch without missing its parent");
	hfm_imp_mirror_unlock(lock);
	fx_job_end(&x);
}

/*
 * A second import of the same mirror waits for the first: the child says it
 * waits, and gets the lock only once the parent lets go.  No timing: the
 * parent reads the child's messages from a pipe.
 */
static void test_lock(void)
{
	struct fx_job x;
	char got[512];
	int pipefd[2], lock = -1, status = -1;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	got[0] = '\0';
	open_job(&x, &lock);
	TAP_OK(pipe(pipefd) == 0, "a pipe");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct fx_job y;
		FILE *out;
		int child_lock = -1, rc;

		close(pipefd[0]);
		close(lock);   /* the parent's lock, inherited: it must not hold it too */
		out = fdopen(pipefd[1], "w");
		fx_job_start(&y, "/src/m", "acme/m", HFM_IMP_SRC_CLONE, 0);
		hfm_progress_free(y.progress);
		y.progress = hfm_progress_new(HFM_SHOW_PLAIN, out, "hfmirror-import");
		y.job.progress = y.progress;
		rc = hfm_imp_mirror_open(&y.job, &child_lock);
		fprintf(out, "opened %d\n", rc);
		fflush(out);
		_exit(rc ? 1 : 0);
	}
	close(pipefd[1]);
	while (len < sizeof(got) - 1 && !strstr(got, "\n") &&
	       (n = read(pipefd[0], got + len, sizeof(got) - 1 - len)) > 0) {
		len += (size_t)n;
		got[len] = '\0';
	}
	got[len] = '\0';
	TAP_IS_STR(got, "hfmirror-import: waiting for another import of acme/m to finish\n",
		   "a second import says it waits");
	hfm_imp_mirror_unlock(lock);
	while (len < sizeof(got) - 1 && (n = read(pipefd[0], got + len, sizeof(got) - 1 - len)) > 0)
		len += (size_t)n;
	got[len] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	TAP_OK(strstr(got, "\nopened 0\n") != NULL, "and opens the mirror once the first is done");
	TAP_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the second import's process is fine");
	fx_job_end(&x);
}

int main(void)
{
	fx_init("import-mirror");
	test_refs();
	test_lock();
	return fx_done();
}
