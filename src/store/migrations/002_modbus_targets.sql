-- Modbus TCP poll targets: where a device with protocol 'modbus' is polled (the gateway and the unit id behind it).

ALTER TABLE devices
  ADD COLUMN modbus_host              text,
  ADD COLUMN modbus_port              integer CHECK (modbus_port BETWEEN 1 AND 65535),
  ADD COLUMN modbus_unit_id           integer CHECK (modbus_unit_id BETWEEN 1 AND 255),
  ADD COLUMN modbus_poll_interval_ms  integer CHECK (modbus_poll_interval_ms BETWEEN 100 AND 3600000),
  -- All four or none, and only on Modbus devices (those created before this migration have none: not polled).
  ADD CONSTRAINT devices_modbus_target CHECK (
    (modbus_host IS NULL AND modbus_port IS NULL AND modbus_unit_id IS NULL AND modbus_poll_interval_ms IS NULL)
    OR (protocol = 'modbus' AND modbus_host IS NOT NULL AND modbus_port IS NOT NULL AND modbus_unit_id IS NOT NULL
        AND modbus_poll_interval_ms IS NOT NULL)
  );

CREATE INDEX devices_modbus ON devices (id) WHERE modbus_host IS NOT NULL;
