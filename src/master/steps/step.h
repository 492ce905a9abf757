/*
 * Build steps: the interface every kind of step implements, and the
 * services a kind uses while it runs (step.c).
 *
 * A step is an asynchronous sequence of remote commands and master-side
 * actions.  build.c decides which step runs next; step_begin() stores the
 * step's rows (the step, its "stdio" log) and calls its kind's start().
 * From there the kind runs remote commands with step_command(), writes
 * logs, sets properties and adds URLs, and ends the step with
 * step_finish(), exactly once, at once or from a later callback.  The build
 * then combines the step's results with Buildbot's rules (build.c) and
 * starts the next one.
 *
 * Adding a kind of step touches one new file here, steps/step-NAME.c
 * defining `const struct step_kind step_kind_NAME`, one line in
 * step_kinds[] (step.c), the kind's config side in
 * src/config/config-step-NAME.c (one line in that folder's table),
 * docs/CONFIG.md and the tests (docs/ARCHITECTURE.md, "Steps").
 *
 * Everything runs on the master's loop thread.
 */
#ifndef KILN_STEP_H
#define KILN_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/buf.h"
#include "config/config.h"
#include "db/db.h"

struct build;
struct logmask;
struct proto_enc;
struct rcmd;
struct rcmd_ops;
struct rcmd_answer;
struct step;
struct step_logfile;

struct step_kind {
	enum config_step_kind kind;
	const char *name; /* as master.lua declares it: "shell" */
	/* The step's description while it runs ("'make test'"); owned by the
	 * caller.  NULL: the kind's name in quotes. */
	char *(*describe)(const struct step *st);
	/* Starts the step; it ends with step_finish(). */
	void (*start)(struct step *st);
	/* A stop was requested.  NULL: the running remote command is
	 * interrupted (step_interrupt) and the step ends when it does. */
	void (*interrupt)(struct step *st, const char *why);
	/* Frees st->priv; NULL when the kind keeps none. */
	void (*free)(struct step *st);
};

/* A running step. */
struct step {
	struct build *b;
	const struct config_step *cfg; /* borrowed: the builder's config */
	const struct step_kind *kind;
	int64_t stepid;
	int64_t logid;        /* its "stdio" log */
	struct logmask *mask; /* owned: stdio's secret masker, made on first output */
	char *desc;           /* owned: describe()'s text */
	/* the remote command running, if any (step_command) */
	struct rcmd *cmd;
	const struct step_cmd_ops *cmd_ops;
	const struct step_upload_ops *upload_ops; /* step_command_upload()'s */
	int rc;                                   /* its exit code, once have_rc */
	bool have_rc;
	bool interrupting; /* an interrupt was sent, the timer runs */
	bool finished;
	bool fixed_desc; /* description = ... given: step_set_description() keeps it */
	void *priv;      /* the kind's own state */
	/* slice "logfiles": the logs of cfg->logfiles, in its order (step.c) */
	struct step_logfile *logfiles; /* owned; rendered at step start, NULL without */
	bool logfiles_open;            /* their logs made (the first shell command) */
	unsigned logfiles_refused;     /* `log` updates refused (undeclared names) */
	/* owned: numbers = { } (slice "measure", step-numbers.c), or NULL */
	struct step_numbers *numbers;
};

/* The table of kinds (step.c); NULL for a kind without one. */
const struct step_kind *step_kind_of(enum config_step_kind kind);

/* ---- used by build.c ---- */
/* Stores the step's rows and starts it; on failure it ends at once
 * (EXCEPTION).  The build learns the end through build_step_ended(). */
void step_begin(struct build *b, const struct config_step *s);
/* A stop was requested while st runs. */
void step_stop(struct step *st, const char *why);
/* The build goes away while st runs: forgets its command, frees it. */
void step_free(struct step *st);
/* A database write failed during st: its command is given up, it ends
 * EXCEPTION (on a later loop turn when a command runs). */
void step_db_failed(struct step *st);

/* ---- services for the kinds ---- */
/* How a kind hears about its remote command.  The default update handling
 * comes first: stdout/stderr/header go to the stdio log (masked), rc to
 * st->rc; update (may be NULL) then sees every key, handled or not. */
