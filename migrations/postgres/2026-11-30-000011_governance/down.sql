DELETE FROM rule_params WHERE key IN ('appeal_days', 'appeal_review_days');
DROP TABLE appeals;
DROP TABLE violation_delistings;
DROP TABLE penalties;
DROP TABLE violations;
DROP TABLE penalty_nodes;
DROP TABLE violation_types;
