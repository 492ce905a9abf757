/*
 * The master's configuration as plain C structs.  config_load() runs
 * BASEDIR/master.lua in a sandboxed Lua 5.4 state (no os.execute, no io,
 * limits on memory and instructions), validates it and copies everything
 * into these structs.  No Lua type appears in this header: Lua never leaks
 * out of src/config/.
 *
 * Lifetime of the Lua state.  When master.lua keeps nothing callable, the
 * state is closed before config_load() returns.  When it stores functions
 * or Lua patterns the master calls later (change filters, file_is_important,
 * collapse_requests, codebase_generator), the state is kept in cfg->lua and
 * lives until config_free(); the structs refer to those functions by opaque
 * ints.  The runtime calls (config_filter_match, config_change_important,
 * config_call_collapse, config_codebase_generate) run in that state, each
 * under its own budget (1 million instructions, 1 s of thread CPU) and the
 * load's memory cap; they cannot declare anything or set globals, but a
 * function's upvalues persist from one call to the next.
 *
 * Threading.  A struct config is built by one thread and then handed over.
 * The plain fields are read-only after loading and may be read from any
 * thread; the runtime calls mutate the kept Lua state, so they, and
 * config_free(), must come from one thread at a time: in the master, its
 * loop thread.  They are not reentrant (nothing in this folder calls back
 * out while Lua runs) and block that thread for at most the budget above.
 *
 * Errors come back as one line "master.lua:LINE: message" in *ret_err
 * (owned by the caller), the same text `kiln checkconfig` prints.
 */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

struct config_lua;

struct config_listen {
	char *host; /* owned; numeric or "localhost"; default 127.0.0.1 */
	int port;   /* 0 = any free port */
};

/* worker { latent = { ... } } (config-latent.c): a worker the master starts
 * when a request needs it and stops after idle_timeout (master/latent.c). */
enum config_latent_kind {
	CONFIG_LATENT_COMMAND,   /* start = command, stop = command */
	CONFIG_LATENT_CONTAINER, /* container = { engine, image, ... } */
};
struct config_latent {
	enum config_latent_kind kind;
	char **start; /* owned argv (a string s is {"/bin/sh", "-c", s}); command kind */
	size_t nstart;
	char **stop; /* owned argv, NULL: none (the start command's group is signalled) */
	size_t nstop;
	double idle_timeout;  /* seconds without a build before it is stopped */
	double start_timeout; /* seconds from start until it must be attached */
	double stop_timeout;  /* seconds the stop command (then SIGTERM) gets */
	/* container kind */
	char *engine;     /* owned: "podman" or "docker" */
	char *image;      /* owned */
	char *network;    /* owned: --network (default "host": the master's loopback) */
	char *worker_bin; /* owned: kiln-worker inside the image (default "kiln-worker") */
	char **run_args;  /* owned: more arguments of `ENGINE run` before the image */
	size_t nrun_args;
};

struct config_worker {
	char *name;                   /* owned */
	char *password;               /* owned: from secret(), never from config text; "" for a
					 local worker (the master makes its password, latent.c) */
	struct config_latent *latent; /* owned: latent = { }; NULL: an ordinary worker */
	bool local;                   /* local_worker { }: the master runs it as its child */
	int max_builds;               /* >= 1, default 1 */
	int line;                     /* where it was declared in master.lua */
	struct config_prop *props;    /* owned: properties = { ... } (source "Worker") */
	size_t nprops;
	char **notify_on_missing; /* owned: addresses mailed when it goes missing ("alerts") */
	size_t nnotify_on_missing;
	double missing_timeout;  /* seconds disconnected before it is missing (default 3600) */
	int reattach_grace;      /* reattach_grace = N (issue 13): seconds, 0 disables; */
	bool reattach_grace_set; /* unset: workers_reattach_grace; config_worker_reattach_grace() */
	uint64_t fp; /* slice "reconfig": fingerprint of its declaration (config-fp.c) */
};

/* A string a step takes, rendered when the step starts (steps/step.c):
 * plain text, a Buildbot Interpolate template (common/interp.h), or a Lua
 * function of the build's properties (config_call_render).  Plain text is all a config without
 * functions has, and text is then used as it is. */
struct config_rstr {
	char *text;  /* owned: the text or template; NULL with fn (or an unset value) */
	int fn;      /* Lua function reference; 0 = none */
	bool interp; /* text is a Buildbot Interpolate template (interpolate "...") */
};

enum config_step_kind {
	CONFIG_STEP_SHELL,   /* config-step-shell.c */
	CONFIG_STEP_TRIGGER, /* config-step-trigger.c */
	CONFIG_STEP_PATCH,   /* config-step-patch.c */
	CONFIG_STEP_GIT,     /* config-step-source.c */
	CONFIG_STEP_COMPILE, /* config-step-compile.c */
	/* the file transfers (config-step-transfer.c) */
	CONFIG_STEP_FILE_UPLOAD,
	CONFIG_STEP_DIRECTORY_UPLOAD,
	CONFIG_STEP_FILE_DOWNLOAD,
	CONFIG_STEP_STRING_DOWNLOAD,
	CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD,
	CONFIG_STEP_TEST,  /* config-step-test.c */
	CONFIG_STEP_HG,    /* config-step-source.c */
	CONFIG_STEP_SVN,   /* config-step-source.c */
	CONFIG_STEP_BZR,   /* config-step-source.c */
	CONFIG_STEP_DARCS, /* config-step-source.c */
	CONFIG_STEP_CVS,   /* config-step-source.c */
	/* slice "misc" (config-step-props.c) */
	CONFIG_STEP_SETPROP,     /* set_property { }, set_properties { } */
	CONFIG_STEP_PROPCMD,     /* set_property_from_command { } */
	CONFIG_STEP_LOG,         /* log { } */
	CONFIG_STEP_MASTERSHELL, /* master_shell { } */
	/* slice "measure" (config-step-measure.c) */
	CONFIG_STEP_TREE_SIZE,   /* tree_size { } */
	CONFIG_STEP_DEB_BUILD,   /* deb_build { } */
	CONFIG_STEP_DEB_LINTIAN, /* deb_lintian { } */
};

/* A transfer step's own keys (config-step-transfer.c). */
struct config_transfer {
	struct config_rstr src;     /* workersrc, mastersrc, or string_download's s */
	struct config_rstr dest;    /* masterdest or workerdest */
	struct config_rstr url;     /* file_upload: the link's URL; unset: the file's own */
	unsigned long long maxsize; /* bytes; 0: no limit but the master's own */
	int mode;                   /* permission bits, or -1 (none given) */
	bool keepstamp;             /* file_upload: keep the file's times */
	char compress[4];           /* directory_upload: "", "gz" or "bz2" */
};

/* test { }: where its test results come from (master/testreport.h).  The
 * formats are names testreport_format_parse() takes ("auto", "tap",
 * "junit", "gotest"). */
