/*
 * kiln copy-db (db-copy.h): the two kinds of database behind one small
 * "side" (open, list tables, scan rows in key order, write rows), the copy
 * in foreign-key order, and the check.  Values travel as struct copy_val:
 * NULL, a 64-bit integer, a double, text or bytes, classified by the
 * column's declared type (SQLite's affinity rules, PostgreSQL's data_type).
 */
#include "db/db-copy.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "db/db-internal.h"
#include "db/db.h"
#include "db/pg-conn.h"
#include "db/pg-migrate.h"
#include "db/pg-col.h"

#define COPY_MIGRATE_TIMEOUT_MS 120000

enum copy_kind { K_INT, K_FLOAT, K_TEXT, K_BLOB };
enum copy_vtype { V_NULL, V_INT, V_FLOAT, V_TEXT, V_BLOB };

struct copy_val {
	enum copy_vtype t;
	int64_t i;
	double f;
	const unsigned char *p;
	size_t n;
};

struct copy_col {
	char *name;
	enum copy_kind kind;
	bool notnull;
	bool deferred; /* written NULL, set after every table is in (a cycle) */
};

struct copy_table {
	char *name;
	struct copy_col *col;
	size_t ncol;
	size_t *pk; /* indexes into col, in key order; all columns when it has no key */
	size_t npk;
	bool placed;  /* has its turn in the copy order */
	bool has_key; /* a primary key of its own (pk is not all its columns) */
};

struct side {
	bool pg;
	const char *url; /* as given */
	char *shown;     /* owned: url without a password, for messages */
	sqlite3 *lite;
	PGconn *pq;
	/* the running scan */
	sqlite3_stmt *st;
	PGresult *row;
	bool pg_scanning;      /* a single-row read not read to its end */
	unsigned char **unesc; /* PQunescapeBytea results of the current row */
	size_t nunesc;
	/* SQLite's triggers, dropped while it is written */
	char **trig_sql;
	size_t ntrig;
	char *err; /* owned: what failed */
};

static int side_fail(struct side *s, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int side_fail(struct side *s, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = NULL;
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	free(s->err);
	s->err = xasprintf("%s: %s", s->shown ? s->shown : s->url, m ? m : "out of memory");
	free(m);
	return r;
}

/* Appends to a buffer without a cap (SQL text and COPY lines the tool
 * builds): only running out of memory stops it, as xalloc does. */
static void qadd(struct buf *b, const void *p, size_t n)
{
	if (buf_add(b, p, n) < 0)
		abort();
}

static void qaddf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qaddf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vaddf(b, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
}

/* "name" with its quotes doubled: an identifier in either SQL dialect. */
static char *quote_ident(const char *name)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	qadd(&b, "\"", 1);
	for (const char *p = name; *p; p++)
		qadd(&b, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
	qadd(&b, "\"", 1);
	return buf_detach(&b, NULL);
}

bool db_copy_url_ok(const char *url)
{
	return url && (!strncmp(url, "sqlite:", 7) || !strncmp(url, "postgresql://", 13) ||
		       !strncmp(url, "postgres://", 11));
}

/* ---- opening ------------------------------------------------------------ */

struct copy_migration {
	bool done;
	int r;
	char *err;
};

static void copy_migrated(void *arg, int r, int version, const char *err)
{
	struct copy_migration *m = arg;
	(void)version;
	if (m->done) /* the timeout came first; this is pg_conn_free's cancel */
		return;
	m->done = true;
	m->r = r;
	m->err = xstrdup(err ? err : "");
}

static void copy_migrate_timeout(uv_timer_t *t)
{
	struct copy_migration *m = t->data;
	if (!m->done) {
		m->done = true;
		m->r = KILN_ETIMEOUT;
		m->err = xstrdup("the server did not answer within 120 s");
	}
}

/* pg_migrate() on a loop of our own, to its answer (bounded). */
static int pg_side_migrate(struct side *s)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct pg_conn_opts o = {.conninfo = s->url};
	struct pg_conn *c = NULL;
	int r = pg_conn_new(&loop, &o, &c);
	if (r < 0) {
		uv_loop_close(&loop);
		return side_fail(s, r, "%s", pg_conn_new_errmsg());
	}
	struct copy_migration m = {0};
	uv_timer_t timer;
	uv_timer_init(&loop, &timer);
	timer.data = &m;
	uv_timer_start(&timer, copy_migrate_timeout, COPY_MIGRATE_TIMEOUT_MS, 0);
	r = pg_migrate(c, copy_migrated, &m);
	if (r < 0)
		m = (struct copy_migration){.done = true, .r = r, .err = xstrdup(err_str(r))};
	while (!m.done && uv_run(&loop, UV_RUN_ONCE))
		;
	uv_timer_stop(&timer);
	uv_close((uv_handle_t *)&timer, NULL);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (m.r < 0)
		side_fail(s, m.r, "cannot bring its schema to this version: %s", m.err);
	free(m.err);
	return m.r < 0 ? m.r : 0;
}

