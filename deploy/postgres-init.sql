-- Separate databases on the one PostgreSQL server: Airflow's metadata, the DossierHub
-- registry, and the Land office's reference system. Passwords are set by the compose
-- file from environment variables, never here.
CREATE DATABASE airflow;
CREATE DATABASE registry;
CREATE DATABASE land;
