/*
 * The configuration loader: runs master.lua in a sandboxed Lua 5.4 state
 * (custom allocator with a memory cap, instruction-count hook, only safe
 * libraries, text chunks only), lets the declaration files (config-dsl.c
 * and its siblings, see config-internal.h) turn its declarations
 * into struct config, then closes the state, or keeps it for the master's
 * later calls (config_lua_run) when functions or patterns were stored.  See
 * config.h, docs/CONFIG.md.
 */
#define LOG_SUBSYS "config"
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "config/config-pattern.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The count hook runs every this many VM instructions. */
#define CONFIG_HOOK_EVERY 1000
/* Allocating this many bytes counts as one instruction: C library calls
 * (string.rep, ..) do work the count hook cannot see. */
#define CONFIG_ALLOC_BYTES_PER_INSN 16
/* A caught error counts as this many instructions: raising one (message,
 * traceback of frames, longjmp) costs far more than one instruction. */
#define CONFIG_CAUGHT_ERROR_INSNS 1000
/* Error lines handed out are cut here (an error() message can be huge). */
#define CONFIG_MAX_ERROR 1024

struct config_ctx *config_ctx_of(lua_State *L)
{
	void *ud;
	lua_getallocf(L, &ud);
	return ud;
}

static void *config_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct config_ctx *ctx = ud;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		free(ptr);
		ctx->mem_used -= old;
		return NULL;
	}
	if (nsize > old && nsize - old > ctx->mem_limit - ctx->mem_used)
		return NULL; /* Lua raises "not enough memory" (LUA_ERRMEM) */
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	ctx->mem_used = ctx->mem_used - old + nsize;
	ctx->insns += (long long)(nsize / CONFIG_ALLOC_BYTES_PER_INSN);
	return p;
}

void config_charge(lua_State *L, size_t n)
{
	struct config_ctx *ctx = config_ctx_of(L);
	/* Lua garbage counts until it is collected: collect it all before
	 * refusing, as Lua does before it refuses an allocation of its own
	 * (an emergency collection).  Without it a load whose live memory
	 * fits failed on the garbage of the declarations already copied. */
	if (n > ctx->mem_limit - ctx->mem_used)
		lua_gc(L, LUA_GCCOLLECT);
	if (n > ctx->mem_limit - ctx->mem_used) {
		ctx->aborted = true;
		snprintf(ctx->abort_msg, sizeof(ctx->abort_msg),
			 "%s: memory limit exceeded (%zu MiB)", ctx->chunkname,
			 ctx->mem_limit >> 20);
		lua_pushstring(L, ctx->abort_msg);
		lua_error(L);
	}
	ctx->mem_used += n;
	ctx->c_charged += n;
}

/* Lua's emergency collection, when its own allocation would pass the cap,
 * runs no finalizers: the C copies of dead step declarations (given back
 * by their __gc) would still count and a load whose live memory fits
 * could fail on them.  Before a declaration, once the load is within an
 * eighth of its cap, collect fully (finalizers too), but only when C
 * copies grew by a sixteenth of the cap since the last time: a load whose
 * live memory really is near the cap does not collect at every step. */
void config_collect_if_tight(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	if (ctx->c_charged < ctx->c_at_collect)
		ctx->c_at_collect = ctx->c_charged; /* finalizers gave some back */
	if (ctx->mem_used < ctx->mem_limit - ctx->mem_limit / 8 ||
	    ctx->c_charged - ctx->c_at_collect < ctx->mem_limit / 16)
		return;
	lua_gc(L, LUA_GCCOLLECT);
	ctx->c_at_collect = ctx->c_charged;
}

char *config_strdup(lua_State *L, const char *s, size_t len)
{
	config_charge(L, len + 1);
	return xstrndup(s, len);
}

/* The generational collector: master.lua makes a few tables per
 * declaration (the declaration's table, its lists, a step userdata) that
 * die as soon as builder { } has copied them, while what it keeps (names,
 * the registries) only grows.  Young garbage is then collected in small
 * minor cycles instead of letting the heap double before each incremental
 * cycle: at 100,000 builders the Lua heap peaks at about 13 MB instead of
 * 20 MB (docs/PERFORMANCE.md), which the memory cap counts. */
static void config_gc_mode(lua_State *L)
{
	lua_gc(L, LUA_GCGEN, 0, 0);
}

