DROP TABLE payment_events;
DROP TABLE payments;
DROP TABLE order_events;
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE checkouts;
DROP TABLE cart_items;
DROP TABLE addresses;
