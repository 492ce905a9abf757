/*
 * The `kiln` program's own verbs: the daemon side (master, checkconfig,
 * create-master).  Their entries use the client's entry struct
 * (client/cmd.h) so main.c runs one table; src/kiln/ is the only part that
 * may include every other one (docs/ARCHITECTURE.md, "Layers").
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

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

#endif