/* The innermost line of master.lua on the stack: level 0 is the C function
 * raising, so start at its caller; C frames (pcall, table.sort) are skipped. */
int config_line(lua_State *L)
{
	lua_Debug ar;
	for (int level = 1; lua_getstack(L, level, &ar); level++)
		if (lua_getinfo(L, "l", &ar) && ar.currentline > 0)
			return ar.currentline;
	return 0;
}

static int config_raise_msg(lua_State *L, int line, const char *msg)
{
	struct config_ctx *ctx = config_ctx_of(L);
	if (line > 0)
		lua_pushfstring(L, "%s:%d: %s", ctx->chunkname, line, msg);
	else
		lua_pushfstring(L, "%s: %s", ctx->chunkname, msg);
	return lua_error(L);
}

int config_raise(lua_State *L, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return config_raise_msg(L, config_line(L), msg);
}

int config_raise_at(lua_State *L, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return config_raise_msg(L, line, msg);
}

static double config_cpu_now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void config_hook(lua_State *L, lua_Debug *ar);

/* Stops the current run for good: records "CHUNK:LINE: what" (line 0 =
 * none), makes every further instruction raise it (even inside __close
 * handlers) and raises it.  pcall cannot catch it (config_pcall_result). */
static int config_abort(lua_State *L, int line, const char *what)
{
	struct config_ctx *ctx = config_ctx_of(L);
	if (!ctx->aborted) {
		ctx->aborted = true;
		if (line > 0)
			snprintf(ctx->abort_msg, sizeof(ctx->abort_msg), "%s:%d: %s",
				 ctx->chunkname, line, what);
		else
			snprintf(ctx->abort_msg, sizeof(ctx->abort_msg), "%s: %s", ctx->chunkname,
				 what);
		lua_sethook(L, config_hook, LUA_MASKCOUNT, 1);
	}
	lua_pushstring(L, ctx->abort_msg);
	return lua_error(L);
}

/* Every CONFIG_HOOK_EVERY instructions.  The CPU clock catches what the
 * count misses: work inside one VM instruction (comparing two long
 * strings) is seen here, at most CONFIG_HOOK_EVERY instructions late.
 * Library calls that loop (patterns, table.*) charge their own work
 * through config_charge_steps instead, since no hook runs inside them. */
static void config_hook(lua_State *L, lua_Debug *ar)
{
	struct config_ctx *ctx = config_ctx_of(L);
	ctx->insns += CONFIG_HOOK_EVERY;
	bool over_insns = ctx->insns > ctx->run_limit;
	bool over_cpu = !over_insns && config_cpu_now() > ctx->cpu_deadline;
	if (!ctx->aborted && !over_insns && !over_cpu)
		return;
	char what[64];
	if (over_insns)
		snprintf(what, sizeof(what), "instruction limit exceeded (infinite loop?)");
	else
		snprintf(what, sizeof(what), "CPU time limit exceeded (%g s)", ctx->cpu_limit);
	lua_getinfo(L, "l", ar);
	config_abort(L, ar->currentline, what);
}

void config_charge_steps(lua_State *L, unsigned long steps, const char *fname)
{
	struct config_ctx *ctx = config_ctx_of(L);
	unsigned long long total = ctx->step_rest + (unsigned long long)steps;
	ctx->insns += (long long)(total / KILN_LUA_STEPS_PER_INSN);
	ctx->step_rest = (unsigned)(total % KILN_LUA_STEPS_PER_INSN);
	ctx->steps_unclocked += steps;
	bool over_insns = ctx->insns > ctx->run_limit;
	bool over_cpu = false;
	if (!over_insns && ctx->steps_unclocked >= CONFIG_PATTERN_CHARGE_EVERY) {
		ctx->steps_unclocked = 0;
		over_cpu = config_cpu_now() > ctx->cpu_deadline;
	}
	if (!ctx->aborted && !over_insns && !over_cpu)
		return;
	char what[128];
	if (over_cpu)
		snprintf(what, sizeof(what), "CPU time limit exceeded (%g s) in %s", ctx->cpu_limit,
			 fname);
	else
		snprintf(what, sizeof(what),
			 "instruction limit exceeded in %s (a pattern or size too costly for "
			 "this input?)",
			 fname);
	config_abort(L, config_line(L), what);
}

