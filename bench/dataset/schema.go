package dataset

// Engines the schema is written for.
const (
	Postgres = "pg"
	MySQL    = "mysql"
	SQLite   = "sqlite"
)

// Schema returns the statements that create the tables (before the data).
func Schema(engine string) []string {
	switch engine {
	case Postgres:
		return []string{
			`CREATE TABLE customers (id bigint NOT NULL, name text NOT NULL, email text NOT NULL, phone text,
				street text, city text, country char(2), created_at timestamptz NOT NULL, notes text)`,
			`CREATE TABLE products (id bigint NOT NULL, sku text NOT NULL, name text NOT NULL, category text NOT NULL,
				description text, price numeric(12,2) NOT NULL, stock integer NOT NULL, created_at timestamptz NOT NULL)`,
			`CREATE TABLE orders (id bigint NOT NULL, customer_id bigint NOT NULL, status text NOT NULL,
				currency char(3) NOT NULL, total numeric(12,2) NOT NULL, shipping_address text,
				created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)`,
			`CREATE TABLE order_items (id bigint NOT NULL, order_id bigint NOT NULL, product_id bigint NOT NULL,
				quantity integer NOT NULL, unit_price numeric(12,2) NOT NULL, discount numeric(12,2) NOT NULL)`,
			`CREATE TABLE events (id bigint NOT NULL, customer_id bigint NOT NULL, type text NOT NULL,
				occurred_at timestamptz NOT NULL, payload jsonb NOT NULL)`,
		}
	case MySQL:
		const opts = ` ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`
		return []string{
			`CREATE TABLE customers (id bigint NOT NULL PRIMARY KEY, name varchar(200) NOT NULL, email varchar(255) NOT NULL,
				phone varchar(40), street varchar(200), city varchar(100), country char(2), created_at datetime(6) NOT NULL,
				notes text)` + opts,
			`CREATE TABLE products (id bigint NOT NULL PRIMARY KEY, sku varchar(40) NOT NULL, name varchar(200) NOT NULL,
				category varchar(40) NOT NULL, description text, price decimal(12,2) NOT NULL, stock int NOT NULL,
				created_at datetime(6) NOT NULL)` + opts,
			`CREATE TABLE orders (id bigint NOT NULL PRIMARY KEY, customer_id bigint NOT NULL, status varchar(20) NOT NULL,
				currency char(3) NOT NULL, total decimal(12,2) NOT NULL, shipping_address varchar(300),
				created_at datetime(6) NOT NULL, updated_at datetime(6) NOT NULL)` + opts,
			`CREATE TABLE order_items (id bigint NOT NULL PRIMARY KEY, order_id bigint NOT NULL, product_id bigint NOT NULL,
				quantity int NOT NULL, unit_price decimal(12,2) NOT NULL, discount decimal(12,2) NOT NULL)` + opts,
			`CREATE TABLE events (id bigint NOT NULL PRIMARY KEY, customer_id bigint NOT NULL, type varchar(40) NOT NULL,
				occurred_at datetime(6) NOT NULL, payload json NOT NULL)` + opts,
		}
	case SQLite:
		return []string{
			`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, phone TEXT,
				street TEXT, city TEXT, country TEXT, created_at TEXT NOT NULL, notes TEXT)`,
			`CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL, category TEXT NOT NULL,
				description TEXT, price NUMERIC NOT NULL, stock INTEGER NOT NULL, created_at TEXT NOT NULL)`,
			`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
				status TEXT NOT NULL, currency TEXT NOT NULL, total NUMERIC NOT NULL, shipping_address TEXT,
				created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
			`CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
				product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
				unit_price NUMERIC NOT NULL, discount NUMERIC NOT NULL)`,
			`CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
				type TEXT NOT NULL, occurred_at TEXT NOT NULL, payload TEXT NOT NULL)`,
		}
	}
	return nil
}

// PostData returns the statements run after the data is loaded: keys,
// indexes and foreign keys.
func PostData(engine string) []string {
	switch engine {
	case Postgres:
		return []string{
			`ALTER TABLE customers ADD PRIMARY KEY (id)`,
			`ALTER TABLE products ADD PRIMARY KEY (id)`,
			`ALTER TABLE orders ADD PRIMARY KEY (id)`,
			`ALTER TABLE order_items ADD PRIMARY KEY (id)`,
			`ALTER TABLE events ADD PRIMARY KEY (id)`,
			`CREATE UNIQUE INDEX customers_email_key ON customers (email)`,
			`CREATE UNIQUE INDEX products_sku_key ON products (sku)`,
			`CREATE INDEX orders_customer_idx ON orders (customer_id)`,
			`CREATE INDEX orders_created_idx ON orders (created_at)`,
			`CREATE INDEX order_items_order_idx ON order_items (order_id)`,
			`CREATE INDEX events_customer_time_idx ON events (customer_id, occurred_at)`,
			`ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)`,
			`ALTER TABLE order_items ADD CONSTRAINT order_items_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)`,
			`ALTER TABLE order_items ADD CONSTRAINT order_items_product_fk FOREIGN KEY (product_id) REFERENCES products (id)`,
			`ALTER TABLE events ADD CONSTRAINT events_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)`,
		}
	case MySQL:
		return []string{
			`ALTER TABLE customers ADD UNIQUE KEY customers_email_key (email)`,
			`ALTER TABLE products ADD UNIQUE KEY products_sku_key (sku)`,
			`ALTER TABLE orders ADD KEY orders_created_idx (created_at),
				ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)`,
			`ALTER TABLE order_items ADD CONSTRAINT order_items_order_fk FOREIGN KEY (order_id) REFERENCES orders (id),
				ADD CONSTRAINT order_items_product_fk FOREIGN KEY (product_id) REFERENCES products (id)`,
			`ALTER TABLE events ADD KEY events_customer_time_idx (customer_id, occurred_at),
				ADD CONSTRAINT events_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)`,
		}
	case SQLite:
		return []string{
			`CREATE INDEX orders_customer_idx ON orders (customer_id)`,
			`CREATE INDEX orders_created_idx ON orders (created_at)`,
			`CREATE INDEX order_items_order_idx ON order_items (order_id)`,
			`CREATE INDEX events_customer_time_idx ON events (customer_id, occurred_at)`,
		}
	}
	return nil
}
