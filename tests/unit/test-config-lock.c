/*
 * master_lock { }, worker_lock { }, lock:access() and the locks = { } of
 * builder { } and shell { } (src/config/config-lock.c): what is copied and
 * every checkconfig error with its line.
 */
#include "tap.h"
#include "config-test.h"
#include "common/err.h"
#include "common/limits.h"
#include "config/config.h"

#include <stdlib.h>

#define W                                                                                          \
	"worker { name = \"w1\", password = secret(\"pw\") }\n"                                    \
	"worker { name = \"w2\", password = secret(\"pw\") }\n"
#define B(locks)                                                                                   \
	"builder { name = \"b\", workers = { \"w1\" }, " locks                                     \
	", steps = { shell { command = \"make\" } } }\n"

TEST(declarations_are_copied)
{
	setenv("KILN_SECRET_PW", "x", 1);
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W "local compile = master_lock { name = \"compile\", max_count = 2 }\n"
		  "local disk = worker_lock { name = \"disk\", max_count_for_worker = { w2 = "
		  "3, w1 = 2 } }\n"
		  "local one = master_lock { name = \"one\" }\n"
		  "builder { name = \"b\", workers = { \"w1\" },\n"
		  "  locks = { \"one\", compile:access(\"exclusive\") },\n"
		  "  steps = { shell { command = \"make\", locks = { "
		  "disk:access(\"counting\", 2) } } } }\n"
		  "builder { name = \"c\", workers = { \"w1\" },\n"
		  "  steps = { shell { command = \"make\", locks = { compile } } } }\n");
	if (!cfg)
		return;
	CHECK_INT(cfg->nlocks, 3);
	CHECK_STR(cfg->lock[0].name, "compile");
	CHECK_INT(cfg->lock[0].kind, CONFIG_LOCK_MASTER);
	CHECK_INT(cfg->lock[0].max_count, 2);
	CHECK_INT(cfg->lock[0].line, 3);
	CHECK_INT(cfg->lock[1].kind, CONFIG_LOCK_WORKER);
	CHECK_INT(cfg->lock[1].max_count, 1);
	CHECK_INT(cfg->lock[1].nper_worker, 2);
	CHECK_INT(config_lock_max_count(&cfg->lock[1], "w1"), 2);
	CHECK_INT(config_lock_max_count(&cfg->lock[1], "w2"), 3);
	CHECK_INT(config_lock_max_count(&cfg->lock[1], "w3"), 1);
	CHECK_INT(config_lock_max_count(&cfg->lock[1], NULL), 1);
	CHECK_INT(cfg->lock[2].max_count, 1);
	CHECK(config_find_lock(cfg, "disk") == &cfg->lock[1]);
	CHECK(config_find_lock(cfg, "nope") == NULL);
	/* sorted by lock index (the acquisition order), whatever the listed order */
	const struct config_builder *b = &cfg->builder[0];
	CHECK_INT(b->nlocks, 2);
	CHECK_INT(b->locks[0].lock, 0);
	CHECK_INT(b->locks[0].mode, CONFIG_LOCK_EXCLUSIVE);
	CHECK_INT(b->locks[1].lock, 2);
	CHECK_INT(b->locks[1].mode, CONFIG_LOCK_COUNTING);
	CHECK_INT(b->locks[1].count, 1);
	CHECK_INT(b->steps[0].nlocks, 1);
	CHECK_INT(b->steps[0].locks[0].lock, 1);
	CHECK_INT(b->steps[0].locks[0].count, 2);
	CHECK_INT(cfg->builder[1].nlocks, 0);
	CHECK_INT(cfg->builder[1].steps[0].nlocks, 1);
	CHECK_INT(cfg->builder[1].steps[0].locks[0].mode, CONFIG_LOCK_COUNTING);
	config_free(cfg);
}