/* pcall and xpcall, except that a hit limit is never caught: the script
 * could otherwise loop forever around a pcall that swallows the abort. */
static int config_pcall_result(lua_State *L, int status, int extra)
{
	struct config_ctx *ctx = config_ctx_of(L);
	if (status != LUA_OK) {
		if (status == LUA_ERRMEM)
			ctx->mem_error = true;
		if (ctx->aborted || ctx->mem_error)
			return lua_error(L);
		ctx->insns += CONFIG_CAUGHT_ERROR_INSNS;
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - extra;
}

static int config_pcall(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
	return config_pcall_result(L, status, 0);
}

static int config_xpcall(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2); /* f, msgh, true, f, args... */
	int status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
	return config_pcall_result(L, status, 2);
}

/* setmetatable without __gc: finalizers run with hooks off, so an endless
 * one could never be stopped. */
static int config_setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return config_raise(L, "__gc metamethods are not allowed in master.lua");
		lua_pop(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* Appends s[0..len) to b, cut where b would pass 'limit' bytes (b's cap
 * leaves room for a mark after that).  0, 1 when cut, or -E2BIG. */
static int config_add_cut(struct buf *b, const char *s, size_t len, size_t limit)
{
	size_t room = b->len < limit ? limit - b->len : 0;
	bool cut = len > room;
	int r = buf_add(b, s, cut ? room : len);
	return r < 0 ? r : cut;
}

/* print() goes to the daemon's debug log (KILN_LOG=debug), not stdout.  A
 * long line is cut and ends in "..." so it never passes for the whole. */
#define CONFIG_PRINT_MAX 4096
static int config_print(lua_State *L)
{
	struct buf b;
	buf_init(&b, CONFIG_PRINT_MAX + 3);
	int n = lua_gettop(L);
	int r = 0;
	for (int i = 1; i <= n && r == 0; i++) {
		size_t len;
		const char *s = luaL_tolstring(L, i, &len);
		if (i > 1)
			r = config_add_cut(&b, "\t", 1, CONFIG_PRINT_MAX);
		if (r == 0)
			r = config_add_cut(&b, s, len, CONFIG_PRINT_MAX);
		lua_pop(L, 1);
	}
	if (r > 0)
		r = buf_adds(&b, "...");
	log_debug("%s:%d: print: %s", config_ctx_of(L)->chunkname, config_line(L),
		  r < 0 ? "(line too long)" : b.ptr);
	buf_release(&b);
	return 0;
}

/* os.getenv, except for secrets: those reach the config only via secret(). */
static int config_getenv(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	if (!strncmp(name, "KILN_SECRET_", 12))
		return config_raise(L, "os.getenv: %.60s is a secret: use secret(...)", name);
	lua_pushstring(L, getenv(name)); /* NULL pushes nil */
	return 1;
}

/* ---- library functions that loop in C ------------------------------------
 * No instruction hook runs inside a C function, so those whose work grows
 * with their arguments without allocating charge it (config_charge_steps):
 * the table functions that walk a range (a __len or a range of 2^50 nils
 * costs nothing to write) and the patterns (config-pattern.c).  string.rep
 * is replaced because "" repeated 2^62 times loops forever in Lua's own;
 * what it writes is allocated, so the memory cap bounds it. */

/* Steps charged per element a table function reads or writes: one
 * instruction, what the same loop written in Lua would cost at least. */
#define CONFIG_ELEM_STEPS KILN_LUA_STEPS_PER_INSN

/* Charges n elements (n counted from first to last, both included). */
static void config_charge_range(lua_State *L, lua_Integer first, lua_Integer last,
				unsigned long per, const char *fname)
{
	if (last < first)
		return;
	lua_Unsigned d = (lua_Unsigned)last - (lua_Unsigned)first; /* n - 1 */
	unsigned long steps = d >= ULONG_MAX / per - 1 ? ULONG_MAX : (unsigned long)(d + 1) * per;
	config_charge_steps(L, steps, fname);
}

/* string.rep(s, n, sep): Lua's loops n times even when s and sep are
 * empty; this one returns "" then, and copies by doubling otherwise. */
static int config_string_rep(lua_State *L)
{
	size_t len, lsep;
	const char *s = luaL_checklstring(L, 1, &len);
	lua_Integer n = luaL_checkinteger(L, 2);
	const char *sep = luaL_optlstring(L, 3, "", &lsep);
	if (n <= 0 || len + lsep == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	size_t unit = len + lsep;
	if (unit < len || unit > (SIZE_MAX / 2) / (lua_Unsigned)n)
		return luaL_error(L, "resulting string too large");
	size_t total = (size_t)n * unit - lsep;
	/* the allocation below is checked against the memory cap and counted
	 * as work (config_alloc); doubling makes the copying as cheap as that */
	luaL_Buffer b;
	char *out = luaL_buffinitsize(L, &b, total);
	memcpy(out, s, len);
	if (total > len)
		memcpy(out + len, sep, lsep);
	/* the text repeats every 'unit' bytes: double what is written */
	for (size_t done = total < unit ? total : unit; done < total;) {
		size_t k = done < total - done ? done : total - done;
		memcpy(out + done, out, k);
		done += k;
	}
	luaL_pushresultsize(&b, total);
	return 1;
}

/* table.concat(list, sep, i, j): the range is charged, then Lua's own runs
 * with j fixed (so a __len is asked once). */
static int config_table_concat(lua_State *L)
{
	lua_settop(L, 4);
	lua_Integer i = luaL_optinteger(L, 3, 1);
	lua_Integer j = lua_isnil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
	config_charge_range(L, i, j, CONFIG_ELEM_STEPS, "table.concat");
	lua_pushinteger(L, j);
	lua_replace(L, 4);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 4, 1);
	return 1;
}

/* table.move(a1, f, e, t, a2): the e - f + 1 elements are charged first. */
static int config_table_move(lua_State *L)
{
	lua_Integer f = luaL_checkinteger(L, 2);
	lua_Integer e = luaL_checkinteger(L, 3);
	config_charge_range(L, f, e, CONFIG_ELEM_STEPS, "table.move");
	int n = lua_gettop(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, 1);
	return 1;
}

/* Argument 1 must be a table or have a metatable (a proxy), as in Lua's. */
static void config_table_check(lua_State *L, int nargs)
{
	if (lua_type(L, 1) != LUA_TTABLE && !lua_getmetatable(L, 1))
		luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, nargs);
}

