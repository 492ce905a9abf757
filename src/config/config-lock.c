/*
 * master_lock { } and worker_lock { }: Buildbot's MasterLock and WorkerLock
 * as opaque userdata holding the lock's index in cfg->lock, with
 * lock:access("exclusive") / lock:access("counting", N); and the locks = { }
 * lists of builder { } and shell { }, checked and copied as struct
 * config_lock_access arrays sorted by lock (the acquisition order,
 * src/master/locks.h).
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define MT_LOCK "kiln.lock"
#define MT_LOCK_ACCESS "kiln.lock_access"
#define REG_LOCKS "kiln.locks"

struct config_lock_ud {
	size_t lock; /* index in cfg->lock */
};

static const char *config_lock_kind_name(enum config_lock_kind k)
{
	return k == CONFIG_LOCK_MASTER ? "master_lock" : "worker_lock";
}

static int config_lock_per_worker_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_lock_count *)a)->worker,
		      ((const struct config_lock_count *)b)->worker);
}

int config_lock_max_count(const struct config_lock *l, const char *worker)
{
	if (l->kind == CONFIG_LOCK_WORKER && worker && l->nper_worker) {
		struct config_lock_count key = {.worker = (char *)worker};
		const struct config_lock_count *hit =
			bsearch(&key, l->per_worker, l->nper_worker, sizeof(key),
				config_lock_per_worker_cmp);
		if (hit)
			return hit->max_count;
	}
	return l->max_count;
}

const struct config_lock *config_find_lock(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nlocks; i++)
		if (!strcmp(cfg->lock[i].name, name))
			return &cfg->lock[i];
	return NULL;
}

/* The largest count the lock has on any worker. */
static int config_lock_top_count(const struct config_lock *l)
{
	int top = l->max_count;
	for (size_t i = 0; i < l->nper_worker; i++)
		if (l->per_worker[i].max_count > top)
			top = l->per_worker[i].max_count;
	return top;
}

/* Checks max_count_for_worker = { NAME = N, ... } of the table at index 1
 * (raises on a bad entry); returns the number of entries, the table left
 * pushed (nil when absent). */
static size_t config_lock_per_worker_check(lua_State *L, const char *what)
{
	if (dsl_get(L, 1, "max_count_for_worker") == LUA_TNIL)
		return 0;
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L,
			     "%s: 'max_count_for_worker' must be a table of WORKER = COUNT "
			     "(got %s)",
			     what, dsl_typename(L, t));
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (++n > KILN_MAX_LOCKS)
			config_raise(L, "%s: 'max_count_for_worker' has more than %d entries", what,
				     KILN_MAX_LOCKS);
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(
				L, "%s: 'max_count_for_worker' keys must be worker names (got %s)",
				what, luaL_typename(L, -2));
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);
		dsl_check_name(L, what, "max_count_for_worker", k, klen);
		int isint = 0;
		lua_Integer v = lua_tointegerx(L, -1, &isint);
		if (lua_type(L, -1) != LUA_TNUMBER || !isint || v < 1 || v > KILN_MAX_LOCK_COUNT)
			config_raise(L,
				     "%s: max_count_for_worker['%.60s'] must be an integer between "
				     "1 and %d",
				     what, k, KILN_MAX_LOCK_COUNT);
		lua_pop(L, 1);
	}
	return n;
}

/* Copies the checked table at index t (n entries) into l. */
static void config_lock_per_worker_fill(lua_State *L, int t, size_t n, struct config_lock *l)
{
	config_charge(L, n * sizeof(struct config_lock_count));
	l->per_worker = xcalloc(n, sizeof(struct config_lock_count));
	lua_pushnil(L);
	while (lua_next(L, t) && l->nper_worker < n) {
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);
		struct config_lock_count *c = &l->per_worker[l->nper_worker++];
		c->max_count = (int)lua_tointeger(L, -1);
		c->worker = config_strdup(L, k, klen);
		lua_pop(L, 1);
	}
	qsort(l->per_worker, l->nper_worker, sizeof(*l->per_worker), config_lock_per_worker_cmp);
}

