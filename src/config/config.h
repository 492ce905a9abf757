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
 * collapse_requests), the state is kept in cfg->lua and lives until
 * config_free(); the structs refer to those functions by opaque ints.  The
 * runtime calls (config_filter_match, config_change_important,
 * config_call_collapse) run in that state, each under its own budget (1
 * million instructions, 1 s of thread CPU) and the load's memory cap; they
 * cannot declare anything or set globals, but a function's upvalues persist
 * from one call to the next.
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

struct config;

struct config_lua;

struct config_listen {
	char *host; /* owned; numeric or "localhost"; default 127.0.0.1 */
	int port;   /* 0 = any free port */
};

struct config_worker {
	char *name;     /* owned */
	char *password; /* owned: from secret(), never from config text */
	int max_builds; /* >= 1, default 1 */
	int line;       /* where it was declared in master.lua */
};

enum config_step_kind {
	CONFIG_STEP_SHELL,
	CONFIG_STEP_TRIGGER,
	CONFIG_STEP_PATCH /* config-sched.c */
};

struct config_env {
	char *name;  /* owned */
	char *value; /* owned; NULL = remove the variable on the worker */
};

struct config_step {
	enum config_step_kind kind;
	char *name;    /* owned; default: derived from the command (Buildbot-like) */
	char **argv;   /* owned, NULL-terminated; set when command was a list */
	char *command; /* owned; set when command was a string (run with /bin/sh -c) */
	struct config_env *env;
	size_t nenv;
	char *workdir;         /* owned; relative to the builder's build dir; default "build" */
	double timeout;        /* seconds without output before kill; default 1200; 0 = none */
	double max_time;       /* seconds in total; 0 = none */
	bool halt_on_failure;  /* default false */
	bool flunk_on_failure; /* default true */
	bool warn_on_failure;  /* default false */
	bool always_run;       /* default false */
	int line;
	/* trigger { } (CONFIG_STEP_TRIGGER, config-sched.c) */
	char **trigger_schedulers; /* owned names of triggerable schedulers */
	size_t ntrigger_schedulers;
	bool wait_for_finish;               /* default false */
	struct config_prop *set_properties; /* owned */
	size_t nset_properties;
	/* apply_patch { } (CONFIG_STEP_PATCH): applies a try patch, if any */
	bool patch_with_git; /* tool = "git" (git apply) instead of patch */
	/* locks = { ... } (config-lock.c): taken around the step, sorted by lock */
	struct config_lock_access *locks; /* owned */
	size_t nlocks;
};

struct config_builder {
	char *name;        /* owned */
	char *description; /* owned, may be NULL */
	char **tags;       /* owned */
	size_t ntags;
	char **workers; /* owned names; each names a declared worker */
	size_t nworkers;
	char *builddir; /* owned; default = name */
	struct config_step *steps;
	size_t nsteps;
	int line;
	/* queue (config-sched.c) */
	int collapse_requests; /* CONFIG_COLLAPSE_*: default: the global setting */
	int collapse_fn;       /* a Lua function (CONFIG_COLLAPSE_FN), see config_call_collapse */
	int cancel_superseded; /* CONFIG_SUPERSEDE_*; default none */
	/* locks = { ... } (config-lock.c): taken for the whole build, sorted by lock */
	struct config_lock_access *locks; /* owned */
	size_t nlocks;
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
};

/* A change as Lua functions and filters see it (all borrowed). */
struct config_change_view {
	const char *branch, *project, *repository, *category, *codebase, *revision;
	const char *author, *comments;
	const char *const *files;
	size_t nfiles;
};

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
enum config_poller_kind { CONFIG_POLLER_GIT, CONFIG_POLLER_HG, CONFIG_POLLER_SVN };

/* git_poller { }, hg_poller { }, svn_poller { } */
struct config_poller {
	enum config_poller_kind kind;
	char *name;       /* owned; unique among change sources; default: the repository */
	char *repository; /* owned: URL or path the VCS tool understands */
	char **branches;  /* owned (git, hg); NULL with all_branches */
	size_t nbranches;
	bool all_branches; /* git: branches = "all" */
	bool tags;         /* git: also turn new tags into changes (default false) */
	double interval;   /* seconds between polls, default 60 (> 0) */
	char *project, *category, *codebase; /* owned, may be NULL: copied into changes */
	char *revlink; /* owned, may be NULL: a format with one %s for the revision */
	char *branch;  /* owned (svn): the branch name given to changes, may be NULL */
	int line;
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

struct config {
	char *title;                  /* owned; default "Kiln" */
	char *title_url;              /* owned, may be NULL */
	char *url;                    /* owned: the master's public URL, may be NULL */
	struct config_listen http;    /* default 127.0.0.1:8010 */
	struct config_listen workers; /* default 127.0.0.1:9989 */
	char *db_url; /* owned; default "sqlite:state.sqlite" (relative to basedir) */
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
	/* ---- schedulers and queue (config-sched.c) ---- */
	int collapse_requests; /* global collapse_requests: CONFIG_COLLAPSE_NO/YES/FN */
	int collapse_fn;
	struct config_lua *lua; /* owned: the Lua state kept for functions and patterns
				   (NULL when the file has none); see config_filter_match */
	/* ---- change sources and hooks (config-changes.c) ---- */
	struct config_poller *poller;
	size_t npollers, poller_alloc;
	struct config_change_hook change_hook;
	/* ---- locks (config-lock.c) ---- */
	struct config_lock *lock; /* owned, in declaration order (the acquisition order) */
	size_t nlocks, lock_alloc;
};

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

const struct config_worker *config_find_worker(const struct config *cfg, const char *name);
const struct config_builder *config_find_builder(const struct config *cfg, const char *name);

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

#endif
