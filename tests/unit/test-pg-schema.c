/*
 * migrations/pg/ (issue 14) against a real PostgreSQL server (pg-test.h):
 * pg_migrate() applies them, again is a no-op, several masters at once take
 * turns, a newer database is refused; and the schema they give matches
 * SQLite's from migrations/: the same tables and columns in the same order
 * (SQLite's pragma table_info against information_schema.columns), types
 * mapped (INTEGER bigint, REAL double precision, TEXT text, BLOB bytea),
 * NOT NULL and defaults, the same indexes (unique flag and columns),
 * triggers and foreign keys (with their ON DELETE), and the
 * blamelist trigger giving the same properties on both.
 */
#include "tap.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/db-internal.h"
#include "db/db.h"
#include "db/pg-conn.h"
#include "db/pg-migrate.h"
#include "pg-test.h"
#include "wait.h"

static uv_loop_t loop;
static struct db *lite; /* SQLite in memory, every migration applied */

/* ---- a sorted list of strings, to compare the two schemas ---- */

struct lines {
	char **v;
	size_t n, alloc;
};

static void lines_add(struct lines *l, char *s /* owned */)
{
	ARRAY_GROW(l->v, l->n + 1, l->alloc);
	l->v[l->n++] = s;
}

static int lines_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Prints what one side has and the other lacks; returns the count. */
static int lines_diff(struct lines *a, const char *an, struct lines *b, const char *bn)
{
	qsort(a->v, a->n, sizeof(char *), lines_cmp);
	qsort(b->v, b->n, sizeof(char *), lines_cmp);
	size_t i = 0, j = 0;
	int d = 0;
	while (i < a->n || j < b->n) {
		int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->v[i], b->v[j]);
		if (c == 0) {
			i++, j++;
		} else if (c < 0) {
			printf("# only in %s: %s\n", an, a->v[i++]);
			d++;
		} else {
			printf("# only in %s: %s\n", bn, b->v[j++]);
			d++;
		}
	}
	return d;
}

/* ---- SQLite's side ---- */

/* Every row of sql (on the in-memory database) as "col0|col1|...". */
static void lite_rows(const char *sql, struct lines *out)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(lite->h, sql, -1, &s, NULL) != SQLITE_OK) {
		TAP_FAIL("sqlite '%s': %s", sql, sqlite3_errmsg(lite->h));
		return;
	}
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char *row = xstrdup("");
		for (int i = 0; i < sqlite3_column_count(s); i++) {
			const unsigned char *t = sqlite3_column_text(s, i);
			char *n = xasprintf("%s%s%s", row, i ? "|" : "", t ? (const char *)t : "");
			free(row);
			row = n;
		}
		lines_add(out, row);
	}
	if (rc != SQLITE_DONE)
		TAP_FAIL("sqlite '%s': %s", sql, sqlite3_errmsg(lite->h));
	sqlite3_finalize(s);
}

/* ---- PostgreSQL's side ---- */

struct answer {
	bool done;
	int r;
	char *err;
	struct lines rows;
};

static void on_answer(void *arg, int r, const PGresult *res, const char *err)
{
	struct answer *a = arg;
	a->done = true;
	a->r = r;
	a->err = xstrdup_or_null(err);
	if (r == 0 && PQresultStatus(res) == PGRES_TUPLES_OK) {
		for (int i = 0; i < PQntuples(res); i++) {
			char *row = xstrdup("");
			for (int j = 0; j < PQnfields(res); j++) {
				char *n = xasprintf("%s%s%s", row, j ? "|" : "",
						    PQgetvalue(res, i, j));
				free(row);
				row = n;
			}
			lines_add(&a->rows, row);
		}
	}
}

static bool answer_done(void *arg)
{
	return ((struct answer *)arg)->done;
}

static void answer_release(struct answer *a)
{
	free(a->err);
	lines_free(&a->rows);
	memset(a, 0, sizeof(*a));
}

static struct pg_conn *conn_open(const char *url)
{
	struct pg_conn_opts o = {.conninfo = url};
	struct pg_conn *c = NULL;
	if (pg_conn_new(&loop, &o, &c) < 0)
		TAP_FAIL("pg_conn_new: %s", pg_conn_new_errmsg());
	return c;
}

