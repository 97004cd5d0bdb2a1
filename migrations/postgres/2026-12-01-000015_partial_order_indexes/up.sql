-- An order is inserted unpaid, unshipped and undelivered: indexes on those moments need no
-- entry until the moment comes (five fewer index writes per order placed). Every query that
-- uses them compares the column (paid_at >= …, delivered_at <= …), which implies IS NOT NULL,
-- so SQLite and PostgreSQL both still use them.
DROP INDEX orders_status_shipped;
CREATE INDEX orders_status_shipped ON orders (status, shipped_at) WHERE shipped_at IS NOT NULL;
DROP INDEX orders_status_delivered;
CREATE INDEX orders_status_delivered ON orders (status, delivered_at) WHERE delivered_at IS NOT NULL;
DROP INDEX orders_shop_paid;
CREATE INDEX orders_shop_paid ON orders (shop_id, paid_at) WHERE paid_at IS NOT NULL;
DROP INDEX orders_delivered;
CREATE INDEX orders_delivered ON orders (delivered_at) WHERE delivered_at IS NOT NULL;
DROP INDEX orders_paid;
CREATE INDEX orders_paid ON orders (paid_at) WHERE paid_at IS NOT NULL;