/* table.insert(list, [pos,] value), shifting list[pos..#list] up. */
static int config_table_insert(lua_State *L)
{
	int nargs = lua_gettop(L);
	config_table_check(L, nargs);
	lua_Integer end = luaL_intop(+, luaL_len(L, 1), 1); /* the first free index */
	lua_Integer pos = end;
	if (nargs == 3) {
		pos = luaL_checkinteger(L, 2);
		luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)end, 2,
			      "position out of bounds");
		config_charge_range(L, pos + 1, end, CONFIG_ELEM_STEPS, "table.insert");
		for (lua_Integer i = end; i > pos; i--) {
			lua_geti(L, 1, i - 1);
			lua_seti(L, 1, i);
		}
	} else if (nargs != 2)
		return luaL_error(L, "wrong number of arguments to 'insert'");
	lua_seti(L, 1, pos);
	return 0;
}

/* table.remove(list [, pos]), shifting list[pos+1..#list] down. */
static int config_table_remove(lua_State *L)
{
	int nargs = lua_gettop(L);
	config_table_check(L, nargs);
	lua_Integer size = luaL_len(L, 1);
	lua_Integer pos = luaL_optinteger(L, 2, size);
	if (pos != size)
		luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
			      "position out of bounds");
	config_charge_range(L, pos + 1, size, CONFIG_ELEM_STEPS, "table.remove");
	lua_geti(L, 1, pos);
	for (; pos < size; pos++) {
		lua_geti(L, 1, pos + 1);
		lua_seti(L, 1, pos);
	}
	lua_pushnil(L);
	lua_seti(L, 1, pos);
	return 1;
}

/* table.sort(list [, comp]): n log n comparisons are charged, then Lua's
 * own sort runs on a plain copy of list[1..n] (so no __len or __index can
 * make it walk more than was charged) and the result is written back. */
