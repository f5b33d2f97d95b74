#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d): creates the run-ledger database and its owner next to Airflow's
# metadata DB. Names and password come from OGIRI_LEDGER_DB / OGIRI_LEDGER_USER /
# OGIRI_LEDGER_PASSWORD (see docker-compose.yaml and .env.example).
set -euo pipefail

db="${OGIRI_LEDGER_DB:-ogiri_ledger}"
user="${OGIRI_LEDGER_USER:-ogiri}"
password="${OGIRI_LEDGER_PASSWORD:-ogiri}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v db="$db" -v user="$user" -v password="$password" <<'SQL'
CREATE ROLE :"user" WITH LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
echo "ogiri ledger: database ${db} owned by ${user} created"
