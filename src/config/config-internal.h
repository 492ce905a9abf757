/*
 * Shared between the config loader's files: config.c (sandbox, loading,
 * freeing, config_lua_run), config-check.c (value checks, the dsl_*
 * helpers), config-dsl.c (settings, worker { }, setup and final checks),
 * config-secret.c, config-step.c, config-builder.c, config-sched.c,
 * config-changes.c (the declarations master.lua calls) and config-runtime.c
 * (the master's calls into the kept state).  Only src/config/ includes
 * this: Lua never leaks out of the folder.
 */
#ifndef KILN_CONFIG_INTERNAL_H
#define KILN_CONFIG_INTERNAL_H

#include "config/config.h"

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

/* One load in progress.  Reached from any lua_State callback through the
 * allocator's userdata (lua_getallocf), so it needs no registry slot. */
struct config_ctx {
	struct config *cfg;    /* being built; owned until handed out */
	const char *chunkname; /* borrowed: "master.lua" */
	const char *basedir;   /* borrowed, may be NULL: secrets then come from the environment */
	size_t mem_used;       /* Lua heap plus C copies made while loading */
	size_t c_charged;      /* of which C copies (config_charge), for config-step.c */
	size_t c_at_collect;   /* c_charged after the last config_collect_if_tight */
	size_t mem_limit;
	long long insns;     /* Lua instructions run (plus allocation work), see config.c */
	double cpu_deadline; /* thread CPU seconds at which the current run stops */
	double cpu_limit;    /* CPU seconds of the current run (load or call), for messages */
	bool aborted;        /* a limit was hit: pcall must not swallow the error */
	bool mem_error;      /* the allocator refused and Lua raised "not enough memory" */
	char abort_msg[256]; /* the message for 'aborted' */
	int http_line, workers_line; /* where http / workers_listen were set, 0 = default */
	bool loaded;                 /* master.lua has run: declarations and settings refuse */
	bool keep_lua;       /* a function or pattern was kept: the state outlives the load */
	long long run_limit; /* instruction limit of the current run (load or call) */
	unsigned step_rest;  /* library steps not yet a whole instruction (config_charge_steps) */
	unsigned long steps_unclocked; /* library steps since the CPU clock was last read */
};

#define MT_SECRET "kiln.secret"
#define MT_STEP "kiln.step"
#define MT_INTERP "kiln.interpolate"
/* registry tables: declared name -> line */
#define REG_WORKERS "kiln.workers"
#define REG_BUILDERS "kiln.builders"
#define REG_SCHEDULERS "kiln.schedulers"
/* string.find as it was before master.lua ran (patterns, config-runtime.c) */
#define REG_FIND "kiln.string.find"

struct dsl_secret {
	char *name;  /* owned */
	char *value; /* owned */
};

/* The Lua state kept after loading when master.lua stored functions or
 * patterns (struct config.lua): functions are referenced in its registry. */
struct config_lua {
	struct config_ctx ctx; /* the allocator's userdata: lives as long as L */
	lua_State *L;
	char *chunkname; /* owned */
};
/* Runs f(L) with ud as its one light-userdata argument, in protected mode,
 * under an instruction budget and a CPU-time cap.  0, or KILN_ECONFIG and
 * *ret_err (owned) "master.lua:LINE: message". */
int config_lua_run(struct config_lua *kl, lua_CFunction f, void *ud, char **ret_err);

struct config_ctx *config_ctx_of(lua_State *L);
/* slice "reconfig" (config-fp.c): before config_dsl_open() notes the
 * globals there are; after it wraps the new ones to fingerprint declarations */
void config_fp_begin(lua_State *L);
void config_fp_wrap(lua_State *L);
/* The innermost master.lua line on the call stack, 0 if none. */
int config_line(lua_State *L);

/* Raises a Lua error "CHUNK:LINE: message", LINE being the innermost
 * master.lua line on the call stack (the declaration being evaluated). */
/* NULL when s (len bytes) is a database URL Kiln opens, else the message
 * (to free); master.lua's 'database' and KILN_DATABASE (config-dsl.c) */
