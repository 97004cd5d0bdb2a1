-- The running sums behind a snapshot (JSON: counted ratings and their star totals over the DSR
-- window, the recency-weighted bad reviews), so that the next day's run carries them on with
-- that day's changes instead of reading the whole window again. NULL for snapshots written
-- before this column: the next run then makes a full pass.
ALTER TABLE dsr_snapshots ADD COLUMN sums TEXT;