static int config_table_sort(lua_State *L)
{
	config_table_check(L, 2);
	lua_Integer n = luaL_len(L, 1);
	if (n <= 1)
		return 0;
	luaL_argcheck(L, n < INT_MAX, 1, "array too big");
	unsigned long log2n = 1;
	while (log2n < 63 && ((lua_Integer)1 << log2n) < n)
		log2n++;
	config_charge_range(L, 1, n, CONFIG_ELEM_STEPS * (log2n + 2), "table.sort");
	lua_createtable(L, (int)n, 0); /* 3: the copy */
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, 1, i);
		lua_rawseti(L, 3, i);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 3);
	if (lua_isnil(L, 2))
		lua_call(L, 1, 0);
	else {
		lua_pushvalue(L, 2);
		lua_call(L, 2, 0);
	}
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 3, i);
		lua_seti(L, 1, i);
	}
	return 0;
}

static const struct config_pattern_ops config_pattern_budget = {.charge = config_charge_steps};

/* Puts the charged versions above in place of Lua's own. */
static void config_cap_libs(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_getfield(L, -1, LUA_STRLIBNAME);
	config_pattern_register(L, -1, &config_pattern_budget);
	lua_pushcfunction(L, config_string_rep);
	lua_setfield(L, -2, "rep");
	lua_pop(L, 1);

	lua_getfield(L, -1, LUA_TABLIBNAME);
	static const struct {
		const char *name;
		lua_CFunction f;
	} wrapped[] = {
		{"concat", config_table_concat},
		{"move", config_table_move},
		{"sort", config_table_sort},
	};
	for (size_t i = 0; i < ARRAY_SIZE(wrapped); i++) {
		lua_getfield(L, -1, wrapped[i].name); /* Lua's own, as the upvalue */
		lua_pushcclosure(L, wrapped[i].f, 1);
		lua_setfield(L, -2, wrapped[i].name);
	}
	lua_pushcfunction(L, config_table_insert);
	lua_setfield(L, -2, "insert");
	lua_pushcfunction(L, config_table_remove);
	lua_setfield(L, -2, "remove");
	lua_pop(L, 2);
}

static void config_open_libs(lua_State *L)
{
	static const struct {
		const char *name;
		lua_CFunction open;
	} libs[] = {
		{LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
		{LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
		{LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_OSLIBNAME, luaopen_os},
	};
	for (size_t i = 0; i < ARRAY_SIZE(libs); i++) {
		luaL_requiref(L, libs[i].name, libs[i].open, 1);
		lua_pop(L, 1);
	}
	config_cap_libs(L);

	lua_pushglobaltable(L);
	/* anything that reads files, loads code or reaches the collector */
	static const char *const drop[] = {"dofile",  "loadfile",       "load",
					   "require", "collectgarbage", "warn"};
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++) {
		lua_pushnil(L);
		lua_setfield(L, -2, drop[i]);
	}
	lua_pushcfunction(L, config_pcall);
	lua_setfield(L, -2, "pcall");
	lua_pushcfunction(L, config_xpcall);
	lua_setfield(L, -2, "xpcall");
	lua_pushcfunction(L, config_print);
	lua_setfield(L, -2, "print");
	lua_getfield(L, -1, "setmetatable");
	lua_pushcclosure(L, config_setmetatable, 1);
	lua_setfield(L, -2, "setmetatable");

	/* string.dump makes binary chunks: useless here, and the string table
	 * is also every string's __index */
	lua_getfield(L, -1, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);

	/* os: only the clock, the date and the environment */
	lua_getfield(L, -1, LUA_OSLIBNAME);
	lua_createtable(L, 0, 4);
	static const char *const keep[] = {"time", "date", "clock"};
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
		lua_getfield(L, -2, keep[i]);
		lua_setfield(L, -2, keep[i]);
	}
	lua_pushcfunction(L, config_getenv);
	lua_setfield(L, -2, "getenv");
	lua_setfield(L, -3, LUA_OSLIBNAME);
	lua_pop(L, 2);
}

struct config_chunk {
	const char *text;
	size_t len;
};

/* Runs in protected mode: everything that can raise (opening libraries,
 * parsing, running, final checks) comes out of one lua_pcall. */
