DROP TABLE refreshes;
