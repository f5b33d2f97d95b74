-- The UI's monitoring page: an endpoint's latest monitoring windows, newest first.
SELECT * FROM monitoring_windows WHERE endpoint_name = :endpoint_name ORDER BY window_start DESC LIMIT :limit
