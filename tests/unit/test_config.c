/*
 * Configuration: Olah's configs.toml loads unchanged, defaults are Olah's,
 * and every kind of mistake stops with "FILE:LINE: key: what is wrong".
 *
 * argv[1] is examples/configs.toml (Olah's example), argv[2] is
 * examples/hfmirror.toml (every key).  Other files are written into a
 * temporary directory that is the working directory, so messages name
 * "t.toml".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/config.h"
#include "tap.h"

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");

	if (!f) {
		perror(name);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* Load `text` as t.toml; returns the code, with the messages in *msg. */
static int load_text(struct hfm_config **out, struct hfm_buf *msg, const char *text)
{
	write_file("t.toml", text);
	hfm_buf_reset(msg);
	return hfm_config_load(out, "t.toml", msg);
}

/* The file must be refused with exactly `want` as the message. */
static void refused(const char *text, const char *want, const char *what)
{
	struct hfm_buf msg = HFM_BUF_INIT(1 << 16);
	struct hfm_config *c = NULL;
	int rc = load_text(&c, &msg, text);

	TAP_IS_INT(rc, HFM_EINVAL, "%s: refused", what);
	TAP_IS_STR(hfm_buf_cstr(&msg), want, "%s: message", what);
	TAP_OK(c == NULL, "%s: no config", what);
	hfm_config_free(c);
	hfm_buf_dispose(&msg);
}

/* The file must load, with exactly `want` as its warnings (NULL: none). */
static struct hfm_config *loads(const char *text, const char *want, const char *what)
{
	struct hfm_buf msg = HFM_BUF_INIT(1 << 16);
	struct hfm_config *c = NULL;
	int rc = load_text(&c, &msg, text);

	TAP_IS_INT(rc, 0, "%s: loads", what);
	if (rc < 0)
		printf("# %s", hfm_buf_cstr(&msg));
	TAP_IS_STR(c ? c->warnings : NULL, want, "%s: warnings", what);
	hfm_buf_dispose(&msg);
	return c;
}

static void test_olah_example(const char *path)
{
	struct hfm_buf msg = HFM_BUF_INIT(1 << 16);
	struct hfm_config *c = NULL;
	int rc = hfm_config_load(&c, path, &msg);

	TAP_IS_INT(rc, 0, "Olah's example configs.toml loads");
	if (rc < 0) {
		printf("# %s", hfm_buf_cstr(&msg));
		goto cleanup;
	}
	TAP_IS_STR(c->warnings, NULL, "no warnings for Olah's example");
	TAP_IS_STR(c->path, path, "path kept");
	TAP_IS_STR(c->host, "localhost", "host");
	TAP_IS_INT(c->port, 8090, "port");
	TAP_IS_STR(c->ssl_key, NULL, "ssl-key \"\" means none");
	TAP_IS_STR(c->ssl_cert, NULL, "ssl-cert \"\" means none");
	TAP_IS_STR(c->repos_path, "./repos", "repos-path");
	TAP_IS_INT(c->cache_size_limit, 0, "cache-size-limit \"\" means no limit");
	TAP_IS_INT(c->cache_clean_strategy, HFM_CLEAN_LRU, "cache-clean-strategy");
	TAP_IS_STR(c->hf_scheme, "https", "hf-scheme");
	TAP_IS_STR(c->hf_netloc, "huggingface.co", "hf-netloc");
	TAP_IS_STR(c->hf_lfs_netloc, "cdn-lfs.huggingface.co", "hf-lfs-netloc");
	TAP_IS_STR(c->mirror_url, "http://localhost:8090", "mirror url");
	TAP_IS_STR(c->mirror_lfs_url, "http://localhost:8090", "mirror lfs url");
	TAP_IS_INT(c->n_mirrors_path, 1, "one mirrors-path");
	if (c->n_mirrors_path == 1)
		TAP_IS_STR(c->mirrors_path[0], "./mirrors_dir", "mirrors-path[0]");
	TAP_IS_INT(c->offline, 0, "offline");
	TAP_IS_INT(c->n_proxy_rules, 6, "six proxy rules");
	TAP_IS_INT(c->n_cache_rules, 4, "four cache rules");
	TAP_IS_INT(c->proxy_rules[5].use_re, 1, "last proxy rule is a regex");
	TAP_IS_INT(c->proxy_rules[3].allow, 0, "allow = false read");
	TAP_IS_INT(hfm_rules_allow(c->proxy, "gpt2"), 1, "proxy: gpt2 allowed");
	TAP_IS_INT(hfm_rules_allow(c->proxy, "cais/mmlu"), 1, "proxy: cais/mmlu allowed");
	TAP_IS_INT(hfm_rules_allow(c->proxy, "adept/fuyu-8b"), 0, "proxy: adept/fuyu-8b denied");
	TAP_IS_INT(hfm_rules_allow(c->proxy, "mistralai/Mixtral-8x7B"), 1,
		   "proxy: mistralai/* allowed");
	TAP_IS_INT(hfm_rules_allow(c->proxy, "mistralai/Mistral-7B-v0.1"), 0,
		   "proxy: regex denial wins");
	TAP_IS_INT(hfm_rules_allow(c->cache, "adept/fuyu-8b"), 0, "cache: adept/fuyu-8b denied");
	TAP_IS_INT(hfm_rules_allow(c->cache, "mistralai/Mistral-7B-v0.1"), 1,
		   "cache: mistral cached");
cleanup:
	hfm_config_free(c);
	hfm_buf_dispose(&msg);
}

