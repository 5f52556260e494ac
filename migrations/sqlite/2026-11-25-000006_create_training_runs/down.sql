DROP TABLE training_runs;
