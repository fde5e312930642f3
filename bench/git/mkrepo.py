#!/usr/bin/env python3
"""mkrepo.py DIR COMMITS FILES [SEED] - a bare git repo of generated history.

The first commit adds FILES text files (1-4 KiB each) in directories of 100;
each later commit edits a few of them (a changed line, an added line), so
the history deltifies as a real project's does.  Written with one
`git fast-import`, so 5000 commits x 20000 files take seconds.  Same
arguments, same repository (commit dates included).
"""
import random
import subprocess
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, ncommits, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(sys.argv[4] if len(sys.argv) > 4 else "hfmirror")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", path], check=True)
    fi = subprocess.Popen(["git", "-C", path, "fast-import", "--quiet"], stdin=subprocess.PIPE)
    out = fi.stdin
    words = ["alpha", "beta", "gamma", "delta", "layer", "weight", "token", "model",
             "config", "tensor", "shard", "vocab", "merge", "hidden", "attention"]

    def text(n):
        lines = []
        size = 0
        while size < n:
            line = " ".join(rnd.choice(words) for _ in range(8)) + " %d\n" % rnd.randrange(10**9)
            lines.append(line)
            size += len(line)
        return lines

    files = {}
    for i in range(nfiles):
        files["d%03d/f%05d.txt" % (i // 100, i)] = text(rnd.randrange(1024, 4096))
    names = sorted(files)
    when = 1600000000

    def blob(data):
        b = data.encode()
        out.write(b"data %d\n" % len(b))
        out.write(b)
        out.write(b"\n")

    for c in range(ncommits):
        when += 3600
        msg = "commit %d\n" % c
        out.write(b"commit refs/heads/main\n")
        out.write(b"committer Bench <bench@example.com> %d +0000\n" % when)
        blob(msg)
        if c == 0:
            changed = names
        else:
            changed = rnd.sample(names, min(4, len(names)))
            for n in changed:
                lines = files[n]
                lines[rnd.randrange(len(lines))] = text(1)[0]
                lines.append(text(1)[0])
        for n in changed:
            out.write(("M 100644 inline %s\n" % n).encode())
            blob("".join(files[n]))
        out.write(b"\n")
    out.close()
    if fi.wait():
        sys.exit("git fast-import failed")
    subprocess.run(["git", "-C", path, "gc", "-q", "--quiet"],
                   check=False)


if __name__ == "__main__":
    main()
