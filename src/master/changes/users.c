/*
 * Parsing a change's "who" into a user's full name, e-mail address or
 * username (users.h).  The users tables themselves are in the database
 * (db_change_add matches and links them); this file is the pure part.
 */
#include "master/changes/users.h"

#include <string.h>

#include "common/xalloc.h"

static char *dup_trimmed(const char *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	return n ? xstrndup(p, n) : NULL;
}

void users_parse_who(const char *who, struct users_who *ret)
{
	*ret = (struct users_who){0};
	if (!who)
		return;
	const char *lt = strchr(who, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	if (lt && gt) {
		ret->full_name = dup_trimmed(who, (size_t)(lt - who));
		ret->email = dup_trimmed(lt + 1, (size_t)(gt - lt - 1));
		if (ret->email && !strchr(ret->email, '@')) {
			/* "Name <user>": not an address, keep it as the username */
			ret->username = TAKE_PTR(ret->email);
		}
		return;
	}
	char *t = dup_trimmed(who, strlen(who));
	if (!t)
		return;
	if (strchr(t, '@') && !strchr(t, ' '))
		ret->email = t;
	else if (!strchr(t, ' '))
		ret->username = t;
	else
		ret->full_name = t;
}

void users_who_release(struct users_who *w)
{
	free(w->full_name);
	free(w->email);
	free(w->username);
	*w = (struct users_who){0};
}