static void conn_close(struct pg_conn *c)
{
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

/* Runs sql (several statements if multi) to its answer in a. */
static void pg_rows(struct pg_conn *c, const char *sql, bool multi, struct answer *a)
{
	answer_release(a);
	struct pg_query q = {.sql = sql, .multi = multi};
	int r = pg_conn_send(c, &q, on_answer, a);
	if (r < 0) {
		TAP_FAIL("pg_conn_send: %s", err_str(r));
		return;
	}
	if (!test_run_until(&loop, answer_done, a, TEST_GUARD_MS))
		TAP_FAIL("no answer to '%s'", sql);
	else if (a->r < 0)
		TAP_FAIL("'%.60s...': %s", sql, a->err);
}

struct migrated {
	bool done;
	int r, version;
	char *err;
};

static void on_migrated(void *arg, int r, int version, const char *err)
{
	struct migrated *m = arg;
	m->done = true;
	m->r = r;
	m->version = version;
	m->err = xstrdup_or_null(err);
}

static bool migrated_done(void *arg)
{
	return ((struct migrated *)arg)->done;
}

static int newest_version(void)
{
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	return m[n - 1].version;
}

/* A URL of the test server naming another database. */
static char *url_for(const char *dbname)
{
	const char *q = strchr(pg_test.url, '?');
	if (strncmp(pg_test.url, "postgresql:///kiln?", 19) || !q)
		return NULL;
	return xasprintf("postgresql:///%s%s", dbname, q);
}

static struct pg_conn *main_conn;

TEST(same_migration_numbers)
{
	size_t nl, np;
	const struct db_migration *l = db_migrations(&nl);
	const struct db_migration *p = pg_migrations(&np);
	CHECK_INT(np, nl);
	for (size_t i = 0; i < nl && i < np; i++) {
		CHECK_INT(p[i].version, l[i].version);
		CHECK_STR(p[i].name, l[i].name);
	}
}

TEST(migrate_fresh_then_again)
{
	struct migrated m = {0};
	CHECK_INT(pg_migrate(main_conn, on_migrated, &m), 0);
	CHECK(test_run_until(&loop, migrated_done, &m, TEST_GUARD_MS));
	if (m.r < 0)
		TAP_FAIL("pg_migrate: %s", m.err);
	CHECK_INT(m.version, newest_version());
	free(m.err);

	/* again: nothing pending, the same version */
	memset(&m, 0, sizeof(m));
	CHECK_INT(pg_migrate(main_conn, on_migrated, &m), 0);
	CHECK(test_run_until(&loop, migrated_done, &m, TEST_GUARD_MS));
	CHECK_INT(m.r, 0);
	CHECK_INT(m.version, newest_version());
	CHECK(m.err == NULL);
	free(m.err);

	struct answer a = {0};
	pg_rows(main_conn, "SELECT version FROM kiln_schema_version", false, &a);
	CHECK_INT(a.rows.n, 1);
	if (a.rows.n == 1)
		CHECK_INT(strtol(a.rows.v[0], NULL, 10), newest_version());
	answer_release(&a);
}

TEST(columns_match_sqlite)
{
	struct lines lt = {0}, tables = {0}, pt = {0};
	lite_rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
		  "'sqlite_%'",
		  &tables);
	for (size_t i = 0; i < tables.n; i++) {
		/* one line per column: position, type as PostgreSQL names it, NOT
		 * NULL (a primary key column is NOT NULL there), default */
		char *sql = xasprintf(
			"SELECT '%s.' || name || ' ' || CASE type WHEN 'INTEGER' THEN 'bigint' "
			"WHEN 'REAL' THEN 'double precision' WHEN 'TEXT' THEN 'text' WHEN 'BLOB' "
			"THEN 'bytea' ELSE type END || ' #' || (cid + 1) || CASE WHEN \"notnull\" "
			"OR pk > 0 THEN ' not null' ELSE '' END || coalesce(' default ' || "
			"dflt_value, '') FROM pragma_table_info('%s')",
			tables.v[i], tables.v[i]);
		struct lines cols = {0};
		lite_rows(sql, &cols);
		free(sql);
		for (size_t j = 0; j < cols.n; j++)
			lines_add(&lt, xstrdup(cols.v[j]));
		lines_free(&cols);
	}
	struct answer a = {0};
	pg_rows(main_conn,
		"SELECT table_name || '.' || column_name || ' ' || data_type || ' #' || "
		"ordinal_position || CASE is_nullable WHEN 'NO' THEN ' not null' ELSE '' END "
		/* '[]'::text as SQLite writes it: '[]'; '-1'::integer: -1 */
		"|| coalesce(' default ' || regexp_replace(regexp_replace(column_default, "
		"'::[a-z ]+$', ''), '^''(-?[0-9.]+)''$', '\\1'), '') "
		"FROM information_schema.columns WHERE table_schema = current_schema() "
		"AND table_name <> 'kiln_schema_version'",
		false, &a);
	for (size_t i = 0; i < a.rows.n; i++)
		lines_add(&pt, xstrdup(a.rows.v[i]));
	CHECK(lt.n > 100); /* the schema was read at all */
	CHECK_INT(lines_diff(&lt, "sqlite", &pt, "postgresql"), 0);
	printf("# %zu tables, %zu columns compared\n", tables.n, lt.n);
	answer_release(&a);
	lines_free(&lt);
	lines_free(&pt);
	lines_free(&tables);
}

