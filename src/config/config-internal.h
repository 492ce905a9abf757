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

#endif
