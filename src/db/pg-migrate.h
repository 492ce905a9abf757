/*
 * The schema on PostgreSQL (issue 14): src/db/migrations/pg/NNNN-*.sql, the
 * same numbered migrations as SQLite's in PostgreSQL's dialect, embedded at
 * build time and applied through a pg_conn without blocking the loop.  The
 * version is the one row of kiln_schema_version.  Several masters starting
 * together on one database take turns: a session advisory lock is held
 * while the version is read and the pending migrations applied, each in its
 * own transaction with the version it reaches.
 */
#ifndef KILN_DB_PG_MIGRATE_H
#define KILN_DB_PG_MIGRATE_H

#include <stddef.h>

#include "db/db-internal.h"

struct pg_conn;

/* The embedded PostgreSQL migrations, by version (migrations/pg/). */
const struct db_migration *pg_migrations(size_t *ret_n);

/* Called once on the loop: r == 0 with the version now in the database,
 * or r < 0 (KILN_EDB: a migration failed and was rolled back, err names
 * it and the server's message; -EPROTO: the database is newer than this
 * binary; or pg_conn's errors for a lost connection).  err borrowed. */
typedef void (*pg_migrate_cb)(void *arg, int r, int version, const char *err);

/*
 * Applies the pending migrations on c (ready or still connecting).
 * Returns 0 and calls cb later, or an error from pg_conn_send() (cb is
 * then never called).  The queries go through c's queue like any other.
 */
int pg_migrate(struct pg_conn *c, pg_migrate_cb cb, void *arg);

#endif
