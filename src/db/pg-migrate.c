/*
 * Applying migrations/pg/ on PostgreSQL (pg-migrate.h): a short chain of
 * queries on a pg_conn, each sent from the answer of the one before:
 * lock, read the version, one multi-statement query per pending migration
 * (its SQL and the version update, one implicit transaction), unlock.
 */
#include "db/pg-migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/pg-conn.h"

#include "migrations-pg-sql.h"

/* pg_advisory_lock's key: "kiln" in ASCII, any constant no other user of
 * the database takes. */
#define PG_MIGRATE_LOCK_KEY "1802070126"

struct pg_migrate {
	struct pg_conn *c;
	pg_migrate_cb cb;
	void *arg;
	int version;    /* in the database, as far as we know */
	size_t next;    /* index of the migration being applied */
	int r;          /* the failure to report after unlocking */
	char err[1200]; /* its message */
};

static void pg_migrate_step(struct pg_migrate *m);

const struct db_migration *pg_migrations(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(migrations_pg);
	return migrations_pg;
}

static void pg_migrate_finish(struct pg_migrate *m)
{
	m->cb(m->arg, m->r, m->version, m->r < 0 ? m->err : NULL);
	free(m);
}

static void pg_migrate_unlocked(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_migrate *m = arg;
	(void)res;
	/* a lost connection released the lock with the session */
	if (r < 0 && m->r == 0) {
		m->r = r;
		snprintf(m->err, sizeof(m->err), "releasing the migration lock: %s", err);
	}
	pg_migrate_finish(m);
}

/* Ends the chain: unlock (queued after everything sent), then report. */
static void pg_migrate_end(struct pg_migrate *m)
{
	int r = pg_conn_query(m->c, "SELECT pg_advisory_unlock(" PG_MIGRATE_LOCK_KEY ")", 0, NULL,
			      pg_migrate_unlocked, m);
	if (r < 0) {
		/* no connection any more: nothing holds the lock */
		if (m->r == 0) {
			m->r = r;
			snprintf(m->err, sizeof(m->err), "releasing the migration lock: %s",
				 err_str(r));
		}
		pg_migrate_finish(m);
	}
}

static void pg_migrate_fail(struct pg_migrate *m, int r, const char *what, const char *err)
{
	m->r = r;
	snprintf(m->err, sizeof(m->err), "%s: %s", what, err ? err : err_str(r));
	pg_migrate_end(m);
}

static void pg_migrate_applied(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_migrate *m = arg;
	size_t n;
	const struct db_migration *mig = pg_migrations(&n);
	(void)res;
	if (r < 0) {
		char what[128];
		snprintf(what, sizeof(what), "migration %s", mig[m->next].name);
		pg_migrate_fail(m, r, what, err);
		return;
	}
	m->version = mig[m->next].version;
	m->next++;
	pg_migrate_step(m);
}

/* Applies the next pending migration, or ends. */
static void pg_migrate_step(struct pg_migrate *m)
{
	size_t n;
	const struct db_migration *mig = pg_migrations(&n);
	while (m->next < n && mig[m->next].version <= m->version)
		m->next++;
	if (m->next == n) {
		pg_migrate_end(m);
		return;
	}
	/* its SQL and the version it reaches: one implicit transaction */
	char *sql = xasprintf("%s\n;UPDATE kiln_schema_version SET version = %d", mig[m->next].sql,
			      mig[m->next].version);
	struct pg_query q = {.sql = sql, .multi = true};
	int r = pg_conn_send(m->c, &q, pg_migrate_applied, m);
	free(sql);
	if (r < 0)
		pg_migrate_fail(m, r, mig[m->next].name, NULL);
}

static void pg_migrate_got_version(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_migrate *m = arg;
	if (r < 0) {
		pg_migrate_fail(m, r, "reading the schema version", err);
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		pg_migrate_fail(m, KILN_EDB, "reading the schema version",
				"kiln_schema_version does not hold one row");
		return;
	}
	m->version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	size_t n;
	const struct db_migration *mig = pg_migrations(&n);
	int newest = n ? mig[n - 1].version : 0;
	if (m->version > newest) {
		char why[128];
		snprintf(why, sizeof(why), "version %d is newer than this kiln's (%d)", m->version,
			 newest);
		pg_migrate_fail(m, -EPROTO, "the database schema", why);
		return;
	}
	pg_migrate_step(m);
}

static void pg_migrate_locked(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_migrate *m = arg;
	(void)res;
	if (r < 0) {
		/* not locked: nothing to release */
		m->r = r;
		snprintf(m->err, sizeof(m->err), "taking the migration lock: %s", err);
		pg_migrate_finish(m);
		return;
	}
	struct pg_query q = {.sql = "CREATE TABLE IF NOT EXISTS kiln_schema_version ("
				    "one boolean PRIMARY KEY DEFAULT true CHECK (one), "
				    "version integer NOT NULL);"
				    "INSERT INTO kiln_schema_version (version) VALUES (0) ON "
				    "CONFLICT DO NOTHING;"
				    "SELECT version FROM kiln_schema_version",
			     .multi = true};
	r = pg_conn_send(m->c, &q, pg_migrate_got_version, m);
	if (r < 0)
		pg_migrate_fail(m, r, "reading the schema version", NULL);
}

int pg_migrate(struct pg_conn *c, pg_migrate_cb cb, void *arg)
{
	if (!cb)
		return -EINVAL;
	struct pg_migrate *m = xcalloc(1, sizeof(*m));
	m->c = c;
	m->cb = cb;
	m->arg = arg;
	/* waits on the server (not the loop) while another master migrates */
	int r = pg_conn_query(c, "SELECT pg_advisory_lock(" PG_MIGRATE_LOCK_KEY ")", 0, NULL,
			      pg_migrate_locked, m);
	if (r < 0)
		free(m);
	return r;
}
