/*
 * A tiny TAP producer for unit tests: each test binary runs in its own
 * process (scripts/check gives it a timeout) and prints "ok N - name" or
 * "not ok N - name" with file:line and both values on failure.
 *
 *   TEST(buf_grows) { CHECK_INT(buf_add(&b, "x", 1), 0); }
 *   int main(void) { RUN(buf_grows); return tap_done(); }
 *
 * tap_done() prints the plan "1..N" last; scripts/check fails a stream
 * without it (a test that crashed or returned early).
 */
#ifndef KILN_TAP_H
#define KILN_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_cur_failed;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                                                  \
	do {                                                                                       \
		tap_cur_failed = 0;                                                                \
		test_##name();                                                                     \
		tap_n++;                                                                           \
		printf("%sok %d - %s\n", tap_cur_failed ? "not " : "", tap_n, #name);              \
		fflush(stdout);                                                                    \
		if (tap_cur_failed)                                                                \
			tap_failed++;                                                              \
	} while (0)

#define TAP_FAIL(...)                                                                              \
	do {                                                                                       \
		printf("# %s:%d: ", __FILE__, __LINE__);                                           \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		tap_cur_failed = 1;                                                                \
	} while (0)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			TAP_FAIL("check failed: %s", #cond);                                       \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);                        \
		if (tap_a_ != tap_b_)                                                              \
			TAP_FAIL("%s == %s: got %lld, want %lld", #a, #b, tap_a_, tap_b_);         \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *tap_a_ = (a), *tap_b_ = (b);                                           \
		if (!tap_a_ || !tap_b_ || strcmp(tap_a_, tap_b_))                                  \
			TAP_FAIL("%s == %s: got '%s', want '%s'", #a, #b,                          \
				 tap_a_ ? tap_a_ : "(null)", tap_b_ ? tap_b_ : "(null)");          \
	} while (0)

/* The whole test cannot run here (a missing dependency): prints the TAP
 * skip-all line "1..0 # SKIP reason"; return its value from main() before any
 * RUN().  scripts/check counts it as one skipped test, as failed under CI=true. */
static inline int tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	return 0;
}

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
