/*
 * Reading one column of a libpq result, NULL-aware: the PostgreSQL files'
 * shared helpers.  Internal to src/db.
 */
#ifndef KILN_PG_COL_H
#define KILN_PG_COL_H

#include <stdint.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "common/xalloc.h"

/* The column as an integer; 0 when it is NULL. */
static inline int64_t pg_col_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* The column's text, borrowed from res; NULL when it is NULL. */
static inline char *pg_col_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* The column's text, a copy; NULL when it is NULL. */
static inline char *pg_col_dup(const PGresult *res, int row, int col)
{
	char *s = pg_col_str(res, row, col);
	return s ? xstrdup(s) : NULL;
}

#endif
