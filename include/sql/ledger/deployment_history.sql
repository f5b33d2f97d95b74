-- Every deployment decision of an endpoint, newest first (skips and failures included).
SELECT * FROM deployments WHERE endpoint_name = :endpoint_name ORDER BY updated_at DESC, run_key DESC
