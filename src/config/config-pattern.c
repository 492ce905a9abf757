/*
 * Lua patterns for the config sandbox: string.find, match, gmatch and gsub
 * with Lua 5.4's semantics (reference manual, 6.4.1), written here so that
 * each step of the backtracking matcher is counted and charged to the
 * sandbox's per-call budget (config-pattern.h).  A backtracking matcher
 * over a subject: one recursive call per capture or repetition, as deep as
 * the pattern is long (bounded: "pattern too complex").
 */
#include "config/config-pattern.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define PAT_MAX_CAPTURES 32 /* Lua's LUA_MAXCAPTURES */
#define PAT_MAX_DEPTH 200   /* nested matcher calls before "pattern too complex" */
#define PAT_CAP_OPEN (-1)   /* a capture whose ')' has not been reached */
#define PAT_CAP_POS (-2)    /* a position capture "()" */
#define PAT_ESC '%'
/* Bytes compared or copied by memchr/memcmp/memmem per counted step. */
#define PAT_BYTES_PER_STEP 64

struct config_pattern_capture {
	const char *start;
	ptrdiff_t len; /* >= 0, PAT_CAP_OPEN or PAT_CAP_POS */
};

struct config_pattern_state {
	lua_State *L;
	const struct config_pattern_ops *ops;
	const char *fname;
	const char *subj, *subj_end; /* the whole subject */
	const char *config_pattern_end;
	int depth;
	int ncap;
	unsigned long steps; /* not yet charged */
	struct config_pattern_capture cap[PAT_MAX_CAPTURES];
};

static void config_pattern_flush(struct config_pattern_state *ms)
{
	unsigned long n = ms->steps;
	ms->steps = 0;
	if (n > 0)
		ms->ops->charge(ms->L, n, ms->fname);
}

static inline void config_pattern_step(struct config_pattern_state *ms, unsigned long n)
{
	ms->steps += n;
	if (ms->steps >= CONFIG_PATTERN_CHARGE_EVERY)
		config_pattern_flush(ms);
}

/* ---- one character ------------------------------------------------------- */

/* Does c belong to class letter cl (%a, %d, ...; upper case = complement)?
 * Any other character after '%' stands for itself. */
static bool config_pattern_class(int c, int cl)
{
	bool r;
	switch (tolower(cl)) {
	case 'a':
		r = isalpha(c);
		break;
	case 'c':
		r = iscntrl(c);
		break;
	case 'd':
		r = isdigit(c);
		break;
	case 'g':
		r = isgraph(c);
		break;
	case 'l':
		r = islower(c);
		break;
	case 'p':
		r = ispunct(c);
		break;
	case 's':
		r = isspace(c);
		break;
	case 'u':
		r = isupper(c);
		break;
	case 'w':
		r = isalnum(c);
		break;
	case 'x':
		r = isxdigit(c);
		break;
	case 'z': /* the NUL byte: deprecated in the manual, still in Lua 5.4 */
		r = c == 0;
		break;
	default:
		return cl == c;
	}
	return isupper(cl) ? !r : r;
}

/* Is c in the set [..] that starts at open ('[') and ends at close (']')? */
static bool config_pattern_in_set(int c, const char *open, const char *close)
{
	const char *p = open + 1;
	bool negate = *p == '^';
	if (negate)
		p++;
	while (p < close) {
		if (*p == PAT_ESC) {
			if (config_pattern_class(c, (unsigned char)p[1]))
				return !negate;
			p += 2;
		} else if (p + 2 < close && p[1] == '-') {
			if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
				return !negate;
			p += 3;
		} else {
			if ((unsigned char)*p == c)
				return !negate;
			p++;
		}
	}
	return negate;
}

/* The end of the single-character class at p: '.', a literal, %x or a set. */
static const char *config_pattern_item_end(struct config_pattern_state *ms, const char *p)
{
	if (*p == PAT_ESC) {
		if (p + 1 >= ms->config_pattern_end)
			luaL_error(ms->L, "malformed pattern (ends with '%%')");
		return p + 2;
	}
	if (*p != '[')
		return p + 1;
	const char *q = p + 1;
	if (q < ms->config_pattern_end && *q == '^')
		q++;
	/* the first member is taken as is, so "[]]" and "[^]]" are sets */
	for (;;) {
		if (q >= ms->config_pattern_end)
			luaL_error(ms->L, "malformed pattern (missing ']')");
		if (*q++ == PAT_ESC && q < ms->config_pattern_end)
			q++;
		if (q < ms->config_pattern_end && *q == ']')
			return q + 1;
	}
}