static void test_every_key_example(const char *path)
{
	struct hfm_buf msg = HFM_BUF_INIT(1 << 16);
	struct hfm_config *c = NULL, *d = NULL;
	int rc = hfm_config_load(&c, path, &msg);

	TAP_IS_INT(rc, 0, "examples/hfmirror.toml (every key) loads");
	if (rc < 0) {
		printf("# %s", hfm_buf_cstr(&msg));
		goto cleanup;
	}
	TAP_IS_STR(c->warnings, NULL, "no warnings");
	/* It documents the defaults: it must agree with them. */
	hfm_config_load(&d, NULL, NULL);
	TAP_IS_INT(c->port, d->port, "port as default");
	TAP_IS_INT(c->cache_block_size, d->cache_block_size, "cache-block-size as default");
	TAP_IS_INT(c->threads, d->threads, "threads as default");
	TAP_IS_INT(c->hash_threads, d->hash_threads, "hash-threads as default");
	TAP_IS_INT(c->body_io, d->body_io, "body-io as default");
	TAP_IS_STR(c->access_log, d->access_log, "access-log as default");
	TAP_IS_STR(c->hash_index, d->hash_index, "hash-index as default");
	TAP_IS_INT(c->metadata_ttl, d->metadata_ttl, "metadata-ttl as default");
	TAP_IS_INT(c->wait_timeout, d->wait_timeout, "wait-timeout as default");
	TAP_IS_INT(c->idle_timeout, d->idle_timeout, "idle-timeout as default");
	TAP_IS_INT(c->head_timeout, d->head_timeout, "head-timeout as default");
	TAP_IS_INT(c->max_connections, d->max_connections, "max-connections as default");
	TAP_IS_INT(c->model_bin_rescan, d->model_bin_rescan, "model-bin-rescan as default");
	TAP_IS_INT(c->model_bin_prefetch, d->model_bin_prefetch, "model-bin-prefetch as default");
	TAP_IS_INT(c->allow_gated_offline, d->allow_gated_offline, "allow-gated-offline");
	TAP_IS_INT(c->model_bin, d->model_bin, "model-bin enable as default");
	TAP_IS_INT(c->n_model_bin_paths, 0, "no model-bin paths");
	TAP_IS_STR(c->mirror_url, d->mirror_url, "mirror url as default");
cleanup:
	hfm_config_free(c);
	hfm_config_free(d);
	hfm_buf_dispose(&msg);
}

