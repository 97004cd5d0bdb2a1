DROP TABLE follows;
DROP TABLE shop_authorizations;
DROP TABLE shop_staff;
DROP TABLE shop_qualifications;
DROP TABLE shops;
DROP TABLE categories;
