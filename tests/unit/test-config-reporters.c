/*
 * reporter { kind = "email", ... } (src/config/config-reporter*.c): what is
 * copied into struct config and every checkconfig error with its line.
 */
#include "tap.h"
#include "config-test.h"
#include "common/err.h"
#include "config/config.h"

#include <stdlib.h>

#define W "worker { name = \"w1\", password = secret(\"pw\") }\n"
#define B                                                                                          \
	"builder { name = \"lib-a\", workers = { \"w1\" }, tags = { \"lib\" }, steps = { shell "   \
	"{ command = \"make\" } } }\n"                                                             \
	"builder { name = \"app\", workers = { \"w1\" }, steps = { shell { command = \"make\" } "  \
	"} }\n"
#define SMTP "smtp = { host = \"127.0.0.1\", port = 2525 }"

TEST(email_is_copied)
{
	setenv("KILN_SECRET_PW", "x", 1);
	setenv("KILN_SECRET_SMTP", "hunter2", 1);
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W B
		"reporter { kind = \"email\", name = \"mail\", mode = { \"failing\", \"change\" "
		"},\n"
		"  builders = { \"lib-*\", \"app\" }, tags = { \"lib\" }, branches = { \"main\" "
		"},\n"
		"  from = \"kiln@example.org\", to = { \"a@example.org\", \"b@example.org\" },\n"
		"  blamelist = false, log_lines = 10, subject = \"[ci]\",\n"
		"  smtp = { host = \"mail.example.org\", tls = \"required\", user = \"kiln\", "
		"password = secret(\"smtp\") },\n"
		"  queue = { max_messages = 5, max_bytes = \"1 MiB\", timeout = 2, attempts = 4, "
		"backoff = 0.5 } }\n"
		"reporter { kind = \"email\", from = \"k@x.org\", to = \"c@x.org\", " SMTP " }\n");
	if (!cfg)
		return;
	CHECK_INT(cfg->nreporters, 2);
	const struct config_reporter *r = &cfg->reporter[0];
	CHECK_INT(r->kind, CONFIG_REPORTER_EMAIL);
	CHECK_STR(r->name, "mail");
	CHECK_INT(r->line, 4);
	CHECK_INT(r->filter.modes, CONFIG_REPORT_FAILING | CONFIG_REPORT_CHANGE);
	CHECK_INT(r->filter.nbuilders, 2);
	CHECK_STR(r->filter.builders[0], "lib-*");
	CHECK_INT(r->filter.ntags, 1);
	CHECK_STR(r->filter.branches[0], "main");
	CHECK_STR(r->email.from, "kiln@example.org");
	CHECK_INT(r->email.nto, 2);
	CHECK_STR(r->email.to[1], "b@example.org");
	CHECK(!r->email.blamelist);
	CHECK_INT(r->email.log_lines, 10);
	CHECK_STR(r->email.subject, "[ci]");
	CHECK_STR(r->email.smtp_host, "mail.example.org");
	CHECK_INT(r->email.smtp_port, 25);
	CHECK_INT(r->email.tls, CONFIG_SMTP_TLS_REQUIRED);
	CHECK_STR(r->email.smtp_user, "kiln");
	CHECK_STR(r->email.smtp_password, "hunter2");
	CHECK_INT(r->max_messages, 5);
	CHECK_INT(r->max_bytes, 1 << 20);
	CHECK(r->timeout == 2);
	CHECK_INT(r->attempts, 4);
	CHECK(r->backoff == 0.5);
	/* defaults */
	r = &cfg->reporter[1];
	CHECK_STR(r->name, "email");
	CHECK_INT(r->filter.modes, CONFIG_REPORT_FAILING);
	CHECK_INT(r->email.nto, 1);
	CHECK_STR(r->email.to[0], "c@x.org");
	CHECK(r->email.blamelist);
	CHECK_INT(r->email.log_lines, 40);
	CHECK_INT(r->email.tls, CONFIG_SMTP_TLS_NONE);
	CHECK(r->email.smtp_user == NULL);
	CHECK_INT(r->max_messages, 100);
	CHECK_INT(r->attempts, 3);
	config_free(cfg);
}