struct config_test {
	char *format;               /* owned: the stdout's format; NULL = stdout not parsed */
	char **reports;             /* owned: report files relative to the workdir, read after */
	size_t nreports;            /* the command */
	char *report_format;        /* owned: the reports' format; default "auto" */
	long long max_report_bytes; /* one report's cap (stdout's too) */
};

/* One property a set_property/set_properties step sets: a constant (json,
 * JSON text) or a renderable (value, rendered when the step runs). */
struct config_step_prop {
	char *name;               /* owned */
	char *json;               /* owned JSON text, or NULL when value is a renderable */
	struct config_rstr value; /* interpolate(...) or a function */
};

/* decode_rc = { [rc] = "success", ... }: an exit code and its results
 * (Buildbot's numbers: 0 success ... 6 cancelled, as db.h RESULTS_*). */
struct config_decode_rc {
	long long rc;
	int results;
};

/* compile { }: how its output's warnings are counted (master/warnscan.h). */
struct config_suppression {
	char *file;      /* owned PCRE2 regex of the file, NULL = any */
	char *warning;   /* owned PCRE2 regex of the text, NULL = any */
	long start, end; /* line range, inclusive; 0, 0 = any line */
};
struct config_warnings {
	char **patterns; /* owned PCRE2 regexes; none = the gcc/clang/ld defaults */
	size_t npatterns;
	struct config_suppression *supp; /* owned */
	size_t nsupp;
	long long max_warnings; /* over it: FAILURE (or WARNINGS); -1 = no limit */
	bool over_warns;        /* over max_warnings gives WARNINGS, not FAILURE */
};

/* How a source step gets its tree (Buildbot's mode and method). */
enum config_source_mode { CONFIG_SOURCE_INCREMENTAL, CONFIG_SOURCE_FULL };
enum config_source_method {
	CONFIG_SOURCE_FRESH,   /* clean every untracked and ignored file, then update */
	CONFIG_SOURCE_CLEAN,   /* clean untracked files (not ignored ones), then update */
	CONFIG_SOURCE_CLOBBER, /* remove the tree, then clone */
	CONFIG_SOURCE_COPY,    /* update a "source" tree beside it, copy it over */
};

/* A source step's own keys (git { }, hg { }, svn { }, config-step-source.c). */
struct config_source {
	struct config_rstr repourl; /* required */
	struct config_rstr branch;  /* the default when the build's sourcestamp has none */
	char *codebase;             /* owned: the sourcestamp it checks out; "" = the default */
	enum config_source_mode mode;
	enum config_source_method method; /* mode full only */
	int shallow;                      /* depth of a shallow clone; 0 = full history */
	bool submodules;
	bool retry_fetch;   /* a failed fetch is tried once more */
	double retry_delay; /* retry = { delay, repeats }: a failed clone ... */
	int retry_repeats;  /* ... is removed and tried again this often */
	/* hg { } */
	bool hg_inrepo;                /* branch_type = "inrepo" (else "dirname") */
	bool clobber_on_branch_change; /* default true */
	/* svn { } */
	struct config_rstr username, password; /* unset: none */
	char **extra_args;                     /* owned */
	size_t nextra_args;
	/* bzr { } */
	bool base_url; /* repourl is base_url: the branch is joined to it */
	/* cvs { }: repourl holds cvsroot */
	char *cvsmodule; /* owned */
};

struct config_env {
	char *name;               /* owned */
	struct config_rstr value; /* text NULL and no fn = remove the variable on the worker */
};

/* logfiles = { NAME = "path" | { filename = "path", follow = bool } } of a
 * command step (slice "logfiles"): a file the worker tails into log NAME. */
struct config_logfile {
	char *name; /* owned: the log's name; not "stdio", unique by slug */
	/* relative to the step's workdir, no "..": plain text checked here, a
	 * renderable checked once rendered at step start (steps/step.c) */
	struct config_rstr filename;
	bool follow; /* only what is appended after the command starts */
};

struct config_step {
	enum config_step_kind kind;
	int line;
	char *name; /* owned; default: derived from the command (Buildbot-like) */
	/* the command: a list (argv, each element rendered), or one string run
	 * with /bin/sh -c, or a function returning either (command.fn) */
	struct config_rstr *argv; /* owned; NULL when command was not a list */
	size_t nargv;
	struct config_rstr command;
	struct config_env *env;
	size_t nenv;
	char *workdir;   /* owned; relative to the builder's build dir; default "build" */
	double timeout;  /* seconds without output before kill; default 1200; 0 = none */
	double max_time; /* seconds in total; 0 = none */
	/* The scalars side by side (no padding between them: with 100,000
	 * builders every byte here is 100 kB of the config's memory cap). */
	bool halt_on_failure;  /* default false */
	bool flunk_on_failure; /* default true */
	bool warn_on_failure;  /* default false */
	bool always_run;       /* default false */
	bool wait_for_finish;  /* trigger { }: default false */
	bool patch_with_git;   /* apply_patch { }: tool = "git" (git apply) instead of patch */
	bool skip;             /* do_step_if = false */
	bool hidden;           /* hide_step_if = true */
	int do_step_if_fn;     /* function(props) -> boolean; 0 = none */
	int hide_fn;           /* hide_step_if = function(results, props); 0 = none */
	int retry;             /* a FAILURE/EXCEPTION runs again, this often at most */
	/* C memory the declaration charged to the load (config-step.c): given
	 * back when its userdata is collected; 0 in a builder's copy */
	unsigned decl_charged;
	/* locks = { ... } (config-lock.c): taken around the step, sorted by lock */
	struct config_lock_access *locks; /* owned */
	size_t nlocks;
	/* slice "misc": options of every kind (config-step-props.c) */
	struct config_rstr description; /* the state string while it runs; unset = the kind's */
	struct config_rstr description_done; /* ... and once done (results appended) */
	struct config_decode_rc *decode_rc;  /* owned; NULL: 0 success, else failure */
	size_t ndecode_rc;
	/* One kind's own fields: only the member of step->kind is set (read
	 * them only for that kind); the others are zero bytes of the same
	 * storage. */
	union {
		struct config_source *source;     /* owned: CONFIG_STEP_GIT, _HG, _SVN, ... */
		struct config_warnings *warnings; /* owned: compile { } (CONFIG_STEP_COMPILE) */
		struct config_transfer *transfer; /* owned: CONFIG_STEP_FILE_UPLOAD... */
		struct config_test *test;         /* owned: test { } (CONFIG_STEP_TEST) */
	};
	union {
		/* trigger { } (CONFIG_STEP_TRIGGER, config-sched.c) */
		struct {
			char **trigger_schedulers; /* owned names of triggerable schedulers */
			size_t ntrigger_schedulers;
			struct config_prop *set_properties; /* owned */
			size_t nset_properties;
		};
		/* set_property { } / set_properties { } (CONFIG_STEP_SETPROP) and
		 * set_property_from_command { } (CONFIG_STEP_PROPCMD) */
		struct {
			struct config_step_prop *props; /* owned */
			size_t nprops;
			char *property; /* owned: stdout (stripped) becomes it; NULL with extract */
			char *extract;  /* owned PCRE2 regex: its named groups become properties */
			int extract_fn; /* function(rc, stdout, stderr) -> { name = value } */
		};
		/* log { } (CONFIG_STEP_LOG) */
		struct {
			char *log_name; /* owned */
			struct config_rstr log_text;
		};
	};
	/* slice "logfiles": logfiles = { }, lazylogfiles of command steps
	 * (config-step-shell.c); slice "measure": numbers = { NAME = ... } on
	 * the kinds running commands (config-step-props.c), recorded as the
	 * step ends (steps/step-numbers.c). The counts are capped far below
	 * USHRT_MAX (KILN_MAX_LOGFILES, KILN_STEP_NUMBERS_MAX). */
	struct config_logfile *logfiles; /* owned, sorted by name */
	struct config_number *numbers;   /* owned, sorted by name */
	unsigned short nlogfiles;
	unsigned short nnumbers;
	bool lazylogfiles; /* a logfile's log is made when its first text arrives */
};