static void test_defaults(void)
{
	struct hfm_buf msg = HFM_BUF_INIT(1 << 16);
	struct hfm_config *c = NULL;

	TAP_IS_INT(hfm_config_load(&c, NULL, &msg), 0, "defaults without a file");
	TAP_IS_STR(c->path, NULL, "no path");
	TAP_IS_STR(c->host, "localhost", "default host");
	TAP_IS_INT(c->port, 8090, "default port");
	TAP_IS_STR(c->repos_path, "./repos", "default repos-path");
	TAP_IS_INT(c->cache_size_limit, 0, "default: no size limit");
	TAP_IS_INT(c->cache_clean_strategy, HFM_CLEAN_LRU, "default strategy LRU");
	TAP_IS_INT(c->cache_block_size, 16 << 20, "default block size 16 MiB");
	TAP_IS_STR(c->hf_scheme, "https", "default hf-scheme");
	TAP_IS_STR(c->hf_netloc, "huggingface.co", "default hf-netloc");
	TAP_IS_STR(c->hf_lfs_netloc, "cdn-lfs.huggingface.co", "default hf-lfs-netloc");
	TAP_IS_STR(c->mirror_scheme, NULL, "mirror-scheme unset");
	TAP_IS_STR(c->mirror_url, "http://localhost:8090", "derived mirror url");
	TAP_IS_INT(c->n_mirrors_path, 0, "no mirrors");
	TAP_IS_INT(c->offline, 0, "online");
	TAP_IS_INT(c->n_proxy_rules, 2, "Olah's two default proxy rules");
	TAP_IS_STR(c->proxy_rules[1].repo, "*/*", "second default rule");
	TAP_IS_INT(hfm_rules_allow(c->proxy, "gpt2"), 1, "defaults proxy everything");
	TAP_IS_INT(hfm_rules_allow(c->cache, "org/repo"), 1, "defaults cache everything");
	TAP_IS_INT(c->threads, 0, "threads: one per CPU");
	TAP_IS_INT(c->hash_threads, 2, "hash threads");
	TAP_IS_INT(c->body_io, HFM_CFG_IO_PREAD, "body-io pread");
	TAP_IS_STR(c->access_log, "-", "access log to standard output");
	TAP_IS_INT(c->model_bin_rescan, 5, "model-bin rescan");
	TAP_IS_INT(c->model_bin_prefetch, 1, "model-bin prefetch");
	TAP_IS_INT(c->metadata_ttl, 60, "metadata ttl");
	TAP_IS_INT(c->wait_timeout, 600, "wait timeout");
	TAP_IS_INT(c->idle_timeout, 120, "idle timeout");
	TAP_IS_INT(c->head_timeout, 10, "head timeout");
	TAP_IS_INT(c->max_connections, 16384, "max connections");
	TAP_IS_INT(c->allow_gated_offline, 0, "gated repos need a token offline");
	TAP_IS_INT(c->range_fill_max_size, 64ull << 30, "range-fill-max-size 64 GiB");
	TAP_IS_INT(c->verify_ranges_strict, 0, "verify-ranges live");
	TAP_IS_INT(c->upstream_hold_down, 30, "upstream-hold-down 30 s");
	TAP_IS_STR(c->warnings, NULL, "no warnings");
	hfm_config_free(c);

	c = loads("", NULL, "empty file");
	if (c) {
		TAP_IS_STR(c->path, "t.toml", "empty file: path");
		TAP_IS_INT(c->n_proxy_rules, 2, "empty file: default rules");
	}
	hfm_config_free(c);

	/* Olah: [accessibility] without a list keeps that list's defaults. */
	c = loads("[accessibility]\noffline = true\n", NULL, "accessibility without rules");
	if (c) {
		TAP_IS_INT(c->offline, 1, "offline read");
		TAP_IS_INT(c->n_proxy_rules, 2, "proxy defaults kept");
		TAP_IS_INT(c->n_cache_rules, 2, "cache defaults kept");
	}
	hfm_config_free(c);

	/* A given list replaces the defaults; the other list keeps them. */
	c = loads("[[accessibility.proxy]]\nrepo = \"team/*\"\nallow = true\n", NULL,
		  "only a proxy list");
	if (c) {
		TAP_IS_INT(c->n_proxy_rules, 1, "proxy list replaced");
		TAP_IS_INT(hfm_rules_allow(c->proxy, "team/x"), 1, "listed repo proxied");
		TAP_IS_INT(hfm_rules_allow(c->proxy, "gpt2"), 0, "others are not (whitelist)");
		TAP_IS_INT(hfm_rules_allow(c->cache, "gpt2"), 1, "cache defaults still allow");
	}
	hfm_config_free(c);

	/* Ours: rules about users and groups, and [auth]. */
	c = loads("[auth]\ntokens = \"t.jsonl\"\nanonymous = false\naudit-log = \"a.log\"\n"
		  "audit-log-max-size = \"10M\"\nfail-limit = 5\nfail-window = \"2m\"\n"
		  "[[accessibility.proxy]]\nrepo = \"*\"\nallow = true\n"
		  "[[accessibility.proxy]]\nrepo = \"lab/*\"\nallow = false\n"
		  "[[accessibility.proxy]]\nrepo = \"lab/*\"\nallow = true\ngroups = [\"lab\"]\n"
		  "users = [\"root\"]\n", NULL, "[auth] and rules by group");
	if (c) {
		struct hfm_ident lab = { .name = "ann", .groups = (char *[]){ "lab" }, .ngroups = 1 };
		struct hfm_ident root = { .name = "root" }, other = { .name = "eve" };
		TAP_IS_STR(c->tokens, "t.jsonl", "auth.tokens");
		TAP_IS_INT(c->anonymous, 0, "auth.anonymous");
		TAP_IS_STR(c->audit_log, "a.log", "auth.audit-log");
		TAP_IS_INT(c->audit_log_max_size, 10u << 20, "auth.audit-log-max-size");
		TAP_IS_INT(c->auth_fail_limit, 5, "auth.fail-limit");
		TAP_IS_INT(c->auth_fail_window, 120, "auth.fail-window");
		TAP_IS_INT(hfm_rules_allow_for(c->proxy, "lab/x", &lab), 1, "a group member sees lab/x");
		TAP_IS_INT(hfm_rules_allow_for(c->proxy, "lab/x", &root), 1, "a listed user sees it");
		TAP_IS_INT(hfm_rules_allow_for(c->proxy, "lab/x", &other), 0, "another user does not");
		TAP_IS_INT(hfm_rules_allow(c->proxy, "lab/x"), 0, "nor does anonymous");
		TAP_IS_INT(hfm_rules_allow(c->proxy, "acme/x"), 1, "the rest is open");
	}
	hfm_config_free(c);

	c = loads("[accessibility]\nproxy = []\n", NULL, "empty proxy list");
	if (c) {
		TAP_IS_INT(c->n_proxy_rules, 0, "no rules");
		TAP_IS_INT(hfm_rules_allow(c->proxy, "org/repo"), 0, "an empty list denies");
	}
	hfm_config_free(c);

	/* Inline rule arrays (as Olah's own tests write them); allow and use_re
	 * default to false. */
	c = loads("[accessibility]\nproxy = [ { repo = \"*\", allow = true },\n"
		  "  { repo = \"org/\" } ]\ncache = [ { repo = \"^team/.+$\", allow = true, "
		  "use_re = true } ]\n", NULL, "inline rule arrays");
	if (c) {
		TAP_IS_INT(c->proxy_rules[1].allow, 0, "allow defaults to false");
		TAP_IS_INT(c->proxy_rules[1].use_re, 0, "use_re defaults to false");
		TAP_IS_INT(hfm_rules_allow(c->cache, "team/a"), 1, "inline regex rule");
		TAP_IS_INT(hfm_rules_allow(c->cache, "x/team/a"), 0, "regex anchored");
	}
	hfm_config_free(c);
	hfm_buf_dispose(&msg);
}

