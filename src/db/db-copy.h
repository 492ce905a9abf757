/*
 * `kiln copy-db FROM TO` (issue 14): a master's whole database copied
 * between SQLite and PostgreSQL (either way, or SQLite to SQLite), then
 * checked row for row.  A tool's code: it blocks (libpq's synchronous
 * calls, SQLite's), and never runs inside a master.
 *
 * The source must be at this binary's schema version; the target's schema
 * is created or migrated to it (db_open's migrations on SQLite, pg_migrate
 * on PostgreSQL) and must then hold no row.  Every table of the source is
 * copied in one transaction on the target, its rows in primary-key order,
 * with the target's own triggers off (their work is in the copied rows
 * already) and its foreign keys kept: on PostgreSQL the tables go in an
 * order where a row's parents come first, and a reference inside a cycle
 * (buildsets.parent_buildid -> builds) is written NULL and set once every
 * table is in; on SQLite the foreign keys are checked after the copy
 * (PRAGMA foreign_key_check).  PostgreSQL's id sequences are moved past the
 * copied ids.  Then, before the COMMIT, both sides are read again, every table in primary-key
 * order (text keys in byte order), and compared by row count and a BLAKE2b
 * hash of every value (type and bytes): any difference fails the copy.
 */
#ifndef KILN_DB_COPY_H
#define KILN_DB_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A URL kiln copy-db takes: "sqlite:PATH" (relative to the working
 * directory) or "postgresql://..." / "postgres://...". */
bool db_copy_url_ok(const char *url);
/* url for messages (owned): a password in its user info
 * (scheme://user:PASSWORD@host) and every password=... parameter (URL
 * query or key=value form) as ***. */
char *db_copy_url_shown(const char *url);

/* Called after each table is copied (and again, checked) with its row count. */
typedef void (*db_copy_progress_fn)(void *arg, const char *table, int64_t rows, bool checked);

struct db_copy_result {
	size_t tables;
	int64_t rows;
	int version; /* the schema version copied */
};

/*
 * Copies from_url into to_url and checks the copy.  Returns 0, or < 0 with
 * *ret_err (owned) saying what went wrong: KILN_ECONFIG for a URL of
 * another kind, -EEXIST when the target holds rows (nothing copied),
 * -EPROTO for a source at a schema version other than this binary's (or
 * a target at a newer one), KILN_EDB for a database error, -EBADMSG when
 * the check found a difference (the message names the table).  The target
 * is touched only once it is known to hold no rows (its schema is then
 * migrated), and the copy and the check run in one transaction on it: on
 * any failure it is rolled back.
 */
int db_copy(const char *from_url, const char *to_url, db_copy_progress_fn progress, void *arg,
	    struct db_copy_result *ret, char **ret_err);

#endif