/* One entry of a step's numbers = { }: where the number NAME comes from. */
enum config_number_source {
	CONFIG_NUMBER_REGEX, /* a PCRE2 regex over stdout lines: group 1 of the last match */
	CONFIG_NUMBER_FILE,  /* { file = "path" }: a file's content, relative to the workdir */
	CONFIG_NUMBER_FN,    /* function(props) returning the number */
};
struct config_number {
	char *name; /* owned */
	enum config_number_source source;
	char *text; /* owned: the regex or the file; NULL for a function */
	int fn;     /* Lua function reference (CONFIG_NUMBER_FN) */
};

/* A builder's retention = { ... } (config-retention.c; issue 13): what it
 * gives replaces the global retention setting for its builds; 0: not given
 * (the global value applies). */
struct config_retention_override {
	double builds_keep_days;
	long long builds_keep_per_builder;
	double logs_keep_days;
	double logs_success_keep_days;
	double test_results_keep_days;
	double numbers_keep_days;
};

struct config_builder {
	char *name;        /* owned */
	char *description; /* owned, may be NULL */
	char **tags;       /* owned */
	size_t ntags;
	char **workers; /* owned names; each names a declared worker; the same
			 * pointer as the previous builder's when its list is equal */
	size_t nworkers;
	char *builddir; /* owned; default = name */
	struct config_step *steps;
	size_t nsteps;
	int line;
	/* queue (config-sched.c) */
	int collapse_requests; /* CONFIG_COLLAPSE_*: default: the global setting */
	int collapse_fn;       /* a Lua function (CONFIG_COLLAPSE_FN), see config_call_collapse */
	int cancel_superseded; /* CONFIG_SUPERSEDE_*; default none */
	/* properties = { ... } (source "Builder") and env = { ... } under every
	 * command step's own env (config-props.c) */
	struct config_prop *props;
	size_t nprops;
	struct config_env *env;
	size_t nenv;
	/* locks = { ... } (config-lock.c): taken for the whole build, sorted by lock */
	struct config_lock_access *locks; /* owned */
	size_t nlocks;
	/* slice "dispatch" (config-dispatch.c): Lua functions; 0 = none (the default choice) */
	int next_worker_fn; /* function(builder, workers, request) -> worker name */
	int next_build_fn;  /* function(builder, requests) -> request id */
	uint64_t fp;        /* slice "reconfig": fingerprint of its declaration (config-fp.c) */
	/* issue 13 (config-retention.c): owned; NULL when it gives none (a
	 * pointer: 100,000 builders fit the config's memory cap) */
	struct config_retention_override *retention;
};

/* ==== schedulers and queue (config-sched.c; the calls: config-runtime.c) ====== */
/* A property set by a scheduler or a trigger step: value is JSON text. */
struct config_prop {
	char *name;  /* owned */
	char *value; /* owned: JSON text of the value */
};

/* One field of a change filter: a list of exact values, a Lua pattern
 * (string.find, not a regex) or a Lua function of the value; unset = any. */
struct config_match {
	char **values; /* owned; NULL = no value list */
	size_t nvalues;
	char *pattern; /* owned Lua pattern, or NULL */
	int fn;        /* Lua function reference, 0 = none */
};

struct config_change_filter {
	struct config_match branch, project, repository, category, codebase;
	int fn;   /* filter_fn = function(change) -> boolean, 0 = none */
	bool set; /* any criterion given */
};

enum config_param_type {
	CONFIG_PARAM_STRING,
	CONFIG_PARAM_INT,
	CONFIG_PARAM_BOOL,
	CONFIG_PARAM_CHOICE
};

/* A typed force-scheduler parameter, becoming a build property. */
struct config_param {
	enum config_param_type type;
	char *name;     /* owned: the property name */
	char *label;    /* owned; default = name */
	char *def;      /* owned: default as text ("" / "0" / "false" / first choice) */
	char **choices; /* owned (choice) */
	size_t nchoices;
	long long min, max; /* int bounds */
	bool required;
};

enum config_scheduler_kind {
	CONFIG_SCHED_FORCE,
	CONFIG_SCHED_SINGLE_BRANCH,
	CONFIG_SCHED_ANY_BRANCH,
	CONFIG_SCHED_PERIODIC,
	CONFIG_SCHED_NIGHTLY,
	CONFIG_SCHED_TRIGGERABLE,
	CONFIG_SCHED_DEPENDENT,
	CONFIG_SCHED_TRY,
};

enum {
	CONFIG_COLLAPSE_DEFAULT = -1,
	CONFIG_COLLAPSE_NO = 0,
	CONFIG_COLLAPSE_YES = 1,
	CONFIG_COLLAPSE_FN = 2
};
enum { CONFIG_SUPERSEDE_NONE = 0, CONFIG_SUPERSEDE_QUEUED = 1, CONFIG_SUPERSEDE_RUNNING = 2 };

/* The sourcestamp fields a force call may set, in the order of their allow lists. */
enum config_force_field {
	CONFIG_FORCE_BRANCH,
	CONFIG_FORCE_REVISION,
	CONFIG_FORCE_REPOSITORY,
	CONFIG_FORCE_PROJECT,
	CONFIG_FORCE_CODEBASE,
	CONFIG_FORCE_NFIELDS
};