static void test_values(void)
{
	struct hfm_config *c;

	c = loads("[basic]\nhost = \"0.0.0.0\"\nport = 9000\ncache-size-limit = \"2GB\"\n"
		  "cache-clean-strategy = \"FIFO\"\nmirrors-path = [\"/m/a\", \"/m/b\"]\n"
		  "hf-scheme = \"http\"\nhf-netloc = \"hf.internal\"\n"
		  "cache-block-size = 1048576\n", NULL, "assorted values");
	if (c) {
		TAP_IS_STR(c->mirror_url, "http://localhost:9000", "0.0.0.0 is named localhost");
		TAP_IS_INT(c->cache_size_limit, 2ull << 30, "2GB is binary");
		TAP_IS_INT(c->cache_clean_strategy, HFM_CLEAN_FIFO, "FIFO");
		TAP_IS_INT(c->n_mirrors_path, 2, "two mirrors");
		TAP_IS_STR(c->mirrors_path[1], "/m/b", "mirrors in order");
		TAP_IS_INT(c->cache_block_size, 1 << 20, "integer block size");
	}
	hfm_config_free(c);

	c = loads("[basic]\nhost = [\"::1\"]\ncache-size-limit = 1000\n"
		  "ssl-key = \"k.pem\"\nssl-cert = \"c.pem\"\n", NULL, "list host, ssl");
	if (c) {
		TAP_IS_STR(c->host, "::1", "a one-host list is accepted");
		TAP_IS_STR(c->mirror_url, "https://[::1]:8090", "ssl makes https; IPv6 bracketed");
		TAP_IS_INT(c->cache_size_limit, 1000, "integer size is bytes");
	}
	hfm_config_free(c);

	c = loads("[basic]\nmirror-netloc = \"hf.example.com\"\n", NULL, "mirror-netloc");
	if (c) {
		TAP_IS_STR(c->mirror_url, "http://hf.example.com", "netloc used as is");
		TAP_IS_STR(c->mirror_lfs_url, "http://hf.example.com",
			   "the LFS site follows mirror-netloc");
	}
	hfm_config_free(c);

	c = loads("[model-bin]\nenable = true\npath = \"/srv/models\"\n"
		  "[hfmirror]\nbody-io = \"sendfile\"\nwait-timeout = \"15m\"\n"
		  "idle-timeout = 30\nhead-timeout = \"1m\"\nmetadata-ttl = 0\n"
		  "access-log = \"/var/log/hfm.log\"\n"
		  "threads = 8\nallow-gated-offline = true\n", NULL, "model-bin and ours");
	if (c) {
		TAP_IS_INT(c->model_bin, 1, "model-bin enabled");
		TAP_IS_INT(c->n_model_bin_paths, 1, "one path from a string");
		TAP_IS_STR(c->model_bin_paths[0], "/srv/models", "model-bin path");
		TAP_IS_INT(c->body_io, HFM_CFG_IO_SENDFILE, "body-io sendfile");
		TAP_IS_INT(c->wait_timeout, 900, "15m");
		TAP_IS_INT(c->idle_timeout, 30, "integer seconds");
		TAP_IS_INT(c->head_timeout, 60, "head-timeout 1m");
		TAP_IS_INT(c->metadata_ttl, 0, "ttl 0 allowed");
		TAP_IS_STR(c->access_log, "/var/log/hfm.log", "access log file");
		TAP_IS_INT(c->threads, 8, "threads");
		TAP_IS_INT(c->allow_gated_offline, 1, "allow-gated-offline");
	}
	hfm_config_free(c);

	c = loads("[hfmirror]\nupstream-hold-down = \"2m\"\n", NULL, "upstream-hold-down");
	if (c)
		TAP_IS_INT(c->upstream_hold_down, 120, "upstream-hold-down 2m");
	hfm_config_free(c);
	refused("[hfmirror]\nupstream-hold-down = 0\n",
		"t.toml:2: hfmirror.upstream-hold-down: must be between 1 and 86400\n",
		"upstream-hold-down 0");

	c = loads("[hfmirror]\nrange-fill-max-size = \"8G\"\nverify-ranges = \"strict\"\n", NULL,
		  "range keys");
	if (c) {
		TAP_IS_INT(c->range_fill_max_size, 8ull << 30, "range-fill-max-size 8G");
		TAP_IS_INT(c->verify_ranges_strict, 1, "verify-ranges strict");
	}
	hfm_config_free(c);
	c = loads("[hfmirror]\nrange-fill-max-size = \"\"\n", NULL, "range-fill-max-size no limit");
	if (c)
		TAP_IS_INT(c->range_fill_max_size, 0, "range-fill-max-size \"\" is no limit");
	hfm_config_free(c);
	refused("[hfmirror]\nverify-ranges = \"lazy\"\n",
		"t.toml:2: hfmirror.verify-ranges: \"lazy\" is not one of live, strict\n",
		"verify-ranges lazy");

	c = loads("[model-bin]\npath = [\"/a\", \"/b\"]\n", NULL, "model-bin path list");
	if (c)
		TAP_IS_INT(c->n_model_bin_paths, 2, "two model-bin trees");
	hfm_config_free(c);
}

