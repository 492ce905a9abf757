/*
 * Users named by changes: the "who" string of a change ("Full Name
 * <email>", a bare e-mail address or a bare username) parsed into the
 * parts the users tables keep (db.h struct db_user_ident).
 */
#ifndef KILN_CHANGES_USERS_H
#define KILN_CHANGES_USERS_H

struct users_who {
	char *full_name; /* owned; NULL when absent */
	char *email;     /* owned; NULL when absent */
	char *username;  /* owned; a bare name without '@' or '<', NULL otherwise */
};

/* Parses who (borrowed, may be NULL): "Ann Dev <ann@x.org>" gives full_name
 * "Ann Dev" and email "ann@x.org"; "<ann@x.org>" only the email; "ann@x.org"
 * the email; "ann" the username.  Surrounding blanks are dropped.  Never
 * fails: unparseable text is a username.  Release with users_who_release. */
void users_parse_who(const char *who, struct users_who *ret);
void users_who_release(struct users_who *w);

#endif
