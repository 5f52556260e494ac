-- The gateway process that recorded a row: with several gateways on one store, each trainer
-- reads the rows the others recorded. NULL for rows recorded before it was kept.
ALTER TABLE feedback ADD COLUMN origin TEXT;