TEST(errors)
{
	setenv("KILN_SECRET_PW", "x", 1);
	setenv("KILN_SECRET_SMTP", "hunter2", 1);
	CHECK_ERR(W "reporter { from = \"a@b.c\" }\n",
		  "master.lua:2: reporter: 'kind' is required: kind = \"email\"");
	CHECK_ERR(W "reporter { kind = \"pigeon\" }\n",
		  "master.lua:2: reporter: unknown kind 'pigeon' (known: \"email\", \"irc\", "
		  "\"http\", "
		  "\"slack\", \"mattermost\", \"matrix\", \"telegram\", \"zulip\")");
	CHECK_ERR(
		W "reporter { kind = \"email\", " SMTP " }\n",
		"master.lua:2: reporter 'email': 'from' is required: from = \"kiln@example.org\"");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"nobody\", " SMTP " }\n",
		  "master.lua:2: reporter 'email': 'from' must be an address such as "
		  "\"ci@example.org\" (printable ASCII without spaces, quotes, <> or commas; at "
		  "most 254 bytes), got 'nobody'");
	CHECK_ERR_HAS(W "reporter { kind = \"email\", from = \"a@b.c\", to = { \"x@y\", \"bad "
			"one@y\" }, " SMTP " }\n",
		      "master.lua:2: reporter 'email': 'to[2]' must be an address");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"a@b.c\" }\n",
		  "master.lua:2: reporter 'email': 'smtp' is required: smtp = { host = "
		  "\"127.0.0.1\", port = 25 } (got nil)");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"a@b.c\", smtp = { port = 25 } }\n",
		  "master.lua:2: reporter 'email': smtp: 'host' is required (a host name or "
		  "address)");
	CHECK_ERR_HAS(W "reporter { kind = \"email\", from = \"a@b.c\", smtp = { host = \"h\", "
			"port = 70000 } }\n",
		      "master.lua:2: reporter 'email': smtp: 'port'");
	CHECK_ERR(
		W "reporter { kind = \"email\", from = \"a@b.c\", smtp = { host = \"h\", tls = "
		  "\"maybe\" } }\n",
		"master.lua:2: reporter 'email': smtp: 'tls' must be \"none\", \"starttls\" (when "
		"offered), \"required\" (STARTTLS or nothing is sent) or \"smtps\" (got 'maybe')");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"a@b.c\", smtp = { host = \"h\", user = "
		    "\"u\", password = \"plain\" } }\n",
		  "master.lua:2: reporter 'email': smtp: 'password' must come from secret(...): "
		  "password = secret(\"smtp\")");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"a@b.c\", smtp = { host = \"h\", user = "
		    "\"u\" } }\n",
		  "master.lua:2: reporter 'email': smtp: 'user' and 'password' go together (a "
		  "login needs both)");
	CHECK_ERR(
		W "reporter { kind = \"email\", from = \"a@b.c\", mode = \"sometimes\", " SMTP
		  " }\n",
		"master.lua:2: reporter 'email': unknown mode 'sometimes' (one of \"all\", "
		"\"failing\", \"problem\", \"change\", \"warnings\", \"exception\", \"passing\")");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"a@b.c\", blamelist = false, " SMTP
		    " }\n",
		  "master.lua:2: reporter 'email': nobody to mail: give 'to' or keep blamelist = "
		  "true");
	CHECK_ERR_HAS(W "reporter { kind = \"email\", from = \"a@b.c\", colour = 1, " SMTP " }\n",
		      "master.lua:2: reporter 'email':");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"a@b.c\", " SMTP " }\n"
		    "reporter { kind = \"email\", from = \"a@b.c\", " SMTP " }\n",
		  "master.lua:3: reporter 'email' is already declared at line 2 (give it another "
		  "name = ...)");
	CHECK_ERR(W B "reporter { kind = \"email\", from = \"a@b.c\", builders = { \"lib-a\", "
		      "\"nope\" }, " SMTP " }\n",
		  "master.lua:4: reporter 'email': builders[2]: unknown builder 'nope'");
	CHECK_ERR(W B "reporter { kind = \"email\", from = \"a@b.c\", builders = { \"x-*\" }, " SMTP
		      " }\n",
		  "master.lua:4: reporter 'email': builders[1]: the pattern 'x-*' matches no "
		  "builder");
	CHECK_ERR(
		W "reporter { kind = \"email\", from = \"a@b.c\", queue = { timeout = 0 }, " SMTP
		  " }\n",
		"master.lua:2: reporter 'email': queue: 'timeout' must be more than 0 and at most "
		"3600 seconds");
	CHECK_ERR(W "reporter { kind = \"email\", from = \"a@b.c\", queue = { max_bytes = \"lots\" "
		    "}, " SMTP " }\n",
		  "master.lua:2: reporter 'email': queue: 'max_bytes' must be a size such as \"8 "
		  "MiB\" (got 'lots')");
	CHECK_ERR(
		W "reporter { kind = \"email\", from = \"a@b.c\", subject = \"a\\nb\", " SMTP
		  " }\n",
		"master.lua:2: reporter 'email': 'subject' must be one line of at most 128 bytes");
}

int main(void)
{
	RUN(email_is_copied);
	RUN(errors);
	return tap_done();
}
