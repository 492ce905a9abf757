/*
 * The master's configuration as plain C structs.  config_load() runs
 * BASEDIR/master.lua in a sandboxed Lua 5.4 state (no os.execute, no io,
 * limits on memory and instructions), validates it, copies everything into
 * these structs and closes the state: Lua never leaks out of src/config/.
 *
 * Errors come back as one line "master.lua:LINE: message" in *ret_err
 * (owned by the caller), the same text `kiln checkconfig` prints.
 */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

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

enum config_step_kind { CONFIG_STEP_SHELL };

struct config_env {
	char *name;  /* owned */
	char *value; /* owned; NULL = remove the variable on the worker */
};

struct config_step {
	enum config_step_kind kind;
	char *name;          /* owned; default: derived from the command (Buildbot-like) */
	char **argv;         /* owned, NULL-terminated; set when command was a list */
	char *command;       /* owned; set when command was a string (run with /bin/sh -c) */
	struct config_env *env;
	size_t nenv;
	char *workdir;       /* owned; relative to the builder's build dir; default "build" */
	double timeout;      /* seconds without output before kill; default 1200; 0 = none */
	double max_time;     /* seconds in total; 0 = none */
	bool halt_on_failure;  /* default false */
	bool flunk_on_failure; /* default true */
	bool warn_on_failure;  /* default false */
	bool always_run;       /* default false */
	int line;
};

struct config_builder {
	char *name;        /* owned */
	char *description; /* owned, may be NULL */
	char **tags;       /* owned */
	size_t ntags;
	char **workers;    /* owned names; each names a declared worker */
	size_t nworkers;
	char *builddir;    /* owned; default = name */
	struct config_step *steps;
	size_t nsteps;
	int line;
};

enum config_scheduler_kind { CONFIG_SCHED_FORCE };

struct config_scheduler {
	enum config_scheduler_kind kind;
	char *name;      /* owned; force schedulers default to "force" */
	char **builders; /* owned names; each names a declared builder */
	size_t nbuilders;
	int line;
};

/* ==== change sources and change hooks (config-changes.c) ====================== */
enum config_poller_kind { CONFIG_POLLER_GIT, CONFIG_POLLER_HG, CONFIG_POLLER_SVN };

/* git_poller { }, hg_poller { }, svn_poller { } */
struct config_poller {
	enum config_poller_kind kind;
	char *name;         /* owned; unique among change sources; default: the repository */
	char *repository;   /* owned: URL or path the VCS tool understands */
	char **branches;    /* owned (git, hg); NULL with all_branches */
	size_t nbranches;
	bool all_branches;  /* git: branches = "all" */
	bool tags;          /* git: also turn new tags into changes (default false) */
	double interval;    /* seconds between polls, default 60 (> 0) */
	char *project, *category, *codebase; /* owned, may be NULL: copied into changes */
	char *revlink;      /* owned, may be NULL: a format with one %s for the revision */
	char *branch;       /* owned (svn): the branch name given to changes, may be NULL */
	int line;
};

/* change_hook = { token = ..., github = { secret = ... }, ... }: the
 * /change_hook/DIALECT endpoints (base and poller are on when the table
 * is set; the others when their key is present). */
struct config_change_hook {
	bool enabled;
	char *token;           /* owned, may be NULL: Bearer token for base, poller, sendchange */
	bool github, gitlab, gitea;
	char *github_secret;   /* owned, may be NULL (no signature check) */
	char *gitlab_token;    /* owned, may be NULL */
	char *gitea_secret;    /* owned, may be NULL */
	int line;
};
/* ==== end of change sources ====================================================== */

struct config {
	char *title;     /* owned; default "Kiln" */
	char *title_url; /* owned, may be NULL */
	char *url;       /* owned: the master's public URL, may be NULL */
	struct config_listen http;    /* default 127.0.0.1:8010 */
	struct config_listen workers; /* default 127.0.0.1:9989 */
	char *db_url;    /* owned; default "sqlite:state.sqlite" (relative to basedir) */
	struct config_worker *worker;
	size_t nworkers;
	struct config_builder *builder;
	size_t nbuilders;
	struct config_scheduler *scheduler;
	size_t nschedulers;
	/* Every distinct value secret() returned while loading (owned), so the
	 * master can mask them in stored logs. */
	char **secrets;
	size_t nsecrets;
	/* ---- change sources and hooks (config-changes.c) ---- */
	struct config_poller *poller;
	size_t npollers;
	struct config_change_hook change_hook;
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

/* The commented sample master.lua written by `kiln create-master`. */
extern const char config_sample[];

#endif