static int config_main(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	const struct config_chunk *chunk = lua_touserdata(L, 1);
	lua_pop(L, 1);

	config_open_libs(L);
	config_fp_begin(L); /* slice "reconfig": fingerprints (config-fp.c) */
	config_dsl_open(L);
	config_fp_wrap(L);

	lua_pushfstring(L, "=%s", ctx->chunkname);
	int r = luaL_loadbufferx(L, chunk->text, chunk->len, lua_tostring(L, -1), "t");
	if (r != LUA_OK) {
		if (r == LUA_ERRMEM)
			ctx->mem_error = true;
		return lua_error(L);
	}
	ctx->insns = 0; /* parsing allocations do not count against the script */
	ctx->step_rest = 0;
	ctx->steps_unclocked = 0;
	ctx->cpu_limit = KILN_CONFIG_CPU_SECONDS;
	ctx->cpu_deadline = config_cpu_now() + ctx->cpu_limit;
	lua_sethook(L, config_hook, LUA_MASKCOUNT, CONFIG_HOOK_EVERY);
	lua_call(L, 0, 0);
	lua_sethook(L, NULL, 0, 0);
	if (ctx->aborted)
		return lua_error(L);
	config_dsl_finish(L);
	return 0;
}

/* One printable line: control characters become spaces, a message longer
 * than CONFIG_MAX_ERROR is cut and marked with "...". */
