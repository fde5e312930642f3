#!/bin/bash
# test_install_container.sh - the Containerfile.  With a container engine
# that can build (podman, or docker with a daemon), the image is built, run
# with the store as a volume, and asked /healthz.  Without one (CI: a docker
# client and no daemon), scripts/containerfile-check reads it as a builder
# would and checks what can be checked without running it: instructions,
# stages, the build context, the runtime stage (bookworm-slim, not root, the
# store a VOLUME, EXPOSE, HEALTHCHECK), that every runtime package exists in
# bookworm, that the runtime stage installs every library this build's
# binaries link, and that the build stage's meson options and ninja targets
# are real.  It always runs; the engine part says SKIP when there is none.
. "$(dirname "$0")/lib.sh"

: "${BUILD_ROOT:=$SRCDIR/build}"

"$PYTHON" "$SRCDIR/scripts/containerfile-check" --build-root "$BUILD_ROOT" \
	--binary "$HFMIRROR" --binary "$HFMIRROR_IMPORT" "$SRCDIR" >"$T/check.tap" 2>&1
rc=$?
# Its TAP lines become ours.
while IFS= read -r line; do
	case $line in
	"ok "*"# SKIP"*)
		TAP_N=$((TAP_N + 1))
		echo "ok $TAP_N - containerfile-check: ${line#ok * - }"
		;;
	"ok "*) ok "containerfile-check: ${line#ok * - }" ;;
	"not ok "*) not_ok "containerfile-check: ${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	esac
done <"$T/check.tap"
is "$rc" 0 "scripts/containerfile-check passed"
[ "$TAP_N" -gt 15 ] || { not_ok "containerfile-check ran its checks"; diag "$(cat "$T/check.tap")"; }

ENGINE=
if command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
	ENGINE=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	ENGINE=docker
fi
if [ -z "$ENGINE" ]; then
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - build and run the image # SKIP no container engine here" \
		"(docker client without a daemon, no podman): the dry check above stands in"
else
	IMG="hfmirror-test:$$"
	NAME="hfmirror-test-$$"
	cleanup_engine() {
		$ENGINE rm -f "$NAME" >/dev/null 2>&1
		$ENGINE volume rm -f "$NAME-store" >/dev/null 2>&1
		$ENGINE rmi -f "$IMG" >/dev/null 2>&1
	}
	trap 'cleanup_engine; cleanup' EXIT
	check "$ENGINE build -f Containerfile" timeout 1000 $ENGINE build -t "$IMG" -f "$SRCDIR/Containerfile" "$SRCDIR"
	check "$ENGINE run, the store a volume" $ENGINE run -d --name "$NAME" -p 127.0.0.1::8090 \
		-v "$NAME-store:/var/lib/hfmirror" "$IMG"
	port=$($ENGINE port "$NAME" 8090/tcp | head -n 1 | sed 's/.*://')
	wait_for curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"
	is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" 200 "/healthz from the container"
	is "$($ENGINE exec "$NAME" id -u)" 10001 "the server runs as uid 10001, not root"
	check "the health check passes inside the container" $ENGINE exec "$NAME" \
		curl -fsS -o /dev/null http://127.0.0.1:8090/healthz
fi

done_testing
