DROP INDEX products_listed_sales;
DROP TABLE search_grams;
