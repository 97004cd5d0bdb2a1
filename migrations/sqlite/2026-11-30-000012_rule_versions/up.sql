-- Every rule-set version keeps what was in force after it (a snapshot, one canonical line per
-- rule, by section) and what it changed (a line diff), so old versions stay readable.
ALTER TABLE rule_sets ADD COLUMN snapshot TEXT NOT NULL DEFAULT '{}';
ALTER TABLE rule_sets ADD COLUMN diff TEXT NOT NULL DEFAULT '';
