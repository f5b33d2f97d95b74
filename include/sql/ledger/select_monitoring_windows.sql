-- The monitored windows of one endpoint, newest first.
SELECT * FROM monitoring_windows WHERE endpoint_name = :endpoint_name ORDER BY window_start DESC