char *config_database_check(const char *s, size_t len);
int config_raise(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with an explicit line (0 = none). */
int config_raise_at(lua_State *L, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Charges work done inside a C library function (pattern matching steps,
 * elements moved or bytes written by string.rep and table.*), where no
 * instruction hook runs, to the current run: KILN_LUA_STEPS_PER_INSN steps
 * are one instruction, and the CPU clock is read every few thousand steps.
 * Past either limit the run stops for good (an error pcall cannot catch)
 * naming fname ("string.find") and the innermost master.lua line. */
void config_charge_steps(lua_State *L, unsigned long steps, const char *fname);

/* Counts n bytes of C memory against the load's memory limit; raises past it. */
void config_charge(lua_State *L, size_t n);
void config_collect_if_tight(lua_State *L);
/* A charged copy of s[0..len) (C memory, freed with the config). */
char *config_strdup(lua_State *L, const char *s, size_t len);

/* Registers worker, builder, shell, force_scheduler, secret and the
 * settings hook on the global table.  Called once per state. */
void config_dsl_open(lua_State *L);
/* After the chunk ran: cross references, the implicit force scheduler.
 * Raises on the first problem. */
void config_dsl_finish(lua_State *L);

void config_step_release(struct config_step *s);

/* ---- the declarations' own files: each registers its globals ---- */
void config_secret_open(lua_State *L);
/* Reads secret name[0..nlen) now (as secret() does) for %(secret:NAME)s in
 * a template: kept in cfg->named_secrets and masked like every secret. */
void config_secret_named(lua_State *L, const char *name,
			 size_t nlen);  /* secret() and its metatable (config-secret.c) */
void config_step_open(lua_State *L);    /* shell {} and the step metatable (config-step.c) */
void config_builder_open(lua_State *L); /* builder {} (config-builder.c) */
/* Deep-copies step src (a shell {} or scheduler step) into a builder's dst. */
void config_step_copy(lua_State *L, struct config_step *dst, const struct config_step *src);

/* ---- the kinds of step (config-step-NAME.c; their table: config-step.c) ---- */
int config_step_shell(lua_State *L);
int config_step_trigger(lua_State *L);
void config_step_trigger_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
void config_step_trigger_release(struct config_step *s);
int config_step_patch(lua_State *L);
/* A command step's declaration (shell's keys plus extra_keys, NULL-ended,
 * which the caller reads): pushes the step userdata, at the top. */
struct config_step *config_step_command_new(lua_State *L, const char *decl,
					    enum config_step_kind kind,
					    const char *const *extra_keys);
int config_step_compile(lua_State *L);
void config_step_compile_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
void config_step_compile_release(struct config_step *s);
int config_step_file_upload(lua_State *L); /* config-step-transfer.c */
int config_step_directory_upload(lua_State *L);
int config_step_file_download(lua_State *L);
int config_step_string_download(lua_State *L);
int config_step_json_properties_download(lua_State *L);
void config_step_transfer_copy(lua_State *L, struct config_step *dst,
			       const struct config_step *src);
void config_step_transfer_release(struct config_step *s);
int config_step_test(lua_State *L);
void config_step_test_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
void config_step_test_release(struct config_step *s);
int config_step_git(lua_State *L);
int config_step_hg(lua_State *L);
int config_step_svn(lua_State *L);
int config_step_bzr(lua_State *L);
int config_step_darcs(lua_State *L);
int config_step_cvs(lua_State *L);
void config_step_source_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
void config_step_source_release(struct config_step *s);
/* env = { NAME = value } of the step declaration at index 1 (a command step's key). */
void config_step_env(lua_State *L, const char *what, struct config_step *step);
/* t[arg].env = { NAME = value | secret(...) | false }, sorted by name. */
void config_read_env(lua_State *L, int arg, const char *what, struct config_env **ret_env,
		     size_t *ret_n);
void config_env_free(struct config_env *env, size_t n);
/* Keeps the function at idx in the registry: the state outlives the load. */
int config_ref_fn(lua_State *L, int idx);
/* A renderable at idx: a string, a number (as text) or a function. */
void config_read_rstr(lua_State *L, int idx, const char *what, const char *key,
		      struct config_rstr *out);
void config_rstr_copy(lua_State *L, struct config_rstr *dst, const struct config_rstr *src);

/* ---- helpers shared by the declaration files (config-check.c) ---- */
/* Makes the metatable mt of an opaque userdata type (its __name, __gc when
 * gc is not NULL, __tostring, and a hidden __metatable); leaves it on the
 * stack for more fields. */
void dsl_new_type(lua_State *L, const char *mt, const char *name, lua_CFunction gc,
		  lua_CFunction tostring);
const char *dsl_typename(lua_State *L, int idx);
/* Pushes t[key] (raw) and returns its type. */
int dsl_get(lua_State *L, int t, const char *key);
void dsl_check_keys(lua_State *L, int t, const char *what, const char *const *keys);
const char *dsl_check_string(lua_State *L, int idx, const char *what, const char *key,
			     size_t *ret_len);
const char *dsl_opt_string(lua_State *L, int t, const char *what, const char *key, size_t *ret_len);
void dsl_check_name(lua_State *L, const char *what, const char *key, const char *s, size_t len);
/* A relative path without '..' components (workdir, builddir). */
void dsl_check_relpath(lua_State *L, const char *what, const char *key, const char *s, size_t len);
const char *dsl_opt_name(lua_State *L, int t, const char *what, const char *key);
const char *dsl_req_name(lua_State *L, int t, const char *what, const char *key);
bool dsl_opt_bool(lua_State *L, int t, const char *what, const char *key, bool def);
/* Reads the result flags every step kind shares (halt_on_failure,
 * flunk_on_failure, warn_on_failure, always_run) from the table at index 1
 * into a zeroed step; the caller fills in the rest. */
struct config_step dsl_step_flags(lua_State *L, const char *what);
/* Those flags' keys, for a step kind's list of allowed keys. */
#define DSL_STEP_FLAG_KEYS                                                                         \
	"halt_on_failure", "flunk_on_failure", "warn_on_failure", "always_run", DSL_STEP_OPT_KEYS
/* The options of every kind (slice "misc", config-step-props.c), read by
 * config_step_options() after the kind's declaration; command steps also
 * take retry and decode_rc (config_step_command_new's keys). */
#define DSL_STEP_OPT_KEYS "do_step_if", "hide_step_if", "description", "description_done", "numbers"
void config_step_options(lua_State *L, const char *decl, struct config_step *s);
void config_step_options_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
void config_step_options_release(struct config_step *s);
int config_step_set_property(lua_State *L);
int config_step_set_properties(lua_State *L);
int config_step_propcmd(lua_State *L);
int config_step_log(lua_State *L);
int config_step_master_shell(lua_State *L);
void config_step_props_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
void config_step_props_release(struct config_step *s);
void config_step_log_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
void config_step_log_release(struct config_step *s);
/* slice "measure" (config-step-measure.c) */
int config_step_tree_size(lua_State *L);
int config_step_deb_build(lua_State *L);
int config_step_deb_lintian(lua_State *L);
long long dsl_opt_int(lua_State *L, int t, const char *what, const char *key, long long def,
		      long long min, long long max);
double dsl_opt_seconds(lua_State *L, int t, const char *what, const char *key, double def);
size_t dsl_check_list(lua_State *L, int idx, const char *what, const char *key, const char *of);
size_t dsl_check_name_list(lua_State *L, int idx, const char *what, const char *key);
char **dsl_new_strv(lua_State *L, size_t n);
void dsl_fill_list(lua_State *L, int idx, char **v, size_t *ret_n, size_t n);
void dsl_check_unique(lua_State *L, const char *reg, const char *kind, const char *name);
void dsl_register(lua_State *L, const char *reg, const char *name, int line);
bool dsl_registered(lua_State *L, const char *reg, const char *name);
void dsl_check_table_arg(lua_State *L, const char *decl);
void dsl_what(lua_State *L, char *what, size_t size, const char *decl, const char *name);

/* ---- latent and local workers (config-latent.c) ---- */
/* worker { latent = { } } of the worker w just added (table at index 1). */
void config_latent_read(lua_State *L, const char *what, struct config_worker *w);
void config_latent_free(struct config_latent *l);          /* NULL-safe */
void config_latent_open(lua_State *L);                     /* local_worker { } */
bool config_latent_setting(lua_State *L, const char *key); /* latent_max_count */

/* ---- numbers over time (config-numbers.c) ---- */
/* The global setting 'regression' (false: key is not it). */
bool config_numbers_setting(lua_State *L, const char *key);
bool config_artifacts_setting(lua_State *L, const char *key); /* artifacts = { } */
bool config_push_setting(lua_State *L, const char *key);      /* push, expected_reporters */
void config_push_release(struct config *cfg);                 /* config-push.c */
/* A builder's 'regression' key, from the table at index 1. */
void config_numbers_builder(lua_State *L, const char *what, const char *builder);

/* ---- schedulers and queue (config-sched.c) ---- */
/* Registers the scheduler declarations and trigger {}. */
void config_sched_open(lua_State *L);
/* Fills default builder lists, checks references, adds the implicit force scheduler. */
void config_sched_finish(lua_State *L);
/* A global setting of this module (collapse_requests): true if handled. */
bool config_sched_setting(lua_State *L, const char *key);
/* builder { collapse_requests, cancel_superseded } of the builder just copied (table at 1). */
void config_sched_builder(lua_State *L, const char *what, struct config_builder *b);
/* Deep-copies the trigger fields of a step (dst starts as a shallow copy). */
/* t[key] = { name = value, ... } as properties (JSON text values). */
void config_sched_props(lua_State *L, int t, const char *what, const char *key,
			struct config_prop **ret, size_t *ret_n);
void config_sched_strv_free(char **v, size_t n);
void config_sched_release(struct config_scheduler *s);
void config_prop_free(struct config_prop *p, size_t n);

/* ---- change sources and hooks (config-changes.c) ---- */
/* Registers git_poller, hg_poller, svn_poller. */
void config_changes_open(lua_State *L);
/* The change_hook setting: true if key was handled (value at index 3). */
bool config_changes_setting(lua_State *L, const char *key);
void config_changes_release(struct config *cfg);

/* ---- metrics push (config-tsdb.c) ---- */
bool config_tsdb_setting(lua_State *L, const char *key); /* metrics_push: true if handled */
bool config_log_setting(lua_State *L, const char *key);  /* log_format (slice "operator") */
/* workers_reattach_grace, workers_keepalive (config-workers.c; slice "reattach") */
/* the longest workers_reattach_grace, and a worker's reattach_grace */
#define CONFIG_REATTACH_GRACE_MAX 86400
bool config_workers_setting(lua_State *L, const char *key);
void config_tsdb_release(struct config *cfg);
/* ---- several codebases (config-codebase.c) ---- */
/* A scheduler's codebases = { NAME = { ... } } from the table at t (a force
 * scheduler's list form is its allow list, left to config-sched.c). */
void config_codebase_sched(lua_State *L, int t, const char *what, struct config_scheduler *s);
void config_codebase_sched_release(struct config_scheduler *s);
/* The table at idx has no list part: a codebases map, not an allow list. */
bool config_codebase_is_map(lua_State *L, int idx);
/* At most KILN_MAX_CODEBASE_NAME bytes, no NUL or control characters. */
bool config_codebase_name_ok(const char *s, size_t len);
/* The codebase_generator setting: true if key was handled (value at index 3). */
bool config_codebase_setting(lua_State *L, const char *key);
/* codebase_generator's table entry for repository: 1 and *ret (owned), or 0. */
int config_codebase_lookup(const struct config_codebase_gen *g, const char *repository, char **ret);
void config_codebase_release(struct config *cfg);
/* ---- logfiles (config-step-shell.c; slice "logfiles") ---- */
/* Deep-copies src's logfiles into dst (a shallow copy of src: its
 * logfiles are never shared, even when the copy raises). */
void config_step_logfiles_copy(lua_State *L, struct config_step *dst,
			       const struct config_step *src);
void config_step_logfiles_release(struct config_step *s);
/* ---- locks (config-lock.c; slice "locks") ---- */
void config_lock_open(lua_State *L); /* master_lock, worker_lock, lock:access() */
/* locks = { ... } of shell { } (table at 1) into s; deep copy into a builder */
void config_lock_step(lua_State *L, const char *what, struct config_step *s);
void config_lock_step_copy(lua_State *L, struct config_step *dst, const struct config_step *src);
/* locks = { ... } of builder { } (table at 1), after its steps are copied */
void config_lock_builder(lua_State *L, const char *what, struct config_builder *b);
void config_lock_finish(lua_State *L); /* max_count_for_worker names declared workers */
void config_lock_release(struct config *cfg);
/* ---- dispatch hooks (config-dispatch.c; slice "dispatch") ---- */
/* The prioritize_builders setting: true if key was handled (value at index 3). */
bool config_dispatch_setting(lua_State *L, const char *key);
/* Pushes JSON value v as a Lua value (config-render.c): objects and arrays
 * as tables, nested at most 16 deep (deeper: nil), strings cut at
 * KILN_LUA_MAX_TEXT; charged to the run's memory.  depth: 1 at the top. */
struct json_t;
void config_render_push(lua_State *L, const struct json_t *v, int depth);

/* ---- web login and roles (config-auth.c, slice "weblogin") ---- */
bool config_auth_setting(lua_State *L, const char *key); /* auth = { } */
void config_auth_release(struct config *cfg);

/* slice "retention": retention = { } (config-retention.c), and the artifacts
 * table parser both settings share (config-artifacts.c) */
bool config_retention_setting(lua_State *L);
/* builder { retention = { ... } } at index 1 into b->retention (issue 13) */
void config_retention_builder(lua_State *L, const char *what, struct config_builder *b);
void config_artifacts_table(lua_State *L, int t, const char *what);

#endif
