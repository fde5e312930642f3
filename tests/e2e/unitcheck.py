#!/usr/bin/env python3
"""unitcheck.py - hold hfmirror.service's sandbox against what hfmirror does.

    unitcheck.py exec UNIT
        ExecStart= as one argument per line, then "ENV NAME=VALUE" for each
        Environment= assignment: what systemd would run.
    unitcheck.py trace UNIT TRACE
        TRACE is `strace -f -o TRACE` of the daemon at work.  Checks that
        every system call it made is allowed by the unit's SystemCallFilter=
        lines (expanded with `systemd-analyze syscall-filter`), every socket
        it opened is of a family in RestrictAddressFamilies=, it opened
        nothing in /proc but its own process (ProcSubset=pid), and no device
        but those PrivateDevices= leaves.  One line per finding; exit 1 if any.
    unitcheck.py paths UNIT CONFIG
        Every path the config makes the daemon write (repos-path, the access
        log's directory, the hash index's) lies in a directory the unit
        makes writable (StateDirectory=, CacheDirectory=, LogsDirectory=,
        ReadWritePaths=): under ProtectSystem=strict nothing else is.

The unit is read as systemd reads it: [Service] assignments, later ones
adding to earlier ones, an empty assignment resetting the list.
"""
import re
import shlex
import subprocess
import sys
import tomllib

# What PrivateDevices= leaves in /dev (systemd.exec(5)).
PRIVATE_DEVICES = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                   "/dev/tty", "/dev/ptmx", "/dev/pts", "/dev/shm", "/dev/mqueue",
                   "/dev/hugepages", "/dev/log", "/dev/stdin", "/dev/stdout", "/dev/stderr"}


def service(unit):
    """The [Service] section as {key: [values in order]}."""
    out = {}
    section = None
    with open(unit) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section != "Service" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def syscall_groups():
    text = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                          capture_output=True, text=True).stdout
    groups, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), set())
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.add(line.strip())
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            out |= expand(groups.get(n, ()), groups, seen)
        else:
            out.add(n)
    return out


def allowed_syscalls(svc):
    groups = syscall_groups()
    allowed = None
    for v in svc.get("SystemCallFilter", []):
        if not v:
            allowed = None
            continue
        deny = v.startswith("~")
        names = expand(v.lstrip("~").split(), groups)
        if allowed is None:
            if deny:
                sys.exit("unitcheck: a deny-list filter first: not what the unit should have")
            allowed = names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


# /proc files a library probes and copes without: glibc reads overcommit_memory
# when it shrinks a thread arena's heap (malloc/arena.c); when the file is
# hidden it takes the MADV_DONTNEED path, so the unit works as well with it
# hidden. Seen only when a thread frees enough to trim, so only some runs.
PROC_TOLERATED = {"/proc/sys/vm/overcommit_memory"}

CALL = re.compile(r"^\d+\s+([a-z0-9_]+)\((.*)$")


def check_trace(unit, trace):
    svc = service(unit)
    allowed = allowed_syscalls(svc)
    families = set()
    for v in svc.get("RestrictAddressFamilies", []):
        families = set() if not v else families | set(v.split())
    bad = []
    used = set()
    with open(trace, errors="replace") as f:
        for line in f:
            m = CALL.match(line)
            if not m:
                continue
            name, args = m.group(1), m.group(2)
            used.add(name)
            if name == "socket":
                fam = args.split(",", 1)[0].strip()
                if families and fam not in families:
                    bad.append("socket family %s: not in RestrictAddressFamilies=" % fam)
            if name in ("open", "openat", "openat2"):
                pm = re.search(r'"(/(?:proc|dev)/[^"]*)"', args)
                if pm:
                    p = pm.group(1)
                    if p.startswith("/proc/"):
                        part = p.split("/")[2]
                        if part not in ("self", "thread-self") and not part.isdigit() \
                                and p not in PROC_TOLERATED:
                            bad.append("opened %s: hidden by ProcSubset=pid" % p)
                    elif not any(p == d or p.startswith(d + "/") for d in PRIVATE_DEVICES):
                        bad.append("opened %s: not there under PrivateDevices=" % p)
    if allowed is not None:
        for name in sorted(used - allowed):
            bad.append("system call %s: not allowed by SystemCallFilter=" % name)
    print("unitcheck: %d system calls used: %s" % (len(used), " ".join(sorted(used))))
    for b in sorted(set(bad)):
        print("unitcheck: " + b)
    return 1 if bad else 0


def check_paths(unit, config):
    svc = service(unit)
    writable = []
    for key, base in (("StateDirectory", "/var/lib"), ("CacheDirectory", "/var/cache"),
                      ("LogsDirectory", "/var/log")):
        for v in svc.get(key, []):
            writable += [base + "/" + d for d in v.split()]
    for v in svc.get("ReadWritePaths", []):
        writable += [p.lstrip("-") for p in v.split()]
    with open(config, "rb") as f:
        cfg = tomllib.load(f)
    basic = cfg.get("basic", {})
    ours = cfg.get("hfmirror", {})
    paths = {"repos-path": basic.get("repos-path", "./repos")}
    log = ours.get("access-log", "-")
    if log not in ("-", "off", ""):
        paths["access-log"] = log
    if ours.get("hash-index"):
        paths["hash-index"] = ours["hash-index"]
    bad = 0
    for key, p in paths.items():
        if not any(p == w or p.startswith(w + "/") for w in writable):
            print("unitcheck: %s = %s: not in a directory the unit makes writable (%s)"
                  % (key, p, " ".join(writable)))
            bad = 1
        else:
            print("unitcheck: %s = %s: writable" % (key, p))
    return bad


def print_exec(unit):
    svc = service(unit)
    for a in shlex.split(svc["ExecStart"][-1]):
        print(a)
    for v in svc.get("Environment", []):
        for a in shlex.split(v):
            print("ENV " + a)
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "exec":
        return print_exec(sys.argv[2])
    if len(sys.argv) == 4 and sys.argv[1] == "trace":
        return check_trace(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 4 and sys.argv[1] == "paths":
        return check_paths(sys.argv[2], sys.argv[3])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