static int config_lock_declare(lua_State *L, enum config_lock_kind kind)
{
	static const char *const master_keys[] = {"name", "max_count", NULL};
	static const char *const worker_keys[] = {"name", "max_count", "max_count_for_worker",
						  NULL};
	const char *decl = config_lock_kind_name(kind);
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, decl);
	dsl_what(L, what, sizeof(what), decl, NULL);
	dsl_check_keys(L, 1, what, kind == CONFIG_LOCK_MASTER ? master_keys : worker_keys);
	const char *name = dsl_req_name(L, 1, what, "name");
	dsl_check_unique(L, REG_LOCKS, "lock", name);
	if (cfg->nlocks >= KILN_MAX_LOCKS)
		return config_raise(L, "%s: more than %d locks", what, KILN_MAX_LOCKS);
	long long max_count = dsl_opt_int(L, 1, what, "max_count", 1, 1, KILN_MAX_LOCK_COUNT);
	size_t nper = kind == CONFIG_LOCK_WORKER ? config_lock_per_worker_check(L, what) : 0;
	int per = lua_gettop(L);

	/* checked: now copy; each piece is owned by cfg the moment it exists */
	config_charge(L, sizeof(struct config_lock));
	ARRAY_GROW(cfg->lock, cfg->nlocks + 1, cfg->lock_alloc);
	struct config_lock *l = &cfg->lock[cfg->nlocks++];
	*l = (struct config_lock){.kind = kind, .max_count = (int)max_count, .line = line};
	l->name = config_strdup(L, name, strlen(name));
	if (nper)
		config_lock_per_worker_fill(L, per, nper, l);
	dsl_register(L, REG_LOCKS, name, line);

	struct config_lock_ud *ud = lua_newuserdatauv(L, sizeof(*ud), 1 /* fp (config-fp.c) */);
	ud->lock = (size_t)(l - cfg->lock);
	luaL_setmetatable(L, MT_LOCK);
	return 1;
}

static int config_lock_master(lua_State *L)
{
	return config_lock_declare(L, CONFIG_LOCK_MASTER);
}

static int config_lock_worker(lua_State *L)
{
	return config_lock_declare(L, CONFIG_LOCK_WORKER);
}

static const struct config_lock *config_lock_of(lua_State *L, int idx)
{
	struct config_lock_ud *ud = luaL_testudata(L, idx, MT_LOCK);
	struct config *cfg = config_ctx_of(L)->cfg;
	if (!ud || ud->lock >= cfg->nlocks)
		return NULL;
	return &cfg->lock[ud->lock];
}

/* lock:access(mode [, count]) */
static int config_lock_access(lua_State *L)
{
	struct config_lock_ud *ud = luaL_testudata(L, 1, MT_LOCK);
	if (!ud)
		return config_raise(L, "access() must be called on a lock: lock:access(\"%s\")",
				    "exclusive");
	const struct config_lock *l = config_lock_of(L, 1);
	if (!l)
		return config_raise(L, "access(): not a lock of this configuration");
	const char *mode = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
	struct config_lock_access a = {.lock = ud->lock, .count = 1};
	if (mode && !strcmp(mode, "exclusive"))
		a.mode = CONFIG_LOCK_EXCLUSIVE;
	else if (mode && !strcmp(mode, "counting"))
		a.mode = CONFIG_LOCK_COUNTING;
	else
		return config_raise(L,
				    "lock '%s': access mode must be \"counting\" or \"exclusive\" "
				    "(got %s%.40s%s)",
				    l->name, mode ? "'" : "", mode ? mode : luaL_typename(L, 2),
				    mode ? "'" : "");
	if (!lua_isnoneornil(L, 3)) {
		int isint = 0;
		lua_Integer c = lua_tointegerx(L, 3, &isint);
		if (lua_type(L, 3) != LUA_TNUMBER || !isint || c < 1 || c > KILN_MAX_LOCK_COUNT)
			return config_raise(L,
					    "lock '%s': access count must be an integer between 1 "
					    "and %d",
					    l->name, KILN_MAX_LOCK_COUNT);
		if (a.mode == CONFIG_LOCK_EXCLUSIVE && c != 1)
			return config_raise(L, "lock '%s': exclusive access takes no count",
					    l->name);
		if (c > config_lock_top_count(l))
			return config_raise(L,
					    "lock '%s': access count %lld is above the lock's "
					    "max_count %d",
					    l->name, (long long)c, config_lock_top_count(l));
		a.count = (int)c;
	}
	struct config_lock_access *p = lua_newuserdatauv(L, sizeof(*p), 0);
	*p = a;
	luaL_setmetatable(L, MT_LOCK_ACCESS);
	return 1;
}

static int config_lock_tostring(lua_State *L)
{
	const struct config_lock *l = config_lock_of(L, 1);
	lua_pushfstring(L, "%s{name=\"%s\"}", l ? config_lock_kind_name(l->kind) : "lock",
			l ? l->name : "?");
	return 1;
}

static int config_lock_access_tostring(lua_State *L)
{
	const struct config_lock_access *a = lua_touserdata(L, 1);
	struct config *cfg = config_ctx_of(L)->cfg;
	lua_pushfstring(L, "access(\"%s\", \"%s\", %d)",
			a->lock < cfg->nlocks ? cfg->lock[a->lock].name : "?",
			a->mode == CONFIG_LOCK_EXCLUSIVE ? "exclusive" : "counting", a->count);
	return 1;
}

static int config_lock_access_cmp(const void *a, const void *b)
{
	size_t x = ((const struct config_lock_access *)a)->lock,
	       y = ((const struct config_lock_access *)b)->lock;
	return (x > y) - (x < y);
}

/* t[key] of the table at index t: a list of locks, accesses or declared
 * lock names, into *ret (owned, sorted by lock) and *ret_n. */
