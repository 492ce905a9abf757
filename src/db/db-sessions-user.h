/*
 * Ending a user's web sessions (slice "authhard"; docs/AUTH.md): when an
 * administrator changes a user's password, every session of that user is
 * deleted (its removal deletes them through the schema's ON DELETE CASCADE).
 */
#ifndef KILN_DB_SESSIONS_USER_H
#define KILN_DB_SESSIONS_USER_H

#include <stdint.h>

struct db;

/* Deletes every session of database user uid: the number deleted, or <0. */
int db_sessions_delete_user(struct db *db, int64_t uid);

#endif