static int pg_exec_ok(struct side *s, const char *sql)
{
	PGresult *res = PQexec(s->pq, sql);
	ExecStatusType st = PQresultStatus(res);
	int r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK
			? 0
			: side_fail(s, KILN_EDB, "%.80s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return r;
}

static int lite_exec_ok(struct side *s, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(s->lite, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	int r = side_fail(s, KILN_EDB, "%.80s: %s", sql, msg ? msg : sqlite3_errmsg(s->lite));
	sqlite3_free(msg);
	return r;
}

char *db_copy_url_shown(const char *url)
{
	struct buf b;
	buf_init(&b, SIZE_MAX);
	const char *p = strstr(url, "://");
	const char *at = p ? strchr(p + 3, '@') : NULL;
	const char *slash = p ? strchr(p + 3, '/') : NULL;
	const char *colon = p ? strchr(p + 3, ':') : NULL;
	if (at && (!slash || at < slash) && colon && colon < at) {
		qadd(&b, url, (size_t)(colon + 1 - url));
		qadd(&b, "***", 3);
		url = at;
	}
	for (size_t i = 0; url[i];) {
		bool key =
			(i == 0 || strchr("?& ", url[i - 1])) && !strncmp(url + i, "password=", 9);
		if (!key) {
			qadd(&b, url + i, 1);
			i++;
			continue;
		}
		qadd(&b, "password=***", 12);
		i += 9 + strcspn(url + i + 9, "& ");
	}
	return buf_detach(&b, NULL);
}

static void copy_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Opens one side (the target, write, is created if it is a missing SQLite
 * file); its schema is side_migrate()'s. */
static int side_open(struct side *s, const char *url, bool write)
{
	s->url = url;
	s->shown = db_copy_url_shown(url);
	s->pg = strncmp(url, "sqlite:", 7) != 0;
	if (!s->pg) {
		int flags =
			write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
		if (sqlite3_open_v2(url + 7, &s->lite, flags, NULL) != SQLITE_OK)
			return side_fail(s, KILN_EDB, "cannot open: %s",
					 s->lite ? sqlite3_errmsg(s->lite) : "out of memory");
		sqlite3_busy_timeout(s->lite, 5000);
		return 0;
	}
	s->pq = PQconnectdb(url);
	if (!s->pq || PQstatus(s->pq) != CONNECTION_OK)
		return side_fail(s, KILN_EDB, "cannot connect: %s",
				 s->pq ? PQerrorMessage(s->pq) : "out of memory");
	PQsetNoticeProcessor(s->pq, copy_quiet, NULL); /* the server's notices: not for the user */
	int r = pg_exec_ok(s, "SET extra_float_digits = 3");
	if (r >= 0)
		r = pg_exec_ok(s, "SET client_encoding = 'UTF8'");
	return r;
}

/* Brings the target's schema to this binary's version. */
static int side_migrate(struct side *s)
{
	if (s->pg)
		return pg_side_migrate(s);
	struct db *db = NULL;
	if (db_open(NULL, s->url, ".", &db) < 0)
		return side_fail(s, KILN_EDB, "%s", db_open_errmsg());
	db_close(db);
	return 0;
}

static void side_scan_end(struct side *s);

static void side_close(struct side *s)
{
	side_scan_end(s);
	if (s->lite)
		sqlite3_close(s->lite);
	if (s->pq)
		PQfinish(s->pq);
	for (size_t i = 0; i < s->ntrig; i++)
		free(s->trig_sql[i]);
	free(s->trig_sql);
	free(s->err);
	free(s->shown);
	memset(s, 0, sizeof(*s));
}

/* ---- one-value queries ---------------------------------------------------- */

/* The first column of the first row of sql as an integer (0 without a row). */
static int side_int(struct side *s, const char *sql, int nparams, const char *const *params,
		    int64_t *ret)
{
	*ret = 0;
	if (s->pg) {
		PGresult *res = PQexecParams(s->pq, sql, nparams, NULL, params, NULL, NULL, 0);
		int r = 0;
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			r = side_fail(s, KILN_EDB, "%.80s: %s", sql, PQresultErrorMessage(res));
		else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
			*ret = pg_col_i64(res, 0, 0);
		PQclear(res);
		return r;
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->lite, sql, -1, &st, NULL) != SQLITE_OK)
		return side_fail(s, KILN_EDB, "%.80s: %s", sql, sqlite3_errmsg(s->lite));
	for (int i = 0; i < nparams; i++)
		sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE
		       ? 0
		       : side_fail(s, KILN_EDB, "%.80s: %s", sql, sqlite3_errmsg(s->lite));
}

static int side_version(struct side *s, int *ret)
{
	int64_t v = 0;
	int r;
	if (s->pg) {
		int64_t has = 0;
		r = side_int(s,
			     "SELECT count(*) FROM information_schema.tables WHERE "
			     "table_schema = current_schema() AND table_name = "
			     "'kiln_schema_version'",
			     0, NULL, &has);
		if (r >= 0 && has)
			r = side_int(s, "SELECT version FROM kiln_schema_version", 0, NULL, &v);
	} else {
		r = side_int(s, "PRAGMA user_version", 0, NULL, &v);
	}
	*ret = (int)v;
	return r;
}

/* ---- tables ------------------------------------------------------------------ */

static void tables_free(struct copy_table *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < t[i].ncol; j++)
			free(t[i].col[j].name);
		free(t[i].col);
		free(t[i].pk);
		free(t[i].name);
	}
	free(t);
}

/* SQLite's affinity rules (datatype3.html 3.1) on a declared type. */
static enum copy_kind lite_kind(const char *decl)
{
	if (!decl || !*decl)
		return K_BLOB;
	if (strcasestr(decl, "INT"))
		return K_INT;
	if (strcasestr(decl, "CHAR") || strcasestr(decl, "CLOB") || strcasestr(decl, "TEXT"))
		return K_TEXT;
	if (strcasestr(decl, "BLOB"))
		return K_BLOB;
	return K_FLOAT; /* REAL, FLOA, DOUB, and NUMERIC's kinds: none in Kiln's schema */
}

static enum copy_kind pg_kind(const char *type)
{
	if (!strcmp(type, "bigint") || !strcmp(type, "integer") || !strcmp(type, "smallint"))
		return K_INT;
	if (!strcmp(type, "double precision") || !strcmp(type, "real") || !strcmp(type, "numeric"))
		return K_FLOAT;
	if (!strcmp(type, "bytea"))
		return K_BLOB;
	return K_TEXT;
}

static int table_add_col(struct copy_table *t, const char *name, enum copy_kind kind, bool notnull)
{
	t->col = xrealloc(t->col, (t->ncol + 1) * sizeof(*t->col));
	t->col[t->ncol++] =
		(struct copy_col){.name = xstrdup(name), .kind = kind, .notnull = notnull};
	return 0;
}