struct config_scheduler {
	enum config_scheduler_kind kind;
	char *name;      /* owned; force schedulers default to "force" */
	char **builders; /* owned names; each names a declared builder */
	size_t nbuilders;
	int line;
	int priority;              /* of the build requests; default 0 */
	struct config_prop *props; /* owned: properties = { ... } */
	size_t nprops;
	/* sourcestamp of periodic/nightly/triggerable/force defaults (owned, may be NULL) */
	char *branch, *repository, *project, *codebase;
	/* single_branch, any_branch, nightly (only_if_changed) */
	struct config_change_filter filter;
	double tree_stable;     /* seconds; 0 = at once */
	char **important_globs; /* owned fnmatch patterns of file_is_important */
	size_t nimportant_globs;
	int important_fn; /* file_is_important = function(change) */
	bool only_important;
	/* periodic */
	double period; /* seconds between buildsets */
	/* nightly */
	char *cron; /* owned: "minute hour day-of-month month day-of-week", UTC */
	bool only_if_changed;
	/* force */
	struct config_param *params; /* owned */
	size_t nparams;
	/* force: values a call may give the sourcestamp fields (branches, revisions,
	 * repositories, projects, codebases), indexed by enum config_force_field; each
	 * entry an exact value or an fnmatch glob; NULL: the built-in rule (sched-force.c) */
	char **allowed[CONFIG_FORCE_NFIELDS]; /* owned */
	size_t nallowed[CONFIG_FORCE_NFIELDS];
	/* dependent */
	char *upstream; /* owned: scheduler whose successful buildsets trigger us */
	/* try */
	char *token; /* owned: from secret(...) */
	/* codebases = { NAME = { ... } } (config-codebase.c): sorted by name; none:
	 * the one sourcestamp above */
	struct config_codebase *codebases; /* owned */
	size_t ncodebases;
	uint64_t fp; /* slice "reconfig": fingerprint of its declaration (config-fp.c) */
};

/* A change as Lua functions and filters see it (all borrowed). */
struct config_change_view {
	const char *branch, *project, *repository, *category, *codebase, *revision;
	const char *author, *comments;
	const char *const *files;
	size_t nfiles;
};

/* The value of a secret an interpolate() template names, or NULL. */
const char *config_secret_value(const struct config *cfg, const char *name);

/* Calls the renderable function fn (struct config_rstr) with the build's
 * properties: props is a JSON object {"name": [value, "source"], ...} and
 * the function gets a table name -> value.  Its result comes back as JSON
 * in *ret (a string, number, boolean, or a list of them), owned by the
 * caller.  0, or KILN_ECONFIG with *ret_err (owned): the function failed,
 * ran out of its budget, or returned something else.  One thread at a time
 * (the master's loop thread). */
struct json_t;
int config_call_render(struct config *cfg, int fn, const struct json_t *props, struct json_t **ret,
		       char **ret_err);
/* The same for any function: called with the values of args (a JSON array;
 * NULL: none) then, when props is not NULL, the properties' table.  Its
 * result in *ret (owned): a scalar, nil as null, a table with string keys
 * as an object, a sequence as an array (nested at most 16 deep, at most
 * KILN_LUA_MAX_FILES entries per table).  Errors as config_call_render. */
int config_call_fn(struct config *cfg, int fn, const struct json_t *args,
		   const struct json_t *props, struct json_t **ret, char **ret_err);

/* Does the change pass the filter?  1 yes, 0 no, or KILN_ECONFIG with
 * *ret_err (owned) when a Lua function or pattern failed (the caller logs
 * it and treats the change as not matching).  Runs the kept Lua state with
 * an instruction budget per call; one thread at a time (see the top of this
 * file): the master's loop thread. */
int config_filter_match(struct config *cfg, const struct config_change_filter *f,
			const struct config_change_view *c, char **ret_err);
/* file_is_important of scheduler s: 1 important, 0 not (also when neither
 * globs nor a function are set: 1). Errors as above. */
int config_change_important(struct config *cfg, const struct config_scheduler *s,
			    const struct config_change_view *c, char **ret_err);
/* A builder's collapse_requests function: may request 'newer' be built by
 * the build of 'older'?  Each is described by its sourcestamp and id. */
struct config_request_view {
	long long buildrequestid;
	const char *branch, *revision, *repository, *project, *codebase;
};
int config_call_collapse(struct config *cfg, int fn, const char *builder,
			 const struct config_request_view *older,
			 const struct config_request_view *newer, char **ret_err);
const struct config_scheduler *config_find_scheduler(const struct config *cfg, const char *name);
/* ==== end of schedulers and queue ============================================== */

/* ==== change sources and change hooks (config-changes.c) ====================== */
enum config_poller_kind {
	CONFIG_POLLER_GIT,
	CONFIG_POLLER_HG,
	CONFIG_POLLER_SVN,
	CONFIG_POLLER_BZR,
	CONFIG_POLLER_DARCS,
	CONFIG_POLLER_CVS,
	CONFIG_POLLER_MAILDIR, /* maildir_source { } (slice "alerts"): commit mails */
};

/* git_poller { }, hg_poller { }, svn_poller { }, bzr_poller { }, darcs_poller { },
 * cvs_poller { } */
struct config_poller {
	enum config_poller_kind kind;
	char *name;       /* owned; unique among change sources; default: the repository */
	char *repository; /* owned: URL or path the VCS tool understands (cvs: the cvsroot) */
	char **branches;  /* owned (git, hg); NULL with all_branches */
	size_t nbranches;
	bool all_branches; /* git: branches = "all" */
	bool tags;         /* git: also turn new tags into changes (default false) */
	double interval;   /* seconds between polls, default 60 (> 0) */
	char *project, *category, *codebase; /* owned, may be NULL: copied into changes */
	char *revlink; /* owned, may be NULL: a format with one %s for the revision */
	char *branch;  /* owned (svn, bzr, darcs): the branch name given to changes, may be
			* NULL; (cvs): the branch tag followed (NULL: the default branch) */
	char *module;  /* owned (cvs): the module polled */
	int line;
	uint64_t max_size; /* maildir: bytes of one mail at most (default 1 MiB) */
	uint64_t fp;       /* slice "reconfig": fingerprint of its declaration (config-fp.c) */
};

/* change_hook = { token = ..., github = { secret = ... }, ... }: the
 * /change_hook/DIALECT endpoints (base and poller are on when the table
 * is set; the others when their key is present). */
struct config_change_hook {
	bool enabled;
	char *token; /* owned, may be NULL: Bearer token for base, poller, sendchange */
	bool github, gitlab, gitea;
	char *github_secret; /* owned, may be NULL (no signature check) */
	char *gitlab_token;  /* owned, may be NULL */
	char *gitea_secret;  /* owned, may be NULL */
	int line;
};
/* ==== end of change sources ====================================================== */

