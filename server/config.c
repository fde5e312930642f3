/*
 * config.c - the C half of the configuration: defaults, value parsers and
 * checks, derived values, freeing.  Reading TOML is config.cpp's job; it
 * calls the parsers and checks here so that a value means the same in the
 * file and on the command line.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/config.h"

static void free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void free_rule_list(struct hfm_rule *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(r[i].repo);
	free(r);
}

void hfm_rule_who_free(struct hfm_rule_who *w, size_t n)
{
	for (size_t i = 0; w && i < n; i++) {
		free_strv(w[i].users, w[i].nusers);
		free_strv(w[i].groups, w[i].ngroups);
	}
	free(w);
}

static void set_default_rules(struct hfm_rule **list, size_t *n)
{
	size_t i;

	*list = hfm_calloc(HFM_RULES_DEFAULT_COUNT, sizeof(**list));
	for (i = 0; i < HFM_RULES_DEFAULT_COUNT; i++) {
		(*list)[i] = hfm_rules_default[i];
		(*list)[i].repo = hfm_strdup(hfm_rules_default[i].repo);
	}
	*n = HFM_RULES_DEFAULT_COUNT;
}

int hfm_config_new(struct hfm_config **out)
{
	struct hfm_config *c = hfm_calloc(1, sizeof(*c));

	c->host = hfm_strdup("localhost");
	c->port = HFM_CONFIG_DEFAULT_PORT;
	c->repos_path = hfm_strdup("./repos");
	c->cache_clean_strategy = HFM_CLEAN_LRU;
	c->cache_block_size = HFM_CONFIG_DEFAULT_BLOCK_SIZE;
	c->hf_scheme = hfm_strdup("https");
	c->hf_netloc = hfm_strdup("huggingface.co");
	c->hf_lfs_netloc = hfm_strdup("cdn-lfs.huggingface.co");
	set_default_rules(&c->proxy_rules, &c->n_proxy_rules);
	set_default_rules(&c->cache_rules, &c->n_cache_rules);
	c->hash_threads = 2;
	c->body_io = HFM_CFG_IO_PREAD;
	c->access_log = hfm_strdup("-");
	c->anonymous = 1;
	c->auth_fail_limit = 20;
	c->auth_fail_window = 60;
	c->metadata_ttl = 60;
	c->wait_timeout = 600;
	c->idle_timeout = 120;
	c->head_timeout = 10;
	c->access_check_ttl = 300;
	c->upstream_timeout = 30;
	c->upstream_hold_down = 30;
	c->evict_interval = 60;
	c->drain_timeout = 30;
	c->range_fill_max_size = HFM_CONFIG_DEFAULT_RANGE_FILL_MAX;
	c->max_connections = 16384;
	c->model_bin_rescan = 5;
	c->model_bin_prefetch = 1;
	*out = c;
	return 0;
}

void hfm_config_free(struct hfm_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->host);
	free(c->ssl_key);
	free(c->ssl_cert);
	free(c->repos_path);
	free(c->hf_scheme);
	free(c->hf_netloc);
	free(c->hf_lfs_netloc);
	free(c->mirror_scheme);
	free(c->mirror_netloc);
	free(c->mirror_lfs_netloc);
	free_strv(c->mirrors_path, c->n_mirrors_path);
	hfm_rule_who_free(c->proxy_who, c->n_proxy_rules);
	free_rule_list(c->proxy_rules, c->n_proxy_rules);
	free_rule_list(c->cache_rules, c->n_cache_rules);
	free_strv(c->model_bin_paths, c->n_model_bin_paths);
	free(c->access_log);
	free(c->tokens);
	free(c->audit_log);
	free(c->hash_index);
	free(c->mirror_url);
	free(c->mirror_lfs_url);
	hfm_rules_free(c->proxy);
	hfm_rules_free(c->cache);
	free(c->warnings);
	free(c);
}

void hfm_config_set_str(char **field, const char *value)
{
	char *old = *field;

	/* Copy first: `value` may point into the old string. */
	*field = value ? hfm_strdup(value) : NULL;
	free(old);
}

void hfm_config_push_str(char ***list, size_t *n, const char *value)
{
	*list = hfm_realloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = hfm_strdup(value);
}

const char *hfm_config_check_port(long long port)
{
	return port < 0 || port > 65535 ? "must be between 0 and 65535" : NULL;
}

const char *hfm_config_check_host(const char *host)
{
	if (!host || !*host)
		return "must not be empty";
	/* Olah refuses several hosts too (server.py); one daemon binds one. */
	if (strchr(host, ','))
		return "one host only (Olah refuses a comma-separated list too)";
	if (strpbrk(host, " \t/"))
		return "must be a host name or address";
	return NULL;
}

const char *hfm_config_check_scheme(const char *scheme)
{
	if (scheme && (!strcmp(scheme, "http") || !strcmp(scheme, "https")))
		return NULL;
	return "must be \"http\" or \"https\"";
}

