/*
 * kiln-worker's side of child processes.  Commands run through common/proc.h
 * (process groups, pipes, signal escalation, drain); here: orphans
 * re-parented to the worker (it is a child subreaper) are reaped by
 * runner_reaper_start(), and interruptSignal names are parsed.
 */
#ifndef KILN_WORKER_RUNNER_H
#define KILN_WORKER_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/* Reaps zombies of orphaned grandchildren on SIGCHLD; call once per process
 * (after prctl(PR_SET_CHILD_SUBREAPER)).  runner_reaper_stop() closes it. */
int runner_reaper_start(uv_loop_t *loop);
void runner_reaper_stop(void);
/* One reaping pass (also done on every SIGCHLD); returns how many were reaped. */
int runner_reap_orphans(void);

/* Parses "KILL", "TERM", "SIGINT", "9"...; -1 if unknown. */
int runner_signal_from_name(const char *name);

#endif
