/*
 * db-sessions-user.h on SQLite (slice "authhard"): one indexed-by-scan
 * DELETE on sessions (at most DB_SESSIONS_MAX rows).
 */
#include "db/db-sessions-user.h"
#include "db/db-internal.h"

#include "common/err.h"

static int sessions_delete_user(struct db *db, int64_t uid)
{
	_cleanup_stmt_ sqlite3_stmt *d = db_stmt_dynamic(db, "DELETE FROM sessions WHERE uid = ?1");
	if (!d)
		return KILN_EDB;
	sqlite3_bind_int64(d, 1, uid);
	return db_step_done(db, d, "delete a user's sessions");
}

int db_sessions_delete_user(struct db *db, int64_t uid)
{
	int r = WRITE1(sessions_delete_user(db, uid));
	return r < 0 ? r : sqlite3_changes(db->h);
}