static void config_lock_list(lua_State *L, int t, const char *what, struct config_lock_access **ret,
			     size_t *ret_n)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	if (dsl_get(L, t, "locks") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int list = lua_gettop(L);
	size_t n = dsl_check_list(L, list, what, "locks", "locks");
	if (n > KILN_MAX_LOCKS_PER_SET)
		config_raise(L, "%s: 'locks' lists more than %d locks", what,
			     KILN_MAX_LOCKS_PER_SET);
	struct config_lock_access v[KILN_MAX_LOCKS_PER_SET];
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, list, (lua_Integer)(i + 1));
		const struct config_lock *l = config_lock_of(L, -1);
		const struct config_lock_access *a = luaL_testudata(L, -1, MT_LOCK_ACCESS);
		if (l) {
			v[i] = (struct config_lock_access){(size_t)(l - cfg->lock),
							   CONFIG_LOCK_COUNTING, 1};
		} else if (a && a->lock < cfg->nlocks) {
			v[i] = *a;
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			const char *s = lua_tostring(L, -1);
			l = config_find_lock(cfg, s);
			if (!l)
				config_raise(L,
					     "%s: locks[%zu]: unknown lock '%.60s' (declare it "
					     "first with master_lock { name = \"%.60s\" } or "
					     "worker_lock { ... })",
					     what, i + 1, s, s);
			v[i] = (struct config_lock_access){(size_t)(l - cfg->lock),
							   CONFIG_LOCK_COUNTING, 1};
		} else {
			config_raise(L,
				     "%s: locks[%zu] must be a lock, lock:access(...) or a lock's "
				     "name (got %s)",
				     what, i + 1, dsl_typename(L, -1));
		}
		lua_pop(L, 1);
	}
	qsort(v, n, sizeof(v[0]), config_lock_access_cmp);
	for (size_t i = 1; i < n; i++)
		if (v[i].lock == v[i - 1].lock)
			config_raise(L, "%s: lock '%s' is listed twice in 'locks'", what,
				     cfg->lock[v[i].lock].name);
	lua_pop(L, 1);
	if (n == 0)
		return;
	config_charge(L, n * sizeof(v[0]));
	*ret = xmalloc(n * sizeof(v[0]));
	memcpy(*ret, v, n * sizeof(v[0]));
	*ret_n = n;
}

void config_lock_step(lua_State *L, const char *what, struct config_step *s)
{
	config_lock_list(L, 1, what, &s->locks, &s->nlocks);
}

void config_lock_step_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->locks = NULL;
	dst->nlocks = 0;
	if (!src->nlocks)
		return;
	config_charge(L, src->nlocks * sizeof(*src->locks));
	dst->locks = xmalloc(src->nlocks * sizeof(*src->locks));
	memcpy(dst->locks, src->locks, src->nlocks * sizeof(*src->locks));
	dst->nlocks = src->nlocks;
}

void config_lock_builder(lua_State *L, const char *what, struct config_builder *b)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	config_lock_list(L, 1, what, &b->locks, &b->nlocks);
	/* a step waiting for a lock its own build holds would wait forever */
	for (size_t k = 0; k < b->nsteps; k++)
		for (size_t i = 0; i < b->steps[k].nlocks; i++)
			for (size_t j = 0; j < b->nlocks; j++)
				if (b->steps[k].locks[i].lock == b->locks[j].lock)
					config_raise(L,
						     "%s: step '%s' lists lock '%s', which the "
						     "builder already holds for the whole build",
						     what, b->steps[k].name,
						     cfg->lock[b->locks[j].lock].name);
}

void config_lock_finish(lua_State *L)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	for (size_t i = 0; i < cfg->nlocks; i++) {
		const struct config_lock *l = &cfg->lock[i];
		for (size_t k = 0; k < l->nper_worker; k++)
			if (!dsl_registered(L, REG_WORKERS, l->per_worker[k].worker))
				config_raise_at(L, l->line,
						"worker_lock '%s': max_count_for_worker names "
						"unknown worker '%s'",
						l->name, l->per_worker[k].worker);
	}
}

void config_lock_release(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nlocks; i++) {
		struct config_lock *l = &cfg->lock[i];
		free(l->name);
		for (size_t k = 0; k < l->nper_worker; k++)
			free(l->per_worker[k].worker);
		free(l->per_worker);
	}
	free(cfg->lock);
	cfg->lock = NULL;
	cfg->nlocks = 0;
}

void config_lock_open(lua_State *L)
{
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, REG_LOCKS);

	dsl_new_type(L, MT_LOCK, "lock", NULL, config_lock_tostring);
	lua_createtable(L, 0, 1); /* lock:access("exclusive") */
	lua_pushcfunction(L, config_lock_access);
	lua_setfield(L, -2, "access");
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	dsl_new_type(L, MT_LOCK_ACCESS, "lock access", NULL, config_lock_access_tostring);
	lua_pop(L, 1);

	lua_register(L, "master_lock", config_lock_master);
	lua_register(L, "worker_lock", config_lock_worker);
}
