/*
 * notify.h - telling a service manager (systemd) where the daemon stands.
 *
 * The protocol is sd_notify(3): one datagram of "KEY=VALUE" lines to the
 * AF_UNIX socket named by $NOTIFY_SOCKET.  The daemon says READY=1 once its
 * port accepts connections (a Type=notify unit is "started" only then, so
 * units ordered after it find it answering), RELOADING=1 ... READY=1
 * around a SIGHUP reload, STOPPING=1 when it begins to stop, and a STATUS=
 * line that `systemctl status` shows.
 *
 * Without $NOTIFY_SOCKET (not started by systemd, or a unit of another
 * Type=) every call is a no-op that returns 0, and so it is in a build
 * without libsystemd (meson -Dsystemd=disabled).  Only the composition
 * layer (cli.c) calls these, from the main thread.
 */
#ifndef HFM_NOTIFY_H
#define HFM_NOTIFY_H

#include "common.h"

/*
 * Send the state lines `fmt` formats (several separated by '\n').
 * Returns > 0 when sent, 0 when there is no one to tell, < 0 (a negative
 * errno) when sending failed; the daemon carries on either way.
 */
int hfm_notify(const char *fmt, ...) HFM_PRINTF(1, 2);

/* RELOADING=1 with the MONOTONIC_USEC= stamp systemd >= 253 wants with it. */
int hfm_notify_reloading(void);

#endif
