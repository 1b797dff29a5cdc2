-- The catalogue the service serves. Seed rows are inserted at startup (src/db.rs), not here,
-- so the schema stays separate from the demo data.
CREATE TABLE products (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
);

CREATE INDEX products_by_category ON products (category, id);
