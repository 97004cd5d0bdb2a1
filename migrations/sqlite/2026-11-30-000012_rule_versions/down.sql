ALTER TABLE rule_sets DROP COLUMN diff;
ALTER TABLE rule_sets DROP COLUMN snapshot;