static char *config_error_line(const char *chunkname, const char *msg, size_t len)
{
	struct buf b;
	size_t clen = strlen(chunkname);
	/* room for "CHUNK: ", CONFIG_MAX_ERROR bytes and the mark: nothing can fail */
	buf_init(&b, clen + 2 + CONFIG_MAX_ERROR + 3);
	int r = 0;
	if (len <= clen || memcmp(msg, chunkname, clen) || msg[clen] != ':')
		r = buf_addf(&b, "%s: ", chunkname);
	size_t i, start = b.len;
	for (i = 0; r == 0 && i < len && b.len - start < CONFIG_MAX_ERROR; i++) {
		unsigned char c = (unsigned char)msg[i];
		r = buf_addch(&b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	if (r == 0 && i < len)
		r = buf_adds(&b, "...");
	if (r < 0) {
		buf_release(&b);
		return xasprintf("%s: error message too long", chunkname);
	}
	return buf_detach(&b, NULL);
}

static struct config *config_new_defaults(void)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->title = xstrdup("Kiln");
	cfg->http = (struct config_listen){xstrdup("127.0.0.1"), 8010};
	cfg->workers = (struct config_listen){xstrdup("127.0.0.1"), 9989};
	cfg->db_url = xstrdup("sqlite:state.sqlite");
	cfg->master_heartbeat = 5;
	cfg->master_dead_after = 30;
	cfg->refs = 1; /* slice "reconfig": the loader's reference (config_unref) */
	return cfg;
}

int config_load_string(const char *chunkname, const char *text, size_t len, const char *basedir,
		       struct config **ret, char **ret_err)
{
	if (!chunkname)
		chunkname = "master.lua";
	if (len > KILN_MAX_CONFIG_BYTES) {
		*ret_err = xasprintf("%s: file is larger than %u bytes", chunkname,
				     (unsigned)KILN_MAX_CONFIG_BYTES);
		return KILN_ECONFIG;
	}

	struct config_lua *kl = xcalloc(1, sizeof(*kl));
	kl->chunkname = xstrdup(chunkname);
	struct config_ctx *ctx = &kl->ctx;
	*ctx = (struct config_ctx){
		.cfg = config_new_defaults(),
		.chunkname = kl->chunkname,
		.basedir = basedir,
		.mem_limit = KILN_CONFIG_MEM_LIMIT,
		.run_limit = KILN_CONFIG_INSN_LIMIT,
	};
	lua_State *L = lua_newstate(config_alloc, ctx);
	if (L)
		config_gc_mode(L);
	if (!L) {
		config_free(ctx->cfg);
		free(kl->chunkname);
		free(kl);
		*ret_err = xasprintf("%s: cannot create a Lua state", chunkname);
		return KILN_ECONFIG;
	}

	struct config_chunk chunk = {text, len};
	char *err = NULL;
	lua_pushcfunction(L, config_main);
	lua_pushlightuserdata(L, &chunk);
	int r = lua_pcall(L, 1, 0, 0);
	if (r == LUA_ERRMEM || ctx->mem_error)
		err = xasprintf("%s: memory limit exceeded (%zu MiB)", chunkname,
				ctx->mem_limit >> 20);
	else if (ctx->aborted)
		err = xstrdup(ctx->abort_msg);
	else if (r != LUA_OK) {
		int t = lua_type(L, -1);
		if (t == LUA_TSTRING || t == LUA_TNUMBER) {
			size_t mlen;
			const char *msg = lua_tolstring(L, -1, &mlen);
			err = config_error_line(chunkname, msg, mlen);
		} else
			err = xasprintf("%s: error object is a %s value", chunkname,
					lua_typename(L, t));
	}
	lua_settop(L, 0);
	struct config *cfg = ctx->cfg;
	ctx->loaded = true;
	ctx->basedir = NULL; /* borrowed from the caller */
	if (err || !ctx->keep_lua) {
		lua_close(L);
		free(kl->chunkname);
		free(kl);
	} else {
		/* functions and patterns run later, in this state (config-runtime.c) */
		kl->L = L;
		cfg->lua = kl;
	}

	if (err) {
		log_debug("%s", err);
		config_free(cfg);
		*ret_err = err;
		return KILN_ECONFIG;
	}
	/* KILN_DATABASE replaces master.lua's 'database' (a password kept out
	 * of the file; one master.lua for several databases) */
	const char *env_db = getenv("KILN_DATABASE");
	if (env_db && *env_db) {
		char *bad = config_database_check(env_db, strlen(env_db));
		if (bad) {
			*ret_err = xasprintf("KILN_DATABASE: %s", bad);
			free(bad);
			config_free(cfg);
			return KILN_ECONFIG;
		}
		free(cfg->db_url);
		cfg->db_url = xstrdup(env_db);
	}
	*ret = cfg;
	return 0;
}

/* The protected body of config_lua_run: f with its userdata. */
static int config_run_main(lua_State *L)
{
	lua_CFunction f = (lua_CFunction)(uintptr_t)lua_touserdata(L, 1);
	void *ud = lua_touserdata(L, 2);
	lua_settop(L, 0);
	lua_pushlightuserdata(L, ud);
	return f(L);
}

/* Instructions one call of a master.lua function may run. */
#define CONFIG_CALL_INSNS 1000000L
#define CONFIG_CALL_CPU_SECONDS 1.0

int config_lua_run(struct config_lua *kl, lua_CFunction f, void *ud, char **ret_err)
{
	lua_State *L = kl->L;
	struct config_ctx *ctx = &kl->ctx;
	ctx->aborted = false;
	ctx->mem_error = false;
	ctx->insns = 0;
	ctx->step_rest = 0;
	ctx->steps_unclocked = 0;
	ctx->run_limit = CONFIG_CALL_INSNS;
	ctx->cpu_limit = CONFIG_CALL_CPU_SECONDS;
	ctx->cpu_deadline = config_cpu_now() + ctx->cpu_limit;
	lua_settop(L, 0);
	lua_pushcfunction(L, config_run_main);
	lua_pushlightuserdata(L, (void *)(uintptr_t)f);
	lua_pushlightuserdata(L, ud);
	lua_sethook(L, config_hook, LUA_MASKCOUNT, CONFIG_HOOK_EVERY);
	int r = lua_pcall(L, 2, 0, 0);
	lua_sethook(L, NULL, 0, 0);
	char *err = NULL;
	if (r == LUA_ERRMEM || ctx->mem_error)
		err = xasprintf("%s: memory limit exceeded (%zu MiB)", kl->chunkname,
				ctx->mem_limit >> 20);
	else if (ctx->aborted)
		err = xstrdup(ctx->abort_msg);
	else if (r != LUA_OK) {
		size_t mlen = 0;
		const char *msg =
			lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &mlen) : "error";
		err = config_error_line(kl->chunkname, msg, mlen ? mlen : strlen(msg));
	}
	lua_settop(L, 0);
	if (err) {
		*ret_err = err;
		return KILN_ECONFIG;
	}
	return 0;
}

static const char *config_file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a file";
}