static void test_overrides(void)
{
	struct hfm_buf msg = HFM_BUF_INIT(4096);
	struct hfm_config *c = loads("[basic]\nport = 9000\n", NULL, "file for overrides");

	if (!c)
		return;
	/* What the CLI does: assign, then finish again. */
	c->port = 1234;
	hfm_config_set_str(&c->host, "mirror.lan");
	hfm_config_push_str(&c->mirrors_path, &c->n_mirrors_path, "/srv/git");
	TAP_IS_INT(hfm_config_finish(c, &msg), 0, "finish after overrides");
	TAP_IS_STR(c->mirror_url, "http://mirror.lan:1234", "derived url follows the flags");
	TAP_IS_STR(c->mirrors_path[0], "/srv/git", "pushed mirror");
	hfm_config_set_str(&c->mirror_scheme, "https");
	TAP_IS_INT(hfm_config_finish(c, &msg), 0, "finish again");
	TAP_IS_STR(c->mirror_url, "https://mirror.lan:1234", "explicit scheme");

	c->port = 70000;
	hfm_config_set_str(&c->ssl_key, "k.pem");
	hfm_config_set_str(&c->hf_scheme, "ftp");
	TAP_IS_INT(hfm_config_finish(c, &msg), HFM_EINVAL, "bad overrides refused");
	TAP_IS_STR(hfm_buf_cstr(&msg),
		   "basic.port: must be between 0 and 65535\n"
		   "basic.hf-scheme: must be \"http\" or \"https\"\n"
		   "basic.ssl-key: ssl-key and ssl-cert go together: set both or neither\n",
		   "finish names every bad field");
	hfm_buf_reset(&msg);
	c->port = 1;
	hfm_config_set_str(&c->ssl_key, "");
	hfm_config_set_str(&c->hf_scheme, "http");
	hfm_config_push_str(&c->mirrors_path, &c->n_mirrors_path, "/x");
	free(c->proxy_rules[0].repo);
	c->proxy_rules[0].repo = hfm_strdup("(");
	c->proxy_rules[0].use_re = 1;
	TAP_IS_INT(hfm_config_finish(c, &msg), HFM_EINVAL, "bad rule from code refused");
	TAP_IS_STR(hfm_buf_cstr(&msg),
		   "accessibility.proxy: rule 0: invalid regular expression \"(\" at offset 1: "
		   "missing closing parenthesis\n", "rule error from finish");
	TAP_IS_STR(c->ssl_key, NULL, "an empty ssl-key is none");
	hfm_config_free(c);
	hfm_buf_dispose(&msg);
}

