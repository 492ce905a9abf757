/*
 * One asynchronous PostgreSQL connection driven by a libuv loop: the
 * groundwork of the PostgreSQL backend (issue 14, docs/SCALING.md).  The
 * loop never waits on the server: connecting (PQconnectStart/PQconnectPoll),
 * sending (non-blocking mode, flushed when the socket is writable) and
 * reading (when it is readable) all happen from uv_poll callbacks.  Queries
 * are pipelined (libpq's pipeline mode): each is sent as soon as the loop
 * turn that queued it ends, without waiting for the answers of those before
 * it, and its answer comes back to its callback, in order.  Each query is
 * followed by its own sync point, so a failing query fails alone; BEGIN ...
 * COMMIT sent as separate queries still make one transaction.
 *
 * LISTEN/NOTIFY: channels given to pg_conn_listen() are listened on, again
 * after every reconnection, and notifications go to the on_notify callback.
 * When the server goes away, every query not yet answered fails with a clear
 * error and the connection is tried again with a capped exponential backoff
 * (with jitter) until pg_conn_free().
 *
 * Host names in the connection string (which libpq would resolve with a
 * blocking getaddrinfo on the loop) are resolved on libuv's thread pool
 * first and handed to libpq as hostaddr; the connect timeout covers both.
 *
 * Everything here runs on the loop's thread; callbacks are never called
 * from inside pg_conn_new(), pg_conn_send() or pg_conn_listen().
 * Internal to src/db: the PostgreSQL backend of db.h will be its user.
 */
#ifndef KILN_DB_PG_CONN_H
#define KILN_DB_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct pg_conn;

enum pg_conn_state {
	PG_CONN_CONNECTING, /* an attempt runs: queries wait in the queue */
	PG_CONN_READY,      /* connected: queries are sent at the end of the loop turn */
	PG_CONN_WAITING,    /* no connection until the backoff ends: queries are refused */
};

/*
 * A query's answer, called once per accepted query, on the loop:
 *   r == 0: res is its result (PGRES_TUPLES_OK or PGRES_COMMAND_OK), err NULL.
 *   KILN_EDB: the server refused it; res is the error result
 *     (PQresultErrorField(res, PG_DIAG_SQLSTATE)), err the server's message.
 *   -ECONNRESET: the connection was lost after it was sent: it may or may
 *     not have run; res NULL, err says why.
 *   -ENOTCONN: it was never sent (the connection attempt failed, or was
 *     lost before its turn): it did not run; res NULL, err says why.
 *   -ECANCELED: pg_conn_free() came first (it may have run); res NULL.
 * res and err are borrowed for the call.  The callback may queue further
 * queries and may call pg_conn_free() (which then takes effect once the
 * callback returns, failing the rest with -ECANCELED).
 */
typedef void (*pg_conn_result_cb)(void *arg, int r, const PGresult *res, const char *err);
/* A notification on a channel given to pg_conn_listen(); pid is the
 * sending session's backend (compare pg_conn_backend_pid() to skip one's
 * own).  Strings borrowed for the call. */
typedef void (*pg_conn_notify_cb)(void *arg, const char *channel, const char *payload, int pid);
/* The state changed: why is the reason of a move to PG_CONN_WAITING (the
 * error that ended the connection or the attempt), NULL otherwise. */
typedef void (*pg_conn_state_cb)(void *arg, enum pg_conn_state state, const char *why);

struct pg_conn_opts {
	const char *conninfo; /* "postgresql://..." or "key=value ..." (libpq's forms) */
	/* Caps and timings; 0 takes the default from common/limits.h
	 * (KILN_PG_MAX_QUEUE, KILN_PG_MAX_QUEUE_BYTES, KILN_PG_CONNECT_TIMEOUT_MS,
	 * KILN_PG_BACKOFF_FIRST_MS, KILN_PG_BACKOFF_MAX_MS). */
	size_t max_queue;       /* queries queued or in flight */
	size_t max_queue_bytes; /* their SQL and parameter bytes */
	unsigned connect_timeout_ms;
	unsigned backoff_first_ms, backoff_max_ms;
	pg_conn_notify_cb on_notify; /* may be NULL */
	pg_conn_state_cb on_state;   /* may be NULL */
	void *arg;                   /* for on_notify and on_state */
};

/* One query.  values[i] NULL is SQL NULL; lengths and formats may be NULL
 * (all parameters text, NUL-terminated); formats[i] == 1 makes value i
 * binary, lengths[i] bytes long.  Everything is copied by pg_conn_send(). */
struct pg_query {
	const char *sql;
	int nparams; /* 0..65535 */
	const char *const *values;
	const int *lengths;
	const int *formats;
	bool binary_result; /* results in binary format (default text) */
	/* Several statements separated by ';' and no parameters (a migration):
	 * sent with the simple query protocol, alone on the connection once
	 * every query before it is answered (the queries after it wait for its
	 * answer).  The statements run in one implicit transaction unless the
	 * text has its own BEGIN/COMMIT; the answer is the last statement's
	 * result, or the first error (nothing after it ran). */
	bool multi;
};

/*
 * Creates the connection and starts connecting on a later loop turn (state
 * PG_CONN_CONNECTING: queries may be queued at once).  Errors: KILN_ECONFIG
 * when opts->conninfo does not parse (pg_conn_new_errmsg() says why),
 * -EINVAL for a NULL conninfo.  *ret is owned by the caller: pg_conn_free().
 */
int pg_conn_new(uv_loop_t *loop, const struct pg_conn_opts *opts, struct pg_conn **ret);
/* Detail of this thread's last failed pg_conn_new() ("" if none). */
const char *pg_conn_new_errmsg(void);

/*
 * Closes: every query not yet answered gets -ECANCELED (before this
 * returns, or once the running callback returns when called from one),
 * the socket is closed, and the struct is freed once its uv handles are
 * closed (run the loop before uv_loop_close).  NULL-safe.
 */
void pg_conn_free(struct pg_conn *c);

/*
 * Queues a query; its answer goes to cb(arg, ...) on a later loop turn
 * (never before this returns).  Errors (cb is then never called):
 * -ENOTCONN while PG_CONN_WAITING (pg_conn_errmsg() says why), -ENOBUFS
 * when the queue holds max_queue queries or the copy would pass
 * max_queue_bytes, -EINVAL for a NULL sql or cb or nparams out of range,
 * -ECANCELED after pg_conn_free().
 */
int pg_conn_send(struct pg_conn *c, const struct pg_query *q, pg_conn_result_cb cb, void *arg);
/* pg_conn_send() of sql with nparams text parameters. */
int pg_conn_query(struct pg_conn *c, const char *sql, int nparams, const char *const *values,
		  pg_conn_result_cb cb, void *arg);

/*
 * Listens on channel from now on and after every reconnection
 * (notifications go to opts->on_notify).  channel: 1-63 characters of
 * [a-z0-9_], not starting with a digit (sent quoted as it is).  Errors:
 * -EINVAL for another name, -ENOBUFS past KILN_PG_MAX_LISTEN channels.
 * Listening twice on one channel is one listen.
 */
int pg_conn_listen(struct pg_conn *c, const char *channel);

enum pg_conn_state pg_conn_state(const struct pg_conn *c);
/* Why the last connection or attempt ended, or why the last LISTEN failed;
 * "" once a connection is up again (and before any failure). */
const char *pg_conn_errmsg(const struct pg_conn *c);
/* Queries accepted and not yet answered. */
size_t pg_conn_pending(const struct pg_conn *c);
/* The server process of the current connection, 0 when not connected. */
int pg_conn_backend_pid(const struct pg_conn *c);

#endif
