/*
 * Generations and differences (slice "reconfig"): the reference count of
 * a loaded config, the fingerprints of its declarations and the
 * difference between two configs that `kiln reconfig` reports.
 *
 * Fingerprints.  Before master.lua runs, every global function the DSL
 * added (builder, worker, shell, git_poller, reporter, secret, ...) is
 * wrapped in a C closure that hashes its arguments, calls the original
 * and then (1) gives the hash to the builder, worker, scheduler, change
 * source or reporter the call declared (the one its array grew by) and
 * (2) stores it in user value 1 of each userdata the call returned (a
 * step, a secret, an interpolate, a lock: they are made with that slot),
 * so that a builder's hash covers its steps' declarations.  Tables hash by their pairs, order-free
 * (Lua's traversal order is seeded per state), functions by their compiled code (lua_dump, line
 * numbers included).  The hash is bounded: at most FP_MAX_DEPTH levels and FP_MAX_NODES values per
 * call; past that the rest counts as one constant (two huge tables equal up to the cut hash equal:
 * a reconfig then keeps a scheduler's timer it could have reset).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "config/config-internal.h"
#include "config/config.h"

#define REG_FP "kiln.fp"           /* userdata -> fingerprint (weak keys) */
#define REG_FP_BASE "kiln.fp.base" /* global names that existed before the DSL */
#define FP_MAX_DEPTH 16
#define FP_MAX_NODES (1u << 20)

struct config *config_ref(struct config *cfg)
{
	if (cfg)
		cfg->refs++;
	return cfg;
}

void config_unref(struct config *cfg)
{
	if (cfg && --cfg->refs <= 0)
		config_free(cfg);
}

/* ---- hashing ---- */

static uint64_t fp_mix(uint64_t h, uint64_t v)
{
	/* splitmix64's finaliser over h ^ v */
	uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t fp_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t x = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		x ^= s[i];
		x *= 0x100000001b3ull;
	}
	return fp_mix(h, fp_mix(x, len));
}

struct fp_walk {
	unsigned nodes;
};

static int fp_dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
	(void)L;
	uint64_t *h = ud;
	*h = fp_bytes(*h, p, sz);
	return 0;
}

static uint64_t fp_value(lua_State *L, int idx, int depth, struct fp_walk *w);

static uint64_t fp_table(lua_State *L, int idx, int depth, struct fp_walk *w)
{
	uint64_t sum = 0;
	if (!lua_checkstack(L, 4))
		return 0x7ab1e;
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		int v = lua_gettop(L), k = v - 1;
		uint64_t hk = fp_value(L, k, depth + 1, w);
		uint64_t hv = fp_value(L, v, depth + 1, w);
		sum += fp_mix(hk, hv); /* order-free */
		lua_pop(L, 1);
	}
	return fp_mix(0x7ab1e, sum);
}

static uint64_t fp_value(lua_State *L, int idx, int depth, struct fp_walk *w)
{
	idx = lua_absindex(L, idx);
	int t = lua_type(L, idx);
	uint64_t h = fp_mix(0x51, (uint64_t)(t + 2));
	if (depth > FP_MAX_DEPTH || ++w->nodes > FP_MAX_NODES)
		return fp_mix(h, 0xdeebull);
	switch (t) {
	case LUA_TBOOLEAN:
		return fp_mix(h, (uint64_t)lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return fp_mix(h, (uint64_t)lua_tointeger(L, idx));
		else {
			double d = lua_tonumber(L, idx);
			uint64_t bits;
			memcpy(&bits, &d, sizeof(bits));
			return fp_mix(h + 1, bits);
		}
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		return fp_bytes(h, s, len);
	}
	case LUA_TTABLE:
		return fp_mix(h, fp_table(L, idx, depth, w));
	case LUA_TFUNCTION: {
		lua_CFunction cf = lua_tocfunction(L, idx);
		if (cf) {
			uintptr_t p = (uintptr_t)cf;
			return fp_bytes(h, &p, sizeof(p));
		}
		lua_pushvalue(L, idx);
		uint64_t d = h;
		(void)lua_dump(L, fp_dump_writer, &d, 0);
		lua_pop(L, 1);
		return d;
	}
	case LUA_TUSERDATA: {
		/* a declaration's result keeps its fingerprint in user value 1 */
		uint64_t r;
		if (lua_getiuservalue(L, idx, 1) == LUA_TNUMBER && lua_isinteger(L, -1))
			r = fp_mix(h, (uint64_t)lua_tointeger(L, -1));
		else {
			/* not made by a declaration: never equal to another load's */
			uintptr_t p = (uintptr_t)lua_touserdata(L, idx);
			r = fp_bytes(h ^ 0xfeed, &p, sizeof(p));
		}
		lua_pop(L, 1);
		return r;
	}
	default:
		return h;
	}
}

