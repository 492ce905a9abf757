/*
 * What several masters on one PostgreSQL share besides the tables (issue
 * 14, docs/SCALING.md "Several masters"): the lease of the services that
 * run once (db_lease_async), the state those services read back when they
 * move to this master (db_state_get_async), and event lines crossing
 * masters by LISTEN/NOTIFY (db_notify, db_listen).
 */
#define LOG_SUBSYS "db"

#include "db/db-pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"

/* The channel every master listens on, and the most one NOTIFY carries
 * (PostgreSQL refuses 8000 bytes and more). */
#define DB_PG_CHANNEL "kiln_events"
#define DB_PG_NOTIFY_CHUNK 7900

/* --- the lease ------------------------------------------------------------------------------ */

struct pg_lease_call {
	db_lease_fn done;
	void *arg;
};

static void pg_lease_answered(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_lease_call *c = arg;
	if (r < 0)
		c->done(c->arg, r, false, err ? err : err_str(r));
	else
		c->done(c->arg, 0, PQntuples(res) > 0, NULL);
	free(c);
}

int db_pg_lease(struct db *db, const char *name, int64_t masterid, double ttl, db_lease_fn done,
		void *arg)
{
	/* the holder and its time in the server's clock; taken over only when
	 * that time is up, so two masters never both hold it (the holder
	 * stops by its own clock first: masters.c) */
	static const char sql[] =
		"INSERT INTO object_state (name, value) VALUES ($1, json_build_object('masterid', "
		"$2::bigint, 'until', extract(epoch FROM clock_timestamp()) + $3::float8)::text) "
		"ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value WHERE "
		"(object_state.value::json->>'masterid')::bigint = $2::bigint OR "
		"(object_state.value::json->>'until')::float8 < extract(epoch FROM "
		"clock_timestamp()) RETURNING 1";
	char key[300], id[24], t[40];
	snprintf(key, sizeof(key), "lease:%s", name);
	snprintf(id, sizeof(id), "%" PRId64, masterid);
	snprintf(t, sizeof(t), "%.3f", ttl);
	const char *values[] = {key, id, t};
	struct pg_query q = {.sql = sql, .nparams = 3, .values = values};
	struct pg_lease_call *c = xmalloc(sizeof(*c));
	*c = (struct pg_lease_call){.done = done, .arg = arg};
	int r = pg_batch_add_returning(db_pg_batch(db), &q, pg_lease_answered, c);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "lease '%s': cannot queue it: %s", name, err_str(r));
	}
	return 0;
}

int db_pg_lease_release(struct db *db, const char *name, int64_t masterid)
{
	char key[300], id[24];
	snprintf(key, sizeof(key), "lease:%s", name);
	snprintf(id, sizeof(id), "%" PRId64, masterid);
	const char *values[] = {key, id};
	struct pg_query q = {.sql = "DELETE FROM object_state WHERE name = $1 AND "
				    "(value::json->>'masterid')::bigint = $2::bigint",
			     .nparams = 2,
			     .values = values};
	int r = pg_batch_add(db_pg_batch(db), &q);
	return r < 0 ? db_failf(db, r, "lease '%s': cannot queue its release: %s", name, err_str(r))
		     : 0;
}

/* --- object state, read on the loop --------------------------------------------------------- */

struct pg_state_call {
	char *name; /* owned */
	db_state_fn done;
	void *arg;
};

static void pg_state_answered(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_state_call *c = arg;
	if (r < 0) {
		c->done(c->arg, r, NULL, err ? err : err_str(r));
	} else if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
		c->done(c->arg, 0, NULL, NULL);
	} else {
		json_t *v = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
		char why[400];
		snprintf(why, sizeof(why), "state '%s': the stored value is not JSON", c->name);
		c->done(c->arg, v ? 1 : KILN_EDB, v, v ? NULL : why);
		json_decref(v);
	}
	free(c->name);
	free(c);
}

int db_pg_state_get_async(struct db *db, const char *name, db_state_fn done, void *arg)
{
	const char *values[] = {name};
	struct pg_query q = {.sql = "SELECT value FROM object_state WHERE name = $1",
			     .nparams = 1,
			     .values = values};
	struct pg_state_call *c = xmalloc(sizeof(*c));
	*c = (struct pg_state_call){.name = xstrdup(name), .done = done, .arg = arg};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_state_answered, c);
	if (r < 0) {
		free(c->name);
		free(c);
		return db_failf(db, r, "state '%s': cannot send the read: %s", name, err_str(r));
	}
	return 0;
}

