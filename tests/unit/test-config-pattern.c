/*
 * The sandbox's own Lua patterns (src/config/config-pattern.c) against Lua's
 * string library: tens of thousands of random small subjects and patterns
 * through find, match, gmatch and gsub in both, same results and same
 * errors; then the step budget on patterns that backtrack without end.
 */
#include "config/config-pattern.h"
#include "tap.h"

#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

static unsigned long test_steps, test_budget;
static const char *test_fname;

/* The test's charge: counts, and raises once past test_budget. */
static void test_charge(lua_State *L, unsigned long steps, const char *fname)
{
	test_steps += steps;
	test_fname = fname;
	if (test_budget && test_steps > test_budget)
		luaL_error(L, "step budget exceeded in %s", fname);
}

static const struct config_pattern_ops test_ops = {.charge = test_charge};

/* A state with Lua's string library as 'string' and ours as 'kp'. */
static lua_State *test_state(void)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	lua_newtable(L);
	config_pattern_register(L, -1, &test_ops);
	lua_setglobal(L, "kp");
	return L;
}

/* Runs chunk; returns its string result (or the error) in a static copy. */
static const char *test_run(lua_State *L, const char *chunk)
{
	static char out[4096];
	if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
		snprintf(out, sizeof(out), "error: %s", lua_tostring(L, -1));
	} else if (lua_isnil(L, -1))
		snprintf(out, sizeof(out), "nil");
	else
		snprintf(out, sizeof(out), "%s", lua_tostring(L, -1));
	lua_pop(L, 1);
	return out;
}

/* The comparison, in Lua: random subjects over a small alphabet (so that
 * patterns match often) and random patterns from pieces that exercise
 * every rule (classes, sets, anchors, captures, back references, %b, %f,
 * repetitions, and malformed ones).  Returns "ok N" or the first
 * difference. */
static const char test_compare[] =
	"local seed, rounds = ...\n"
	"math.randomseed(seed)\n"
	"local alpha = { 'a', 'a', 'b', 'c', '1', '2', ' ', '(', ')', '.', '-', '%', '[', ']',\n"
	"  '^', '$', 'x', '_', '\\0', '\\n', 'A', 'Z', '\\200' }\n"
	"local pieces = { 'a', 'b', 'x', '.', '%a', '%d', '%s', '%w', '%l', '%u', '%p', '%c',\n"
	"  '%x', '%g', '%A', '%D', '%S', '%W', '%.', '%%', '%(', '[ab]', '[^a]', '[a-c]',\n"
	"  '[%a_]', '[%d%s]', '[]]', '[^]]', '[a-]', '[-a]', '[%]]', '(', ')', '()', '%1', '%2',\n"
	"  '%0', '%b()', '%bab', '%f[%w]', '%f[%W]', '%f[a]', '*', '+', '-', '?', '*', '+', '-',\n"
	"  '?', '^', '$', '%', '[', ']', '%b', '%f', '%fa', '[a', '%z', '\\0', '1', ' ', '%9',\n"
	"  '[^%d]', '[%a-z]', '[b-a]', '%g*' }\n"
	"local function rs(n, t)\n"
	"  local o = {}\n"
	"  for i = 1, math.random(0, n) do o[#o + 1] = t[math.random(#t)] end\n"
	"  return table.concat(o)\n"
	"end\n"
	"local function ser(ok, ...)\n"
	"  if not ok then\n"
	"    local m = tostring((...)):gsub('^.-:%d+: ', '')\n"
	"    return 'error(' .. m .. ')'\n"
	"  end\n"
	"  local o = { select('#', ...) }\n"
	"  for i = 1, select('#', ...) do\n"
	"    local v = select(i, ...)\n"
	"    o[#o + 1] = type(v) .. ':' .. tostring(v)\n"
	"  end\n"
	"  return table.concat(o, '|')\n"
	"end\n"
	"local function gm(lib, s, p, init)\n"
	"  local o, n = {}, 0\n"
	"  for a, b, c in lib.gmatch(s, p, init) do\n"
	"    o[#o + 1] = tostring(a) .. ',' .. tostring(b) .. ',' .. tostring(c)\n"
	"    n = n + 1\n"
	"    if n > 100 then break end\n"
	"  end\n"
	"  return table.concat(o, ';')\n"
	"end\n"
	"local reps = { '<%0>', '%1', '[%2]', '%%', 'x', '%', '%a', 7,\n"
	"  { a = 'A', ['1'] = false, [''] = 'E' },\n"
	"  function(a, b) if a == 'b' then return nil end return (b or '') .. '!' end,\n"
	"  function() return {} end }\n"
	"for round = 1, rounds do\n"
	"  local s, p = rs(12, alpha), rs(5, pieces)\n"
	"  local init = math.random(-14, 14)\n"
	"  if math.random(3) == 1 then init = nil end\n"
	"  local max = math.random(3) == 1 and 2 or nil\n"
	"  local cases = {\n"
	"    { 'find', function(l) return l.find(s, p, init) end },\n"
	"    { 'find plain', function(l) return l.find(s, p, init, true) end },\n"
	"    { 'match', function(l) return l.match(s, p, init) end },\n"
	"    { 'gmatch', function(l) return gm(l, s, p, init) end },\n"
	"    { 'gsub', function(l)\n"
	"      return l.gsub(s, p, reps[round % #reps + 1], max)\n"
	"    end },\n"
	"  }\n"
	"  for _, c in ipairs(cases) do\n"
	"    local want = ser(pcall(c[2], string))\n"
	"    local got = ser(pcall(c[2], kp))\n"
	"    if want ~= got then\n"
	"      return string.format('%s(%q, %q, %s): lua %q, kiln %q', c[1], s, p,\n"
	"        tostring(init), want, got)\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return 'ok ' .. rounds\n";

