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
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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
	if (n > ctx->mem_limit - ctx->mem_used) {
		ctx->aborted = true;
		snprintf(ctx->abort_msg, sizeof(ctx->abort_msg),
			 "%s: memory limit exceeded (%zu MiB)", ctx->chunkname,
			 ctx->mem_limit >> 20);
		lua_pushstring(L, ctx->abort_msg);
		lua_error(L);
	}
	ctx->mem_used += n;
}

char *config_strdup(lua_State *L, const char *s, size_t len)
{
	config_charge(L, len + 1);
	return xstrndup(s, len);
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

/* Every CONFIG_HOOK_EVERY instructions.  The CPU clock catches what the
 * count misses: C calls such as long string compares run between hooks. */
static void config_hook(lua_State *L, lua_Debug *ar)
{
	struct config_ctx *ctx = config_ctx_of(L);
	ctx->insns += CONFIG_HOOK_EVERY;
	bool over_insns = ctx->insns > ctx->run_limit;
	bool over_cpu = !over_insns && config_cpu_now() > ctx->cpu_deadline;
	if (!ctx->aborted && !over_insns && !over_cpu)
		return;
	if (!ctx->aborted) {
		ctx->aborted = true;
		char what[64];
		if (over_insns)
			snprintf(what, sizeof(what), "instruction limit exceeded (infinite loop?)");
		else
			snprintf(what, sizeof(what), "CPU time limit exceeded (%g s)",
				 ctx->cpu_limit);
		lua_getinfo(L, "l", ar);
		if (ar->currentline > 0)
			snprintf(ctx->abort_msg, sizeof(ctx->abort_msg), "%s:%d: %s",
				 ctx->chunkname, ar->currentline, what);
		else
			snprintf(ctx->abort_msg, sizeof(ctx->abort_msg), "%s: %s", ctx->chunkname,
				 what);
		/* from now on every instruction raises, even inside __close handlers */
		lua_sethook(L, config_hook, LUA_MASKCOUNT, 1);
	}
	lua_pushstring(L, ctx->abort_msg);
	lua_error(L);
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
	config_dsl_open(L);

	lua_pushfstring(L, "=%s", ctx->chunkname);
	int r = luaL_loadbufferx(L, chunk->text, chunk->len, lua_tostring(L, -1), "t");
	if (r != LUA_OK) {
		if (r == LUA_ERRMEM)
			ctx->mem_error = true;
		return lua_error(L);
	}
	ctx->insns = 0; /* parsing allocations do not count against the script */
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

int config_load(const char *basedir, struct config **ret, char **ret_err)
{
	if (!basedir)
		basedir = ".";
	_cleanup_free_ char *path = xasprintf("%s/master.lua", basedir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*ret_err = xasprintf("cannot open '%s': %s", path, strerror(errno));
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
	for (size_t i = 0; i < cfg->nworkers; i++) {
		free(cfg->worker[i].name);
		free(cfg->worker[i].password);
	}
	free(cfg->worker);
	for (size_t i = 0; i < cfg->nbuilders; i++) {
		struct config_builder *b = &cfg->builder[i];
		free(b->name);
		free(b->description);
		config_strv_free(b->tags, b->ntags);
		config_strv_free(b->workers, b->nworkers);
		free(b->builddir);
		for (size_t k = 0; k < b->nsteps; k++)
			config_step_release(&b->steps[k]);
		free(b->steps);
	}
	free(cfg->builder);
	for (size_t i = 0; i < cfg->nschedulers; i++)
		config_sched_release(&cfg->scheduler[i]);
	free(cfg->scheduler);
	config_changes_release(cfg);
	config_strv_free(cfg->secrets, cfg->nsecrets);
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