TEST(indexes_and_triggers_match_sqlite)
{
	struct lines lt = {0}, pt = {0}, idx = {0};
	/* name, table, unique, partial, columns in order; not those that back a constraint
	 * (SQLite's sqlite_autoindex_*, PostgreSQL's *_pkey and *_key) */
	lite_rows("SELECT il.name, il.\"unique\", il.partial, t.name FROM sqlite_master t, "
		  "pragma_index_list(t.name) il "
		  "WHERE t.type = 'table' AND il.origin = 'c'",
		  &idx);
	for (size_t i = 0; i < idx.n; i++) {
		char name[128], uniq[8], partial[8], table[128];
		if (sscanf(idx.v[i], "%127[^|]|%7[^|]|%7[^|]|%127s", name, uniq, partial, table) !=
		    4) {
			TAP_FAIL("cannot read '%s'", idx.v[i]);
			continue;
		}
		char *sql = xasprintf("SELECT group_concat(name, ',') FROM (SELECT name FROM "
				      "pragma_index_info('%s') ORDER BY seqno)",
				      name);
		struct lines cols = {0};
		lite_rows(sql, &cols);
		free(sql);
		lines_add(&lt, xasprintf("index %s on %s%s%s (%s)", name, table,
					 !strcmp(uniq, "1") ? " unique" : "",
					 !strcmp(partial, "1") ? " partial" : "",
					 cols.n ? cols.v[0] : ""));
		lines_free(&cols);
	}
	struct lines trig = {0};
	lite_rows("SELECT 'trigger ' || name || ' on ' || tbl_name FROM sqlite_master WHERE type = "
		  "'trigger'",
		  &trig);
	for (size_t i = 0; i < trig.n; i++)
		lines_add(&lt, xstrdup(trig.v[i]));

	struct answer a = {0};
	pg_rows(main_conn,
		"SELECT 'index ' || c.relname || ' on ' || t.relname || CASE WHEN i.indisunique "
		"THEN ' unique' ELSE '' END || CASE WHEN i.indpred IS NOT NULL THEN ' partial' "
		"ELSE '' END || ' (' || array_to_string(ARRAY(SELECT a.attname FROM "
		"unnest(i.indkey) "
		"WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid "
		"AND a.attnum = k.attnum ORDER BY k.ord), ',') || ')' "
		"FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
		"JOIN pg_class t ON t.oid = i.indrelid "
		"WHERE t.relnamespace = current_schema()::regnamespace "
		"AND t.relname <> 'kiln_schema_version' "
		"AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
		"UNION ALL SELECT DISTINCT 'trigger ' || trigger_name || ' on ' || "
		"event_object_table FROM information_schema.triggers WHERE trigger_schema = "
		"current_schema()",
		false, &a);
	for (size_t i = 0; i < a.rows.n; i++)
		lines_add(&pt, xstrdup(a.rows.v[i]));
	CHECK(lt.n > 40);
	CHECK_INT(lines_diff(&lt, "sqlite", &pt, "postgresql"), 0);
	printf("# %zu indexes and triggers compared\n", lt.n);
	answer_release(&a);
	lines_free(&lt);
	lines_free(&pt);
	lines_free(&idx);
	lines_free(&trig);
}

