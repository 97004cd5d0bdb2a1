DROP TABLE listing_checks;
DROP TABLE rule_params;
DROP TABLE prohibited_terms;
DROP TABLE rule_sets;
DROP TABLE product_images;
DROP TABLE skus;
DROP TABLE products;
