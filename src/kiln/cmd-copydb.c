/*
 * `kiln copy-db FROM TO` (issue 14): a master's data moved between SQLite
 * and PostgreSQL, checked row for row (db/db-copy.h does the work).  FROM
 * and TO are URLs or masters' base directories; a base directory stands
 * for master.lua's database and is locked as `kiln cleanupdb` locks it, so
 * no master runs on it meanwhile.  docs/OPERATING.md.
 */
#include "client/cmd.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db-copy.h"
#include "kiln/kiln.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void copydb_usage(FILE *f)
{
	fprintf(f, "usage: kiln copy-db FROM TO\n\n"
		   "Copies a master's whole database from FROM into TO, then reads both again\n"
		   "and compares them row for row.  FROM and TO are each a database URL,\n"
		   "sqlite:PATH or postgresql://... (postgres://...), or a master's base\n"
		   "directory (its master.lua's database; no master may be running on it).\n"
		   "FROM must be at this kiln's schema version (kiln upgrade-master); TO gets\n"
		   "the schema if it has none and must hold no rows.  The copy is one\n"
		   "transaction on TO: a failure leaves TO as it was.\n"
		   "Exit status: 0 copied and identical, 1 failed, 2 usage.\n");
}

/* The URL an argument stands for (owned), or NULL (message printed).
 * *lock_fd: a base directory's lock, or -1. */
static char *copydb_url(const char *arg, int *lock_fd)
{
	*lock_fd = -1;
	if (db_copy_url_ok(arg))
		return xstrdup(arg);
	struct stat sb;
	_cleanup_free_ char *lua = xasprintf("%s/master.lua", arg);
	if (stat(arg, &sb) < 0 || !S_ISDIR(sb.st_mode) || access(lua, R_OK) < 0) {
		fprintf(stderr,
			"kiln copy-db: '%s' is neither a database URL (sqlite:PATH, "
			"postgresql://...) nor a master's base directory (with a master.lua)\n",
			arg);
		return NULL;
	}
	struct config *cfg = NULL;
	_cleanup_free_ char *err = NULL;
	if (config_load(arg, &cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err ? err : "master.lua: cannot load");
		return NULL;
	}
	char *url = NULL;
	const char *u = cfg->db_url;
	if (!strncmp(u, "sqlite:", 7) && u[7] != '/' && strcmp(u, "sqlite::memory:"))
		url = xasprintf("sqlite:%s/%s", arg, u + 7);
	else if (db_copy_url_ok(u) && strcmp(u, "sqlite::memory:"))
		url = xstrdup(u);
	else
		fprintf(stderr, "kiln copy-db: %s/master.lua's database '%s' cannot be copied\n",
			arg, u);
	config_free(cfg);
	if (!url)
		return NULL;
	int fd = kiln_lock_basedir("copy-db", arg, false, NULL);
	if (fd == -1) {
		free(url);
		return NULL;
	}
	*lock_fd = fd;
	return url;
}

static void copydb_progress(void *arg, const char *table, int64_t rows, bool checked)
{
	(void)arg;
	if (!checked) {
		printf("%s: %" PRId64 " rows\n", table, rows);
		fflush(stdout);
	}
}

static int copydb_run(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		copydb_usage(stdout);
		return 0;
	}
	if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
		copydb_usage(stderr);
		return 2;
	}
	int from_lock = -1, to_lock = -1;
	_cleanup_free_ char *from = copydb_url(argv[1], &from_lock);
	_cleanup_free_ char *to = from ? copydb_url(argv[2], &to_lock) : NULL;
	int rc = 1;
	if (from && to && !strcmp(from, to)) {
		_cleanup_free_ char *shown = db_copy_url_shown(from);
		fprintf(stderr, "kiln copy-db: FROM and TO are the same database (%s)\n", shown);
	} else if (from && to) {
		struct db_copy_result res;
		_cleanup_free_ char *err = NULL;
		if (db_copy(from, to, copydb_progress, NULL, &res, &err) < 0) {
			fprintf(stderr, "kiln copy-db: %s\n", err);
		} else {
			printf("copied %" PRId64 " rows in %zu tables (schema version %d); checked "
			       "row for row: identical\n",
			       res.rows, res.tables, res.version);
			rc = 0;
		}
	}
	if (from_lock >= 0)
		close(from_lock);
	if (to_lock >= 0)
		close(to_lock);
	return rc;
}

const struct cmd cmd_copydb = {
	.name = "copy-db",
	.usage = "FROM TO",
	.summary = "copy a master's database between SQLite and PostgreSQL, checked row for row",
	.run = copydb_run,
	.own_help = true,
};
