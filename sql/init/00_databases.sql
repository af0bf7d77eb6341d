-- Run by the server at every start-up, before it accepts connections: keep it idempotent.
-- Objects made here are persistent (temporary views would live only in the server's own session).
CREATE DATABASE IF NOT EXISTS emoticana COMMENT 'Emoticana model registry and shared views';
