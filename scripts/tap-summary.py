#!/usr/bin/env python3
"""tap-summary.py TESTLOG.json|FILE.tap... - count results of meson test runs.

Each TAP line counts: `ok` passes (`# SKIP` skips), `not ok` fails (`# TODO`
skips).  A test that printed no TAP counts once, by meson's verdict.  A test
that meson failed (crash, timeout, bad plan) without any `not ok` line
counts one failure more, so a dying test can never look green.
A FILE.tap is the TAP output of one program that is not a meson test
(scripts/fuzz): counted the same way, and it fails once more when its plan
(`1..N`) is missing or does not match the lines it printed.
Prints per-log failures, then the closing line `N passed, N failed`.
"""
import json
import os
import re
import sys

TAP = re.compile(r"^(not )?ok\b(.*)$")
PLAN = re.compile(r"^1\.\.(\d+)\s*$", re.M)
PASSING = {"OK", "EXPECTEDFAIL"}


def count(stdout, result):
    passed = failed = skipped = 0
    seen = False
    for line in stdout.splitlines():
        m = TAP.match(line)
        if not m:
            continue
        seen = True
        directive = m.group(2).upper()
        if m.group(1):
            if "# TODO" in directive:
                skipped += 1
            else:
                failed += 1
        elif "# SKIP" in directive:
            skipped += 1
        else:
            passed += 1
    if not seen:
        if result == "SKIP":
            return 0, 0, 1
        return (1, 0, 0) if result in PASSING else (0, 1, 0)
    if result not in PASSING and result != "SKIP" and failed == 0:
        failed += 1
    return passed, failed, skipped


def records(path, text):
    """The (name, stdout, result) records of one log."""
    if path.endswith(".tap"):
        plan = PLAN.search(text)
        results = sum(1 for line in text.splitlines() if TAP.match(line))
        ok = plan is not None and int(plan.group(1)) == results
        return [{"name": os.path.basename(path), "stdout": text,
                 "result": "OK" if ok else "ERROR"}]
    return [json.loads(line) for line in text.splitlines()]


def main(logs):
    total = [0, 0, 0]
    for path in logs:
        try:
            recs = records(path, open(path, encoding="utf-8", errors="replace").read())
        except OSError as e:
            print("tap-summary: %s: %s" % (path, e), file=sys.stderr)
            total[1] += 1
            continue
        if not recs:
            print("tap-summary: %s: no tests ran" % path, file=sys.stderr)
            total[1] += 1
        for rec in recs:
            p, f, s = count(rec.get("stdout") or "", rec.get("result", "ERROR"))
            if f:
                print("tap-summary: %s: %s: %d failed (%s)"
                      % (path, rec["name"], f, rec.get("result")), file=sys.stderr)
            total[0] += p
            total[1] += f
            total[2] += s
    if total[0] + total[1] == 0:
        total[1] += 1  # a run that tested nothing is not a pass
    line = "%d passed, %d failed" % (total[0], total[1])
    if total[2]:
        line += ", %d skipped" % total[2]
    print(line)
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
