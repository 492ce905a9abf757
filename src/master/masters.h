/*
 * Several masters on one PostgreSQL (issue 14, docs/SCALING.md "Several
 * masters"): this master's heartbeat (its masters.last_active, every
 * cfg->master_heartbeat seconds), the masters whose heartbeat is older than
 * cfg->master_dead_after declared dead and recovered (their builds RETRY,
 * their claims back in the queue: db_masters_reap_async, exactly one
 * master does it), and a look at the queue at each beat, for the requests
 * the other masters add.  On SQLite one master owns the file: nothing runs.
 */
#ifndef KILN_MASTERS_H
#define KILN_MASTERS_H

struct master;
struct masters;

/* Starts the heartbeat on m's loop (m->db, m->masterid and m->engine set);
 * *ret is NULL on SQLite.  Returns 0 or a negative errno. */
int masters_start(struct master *m, struct masters **ret);
/* Stops it; the memory goes once the loop has closed its handle and the
 * answer of a reap in flight has come (db_close cancels it).  NULL-safe. */
void masters_stop(struct masters *ms);

#endif
