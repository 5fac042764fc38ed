-- Raising an alert in one round trip: the rule engine's hot path (a fire alarm) waits for it before the live message
-- goes out, so the lock, the insert or recurrence and the transition are one statement instead of five.
-- Returns {change: 'opened' | 'recurred' | null, transitionId, alert}; null change: already open and active.
CREATE FUNCTION alert_raise(
  p_unit text, p_device text, p_point text, p_rule text, p_class text, p_trouble text, p_severity text,
  p_title text, p_detail jsonb, p_at timestamptz, p_verification text, p_isolation_expires timestamptz
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a alerts;
  t bigint;
BEGIN
  SELECT * INTO a FROM alerts
   WHERE unit_id = p_unit AND device_id = p_device AND point = p_point AND rule_id = p_rule AND status <> 'resolved'
   FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO alerts (unit_id, device_id, point, rule_id, class, trouble_type, severity, title, detail,
                        first_seen, last_seen, verification, isolation_expires_at)
    VALUES (p_unit, p_device, p_point, p_rule, p_class, p_trouble, p_severity, p_title, p_detail,
            p_at, p_at, p_verification, p_isolation_expires)
    RETURNING * INTO a;
    INSERT INTO alert_transitions (alert_id, action, actor, comment, from_status, to_status, data)
    VALUES (a.id, 'opened', 'system', NULL, NULL, 'open', p_detail) RETURNING id INTO t;
    RETURN jsonb_build_object('change', 'opened', 'transitionId', t, 'alert', to_jsonb(a));
  END IF;
  IF a.active THEN
    RETURN jsonb_build_object('change', NULL, 'transitionId', NULL, 'alert', to_jsonb(a));
  END IF;
  UPDATE alerts SET active = true, count = count + 1, last_seen = greatest(last_seen, p_at), cleared_at = NULL,
                    detail = detail || p_detail
   WHERE id = a.id RETURNING * INTO a;
  INSERT INTO alert_transitions (alert_id, action, actor, comment, from_status, to_status, data)
  VALUES (a.id, 'recurred', 'system', NULL, a.status, a.status, p_detail) RETURNING id INTO t;
  RETURN jsonb_build_object('change', 'recurred', 'transitionId', t, 'alert', to_jsonb(a));
END
$$;
