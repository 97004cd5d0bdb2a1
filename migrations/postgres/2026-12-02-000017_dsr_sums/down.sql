ALTER TABLE dsr_snapshots DROP COLUMN sums;