static int lite_table(struct side *s, struct copy_table *t)
{
	_cleanup_free_ char *q = quote_ident(t->name);
	_cleanup_free_ char *sql = xasprintf("PRAGMA table_info(%s)", q);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->lite, sql, -1, &st, NULL) != SQLITE_OK)
		return side_fail(s, KILN_EDB, "%s: %s", sql, sqlite3_errmsg(s->lite));
	int pkpos[256] = {0};
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *decl = (const char *)sqlite3_column_text(st, 2);
		int pk = sqlite3_column_int(st, 5);
		if (t->ncol < 256)
			pkpos[t->ncol] = pk;
		table_add_col(t, name ? name : "", lite_kind(decl), sqlite3_column_int(st, 3) != 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return side_fail(s, KILN_EDB, "%s: %s", sql, sqlite3_errmsg(s->lite));
	t->pk = xcalloc(t->ncol ? t->ncol : 1, sizeof(*t->pk));
	for (int k = 1; k <= (int)t->ncol; k++)
		for (size_t j = 0; j < t->ncol && j < 256; j++)
			if (pkpos[j] == k)
				t->pk[t->npk++] = j;
	return 0;
}

static int pg_table(struct side *s, struct copy_table *t)
{
	const char *p[1] = {t->name};
	PGresult *res =
		PQexecParams(s->pq,
			     "SELECT column_name, data_type, is_nullable FROM "
			     "information_schema.columns WHERE table_schema = current_schema() "
			     "AND table_name = $1 ORDER BY ordinal_position",
			     1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int r = side_fail(s, KILN_EDB, "the columns of %s: %s", t->name,
				  PQresultErrorMessage(res));
		PQclear(res);
		return r;
	}
	for (int i = 0; i < PQntuples(res); i++)
		table_add_col(t, PQgetvalue(res, i, 0), pg_kind(PQgetvalue(res, i, 1)),
			      !strcmp(PQgetvalue(res, i, 2), "NO"));
	PQclear(res);
	res = PQexecParams(
		s->pq,
		"SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
		"i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND "
		"i.indrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = "
		"c.relnamespace WHERE n.nspname = current_schema() AND c.relname = $1) "
		"ORDER BY array_position(i.indkey::int2[], a.attnum)",
		1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int r = side_fail(s, KILN_EDB, "the key of %s: %s", t->name,
				  PQresultErrorMessage(res));
		PQclear(res);
		return r;
	}
	t->pk = xcalloc(t->ncol ? t->ncol : 1, sizeof(*t->pk));
	for (int i = 0; i < PQntuples(res); i++)
		for (size_t j = 0; j < t->ncol; j++)
			if (!strcmp(t->col[j].name, PQgetvalue(res, i, 0)))
				t->pk[t->npk++] = j;
	PQclear(res);
	return 0;
}

/* Every table of the side with its columns and key, by name. */
static int side_tables(struct side *s, struct copy_table **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	struct copy_table *t = NULL;
	size_t n = 0;
	int r = 0;
	if (s->pg) {
		PGresult *res =
			PQexec(s->pq, "SELECT table_name FROM information_schema.tables "
				      "WHERE table_schema = current_schema() AND table_type = "
				      "'BASE TABLE' AND table_name <> 'kiln_schema_version' "
				      "ORDER BY table_name COLLATE \"C\"");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			r = side_fail(s, KILN_EDB, "its tables: %s", PQresultErrorMessage(res));
		for (int i = 0; r >= 0 && i < PQntuples(res); i++) {
			t = xrealloc(t, (n + 1) * sizeof(*t));
			t[n] = (struct copy_table){.name = xstrdup(PQgetvalue(res, i, 0))};
			r = pg_table(s, &t[n++]);
		}
		PQclear(res);
	} else {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(
			    s->lite,
			    "SELECT name FROM sqlite_master WHERE type = 'table' AND name "
			    "NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
			    -1, &st, NULL) != SQLITE_OK)
			return side_fail(s, KILN_EDB, "its tables: %s", sqlite3_errmsg(s->lite));
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			t = xrealloc(t, (n + 1) * sizeof(*t));
			t[n++] = (struct copy_table){
				.name = xstrdup((const char *)sqlite3_column_text(st, 0))};
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			r = side_fail(s, KILN_EDB, "its tables: %s", sqlite3_errmsg(s->lite));
		for (size_t i = 0; r >= 0 && i < n; i++)
			r = lite_table(s, &t[i]);
	}
	for (size_t i = 0; r >= 0 && i < n; i++)
		t[i].has_key = t[i].npk > 0;
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (t[i].npk == 0) /* no key: every column orders it */
			for (size_t j = 0; j < t[i].ncol; j++)
				t[i].pk[t[i].npk++] = j;
	if (r < 0) {
		tables_free(t, n);
		return r;
	}
	*ret = t;
	*ret_n = n;
	return 0;
}

static struct copy_table *table_find(struct copy_table *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, name))
			return &t[i];
	return NULL;
}

static struct copy_col *col_find(struct copy_table *t, const char *name)
{
	for (size_t j = 0; j < t->ncol; j++)
		if (!strcmp(t->col[j].name, name))
			return &t->col[j];
	return NULL;
}

/* ---- scanning ------------------------------------------------------------------ */

static void side_scan_free_row(struct side *s)
{
	for (size_t i = 0; i < s->nunesc; i++)
		PQfreemem(s->unesc[i]);
	s->nunesc = 0;
	if (s->row)
		PQclear(s->row);
	s->row = NULL;
}

static void side_scan_end(struct side *s)
{
	if (s->st)
		sqlite3_finalize(s->st);
	s->st = NULL;
	side_scan_free_row(s);
	free(s->unesc);
	s->unesc = NULL;
	if (s->pg && s->pq) {
		if (s->pg_scanning) { /* given up early: the server stops sending the rest */
			char why[256];
			PGcancel *cancel = PQgetCancel(s->pq);
			if (cancel) {
				(void)PQcancel(cancel, why, sizeof(why));
				PQfreeCancel(cancel);
			}
			s->pg_scanning = false;
		}
		PGresult *res;
		while ((res = PQgetResult(s->pq)))
			PQclear(res);
	}
}

/* Starts reading cols of t in key order (text keys in byte order); with
 * only_set, the rows where one of its deferred columns is not NULL. */