/* Does the subject character at s match the class p..ep? */
static bool config_pattern_one(struct config_pattern_state *ms, const char *s, const char *p,
			       const char *ep)
{
	if (s >= ms->subj_end)
		return false;
	int c = (unsigned char)*s;
	switch (*p) {
	case '.':
		return true;
	case PAT_ESC:
		return config_pattern_class(c, (unsigned char)p[1]);
	case '[':
		return config_pattern_in_set(c, p, ep - 1);
	default:
		return (unsigned char)*p == c;
	}
}

/* ---- the matcher ------------------------------------------------------- */

static const char *config_pattern_match(struct config_pattern_state *ms, const char *s,
					const char *p);

/* Greedy: take as many as match, then give back one at a time. */
static const char *config_pattern_greedy(struct config_pattern_state *ms, const char *s,
					 const char *p, const char *ep)
{
	size_t n = 0;
	while (config_pattern_one(ms, s + n, p, ep)) {
		n++;
		config_pattern_step(ms, 1);
	}
	for (;;) {
		const char *r = config_pattern_match(ms, s + n, ep + 1);
		if (r)
			return r;
		if (n == 0)
			return NULL;
		n--;
	}
}

/* Lazy: take one more only when the rest does not match. */
static const char *config_pattern_lazy(struct config_pattern_state *ms, const char *s,
				       const char *p, const char *ep)
{
	for (;;) {
		const char *r = config_pattern_match(ms, s, ep + 1);
		if (r)
			return r;
		if (!config_pattern_one(ms, s, p, ep))
			return NULL;
		s++;
	}
}

static const char *config_pattern_open(struct config_pattern_state *ms, const char *s,
				       const char *p, ptrdiff_t kind)
{
	if (ms->ncap >= PAT_MAX_CAPTURES)
		luaL_error(ms->L, "too many captures");
	ms->cap[ms->ncap] = (struct config_pattern_capture){s, kind};
	ms->ncap++;
	const char *r = config_pattern_match(ms, s, p);
	if (!r)
		ms->ncap--;
	return r;
}

static const char *config_pattern_close(struct config_pattern_state *ms, const char *s,
					const char *p)
{
	int i = ms->ncap - 1;
	while (i >= 0 && ms->cap[i].len != PAT_CAP_OPEN)
		i--;
	if (i < 0)
		luaL_error(ms->L, "invalid pattern capture");
	ms->cap[i].len = s - ms->cap[i].start;
	const char *r = config_pattern_match(ms, s, p);
	if (!r)
		ms->cap[i].len = PAT_CAP_OPEN;
	return r;
}

/* %bxy at p (p points at x): a balanced run from x to its matching y. */
static const char *config_pattern_balanced(struct config_pattern_state *ms, const char *s,
					   const char *p)
{
	if (p + 1 >= ms->config_pattern_end)
		luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
	if (s >= ms->subj_end || *s != p[0])
		return NULL;
	int open = 1;
	const char *start = s;
	while (++s < ms->subj_end) {
		if (*s == p[1]) {
			if (--open == 0) {
				config_pattern_step(
					ms, (unsigned long)(s - start) / PAT_BYTES_PER_STEP + 1);
				return s + 1;
			}
		} else if (*s == p[0])
			open++;
	}
	config_pattern_step(ms, (unsigned long)(s - start) / PAT_BYTES_PER_STEP + 1);
	return NULL;
}

/* %1-%9: the text of an earlier, closed capture again. */
static const char *config_pattern_backref(struct config_pattern_state *ms, const char *s, int digit)
{
	int i = digit - '1';
	if (i < 0 || i >= ms->ncap || ms->cap[i].len == PAT_CAP_OPEN)
		luaL_error(ms->L, "invalid capture index %%%d", i + 1);
	ptrdiff_t len = ms->cap[i].len;
	if (len < 0) /* a position capture is no text */
		return NULL;
	config_pattern_step(ms, (unsigned long)len / PAT_BYTES_PER_STEP);
	if (ms->subj_end - s >= len && memcmp(ms->cap[i].start, s, (size_t)len) == 0)
		return s + len;
	return NULL;
}

