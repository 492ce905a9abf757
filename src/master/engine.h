/*
 * The build engine: connected workers, the request queue, the distributor
 * and running builds.  Everything here runs on the loop thread.
 */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;
struct config_builder;
struct master;
struct ws_conn_ops;

/* Creates the engine (after cfg and db are set on m): registers builders and
 * workers in the database, recovers what a previous run left unfinished. */
int engine_new(struct master *m, struct engine **ret);
/* Interrupts running builds (marked cancelled/interrupted), detaches workers. */
void engine_stop(struct engine *e);
void engine_free(struct engine *e);

/* The callbacks the HTTP server uses for the worker listener. */
const struct ws_conn_ops *engine_worker_ops(struct engine *e);

/* Stops a running build (interrupts its command on the worker); a build that
 * is not running is left alone and 0 is returned, as Buildbot does. */
int engine_stop_build(struct engine *e, int64_t buildid, const char *reason);
/* Cancels the queued requests among ids[0..n) (each complete, results
 * CANCELLED; one not queued is left alone), answered on the loop: then
 * done(arg, r), if set, r < 0 if some could not be.  Returns < 0 (and done
 * is not called) if it cannot be asked. */
typedef void (*engine_done_fn)(void *arg, int r);
int engine_cancel_requests(struct engine *e, const int64_t *ids, size_t n, const char *reason,
			   engine_done_fn done, void *arg);

/* Looks at the queue on the next loop turn (once however often it is
 * called in a turn): idle workers get the requests they can take. */
void engine_kick(struct engine *e);
/* The database id of configured builder 'name', 0 if it is not configured. */
int64_t engine_builder_id(struct engine *e, const char *name);
/* The configured builder with that database id (borrowed from the
 * configuration: valid until the next reload), NULL if none. */
const struct config_builder *engine_builder_cfg(struct engine *e, int64_t builderid);
/* A scheduler added buildset bsid with requests on builderids: runs the
 * distributor on the next loop turn and, when the buildset builds changes
 * (from_changes), applies the builders' cancel_superseded: older queued
 * requests of the same branch line are cancelled (and, with "running",
 * running builds of it stopped). */
void engine_buildset_added(struct engine *e, int64_t bsid, const int64_t *builderids, size_t n,
			   bool from_changes);

/* slice "reconfig": makes ncfg (loaded, checked) the configuration.  First
 * the database: builders and workers new to it are registered as at
 * start-up; a failure there returns negative with *ret_err (owned) and
 * nothing changed (m->cfg, the engine's tables).  Then, without failing:
 * the engine's tables are rebuilt by name, connected workers stay
 * connected (re-pointed to their new declaration; a removed one takes no
 * new build and is disconnected once its builds end), removed builders
 * lose this master in the database (their queued requests stay), and
 * m->cfg becomes ncfg, whose reference the engine takes over; the old
 * generation loses the master's reference (running builds hold their own).
 * The caller checks beforehand that the lock declarations are unchanged. */
struct config;
int engine_reconfig(struct engine *e, struct config *ncfg, char **ret_err);
/* slice "reconfig": engine_reconfig's registrations asked on the loop first
 * (PostgreSQL, where a synchronous call cannot run while the master
 * serves): done(arg, 0, NULL) once the ids of ncfg's builders and workers
 * are in, so that engine_reconfig(e, ncfg) called next (from done, with the
 * same ncfg) makes no synchronous call; done(arg, r, err) with err (owned)
 * naming the builder or worker that failed; done(arg, -ECANCELED, NULL)
 * when the engine stops first.  One at a time: -EBUSY while one is on. */
typedef void (*engine_prep_fn)(void *arg, int r, char *err);
int engine_reconfig_prepare(struct engine *e, struct config *ncfg, engine_prep_fn done, void *arg);

/* slice "reconfig": the reporters now run on cfg's declarations: it stays
 * alive (referenced) until they are restarted again or the engine is freed
 * (after reporters_stop). */
void engine_pin_reporters(struct engine *e, struct config *cfg);

/* slice "reconfig": whether builderid is a builder a reconfig removed (and
 * none added again since). */
bool engine_builder_removed(struct engine *e, int64_t builderid);

/* slice "operator": builds running now; workers attached now */
size_t engine_running_builds(const struct engine *e);
size_t engine_connected_workers(const struct engine *e);

#endif