int config_load(const char *basedir, struct config **ret, char **ret_err)
{
	if (!basedir)
		basedir = ".";
	_cleanup_free_ char *path = xasprintf("%s/master.lua", basedir);
	/* non-blocking: opening a FIFO must not wait for a writer; only a
	 * regular file is read (a FIFO, /dev/zero or a directory never ends) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		*ret_err = xasprintf("cannot open '%s': %s", path, strerror(errno));
		return KILN_ECONFIG;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*ret_err = xasprintf("cannot stat '%s': %s", path, strerror(errno));
		close(fd);
		return KILN_ECONFIG;
	}
	if (!S_ISREG(st.st_mode)) {
		*ret_err = xasprintf("'%s' is not a regular file (it is %s)", path,
				     config_file_kind(st.st_mode));
		close(fd);
		return KILN_ECONFIG;
	}
	struct buf b;
	buf_init(&b, KILN_MAX_CONFIG_BYTES);
	int r = 0;
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*ret_err = xasprintf("cannot read '%s': %s", path, strerror(errno));
			r = KILN_ECONFIG;
			break;
		}
		if (n == 0)
			break;
		if (buf_add(&b, chunk, (size_t)n) < 0) {
			*ret_err = xasprintf("master.lua: file is larger than %u bytes",
					     (unsigned)KILN_MAX_CONFIG_BYTES);
			r = KILN_ECONFIG;
			break;
		}
	}
	close(fd);
	if (r == 0)
		r = config_load_string("master.lua", b.ptr, b.len, basedir, ret, ret_err);
	buf_release(&b);
	return r;
}

static void config_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->title);
	free(cfg->title_url);
	free(cfg->url);
	free(cfg->http.host);
	free(cfg->workers.host);
	free(cfg->db_url);
	config_numbers_free(cfg->numbers);
	for (size_t i = 0; i < cfg->nworkers; i++) {
		free(cfg->worker[i].name);
		free(cfg->worker[i].password);
		config_latent_free(cfg->worker[i].latent);
		config_prop_free(cfg->worker[i].props, cfg->worker[i].nprops);
		for (size_t k = 0; k < cfg->worker[i].nnotify_on_missing; k++)
			free(cfg->worker[i].notify_on_missing[k]);
		free(cfg->worker[i].notify_on_missing);
	}
	free(cfg->worker);
	for (size_t i = 0; i < cfg->nbuilders; i++) {
		struct config_builder *b = &cfg->builder[i];
		free(b->name);
		free(b->description);
		free(b->retention);
		config_strv_free(b->tags, b->ntags);
		if (i == 0 || b->workers != b[-1].workers) /* shared with the one before */
			config_strv_free(b->workers, b->nworkers);
		free(b->builddir);
		config_prop_free(b->props, b->nprops);
		config_env_free(b->env, b->nenv);
		for (size_t k = 0; k < b->nsteps; k++)
			config_step_release(&b->steps[k]);
		free(b->steps);
		free(b->locks); /* config-lock.c */
	}
	free(cfg->builder);
	for (size_t i = 0; i < cfg->nschedulers; i++)
		config_sched_release(&cfg->scheduler[i]);
	free(cfg->scheduler);
	config_changes_release(cfg);
	config_prop_free(cfg->props, cfg->nprops);
	config_tsdb_release(cfg);
	config_codebase_release(cfg);
	config_lock_release(cfg); /* config-lock.c */
	/* reporters (config-reporter.c) */
	config_reporter_release(cfg);
	config_push_release(cfg); /* config-push.c (slice "push") */
	config_auth_release(cfg); /* config-auth.c (slice "weblogin") */
	config_strv_free(cfg->secrets, cfg->nsecrets);
	for (size_t i = 0; i < cfg->nnamed_secrets; i++) {
		free(cfg->named_secrets[i].name);
		if (cfg->named_secrets[i].value)
			explicit_bzero(cfg->named_secrets[i].value,
				       strlen(cfg->named_secrets[i].value));
		free(cfg->named_secrets[i].value);
	}
	free(cfg->named_secrets);
	if (cfg->lua) {
		/* steps and secrets owned by Lua userdata are freed by their __gc */
		lua_close(cfg->lua->L);
		free(cfg->lua->chunkname);
		free(cfg->lua);
	}
	free(cfg);
}

const struct config_worker *config_find_worker(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nworkers; i++)
		if (!strcmp(cfg->worker[i].name, name))
			return &cfg->worker[i];
	return NULL;
}

const struct config_builder *config_find_builder(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nbuilders; i++)
		if (!strcmp(cfg->builder[i].name, name))
			return &cfg->builder[i];
	return NULL;
}
