ALTER TABLE feedback DROP COLUMN origin;