/* The wrapper: upvalue 1 the original function, 2 its global name. */
static int fp_call(lua_State *L)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	int nargs = lua_gettop(L);
	struct fp_walk w = {0};
	size_t nlen;
	const char *name = lua_tolstring(L, lua_upvalueindex(2), &nlen);
	uint64_t h = fp_bytes(0xf1, name, nlen);
	for (int i = 1; i <= nargs; i++)
		h = fp_mix(h, fp_value(L, i, 0, &w));
	size_t nb = cfg->nbuilders, nw = cfg->nworkers, ns = cfg->nschedulers, np = cfg->npollers,
	       nr = cfg->nreporters;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, nargs, LUA_MULTRET);
	int nres = lua_gettop(L);
	if (cfg->nbuilders == nb + 1)
		cfg->builder[nb].fp = h;
	if (cfg->nworkers == nw + 1)
		cfg->worker[nw].fp = h;
	if (cfg->nschedulers == ns + 1)
		cfg->scheduler[ns].fp = h;
	if (cfg->npollers == np + 1)
		cfg->poller[np].fp = h;
	if (cfg->nreporters == nr + 1)
		cfg->reporter[nr].fp = h;
	for (int i = 1; i <= nres; i++) {
		if (lua_type(L, i) != LUA_TUSERDATA)
			continue;
		/* no allocation: the slot was made with the userdata (a step,
		 * secret, interpolate or lock has one; others have none) */
		lua_pushinteger(L, (lua_Integer)h);
		(void)lua_setiuservalue(L, i, 1); /* pops the value either way */
	}
	return nres;
}

void config_fp_begin(lua_State *L)
{
	lua_newtable(L); /* names of the globals before the DSL */
	lua_pushglobaltable(L);
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_pushboolean(L, 1);
		lua_rawset(L, -5);
	}
	lua_pop(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, REG_FP_BASE);
}

void config_fp_wrap(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, REG_FP_BASE);
	int base = lua_gettop(L);
	lua_pushglobaltable(L);
	int g = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, g) != 0) {
		/* key at -2, value at -1 */
		bool wrap = lua_type(L, -2) == LUA_TSTRING && lua_tocfunction(L, -1) != NULL;
		if (wrap) {
			lua_pushvalue(L, -2);
			lua_rawget(L, base);
			wrap = lua_isnil(L, -1);
			lua_pop(L, 1);
		}
		if (wrap) {
			/* original and name as upvalues; replaces an existing key: allowed
			 * during the traversal */
			lua_pushvalue(L, -2);
			lua_pushcclosure(L, fp_call, 2);
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, g);
		} else
			lua_pop(L, 1);
	}
	lua_pop(L, 2);
	lua_pushnil(L);
	lua_setfield(L, LUA_REGISTRYINDEX, REG_FP_BASE);
}

/* ---- differences ---- */

#define NAME_AT(fn, type, field)                                                                   \
	const char *fn(const void *v, size_t i)                                                    \
	{                                                                                          \
		return ((const type *)v)[i].field;                                                 \
	}
NAME_AT(config_builder_name_at, struct config_builder, name)
NAME_AT(config_worker_name_at, struct config_worker, name)
NAME_AT(config_scheduler_name_at, struct config_scheduler, name)
NAME_AT(config_poller_name_at, struct config_poller, name)
NAME_AT(config_reporter_name_at, struct config_reporter, name)

