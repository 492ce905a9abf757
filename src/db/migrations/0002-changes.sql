-- Kiln schema, version 2: changes (with their sourcestamp, as Buildbot
-- stores them), the users named by changes and their per-VCS identities,
-- the link from buildsets to the changes they build, and object state
-- (pollers' last-seen revisions: name -> JSON).

CREATE TABLE changes (
	id INTEGER PRIMARY KEY,
	author TEXT NOT NULL DEFAULT '',
	committer TEXT,
	comments TEXT NOT NULL DEFAULT '',
	branch TEXT,
	revision TEXT,
	revlink TEXT,
	when_timestamp REAL NOT NULL,
	category TEXT,
	repository TEXT NOT NULL DEFAULT '',
	codebase TEXT NOT NULL DEFAULT '',
	project TEXT NOT NULL DEFAULT '',
	files TEXT NOT NULL DEFAULT '[]',          -- JSON array of paths
	properties TEXT NOT NULL DEFAULT '{}',     -- {"name": [value, "Change"]}
	parent_changeid INTEGER REFERENCES changes(id) ON DELETE SET NULL,
	sourcestampid INTEGER NOT NULL REFERENCES sourcestamps(id)
);
-- the latest change of a line (repository, project, codebase, branch): its parent
CREATE INDEX changes_line ON changes(repository, project, codebase, branch);
CREATE INDEX changes_sourcestampid ON changes(sourcestampid);
CREATE INDEX changes_when ON changes(when_timestamp);

CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	identifier TEXT NOT NULL UNIQUE,           -- the first "who" seen for this user
	full_name TEXT,
	email TEXT
);

-- one row per way a user is known: ('git', 'Ann <ann@x>'), ('email', 'ann@x'), ('svn', 'ann')
CREATE TABLE users_info (
	userid INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	attr_type TEXT NOT NULL,
	attr_data TEXT NOT NULL,
	PRIMARY KEY (attr_type, attr_data)
) WITHOUT ROWID;
CREATE INDEX users_info_userid ON users_info(userid);

CREATE TABLE change_users (
	changeid INTEGER NOT NULL REFERENCES changes(id) ON DELETE CASCADE,
	userid INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	PRIMARY KEY (changeid, userid)
) WITHOUT ROWID;
CREATE INDEX change_users_userid ON change_users(userid);

CREATE TABLE buildset_changes (
	buildsetid INTEGER NOT NULL REFERENCES buildsets(id) ON DELETE CASCADE,
	changeid INTEGER NOT NULL REFERENCES changes(id) ON DELETE CASCADE,
	PRIMARY KEY (buildsetid, changeid)
) WITHOUT ROWID;
CREATE INDEX buildset_changes_changeid ON buildset_changes(changeid);

CREATE TABLE object_state (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL                        -- JSON
) WITHOUT ROWID;

-- A build whose buildset builds changes carries their authors as its
-- "blamelist" property, set when the build row is added (whoever adds it).
CREATE TRIGGER builds_blamelist AFTER INSERT ON builds
WHEN EXISTS (SELECT 1 FROM buildrequests br
             JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid
             WHERE br.id = NEW.buildrequestid)
BEGIN
	UPDATE builds SET properties = json_set(properties, '$.blamelist', json_array(json(
		(SELECT json_group_array(author) FROM
		  (SELECT DISTINCT c.author AS author FROM buildrequests br
		   JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid
		   JOIN changes c ON c.id = bc.changeid
		   WHERE br.id = NEW.buildrequestid ORDER BY c.author))), 'Build'))
	WHERE id = NEW.id;
END;