TEST(foreign_keys_match_sqlite)
{
	struct lines lt = {0}, pt = {0};
	lite_rows("SELECT 'fk ' || t.name || '.' || f.\"from\" || ' -> ' || f.\"table\" || '.' || "
		  "f.\"to\" || ' on delete ' || f.on_delete FROM sqlite_master t, "
		  "pragma_foreign_key_list(t.name) f WHERE t.type = 'table'",
		  &lt);
	struct answer a = {0};
	pg_rows(main_conn,
		"SELECT 'fk ' || cl.relname || '.' || a.attname || ' -> ' || fcl.relname || '.' "
		"|| fa.attname || ' on delete ' || CASE k.confdeltype WHEN 'a' THEN 'NO ACTION' "
		"WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' "
		"ELSE 'SET DEFAULT' END || CASE WHEN cardinality(k.conkey) > 1 THEN ' (more "
		"columns)' ELSE '' END FROM pg_constraint k "
		"JOIN pg_class cl ON cl.oid = k.conrelid JOIN pg_class fcl ON fcl.oid = "
		"k.confrelid "
		"JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
		"JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1] "
		"WHERE k.contype = 'f' AND cl.relnamespace = current_schema()::regnamespace",
		false, &a);
	for (size_t i = 0; i < a.rows.n; i++)
		lines_add(&pt, xstrdup(a.rows.v[i]));
	CHECK(lt.n > 40);
	CHECK_INT(lines_diff(&lt, "sqlite", &pt, "postgresql"), 0);
	printf("# %zu foreign keys compared\n", lt.n);
	answer_release(&a);
	lines_free(&lt);
	lines_free(&pt);
}

/* The same rows on both: a build of a buildset with changes by three authors. */
static const char blame_sql[] =
	"INSERT INTO masters (id, name, active, last_active) VALUES (1, 'm', 1, 0);"
	"INSERT INTO builders (id, name) VALUES (1, 'b');"
	"INSERT INTO sourcestamps (id, created_at) VALUES (1, 0);"
	"INSERT INTO buildsets (id, submitted_at) VALUES (1, 0);"
	"INSERT INTO buildrequests (id, buildsetid, builderid, submitted_at) VALUES (1, 1, 1, 0);"
	"INSERT INTO changes (id, author, when_timestamp, sourcestampid) VALUES "
	"(1, 'zed', 0, 1), (2, 'ann', 0, 1), (3, 'zed', 0, 1), (4, 'Bob', 0, 1);"
	"INSERT INTO buildset_changes (buildsetid, changeid) VALUES (1, 1), (1, 2), (1, 3), (1, 4);"
	"INSERT INTO builds (id, number, builderid, buildrequestid, masterid, started_at, "
	"properties) VALUES (1, 1, 1, 1, 1, 0, '{\"a\": [1, \"Build\"]}');"
	"INSERT INTO builds (id, number, builderid, masterid, started_at) VALUES (2, 2, 1, 1, 0);"
	"SELECT properties FROM builds ORDER BY id";

TEST(blamelist_trigger_as_sqlite)
{
	struct lines lt = {0};
	char *err = NULL;
	/* all but the final SELECT, then the SELECT */
	char *ins = xstrdup(blame_sql);
	*strstr(ins, "SELECT properties") = '\0';
	if (sqlite3_exec(lite->h, ins, NULL, NULL, &err) != SQLITE_OK)
		TAP_FAIL("sqlite: %s", err);
	sqlite3_free(err);
	free(ins);
	lite_rows("SELECT properties FROM builds ORDER BY id", &lt);
	struct answer a = {0};
	pg_rows(main_conn, blame_sql, true, &a);
	CHECK_INT(lt.n, 2);
	CHECK_INT(a.rows.n, 2);
	for (size_t i = 0; i < 2 && i < lt.n && i < a.rows.n; i++) {
		json_t *x = json_loads(lt.v[i], 0, NULL), *y = json_loads(a.rows.v[i], 0, NULL);
		if (!x || !y || !json_equal(x, y))
			TAP_FAIL("build %zu: sqlite '%s', postgresql '%s'", i + 1, lt.v[i],
				 a.rows.v[i]);
		json_decref(x);
		json_decref(y);
	}
	json_t *want = json_loads("{\"a\": [1, \"Build\"], \"blamelist\": [[\"Bob\", \"ann\", "
				  "\"zed\"], \"Build\"]}",
				  0, NULL);
	json_t *got = a.rows.n ? json_loads(a.rows.v[0], 0, NULL) : NULL;
	CHECK(got && json_equal(got, want));
	json_decref(want);
	json_decref(got);
	answer_release(&a);
	lines_free(&lt);
}