struct fp_name {
	const char *name;
	size_t idx;
};

static int fp_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fp_name *)a)->name, ((const struct fp_name *)b)->name);
}

void config_match_names(const void *old_v, size_t nold, config_name_fn old_get, const void *new_v,
			size_t nnew, config_name_fn get, size_t *map)
{
	struct fp_name *o = calloc(nold + 1, sizeof(*o));
	if (!o)
		abort();
	for (size_t i = 0; i < nold; i++)
		o[i] = (struct fp_name){old_get(old_v, i), i};
	qsort(o, nold, sizeof(*o), fp_name_cmp);
	for (size_t j = 0; j < nnew; j++) {
		struct fp_name key = {get(new_v, j), 0};
		struct fp_name *hit = nold ? bsearch(&key, o, nold, sizeof(*o), fp_name_cmp) : NULL;
		map[j] = hit ? hit->idx : SIZE_MAX;
	}
	free(o);
}

static uint64_t fp_of(const void *v, size_t i, size_t size, size_t off_fp)
{
	uint64_t fp;
	memcpy(&fp, (const char *)v + i * size + off_fp, sizeof(fp));
	return fp;
}

static int kind_of(const void *v, size_t i, size_t size, size_t off_kind)
{
	if (off_kind == SIZE_MAX)
		return 0;
	int k;
	memcpy(&k, (const char *)v + i * size + off_kind, sizeof(k));
	return k;
}

static void diff_one(const void *ov, size_t no, const void *nv, size_t nn, size_t size,
		     size_t off_fp, size_t off_kind, config_name_fn get,
		     struct config_diff_count *c)
{
	size_t *map = calloc(nn + 1, sizeof(*map));
	if (!map)
		abort();
	config_match_names(ov, no, get, nv, nn, get, map);
	*c = (struct config_diff_count){.total = nn};
	size_t kept = 0;
	for (size_t j = 0; j < nn; j++) {
		size_t i = map[j];
		if (i == SIZE_MAX ||
		    kind_of(ov, i, size, off_kind) != kind_of(nv, j, size, off_kind)) {
			c->added++;
			continue;
		}
		kept++;
		if (fp_of(ov, i, size, off_fp) != fp_of(nv, j, size, off_fp))
			c->changed++;
	}
	c->removed = no - kept;
	free(map);
}

#define DIFF(field, count, type, kindoff)                                                          \
	diff_one(old->field, old->count, new_cfg->field, new_cfg->count, sizeof(type),             \
		 offsetof(type, fp), kindoff, config_##field##_name_at, &d->field##s)

void config_diff(const struct config *old, const struct config *new_cfg, struct config_diff *d)
{
	*d = (struct config_diff){0};
	DIFF(builder, nbuilders, struct config_builder, SIZE_MAX);
	DIFF(worker, nworkers, struct config_worker, SIZE_MAX);
	DIFF(scheduler, nschedulers, struct config_scheduler,
	     offsetof(struct config_scheduler, kind));
	DIFF(poller, npollers, struct config_poller, offsetof(struct config_poller, kind));
	DIFF(reporter, nreporters, struct config_reporter, offsetof(struct config_reporter, kind));
	d->locks_changed = old->nlocks != new_cfg->nlocks;
	for (size_t i = 0; !d->locks_changed && i < old->nlocks; i++) {
		const struct config_lock *a = &old->lock[i], *b = &new_cfg->lock[i];
		d->locks_changed = a->kind != b->kind || strcmp(a->name, b->name) ||
				   a->max_count != b->max_count || a->nper_worker != b->nper_worker;
		for (size_t k = 0; !d->locks_changed && k < a->nper_worker; k++)
			d->locks_changed =
				strcmp(a->per_worker[k].worker, b->per_worker[k].worker) ||
				a->per_worker[k].max_count != b->per_worker[k].max_count;
	}
}