/* ---- results pushed from outside (config-push.c; slice "push", docs/PUSH.md) ---- */
struct config_expected_reporter {
	char *package, *host; /* owned */
	double interval;      /* seconds */
};
struct config_push {
	uint64_t max_body_bytes; /* a POST /api/v2/push body */
	long long max_steps;     /* steps per bag (and per submission) */
	uint64_t max_log_bytes;  /* stdout or stderr of one step */
	long long per_minute;    /* pushes per token per minute (then 429) */
	long long max_results;   /* stored submissions per token and package (then 429) */
	double open_timeout;     /* seconds an open submission may go without an update */
	struct config_expected_reporter *expected; /* owned */
	size_t nexpected;
};
/* The caps when master.lua sets none. */
void config_push_defaults(struct config_push *p);

struct config {
	char *title;                  /* owned; default "Kiln" */
	char *title_url;              /* owned, may be NULL */
	char *url;                    /* owned: the master's public URL, may be NULL */
	struct config_listen http;    /* default 127.0.0.1:8010 */
	struct config_listen workers; /* default 127.0.0.1:9989 */
	char *db_url; /* owned; default "sqlite:state.sqlite" (relative to basedir) */
	/* several masters on one PostgreSQL (issue 14): masters = { heartbeat,
	 * dead_after } in seconds (config-dsl.c) */
	double master_heartbeat, master_dead_after;
	struct config_worker *worker;
	size_t nworkers, worker_alloc;
	struct config_builder *builder;
	size_t nbuilders, builder_alloc;
	struct config_scheduler *scheduler;
	size_t nschedulers, scheduler_alloc;
	/* Every distinct value secret() returned while loading (owned), so the
	 * master can mask them in stored logs. */
	char **secrets;
	size_t nsecrets, secrets_alloc;
	/* The secrets interpolate() templates name as %(secret:NAME)s, read
	 * when the config loads (owned; config_secret_value). */
	struct config_named_secret {
		char *name, *value;
	} * named_secrets;
	size_t nnamed_secrets, named_secrets_alloc;
	/* ---- schedulers and queue (config-sched.c) ---- */
	int collapse_requests; /* global collapse_requests: CONFIG_COLLAPSE_NO/YES/FN */
	int collapse_fn;
	struct config_lua *lua; /* owned: the Lua state kept for functions and patterns
				   (NULL when the file has none); see config_filter_match */
	/* ---- properties (config-props.c) ---- */
	struct config_prop *props; /* owned: the global properties = { ... } */
	size_t nprops;
	/* ---- change sources and hooks (config-changes.c) ---- */
	struct config_poller *poller;
	size_t npollers, poller_alloc;
	struct config_change_hook change_hook;
	struct config_metrics_push *metrics_push; /* owned, NULL = none (config-tsdb.c) */
	/* ---- several codebases (config-codebase.c) ---- */
	struct config_codebase_gen *codebase_gen; /* owned: codebase_generator, NULL = none */
	/* ---- numbers over time (config-numbers.c) ---- */
	struct config_numbers *numbers; /* owned; NULL: no regression thresholds */
	/* ---- locks (config-lock.c) ---- */
	struct config_lock *lock; /* owned, in declaration order (the acquisition order) */
	size_t nlocks, lock_alloc;
	/* ---- slice "dispatch" (config-dispatch.c) ---- */
	int prioritize_builders_fn; /* function(builders) -> builders reordered; 0 = none */
	/* ---- artifact retention (config-artifacts.c; slice "artcli") ---- */
	/* artifacts = { max_bytes, keep_days, keep_builds }: 0 = no such limit */
	uint64_t artifacts_max_bytes;    /* total bytes of stored artifacts */
	double artifacts_keep_days;      /* days an artifact is kept */
	long long artifacts_keep_builds; /* builds (the newest having artifacts) kept */
	/* ---- reporters (config-reporter.c; the senders: master/reporters/) ---- */
	struct config_reporter *reporter; /* owned, in declaration order */
	size_t nreporters, reporter_alloc;
	struct config_push *push; /* owned, NULL: default caps, none expected (config-push.c) */
	/* ---- web login and roles (config-auth.c; slice "weblogin") ---- */
	struct config_auth *auth; /* owned; NULL: master.lua sets no auth = { } */
	/* ---- log_format (config-log.c; slice "operator") ---- */
	bool log_json; /* log_format = "json": one JSON object per line (common/log.h) */
	/* ---- worker connections (config-workers.c; slice "reattach") ---- */
	bool workers_reattach_set;      /* workers_reattach_grace was given */
	int workers_reattach_grace;     /* seconds; 0 disables; see config_reattach_grace() */
	int workers_keepalive_interval; /* seconds of silence before a PING; 0 = 60 */
	int workers_keepalive_timeout;  /* seconds without valid traffic before hang-up; 0 = 180 */
	/* ---- slice "reconfig" (config-fp.c) ---- */
	int refs;            /* holders: 1 at load; config_unref() frees at 0 */
	uint64_t generation; /* set by the master: 1 at start, +1 per reconfig */
	/* ---- retention = { } (config-retention.c; slice "retention") ---- */
	/* days (fractions allowed), 0 = no such limit; artifacts: artifacts_* above */
	double retention_builds_keep_days;
	long long retention_builds_keep_per_builder; /* 0: no count limit */
	double retention_logs_keep_days;
	double retention_logs_success_keep_days;
	double retention_changes_keep_days;
	double retention_test_results_keep_days;
	double retention_numbers_keep_days;
	double retention_interval_s; /* seconds between passes (default 600) */
	/* ---- latent and local workers (config-latent.c) ---- */
	int latent_max_count; /* latent workers starting or running at once; 0 = no limit */
};

/* slice "reattach": the defaults applied (docs/CONFIG.md, "Worker disconnects") */
#define CONFIG_REATTACH_GRACE_DEFAULT 60
#define CONFIG_KEEPALIVE_INTERVAL_DEFAULT 60
#define CONFIG_KEEPALIVE_TIMEOUT_DEFAULT 180
static inline int config_reattach_grace(const struct config *cfg)
{
	return cfg->workers_reattach_set ? cfg->workers_reattach_grace
					 : CONFIG_REATTACH_GRACE_DEFAULT;
}
/* A worker's grace: its own reattach_grace, else the global one. */
static inline int config_worker_reattach_grace(const struct config *cfg,
					       const struct config_worker *w)
{
	return w && w->reattach_grace_set ? w->reattach_grace : config_reattach_grace(cfg);
}

/* Loads and validates BASEDIR/master.lua (secrets from BASEDIR/secrets/ or
 * the environment).  Returns 0 and *ret (free with config_free), or
 * KILN_ECONFIG and *ret_err: one line without a newline, "master.lua:LINE:
 * message" or "master.lua: message" (or "cannot open 'PATH': ..."), owned by
 * the caller.  Blocking file reads; bounded by the sandbox limits in
 * common/limits.h (memory, instructions, CPU seconds).  basedir NULL = ".".
 * The language is described in docs/CONFIG.md. */
int config_load(const char *basedir, struct config **ret, char **ret_err);
/* Same from text (at most KILN_MAX_CONFIG_BYTES, need not be NUL-terminated);
 * chunkname is used in messages (NULL = "master.lua").  basedir NULL: secrets
 * come from the environment only. */
