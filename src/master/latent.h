/*
 * Workers the master starts itself (issue 14; config: config-latent.c):
 * latent workers, started by a command (or in a container) when a queued
 * request of one of their builders finds no attached worker, and stopped
 * after idle_timeout without a build; and local workers, the master's own
 * child kiln-worker, restarted with backoff if it dies and stopped with the
 * master.  State lives in memory only (a restart starts from "stopped");
 * /api/v2/workers shows it as latent_state and latent_error.  Loop thread.
 */
#ifndef KILN_MASTER_LATENT_H
#define KILN_MASTER_LATENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct master;
struct latent;
struct config_worker;

enum latent_state {
	LATENT_STOPPED,
	LATENT_STARTING, /* start command launched, not attached yet */
	LATENT_RUNNING,  /* attached (or launched and reconnecting) */
	LATENT_STOPPING, /* stop command, then the start command's group, running */
	LATENT_FAILED,   /* the last start failed (latent_error says why) */
};
const char *latent_state_name(enum latent_state s);

/* Starts the manager once the worker listener is bound (its port is in the
 * commands' environment): local workers are started now.  Returns 0 and
 * m->latent (NULL when master.lua declares no latent or local worker) or a
 * negative error, logged. */
int latent_start(struct master *m);
/* Stops every worker the manager started (stop commands, then SIGTERM and
 * SIGKILL of their process groups, each bounded by the worker's
 * stop_timeout); the manager frees itself once they are gone, so the
 * caller's final uv_run waits for them.  NULL-safe. */
void latent_stop(struct latent *lm);
/* A teardown-less exit (failed commit): SIGTERM to every process group now. */
void latent_kill_now(struct latent *lm);
/* A reconfig made m->cfg a new generation: entries are matched by name
 * (added workers get one; removed ones are stopped and dropped; a changed
 * declaration applies from the next start). */
void latent_reconfig(struct master *m);

/* The distributor found no attached worker with room for builder_idx's
 * queued requests: start one of its latent workers, or wait for one that
 * is starting, or end the requests EXCEPTION when every latent worker of
 * the builder failed to start for them.  NULL-safe. */
void latent_demand(struct latent *lm, size_t builder_idx);
/* Whether the distributor must run with no worker connected. */
bool latent_any(const struct latent *lm);
/* Events of worker cw (borrowed from m->cfg or a retired generation). */
void latent_attached(struct latent *lm, const struct config_worker *cw);
void latent_detached(struct latent *lm, const struct config_worker *cw);
void latent_activity(struct latent *lm, const struct config_worker *cw); /* build start/end */
/* The password a local worker logs in with (made by the master), NULL if
 * cw is not one. */
const char *latent_local_password(const struct latent *lm, const struct config_worker *cw);
/* Adds latent_state / latent_error (null for an ordinary worker) to an
 * /api/v2/workers item that has "name". */
void latent_api_fix(const struct latent *lm, json_t *item);

#endif
