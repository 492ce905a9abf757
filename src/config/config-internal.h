/*
 * Shared between the config loader's files (config.c: sandbox, loading,
 * freeing; config-dsl.c: the declarations master.lua calls).  Only
 * src/config/ includes this: Lua never leaks out of the folder.
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
	size_t mem_limit;
	long long insns;       /* Lua instructions run (plus allocation work), see config.c */
	double cpu_deadline;   /* thread CPU seconds at which loading stops */
	bool aborted;          /* a limit was hit: pcall must not swallow the error */
	bool mem_error;        /* the allocator refused and Lua raised "not enough memory" */
	char abort_msg[256];   /* the message for 'aborted' */
	int http_line, workers_line; /* where http / workers_listen were set, 0 = default */
};

struct config_ctx *config_ctx_of(lua_State *L);
/* The innermost master.lua line on the call stack, 0 if none. */
int config_line(lua_State *L);

/* Raises a Lua error "CHUNK:LINE: message", LINE being the innermost
 * master.lua line on the call stack (the declaration being evaluated). */
int config_raise(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with an explicit line (0 = none). */
int config_raise_at(lua_State *L, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Counts n bytes of C memory against the load's memory limit; raises past it. */
void config_charge(lua_State *L, size_t n);
/* A charged copy of s[0..len) (C memory, freed with the config). */
char *config_strdup(lua_State *L, const char *s, size_t len);

/* Registers worker, builder, shell, force_scheduler, secret and the
 * settings hook on the global table.  Called once per state. */
void config_dsl_open(lua_State *L);
/* After the chunk ran: cross references, the implicit force scheduler.
 * Raises on the first problem. */
void config_dsl_finish(lua_State *L);

void config_step_release(struct config_step *s);


/* The secret() value type and the declaration helpers (config-dsl.c),
 * shared with the other declaration files (config-changes.c). */
#define MT_SECRET "kiln.secret"
struct dsl_secret {
	char *name;  /* owned */
	char *value; /* owned */
};
const char *dsl_typename(lua_State *L, int idx);
/* Pushes t[key] (raw) and returns its type. */
int dsl_get(lua_State *L, int t, const char *key);
void dsl_check_keys(lua_State *L, int t, const char *what, const char *const *keys);
const char *dsl_check_string(lua_State *L, int idx, const char *what, const char *key,
			     size_t *ret_len);
const char *dsl_opt_string(lua_State *L, int t, const char *what, const char *key,
			   size_t *ret_len);
const char *dsl_opt_name(lua_State *L, int t, const char *what, const char *key);
bool dsl_opt_bool(lua_State *L, int t, const char *what, const char *key, bool def);
double dsl_opt_seconds(lua_State *L, int t, const char *what, const char *key, double def);
size_t dsl_check_list(lua_State *L, int idx, const char *what, const char *key, const char *of);
char **dsl_new_strv(lua_State *L, size_t n);
void dsl_fill_list(lua_State *L, int idx, char **v, size_t *ret_n, size_t n);
void dsl_check_table_arg(lua_State *L, const char *decl);
void dsl_what(lua_State *L, char *what, size_t size, const char *decl, const char *name);

/* ---- change sources and hooks (config-changes.c) ---- */
/* Registers git_poller, hg_poller, svn_poller. */
void config_changes_open(lua_State *L);
/* The change_hook setting: true if key was handled (value at index 3). */
bool config_changes_setting(lua_State *L, const char *key);
void config_changes_release(struct config *cfg);

#endif
