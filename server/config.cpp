/*
 * config.cpp - read configs.toml into struct hfm_config with toml++.
 *
 * The one C++ file of the project: toml++ gives a real TOML parser with
 * source positions, which is what lets every complaint name FILE:LINE.
 * Nothing C++ crosses into C: hfm_config_read() catches everything
 * (toml::parse_error, std::bad_alloc, anything else) and returns a code.
 * toml++ is used in its exception mode because Debian's shared library is
 * built that way; the headers and the library must agree.
 *
 * Olah reads configs.toml with dict.get(), so it silently ignores unknown
 * keys and keeps going on odd values.  We refuse unknown keys and bad values
 * instead (a typo in an access rule must not open or close a mirror without
 * a word), and report the Olah keys we accept but do not act on as warnings.
 * docs/config.md lists every key.
 */
#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <climits>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <toml++/toml.h>

extern "C" {
#include "hfm/common.h"
#include "hfm/buf.h"
}
#include "hfm/config.h"
#include "hfm/sync.h"
extern "C" {
#include "hfm/tokens.h"
}

namespace {

struct message {
	uint32_t line;
	std::string text;
};

const char *type_name(toml::node_type t)
{
	switch (t) {
	case toml::node_type::table: return "a table";
	case toml::node_type::array: return "an array";
	case toml::node_type::string: return "a string";
	case toml::node_type::integer: return "an integer";
	case toml::node_type::floating_point: return "a float";
	case toml::node_type::boolean: return "a boolean";
	case toml::node_type::date: return "a date";
	case toml::node_type::time: return "a time";
	case toml::node_type::date_time: return "a date-time";
	case toml::node_type::none: break;
	}
	return "nothing";
}

/* Keys compared the way people mistype them: case, '_' for '-'. */
std::string loose(std::string_view s)
{
	std::string out(s);

	for (char &c : out)
		c = c == '_' ? '-' : (char)tolower((unsigned char)c);
	return out;
}

/*
 * Messages are one line each, but keys, values and toml++'s descriptions
 * quote the file, which may hold any byte: control bytes are escaped.
 */
std::string printable(std::string_view s)
{
	static const char hex[] = "0123456789abcdef";
	std::string out;

	for (unsigned char c : s) {
		if (c == '\n')
			out += "\\n";
		else if (c == '\t')
			out += "\\t";
		else if (c == '\r')
			out += "\\r";
		else if (c < 0x20 || c == 0x7f)
			out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
		else
			out += (char)c;
	}
	return out;
}

struct reader {
	hfm_config *cfg;
	std::string file;
	std::vector<message> errors, warnings;

	void add(std::vector<message> &to, const toml::source_region &where,
		 const std::string &key, const std::string &what)
	{
		std::string text = file + ":";

		if (where.begin.line)
			text += std::to_string(where.begin.line) + ":";
		if (!key.empty())
			text += " " + printable(key) + ":";
		to.push_back({ where.begin.line, text + " " + printable(what) });
	}

	void error(const toml::source_region &where, const std::string &key, const char *fmt, ...)
		HFM_PRINTF(4, 5)
	{
		struct hfm_buf b = HFM_BUF_INIT(4096);
		va_list ap;

		va_start(ap, fmt);
		hfm_buf_vprintf(&b, fmt, ap);
		va_end(ap);
		add(errors, where, key, hfm_buf_cstr(&b));
		hfm_buf_dispose(&b);
	}

	void warning(const toml::source_region &where, const std::string &key, const char *why)
	{
		add(warnings, where, key, std::string("ignored: ") + why);
	}

	void unknown(const toml::key &k, const std::string &key, const char *what,
		     std::initializer_list<const char *> known)
	{
		for (const char *name : known) {
			if (loose(k.str()) == loose(name)) {
				error(k.source(), key, "unknown %s (did you mean %s?)", what, name);
				return;
			}
		}
		error(k.source(), key, "unknown %s", what);
	}

	bool want(const toml::node &v, toml::node_type t, const std::string &key)
	{
		if (v.type() == t)
			return true;
		error(v.source(), key, "expected %s, got %s", type_name(t), type_name(v.type()));
		return false;
	}

	void check(const toml::node &v, const std::string &key, const char *why)
	{
		if (why)
			error(v.source(), key, "%s", why);
	}

	/* A string that C can hold (TOML allows "\u0000"); reported if not. */
	bool c_string(const toml::node &v, const std::string &key)
	{
		if (v.as_string()->get().find('\0') == std::string::npos)
			return true;
		error(v.source(), key, "must not contain a NUL character");
		return false;
	}

