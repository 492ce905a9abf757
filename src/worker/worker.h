/*
 * kiln-worker's protocol engine: answers the master's requests (PROTOCOL.md
 * §3.5), runs remote commands and streams their updates.  It knows nothing
 * of WebSockets: the connection (conn.c) feeds it whole messages and gives
 * it a send function, and unit tests do the same with a fake transport.
 */
#ifndef KILN_WORKER_WORKER_H
#define KILN_WORKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "proto/msg.h"
#include "proto/session.h"
#include "worker/lines.h"
#include "worker/retain.h"

#define WORKER_FLUSH_MS 100 /* output reaches the master within this (Buildbot: 5 s) */
#define WORKER_VERSION "3.7.0-kiln-" KILN_VERSION

struct worker_host {
	/* Queues one encoded message for the master; < 0 if not connected. */
	int (*send)(void *ud, const void *data, size_t len);
	/* The master sent `shutdown` (already answered): stop the process soon. */
	void (*shutdown)(void *ud);
	/* Optional, all three or none (then a message built in place goes
	 * through send: one copy more).  msg_new: a message buffer with cap
	 * bytes at *ret_payload for the caller to fill; msg_send queues its
	 * first len bytes and takes the buffer (freed on failure too); msg_free
	 * drops one never sent. */
	void *(*msg_new)(void *ud, size_t cap, unsigned char **ret_payload);
	int (*msg_send)(void *ud, void *msg, size_t len);
	void (*msg_free)(void *ud, void *msg);
};

struct worker_settings {
	size_t max_line_length; /* default 4096 */
	size_t buffer_size;     /* default 65536: max weight of one update */
};

struct cmd;
struct worker {
	uv_loop_t *loop;                /* borrowed */
	char *basedir;                  /* owned, absolute */
	const struct worker_host *host; /* borrowed */
	void *host_ud;
	bool send_environ; /* report the whole environment in get_worker_info */
	struct worker_settings settings;
	struct proto_session *session; /* owned; replaced per connection */
	bool connected;
	struct cmd *cmds; /* running commands (owned, list) */
	bool paused;      /* output reading paused for backpressure */
	size_t sendq;     /* bytes the transport has queued */
	/* re-attach (docs/PROTOCOL.md "Re-attach"): grace_ms is what the
	 * master's kiln_reattach said for this connection (0: Buildbot's
	 * semantics, commands die with the connection); resync: commands are
	 * held across a drop, their messages buffered in retain until the next
	 * master's kiln_reattach, or killed when grace_timer fires first */
	uint64_t grace_ms;
	bool resync;
	bool retain_overflow; /* the buffer passed its cap while held: give them up */
	struct retain retain;
	uv_timer_t *grace_timer; /* owned */
	/* worker_free() was called while commands still waited for their
	 * handles to close (nclosing of them): the last to close frees w, so
	 * that a command never outlives the worker it points to */
	bool freed;
	size_t nclosing;
};

/* Creates the engine for basedir (made absolute).  No allocation on the loop yet. */
struct worker *worker_new(uv_loop_t *loop, const char *basedir, const struct worker_host *host,
			  void *host_ud);
/* Kills and forgets every command (no more sends), then frees (once the
 * last command's handles have closed); run the loop afterwards so handles
 * close.  NULL-safe. */
void worker_free(struct worker *w);

/* A new connection is up: fresh seq numbers, default settings. */
void worker_connected(struct worker *w);
/* The connection is gone: pending requests fail, running commands are killed
 * and will send nothing more (Buildbot's worker does the same), unless the
 * master granted a re-attach grace: then the commands that can be held keep
 * running, their messages buffered, until a master's kiln_reattach or the
 * grace's end. */
void worker_disconnected(struct worker *w);
/* Handles one incoming message.  Returns 0, or KILN_EPROTO if it was not a
 * valid message (the caller may log it; Buildbot drops such messages). */
int worker_handle_message(struct worker *w, const void *data, size_t len);
/* The transport's queue size changed: pauses or resumes command output. */
void worker_sendq_changed(struct worker *w, size_t queued_bytes);
size_t worker_ncmds(const struct worker *w);
/* Commands with a re-attach record (running or with messages undelivered). */
size_t worker_nheld(const struct worker *w);

/* ---- for commands (cmd-*.c) ------------------------------------------------- */

