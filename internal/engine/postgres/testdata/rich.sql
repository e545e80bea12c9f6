CREATE SCHEMA app;
CREATE SCHEMA "Mixed Schema";
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0);
CREATE SEQUENCE app.ticket_seq START 1000 INCREMENT 7;
SELECT setval('app.ticket_seq', 4242, true);

CREATE TABLE app.users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  "Email" varchar(200) UNIQUE,
  tags text[],
  prefs jsonb,
  raw json,
  avatar bytea,
  balance numeric(12,2) DEFAULT 0,
  created timestamptz NOT NULL DEFAULT now(),
  mood app.mood,
  score app.posint,
  name_len int GENERATED ALWAYS AS (length(name)) STORED,
  ratio double precision,
  day date,
  t time
);
COMMENT ON TABLE app.users IS 'people';
COMMENT ON COLUMN app.users.name IS 'full name';

CREATE TABLE "Mixed Schema"."OrderItems" (
  "OrderID" integer NOT NULL,
  "Line" smallint NOT NULL,
  user_id bigint REFERENCES app.users(id) DEFERRABLE INITIALLY DEFERRED,
  ticket integer DEFAULT nextval('app.ticket_seq'),
  "Qty" integer,
  PRIMARY KEY ("OrderID", "Line")
);

CREATE TABLE app.events (
  id serial,
  at timestamptz NOT NULL,
  payload jsonb,
  PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE app.events_2023 PARTITION OF app.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_payload_idx ON app.events USING gin (payload);

CREATE TABLE app.nopk (a int, b text, c json);
CREATE TABLE app.empty (id int PRIMARY KEY, v text);
CREATE TABLE public."weird name.with dot" ("a""quote" int PRIMARY KEY, "tab	col" text);

CREATE VIEW app.user_names AS SELECT id, name FROM app.users;
CREATE MATERIALIZED VIEW app.user_counts AS SELECT mood, count(*) AS n FROM app.users GROUP BY mood;
CREATE UNIQUE INDEX user_counts_mood ON app.user_counts (mood);

CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW."Qty" := coalesce(NEW."Qty", 1);
  RETURN NEW;
END $$;
CREATE TRIGGER order_items_touch BEFORE INSERT ON "Mixed Schema"."OrderItems" FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE INDEX users_name_idx ON app.users (lower(name));

INSERT INTO app.users (name, "Email", tags, prefs, raw, avatar, balance, created, mood, score, ratio, day, t) VALUES
 ('Ann', 'ann@example.com', ARRAY['a','b c','"q"'], '{"x": 1, "y": [1,2]}', '{"raw" :  true}', '\x00010203ff', 12.5, '2024-01-02 03:04:05.123456+02', 'happy', 3, 0.1, '2024-02-29', '13:14:15'),
 ('Bob	Tab', NULL, '{}', NULL, NULL, '', -0.01, '1999-12-31 23:59:59+00', 'sad', NULL, 'NaN', NULL, NULL),
 (E'Line\nBreak \\ back', 'b@example.com', ARRAY[NULL,'x'], '[]', 'null', '\x5c', 99999999.99, '2030-06-01 00:00:00+00', NULL, 1, '-Infinity', '0001-01-01', '00:00:00'),
 ('Zoë 😀', 'z@example.com', NULL, '{"k":"ü"}', '"s"', NULL, 0, now(), 'ok', 7, 1e300, NULL, NULL);
INSERT INTO "Mixed Schema"."OrderItems" ("OrderID", "Line", user_id, "Qty") VALUES (1, 1, 1, NULL), (1, 2, 2, 5), (2, 1, 3, 9);
INSERT INTO app.events (at, payload) SELECT '2023-06-01'::timestamptz + (i || ' days')::interval, jsonb_build_object('i', i) FROM generate_series(1, 300) i;
INSERT INTO app.nopk VALUES (1, 'x', '{}'), (1, 'x', '{}'), (NULL, NULL, NULL), (2, 'NULL', '[1]'), (3, '', 'null');
INSERT INTO public."weird name.with dot" VALUES (1, 'one'), (2, E'two\\');
REFRESH MATERIALIZED VIEW app.user_counts;
GRANT SELECT ON app.users TO PUBLIC;