	/* A string; with `empty_null`, "" clears the field (Olah's empty_str). */
	bool read_str(const toml::node &v, const std::string &key, char **field,
		      bool empty_null = false)
	{
		if (!want(v, toml::node_type::string, key) || !c_string(v, key))
			return false;
		const std::string &s = v.as_string()->get();
		hfm_config_set_str(field, empty_null && s.empty() ? nullptr : s.c_str());
		return true;
	}

	void read_bool(const toml::node &v, const std::string &key, int *field)
	{
		if (want(v, toml::node_type::boolean, key))
			*field = v.as_boolean()->get() ? 1 : 0;
	}

	bool read_int(const toml::node &v, const std::string &key, long long lo, long long hi,
		      long long *out)
	{
		if (!want(v, toml::node_type::integer, key))
			return false;
		long long n = v.as_integer()->get();
		if (n < lo || n > hi) {
			error(v.source(), key, "must be between %lld and %lld", lo, hi);
			return false;
		}
		*out = n;
		return true;
	}

	void read_count(const toml::node &v, const std::string &key, long long lo, long long hi,
			int *field)
	{
		long long n;

		if (read_int(v, key, lo, hi, &n))
			*field = (int)n;
	}

	void read_ucount(const toml::node &v, const std::string &key, long long lo,
			 long long hi, unsigned *field)
	{
		long long n;

		if (read_int(v, key, lo, hi, &n))
			*field = (unsigned)n;
	}

	/* A size: an integer (bytes) or a string with Olah's units; 0 = "". */
	bool read_size(const toml::node &v, const std::string &key, uint64_t *out)
	{
		struct hfm_buf why = HFM_BUF_INIT(1024);
		bool ok = false;

		if (v.type() == toml::node_type::integer) {
			int64_t n = v.as_integer()->get();
			if (n > 0) {
				*out = (uint64_t)n;
				ok = true;
			} else {
				error(v.source(), key, "must be greater than zero");
			}
		} else if (v.type() == toml::node_type::string) {
			if (!c_string(v, key))
				goto done;
			ok = hfm_parse_size(out, v.as_string()->get().c_str(), &why) == 0;
			if (!ok)
				error(v.source(), key, "%s", hfm_buf_cstr(&why));
		} else {
			error(v.source(), key, "expected a size (a string such as \"100G\", or an "
			      "integer), got %s", type_name(v.type()));
		}
	done:
		hfm_buf_dispose(&why);
		return ok;
	}

	/* A duration: an integer (seconds) or a string such as "15m". */
	void read_duration(const toml::node &v, const std::string &key, unsigned min,
			   unsigned max, unsigned *field)
	{
		struct hfm_buf why = HFM_BUF_INIT(1024);
		unsigned d = 0;
		long long n;

		if (v.type() == toml::node_type::integer) {
			if (!read_int(v, key, min, max, &n))
				goto done;
			d = (unsigned)n;
		} else if (v.type() == toml::node_type::string) {
			if (!c_string(v, key))
				goto done;
			if (hfm_parse_duration(&d, v.as_string()->get().c_str(), &why) < 0) {
				error(v.source(), key, "%s", hfm_buf_cstr(&why));
				goto done;
			}
			if (d < min || d > max) {
				error(v.source(), key, "must be between %u and %u seconds", min, max);
				goto done;
			}
		} else {
			error(v.source(), key, "expected a duration (seconds, or a string such as "
			      "\"15m\"), got %s", type_name(v.type()));
			goto done;
		}
		*field = d;
	done:
		hfm_buf_dispose(&why);
	}

	/* One of `names`; returns its index or -1 (reported). */
	int read_choice(const toml::node &v, const std::string &key,
			std::initializer_list<const char *> names)
	{
		std::string list;
		int i = 0;

		if (!want(v, toml::node_type::string, key))
			return -1;
		const std::string &s = v.as_string()->get();
		for (const char *name : names) {
			if (s == name)
				return i;
			list += (i++ ? ", " : "");
			list += name;
		}
		error(v.source(), key, "\"%s\" is not one of %s", s.c_str(), list.c_str());
		return -1;
	}