static void test_errors(void)
{
	struct hfm_buf msg = HFM_BUF_INIT(4096);
	struct hfm_config *c = NULL;

	TAP_IS_INT(hfm_config_load(&c, "missing.toml", &msg), HFM_EIO, "missing file");
	TAP_IS_STR(hfm_buf_cstr(&msg), "missing.toml: cannot read: No such file or directory\n",
		   "missing file message");
	hfm_buf_reset(&msg);
	TAP_IS_INT(hfm_config_load(&c, ".", &msg), HFM_EIO, "a directory");
	TAP_IS_STR(hfm_buf_cstr(&msg), ".: cannot read: Is a directory\n", "directory message");
	hfm_buf_reset(&msg);

	/* TOML syntax errors carry toml++'s words; the place is ours to check. */
	TAP_IS_INT(load_text(&c, &msg, "[basic]\nport = 1\nhost = \n"), HFM_EINVAL, "syntax error");
	TAP_OK(!strncmp(hfm_buf_cstr(&msg), "t.toml:3: ", 10), "syntax error at line 3: %.*s",
	       (int)strcspn(hfm_buf_cstr(&msg), "\n"), hfm_buf_cstr(&msg));
	TAP_IS_INT(load_text(&c, &msg, "[basic]\nport = 1\nport = 2\n"), HFM_EINVAL,
		   "duplicate key");
	TAP_OK(!strncmp(hfm_buf_cstr(&msg), "t.toml:3: ", 10), "duplicate key at line 3: %.*s",
	       (int)strcspn(hfm_buf_cstr(&msg), "\n"), hfm_buf_cstr(&msg));
	TAP_IS_INT(load_text(&c, &msg, "[basic]\nrepos-path = \"\xff\"\n"), HFM_EINVAL,
		   "not UTF-8");
	TAP_OK(!strncmp(hfm_buf_cstr(&msg), "t.toml:2: ", 10), "bad UTF-8 at line 2: %.*s",
	       (int)strcspn(hfm_buf_cstr(&msg), "\n"), hfm_buf_cstr(&msg));

	refused("[basic]\nhots = \"x\"\n", "t.toml:2: basic.hots: unknown key\n", "unknown key");
	refused("[basic]\nport = 1\nrepos_path = \"x\"\n",
		"t.toml:3: basic.repos_path: unknown key (did you mean repos-path?)\n",
		"underscore for hyphen");
	refused("[Basic]\nport = 1\n", "t.toml:1: Basic: unknown section (did you mean basic?)\n",
		"section case");
	refused("\n[basics]\n", "t.toml:2: basics: unknown section\n", "unknown section");
	/* found by tests/fuzz (config): what a message quotes from the file
	 * may hold a newline, which split one problem over two lines */
	refused("[basic]\nport = t\n",
		"t.toml:2: Error while parsing boolean: expected 'true', saw 't\\n' (column 9)\n",
		"a parse error quoting a newline is one line");
	refused("[\"a\\nb\"]\n[basic]\n\"po\\u0001rt\" = 1\n",
		"t.toml:1: a\\nb: unknown section\nt.toml:3: basic.po\\x01rt: unknown key\n",
		"keys with control characters are escaped");
	refused("port = 8090\n",
		"t.toml:1: port: unknown key (keys belong in a section such as [basic])\n",
		"key outside a section");
	refused("basic = 1\n", "t.toml:1: basic: expected a table, got an integer\n",
		"section of the wrong type");
	refused("[basic]\nport = \"8090\"\n",
		"t.toml:2: basic.port: expected an integer, got a string\n", "wrong type");
	refused("[basic]\n\nport = 70000\n", "t.toml:3: basic.port: must be between 0 and 65535\n",
		"port out of range");
	refused("[accessibility]\noffline = \"yes\"\n",
		"t.toml:2: accessibility.offline: expected a boolean, got a string\n",
		"offline not a boolean");
	refused("[basic]\ncache-clean-strategy = \"MRU\"\n",
		"t.toml:2: basic.cache-clean-strategy: \"MRU\" is not one of LRU, FIFO, "
		"LARGE_FIRST\n", "bad strategy");
	refused("[basic]\ncache-size-limit = \"1.5GB\"\n",
		"t.toml:2: basic.cache-size-limit: \"1.5GB\" is not a size: \"1.5\" is not a "
		"whole number\n", "fractional size");
	refused("[basic]\ncache-size-limit = \"500B\"\n",
		"t.toml:2: basic.cache-size-limit: \"500B\" is not a size: write a whole number "
		"of bytes, or one followed by K, M, G, T, KB, MB, GB or TB (binary units, e.g. "
		"\"100G\"); Olah would silently ignore this value\n", "unit B");
	refused("[basic]\ncache-size-limit = 0\n",
		"t.toml:2: basic.cache-size-limit: must be greater than zero\n", "zero size");
	refused("[basic]\ncache-size-limit = 1.5\n",
		"t.toml:2: basic.cache-size-limit: expected a size (a string such as \"100G\", "
		"or an integer), got a float\n", "float size");
	refused("[basic]\ncache-block-size = \"3M\"\n",
		"t.toml:2: basic.cache-block-size: must be a power of two from 64K to 1G\n",
		"block size not a power of two");
	refused("[basic]\ncache-compression = \"zstd\"\n",
		"t.toml:2: basic.cache-compression: \"zstd\" is not one of none, gzip, lzma\n",
		"bad compression");
	refused("[basic]\nhf-scheme = \"ftp\"\n",
		"t.toml:2: basic.hf-scheme: must be \"http\" or \"https\"\n", "bad scheme");
	refused("[basic]\nmirror-netloc = \"http://x\"\n",
		"t.toml:2: basic.mirror-netloc: is a host[:port] without a scheme (the scheme "
		"has its own key)\n", "scheme in netloc");
	refused("[basic]\nhost = \"a,b\"\n",
		"t.toml:2: basic.host: one host only (Olah refuses a comma-separated list too)\n",
		"comma host");
	refused("[basic]\nhost = [\"a\", \"b\"]\n",
		"t.toml:2: basic.host: one host only (Olah refuses a list of several too)\n",
		"host list");
	refused("[basic]\nssl-cert = \"c.pem\"\n",
		"t.toml:2: basic.ssl-cert: ssl-key and ssl-cert go together: set both or "
		"neither\n", "cert without key");
	refused("[basic]\nmirrors-path = \"./m\"\n",
		"t.toml:2: basic.mirrors-path: expected an array, got a string\n",
		"mirrors-path as a string");
	refused("[basic]\nmirrors-path = [\"./m\", 3]\n",
		"t.toml:2: basic.mirrors-path[1]: expected a string, got an integer\n",
		"mirrors-path with a number");
	refused("[basic]\nrepos-path = \"\"\n", "t.toml:2: basic.repos-path: must not be empty\n",
		"empty repos-path");
	refused("[basic]\nrepos-path = \"a\\u0000b\"\n",
		"t.toml:2: basic.repos-path: must not contain a NUL character\n", "NUL in a path");
	refused("[basic]\ncache-size-limit = \"1\\u0000G\"\n",
		"t.toml:2: basic.cache-size-limit: must not contain a NUL character\n",
		"NUL in a size");
	refused("[model-bin]\npath = [\"a\\u0000\"]\n",
		"t.toml:2: model-bin.path[0]: must not contain a NUL character\n",
		"NUL in a path list");
	refused("[basic]\nhost = [3]\n",
		"t.toml:2: basic.host[0]: expected a string, got an integer\n", "host list of a number");

	/* Rules. */
	refused("[accessibility]\n\n[[accessibility.proxy]]\nrepo = \"mistralai/(Mistral\"\n"
		"use_re = true\n",
		"t.toml:4: accessibility.proxy[0].repo: invalid regular expression "
		"\"mistralai/(Mistral\" at offset 18: missing closing parenthesis\n",
		"bad regex");
	refused("[[accessibility.proxy]]\nrepo = \"*\"\n\n[[accessibility.proxy]]\nallow = true\n",
		"t.toml:4: accessibility.proxy[1]: a rule needs a repo pattern\n",
		"rule without repo");
	refused("[[accessibility.cache]]\nrepo = \"*\"\nuse-re = true\n",
		"t.toml:3: accessibility.cache[0].use-re: unknown rule key (did you mean "
		"use_re?)\n", "rule key with a hyphen");
	refused("[accessibility]\nproxy = [\"*\"]\n",
		"t.toml:2: accessibility.proxy[0]: expected a table, got a string\n",
		"rule that is not a table");
	refused("[[accessibility.proxy]]\nrepo = \"*\"\nallow = 1\n",
		"t.toml:3: accessibility.proxy[0].allow: expected a boolean, got an integer\n",
		"allow not a boolean");
	refused("[[accessibility.cache]]\nrepo = \"*\"\ngroups = [\"lab\"]\n",
		"t.toml:3: accessibility.cache[0].groups: only [[accessibility.proxy]] rules are "
		"about users: what is cached is the same for everyone\n", "groups in a cache rule");
	refused("[[accessibility.proxy]]\nrepo = \"*\"\nusers = [\"a b\"]\n",
		"t.toml:3: accessibility.proxy[0].users[0]: \"a b\" is not a user or group name "
		"(letters, digits, '.', '_', '-')\n", "a bad user name in a rule");
	refused("[[accessibility.proxy]]\nrepo = \"*\"\ngroups = []\n",
		"t.toml:3: accessibility.proxy[0].groups: an empty list names nobody: leave the key "
		"out for everyone\n", "an empty groups list");
	refused("[auth]\nanonymous = false\n",
		"auth.anonymous: false needs a tokens file (auth.tokens, --tokens), or nobody gets in\n",
		"anonymous off without tokens");
	refused("[auth]\ntoken = \"x\"\n",
		"t.toml:2: auth.token: unknown key\n", "a misspelt [auth] key");
	refused("[accessibility]\nproxy = { repo = \"*\" }\n",
		"t.toml:2: accessibility.proxy: expected an array, got a table\n",
		"rule list that is a table");

	/* Ours and the fork's. */
	refused("[model-bin]\nenable = true\n",
		"t.toml:1: model-bin: enable = true needs a path\n", "model-bin without path");
	refused("[model-bin]\npath = \"\"\n", "t.toml:2: model-bin.path: a path must not be empty\n",
		"empty model-bin path");
	refused("[hfmirror]\nbody-io = \"mmap\"\n",
		"t.toml:2: hfmirror.body-io: \"mmap\" is not one of pread, sendfile\n",
		"bad body-io");
	refused("[hfmirror]\nwait-timeout = \"5x\"\n",
		"t.toml:2: hfmirror.wait-timeout: \"5x\" is not a duration: write whole seconds, "
		"or a whole number followed by s, m, h or d (\"90s\", \"15m\")\n", "bad duration");
	refused("[hfmirror]\nidle-timeout = \"0s\"\n",
		"t.toml:2: hfmirror.idle-timeout: must be between 1 and 86400 seconds\n",
		"zero timeout");
	refused("[hfmirror]\nhead-timeout = \"2h\"\n",
		"t.toml:2: hfmirror.head-timeout: must be between 1 and 3600 seconds\n",
		"head-timeout over an hour");
	refused("[hfmirror]\nwait-timeout = 86401\n",
		"t.toml:2: hfmirror.wait-timeout: must be between 1 and 86400\n", "timeout too long");
	c = loads("[hfmirror]\naccess-log = \"off\"\nmodel-bin-prefetch = false\n", NULL,
		  "access log off");
	if (c) {
		TAP_IS_STR(c->access_log, NULL, "\"off\" turns the access log off");
		TAP_IS_INT(c->model_bin_prefetch, 0, "no prefetch");
	}
	hfm_config_free(c);
	c = loads("[hfmirror]\naccess-log = \"\"\n", NULL, "access log empty");
	if (c)
		TAP_IS_STR(c->access_log, NULL, "\"\" turns the access log off");
	hfm_config_free(c);
	refused("[hfmirror]\nthreads = -1\n",
		"t.toml:2: hfmirror.threads: must be between 0 and 1024\n", "negative threads");
	refused("[hfmirror]\ntreads = 2\n",
		"t.toml:2: hfmirror.treads: unknown key\n", "unknown key of ours");

	/* All problems at once, in file order. */
	refused("[basic]\nport = -1\nhost = \"\"\n[accessibility]\noffline = 1\nbogus = 2\n",
		"t.toml:2: basic.port: must be between 0 and 65535\n"
		"t.toml:3: basic.host: must not be empty\n"
		"t.toml:5: accessibility.offline: expected a boolean, got an integer\n"
		"t.toml:6: accessibility.bogus: unknown key\n", "several errors in file order");
	hfm_buf_dispose(&msg);
}