static int side_scan(struct side *s, const struct copy_table *t, bool only_set)
{
	struct buf q;
	buf_init(&q, SIZE_MAX);
	qaddf(&q, "SELECT ");
	for (size_t j = 0; j < t->ncol; j++) {
		_cleanup_free_ char *c = quote_ident(t->col[j].name);
		qaddf(&q, "%s%s", j ? ", " : "", c);
	}
	_cleanup_free_ char *tn = quote_ident(t->name);
	qaddf(&q, " FROM %s", tn);
	if (only_set) {
		bool first = true;
		for (size_t j = 0; j < t->ncol; j++) {
			if (!t->col[j].deferred)
				continue;
			_cleanup_free_ char *c = quote_ident(t->col[j].name);
			qaddf(&q, "%s%s IS NOT NULL", first ? " WHERE " : " OR ", c);
			first = false;
		}
	}
	qaddf(&q, " ORDER BY ");
	for (size_t k = 0; k < t->npk; k++) {
		const struct copy_col *c = &t->col[t->pk[k]];
		_cleanup_free_ char *cn = quote_ident(c->name);
		qaddf(&q, "%s%s%s", k ? ", " : "", cn,
		      s->pg && c->kind == K_TEXT ? " COLLATE \"C\"" : "");
	}
	int r = 0;
	if (s->pg) {
		s->unesc = xcalloc(t->ncol ? t->ncol : 1, sizeof(*s->unesc));
		if (!PQsendQuery(s->pq, q.ptr) || !PQsetSingleRowMode(s->pq))
			r = side_fail(s, KILN_EDB, "reading %s: %s", t->name,
				      PQerrorMessage(s->pq));
		else
			s->pg_scanning = true;
	} else if (sqlite3_prepare_v2(s->lite, q.ptr, -1, &s->st, NULL) != SQLITE_OK) {
		r = side_fail(s, KILN_EDB, "reading %s: %s", t->name, sqlite3_errmsg(s->lite));
	}
	buf_release(&q);
	return r;
}

/* The next row into v[t->ncol]: 1, 0 at the end, or an error. */
static int side_next(struct side *s, const struct copy_table *t, struct copy_val *v)
{
	if (!s->pg) {
		int rc = sqlite3_step(s->st);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return side_fail(s, KILN_EDB, "reading %s: %s", t->name,
					 sqlite3_errmsg(s->lite));
		for (size_t j = 0; j < t->ncol; j++) {
			int i = (int)j;
			struct copy_val *x = &v[j];
			*x = (struct copy_val){0};
			switch (sqlite3_column_type(s->st, i)) {
			case SQLITE_NULL:
				x->t = V_NULL;
				break;
			case SQLITE_INTEGER:
				x->i = sqlite3_column_int64(s->st, i);
				x->t = V_INT;
				if (t->col[j].kind ==
				    K_FLOAT) /* REAL affinity keeps it an integer on disk */
					*x = (struct copy_val){.t = V_FLOAT, .f = (double)x->i};
				break;
			case SQLITE_FLOAT:
				x->t = V_FLOAT;
				x->f = sqlite3_column_double(s->st, i);
				break;
			case SQLITE_TEXT:
				x->t = V_TEXT;
				x->p = sqlite3_column_text(s->st, i);
				x->n = (size_t)sqlite3_column_bytes(s->st, i);
				break;
			default:
				x->t = V_BLOB;
				x->p = sqlite3_column_blob(s->st, i);
				x->n = (size_t)sqlite3_column_bytes(s->st, i);
				if (!x->p)
					x->p = (const unsigned char *)"";
				break;
			}
		}
		return 1;
	}
	side_scan_free_row(s);
	PGresult *res = PQgetResult(s->pq);
	if (!res) {
		s->pg_scanning = false;
		return 0;
	}
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK) { /* the end: its last result */
		s->pg_scanning = false;
		PQclear(res);
		while ((res = PQgetResult(s->pq)))
			PQclear(res);
		return 0;
	}
	if (st != PGRES_SINGLE_TUPLE) {
		s->pg_scanning = false;
		int r = side_fail(s, KILN_EDB, "reading %s: %s", t->name,
				  PQresultErrorMessage(res));
		PQclear(res);
		return r;
	}
	s->row = res;
	for (size_t j = 0; j < t->ncol; j++) {
		int i = (int)j;
		struct copy_val *x = &v[j];
		*x = (struct copy_val){0};
		if (PQgetisnull(res, 0, i))
			continue;
		const char *text = PQgetvalue(res, 0, i);
		switch (t->col[j].kind) {
		case K_INT:
			x->t = V_INT;
			x->i = strtoll(text, NULL, 10);
			break;
		case K_FLOAT:
			x->t = V_FLOAT;
			x->f = strtod(text, NULL); /* also "Infinity", "NaN" */
			break;
		case K_TEXT:
			x->t = V_TEXT;
			x->p = (const unsigned char *)text;
			x->n = (size_t)PQgetlength(res, 0, i);
			break;
		case K_BLOB: {
			size_t n = 0;
			unsigned char *b = PQunescapeBytea((const unsigned char *)text, &n);
			if (!b)
				return side_fail(s, -ENOMEM, "reading %s: out of memory", t->name);
			s->unesc[s->nunesc++] = b;
			x->t = V_BLOB;
			x->p = b;
			x->n = n;
			break;
		}
		}
	}
	return 1;
}

/* ---- writing ------------------------------------------------------------------ */