static const char *config_pattern_match(struct config_pattern_state *ms, const char *s,
					const char *p)
{
	if (++ms->depth > PAT_MAX_DEPTH)
		luaL_error(ms->L, "pattern too complex");
	while (s && p < ms->config_pattern_end) {
		config_pattern_step(ms, 1);
		if (*p == '(') {
			if (p + 1 < ms->config_pattern_end && p[1] == ')')
				s = config_pattern_open(ms, s, p + 2, PAT_CAP_POS);
			else
				s = config_pattern_open(ms, s, p + 1, PAT_CAP_OPEN);
			break;
		}
		if (*p == ')') {
			s = config_pattern_close(ms, s, p + 1);
			break;
		}
		if (*p == '$' && p + 1 == ms->config_pattern_end) {
			if (s != ms->subj_end)
				s = NULL;
			break;
		}
		if (*p == PAT_ESC && p + 1 < ms->config_pattern_end) {
			char c = p[1];
			if (c == 'b') {
				s = config_pattern_balanced(ms, s, p + 2);
				p += 4;
				continue;
			}
			if (c == 'f') {
				p += 2;
				if (p >= ms->config_pattern_end || *p != '[')
					luaL_error(ms->L, "missing '[' after '%%f' in pattern");
				const char *ep = config_pattern_item_end(ms, p);
				int before = s == ms->subj ? 0 : (unsigned char)s[-1];
				int here = s < ms->subj_end ? (unsigned char)*s : 0;
				if (config_pattern_in_set(before, p, ep - 1) ||
				    !config_pattern_in_set(here, p, ep - 1))
					s = NULL;
				p = ep;
				continue;
			}
			if (isdigit((unsigned char)c)) {
				s = config_pattern_backref(ms, s, c);
				p += 2;
				continue;
			}
		}
		/* a single-character class, maybe followed by a repetition */
		const char *ep = config_pattern_item_end(ms, p);
		char rep = ep < ms->config_pattern_end ? *ep : '\0';
		if (!config_pattern_one(ms, s, p, ep)) {
			if (rep == '*' || rep == '?' || rep == '-') {
				p = ep + 1;
				continue;
			}
			s = NULL;
			break;
		}
		if (rep == '?') {
			const char *r = config_pattern_match(ms, s + 1, ep + 1);
			if (r) {
				s = r;
				break;
			}
			p = ep + 1;
		} else if (rep == '+') {
			s = config_pattern_greedy(ms, s + 1, p, ep);
			break;
		} else if (rep == '*') {
			s = config_pattern_greedy(ms, s, p, ep);
			break;
		} else if (rep == '-') {
			s = config_pattern_lazy(ms, s, p, ep);
			break;
		} else {
			s++;
			p = ep;
		}
	}
	ms->depth--;
	return s;
}

/* ---- results ------------------------------------------------------------- */

/* Pushes capture i (the whole match s..e when there are none and i is 0). */
static void config_pattern_push_one(struct config_pattern_state *ms, int i, const char *s,
				    const char *e)
{
	if (i >= ms->ncap) {
		if (i != 0)
			luaL_error(ms->L, "invalid capture index %%%d", i + 1);
		lua_pushlstring(ms->L, s, (size_t)(e - s));
		return;
	}
	const struct config_pattern_capture *c = &ms->cap[i];
	if (c->len == PAT_CAP_OPEN)
		luaL_error(ms->L, "unfinished capture");
	if (c->len == PAT_CAP_POS)
		lua_pushinteger(ms->L, (lua_Integer)(c->start - ms->subj) + 1);
	else
		lua_pushlstring(ms->L, c->start, (size_t)c->len);
}

/* Pushes every capture, or the whole match when there are none and s is
 * not NULL.  Returns how many. */
static int config_pattern_push_all(struct config_pattern_state *ms, const char *s, const char *e)
{
	int n = ms->ncap == 0 && s ? 1 : ms->ncap;
	luaL_checkstack(ms->L, n, "too many captures");
	for (int i = 0; i < n; i++)
		config_pattern_push_one(ms, i, s, e);
	return n;
}

static void config_pattern_state_init(struct config_pattern_state *ms, lua_State *L,
				      const char *fname, const char *subj, size_t len,
				      const char *config_pattern_end)
{
	*ms = (struct config_pattern_state){
		.L = L,
		.ops = lua_touserdata(L, lua_upvalueindex(1)),
		.fname = fname,
		.subj = subj,
		.subj_end = subj + len,
		.config_pattern_end = config_pattern_end,
	};
}