struct step_cmd_ops {
	void (*update)(struct step *st, const char *key, const msgpack_object *value);
	/* The command ended: status 0, KILN_EPROTO (the worker refused or
	 * failed it, failure says why), -ECONNRESET (connection lost),
	 * KILN_ETIMEOUT (the interrupt was not confirmed in time), other
	 * negative errors.  st->cmd is NULL again. */
	void (*done)(struct step *st, int status, const char *failure);
};
/* How a kind hears about the file a command uploads (upload_file) as it
 * arrives.  Each call must answer with rcmd_answer_send(a, ...) once
 * (engine-int.h: 0 takes the chunk, an error stops the worker's upload);
 * data is borrowed for the call. */
struct step_upload_ops {
	void (*write)(struct step *st, const char *data, size_t len, struct rcmd_answer *a);
	void (*close_writer)(struct step *st, struct rcmd_answer *a);
};
/* Runs remote command name with args (a map of nargs keys, consumed:
 * the caller releases args).  0, or a negative error with a line in the
 * log (the command did not start; ops are not called). */
int step_command(struct step *st, const char *name, struct proto_enc *args, uint32_t nargs,
		 const struct step_cmd_ops *ops);
/* Runs remote command name whose messages go to an owner of their own
 * (rops with ud: a file transfer, master/transfer.h), not to the stdio
 * log.  Interrupts work as for step_command(); ops->done is called only
 * when the step gives the command up (an interrupt not confirmed in time:
 * KILN_ETIMEOUT), after which rops will not be called and the owner must
 * be ended by the caller.  The owner's complete calls step_command_ended().
 * 0, or a negative error with a line in the log (rops not called). */
int step_command_owned(struct step *st, const char *name, struct proto_enc *args, uint32_t nargs,
		       const struct rcmd_ops *rops, void *ud, const struct step_cmd_ops *ops);
/* The command of step_command_owned() completed: st->cmd is NULL again. */
void step_command_ended(struct step *st);
/* The same for a command that uploads a file to the master (upload_file):
 * its chunks go to uops.  Without it, chunks are refused.  Its rc is kept
 * in st->rc without a "program finished" line in the log (a file read for
 * the step, not the step's program). */
int step_command_upload(struct step *st, const char *name, struct proto_enc *args, uint32_t nargs,
			const struct step_cmd_ops *ops, const struct step_upload_ops *uops);
/* The results of a step whose command did not start (step_command() < 0):
 * RETRY when the worker is gone, else EXCEPTION. */
int step_unstarted_results(const struct step *st);
/* The results of a command that ended with status, when that alone
 * decides them: RETRY or CANCELLED for a lost connection, CANCELLED for a
 * stop, EXCEPTION for a failure or a missing exit code (each with a line in
 * the log).  Returns -1 when the command ran to its exit code (st->rc) and
 * the kind decides. */
int step_command_results(struct step *st, int status, const char *failure);
/* The keys of a remote command's update that every command handles alike,
 * for an owner of its own (step_command_owned) and for step_command():
 * stdout, stderr and header go to the stdio log (masked), rc to st->rc and
 * st->have_rc, with the header line "program finished with exit code N"
 * when rc_line.  true when key was one of those (handled), false for any
 * other key. */
bool step_cmd_update_common(struct step *st, const char *key, const msgpack_object *value,
			    bool rc_line);
/* Sends an interrupt for the running command and gives it up if the
 * worker does not confirm it in time. */
void step_interrupt(struct step *st, const char *why);

/* A shell command's args, for step_command(st, "shell", ...): argv (NULL-
 * terminated) or, when argv is NULL, command run by the shell; in the
 * step's workdir (joined with subdir, may be NULL) under the builder's
 * directory; the step's env over the builder's (rendered), the build's
 * KILN_* variables, stdin_text (may be NULL), the step's logfiles.  The
 * first call makes the step's logfiles' logs (all of them, or with
 * lazylogfiles none: each is made at its first text); `log` updates of the
 * command go to them, masked, and a name the step did not declare is
 * refused with a line in stdio.  0, or a negative error with a line in the
 * log (a path past the cap, an env value that did not render, a log that
 * could not be added): the step should end EXCEPTION. */
int step_shell_args(struct step *st, char *const *argv, const char *command, const char *subdir,
		    const char *stdin_text, size_t stdin_len, struct proto_enc *args,
		    uint32_t *ret_nargs);
/* The same in dir, a path relative to the builder's directory (NULL: the
 * step's workdir), joined with subdir. */
