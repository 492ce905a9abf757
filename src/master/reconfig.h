/*
 * Live reconfiguration (slice "reconfig"; docs/OPERATING.md
 * "Reconfiguration"): SIGHUP and `kiln reconfig BASEDIR` load master.lua
 * again and apply the difference.  Loading and checking come first and
 * touch nothing; a bad config is rejected with its "master.lua:LINE:
 * message" and the old one stays.  Then, in one loop turn, the engine
 * (builders, workers), the schedulers, the change sources and the
 * reporters take the new generation (each by name: what did not change
 * keeps its runtime state; running builds keep the generation they
 * started with).
 *
 * The verdict goes to BASEDIR/reconfig.result, written atomically
 * (rename): one JSON object {"pid": P, "seq": N, "ok": true|false,
 * "message": "..."} where seq counts this master process's reconfigs.
 * `kiln reconfig` waits for a seq past the one it saw (inotify).
 */
#ifndef KILN_MASTER_RECONFIG_H
#define KILN_MASTER_RECONFIG_H

#include <stdint.h>

struct master;

#define RECONFIG_RESULT_FILE "reconfig.result"

/* Reloads and applies; writes the verdict file and logs it (a refusal
 * changes nothing).  On PostgreSQL the apply waits for the new builders'
 * and workers' rows (engine_reconfig_prepare), asked on the loop; a call
 * meanwhile runs once more after it, and the master's stop drops it. */
void reconfig_run(struct master *m);

#endif
