#!/usr/bin/env python3
"""mdwe.py PROGRAM ARGS... - run PROGRAM with no writable+executable memory.

What MemoryDenyWriteExecute=yes in hfmirror.service does, without systemd:
prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) (Linux 6.3+) makes the kernel
refuse every mapping that is, or becomes, both writable and executable, for
this process and what it executes.  systemd 252 does the same with a seccomp
filter; either way PCRE2 cannot map its JIT code, and hfmirror must answer
with the interpreter.  Before exec, the script checks that a W+X mapping is
really refused, and says so on stderr: "mdwe: on".  Exit status 77 when the
kernel has no PR_SET_MDWE (the caller skips).
"""
import ctypes
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
PROT_RWX = 7
MAP_PRIVATE_ANON = 0x22


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("mdwe: prctl(PR_SET_MDWE): %s" % os.strerror(ctypes.get_errno()), file=sys.stderr)
        sys.exit(77)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    p = libc.mmap(None, 4096, PROT_RWX, MAP_PRIVATE_ANON, -1, 0)
    if p is not None and p != ctypes.c_void_p(-1).value:
        print("mdwe: a W+X mapping was allowed", file=sys.stderr)
        sys.exit(1)
    print("mdwe: on", file=sys.stderr)
    sys.stderr.flush()
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