/* One transaction on the target, its triggers off. */
static int side_write_begin(struct side *s, struct copy_table *t, size_t n)
{
	if (s->pg) {
		int r = pg_exec_ok(s, "BEGIN");
		for (size_t i = 0; r >= 0 && i < n; i++) {
			_cleanup_free_ char *tn = quote_ident(t[i].name);
			_cleanup_free_ char *sql =
				xasprintf("ALTER TABLE %s DISABLE TRIGGER USER", tn);
			r = pg_exec_ok(s, sql);
		}
		return r;
	}
	int r = lite_exec_ok(s, "PRAGMA foreign_keys = OFF");
	if (r >= 0)
		r = lite_exec_ok(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->lite,
			       "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql "
			       "IS NOT NULL ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK)
		return side_fail(s, KILN_EDB, "its triggers: %s", sqlite3_errmsg(s->lite));
	char **names = NULL;
	size_t nn = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		names = xrealloc(names, (nn + 1) * sizeof(*names));
		names[nn++] = xstrdup((const char *)sqlite3_column_text(st, 0));
		s->trig_sql = xrealloc(s->trig_sql, (s->ntrig + 1) * sizeof(*s->trig_sql));
		s->trig_sql[s->ntrig++] = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < nn; i++) {
		if (r >= 0) {
			_cleanup_free_ char *q = quote_ident(names[i]);
			_cleanup_free_ char *sql = xasprintf("DROP TRIGGER %s", q);
			r = lite_exec_ok(s, sql);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

static void copy_text_escaped(struct buf *b, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (p[i]) {
		case '\\':
			qadd(b, "\\\\", 2);
			break;
		case '\n':
			qadd(b, "\\n", 2);
			break;
		case '\r':
			qadd(b, "\\r", 2);
			break;
		case '\t':
			qadd(b, "\\t", 2);
			break;
		default:
			qadd(b, &p[i], 1);
		}
	}
}

static void copy_float(char *out, size_t cap, double f)
{
	if (isnan(f))
		snprintf(out, cap, "NaN");
	else if (isinf(f))
		snprintf(out, cap, f > 0 ? "Infinity" : "-Infinity");
	else
		snprintf(out, cap, "%.17g", f);
}

/* One value in COPY's text format (a deferred column goes NULL). */
static int copy_field(struct side *s, const struct copy_table *t, size_t j,
		      const struct copy_val *x, struct buf *b)
{
	if (x->t == V_NULL || t->col[j].deferred)
		return buf_add(b, "\\N", 2);
	char num[64];
	switch (x->t) {
	case V_INT:
		return buf_addf(b, "%" PRId64, x->i);
	case V_FLOAT:
		copy_float(num, sizeof(num), x->f);
		return buf_addf(b, "%s", num);
	case V_TEXT:
		if (memchr(x->p, '\0', x->n))
			return side_fail(s, -EINVAL,
					 "table %s, column %s: text with a NUL byte, which "
					 "PostgreSQL cannot store",
					 t->name, t->col[j].name);
		copy_text_escaped(b, x->p, x->n);
		return 0;
	default: /* bytea's hex form, its backslash escaped for COPY */
		qadd(b, "\\\\x", 3);
		for (size_t i = 0; i < x->n; i++)
			qaddf(b, "%02x", x->p[i]);
		return 0;
	}
}

static int lite_bind(sqlite3_stmt *st, int i, const struct copy_val *x)
{
	switch (x->t) {
	case V_NULL:
		return sqlite3_bind_null(st, i);
	case V_INT:
		return sqlite3_bind_int64(st, i, x->i);
	case V_FLOAT:
		return sqlite3_bind_double(st, i, x->f);
	case V_TEXT:
		return sqlite3_bind_text64(st, i, (const char *)x->p, x->n, SQLITE_TRANSIENT,
					   SQLITE_UTF8);
	default:
		return sqlite3_bind_blob64(st, i, x->p, x->n, SQLITE_TRANSIENT);
	}
}

/* Copies every row of t from src into dst; *ret_rows: how many. */
static int copy_table_rows(struct side *src, struct side *dst, const struct copy_table *t,
			   int64_t *ret_rows)
{
	*ret_rows = 0;
	_cleanup_free_ char *tn = quote_ident(t->name);
	struct buf q;
	buf_init(&q, SIZE_MAX);
	qaddf(&q, dst->pg ? "COPY %s (" : "INSERT INTO %s (", tn);
	for (size_t j = 0; j < t->ncol; j++) {
		_cleanup_free_ char *c = quote_ident(t->col[j].name);
		qaddf(&q, "%s%s", j ? ", " : "", c);
	}
	if (dst->pg) {
		qaddf(&q, ") FROM STDIN");
	} else {
		qaddf(&q, ") VALUES (");
		for (size_t j = 0; j < t->ncol; j++)
			qaddf(&q, "%s?", j ? ", " : "");
		qaddf(&q, ")");
	}
	sqlite3_stmt *ins = NULL;
	int r = 0;
	if (dst->pg) {
		PGresult *res = PQexec(dst->pq, q.ptr);
		if (PQresultStatus(res) != PGRES_COPY_IN)
			r = side_fail(dst, KILN_EDB, "writing %s: %s", t->name,
				      PQresultErrorMessage(res));
		PQclear(res);
	} else if (sqlite3_prepare_v2(dst->lite, q.ptr, -1, &ins, NULL) != SQLITE_OK) {
		r = side_fail(dst, KILN_EDB, "writing %s: %s", t->name, sqlite3_errmsg(dst->lite));
	}
	buf_release(&q);
	if (r < 0)
		return r;
	struct copy_val *v = xcalloc(t->ncol ? t->ncol : 1, sizeof(*v));
	struct buf line;
	buf_init(&line, SIZE_MAX);
	bool copy_open = dst->pg;
	r = side_scan(src, t, false);
	while (r >= 0 && (r = side_next(src, t, v)) > 0) {
		if (dst->pg) {
			buf_reset(&line);
			for (size_t j = 0; r >= 0 && j < t->ncol; j++) {
				if (j)
					qadd(&line, "\t", 1);
				r = copy_field(dst, t, j, &v[j], &line);
			}
			qadd(&line, "\n", 1);
			if (r >= 0 && PQputCopyData(dst->pq, line.ptr, (int)line.len) != 1)
				r = side_fail(dst, KILN_EDB, "writing %s: %s", t->name,
					      PQerrorMessage(dst->pq));
		} else {
			sqlite3_reset(ins);
			for (size_t j = 0; j < t->ncol; j++) {
				struct copy_val null = {.t = V_NULL};
				lite_bind(ins, (int)j + 1, t->col[j].deferred ? &null : &v[j]);
			}
			if (sqlite3_step(ins) != SQLITE_DONE)
				r = side_fail(dst, KILN_EDB, "writing %s: %s", t->name,
					      sqlite3_errmsg(dst->lite));
		}
		if (r >= 0)
			(*ret_rows)++;
	}
	side_scan_end(src);
	if (copy_open) {
		int end = PQputCopyEnd(dst->pq, r < 0 ? "kiln copy-db gave up" : NULL);
		PGresult *res = PQgetResult(dst->pq);
		if (r >= 0 && (end != 1 || PQresultStatus(res) != PGRES_COMMAND_OK))
			r = side_fail(dst, KILN_EDB, "writing %s: %s", t->name,
				      PQresultErrorMessage(res));
		PQclear(res);
		while ((res = PQgetResult(dst->pq)))
			PQclear(res);
	}
	if (ins)
		sqlite3_finalize(ins);
	buf_release(&line);
	free(v);
	return r < 0 ? r : 0;
}

/* Sets the deferred columns of t's rows, once every table is in. */
static int copy_deferred(struct side *src, struct side *dst, const struct copy_table *t)
{
	_cleanup_free_ char *tn = quote_ident(t->name);
	struct buf q;
	buf_init(&q, SIZE_MAX);
	qaddf(&q, "UPDATE %s SET ", tn);
	int np = 0;
	for (size_t j = 0; j < t->ncol; j++)
		if (t->col[j].deferred) {
			_cleanup_free_ char *c = quote_ident(t->col[j].name);
			qaddf(&q, "%s%s = $%d", np ? ", " : "", c, np + 1);
			np++;
		}
	for (size_t k = 0; k < t->npk; k++) {
		_cleanup_free_ char *c = quote_ident(t->col[t->pk[k]].name);
		qaddf(&q, "%s%s = $%d", k ? " AND " : " WHERE ", c, np + 1);
		np++;
	}
	struct copy_val *v = xcalloc(t->ncol ? t->ncol : 1, sizeof(*v));
	char **text = xcalloc((size_t)np, sizeof(*text));
	const struct copy_val **order = xcalloc((size_t)np, sizeof(*order));
	int r = side_scan(src, t, true);
	while (r >= 0 && (r = side_next(src, t, v)) > 0) {
		/* values: the deferred columns, then the key (text; bytes as hex) */
		int i = 0;
		for (size_t j = 0; j < t->ncol; j++)
			if (t->col[j].deferred)
				order[i++] = &v[j];
		for (size_t k = 0; k < t->npk; k++)
			order[i++] = &v[t->pk[k]];
		for (int p = 0; p < np; p++) {
			free(text[p]);
			text[p] = NULL;
			const struct copy_val *x = order[p];
			char num[64];
			switch (x->t) {
			case V_NULL:
				break;
			case V_INT:
				text[p] = xasprintf("%" PRId64, x->i);
				break;
			case V_FLOAT:
				copy_float(num, sizeof(num), x->f);
				text[p] = xstrdup(num);
				break;
			case V_TEXT:
				text[p] = xstrndup((const char *)x->p, x->n);
				break;
			default: {
				struct buf h;
				buf_init(&h, SIZE_MAX);
				qadd(&h, "\\x", 2);
				for (size_t b = 0; b < x->n; b++)
					qaddf(&h, "%02x", x->p[b]);
				text[p] = buf_detach(&h, NULL);
			}
			}
		}
		PGresult *res = PQexecParams(dst->pq, q.ptr, np, NULL, (const char *const *)text,
					     NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			r = side_fail(dst, KILN_EDB, "setting %s's references: %s", t->name,
				      PQresultErrorMessage(res));
		else if (strcmp(PQcmdTuples(res), "1"))
			r = side_fail(dst, KILN_EDB, "setting %s's references: %s rows for one key",
				      t->name, PQcmdTuples(res));
		PQclear(res);
	}
	side_scan_end(src);
	for (int p = 0; p < np; p++)
		free(text[p]);
	free(text);
	free(order);
	free(v);
	buf_release(&q);
	return r < 0 ? r : 0;
}

/* Ends the target's transaction: COMMIT, or ROLLBACK (whose failure
 * changes nothing: the transaction is gone either way). */
static int side_commit(struct side *s, bool commit)
{
	if (commit)
		return s->pg ? pg_exec_ok(s, "COMMIT") : lite_exec_ok(s, "COMMIT");
	if (s->pg)
		PQclear(PQexec(s->pq, "ROLLBACK"));
	else
		(void)sqlite3_exec(s->lite, "ROLLBACK", NULL, NULL, NULL);
	return 0;
}

/* Triggers back (SQLite), foreign keys checked, sequences moved
 * (PostgreSQL); the transaction stays open for the check. */
static int side_write_finish(struct side *s, struct copy_table *t, size_t n)
{
	int r = 0;
	if (!s->pg) {
		for (size_t i = 0; r >= 0 && i < s->ntrig; i++)
			r = lite_exec_ok(s, s->trig_sql[i]);
		int64_t bad = 0;
		if (r >= 0)
			r = side_int(s, "SELECT count(*) FROM pragma_foreign_key_check", 0, NULL,
				     &bad);
		if (r >= 0 && bad)
			r = side_fail(s, KILN_EDB, "%" PRId64 " rows break a foreign key", bad);
		return r;
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_free_ char *tn = quote_ident(t[i].name);
		_cleanup_free_ char *sql = xasprintf("ALTER TABLE %s ENABLE TRIGGER USER", tn);
		r = pg_exec_ok(s, sql);
		for (size_t j = 0; r >= 0 && j < t[i].ncol; j++) {
			if (t[i].col[j].kind != K_INT)
				continue;
			_cleanup_free_ char *cn = quote_ident(t[i].col[j].name);
			_cleanup_free_ char *q = xasprintf(
				"SELECT setval(s, COALESCE((SELECT max(%s) FROM %s), 0) + 1, "
				"false) "
				"FROM pg_get_serial_sequence($1, $2) s WHERE s IS NOT NULL",
				cn, tn);
			const char *p[2] = {tn, t[i].col[j].name};
			int64_t ignored;
			r = side_int(s, q, 2, p, &ignored);
		}
	}
	return r;
}

/* ---- the order on PostgreSQL ------------------------------------------------------ */

struct copy_fk {
	char *child, *parent, *col;
};

static int pg_fks(struct side *s, struct copy_fk **ret, size_t *ret_n)
{
	PGresult *res =
		PQexec(s->pq, "SELECT cl.relname, pcl.relname, a.attname FROM pg_constraint "
			      "c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pcl ON "
			      "pcl.oid = c.confrelid JOIN pg_attribute a ON a.attrelid = "
			      "c.conrelid AND a.attnum = ANY(c.conkey) JOIN pg_namespace n ON "
			      "n.oid = cl.relnamespace WHERE c.contype = 'f' AND n.nspname = "
			      "current_schema()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int r = side_fail(s, KILN_EDB, "its foreign keys: %s", PQresultErrorMessage(res));
		PQclear(res);
		return r;
	}
	size_t n = (size_t)PQntuples(res);
	struct copy_fk *f = xcalloc(n ? n : 1, sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f[i] = (struct copy_fk){xstrdup(PQgetvalue(res, (int)i, 0)),
					xstrdup(PQgetvalue(res, (int)i, 1)),
					xstrdup(PQgetvalue(res, (int)i, 2))};
	PQclear(res);
	*ret = f;
	*ret_n = n;
	return 0;
}

static void fks_free(struct copy_fk *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].child);
		free(f[i].parent);
		free(f[i].col);
	}
	free(f);
}

/* How many of t's references point at tables not placed yet (itself
 * included); -1 when one of them is NOT NULL (it cannot wait). */
static int unplaced_refs(struct copy_table *t, size_t n, struct copy_table *tab,
			 const struct copy_fk *f, size_t nf)
{
	int count = 0;
	for (size_t i = 0; i < nf; i++) {
		if (strcmp(f[i].child, tab->name))
			continue;
		struct copy_table *p = table_find(t, n, f[i].parent);
		if (p && p->placed && p != tab)
			continue;
		if (!p)
			continue;
		struct copy_col *c = col_find(tab, f[i].col);
		if (c && c->notnull && p != tab)
			return -1;
		count++;
	}
	return count;
}

/* order[]: t's indexes, parents first; the references that must wait are marked deferred. */
static int pg_order(struct side *dst, struct copy_table *t, size_t n, size_t *order)
{
	struct copy_fk *f = NULL;
	size_t nf = 0;
	int r = pg_fks(dst, &f, &nf);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n; k++) {
		size_t pick = n;
		int best = -1;
		for (size_t i = 0; i < n && best != 0; i++) {
			if (t[i].placed)
				continue;
			int u = unplaced_refs(t, n, &t[i], f, nf);
			if (u >= 0 && (best < 0 || u < best)) {
				best = u;
				pick = i;
			}
		}
		if (pick == n) {
			r = side_fail(dst, -ELOOP,
				      "its foreign keys form a cycle of NOT NULL columns");
			break;
		}
		/* the references it still has wait for the end (self-references too) */
		for (size_t i = 0; i < nf; i++) {
			if (strcmp(f[i].child, t[pick].name))
				continue;
			struct copy_table *p = table_find(t, n, f[i].parent);
			struct copy_col *c = col_find(&t[pick], f[i].col);
			if (p && c && (!p->placed || p == &t[pick]) && !c->notnull)
				c->deferred = true;
			if (c && c->deferred && !t[pick].has_key) {
				r = side_fail(dst, -ELOOP,
					      "table %s must set %s after the copy but has no "
					      "primary key to find its rows by",
					      t[pick].name, c->name);
				break;
			}
		}
		if (r < 0)
			break;
		t[pick].placed = true;
		order[k] = pick;
	}
	fks_free(f, nf);
	return r;
}

