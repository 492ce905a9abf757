/* The project's own test runner: one TAP line per case (testanything.org). */
#include <stdio.h>
#include <string.h>

#include "greet.h"

static int test_n;
static int test_failed;

static void test_ok(int ok, const char *what)
{
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ++test_n, what);
	if (!ok)
		test_failed++;
}

int main(void)
{
	char buf[64];

	printf("TAP version 13\n1..4\n");
	greet(buf, sizeof(buf), NULL);
	test_ok(strcmp(buf, "hello, kiln") == 0, "greets kiln by default");
	greet(buf, sizeof(buf), "world");
	test_ok(strcmp(buf, "hello, world") == 0, "greets a name");
	test_ok(greet(buf, 4, "world") == 12 && strcmp(buf, "hel") == 0,
		"cuts a long greeting and says how long it was");
	printf("ok %d - greets in other languages # SKIP not translated yet\n", ++test_n);
	return test_failed ? 1 : 0;
}