static void config_pattern_reset(struct config_pattern_state *ms)
{
	ms->ncap = 0;
	ms->depth = 0;
}

/* A 1-based start position from Lua (negative counts from the end) as
 * Lua 5.4 reads it: 0 and anything before the start mean 1. */
static size_t config_pattern_start(lua_Integer pos, size_t len)
{
	if (pos > 0)
		return (size_t)pos;
	if (pos == 0 || pos < -(lua_Integer)len)
		return 1;
	return len + (size_t)pos + 1;
}

static bool config_pattern_has_specials(const char *p, size_t len)
{
	static const char specials[] = "^$*+?.([%-";
	for (size_t i = 0; i < sizeof(specials) - 1; i++)
		if (memchr(p, specials[i], len))
			return true;
	return false;
}

/* ---- string.find and string.match ---------------------------------------- */

static int config_pattern_find_match(lua_State *L, bool find)
{
	size_t len, plen;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *p = luaL_checklstring(L, 2, &plen);
	size_t init = config_pattern_start(luaL_optinteger(L, 3, 1), len) - 1;
	struct config_pattern_state ms;
	config_pattern_state_init(&ms, L, find ? "string.find" : "string.match", s, len, p + plen);
	if (init > len) {
		luaL_pushfail(L);
		return 1;
	}
	if (find && (lua_toboolean(L, 4) || !config_pattern_has_specials(p, plen))) {
		const char *hit = plen == 0 ? s + init : memmem(s + init, len - init, p, plen);
		size_t scanned = hit ? (size_t)(hit - s) - init + plen : len - init;
		config_pattern_step(&ms, scanned / PAT_BYTES_PER_STEP + 1);
		config_pattern_flush(&ms);
		if (!hit) {
			luaL_pushfail(L);
			return 1;
		}
		lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
		lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)plen);
		return 2;
	}
	bool anchored = plen > 0 && *p == '^';
	if (anchored)
		p++;
	const char *at = s + init;
	for (;;) {
		config_pattern_reset(&ms);
		const char *e = config_pattern_match(&ms, at, p);
		if (e) {
			config_pattern_flush(&ms);
			if (!find)
				return config_pattern_push_all(&ms, at, e);
			lua_pushinteger(L, (lua_Integer)(at - s) + 1);
			lua_pushinteger(L, (lua_Integer)(e - s));
			return config_pattern_push_all(&ms, NULL, NULL) + 2;
		}
		if (anchored || at >= ms.subj_end)
			break;
		at++;
	}
	config_pattern_flush(&ms);
	luaL_pushfail(L);
	return 1;
}

static int config_pattern_find(lua_State *L)
{
	return config_pattern_find_match(L, true);
}

static int config_pattern_match_fn(lua_State *L)
{
	return config_pattern_find_match(L, false);
}

/* ---- string.gmatch ------------------------------------------------------- */

/* The iterator's position, a userdata upvalue beside the subject and the
 * pattern (upvalues 2 and 3, which keep both strings alive). */
struct config_pattern_gmatch {
	size_t pos;  /* where the next search starts; > len when done */
	size_t last; /* end of the last match, or SIZE_MAX: an empty match
			right there would repeat it */
};

static int config_pattern_gmatch_next(lua_State *L)
{
	size_t len, plen;
	const char *s = lua_tolstring(L, lua_upvalueindex(2), &len);
	const char *p = lua_tolstring(L, lua_upvalueindex(3), &plen);
	struct config_pattern_gmatch *gm = lua_touserdata(L, lua_upvalueindex(4));
	struct config_pattern_state ms;
	config_pattern_state_init(&ms, L, "string.gmatch", s, len, p + plen);
	for (size_t at = gm->pos; at <= len; at++) {
		config_pattern_reset(&ms);
		const char *e = config_pattern_match(&ms, s + at, p);
		if (e && (size_t)(e - s) != gm->last) {
			gm->pos = gm->last = (size_t)(e - s);
			config_pattern_flush(&ms);
			return config_pattern_push_all(&ms, s + at, e);
		}
	}
	gm->pos = len + 1;
	config_pattern_flush(&ms);
	return 0;
}