TEST(masters_migrate_together)
{
	char *url = url_for("kiln_together");
	if (!url) {
		TAP_FAIL("cannot make a URL from '%s'", pg_test.url);
		return;
	}
	struct answer a = {0};
	pg_rows(main_conn, "DROP DATABASE IF EXISTS kiln_together", true, &a);
	pg_rows(main_conn, "CREATE DATABASE kiln_together", true, &a);
	enum { N = 3 };
	struct pg_conn *c[N];
	struct migrated m[N] = {0};
	for (int i = 0; i < N; i++) {
		c[i] = conn_open(url);
		CHECK_INT(pg_migrate(c[i], on_migrated, &m[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		CHECK(test_run_until(&loop, migrated_done, &m[i], TEST_GUARD_MS));
		if (m[i].r < 0)
			TAP_FAIL("master %d: %s", i, m[i].err);
		CHECK_INT(m[i].version, newest_version());
		free(m[i].err);
	}
	/* a database newer than this binary is refused */
	pg_rows(c[0], "UPDATE kiln_schema_version SET version = 9999", false, &a);
	struct migrated x = {0};
	CHECK_INT(pg_migrate(c[1], on_migrated, &x), 0);
	CHECK(test_run_until(&loop, migrated_done, &x, TEST_GUARD_MS));
	CHECK_INT(x.r, -EPROTO);
	CHECK(x.err && strstr(x.err, "9999 is newer"));
	free(x.err);
	for (int i = 0; i < N; i++)
		conn_close(c[i]);
	answer_release(&a);
	free(url);
}

TEST(no_server)
{
	struct pg_conn_opts o = {.conninfo = "host=/nonexistent/kiln-pg dbname=kiln",
				 .backoff_first_ms = 10000};
	struct pg_conn *c = NULL;
	CHECK_INT(pg_conn_new(&loop, &o, &c), 0);
	struct migrated m = {0};
	CHECK_INT(pg_migrate(c, on_migrated, &m), 0);
	CHECK(test_run_until(&loop, migrated_done, &m, TEST_GUARD_MS));
	CHECK_INT(m.r, -ENOTCONN);
	CHECK(m.err && strstr(m.err, "migration lock"));
	free(m.err);
	conn_close(c);
}

int main(int argc, char **argv)
{
	const char *why = pg_test_start(argc > 1 ? argv[1] : NULL);
	if (why)
		return tap_skip_all(why);
	atexit(pg_test_cleanup);
	uv_loop_init(&loop);
	if (db_open(NULL, "sqlite::memory:", "/tmp", &lite) < 0) {
		printf("# sqlite: %s\n", db_open_errmsg());
		return 1;
	}
	main_conn = conn_open(pg_test.url);
	RUN(same_migration_numbers);
	RUN(migrate_fresh_then_again);
	RUN(columns_match_sqlite);
	RUN(indexes_and_triggers_match_sqlite);
	RUN(foreign_keys_match_sqlite);
	RUN(blamelist_trigger_as_sqlite);
	if (!strncmp(pg_test.url, "postgresql:///kiln?", 19))
		RUN(masters_migrate_together);
	else
		printf("ok %d - masters_migrate_together # SKIP needs a URL of the form "
		       "postgresql:///kiln?...\n",
		       ++tap_n);
	RUN(no_server);
	conn_close(main_conn);
	db_close(lite);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	pg_test_cleanup();
	return tap_done();
}
