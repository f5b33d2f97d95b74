-- The SNS message id of the alert sent for one window.
UPDATE monitoring_windows SET alert_message_id = :alert_message_id, updated_at = :now
WHERE endpoint_name = :endpoint_name AND window_start = :window_start