int config_load_string(const char *chunkname, const char *text, size_t len, const char *basedir,
		       struct config **ret, char **ret_err);
void config_free(struct config *cfg); /* NULL-safe */

/* ==== generations and differences (config-fp.c; slice "reconfig") ============= */
/* A loaded config is one generation, immutable once loaded and shared by
 * whoever holds a reference (the master's current one, each running build).
 * config_ref() adds a holder and returns cfg; config_unref() drops one and
 * frees the config with the last (NULL-safe).  Loop thread only. */
struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* Every builder, worker, scheduler, change source and reporter carries the
 * fingerprint of its declaration (fp): a hash of the arguments master.lua
 * gave it, steps, secrets and other declared values included by theirs, a
 * function by its compiled code.  Equal fingerprints: the same declaration
 * (a function's upvalues and a secret file's content are not looked at). */
struct config_diff_count {
	size_t total;   /* in the new config */
	size_t added;   /* names only in the new config */
	size_t removed; /* names only in the old one */
	size_t changed; /* in both, with another declaration */
};
struct config_diff {
	struct config_diff_count builders, workers, schedulers, pollers, reporters;
	bool locks_changed; /* the lock declarations differ (names, kinds, counts, order) */
};
/* What changes from old to new (matched by name; schedulers and reporters
 * by name and kind: another kind counts as removed and added). */
void config_diff(const struct config *old, const struct config *new_cfg, struct config_diff *d);
/* Matches names: for each new[j], map[j] = the index i with old[i] equal to
 * it, or SIZE_MAX.  n log n; names unique within each list.  The names are
 * read through old_get(old_v, i) and get(new_v, j), each v an array. */
typedef const char *(*config_name_fn)(const void *v, size_t i);
void config_match_names(const void *old_v, size_t nold, config_name_fn old_get, const void *new_v,
			size_t nnew, config_name_fn get, size_t *map);
const char *config_builder_name_at(const void *v, size_t i);
const char *config_worker_name_at(const void *v, size_t i);
const char *config_scheduler_name_at(const void *v, size_t i);
const char *config_poller_name_at(const void *v, size_t i);
const char *config_reporter_name_at(const void *v, size_t i);
/* ==== end of generations ======================================================== */

const struct config_worker *config_find_worker(const struct config *cfg, const char *name);
const struct config_builder *config_find_builder(const struct config *cfg, const char *name);

/* Parses a size: decimal digits, optional blanks and a unit (B, kB or KB,
 * MB, GB, TB: powers of 1000; KiB, MiB, GiB, TiB: powers of 1024), e.g.
 * "10 GiB" (slice "artcli").  -EINVAL if malformed, -ERANGE past 2^64. */
int config_parse_bytes(const char *s, uint64_t *ret);

/* Parses "HOST:PORT" or "[V6]:PORT" (HOST numeric or "localhost", PORT
 * 0-65535) into *ret (ret->host owned; the caller frees it).  -EINVAL if
 * malformed. */
int config_parse_listen(const char *text, struct config_listen *ret);

/* ==== locks (config-lock.c; slice "locks") ===================================== */
enum config_lock_kind { CONFIG_LOCK_MASTER, CONFIG_LOCK_WORKER };
enum config_lock_mode { CONFIG_LOCK_COUNTING, CONFIG_LOCK_EXCLUSIVE };

/* A worker_lock's max_count_for_worker entry. */
struct config_lock_count {
	char *worker; /* owned: a declared worker's name */
	int max_count;
};

/* master_lock { } or worker_lock { }: names are unique across both kinds. */
struct config_lock {
	enum config_lock_kind kind;
	char *name;                           /* owned */
	int max_count;                        /* 1..KILN_MAX_LOCK_COUNT, default 1 */
	struct config_lock_count *per_worker; /* owned (worker locks), sorted by worker */
	size_t nper_worker;
	int line;
};

/* One lock in a builder's or a step's locks = { ... }: a lock (counting,
 * one unit) or lock:access("exclusive") / lock:access("counting", N). */
struct config_lock_access {
	size_t lock; /* index in cfg->lock: also the global acquisition order */
	enum config_lock_mode mode;
	int count; /* units (counting); 1 (exclusive) */
};

/* max_count of lock l on worker (its max_count_for_worker entry, or
 * max_count); worker NULL or a master lock: max_count. */
int config_lock_max_count(const struct config_lock *l, const char *worker);
const struct config_lock *config_find_lock(const struct config *cfg, const char *name);
/* ==== end of locks ============================================================== */

/* The commented sample master.lua written by `kiln create-master`. */
extern const char config_sample[];

/* ==== metrics push (config-tsdb.c; the client: master/tsdb.c) ================= */
enum config_tsdb_protocol { CONFIG_TSDB_INFLUX, CONFIG_TSDB_GRAPHITE };

/* metrics_push = { protocol = "influx"|"graphite", host = ..., port = N, prefix = ... } */
struct config_metrics_push {
	enum config_tsdb_protocol protocol;
	char *host;   /* owned: a host name or a numeric address (resolved off the loop) */
	int port;     /* 1-65535 */
	char *prefix; /* owned: [A-Za-z0-9_][A-Za-z0-9_.-]*, default "kiln" */
	int line;
};
/* ==== end of metrics push ======================================================= */
/* ==== several codebases per build (config-codebase.c; the call: config-runtime.c) ==== */
/* One codebase of a scheduler's codebases = { NAME = { repository = ...,
 * branch = ..., revision = ... } } (Buildbot's codebases dict): the values
 * its sourcestamp takes when a buildset has no change for it. */
struct config_codebase {
	char *name;                           /* owned: the codebase ("" allowed) */
	char *repository, *branch, *revision; /* owned, NULL when not given */
};

/* codebase_generator = function(change) ... end, or a table
 * { [repository] = codebase }: gives a change arriving without a codebase
 * its codebase (Buildbot's codebaseGenerator). */
struct config_codebase_repo {
	char *repository, *codebase; /* owned */
};
struct config_codebase_gen {
	int fn;                             /* Lua function reference, 0 = the table */
	struct config_codebase_repo *repos; /* owned, sorted by repository */
	size_t nrepos;
};

/* The codebase of change c by codebase_generator: 1 and *ret (owned), or
 * 0 when there is no generator, the table has no entry for c's repository
 * or the function returned nil; KILN_ECONFIG with *ret_err (owned, with the
 * master.lua line) when the function failed or returned something other
 * than a string of at most KILN_MAX_CODEBASE_NAME bytes without control
 * characters.  Runs the kept Lua state: loop thread only, see the top. */
int config_codebase_generate(struct config *cfg, const struct config_change_view *c, char **ret,
			     char **ret_err);
/* The entry for codebase name (NULL = "") in s->codebases, or NULL. */
const struct config_codebase *config_scheduler_codebase(const struct config_scheduler *s,
							const char *name);
