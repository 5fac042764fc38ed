-- GB/T 26875.3 UITDs: the 6-byte source address of their frames, the only identity the protocol carries (it has no
-- credentials). 12 lowercase hex digits in wire order; one device per address; only on gb26875 devices. Devices of
-- that protocol created before this migration have none: their frames are denied as from an unknown address.

ALTER TABLE devices
  ADD COLUMN gb26875_address text CHECK (gb26875_address ~ '^[0-9a-f]{12}$'),
  ADD CONSTRAINT devices_gb26875_address_protocol CHECK (gb26875_address IS NULL OR protocol = 'gb26875');

CREATE UNIQUE INDEX devices_gb26875_address ON devices (gb26875_address) WHERE gb26875_address IS NOT NULL;