static void test_warnings(void)
{
	struct hfm_config *c;

	c = loads("[basic]\ncache-compression = \"gzip\"\nxet-passthrough = true\n"
		  "cache-redirect-model = false\nxet-passthrough-min-size = \"50GB\"\n"
		  "cache-chunk-size = \"1M\"\nhf-url = \"https://huggingface.co\"\n"
		  "[[accessibility.proxy]]\nrepo = \"*\"\nallow = true\ntype = \"model\"\n"
		  "[s3]\nenable = true\n",
		  "t.toml:2: basic.cache-compression: ignored: blobs are stored uncompressed, so "
		  "that they can be sent straight from the file\n"
		  "t.toml:3: basic.xet-passthrough: ignored: Xet transfers are not supported; "
		  "files are served over plain HTTP\n"
		  "t.toml:5: basic.xet-passthrough-min-size: ignored: Xet transfers are not "
		  "supported\n"
		  "t.toml:6: basic.cache-chunk-size: ignored: blobs are verified whole by their "
		  "sha256 or git id, not per chunk\n"
		  "t.toml:7: basic.hf-url: ignored: a key of Olah before 0.2, which Olah ignores "
		  "too; use hf-scheme/hf-netloc and mirror-scheme/mirror-netloc\n"
		  "t.toml:11: accessibility.proxy[0].type: ignored: Olah never applies a rule's "
		  "type: every rule matches models, datasets and spaces alike\n"
		  "t.toml:12: s3: ignored: S3 mode (Olah fork) is not supported\n",
		  "Olah keys we do not act on");
	hfm_config_free(c);
	c = loads("[basic]\ncache-compression = \"none\"\nxet-passthrough = false\n", NULL,
		  "values that match what we do are silent");
	hfm_config_free(c);
}