struct cmd_type {
	const char *name;
	/* Parses args and starts.  Returns 0 (the command will call cmd_finish,
	 * possibly already has) or < 0 with *ret_err set (owned): the master gets
	 * is_exception and the command is dropped without updates. */
	int (*start)(struct cmd *c, const msgpack_object *args, char **ret_err);
	/* Must lead to cmd_finish; NULL if the command cannot be interrupted. */
	void (*interrupt)(struct cmd *c, const char *why);
	/* Stop/restart producing output (backpressure); may be NULL. */
	void (*pause)(struct cmd *c, bool paused);
	/* The connection is gone: stop at once (cmd_finish still expected). */
	void (*abort)(struct cmd *c);
	/* Frees c->priv (all its handles closed); may be NULL. */
	void (*free_priv)(struct cmd *c);
};

struct cmd {
	struct worker *w; /* borrowed */
	const struct cmd_type *type;
	char *id;           /* owned: command_id */
	char *builder;      /* owned, may be NULL */
	struct batch batch; /* pending update items */
	uv_timer_t flush_timer;
	uint64_t start_ms; /* uv_now at start */
	bool finished;     /* cmd_finish done */
	bool detached;     /* connection lost: send nothing */
	bool interrupted;
	struct retain_cmd *rc; /* its re-attach record, NULL when it has none */
	void *priv;            /* owned by the command type (the process helper's for
				* commands using cmd_spawn_simple) */
	void *data;            /* owned by the command type, beside priv */
	struct cmd *next;
};

/* Adds to the pending update, arming the 100 ms flush.  Values as in lines.h. */
void cmd_add_line(struct cmd *c, const char *key, const char *logname, const char *line, size_t len,
		  double t);
void cmd_add_text(struct cmd *c, const char *key, const char *text);
void cmd_add_int(struct cmd *c, const char *key, int64_t v);
void cmd_add_double(struct cmd *c, const char *key, double v);
/* -E2BIG (nothing added) if the value is over KILN_MAX_WS_FRAME. */
BUF_MUST_CHECK int cmd_add_packed(struct cmd *c, const char *key, const void *packed, size_t len);
/* Sends the pending update now. */
void cmd_flush(struct cmd *c);
/* Seconds since the command started. */
double cmd_elapsed(const struct cmd *c);
/* Flushes, sends `complete` (failure NULL = success, else its text) and
 * removes the command; it is freed on a later loop turn. */
void cmd_finish(struct cmd *c, const char *failure);
/*
 * Sends a request for the command (file transfers): packs op, seq_number,
 * command_id and nfields more pairs via pack(e, ud) then sends; fn gets the
 * reply (or an error if the connection is lost).  Returns 0 or < 0 (not
 * connected, too many pending): then fn is not called.
 */
int cmd_request(struct cmd *c, const char *op, uint32_t nfields,
		void (*pack)(struct proto_enc *e, void *ud), proto_reply_fn fn, void *ud);
/*
 * An upload's write without copying its data: reads up to want bytes of fd
 * straight into the message {op, seq_number, command_id, args: <bin>} (the
 * host's buffer) and sends it; fn gets the reply as with cmd_request().
 * Returns the bytes read and sent (> 0), 0 at the end of the file, or < 0
 * (the read's -errno, or not connected, too many pending): on <= 0 nothing
 * was sent and fn is not called.
 */
ssize_t cmd_request_read(struct cmd *c, const char *op, int fd, size_t want, proto_reply_fn fn,
			 void *ud);

/* The command table (worker.c); cmd-*.c define the entries. */
extern const struct cmd_type cmd_shell, cmd_mkdir, cmd_rmdir, cmd_cpdir, cmd_stat, cmd_glob,
	cmd_listdir, cmd_rmfile, cmd_upload_file, cmd_upload_directory, cmd_download_file;

/* Helpers shared by commands. */
/* A str arg copied (NULL if absent or not a str). */
char *cmd_arg_str(const msgpack_object *args, const char *key);
/* Runs an argv in the background like a shell command without its headers
 * (rm -rf, cp -R): output goes to stdout/stderr updates; on_done gets the rc. */
int cmd_spawn_simple(struct cmd *c, char **argv, const char *cwd, double timeout_s,
		     void (*on_done)(struct cmd *c, int rc));
/* cmd_type hooks for commands that use cmd_spawn_simple. */
void cmd_simple_interrupt(struct cmd *c, const char *why);
void cmd_simple_pause(struct cmd *c, bool paused);
void cmd_simple_abort(struct cmd *c);
void cmd_simple_release(struct cmd *c);

#endif
