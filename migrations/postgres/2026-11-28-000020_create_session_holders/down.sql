DROP TABLE session_holders;