/* ---- the check ----------------------------------------------------------------------- */

static void hash_val(crypto_generichash_state *h, const struct copy_val *x)
{
	unsigned char tag = (unsigned char)('0' + x->t);
	crypto_generichash_update(h, &tag, 1);
	switch (x->t) {
	case V_NULL:
		break;
	case V_INT:
		crypto_generichash_update(h, (const unsigned char *)&x->i, sizeof(x->i));
		break;
	case V_FLOAT:
		crypto_generichash_update(h, (const unsigned char *)&x->f, sizeof(x->f));
		break;
	default: {
		uint64_t n = x->n;
		crypto_generichash_update(h, (const unsigned char *)&n, sizeof(n));
		crypto_generichash_update(h, x->p, x->n);
	}
	}
}

/* Row count and hash of every value of t on s, in key order. */
static int side_digest(struct side *s, const struct copy_table *t, int64_t *ret_rows,
		       unsigned char out[32])
{
	crypto_generichash_state h;
	crypto_generichash_init(&h, NULL, 0, 32);
	struct copy_val *v = xcalloc(t->ncol ? t->ncol : 1, sizeof(*v));
	*ret_rows = 0;
	int r = side_scan(s, t, false);
	while (r >= 0 && (r = side_next(s, t, v)) > 0) {
		for (size_t j = 0; j < t->ncol; j++)
			hash_val(&h, &v[j]);
		(*ret_rows)++;
	}
	side_scan_end(s);
	free(v);
	crypto_generichash_final(&h, out, 32);
	return r < 0 ? r : 0;
}