TEST(random_against_lua)
{
	lua_State *L = test_state();
	test_budget = 0;
	for (int seed = 1; seed <= 4; seed++) {
		if (luaL_loadstring(L, test_compare) != LUA_OK) {
			TAP_FAIL("compare chunk: %s", lua_tostring(L, -1));
			break;
		}
		lua_pushinteger(L, seed);
		lua_pushinteger(L, 6000);
		if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
			TAP_FAIL("compare chunk raised: %s", lua_tostring(L, -1));
			lua_pop(L, 1);
			continue;
		}
		const char *r = lua_tostring(L, -1);
		if (strcmp(r, "ok 6000"))
			TAP_FAIL("seed %d: %s", seed, r);
		lua_pop(L, 1);
	}
	lua_close(L);
}

/* Hand-picked cases the random ones may miss: long subjects, many
 * captures, the depth limit, frontier at both ends, gsub's empty matches. */
TEST(picked_cases)
{
	lua_State *L = test_state();
	test_budget = 0;
	static const char *const cases[] = {
		"return ('%q'):format(select(2, X.gsub('hello world', '%w+', '%0 %0')))",
		"return X.gsub('hello world', '', '-')",
		"return X.gsub('abc', '%w*', '-')",
		"return X.gsub('abc', '^', '>')",
		"return X.gsub('abc', '$', '<')",
		"return table.concat({X.find('THE (quick) fox', '%f[%a]%a+%f[%A]', 5)}, ',')",
		"return table.concat({X.match(string.rep('a', 40), ('(a)'):rep(32))}, '')",
		"return X.match(string.rep('a', 40), ('(a)'):rep(33))",
		"return X.match('x', ('x?'):rep(300))",
		"return X.match(string.rep('ab', 5000) .. 'c', '(.*)c')",
		("return X.match(string.rep('(', 3000) .. string.rep(')', 3000), '%b()') == "
		 "string.rep('(', 3000) .. string.rep(')', 3000)"),
		"return X.match('key = value', '(%w+)%s*=%s*(%w+)')",
		"return X.match('hello', '()ll()')",
		"return X.gsub('hello', '()', '%1')",
		"return X.find('a+b', '+', 1, true)",
		"return X.find('a.b', '.', 2, true)",
		"return X.find('abc', 'b', -1)",
		"return X.find('', '')",
		"return X.find('abc', '', 10)",
		"return X.find('abc', '', 4)",
		"return X.match(string.rep('a', 2000), '.-b')",
		"return X.gsub('abc', '%w', '%2')",
		"return X.gsub('abc', '(%w)', {a = 1, b = true})",
		"return (X.gsub('a\\0b', '%z', 'Z'))",
		"return X.gsub('x', 'x', '%')",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* the same chunk (so errors carry the same position), X set apart */
		char want[4096];
		lua_getglobal(L, "string");
		lua_setglobal(L, "X");
		snprintf(want, sizeof(want), "%s", test_run(L, cases[i]));
		lua_getglobal(L, "kp");
		lua_setglobal(L, "X");
		const char *got = test_run(L, cases[i]);
		if (strcmp(want, got))
			TAP_FAIL("%s: lua '%s', kiln '%s'", cases[i], want, got);
	}
	lua_close(L);
}

/* (.-)(.-)(.-)x on 512 KiB backtracks for hours in Lua's own find; ours
 * gives up when its charge raises, soon after the budget. */
TEST(budget_stops_backtracking)
{
	lua_State *L = test_state();
	static const char *const fns[] = {"find", "match", "gmatch", "gsub"};
	static const char *const chunks[] = {
		"return kp.find(string.rep('a', 512 * 1024), '(.-)(.-)(.-)x')",
		"return kp.match(string.rep('a', 512 * 1024), '(.-)(.-)(.-)x')",
		"for a in kp.gmatch(string.rep('a', 512 * 1024), '(.-)(.-)(.-)x') do end",
		"return kp.gsub(string.rep('a', 512 * 1024), '(.-)(.-)(.-)x', '')",
	};
	for (size_t i = 0; i < 4; i++) {
		test_steps = 0;
		test_budget = 10u * 1000 * 1000;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		const char *r = test_run(L, chunks[i]);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		char want[64];
		snprintf(want, sizeof(want), "step budget exceeded in string.%s", fns[i]);
		if (!strstr(r, want))
			TAP_FAIL("%s: got '%s'", fns[i], r);
		/* reported at most one batch after the budget */
		CHECK(test_steps <= test_budget + CONFIG_PATTERN_CHARGE_EVERY);
		CHECK(secs < 10);
		printf("# %s: stopped after %lu steps in %.3f s\n", fns[i], test_steps, secs);
	}
	test_budget = 0;
	lua_close(L);
}

/* Work is charged even when nothing backtracks: a plain search of 1 MiB,
 * and a match that succeeds, each report what they did. */
TEST(charges_linear_work)
{
	lua_State *L = test_state();
	test_budget = 0;
	test_steps = 0;
	CHECK_STR(test_run(L, "return kp.find(string.rep('a', 1 << 20), 'b', 1, true)"), "nil");
	CHECK(test_steps >= (1u << 20) / 64);
	test_steps = 0;
	CHECK_STR(test_run(L, "return #kp.match(string.rep('a', 1 << 20) .. 'b', 'a*b')"),
		  "1048577");
	CHECK(test_steps >= (1u << 20));
	lua_close(L);
}

int main(void)
{
	alarm(120); /* a matcher that never returns fails the test instead of hanging it */
	RUN(random_against_lua);
	RUN(picked_cases);
	RUN(budget_stops_backtracking);
	RUN(charges_linear_work);
	return tap_done();
}
