/*
 * The reporters' reads on PostgreSQL (issue 14): a build's interested
 * users (db_build_interested_users_async), SQLite's reads of
 * db-sqlite-users.c (the users of the changes the build's buildset builds,
 * then each extra by identifier, else by an identity's attr_data) in one
 * query.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"

/* $1 buildid, $2 the extras as a JSON array of strings: whether the build
 * exists, and the distinct uids ascending as a JSON array. */
#define PG_INTERESTED_USERS                                                                        \
	"SELECT EXISTS (SELECT 1 FROM builds WHERE id = $1::bigint), "                             \
	"COALESCE((SELECT json_agg(u.uid ORDER BY u.uid) FROM ("                                   \
	"SELECT cu.userid AS uid FROM builds b "                                                   \
	"JOIN buildrequests br ON br.id = b.buildrequestid "                                       \
	"JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid "                               \
	"JOIN change_users cu ON cu.changeid = bc.changeid WHERE b.id = $1::bigint "               \
	"UNION SELECT COALESCE((SELECT id FROM users WHERE identifier = e.x), "                    \
	"(SELECT userid FROM users_info WHERE attr_data = e.x ORDER BY userid LIMIT 1)) "          \
	"FROM jsonb_array_elements_text($2::jsonb) AS e(x) WHERE e.x <> '') u "                    \
	"WHERE u.uid IS NOT NULL), '[]')::text"

struct pg_users_call {
	int64_t buildid;
	db_ids_fn done;
	void *arg;
};

static void pg_users_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_users_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, 0, err ? err : "failed");
		free(call);
		return;
	}
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t")) {
		char why[64];
		snprintf(why, sizeof(why), "no build %" PRId64, call->buildid);
		call->done(call->arg, KILN_ENOTFOUND, NULL, 0, why);
		free(call);
		return;
	}
	json_t *list = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
	size_t n = json_array_size(list);
	int64_t *uids = xcalloc(n + 1, sizeof(*uids));
	size_t k = 0;
	json_t *v;
	size_t i;
	json_array_foreach(list, i, v)
	{
		if (json_is_integer(v))
			uids[k++] = json_integer_value(v);
	}
	json_decref(list);
	call->done(call->arg, 0, uids, k, NULL);
	free(uids);
	free(call);
}

int db_pg_interested_users(struct db *db, int64_t buildid, const char *const *extras,
			   size_t nextras, db_ids_fn done, void *arg)
{
	json_t *ex = json_array();
	for (size_t i = 0; i < nextras; i++)
		if (extras[i] && *extras[i])
			json_array_append_new(ex, json_string(extras[i]));
	char *exs = json_dumps(ex, JSON_COMPACT);
	json_decref(ex);
	if (!exs)
		return db_failf(db, -EINVAL, "an extra recipient is not UTF-8");
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, buildid);
	const char *values[] = {id, exs};
	struct pg_users_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_users_call){.buildid = buildid, .done = done, .arg = arg};
	struct pg_query q = {.sql = PG_INTERESTED_USERS, .nparams = 2, .values = values};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_users_on_rows, call);
	free(exs);
	if (r < 0) {
		free(call);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}
