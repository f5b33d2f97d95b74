-- The UI's monitoring page: every endpoint that has monitoring windows (its endpoint picker).
SELECT DISTINCT endpoint_name FROM monitoring_windows ORDER BY endpoint_name