const char *hfm_config_check_netloc(const char *netloc)
{
	if (!netloc || !*netloc)
		return "must not be empty";
	if (strstr(netloc, "://"))
		return "is a host[:port] without a scheme (the scheme has its own key)";
	if (strpbrk(netloc, " \t"))
		return "must not contain blanks";
	return NULL;
}

const char *hfm_config_check_block_size(uint64_t size)
{
	if (size < HFM_CONFIG_MIN_BLOCK_SIZE || size > HFM_CONFIG_MAX_BLOCK_SIZE ||
	    (size & (size - 1)))
		return "must be a power of two from 64K to 1G";
	return NULL;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * A whole number as Python's int() reads a string: blanks around it, an
 * optional sign, decimal digits with single underscores between them.
 * 0 with *neg and *v, or -1 (not a number) or -2 (too large).
 */
static int parse_pyint(uint64_t *v, int *neg, const char *s, size_t n)
{
	size_t i = 0;
	uint64_t acc = 0;
	int digits = 0;

	while (n && is_blank(s[n - 1]))
		n--;
	while (i < n && is_blank(s[i]))
		i++;
	*neg = 0;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		*neg = s[i++] == '-';
	for (; i < n; i++) {
		if (s[i] == '_' && digits && i + 1 < n && isdigit((unsigned char)s[i + 1]))
			continue;
		if (!isdigit((unsigned char)s[i]))
			return -1;
		if (acc > (UINT64_MAX - 9) / 10)
			return -2;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
		digits++;
	}
	if (!digits)
		return -1;
	*v = acc;
	return 0;
}

int hfm_parse_size(uint64_t *out, const char *s, struct hfm_buf *err)
{
	static const char units[] = "KMGT";
	const char *unit = NULL;
	size_t b = 0, e = strlen(s), unit_len = 0;
	uint64_t v, mult = 1;
	int neg, rc;

	while (b < e && is_blank(s[b]))
		b++;
	while (e > b && is_blank(s[e - 1]))
		e--;
	if (b == e) {
		*out = 0;
		return 0;
	}
	/* Olah upper-cases first, so "100gb" is 100 GiB too. */
	if ((unit = strchr(units, toupper((unsigned char)s[e - 1]))) != NULL) {
		unit_len = 1;
	} else if (toupper((unsigned char)s[e - 1]) == 'B' && e - b >= 2 &&
		   (unit = strchr(units, toupper((unsigned char)s[e - 2]))) != NULL) {
		unit_len = 2;
	}
	if (unit)
		mult = (uint64_t)1 << (10 * (unit - units + 1));
	rc = parse_pyint(&v, &neg, s + b, e - b - unit_len);
	if (rc == -1) {
		if (err && unit)
			hfm_buf_printf(err, "\"%s\" is not a size: \"%.*s\" is not a whole number",
				       s, (int)(e - b - unit_len), s + b);
		else if (err)
			hfm_buf_printf(err, "\"%s\" is not a size: write a whole number of bytes, "
				       "or one followed by K, M, G, T, KB, MB, GB or TB (binary "
				       "units, e.g. \"100G\"); Olah would silently ignore this value",
				       s);
		return HFM_EINVAL;
	}
	if (rc == -2 || (!neg && v > UINT64_MAX / mult)) {
		if (err)
			hfm_buf_printf(err, "\"%s\" is too large", s);
		return HFM_EINVAL;
	}
	if (neg && v) {
		if (err)
			hfm_buf_printf(err, "\"%s\" is negative", s);
		return HFM_EINVAL;
	}
	if (!v) {
		if (err)
			hfm_buf_printf(err, "\"%s\" is zero; a size must be greater than zero", s);
		return HFM_EINVAL;
	}
	*out = v * mult;
	return 0;
}

int hfm_parse_duration(unsigned *out, const char *s, struct hfm_buf *err)
{
	size_t n = strlen(s), i;
	uint64_t v = 0, mult = 1;

	if (n && strchr("smhd", s[n - 1])) {
		mult = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60 : s[n - 1] == 'h' ? 3600 : 86400;
		n--;
	}
	for (i = 0; i < n && isdigit((unsigned char)s[i]); i++)
		if (v <= UINT_MAX)
			v = v * 10 + (uint64_t)(s[i] - '0');
	if (!n || i < n) {
		if (err)
			hfm_buf_printf(err, "\"%s\" is not a duration: write whole seconds, or a "
				       "whole number followed by s, m, h or d (\"90s\", \"15m\")", s);
		return HFM_EINVAL;
	}
	if (v * mult > UINT_MAX) {
		if (err)
			hfm_buf_printf(err, "\"%s\" is too long", s);
		return HFM_EINVAL;
	}
	*out = (unsigned)(v * mult);
	return 0;
}

/* Olah binds "0.0.0.0" / "::" to every address; a URL needs a name. */
static void append_netloc(struct hfm_buf *b, const char *host, int port)
{
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
		host = "localhost";
	if (strchr(host, ':') && host[0] != '[')
		hfm_buf_printf(b, "[%s]:%d", host, port);
	else
		hfm_buf_printf(b, "%s:%d", host, port);
}

static void check_field(struct hfm_buf *err, int *bad, const char *key, const char *why)
{
	if (!why)
		return;
	if (err)
		hfm_buf_printf(err, "%s: %s\n", key, why);
	*bad = 1;
}

static void empty_to_null(char **field)
{
	if (*field && !**field)
		hfm_config_set_str(field, NULL);
}

int hfm_config_finish(struct hfm_config *c, struct hfm_buf *err)
{
	struct hfm_buf why = HFM_BUF_INIT(1024);
	struct hfm_buf url = HFM_BUF_INIT(4096);
	const char *scheme;
	int bad = 0, error = 0;

	empty_to_null(&c->ssl_key);
	empty_to_null(&c->ssl_cert);
	check_field(err, &bad, "basic.host", hfm_config_check_host(c->host));
	check_field(err, &bad, "basic.port", hfm_config_check_port(c->port));
	check_field(err, &bad, "basic.hf-scheme", hfm_config_check_scheme(c->hf_scheme));
	check_field(err, &bad, "basic.hf-netloc", hfm_config_check_netloc(c->hf_netloc));
	check_field(err, &bad, "basic.hf-lfs-netloc", hfm_config_check_netloc(c->hf_lfs_netloc));
	if (c->mirror_scheme)
		check_field(err, &bad, "basic.mirror-scheme",
			    hfm_config_check_scheme(c->mirror_scheme));
	if (c->mirror_netloc)
		check_field(err, &bad, "basic.mirror-netloc",
			    hfm_config_check_netloc(c->mirror_netloc));
	if (c->mirror_lfs_netloc)
		check_field(err, &bad, "basic.mirror-lfs-netloc",
			    hfm_config_check_netloc(c->mirror_lfs_netloc));
	check_field(err, &bad, "basic.cache-block-size",
		    hfm_config_check_block_size(c->cache_block_size));
	if (!c->ssl_key != !c->ssl_cert)
		check_field(err, &bad, c->ssl_key ? "basic.ssl-key" : "basic.ssl-cert",
			    "ssl-key and ssl-cert go together: set both or neither");
	if (c->model_bin && !c->n_model_bin_paths)
		check_field(err, &bad, "model-bin", "enabled without a path");
	if (!c->anonymous && !c->tokens)
		check_field(err, &bad, "auth.anonymous",
			    "false needs a tokens file (auth.tokens, --tokens), or nobody gets in");
	if (c->upstream_tokens && !c->tokens)
		check_field(err, &bad, "auth.upstream-tokens",
			    "needs a tokens file whose users name their hub account (\"hub\")");
	if (bad) {
		error = HFM_EINVAL;
		goto cleanup;
	}

	/* Olah: https exactly when a key is given.  The LFS site follows the
	 * site (Olah falls back to host:port instead, which is never wanted). */
	scheme = c->mirror_scheme ? c->mirror_scheme : c->ssl_key ? "https" : "http";
	hfm_buf_printf(&url, "%s://", scheme);
	if (c->mirror_netloc)
		hfm_buf_puts(&url, c->mirror_netloc);
	else
		append_netloc(&url, c->host, c->port);
	hfm_config_set_str(&c->mirror_url, hfm_buf_cstr(&url));
	if (c->mirror_lfs_netloc) {
		hfm_buf_reset(&url);
		hfm_buf_printf(&url, "%s://%s", scheme, c->mirror_lfs_netloc);
	}
	hfm_config_set_str(&c->mirror_lfs_url, hfm_buf_cstr(&url));
	if ((error = url.err) < 0)
		goto cleanup;

	hfm_rules_free(c->proxy);
	hfm_rules_free(c->cache);
	c->proxy = c->cache = NULL;
	if ((error = hfm_rules_compile_for(&c->proxy, c->proxy_rules, c->proxy_who,
					   c->n_proxy_rules, &why)) < 0) {
		if (err)
			hfm_buf_printf(err, "accessibility.proxy: %s\n", hfm_buf_cstr(&why));
		goto cleanup;
	}
	if ((error = hfm_rules_compile(&c->cache, c->cache_rules, c->n_cache_rules, &why)) < 0) {
		if (err)
			hfm_buf_printf(err, "accessibility.cache: %s\n", hfm_buf_cstr(&why));
		goto cleanup;
	}

cleanup:
	hfm_buf_dispose(&why);
	hfm_buf_dispose(&url);
	return error;
}

int hfm_config_load(struct hfm_config **out, const char *path, struct hfm_buf *err)
{
	struct hfm_config *c = NULL;
	int error;

	*out = NULL;
	if ((error = hfm_config_new(&c)) < 0)
		goto cleanup;
	if (path && (error = hfm_config_read(c, path, err)) < 0)
		goto cleanup;
	if ((error = hfm_config_finish(c, err)) < 0)
		goto cleanup;
	*out = c;
	c = NULL;

cleanup:
	hfm_config_free(c);
	return error;
}
