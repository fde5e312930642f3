# lib_ui.sh - the sources the web UI and listing tests serve (sourced after
# lib.sh and lib_fixtures.sh).
#
# make_ui_sources: one server's worth of every source, with names a page
# must escape (file names with <script>, quotes, &), started as
#   $MB    model-bin: the fixture tree (acme/tiny, acme/many, datasets/acme/ds,
#          spaces/acme/space, canon), acme/odd.Name-1_x (hostile file names,
#          a README with raw HTML and a javascript: link), acme/secret (the
#          rules hide it)
#   $MIR   git mirrors: models/acme/gitrepo (branches main and dev, tag v1,
#          a file name with quotes, & and <b>)
#   $UP    the upstream hub (a model-bin server, up_URL, reached through the
#          relay, RELAY): up/cached-only, which becomes cache-only once
#          warm_cache_only has asked for it; up/priv, private (token
#          hf_good), and up/gated, gated (the relay's rules)
#   $T/ui.toml  a serve config over all three (store $T/store), rules that
#          allow everything but acme/secret
# and starts `up`.  The UI server itself is the test's to start:
#   start_server ui serve -c "$T/ui.toml" --index "$T/idx"
git_identity

# Names no page may show raw.  Each is one path component ('/' cannot be in one).
HOSTILE_FILE='<img src=x onerror=alert(1)> "q" & '"'"'s'"'"'.txt'
HOSTILE_DIR='<script>alert(1)<'
HOSTILE_IN_DIR='script>&amp;.json'
GIT_HOSTILE='it'"'"'s "git" & <b>.txt'

make_ui_sources() {
	MB=$T/modelbin
	make_fixture_tree "$MB" "$T/outside"
	o="$MB/acme/odd.Name-1_x"
	printf 'hostile\n' | mk "$o/$HOSTILE_FILE"
	printf '{"x": 1}\n' | mk "$o/$HOSTILE_DIR/$HOSTILE_IN_DIR"
	cat <<'EOF' | mk "$o/README.md"
---
license: apache-2.0
tags:
- ui-test
pipeline_tag: text-generation
---
# Odd <script>window.__pwned = 1</script>

<img src=x onerror="window.__pwned = 2">

[click](javascript:window.__pwned=3) and **bold** & `code <b>`.
EOF
	printf 'secret\n' | mk "$MB/acme/secret/a.txt"

	MIR=$T/mirrors
	src=$T/gitsrc
	mkdir -p "$src"
	(
		cd "$src" && git init -q -b main . &&
			printf '# gitrepo\nA git mirror.\n' >README.md &&
			printf 'git file\n' >"$GIT_HOSTILE" &&
			mkdir -p sub && printf 'x\n' >sub/inner.txt &&
			git add -A && git commit -q -m first &&
			git tag v1 &&
			git checkout -q -b dev && printf 'dev\n' >dev.txt && git add dev.txt &&
			git commit -q -m dev && git checkout -q main
	) || not_ok "make the git repo"
	git clone -q --bare "$src" "$MIR/models/acme/gitrepo.git" || not_ok "clone the git mirror"

	UP=$T/up
	cat <<'EOF' | mk "$UP/up/cached-only/README.md"
---
license: mit
tags:
- from-upstream
---
# cached-only
Only the upstream has this; the cache keeps its metadata.
EOF
	printf '{"model_type": "up"}\n' | mk "$UP/up/cached-only/config.json"
	printf 'never asked for\n' | mk "$UP/up/never/a.txt"
	printf 'private\n' | mk "$UP/up/priv/a.txt"
	printf 'gated\n' | mk "$UP/up/gated/a.txt"
	start_server up model-bin --path "$UP" --index "$T/up.idx" || return 1
	start_relay "${up_URL##*:}"
	printf 'private up/priv hf_good\ngated up/gated hf_good\n' >"$T/relay/gated"

	serve_toml "$T/store" "$MIR" "$RELAY" "$MB" +'*' -acme/secret >"$T/ui.toml"
}

# warm_cache_only URL: ask the server at URL for up/cached-only's info and a
# file, and for up/priv's and up/gated's info with the token, so that its
# cache holds the three repos' metadata (and a file).
warm_cache_only() {
	[ "$(get "$1/api/models/up/cached-only/revision/main" "$T/warm.json")" = 200 ] &&
		[ "$(get "$1/up/cached-only/resolve/main/config.json" "$T/warm.cfg")" = 200 ] &&
		[ "$(get "$1/api/models/up/priv/revision/main" "$T/warm.p" -H 'Authorization: Bearer hf_good')" = 200 ] &&
		[ "$(get "$1/api/models/up/gated/revision/main" "$T/warm.g" -H 'Authorization: Bearer hf_good')" = 200 ]
}