TEST(errors)
{
	setenv("KILN_SECRET_PW", "x", 1);
	CHECK_ERR(W "master_lock { name = \"a\" }\nworker_lock { name = \"a\" }\n",
		  "master.lua:4: lock 'a' is already declared at line 3");
	CHECK_ERR(W "master_lock { }\n", "master.lua:3: master_lock: 'name' is required");
	CHECK_ERR(
		W "master_lock { name = \"a\", max_count = 0 }\n",
		"master.lua:3: master_lock 'a': 'max_count' must be between 1 and 1000000 (got 0)");
	CHECK_ERR(W "master_lock { name = \"a\", max_count = 1.5 }\n",
		  "master.lua:3: master_lock 'a': 'max_count' must be an integer (got number)");
	CHECK_ERR(W "master_lock { name = \"a\", max_count_for_worker = { w1 = 2 } }\n",
		  "master.lua:3: master_lock 'a': unknown key 'max_count_for_worker' (known: name, "
		  "max_count)");
	CHECK_ERR(W "worker_lock { name = \"a\", max_count_for_worker = { w1 = -1 } }\n",
		  "master.lua:3: worker_lock 'a': max_count_for_worker['w1'] must be an integer "
		  "between 1 and 1000000");
	CHECK_ERR(W "worker_lock { name = \"a\", max_count_for_worker = { \"w1\" } }\n",
		  "master.lua:3: worker_lock 'a': 'max_count_for_worker' keys must be worker names "
		  "(got number)");
	CHECK_ERR(
		W "worker_lock { name = \"a\", max_count_for_worker = 3 }\n",
		"master.lua:3: worker_lock 'a': 'max_count_for_worker' must be a table of WORKER = "
		"COUNT (got number)");
	CHECK_ERR(W "\nworker_lock { name = \"a\", max_count_for_worker = { w9 = 2 } }\n",
		  "master.lua:4: worker_lock 'a': max_count_for_worker names unknown worker 'w9'");
	CHECK_ERR(W B("locks = { \"nope\" }"),
		  "master.lua:3: builder 'b': locks[1]: unknown lock 'nope' (declare it first with "
		  "master_lock { name = \"nope\" } or worker_lock { ... })");
	CHECK_ERR(W "local a = master_lock { name = \"a\" }\n" B(
			  "locks = { a, a:access(\"exclusive\") }"),
		  "master.lua:4: builder 'b': lock 'a' is listed twice in 'locks'");
	CHECK_ERR(W
		  "local a = master_lock { name = \"a\" }\n" B("locks = { a:access(\"shared\") }"),
		  "master.lua:4: lock 'a': access mode must be \"counting\" or \"exclusive\" (got "
		  "'shared')");
	CHECK_ERR(W "local a = master_lock { name = \"a\" }\n" B("locks = { a:access() }"),
		  "master.lua:4: lock 'a': access mode must be \"counting\" or \"exclusive\" (got "
		  "no value)");
	CHECK_ERR(W "local a = master_lock { name = \"a\", max_count = 2 }\n" B(
			  "locks = { a:access(\"counting\", 3) }"),
		  "master.lua:4: lock 'a': access count 3 is above the lock's max_count 2");
	CHECK_ERR(W "local a = master_lock { name = \"a\", max_count = 2 }\n" B(
			  "locks = { a:access(\"exclusive\", 2) }"),
		  "master.lua:4: lock 'a': exclusive access takes no count");
	CHECK_ERR(W "local a = master_lock { name = \"a\" }\n" B(
			  "locks = { a:access(\"counting\", 0) }"),
		  "master.lua:4: lock 'a': access count must be an integer between 1 and 1000000");
	CHECK_ERR(
		W B("locks = { 3 }"),
		"master.lua:3: builder 'b': locks[1] must be a lock, lock:access(...) or a lock's "
		"name (got number)");
	CHECK_ERR(W B("locks = \"a\""),
		  "master.lua:3: builder 'b': 'locks' must be a list of locks (got string)");
	CHECK_ERR(W "local a = master_lock { name = \"a\" }\n"
		    "builder { name = \"b\", workers = { \"w1\" }, locks = { a },\n"
		    "  steps = { shell { name = \"s\", command = \"make\", locks = { "
		    "a:access(\"exclusive\") } } } }\n",
		  "master.lua:4: builder 'b': step 's' lists lock 'a', which the builder already "
		  "holds for the whole build");
	CHECK_ERR(W "shell { command = \"make\", locks = { \"nope\" } }\n",
		  "master.lua:3: shell: locks[1]: unknown lock 'nope' (declare it first with "
		  "master_lock { name = \"nope\" } or worker_lock { ... })");
}

TEST(too_many_in_a_list)
{
	setenv("KILN_SECRET_PW", "x", 1);
	char text[8192];
	int n = snprintf(text, sizeof(text), "%s",
			 W "local l = {}\nfor i = 1, 65 do l[i] = "
			   "master_lock { name = \"l\" .. i } end\n" B("locks = l"));
	CHECK(n > 0 && (size_t)n < sizeof(text));
	CHECK_ERR(text, "master.lua:5: builder 'b': 'locks' lists more than 64 locks");
}

int main(void)
{
	RUN(declarations_are_copied);
	RUN(errors);
	RUN(too_many_in_a_list);
	return tap_done();
}