	/* An array of non-empty strings (or, with `single`, one string). */
	void read_strv(const toml::node &v, const std::string &key, char ***list, size_t *n,
		       bool single)
	{
		std::vector<std::string> items;

		if (single && v.type() == toml::node_type::string) {
			if (!c_string(v, key))
				return;
			items.push_back(v.as_string()->get());
		} else if (!want(v, toml::node_type::array, key)) {
			return;
		} else {
			const toml::array &a = *v.as_array();
			for (size_t i = 0; i < a.size(); i++) {
				std::string ik = key + "[" + std::to_string(i) + "]";
				if (!want(a[i], toml::node_type::string, ik) || !c_string(a[i], ik))
					return;
				items.push_back(a[i].as_string()->get());
			}
		}
		for (const std::string &s : items) {
			if (s.empty()) {
				error(v.source(), key, "a path must not be empty");
				return;
			}
		}
		for (size_t i = 0; i < *n; i++)
			free((*list)[i]);
		free(*list);
		*list = nullptr;
		*n = 0;
		for (const std::string &s : items)
			hfm_config_push_str(list, n, s.c_str());
	}

	void read_rules(const toml::node &v, const std::string &key, hfm_rule **list, size_t *n,
			hfm_rule_who **who);
	void read_rule(const toml::table &t, const std::string &key, hfm_rule *rule,
		       hfm_rule_who *who);
	void read_names(const toml::node &v, const std::string &key, char ***list, size_t *n);
	void auth(const toml::table &t);

