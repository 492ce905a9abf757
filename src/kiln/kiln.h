/*
 * The `kiln` program's own verbs: the daemon side (master, checkconfig,
 * create-master).  Their entries use the client's entry struct
 * (client/cmd.h) so main.c runs one table; src/kiln/ is the only part that
 * may include every other one (docs/ARCHITECTURE.md, "Layers").
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stdbool.h>

struct cmd;

extern const struct cmd cmd_master;        /* cmd-master.c */
extern const struct cmd cmd_create_master; /* cmd-checkconfig.c */
extern const struct cmd cmd_checkconfig;   /* cmd-checkconfig.c */
extern const struct cmd cmd_start;         /* cmd-daemon.c */
extern const struct cmd cmd_stop;          /* cmd-daemon.c */
extern const struct cmd cmd_restart;       /* cmd-daemon.c */
extern const struct cmd cmd_reconfig;      /* cmd-daemon.c (slice "reconfig") */
extern const struct cmd cmd_purge; /* `kiln cleanupdb`: cmd-cleanupdb.c (slice "retention") */

/* Runs the master on basedir until it stops (cmd-master.c); *ready_fd, when
 * not -1, is the readiness pipe of `kiln start` (common/daemon.h).  Returns
 * the exit status. */
int master_serve(const char *basedir, int *ready_fd);

/* `kiln upgrade-master` (cmd-upgrade.c, slice "package") */
extern const struct cmd cmd_upgrd;
/* `kiln copy-db` (cmd-copydb.c, issue 14) */
extern const struct cmd cmd_copydb;

/* Takes BASEDIR/pid's lock as the master does (kiln/cmd-master.c), for a
 * tool that must not run beside a master (basedir-lock.c).  Returns the fd
 * to keep; -1 (the message printed, naming `kiln VERB`) when a master holds
 * it or the file cannot be opened; -2 when there is no pid file and create
 * is false (no master ever ran: nothing to lock).  With create, the file
 * is made if missing and *ret_created (if not NULL) says whether it was. */
int kiln_lock_basedir(const char *verb, const char *basedir, bool create, bool *ret_created);
/* The same without messages: the locked fd, or -errno: -EWOULDBLOCK when
 * it is held (holder gets the pid text the file holds, maybe ""), -ENOENT
 * without the file when !create. */
int kiln_flock_basedir(const char *basedir, bool create, bool *ret_created, char holder[32]);

#endif