/* ==== end of several codebases per build ================================================ */
/* ==== numbers over time: regression thresholds (config-numbers.c) ============ */
/* One threshold for the number NAME: the global `regression` setting's
 * (builder NULL) or a builder's `regression` key.  A new value regresses
 * when it exceeds the previous build's value by more than increase
 * (absolute) or by more than increase_pct percent of it (only when the
 * previous value is > 0); an absent threshold is NAN. */
struct config_regression {
	char *builder; /* owned; NULL: global */
	char *name;    /* owned: the number's name */
	double increase, increase_pct;
	int line;
};
struct config_numbers {
	struct config_regression *rules; /* owned */
	size_t nrules, rules_alloc;
};
/* The threshold for name on builder: the builder's own, else the global
 * one, else NULL.  cfg may be NULL. */
const struct config_regression *config_regression_find(const struct config *cfg,
						       const char *builder, const char *name);
/* Whether going from old to now exceeds r (false if r is NULL). */
bool config_regression_exceeded(const struct config_regression *r, double old, double now);
void config_numbers_free(struct config_numbers *cn); /* NULL-safe */
/* ==== end of numbers over time ================================================ */

/* ==== dispatch hooks (config-dispatch.c; slice "dispatch") ===================== */
/* Buildbot's nextWorker, nextBuild and prioritizeBuilders as master.lua
 * functions.  The engine calls these only when the function is configured
 * (builder->next_worker_fn, ->next_build_fn, cfg->prioritize_builders_fn
 * non-zero), on its loop thread, each call under the budget of every
 * runtime call (top of this file).  What they are handed is capped
 * (KILN_DISPATCH_MAX_*: entries past the cap are not offered).
 *
 * Each returns 1 and the chosen index (into the caller's array), 0 when the
 * function returned nil (start nothing now), KILN_ENOTFOUND with *ret_err
 * (owned) when it named something it was not offered (the caller logs it
 * and treats it as nil, as Buildbot does), or KILN_ECONFIG with *ret_err
 * (owned) when it failed, ran out of its budget or returned another type
 * (the caller logs it and makes the default choice). */

/* A queued build request as next_worker and next_build see it (borrowed). */
struct config_dispatch_request {
	long long buildrequestid, buildsetid;
	int priority;
	double submitted_at;             /* seconds since the epoch */
	const char *reason;              /* the buildset's reason, may be NULL */
	const struct json_t *properties; /* the buildset's {"name": [value, "source"]}, or NULL */
};
/* An idle worker offered to next_worker (borrowed). */
struct config_dispatch_worker {
	const struct config_worker *cfg; /* its name and properties */
	int running;                     /* builds running on it (< cfg->max_builds) */
};
/* A builder with queued requests, as prioritize_builders sees it. */
struct config_dispatch_builder {
	const char *name; /* borrowed */
	double oldest;    /* submitted_at of its oldest queued request */
	int priority;     /* the highest priority among its queued requests */
};
/* b's next_worker with workers[0..n) and the request about to start:
 * *ret_idx is the worker it named (by name or by returning the element). */
int config_call_next_worker(struct config *cfg, const struct config_builder *b,
			    const struct config_dispatch_worker *workers, size_t n,
			    const struct config_dispatch_request *req, size_t *ret_idx,
			    char **ret_err);
/* b's next_build with reqs[0..n) (queue order): *ret_idx is the request it
 * named (by id or by returning the element). */
int config_call_next_build(struct config *cfg, const struct config_builder *b,
			   const struct config_dispatch_request *reqs, size_t n, size_t *ret_idx,
			   char **ret_err);
/* prioritize_builders with bs[0..n) (the default order): fills ret_order
 * (the caller's array of n) with every index once, those the function
 * returned first in its order, then the others in their default order
 * (names not offered and repeats are skipped).  0, or KILN_ECONFIG with
 * *ret_err (ret_order then holds the default order).  nil = default. */
int config_call_prioritize(struct config *cfg, const struct config_dispatch_builder *bs, size_t n,
			   size_t *ret_order, char **ret_err);
/* ==== end of dispatch hooks ===================================================== */

/* ==== reporters (config-reporter*.c; the senders: master/reporters/) ========== */
enum config_reporter_kind {
	CONFIG_REPORTER_EMAIL,
	CONFIG_REPORTER_IRC,
	CONFIG_REPORTER_HTTP, /* config-reporter-http.c: http, slack, mattermost, matrix */
	CONFIG_REPORTER_SLACK,
	CONFIG_REPORTER_MATTERMOST,
	CONFIG_REPORTER_MATRIX,
	CONFIG_REPORTER_TELEGRAM, /* config-reporter-chat.c (slice "alerts") */
	CONFIG_REPORTER_ZULIP,    /* config-reporter-chat.c (slice "alerts") */
	/* commit statuses (config-reporter-statuses.c, slice "statuses") */
	CONFIG_REPORTER_GITHUB,
	CONFIG_REPORTER_GITLAB,
	CONFIG_REPORTER_GITEA,
	CONFIG_REPORTER_BITBUCKET,
	CONFIG_REPORTER_GERRIT,
};

/* What a reporter hears about besides finished builds (events = { ... },
 * flags; slice "alerts": master/reporters/alerts.c). */
enum config_report_event {
	CONFIG_REPORT_EVENT_BUILDS = 1 << 0,         /* finished builds (the default) */
	CONFIG_REPORT_EVENT_WORKER_MISSING = 1 << 1, /* a worker gone missing_timeout s */
	CONFIG_REPORT_EVENT_REGRESSION = 1 << 2,     /* a number's regression */
	CONFIG_REPORT_EVENT_REPORTER_QUIET = 1 << 3, /* an expected pusher quiet, or back */
};

/* The result modes of a filter (flags): which finished builds are reported. */
enum config_report_mode {
	CONFIG_REPORT_ALL = 1 << 0,       /* every build */
	CONFIG_REPORT_FAILING = 1 << 1,   /* FAILURE */
	CONFIG_REPORT_PROBLEM = 1 << 2,   /* FAILURE after a build that did not fail */
	CONFIG_REPORT_CHANGE = 1 << 3,    /* a result other than the previous build's */
	CONFIG_REPORT_WARNINGS = 1 << 4,  /* WARNINGS */
	CONFIG_REPORT_EXCEPTION = 1 << 5, /* EXCEPTION */
	CONFIG_REPORT_PASSING = 1 << 6,   /* SUCCESS */
};

/* The one filter model of every reporter: a build passes when its builder
 * matches builders (names or fnmatch globs; none: every builder), has one
 * of tags (none: any), its branch matches branches (globs; none: any), and
 * one of modes picks its result. */
struct config_report_filter {
	char **builders, **tags, **branches; /* owned */
	size_t nbuilders, ntags, nbranches;
	unsigned modes; /* enum config_report_mode flags; default FAILING */
};