/* --- events across masters ------------------------------------------------------------------ */

int db_pg_notify(struct db *db, const char *line)
{
	struct db_pg_notify *n = db_pg_notify_state(db);
	size_t len = strlen(line);
	if (len == 0 || len > DB_NOTIFY_MAX_LINE || memchr(line, '\n', len))
		return db_failf(db, -EINVAL,
				"an event line is empty, longer than %d bytes or "
				"holds a newline",
				DB_NOTIFY_MAX_LINE);
	if (n->out.len + len + 1 > KILN_PG_MAX_NOTIFY_BYTES) {
		if (!n->lost_this_turn)
			log_warn("over %u bytes of events for the other masters in one loop turn: "
				 "the rest are not sent",
				 KILN_PG_MAX_NOTIFY_BYTES);
		n->lost_this_turn = true;
		n->dropped++;
		return 0;
	}
	if (buf_add(&n->out, line, len) < 0 || buf_addch(&n->out, '\n') < 0)
		return db_failf(db, -ENOMEM, "out of memory for an event line");
	db_pg_log_touched(db); /* the turn's close sends them */
	return 0;
}

/* One NOTIFY of the len bytes at from (whole lines, the last '\n' left out);
 * false if it could not be queued. */
static bool db_pg_notify_send(struct db *db, const char *from, size_t len)
{
	_cleanup_free_ char *payload = xstrndup(from, len);
	const char *values[] = {DB_PG_CHANNEL, payload};
	struct pg_query q = {.sql = "SELECT pg_notify($1, $2)", .nparams = 2, .values = values};
	int r = pg_batch_add(db_pg_batch(db), &q);
	if (r < 0)
		log_warn("events for the other masters not sent: %s", err_str(r));
	return r >= 0;
}

void db_pg_notify_flush(struct db *db)
{
	struct db_pg_notify *n = db_pg_notify_state(db);
	/* lines this master dropped (past the turn's cap, or not queued): the
	 * other masters are told, and resync their /ws subscribers, as after
	 * a reconnection of theirs */
	if (n->lost_this_turn)
		n->lost_unsaid = true;
	if (n->lost_unsaid && db_pg_notify_send(db, "lost", 4))
		n->lost_unsaid = false;
	const char *p = n->out.ptr, *end = p + n->out.len;
	while (p < end) {
		/* as many whole lines as fit in one NOTIFY (each line ends with
		 * '\n' and fits alone: DB_NOTIFY_MAX_LINE) */
		const char *stop = p;
		while (stop < end) {
			const char *nl = memchr(stop, '\n', (size_t)(end - stop));
			if ((size_t)(nl - p) > DB_PG_NOTIFY_CHUNK && stop > p)
				break;
			stop = nl + 1;
		}
		if (!db_pg_notify_send(db, p, (size_t)(stop - p - 1)))
			n->lost_unsaid = true; /* said in a later turn */
		p = stop;
	}
	buf_reset(&n->out);
	n->lost_this_turn = false; /* lost_unsaid: the next turn with a write says it (a
				    * heartbeat's at the latest) */
}

void db_pg_notified(struct db *db, const char *channel, const char *payload, int pid)
{
	struct db_pg_notify *n = db_pg_notify_state(db);
	if (!n->fn || strcmp(channel, DB_PG_CHANNEL) || pid == pg_conn_backend_pid(db_pg_conn(db)))
		return; /* our own lines come back too: skipped */
	for (const char *p = payload; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > 0 && len <= DB_NOTIFY_MAX_LINE) {
			char line[DB_NOTIFY_MAX_LINE + 1];
			memcpy(line, p, len);
			line[len] = '\0';
			n->fn(n->arg, line);
		}
		p += len + (nl ? 1 : 0);
	}
}

int db_pg_listen(struct db *db, db_notify_fn fn, void *arg)
{
	struct db_pg_notify *n = db_pg_notify_state(db);
	n->fn = fn;
	n->arg = arg;
	int r = pg_conn_listen(db_pg_conn(db), DB_PG_CHANNEL);
	return r < 0 ? db_failf(db, r, "cannot listen for the other masters' events: %s",
				err_str(r))
		     : 0;
}
