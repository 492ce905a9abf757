/*
 * The REST collections' queries, for either backend (issue 14): one table
 * of fields per resource (Buildbot name, SQL expression, type) drives the
 * filters, the ordering and the rendering; the query text is built here in
 * SQLite's dialect or PostgreSQL's, and db-sqlite-list.c / db-pg-list.c
 * run it.  Field names are checked against the table and values are bound,
 * so no request text ever reaches the SQL.
 *
 * Adding a field: one line in the resource's table in db-list.c (with its
 * PostgreSQL expression when the two dialects differ, and the column in a
 * migration of each if it is new); the API and tests pick it up by name.
 * Internal to src/db.
 */
#ifndef KILN_DB_LIST_H
#define KILN_DB_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "db/db.h"

#define DB_MAX_LIST_SQL (64u << 10)

enum field_type {
	F_INT,  /* integer, may be NULL */
	F_TIME, /* REAL seconds stored, integer seconds rendered */
	F_TEXT,
	F_BOOL,
	F_JSON, /* JSON text, rendered as the value it holds */
};

enum {
	F_FILTER_ONLY = 1 << 0, /* not rendered; expr is a condition with "@@" for the values */
};

struct field {
	const char *name;
	const char *expr; /* SQLite's */
	enum field_type type;
	unsigned flags;
	const char *pg; /* PostgreSQL's, when it differs (NULL: expr) */
};

struct resource {
	const char *from;
	const char *id; /* default order and tiebreaker */
	const struct field *fields;
	size_t nfields;
};

struct bindval {
	bool is_text;
	int64_t i;
	const char *s; /* borrowed: lives in the caller's query */
};

/* A query being built: its WHERE clause and the values it binds. */
struct qbuild {
	bool pg;       /* PostgreSQL's dialect: $N parameters, its functions */
	unsigned base; /* parameters numbered before the WHERE clause's */
	struct buf where;
	struct bindval *binds;
	size_t nbinds, cap;
	int err;          /* the first error (< 0), 0 */
	char errmsg[256]; /* its text, read as Buildbot's ("unrecognized query parameter 'x'") */
};

void list_qb_init(struct qbuild *qb, bool pg, unsigned base);
void list_qb_release(struct qbuild *qb);

const struct resource *list_resource_get(enum db_resource res);
/* f's expression in qb's dialect. */
const char *list_expr(const struct qbuild *qb, const struct field *f);
/* Bit i set: field i of rs is rendered as null without being selected. */
uint64_t list_skip_mask(const struct resource *rs, const char *const *skip);

/* Each returns 0 or a negative error, its text in qb->errmsg. */
int list_add_filter(struct qbuild *qb, const struct resource *rs, const struct db_filter *flt);
int list_add_order(struct qbuild *qb, const struct resource *rs, const struct db_query *q,
		   struct buf *sql);
/* The SELECT list: every rendered field of rs not in skipped, or only the id. */
int list_add_columns(struct qbuild *qb, const struct resource *rs, uint64_t skipped, bool ids_only,
		     struct buf *sql);
/* "SELECT ... FROM ... WHERE ... ORDER BY ... LIMIT p OFFSET p+1" into
 * sql, the filters' values in qb (p: the parameter after them). */
int list_build(struct qbuild *qb, enum db_resource res, const struct db_query *q,
	       const char *const *skip, bool ids_only, const struct resource **ret_rs,
	       uint64_t *ret_skip, struct buf *sql);
#endif
