/*
 * The schema migrations, embedded in the binary.  The SQL lives in
 * src/db/migrations/NNNN-name.sql; embed-sql.py turns the files listed in
 * src/db/meson.build into migrations-sql.h at build time.  db-sqlite.c
 * applies the pending ones in one transaction (docs/internals/db.md).
 */
#include "db/db-internal.h"

#include "common/xalloc.h"

#include "migrations-sql.h"

const struct db_migration *db_migrations(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(migrations_embedded);
	return migrations_embedded;
}