int step_shell_args_in(struct step *st, const char *dir, char *const *argv, const char *command,
		       const char *subdir, const char *stdin_text, size_t stdin_len,
		       struct proto_enc *args, uint32_t *ret_nargs);
/* The worker-side absolute path of dir (relative to the builder's
 * directory; NULL: the step's workdir) joined with sub (may be NULL);
 * NULL with a line in the log when it is too long.  Owned. */
char *step_worker_path(struct step *st, const char *dir, const char *sub);
/* Packs one key of a command's args map and counts it. */
void step_pack_key(struct proto_enc *a, const char *key, uint32_t *n);

/* Renders r (config.h struct config_rstr) with the build's properties
 * into *ret (owned; NULL when r is an unset value).  what names the key in
 * messages ("command").  0, or a negative error with a line in the log
 * saying what failed: the step should then end EXCEPTION. */
int step_render(struct step *st, const struct config_rstr *r, const char *what, char **ret);
/* The same keeping the JSON value (a function may return a list). */
int step_render_json(struct step *st, const struct config_rstr *r, const char *what, json_t **ret);
/* A rendered scalar as the text a command gets: strings as they are,
 * numbers and booleans as Python's str() writes them (Buildbot's
 * rendering). Owned. */
char *step_json_text(const json_t *v);
/* The usual results of a command step from its exit code: the step's
 * decode_rc when it has one (a code not in it: FAILURE), else 0 SUCCESS
 * and anything else FAILURE. */
int step_rc_results(const struct step *st);