enum config_smtp_tls {
	CONFIG_SMTP_TLS_NONE,     /* plain SMTP */
	CONFIG_SMTP_TLS_STARTTLS, /* STARTTLS when offered */
	CONFIG_SMTP_TLS_REQUIRED, /* STARTTLS or the message is not sent */
	CONFIG_SMTP_TLS_SMTPS,    /* TLS from the first byte (port 465) */
};

/* reporter { kind = "email", ... } (config-reporter-email.c) */
struct config_reporter_email {
	char *from; /* owned: the envelope and From: address */
	char **to;  /* owned: extra recipients, every mail */
	size_t nto;
	bool blamelist;  /* also mail the changes' authors (addresses only) */
	char *smtp_host; /* owned */
	int smtp_port;   /* default 25 (465 with smtps) */
	enum config_smtp_tls tls;
	char *smtp_user;         /* owned, NULL: no login */
	char *smtp_password;     /* owned: from secret(...), NULL: no login */
	int log_lines;           /* tail of the failing step's log; 0: none */
	char *subject;           /* owned: prefix of the subject, default "[kiln]" */
	char **extra_recipients; /* owned: users (identifier or identity) always mailed ("alerts")
				  */
	size_t nextra_recipients;
};

/* reporter { kind = "irc", ... } (config-reporter-irc.c) */
struct config_reporter_irc {
	char *host;      /* owned */
	int port;        /* default 6667 */
	char *nick;      /* owned */
	char **channels; /* owned: "#ci" */
	size_t nchannels;
	char *password;   /* owned: the server's PASS, from secret(...), NULL: none */
	double rate;      /* lines per second sent (default 1) */
	int burst;        /* lines sent at once after a quiet spell (default 4) */
	bool allow_force; /* "NICK: force BUILDER" and "stop" (default false) */
};

/* reporter { kind = "http" | "slack" | "mattermost" | "matrix", ... }
 * (config-reporter-http.c) */
struct config_reporter_http {
	char *url;       /* owned: http: the POST target; slack, mattermost: the webhook (a
			  * secret); matrix: the homeserver's base URL */
	bool url_secret; /* url came from secret(...): never logged */
	char **header_names, **header_values; /* owned: http's extra headers */
	size_t nheaders;
	char *hmac_key; /* owned, http: secret(...) signing the body, NULL: unsigned */
	char *token;    /* owned, matrix: the access token (secret) */
	char *room;     /* owned, matrix: "!id:server" */
	char *username; /* owned, slack/mattermost: NULL: the hook's own */
	char *channel;  /* owned, slack/mattermost: NULL: the hook's own */
	char *icon_url; /* owned, slack/mattermost, NULL: none */
};

/* reporter { kind = "telegram" | "zulip", ... } (config-reporter-chat.c) */
struct config_reporter_chat {
	char *url;     /* owned: the API's base URL ("https://api.telegram.org") */
	char *token;   /* owned, secret: telegram's bot token, zulip's API key */
	char *chat_id; /* owned, telegram: "-1001234" or "@channel" */
	char *email;   /* owned, zulip: the bot's address (basic auth's user) */
	char *stream;  /* owned, zulip */
	char *topic;   /* owned, zulip: NULL: the builder's name */
};

/* reporter { kind = "github" | "gitlab" | "gitea" | "bitbucket" | "gerrit", ... }
 * (config-reporter-statuses.c, slice "statuses") */
struct config_reporter_status {
	char *base_url; /* owned: the API's base URL, no trailing '/' */
	char *token;    /* owned secret: the API token (NULL: user/password) */
	char *user;     /* owned: HTTP basic login (bitbucket, gerrit), NULL: none */
	char *password; /* owned secret: with user */
	char *owner;    /* owned: owner / workspace / project key, NULL: from the URL */
	char *repo;     /* owned: repository (gitlab: project id or path), NULL: the URL's */
	char *context;  /* owned: the status's context ("{builder}" replaced) */
	char *label;    /* owned, gerrit: the label voted (default "Verified") */
	bool server;    /* bitbucket: Bitbucket Server / Data Center */
};

struct config_reporter {
	enum config_reporter_kind kind;
	char *name; /* owned: unique among reporters; default the kind's name */
	int line;
	struct config_report_filter filter;
	/* its outbound queue (master/curl-uv.h) */
	size_t max_messages;
	uint64_t max_bytes;
	double timeout;                     /* seconds per attempt */
	unsigned attempts;                  /* tries of a message, the first included */
	double backoff;                     /* seconds before the second attempt (doubles) */
	struct config_reporter_email email; /* kind EMAIL */
	struct config_reporter_irc irc;     /* kind IRC */
	struct config_reporter_http http;   /* kinds HTTP, SLACK, MATTERMOST, MATRIX */
	unsigned events;                    /* enum config_report_event flags (slice "alerts") */
	struct config_reporter_chat chat;   /* kinds TELEGRAM, ZULIP (slice "alerts") */
	/* kinds GITHUB ... GERRIT (slice "statuses") */
	struct config_reporter_status status;
	uint64_t fp; /* slice "reconfig": fingerprint of its declaration (config-fp.c) */
};
const char *config_report_mode_name(enum config_report_mode mode);
/* ==== end of reporters ========================================================== */

/* ---- web login and roles (config-auth.c, slice "weblogin"; docs/CONFIG.md "auth") ---- */
enum config_role {
	CONFIG_ROLE_ADMIN = 1u << 0,
	CONFIG_ROLE_FORCE = 1u << 1,
	CONFIG_ROLE_STOP = 1u << 2,
	CONFIG_ROLE_CANCEL = 1u << 3,
	CONFIG_ROLE_VIEW = 1u << 4,
};

/* roles = { { role = "force", users = {...}, builders = {...} }, ... } */
struct config_auth_rule {
	unsigned role; /* one CONFIG_ROLE_* */
	char **users;  /* owned: user names, "*" any logged-in user */
	size_t nusers;
	char **builders; /* owned: glob patterns (fnmatch); none: every builder */
	size_t nbuilders;
	int line;
};

struct config_auth {
	bool anonymous_read;       /* default true */
	int anonymous_control;     /* -1 unset (off: auth is configured), 0, 1 */
	char *htpasswd;            /* owned: path (relative to the basedir), NULL: none */
	long long session_max_age; /* seconds a session lives at most (default 7 days) */
	long long session_idle; /* seconds without a request that end it (default 1 day; 0 none) */
	struct config_auth_rule *rule; /* owned */
	size_t nrules;
};

/* "admin" -> CONFIG_ROLE_ADMIN ...; 0 for an unknown name. */
unsigned config_role_parse(const char *name, size_t len);
/* "admin,force" -> bits; -1 when a name is unknown. */
int config_roles_parse_list(const char *text, unsigned *ret);
const char *config_role_name(unsigned role);

#endif