	void basic(const toml::table &t);
	void accessibility(const toml::table &t);
	void model_bin(const toml::table &t);
	void ours(const toml::table &t);
	void top(const toml::table &root);
};

/* users = [...] / groups = [...]: names as the tokens file spells them ("*": any user). */
void reader::read_names(const toml::node &v, const std::string &key, char ***list, size_t *n)
{
	if (!want(v, toml::node_type::array, key))
		return;
	const toml::array &a = *v.as_array();
	if (!a.size()) {
		error(v.source(), key, "an empty list names nobody: leave the key out for everyone");
		return;
	}
	for (size_t i = 0; i < a.size(); i++) {
		std::string ik = key + "[" + std::to_string(i) + "]";
		if (!want(a[i], toml::node_type::string, ik) || !c_string(a[i], ik))
			return;
		const std::string &s = a[i].as_string()->get();
		if (s != "*" && !hfm_user_name_ok(s.c_str())) {
			error(a[i].source(), ik, "\"%s\" is not a user or group name (letters, "
			      "digits, '.', '_', '-')", printable(s).c_str());
			return;
		}
	}
	for (size_t i = 0; i < a.size(); i++)
		hfm_config_push_str(list, n, a[i].as_string()->get().c_str());
}

void reader::read_rule(const toml::table &t, const std::string &key, hfm_rule *rule,
		       hfm_rule_who *who)
{
	struct hfm_buf why = HFM_BUF_INIT(1024);
	const toml::node *repo = nullptr;

	for (auto &&[k, v] : t) {
		std::string_view name = k.str();
		std::string kk = key + "." + std::string(name);

		if (name == "repo") {
			if (read_str(v, kk, &rule->repo))
				repo = &v;
		} else if (name == "allow") {
			read_bool(v, kk, &rule->allow);
		} else if (name == "use_re") {
			read_bool(v, kk, &rule->use_re);
		} else if (name == "type") {
			warning(v.source(), kk, "Olah never applies a rule's type: every rule "
				"matches models, datasets and spaces alike");
		} else if ((name == "users" || name == "groups") && !who) {
			error(k.source(), kk, "only [[accessibility.proxy]] rules are about users: "
			      "what is cached is the same for everyone");
		} else if (name == "users") {
			read_names(v, kk, &who->users, &who->nusers);
		} else if (name == "groups") {
			read_names(v, kk, &who->groups, &who->ngroups);
		} else {
			unknown(k, kk, "rule key", { "repo", "allow", "use_re", "type", "users",
				"groups" });
		}
	}
	if (!repo) {
		if (!t.contains("repo"))
			error(t.source(), key, "a rule needs a repo pattern");
		goto done;
	}
	if (hfm_rules_check(rule, &why) < 0)
		error(repo->source(), key + ".repo", "%s", hfm_buf_cstr(&why));
done:
	hfm_buf_dispose(&why);
}

/* Olah: a list that is present replaces the current one entirely. */
void reader::read_rules(const toml::node &v, const std::string &key, hfm_rule **list, size_t *n,
			hfm_rule_who **who)
{
	if (!want(v, toml::node_type::array, key))
		return;
	const toml::array &a = *v.as_array();
	hfm_rule *rules = (hfm_rule *)hfm_calloc(a.size() ? a.size() : 1, sizeof(*rules));
	hfm_rule_who *whos = who ? (hfm_rule_who *)hfm_calloc(a.size() ? a.size() : 1,
							      sizeof(*whos)) : nullptr;

	for (size_t i = 0; i < a.size(); i++) {
		std::string ik = key + "[" + std::to_string(i) + "]";
		if (want(a[i], toml::node_type::table, ik))
			read_rule(*a[i].as_table(), ik, &rules[i], whos ? &whos[i] : nullptr);
	}
	for (size_t i = 0; i < *n; i++)
		free((*list)[i].repo);
	free(*list);
	if (who) {
		hfm_rule_who_free(*who, *n);
		*who = whos;
	}
	*list = rules;
	*n = a.size();
}

void reader::basic(const toml::table &t)
{
	static const char *const legacy_why =
		"a key of Olah before 0.2, which Olah ignores too; "
		"use hf-scheme/hf-netloc and mirror-scheme/mirror-netloc";
	/* Where the upstream is and how clients reach us: strings with a check. */
	const struct {
		const char *name;
		char **field;
		const char *(*check)(const char *);
	} places[] = {
		{ "hf-scheme", &cfg->hf_scheme, hfm_config_check_scheme },
		{ "hf-netloc", &cfg->hf_netloc, hfm_config_check_netloc },
		{ "hf-lfs-netloc", &cfg->hf_lfs_netloc, hfm_config_check_netloc },
		{ "mirror-scheme", &cfg->mirror_scheme, hfm_config_check_scheme },
		{ "mirror-netloc", &cfg->mirror_netloc, hfm_config_check_netloc },
		{ "mirror-lfs-netloc", &cfg->mirror_lfs_netloc, hfm_config_check_netloc },
	};
	long long n;
	int i;

	for (auto &&[k, v] : t) {
		std::string_view name = k.str();
		std::string key = "basic." + std::string(name);
		bool done = false;

		for (const auto &p : places) {
			if (name == p.name) {
				if (read_str(v, key, p.field))
					check(v, key, p.check(*p.field));
				done = true;
			}
		}
		if (done)
			continue;
		if (name == "host") {
			/* Olah takes a list too, but binds one host only. */
			const toml::array *a = v.as_array();
			if (a && a->size() != 1) {
				error(v.source(), key, "one host only (Olah refuses a list of "
				      "several too)");
				continue;
			}
			if (a ? read_str((*a)[0], key + "[0]", &cfg->host) :
			    read_str(v, key, &cfg->host))
				check(v, key, hfm_config_check_host(cfg->host));
		} else if (name == "port") {
			if (read_int(v, key, 0, 65535, &n))
				cfg->port = (int)n;
		} else if (name == "ssl-key") {
			read_str(v, key, &cfg->ssl_key, true);
		} else if (name == "ssl-cert") {
			read_str(v, key, &cfg->ssl_cert, true);
		} else if (name == "repos-path") {
			if (read_str(v, key, &cfg->repos_path) && !*cfg->repos_path)
				error(v.source(), key, "must not be empty");
		} else if (name == "cache-size-limit") {
			read_size(v, key, &cfg->cache_size_limit);
		} else if (name == "cache-clean-strategy") {
			if ((i = read_choice(v, key, { "LRU", "FIFO", "LARGE_FIRST" })) >= 0)
				cfg->cache_clean_strategy = (enum hfm_clean_strategy)i;
		} else if (name == "cache-compression") {
			i = read_choice(v, key, { "none", "gzip", "lzma" });
			if (i > 0)
				warning(v.source(), key, "blobs are stored uncompressed, so that "
					"they can be sent straight from the file");
		} else if (name == "cache-block-size") {
			uint64_t size = 0;
			if (!read_size(v, key, &size))
				continue;
			const char *why = size ? hfm_config_check_block_size(size) : "needs a size";
			if (why)
				error(v.source(), key, "%s", why);
			else
				cfg->cache_block_size = size;
		} else if (name == "cache-chunk-size") {
			warning(v.source(), key, "blobs are verified whole by their sha256 or git "
				"id, not per chunk");
		} else if (name == "cache-redirect-model" || name == "xet-passthrough") {
			int on = 0;
			read_bool(v, key, &on);
			if (on)
				warning(v.source(), key, "Xet transfers are not supported; files "
					"are served over plain HTTP");
		} else if (name == "xet-passthrough-min-size") {
			warning(v.source(), key, "Xet transfers are not supported");
		} else if (name == "mirrors-path") {
			read_strv(v, key, &cfg->mirrors_path, &cfg->n_mirrors_path, false);
		} else if (name == "hf-url" || name == "hf-lfs-url" || name == "mirror-url" ||
			   name == "mirror-lfs-url") {
			warning(v.source(), key, legacy_why);
		} else {
			unknown(k, key, "key", { "host", "port", "ssl-key", "ssl-cert", "repos-path",
				"cache-size-limit", "cache-clean-strategy", "cache-compression",
				"cache-block-size", "cache-chunk-size", "cache-redirect-model",
				"xet-passthrough", "xet-passthrough-min-size", "hf-scheme",
				"hf-netloc", "hf-lfs-netloc", "mirror-scheme", "mirror-netloc",
				"mirror-lfs-netloc", "mirrors-path" });
		}
	}
	/* Olah would start and then fail the TLS handshake; say it now. */
	if (!cfg->ssl_key != !cfg->ssl_cert) {
		const char *given = cfg->ssl_key ? "ssl-key" : "ssl-cert";
		const toml::node *at = t.get(given);

		error(at ? at->source() : t.source(), std::string("basic.") + given,
		      "ssl-key and ssl-cert go together: set both or neither");
	}
}

void reader::accessibility(const toml::table &t)
{
	for (auto &&[k, v] : t) {
		std::string_view name = k.str();
		std::string key = "accessibility." + std::string(name);

		if (name == "offline")
			read_bool(v, key, &cfg->offline);
		else if (name == "proxy")
			read_rules(v, key, &cfg->proxy_rules, &cfg->n_proxy_rules, &cfg->proxy_who);
		else if (name == "cache")
			read_rules(v, key, &cfg->cache_rules, &cfg->n_cache_rules, nullptr);
		else
			unknown(k, key, "key", { "offline", "proxy", "cache" });
	}
}

void reader::auth(const toml::table &t)
{
	for (auto &&[k, v] : t) {
		std::string_view name = k.str();
		std::string key = "auth." + std::string(name);

		if (name == "tokens") {
			read_str(v, key, &cfg->tokens, true);
		} else if (name == "anonymous") {
			read_bool(v, key, &cfg->anonymous);
		} else if (name == "audit-log") {
			read_str(v, key, &cfg->audit_log, true);
		} else if (name == "audit-log-max-size") {
			read_size(v, key, &cfg->audit_log_max_size);
		} else if (name == "fail-limit") {
			read_ucount(v, key, 1, 1000000, &cfg->auth_fail_limit);
		} else if (name == "fail-window") {
			read_duration(v, key, 1, 86400, &cfg->auth_fail_window);
		} else if (name == "upstream-tokens") {
			read_bool(v, key, &cfg->upstream_tokens);
		} else {
			unknown(k, key, "key", { "tokens", "anonymous", "audit-log",
				"audit-log-max-size", "fail-limit", "fail-window",
				"upstream-tokens" });
		}
	}
}

void reader::model_bin(const toml::table &t)
{
	for (auto &&[k, v] : t) {
		std::string_view name = k.str();
		std::string key = "model-bin." + std::string(name);

		if (name == "enable")
			read_bool(v, key, &cfg->model_bin);
		else if (name == "path")
			read_strv(v, key, &cfg->model_bin_paths, &cfg->n_model_bin_paths, true);
		else
			unknown(k, key, "key", { "enable", "path" });
	}
	if (cfg->model_bin && !cfg->n_model_bin_paths)
		error(t.source(), "model-bin", "enable = true needs a path");
}

void reader::ours(const toml::table &t)
{
	int i;

	for (auto &&[k, v] : t) {
		std::string_view name = k.str();
		std::string key = "hfmirror." + std::string(name);

		if (name == "threads") {
			read_count(v, key, 0, 1024, &cfg->threads);
		} else if (name == "hash-threads") {
			read_count(v, key, 1, 64, &cfg->hash_threads);
		} else if (name == "body-io") {
			if ((i = read_choice(v, key, { "pread", "sendfile" })) >= 0)
				cfg->body_io = (enum hfm_cfg_body_io)i;
		} else if (name == "access-log") {
			/* "off" as on the command line; "" as Olah writes "none". */
			if (read_str(v, key, &cfg->access_log, true) && cfg->access_log &&
			    !strcmp(cfg->access_log, "off"))
				hfm_config_set_str(&cfg->access_log, nullptr);
		} else if (name == "hash-index") {
			read_str(v, key, &cfg->hash_index, true);
		} else if (name == "metadata-ttl") {
			read_duration(v, key, 0, UINT_MAX, &cfg->metadata_ttl);
		} else if (name == "wait-timeout") {
			read_duration(v, key, 1, 86400, &cfg->wait_timeout);
		} else if (name == "idle-timeout") {
			read_duration(v, key, 1, 86400, &cfg->idle_timeout);
		} else if (name == "head-timeout") {
			read_duration(v, key, 1, 3600, &cfg->head_timeout);
		} else if (name == "max-connections") {
			read_ucount(v, key, 1, 1000000, &cfg->max_connections);
		} else if (name == "model-bin-rescan") {
			read_duration(v, key, 1, 86400, &cfg->model_bin_rescan);
		} else if (name == "model-bin-prefetch") {
			read_bool(v, key, &cfg->model_bin_prefetch);
		} else if (name == "allow-gated-offline") {
			read_bool(v, key, &cfg->allow_gated_offline);
		} else if (name == "access-check-ttl") {
			read_duration(v, key, 1, 86400, &cfg->access_check_ttl);
		} else if (name == "upstream-timeout") {
			read_duration(v, key, 1, 86400, &cfg->upstream_timeout);
		} else if (name == "evict-interval") {
			read_duration(v, key, 1, 86400, &cfg->evict_interval);
		} else if (name == "range-fill-max-size") {
			read_size(v, key, &cfg->range_fill_max_size);
		} else if (name == "verify-ranges") {
			if ((i = read_choice(v, key, { "live", "strict" })) >= 0)
				cfg->verify_ranges_strict = i;
		} else if (name == "upstream-hold-down") {
			read_duration(v, key, 1, 86400, &cfg->upstream_hold_down);
		} else if (name == "read-only-store") {
			read_bool(v, key, &cfg->read_only_store);
		} else if (name == "drain-timeout") {
			read_duration(v, key, 0, 86400, &cfg->drain_timeout);
		} else {
			unknown(k, key, "key", { "threads", "hash-threads", "body-io", "access-log",
				"hash-index", "metadata-ttl", "wait-timeout", "idle-timeout",
				"head-timeout", "max-connections", "model-bin-rescan", "model-bin-prefetch",
				"allow-gated-offline", "access-check-ttl", "upstream-timeout",
				"evict-interval", "range-fill-max-size", "verify-ranges",
				"upstream-hold-down", "read-only-store", "drain-timeout" });
		}
	}
}

void reader::top(const toml::table &root)
{
	for (auto &&[k, v] : root) {
		std::string_view name = k.str();
		std::string key(name);
		bool known = name == "basic" || name == "accessibility" || name == "model-bin" ||
			     name == "hfmirror" || name == "s3" || name == "auth";

		if (!known) {
			if (v.is_table())
				unknown(k, key, "section", { "basic", "accessibility", "model-bin",
					"hfmirror", "auth", "s3" });
			else
				error(k.source(), key, "unknown key (keys belong in a section such "
				      "as [basic])");
			continue;
		}
		if (!want(v, toml::node_type::table, key))
			continue;
		const toml::table &t = *v.as_table();
		if (name == "basic")
			basic(t);
		else if (name == "accessibility")
			accessibility(t);
		else if (name == "model-bin")
			model_bin(t);
		else if (name == "hfmirror")
			ours(t);
		else if (name == "auth")
			auth(t);
		else
			warning(k.source(), key, "S3 mode (Olah fork) is not supported");
	}
}

/* The whole file, bounded; errno is set when it returns false. */
bool slurp(std::string &out, const char *path)
{
	char chunk[65536];
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	while ((got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || out.size() + (size_t)got > HFM_CONFIG_MAX_FILE_SIZE) {
			if (got >= 0)
				errno = EFBIG;
			int saved = errno;
			close(fd);
			errno = saved;
			return false;
		}
		out.append(chunk, (size_t)got);
	}
	close(fd);
	return true;
}

void emit(struct hfm_buf *to, std::vector<message> &msgs)
{
	std::stable_sort(msgs.begin(), msgs.end(),
			 [](const message &a, const message &b) { return a.line < b.line; });
	for (const message &m : msgs) {
		hfm_buf_puts(to, m.text.c_str());
		hfm_buf_putc(to, '\n');
	}
}

/*
 * Read and parse `path` and hand its root table to `walk`; a syntax error
 * becomes one of r's errors.  HFM_EIO (reported in err) if unreadable.
 */
template <class Walk>
int parse_file(reader &r, const char *path, struct hfm_buf *err, Walk walk)
{
	std::string doc;

	if (!slurp(doc, path)) {
		if (err)
			hfm_buf_printf(err, "%s: cannot read: %s\n", path, strerror(errno));
		return HFM_EIO;
	}
	try {
		toml::table root = toml::parse(doc, std::string_view(path));
		walk(root);
	} catch (const toml::parse_error &e) {
		const toml::source_position &at = e.source().begin;
		std::string desc = printable(e.description());

		r.errors.push_back({ at.line, r.file + ":" + std::to_string(at.line) + ": " +
				     desc + " (column " + std::to_string(at.column) + ")" });
	}
	return 0;
}

int read_file(struct hfm_config *cfg, const char *path, struct hfm_buf *err)
{
	reader r{ cfg, path, {}, {} };
	int rc = parse_file(r, path, err, [&](const toml::table &root) { r.top(root); });

	if (rc)
		return rc;
	hfm_config_set_str(&cfg->path, path);
	if (!r.warnings.empty()) {
		struct hfm_buf w = HFM_BUF_INIT(1 << 20);

		hfm_buf_puts(&w, cfg->warnings ? cfg->warnings : "");
		emit(&w, r.warnings);
		free(cfg->warnings);
		cfg->warnings = hfm_buf_detach(&w);
	}
	if (r.errors.empty())
		return 0;
	if (err)
		emit(err, r.errors);
	return HFM_EINVAL;
}

/* ---- the sync manifest (sync.h, docs/sync.md) ------------------------------- */

/*
 * A list of strings: an array of them, or one string.  Each must be
 * non-empty and pass `check` (a static reason, or NULL when fine).  Replaces
 * *list; false (reported) on a problem.
 */
bool read_strings(reader &r, const toml::node &v, const std::string &key, char ***list,
		  size_t *n, const char *what, const char *(*check)(const std::string &))
{
	std::vector<std::pair<std::string, const toml::node *>> items;

	if (v.type() == toml::node_type::string) {
		items.push_back({ v.as_string()->get(), &v });
	} else if (v.type() == toml::node_type::array) {
		const toml::array &a = *v.as_array();
		for (size_t i = 0; i < a.size(); i++) {
			std::string ik = key + "[" + std::to_string(i) + "]";
			if (!r.want(a[i], toml::node_type::string, ik))
				return false;
			items.push_back({ a[i].as_string()->get(), &a[i] });
		}
	} else {
		r.error(v.source(), key, "expected an array of strings, got %s", type_name(v.type()));
		return false;
	}
	for (size_t i = 0; i < items.size(); i++) {
		const std::string &str = items[i].first;
		std::string ik = v.is_array() ? key + "[" + std::to_string(i) + "]" : key;
		const char *why = str.find('\0') != std::string::npos ? "must not contain a NUL character" :
				  str.empty() ? "must not be empty" : check ? check(str) : nullptr;
		if (why) {
			r.error(items[i].second->source(), ik, "%s \"%s\" %s", what,
				printable(str).c_str(), why);
			return false;
		}
	}
	for (size_t i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = nullptr;
	*n = 0;
	for (const auto &it : items)
		hfm_config_push_str(list, n, it.first.c_str());
	return true;
}

const char *check_revision(const std::string &s)
{
	return hfm_rev_valid(s.c_str()) ? nullptr : "is not a revision (a branch, tag, "
		"refs/pr/N or commit id)";
}

const char *check_pattern(const std::string &s)
{
	struct hfm_rule rule = { const_cast<char *>(s.c_str()), 1, 0 };

	return hfm_rules_check(&rule, nullptr) ? "is not valid UTF-8" : nullptr;
}

/* "org/name" or "name", each segment as the Hub allows; false if not. */
bool parse_repo_id(struct hfm_repo_id *id, const std::string &s)
{
	size_t slash = s.find('/');

	if (slash == std::string::npos)
		return hfm_repo_id_set(id, id->type, nullptr, s.c_str()) == 0;
	if (s.find('/', slash + 1) != std::string::npos)
		return false;
	return hfm_repo_id_set(id, id->type, s.substr(0, slash).c_str(),
			       s.substr(slash + 1).c_str()) == 0;
}

void read_want(reader &r, const toml::table &t, const std::string &key, hfm_sync_want *w)
{
	const toml::node *id = nullptr;

	w->line = t.source().begin.line;
	for (auto &&[k, v] : t) {
		std::string_view name = k.str();
		std::string kk = key + "." + std::string(name);

		if (name == "id") {
			if (r.want(v, toml::node_type::string, kk) && r.c_string(v, kk))
				id = &v;
		} else if (name == "type") {
			int i = r.read_choice(v, kk, { "model", "dataset", "space" });
			if (i >= 0)
				w->id.type = (enum hfm_repo_type)i;
		} else if (name == "revisions") {
			read_strings(r, v, kk, &w->revisions, &w->n_revisions, "revision",
				     check_revision);
			if (v.is_array() && v.as_array()->empty())
				r.error(v.source(), kk, "needs at least one revision (or leave it "
					"out for \"main\")");
		} else if (name == "include") {
			read_strings(r, v, kk, &w->include, &w->n_include, "pattern", check_pattern);
		} else if (name == "exclude") {
			read_strings(r, v, kk, &w->exclude, &w->n_exclude, "pattern", check_pattern);
		} else if (name == "git") {
			r.read_bool(v, kk, &w->git);
		} else if (name == "revision") {
			r.error(k.source(), kk, "unknown key (did you mean revisions? it takes a list)");
		} else {
			r.unknown(k, kk, "key", { "id", "type", "revisions", "include", "exclude", "git" });
		}
	}
	if (!id) {
		if (!t.contains("id"))
			r.error(t.source(), key, "a repo needs an id (\"org/name\" or \"name\")");
		return;
	}
	const std::string &s = id->as_string()->get();
	for (const char *prefix : { "models/", "datasets/", "spaces/" }) {
		if (!s.compare(0, strlen(prefix), prefix) && s.find('/', strlen(prefix)) != std::string::npos) {
			r.error(id->source(), key + ".id", "\"%s\" is not a repo id: give the type "
				"as type = \"%.*s\"", printable(s).c_str(),
				(int)strlen(prefix) - 2, prefix);
			return;
		}
	}
	if (!parse_repo_id(&w->id, s))
		r.error(id->source(), key + ".id", "\"%s\" is not a repo id (\"org/name\" or "
			"\"name\": letters, digits, '-', '_' and '.')", printable(s).c_str());
	if (!w->n_revisions && !t.contains("revisions"))
		hfm_config_push_str(&w->revisions, &w->n_revisions, "main");
}

void read_manifest(reader &r, const toml::table &root, hfm_sync_manifest *m)
{
	const toml::node *repos = nullptr;

	for (auto &&[k, v] : root) {
		if (k.str() == "repo")
			repos = &v;
		else if (loose(k.str()) == "repos")
			r.error(k.source(), std::string(k.str()), "unknown key (did you mean repo? "
				"each repo is one [[repo]] table)");
		else
			r.unknown(k, std::string(k.str()), "key (a manifest holds [[repo]] tables)",
				  { "repo" });
	}
	if (!repos) {
		if (r.errors.empty())
			r.error(root.source(), "repo", "no [[repo]] table: nothing to sync");
		return;
	}
	if (!repos->is_array_of_tables()) {
		r.error(repos->source(), "repo", "expected [[repo]] tables, got %s",
			type_name(repos->type()));
		return;
	}
	const toml::array &a = *repos->as_array();
	m->repos = (hfm_sync_want *)hfm_calloc(a.size() + 1, sizeof(*m->repos));
	m->n = a.size();
	for (size_t i = 0; i < a.size(); i++) {
		std::string key = "repo[" + std::to_string(i) + "]";
		hfm_sync_want *w = &m->repos[i];

		read_want(r, *a[i].as_table(), key, w);
		for (size_t j = 0; j < i && w->id.name[0]; j++) {
			if (m->repos[j].id.type == w->id.type && !strcmp(m->repos[j].id.name, w->id.name)) {
				r.error(a[i].source(), key + ".id", "%s is listed twice (first at line "
					"%u): list its revisions in one [[repo]]", w->id.name,
					m->repos[j].line);
				break;
			}
		}
	}
}

} /* namespace */

/* Run `body`; no C++ exception crosses into C (reported in err, HFM_ERROR). */
template <class Body>
static int guarded(const char *path, struct hfm_buf *err, Body body)
{
	try {
		return body();
	} catch (const std::bad_alloc &) {
		if (err)
			hfm_buf_printf(err, "%s: out of memory\n", path);
	} catch (const std::exception &e) {
		if (err)
			hfm_buf_printf(err, "%s: %s\n", path, e.what());
	} catch (...) {
		if (err)
			hfm_buf_printf(err, "%s: unexpected error while reading\n", path);
	}
	return HFM_ERROR;
}

int hfm_config_read(struct hfm_config *cfg, const char *path, struct hfm_buf *err)
{
	return guarded(path, err, [&] { return read_file(cfg, path, err); });
}

int hfm_sync_manifest_read(struct hfm_sync_manifest **out, const char *path, struct hfm_buf *err)
{
	struct hfm_sync_manifest *m = (struct hfm_sync_manifest *)hfm_calloc(1, sizeof(*m));
	int rc;

	*out = nullptr;
	rc = guarded(path, err, [&] {
		reader r{ nullptr, path, {}, {} };
		int e = parse_file(r, path, err, [&](const toml::table &root) {
			read_manifest(r, root, m);
		});
		if (!e && !r.errors.empty()) {
			if (err)
				emit(err, r.errors);
			e = HFM_EINVAL;
		}
		return e;
	});
	if (rc) {
		hfm_sync_manifest_free(m);
		return rc;
	}
	m->path = hfm_strdup(path);
	*out = m;
	return 0;
}