static void size_ok(const char *s, uint64_t want)
{
	uint64_t got = 12345;
	int rc = hfm_parse_size(&got, s, NULL);

	TAP_OK(rc == 0 && got == want, "size \"%s\" is %llu (got %llu, rc %d)", s,
	       (unsigned long long)want, (unsigned long long)got, rc);
}

static void size_bad(const char *s, const char *want)
{
	struct hfm_buf err = HFM_BUF_INIT(1024);
	uint64_t got = 0;

	TAP_IS_INT(hfm_parse_size(&got, s, &err), HFM_EINVAL, "size \"%s\" refused", s);
	if (want)
		TAP_IS_STR(hfm_buf_cstr(&err), want, "size \"%s\" message", s);
	hfm_buf_dispose(&err);
}

static void test_sizes(void)
{
	unsigned d = 0;
	struct hfm_buf err = HFM_BUF_INIT(1024);

	/* What Olah's convert_to_bytes() gives for each. */
	size_ok("", 0);
	size_ok("   ", 0);
	size_ok("100", 100);
	size_ok("100K", 100ull << 10);
	size_ok("100KB", 100ull << 10);
	size_ok("100M", 100ull << 20);
	size_ok("100G", 100ull << 30);
	size_ok("500GB", 500ull << 30);
	size_ok("2TB", 2ull << 40);
	size_ok("1T", 1ull << 40);
	size_ok("2gb", 2ull << 30);
	size_ok("2g", 2ull << 30);
	size_ok(" 100 G ", 100ull << 30);
	size_ok("100 GB", 100ull << 30);
	size_ok("1_000K", 1000ull << 10);
	size_ok("+5M", 5ull << 20);
	size_ok("007G", 7ull << 30);
	size_ok("16777215T", 16777215ull << 40);
	size_bad("1.5GB", "\"1.5GB\" is not a size: \"1.5\" is not a whole number");
	size_bad("500B", NULL);
	size_bad("abc", NULL);
	size_bad("G", "\"G\" is not a size: \"\" is not a whole number");
	size_bad("0x10", NULL);
	size_bad("1e3G", NULL);
	size_bad("1__0G", NULL);
	size_bad("_10G", NULL);
	size_bad("10_G", NULL);
	size_bad("- 5G", NULL);
	size_bad("100PB", NULL);
	size_bad("-5G", "\"-5G\" is negative");
	size_bad("0", "\"0\" is zero; a size must be greater than zero");
	size_bad("-0", NULL);
	size_bad("16777216T", "\"16777216T\" is too large");
	size_bad("99999999999999999999", "\"99999999999999999999\" is too large");

	TAP_OK(hfm_parse_duration(&d, "90", NULL) == 0 && d == 90, "duration 90");
	TAP_OK(hfm_parse_duration(&d, "90s", NULL) == 0 && d == 90, "duration 90s");
	TAP_OK(hfm_parse_duration(&d, "15m", NULL) == 0 && d == 900, "duration 15m");
	TAP_OK(hfm_parse_duration(&d, "2h", NULL) == 0 && d == 7200, "duration 2h");
	TAP_OK(hfm_parse_duration(&d, "1d", NULL) == 0 && d == 86400, "duration 1d");
	TAP_OK(hfm_parse_duration(&d, "0", NULL) == 0 && d == 0, "duration 0");
	TAP_IS_INT(hfm_parse_duration(&d, "", NULL), HFM_EINVAL, "empty duration");
	TAP_IS_INT(hfm_parse_duration(&d, "s", NULL), HFM_EINVAL, "unit alone");
	TAP_IS_INT(hfm_parse_duration(&d, "1.5h", NULL), HFM_EINVAL, "fractional duration");
	TAP_IS_INT(hfm_parse_duration(&d, "-1", NULL), HFM_EINVAL, "negative duration");
	TAP_IS_INT(hfm_parse_duration(&d, "10 m", NULL), HFM_EINVAL, "blank inside");
	TAP_IS_INT(hfm_parse_duration(&d, "99999999999d", &err), HFM_EINVAL, "huge duration");
	TAP_IS_STR(hfm_buf_cstr(&err), "\"99999999999d\" is too long", "huge duration message");
	hfm_buf_dispose(&err);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/hfm-config-XXXXXX";
	char *olah = NULL, *every = NULL;

	if (argc < 3) {
		fprintf(stderr, "usage: %s examples/configs.toml examples/hfmirror.toml\n", argv[0]);
		return 2;
	}
	olah = realpath(argv[1], NULL);
	every = realpath(argv[2], NULL);
	if (!olah || !every || !mkdtemp(dir) || chdir(dir) < 0) {
		perror("setup");
		return 2;
	}
	test_olah_example(olah);
	test_every_key_example(every);
	test_defaults();
	test_values();
	test_overrides();
	test_errors();
	test_warnings();
	test_sizes();
	unlink("t.toml");
	if (chdir("/") == 0)
		rmdir(dir);
	free(olah);
	free(every);
	return tap_done();
}