static int config_pattern_gmatch(lua_State *L)
{
	size_t len;
	luaL_checklstring(L, 1, &len);
	luaL_checkstring(L, 2);
	size_t init = config_pattern_start(luaL_optinteger(L, 3, 1), len) - 1;
	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1)); /* the ops */
	lua_insert(L, 1);
	struct config_pattern_gmatch *gm = lua_newuserdatauv(L, sizeof(*gm), 0);
	gm->pos = init > len ? len + 1 : init;
	gm->last = (size_t)-1;
	lua_pushcclosure(L, config_pattern_gmatch_next, 4);
	return 1;
}

/* ---- string.gsub --------------------------------------------------------- */

/* Adds the replacement string's text for the match s..e: %0-%9, %%. */
static void config_pattern_gsub_string(struct config_pattern_state *ms, luaL_Buffer *b,
				       const char *s, const char *e)
{
	size_t rlen;
	const char *r = lua_tolstring(ms->L, 3, &rlen);
	const char *end = r + rlen;
	config_pattern_step(ms, rlen / PAT_BYTES_PER_STEP + 1);
	while (r < end) {
		const char *esc = memchr(r, PAT_ESC, (size_t)(end - r));
		if (!esc) {
			luaL_addlstring(b, r, (size_t)(end - r));
			break;
		}
		luaL_addlstring(b, r, (size_t)(esc - r));
		char c = esc + 1 < end ? esc[1] : '\0';
		if (c == PAT_ESC)
			luaL_addchar(b, PAT_ESC);
		else if (c == '0')
			luaL_addlstring(b, s, (size_t)(e - s));
		else if (isdigit((unsigned char)c)) {
			config_pattern_push_one(ms, c - '1', s, e);
			luaL_tolstring(ms->L, -1, NULL); /* a position is a number */
			lua_remove(ms->L, -2);
			luaL_addvalue(b);
		} else
			luaL_error(ms->L, "invalid use of '%c' in replacement string", PAT_ESC);
		r = esc + 2;
	}
}

/* Adds the replacement for the match s..e; false or nil keeps the match. */
static void config_pattern_gsub_add(struct config_pattern_state *ms, luaL_Buffer *b, const char *s,
				    const char *e, int kind)
{
	lua_State *L = ms->L;
	if (kind == LUA_TSTRING || kind == LUA_TNUMBER) {
		config_pattern_gsub_string(ms, b, s, e);
		return;
	}
	if (kind == LUA_TFUNCTION) {
		lua_pushvalue(L, 3);
		int n = config_pattern_push_all(ms, s, e);
		lua_call(L, n, 1);
	} else {
		config_pattern_push_one(ms, 0, s, e);
		lua_gettable(L, 3);
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s, (size_t)(e - s));
	} else if (!lua_isstring(L, -1))
		luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	else
		luaL_addvalue(b);
}

static int config_pattern_gsub(lua_State *L)
{
	size_t len, plen;
	const char *src = luaL_checklstring(L, 1, &len);
	const char *p = luaL_checklstring(L, 2, &plen);
	int kind = lua_type(L, 3);
	lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)len + 1);
	luaL_argexpected(L,
			 kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION ||
				 kind == LUA_TTABLE,
			 3, "string/function/table");
	struct config_pattern_state ms;
	config_pattern_state_init(&ms, L, "string.gsub", src, len, p + plen);
	bool anchored = plen > 0 && *p == '^';
	if (anchored)
		p++;
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	const char *last = NULL;
	lua_Integer n = 0;
	while (n < max) {
		config_pattern_reset(&ms);
		const char *e = config_pattern_match(&ms, src, p);
		if (e && e != last) {
			n++;
			config_pattern_gsub_add(&ms, &b, src, e, kind);
			src = last = e;
		} else if (src < ms.subj_end)
			luaL_addchar(&b, *src++);
		else
			break;
		if (anchored)
			break;
	}
	config_pattern_flush(&ms);
	luaL_addlstring(&b, src, (size_t)(ms.subj_end - src));
	luaL_pushresult(&b);
	lua_pushinteger(L, n);
	return 2;
}

void config_pattern_register(lua_State *L, int idx, const struct config_pattern_ops *ops)
{
	static const luaL_Reg fns[] = {
		{"find", config_pattern_find},
		{"match", config_pattern_match_fn},
		{"gmatch", config_pattern_gmatch},
		{"gsub", config_pattern_gsub},
	};
	idx = lua_absindex(L, idx);
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		lua_pushlightuserdata(L, (void *)ops);
		lua_pushcclosure(L, fns[i].func, 1);
		lua_setfield(L, idx, fns[i].name);
	}
}
