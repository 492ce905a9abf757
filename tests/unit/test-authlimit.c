/* Failed-login backoff per address (src/master/authlimit.c) on a fake clock. */
#include <stdlib.h>

#include "master/authlimit.h"
#include "tap.h"

static struct authlimit *test_new(size_t max_addrs)
{
	struct authlimit_cfg cfg = {
		.free_failures = 3,
		.first_ms = 1000,
		.max_ms = 8000,
		.forget_ms = 60000,
		.log_every_ms = 10000,
		.max_addrs = max_addrs,
	};
	return authlimit_new(&cfg);
}

TEST(free_failures_then_windows_double_to_the_cap)
{
	struct authlimit *al = test_new(16);
	uint64_t t = 1000000;
	for (int i = 0; i < 3; i++) {
		CHECK_INT(authlimit_check(al, "10.0.0.1", t, NULL), 0);
		authlimit_failed(al, "10.0.0.1", t, NULL);
	}
	CHECK_INT(authlimit_check(al, "10.0.0.1", t, NULL), 0); /* the free ones are used */
	authlimit_failed(al, "10.0.0.1", t, NULL);              /* 4th: a 1 s window */
	CHECK_INT(authlimit_check(al, "10.0.0.1", t, NULL), 1000);
	CHECK_INT(authlimit_check(al, "10.0.0.1", t + 999, NULL), 1);
	CHECK_INT(authlimit_check(al, "10.0.0.2", t, NULL), 0); /* per address */
	uint64_t want[] = {2000, 4000, 8000, 8000, 8000};
	for (size_t i = 0; i < 5; i++) {
		t += 10000;
		CHECK_INT(authlimit_check(al, "10.0.0.1", t, NULL), 0);
		authlimit_failed(al, "10.0.0.1", t, NULL);
		CHECK_INT(authlimit_check(al, "10.0.0.1", t, NULL), want[i]);
	}
	authlimit_free(al);
}

TEST(success_after_the_window_forgets)
{
	struct authlimit *al = test_new(16);
	uint64_t t = 5000;
	for (int i = 0; i < 4; i++)
		authlimit_failed(al, "192.0.2.7", t, NULL);
	CHECK(authlimit_check(al, "192.0.2.7", t, NULL) > 0);
	t += 1000;
	CHECK_INT(authlimit_check(al, "192.0.2.7", t, NULL), 0);
	authlimit_succeeded(al, "192.0.2.7");
	CHECK_INT(authlimit_count(al), 0);
	/* a fresh start: the free failures again */
	authlimit_failed(al, "192.0.2.7", t, NULL);
	CHECK_INT(authlimit_check(al, "192.0.2.7", t, NULL), 0);
	authlimit_free(al);
}

TEST(quiet_addresses_are_forgotten)
{
	struct authlimit *al = test_new(16);
	uint64_t t = 0;
	for (int i = 0; i < 6; i++) {
		t += 10000;
		authlimit_failed(al, "10.1.1.1", t, NULL);
	}
	CHECK(authlimit_check(al, "10.1.1.1", t, NULL) > 0);
	CHECK_INT(authlimit_count(al), 1);
	t += 60000;
	CHECK_INT(authlimit_check(al, "10.1.1.1", t, NULL), 0);
	CHECK_INT(authlimit_count(al), 0);
	authlimit_failed(al, "10.1.1.1", t, NULL);
	CHECK_INT(authlimit_check(al, "10.1.1.1", t, NULL), 0); /* free again */
	authlimit_free(al);
}

TEST(table_is_bounded_least_recent_evicted)
{
	struct authlimit *al = test_new(4);
	char a[32];
	for (int i = 0; i < 100; i++) {
		snprintf(a, sizeof(a), "10.2.0.%d", i);
		authlimit_failed(al, a, (uint64_t)i, NULL);
		CHECK(authlimit_count(al) <= 4);
	}
	CHECK_INT(authlimit_count(al), 4);
	/* the newest are kept: 10.2.0.99 has one failure on record */
	for (int i = 0; i < 3; i++)
		authlimit_failed(al, "10.2.0.99", 200, NULL);
	CHECK(authlimit_check(al, "10.2.0.99", 200, NULL) > 0);
	authlimit_free(al);
}

TEST(ipv6_counts_per_64_and_mapped_ipv4_as_ipv4)
{
	struct authlimit *al = test_new(16);
	char a[64];
	for (int i = 1; i <= 4; i++) {
		snprintf(a, sizeof(a), "2001:db8:1:2::%x", i);
		authlimit_failed(al, a, 100, NULL);
	}
	CHECK(authlimit_check(al, "2001:db8:1:2:ffff::1", 100, NULL) > 0);
	CHECK_INT(authlimit_check(al, "2001:db8:1:3::1", 100, NULL), 0);
	for (int i = 0; i < 4; i++)
		authlimit_failed(al, "::ffff:10.9.9.9", 100, NULL);
	CHECK(authlimit_check(al, "10.9.9.9", 100, NULL) > 0);
	CHECK_INT(authlimit_count(al), 2);
	authlimit_free(al);
}

TEST(logging_is_summarised)
{
	struct authlimit *al = test_new(16);
	struct authlimit_note n;
	uint64_t t = 1000;
	unsigned lines = 0, failures = 0, refused = 0;
	authlimit_failed(al, "10.3.3.3", t, &n);
	CHECK(n.log && n.first);
	CHECK_INT(n.failures, 1);
	lines++;
	failures++;
	/* 200 attempts over 20 s: one line per 10 s at most */
	for (int i = 0; i < 200; i++) {
		t += 100;
		if (authlimit_check(al, "10.3.3.3", t, &n) > 0) {
			refused++;
		} else {
			authlimit_failed(al, "10.3.3.3", t, &n);
			failures++;
		}
		if (n.log) {
			CHECK(!n.first);
			lines++;
		}
	}
	CHECK(lines <= 3);
	CHECK(refused > 180);
	/* a last summary carries what was not reported yet */
	t += 10000;
	CHECK(authlimit_check(al, "10.3.3.3", t, &n) == 0 || n.log);
	authlimit_failed(al, "10.3.3.3", t + 20000, &n);
	CHECK(n.log);
	CHECK(n.failures >= 1);
	authlimit_free(al);
}

TEST(env_lowers_the_cap)
{
	setenv("KILN_AUTH_BACKOFF_MAX_MS", "500", 1);
	struct authlimit_cfg c;
	authlimit_cfg_default(&c);
	CHECK_INT(c.max_ms, 500);
	CHECK(c.first_ms <= 500);
	setenv("KILN_AUTH_BACKOFF_MAX_MS", "junk", 1);
	authlimit_cfg_default(&c);
	CHECK(c.max_ms > 500);
	unsetenv("KILN_AUTH_BACKOFF_MAX_MS");
	CHECK(authlimit_shared(AUTHLIMIT_WORKERS) != authlimit_shared(AUTHLIMIT_HOOKS));
	CHECK(authlimit_shared(AUTHLIMIT_HOOKS) == authlimit_shared(AUTHLIMIT_HOOKS));
}

int main(void)
{
	RUN(free_failures_then_windows_double_to_the_cap);
	RUN(success_after_the_window_forgets);
	RUN(quiet_addresses_are_forgotten);
	RUN(table_is_bounded_least_recent_evicted);
	RUN(ipv6_counts_per_64_and_mapped_ipv4_as_ipv4);
	RUN(logging_is_summarised);
	RUN(env_lowers_the_cap);
	return tap_done();
}