/* ---- the copy ------------------------------------------------------------------------ */

/* The source's tables as the target has them (same names, same columns). */
static int copy_match(struct side *dst, struct copy_table *st, size_t sn, struct copy_table *dt,
		      size_t dn)
{
	for (size_t i = 0; i < sn; i++) {
		struct copy_table *d = table_find(dt, dn, st[i].name);
		if (!d)
			return side_fail(dst, -EPROTO, "the schemas differ: no table %s",
					 st[i].name);
		for (size_t j = 0; j < st[i].ncol; j++)
			if (!col_find(d, st[i].col[j].name))
				return side_fail(dst, -EPROTO,
						 "the schemas differ: table %s has no column %s",
						 st[i].name, st[i].col[j].name);
		if (d->ncol != st[i].ncol)
			return side_fail(dst, -EPROTO,
					 "the schemas differ: table %s has %zu columns, not %zu",
					 st[i].name, d->ncol, st[i].ncol);
	}
	if (dn != sn)
		return side_fail(dst, -EPROTO, "the schemas differ: %zu tables, not %zu", dn, sn);
	return 0;
}

static int newest_version(void)
{
	size_t n = 0;
	const struct db_migration *m = db_migrations(&n);
	return n ? m[n - 1].version : 0;
}

int db_copy(const char *from_url, const char *to_url, db_copy_progress_fn progress, void *arg,
	    struct db_copy_result *ret, char **ret_err)
{
	*ret = (struct db_copy_result){0};
	*ret_err = NULL;
	if (!db_copy_url_ok(from_url) || !db_copy_url_ok(to_url)) {
		_cleanup_free_ char *shown =
			db_copy_url_shown(db_copy_url_ok(from_url) ? to_url : from_url);
		*ret_err = xasprintf(
			"'%s': expected sqlite:PATH, postgresql://... or postgres://...", shown);
		return KILN_ECONFIG;
	}
	if (sodium_init() < 0) {
		*ret_err = xstrdup("libsodium cannot start");
		return -ENOSYS;
	}
	struct side src = {0}, dst = {0};
	struct copy_table *st = NULL, *dt = NULL;
	size_t sn = 0, dn = 0;
	size_t *order = NULL;
	struct side *bad = &src;
	int version = 0, want = newest_version();
	int r = side_open(&src, from_url, false);
	if (r >= 0)
		r = side_version(&src, &version);
	if (r >= 0 && version != want)
		r = side_fail(&src, -EPROTO,
			      "its schema is version %d, this kiln's is %d: run kiln "
			      "upgrade-master on it (or use the kiln it came from)",
			      version, want);
	if (r >= 0 && src.pg)
		r = pg_exec_ok(&src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	else if (r >= 0)
		r = lite_exec_ok(&src, "BEGIN");
	if (r >= 0)
		r = side_tables(&src, &st, &sn);
	int dversion = 0;
	if (r >= 0) {
		bad = &dst;
		r = side_open(&dst, to_url, true);
	}
	if (r >= 0)
		r = side_version(&dst, &dversion);
	if (r >= 0 && dversion > want)
		r = side_fail(&dst, -EPROTO,
			      "its schema is version %d, newer than this kiln's (%d)", dversion,
			      want);
	/* rows in it refuse the copy before its schema is touched */
	if (r >= 0)
		r = side_tables(&dst, &dt, &dn);
	for (size_t i = 0; r >= 0 && i < dn; i++) {
		_cleanup_free_ char *tn = quote_ident(dt[i].name);
		_cleanup_free_ char *sql = xasprintf("SELECT count(*) FROM %s", tn);
		int64_t rows = 0;
		r = side_int(&dst, sql, 0, NULL, &rows);
		if (r >= 0 && rows)
			r = side_fail(&dst, -EEXIST,
				      "it already holds data (table %s has %" PRId64
				      " rows): copy into an empty database",
				      dt[i].name, rows);
	}
	if (r >= 0 && dversion < want) {
		tables_free(dt, dn);
		dt = NULL;
		dn = 0;
		r = side_migrate(&dst);
		if (r >= 0)
			r = side_tables(&dst, &dt, &dn);
	}
	if (r >= 0)
		r = copy_match(&dst, st, sn, dt, dn);
	/* the copy: the target's columns (with their deferred marks), the source's rows */
	order = xcalloc(dn ? dn : 1, sizeof(*order));
	if (r >= 0 && dst.pg)
		r = pg_order(&dst, dt, dn, order);
	else
		for (size_t i = 0; i < dn; i++)
			order[i] = i;
	bool writing = r >= 0;
	if (r >= 0)
		r = side_write_begin(&dst, dt, dn);
	for (size_t k = 0; r >= 0 && k < dn; k++) {
		struct copy_table *t = &dt[order[k]];
		int64_t rows = 0;
		r = copy_table_rows(&src, &dst, t, &rows);
		if (r < 0 && src.err)
			bad = &src;
		if (r >= 0 && progress)
			progress(arg, t->name, rows, false);
		ret->rows += rows;
	}
	for (size_t k = 0; r >= 0 && k < dn; k++) {
		struct copy_table *t = &dt[order[k]];
		bool any = false;
		for (size_t j = 0; j < t->ncol; j++)
			any |= t->col[j].deferred;
		if (any)
			r = copy_deferred(&src, &dst, t);
		if (r < 0 && src.err)
			bad = &src;
	}
	if (r >= 0)
		r = side_write_finish(&dst, dt, dn);
	/* the check, before COMMIT: both sides read again (the target in its
	 * own transaction), with the source's columns */
	for (size_t i = 0; r >= 0 && i < sn; i++) {
		struct copy_table *t = &st[i];
		int64_t a = 0, b = 0;
		unsigned char ha[32], hb[32];
		bad = &src;
		r = side_digest(&src, t, &a, ha);
		if (r >= 0) {
			bad = &dst;
			r = side_digest(&dst, t, &b, hb);
		}
		if (r >= 0 && (a != b || memcmp(ha, hb, sizeof(ha))))
			r = side_fail(&dst, -EBADMSG,
				      "the check failed: table %s has %" PRId64
				      " rows here and %" PRId64 " in the source%s (nothing copied)",
				      t->name, b, a, a == b ? ", with different values" : "");
		if (r >= 0 && progress)
			progress(arg, t->name, b, true);
	}
	if (writing) {
		int c = side_commit(&dst, r >= 0);
		if (r >= 0 && c < 0) {
			bad = &dst;
			r = c;
		}
	}
	if (r >= 0) {
		ret->tables = sn;
		ret->version = version;
	} else {
		*ret_err =
			xstrdup(bad->err ? bad->err
					 : (src.err ? src.err : (dst.err ? dst.err : err_str(r))));
	}
	free(order);
	tables_free(st, sn);
	tables_free(dt, dn);
	side_close(&src);
	side_close(&dst);
	return r;
}