/* Ends the step with results (db.h RESULTS_*); exactly once. */
void step_finish(struct step *st, int results);
/* Output into the stdio log: stream 'o', 'e' or 'h'; secrets masked. */
void step_log(struct step *st, char stream, const char *text, size_t len);
/* A header line of the master's own into stdio. */
void step_log_header(struct step *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds another log to the step (type 's' stream, 't' text, 'h' html).
 * 0 or a negative error (the build then ends EXCEPTION). */
int step_add_log(struct step *st, const char *name, char type, int64_t *ret_logid);
/* Appends text (lines without their stream character, masked) to a log
 * made by step_add_log(), and finishes it. */
int step_log_text(struct step *st, int64_t logid, const char *text, size_t len);
int step_log_close(struct step *st, int64_t logid);
/* Replaces the step's description (st->desc, its state string while it
 * runs and the base of its final one), e.g. once the command is rendered. */
void step_set_description(struct step *st, const char *desc);
/* The step's state string while it runs. */
void step_set_state(struct step *st, const char *text);
/* A build property set by the step (consumes value). */
void step_set_property(struct step *st, const char *name, json_t *value, const char *source);
/* Records number name = value for the step's build (numbers.h: stored
 * as a series of the builder, its regression threshold checked) and
 * queues it to the time-series store when metrics_push is set (tsdb.h).
 * 0, or a negative error with a line in the log: -EINVAL (a bad name or
 * value: the step goes on), KILN_EDB (the build then ends EXCEPTION). */
int step_record_number(struct step *st, const char *name, double value);
/* A link shown with the step (Buildbot's step urls). */
void step_add_url(struct step *st, const char *name, const char *url);

/* ---- shared by the command kinds (step-shell.c) ---- */
/* Renders the step's command (argv or string), its env and workdir and
 * starts it with ops.  0, or a negative error after which the step has
 * ended (EXCEPTION, or RETRY when the worker is gone). */
int step_shell_run(struct step *st, const struct step_cmd_ops *ops);
/* The description of a command step before it is rendered. */
char *step_shell_describe(const struct step *st);
/* The step's command rendered: *ret_argv (NULL-terminated, owned) or
 * *ret_cmd (owned).  0, or a negative error with a line in the log. */
int step_shell_render(struct step *st, char ***ret_argv, char **ret_cmd);

/* ---- source steps (source.c) ----
 * Shared by every source step, git's included: a "shell" command of argv
 * (argv[0] the program, NULL-terminated, at most SOURCE_MAX_ARGV) in dir
 * (relative to the builder's directory; NULL: the step's workdir) joined
 * with subdir (may be NULL), and a file-system command (rmdir, cpdir,
 * stat) on worker paths: key1 "paths" packs path1 as a list; key2 may be
 * NULL.  Both return 0, or a negative error after which the step has
 * ended (EXCEPTION, or RETRY when the worker is gone). */
int source_shell(struct step *st, const char *dir, const char *const *argv, const char *subdir,
		 const char *stdin_text, size_t stdin_len, const struct step_cmd_ops *ops);
int source_fs_cmd(struct step *st, const char *name, const char *key1, const char *path1,
		  const char *key2, const char *path2, const struct step_cmd_ops *ops);
/* Renders the step's repourl and branch, then takes the branch and
 * revision of the build's sourcestamp of the step's codebase (Buildbot's
 * getSourceStamp(codebase); none: the step's own values).  An empty branch
 * is NULL.  *ret_* owned, NULL when unset; ret_default (may be NULL) gets
 * the step's own branch.  0, or -1 with a line in the log (a renderable
 * failed, a branch or revision starts with '-'): the step should end
 * EXCEPTION. */
int source_render(struct step *st, char **ret_repourl, char **ret_branch, char **ret_default,
		  char **ret_revision);
/* The try patch of the sourcestamp of the step's codebase (Buildbot
 * applies only its own codebase's), read as the build started
 * (build_patch): 1 and *ret, 0 when that sourcestamp has none or the build
 * has no sourcestamp of that codebase. */
int source_patch(struct step *st, struct db_patch_data *ret);
/* Buildbot's "patch" log: the diff a build applies, as a text log of the
 * step (secrets masked); a failure to store it ends the build as any log's
 * does. */
void source_patch_log(struct step *st, const char *body, size_t len);
/* Sets got_revision = rev (len bytes) with source and ends the step
 * SUCCESS, as Buildbot's updateSourceProperty: a step with a codebase adds
 * { CODEBASE = rev } to the dict the build's earlier source steps made, a
 * step without one sets a string (source_revision_merge). */
void source_finish_revision(struct step *st, const char *source, const char *rev, size_t len);
/* got_revision's next value (a new reference) from old, its value so far
 * (borrowed; NULL when unset): a dict old is copied with codebase = rev
 * added; otherwise rev for codebase "", else a new dict { codebase = rev }.
 * Buildbot asserts when steps with and without a codebase meet; Kiln keeps
 * both: a string old (the codebase-less step's) goes under the key "" of
 * the dict, and a codebase-less step after a dict sets its "" key. */
json_t *source_revision_merge(json_t *old, const char *codebase, const char *rev, size_t len);

/* ---- source steps but git (source.c) ----
 * Adding a VCS: a steps/step-NAME.c with a struct source_vcs and a
 * step_kind whose start() is source_start(st, &its_vcs). */
#define SOURCE_MAX_ARGV 32 /* arguments of one VCS command */
enum source_phase {
	SOURCE_COPY_RM,  /* method copy: rmdir WORKDIR (a failure is fine) */
	SOURCE_VCS,      /* the VCS's own sequence (source_vcs.next) */
	SOURCE_COPY,     /* method copy: cpdir source WORKDIR */
	SOURCE_PATCH,    /* the try patch */
	SOURCE_REVISION, /* the command printing got_revision */
};
struct source {
	const struct source_vcs *vcs;
	enum source_phase phase;
	int state; /* the VCS's own, 0 when its sequence starts */
	/* rendered, or from the build's sourcestamp; owned, NULL when unset */
	char *repourl, *branch, *revision;
	char *default_branch;          /* the step's own branch, rendered */
	char *user, *password, *extra; /* owned; the VCS's (svn) */
	const char *dir;               /* where the VCS runs: the workdir, or "source" (copy) */
	bool full;                     /* mode full */
	enum config_source_method method;
	bool copy;      /* method copy, until the copy is made */
	bool updatable; /* the VCS's to set */
	struct db_patch_data patch;
	struct buf out; /* stdout of the command after source_collect() */
	bool collect, out_overflow;
};
struct source_vcs {
	const char *tool;   /* the program, as logged: "hg" */
	const char *option; /* an option every command takes first ("--verbose"), or NULL */
	const char *source; /* got_revision's property source: "Mercurial" */
	/* After rendering: the VCS's own settings into s (may change
	 * s->repourl).  0, or a negative error with a line in the log. */
	int (*prepare)(struct step *st);
	/* Phase SOURCE_VCS: starts the next command from s->state (0 first;
	 * later st->rc is the last command's exit code) or ends the
	 * checkout with source_checked_out() or the step with step_finish(). */
	void (*next)(struct step *st);
	/* Starts the command printing the revision (after source_collect()),
	 * or calls source_got() at once. */
	void (*revision)(struct step *st);
	/* Is the stripped stdout (len bytes) a revision? */
	bool (*revision_ok)(const char *text, size_t len);
	/* Fills argv (SOURCE_MAX_ARGV + 1) with the patch command for level
	 * ("-p1"); NULL: patch(1) reading stdin. */
	void (*patch_argv)(const char *level, const char **argv);
};
/* Renders the step's keys, takes the build's sourcestamp and patch, and
 * starts vcs's sequence; st->priv becomes a struct source. */
void source_start(struct step *st, const struct source_vcs *vcs);
void source_free(struct step *st);
char *source_describe(const struct step *st);
/* Runs argv (argv[0] the program, NULL-terminated, at most
 * SOURCE_MAX_ARGV) with "shell" in dir (relative to the builder's
 * directory; NULL: the step's workdir); stdin_text may be NULL.  A command
 * that cannot start ends the step. */
void source_run(struct step *st, const char *dir, const char *const *argv, const char *stdin_text,
		size_t stdin_len);
/* Runs the VCS's tool (and its option) with argv (NULL-terminated) in
 * dir as source_run() does; s->state becomes state. */
void source_run_vcs(struct step *st, int state, const char *dir, const char *const *argv);
/* The next command's stdout is kept in s->out (capped). */
void source_collect(struct step *st);
/* rmdir of dir (NULL: the workdir); stat of dir/sub. */
void source_rmdir(struct step *st, const char *dir);
void source_stat(struct step *st, const char *dir, const char *sub);
/* rmdir of s->dir before a fresh checkout; s->state becomes rmdir_state. */
void source_clobber(struct step *st, int rmdir_state);
/* A sequence's first command: with mode full and method clobber
 * source_clobber(), else stat of s->dir/marker (the VCS's own directory:
 * ".hg"), s->state becoming stat_state. */
void source_look(struct step *st, const char *marker, int stat_state, int rmdir_state);
/* true when the last command exited 0; else ends the step with results. */
bool source_exited_ok(struct step *st, int results);
/* The VCS's last command (checkout, update) ended: FAILURE unless it
 * exited 0, else source_checked_out(). */
void source_vcs_done(struct step *st);
/* Is text (len bytes) a revision number (decimal digits, at most 20)? */
bool source_revno_ok(const char *text, size_t len);
/* The checkout is done: copy, patch, got_revision follow. */
void source_checked_out(struct step *st);
/* Sets got_revision (source_finish_revision) and ends the step. */
void source_got(struct step *st, const char *rev, size_t len);

/* ---- numbers = { } of the command kinds (slice "measure", step-numbers.c) ----
 * step.c calls these; a kind never does. */
/* A piece of the step's stdout, for its regexes. */
void step_numbers_feed(struct step *st, const char *text, size_t len);
/* From step_finish(st, results): true when files are being read from the
 * worker and step_finish(st, results) follows once they are; false when
 * the numbers are recorded (or there are none) and the step ends now. */
bool step_numbers_collect(struct step *st, int results);
/* A file is being read: a stop interrupts that upload, not the kind. */
bool step_numbers_busy(const struct step *st);
void step_numbers_free(struct step *st);

/* ---- the kinds (step-*.c) ---- */
extern const struct step_kind step_kind_shell;
extern const struct step_kind step_kind_trigger;
extern const struct step_kind step_kind_patch;
extern const struct step_kind step_kind_git;
extern const struct step_kind step_kind_compile;
extern const struct step_kind step_kind_file_upload; /* step-transfer.c */
extern const struct step_kind step_kind_directory_upload;
extern const struct step_kind step_kind_file_download;
extern const struct step_kind step_kind_string_download;
extern const struct step_kind step_kind_json_properties_download;
extern const struct step_kind step_kind_test;
extern const struct step_kind step_kind_hg;
extern const struct step_kind step_kind_svn;
extern const struct step_kind step_kind_bzr;
extern const struct step_kind step_kind_darcs;
extern const struct step_kind step_kind_cvs;
extern const struct step_kind step_kind_setprop; /* slice "misc" */
extern const struct step_kind step_kind_propcmd;
extern const struct step_kind step_kind_log;
extern const struct step_kind step_kind_mastershell;
extern const struct step_kind step_kind_tree_size; /* slice "measure": step-treesize.c */
extern const struct step_kind step_kind_deb_build; /* step-deb.c */
extern const struct step_kind step_kind_deb_lintian;

#endif
