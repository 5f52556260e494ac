DROP TABLE trainer_inputs;
