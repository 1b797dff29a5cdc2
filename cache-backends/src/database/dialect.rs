//! The SQL of each database: the schema (DDL) and every statement the tier issues, written
//! once per table when a tier is built.
//!
//! # Why scopes are ranges, not `LIKE`
//!
//! A scope (a cache or namespace) is every key starting with `{base}:` or `{base}#`.
//! Rather than `LIKE '{base}:%'`, whose `%`, `_` and escape character would have to be
//! escaped in every name (and whose escape rules and case sensitivity differ between
//! PostgreSQL, MySQL and SQLite), a scope is matched as two ranges of the key column:
//! `{base}:` ≤ key < `{base};` and `{base}#` ≤ key < `{base}$` (`;` and `$` are the bytes
//! after `:` and `#`). Keys are compared byte by byte (PostgreSQL `COLLATE "C"`, MySQL
//! `VARBINARY`, SQLite's default `BINARY`), so a key lies in the first range exactly when
//! it starts with `{base}:`: no character of any name can widen a clear, and the primary
//! key's index serves the range.

use std::fmt::Write as _;

use cache_core::store::Scope;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// The dialect of a URL, or what was expected (never echoing the URL).
    pub(crate) fn of_url(url: &str) -> Result<Self, String> {
        let dialect = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Dialect::MySql
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            return Err("a URL starting with postgres://, mysql:// or sqlite: (e.g. \"postgres://user@127.0.0.1:5432/app\", \"sqlite://var/cache.db\", \"sqlite::memory:\")".into());
        };
        let feature = dialect.feature();
        if !dialect.compiled() {
            return Err(format!(
                "a database this build supports: {} URLs need cachet's `{feature}` feature",
                dialect.name()
            ));
        }
        Ok(dialect)
    }

    /// The cargo feature bringing this dialect.
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The database's name, for descriptions.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    fn compiled(self) -> bool {
        match self {
            Dialect::Postgres => cfg!(feature = "postgres"),
            Dialect::MySql => cfg!(feature = "mysql"),
            Dialect::Sqlite => cfg!(feature = "sqlite"),
        }
    }

    /// The `n`th (from 1) bind parameter.
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
            Dialect::MySql => "?".into(),
        }
    }

    /// The server's clock in unix milliseconds, the same expression everywhere so every
    /// instance's expiries are compared with one clock (the database's).
    fn now_ms(self) -> &'static str {
        match self {
            Dialect::Postgres => "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT",
            Dialect::MySql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        }
    }
}

/// A validated table name: `name` or `schema.name`, each part letters, digits and `_`,
/// not starting with a digit, short enough for the index and tag table names derived
/// from it (PostgreSQL cuts identifiers at 63 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// As written: `name` or `schema.name`.
    pub(crate) full: String,
    /// The name without its schema, for index names.
    pub(crate) name: String,
}

/// The longest table name part: room for `_tags_expires_at` within 63 bytes.
const MAX_NAME: usize = 46;

impl Table {
    pub(crate) fn new(table: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "a table name of letters, digits and `_` (not starting with a digit, at most {MAX_NAME} characters), optionally `schema.table`, such as \"cachet_entries\""
            )
        };
        let parts: Vec<&str> = table.split('.').collect();
        if parts.len() > 2 {
            return Err(expected());
        }
        for part in &parts {
            let ok = !part.is_empty()
                && part.len() <= MAX_NAME
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !part.as_bytes()[0].is_ascii_digit();
            if !ok {
                return Err(expected());
            }
        }
        Ok(Self {
            full: table.to_owned(),
            name: parts[parts.len() - 1].to_owned(),
        })
    }

    /// The table of tag memberships: `{table}_tags`.
    pub(crate) fn tags(&self) -> String {
        format!("{}_tags", self.full)
    }
}

/// How many rows one batched delete (clear, prune) touches at most, so a big table is
/// never locked for long.
pub(crate) const BATCH: usize = 1000;
/// How many keys one `IN (..)` list carries at most (below every database's parameter
/// limit).
pub(crate) const IN_BATCH: usize = 500;
/// How many entries one batched upsert writes at most (3 parameters each, below every
/// database's parameter limit).
pub(crate) const SET_BATCH: usize = 200;
/// How many keys one scan step returns at most.
pub(crate) const SCAN_PAGE: usize = 500;

/// Every statement of one tier, built once.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) dialect: Dialect,
    /// `CREATE TABLE` / `CREATE INDEX` statements, in order.
    pub(crate) ddl: Vec<String>,
    /// Selects nothing from each table: fails when one is missing.
    pub(crate) probe: Vec<String>,
    /// (key) → the first `max_value_size + 1` bytes of a live entry.
    pub(crate) get: String,
    /// (key, value, ttl ms): upsert.
    pub(crate) set: String,
    /// (ttl ms, key, ttl ms): raises a live entry's expiry to `now + ttl`
    /// when sooner, never lowers it (time to idle).
    pub(crate) touch: String,
    /// (tag key, member key, ttl ms): upsert of a tag membership.
    pub(crate) tag: String,
    /// (lo1, hi1, lo2, hi2): one batch of a scope's entries.
    pub(crate) clear_entries: String,
    /// (lo1, hi1, lo2, hi2): one batch of a scope's tag memberships.
    pub(crate) clear_tags: String,
    /// (lo1, hi1, lo2, hi2, offset): one page of a scope's live keys.
    pub(crate) scan: String,
    /// (key, token, ttl ms): takes a free or expired lock.
    pub(crate) lock: String,
    /// (key): deletes an expired lock, before `lock` on MySQL.
    pub(crate) lock_expired: String,
    /// (key, token): deletes a live lock held by the token.
    pub(crate) unlock: String,
    /// One batch of expired entries.
    pub(crate) prune_entries: String,
    /// One batch of expired tag memberships.
    pub(crate) prune_tags: String,
    table: Table,
    /// The expression reading the first `max_value_size + 1` bytes of a value.
    read_value: String,
}

impl Statements {
    /// The statements of `table` on `dialect`, reading at most `max_value_size + 1` bytes.
    pub(crate) fn new(dialect: Dialect, table: &Table, max_value_size: usize) -> Self {
        let t = &table.full;
        let g = table.tags();
        let name = &table.name;
        let now = dialect.now_ms();
        let p = |n| dialect.param(n);
        let read_len = max_value_size.saturating_add(1).min(i32::MAX as usize);
        let ddl = match dialect {
            Dialect::Postgres => vec![
                format!("CREATE TABLE IF NOT EXISTS {t} (cache_key TEXT COLLATE \"C\" PRIMARY KEY, cache_value BYTEA NOT NULL, expires_at BIGINT NOT NULL)"),
                format!("CREATE INDEX IF NOT EXISTS {name}_expires_at ON {t} (expires_at)"),
                format!("CREATE TABLE IF NOT EXISTS {g} (tag_key TEXT COLLATE \"C\" NOT NULL, member_key TEXT COLLATE \"C\" NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (tag_key, member_key))"),
                format!("CREATE INDEX IF NOT EXISTS {name}_tags_expires_at ON {g} (expires_at)"),
            ],
            Dialect::MySql => vec![
                format!("CREATE TABLE IF NOT EXISTS {t} (cache_key VARBINARY(3000) NOT NULL PRIMARY KEY, cache_value LONGBLOB NOT NULL, expires_at BIGINT NOT NULL, INDEX {name}_expires_at (expires_at)) ENGINE=InnoDB"),
                format!("CREATE TABLE IF NOT EXISTS {g} (tag_key VARBINARY(1000) NOT NULL, member_key VARBINARY(2000) NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (tag_key, member_key), INDEX {name}_tags_expires_at (expires_at)) ENGINE=InnoDB"),
            ],
            Dialect::Sqlite => vec![
                format!("CREATE TABLE IF NOT EXISTS {t} (cache_key TEXT NOT NULL PRIMARY KEY, cache_value BLOB NOT NULL, expires_at INTEGER NOT NULL)"),
                format!("CREATE INDEX IF NOT EXISTS {name}_expires_at ON {t} (expires_at)"),
                format!("CREATE TABLE IF NOT EXISTS {g} (tag_key TEXT NOT NULL, member_key TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (tag_key, member_key))"),
                format!("CREATE INDEX IF NOT EXISTS {name}_tags_expires_at ON {g} (expires_at)"),
            ],
        };
        let probe = vec![
            format!("SELECT 1 FROM {t} WHERE 1 = 0"),
            format!("SELECT 1 FROM {g} WHERE 1 = 0"),
        ];
        let substr = match dialect {
            Dialect::Postgres => format!("substring(cache_value FROM 1 FOR {read_len})"),
            Dialect::MySql => format!("SUBSTRING(cache_value, 1, {read_len})"),
            Dialect::Sqlite => format!("substr(cache_value, 1, {read_len})"),
        };
        let get = format!(
            "SELECT {substr} FROM {t} WHERE cache_key = {} AND expires_at > {now}",
            p(1)
        );
        let upsert = |table: &str, cols: &str, conflict: &str, update: &[&str]| {
            let values = format!("{}, {}, {now} + {}", p(1), p(2), p(3));
            let mut sql = format!("INSERT INTO {table} ({cols}) VALUES ({values}) ");
            match dialect {
                Dialect::MySql => {
                    sql.push_str("ON DUPLICATE KEY UPDATE ");
                    let sets: Vec<String> = update
                        .iter()
                        .map(|c| format!("{c} = VALUES({c})"))
                        .collect();
                    sql.push_str(&sets.join(", "));
                }
                _ => {
                    let _ = write!(sql, "ON CONFLICT ({conflict}) DO UPDATE SET ");
                    let sets: Vec<String> = update
                        .iter()
                        .map(|c| format!("{c} = excluded.{c}"))
                        .collect();
                    sql.push_str(&sets.join(", "));
                }
            }
            sql
        };
        let set = upsert(
            t,
            "cache_key, cache_value, expires_at",
            "cache_key",
            &["cache_value", "expires_at"],
        );
        let tag = upsert(
            &g,
            "tag_key, member_key, expires_at",
            "tag_key, member_key",
            &["expires_at"],
        );
        let in_scope = |col: &str| {
            format!(
                "(({col} >= {} AND {col} < {}) OR ({col} >= {} AND {col} < {}))",
                p(1),
                p(2),
                p(3),
                p(4)
            )
        };
        let batched_delete = |table: &str, cond: &str| {
            match dialect {
            Dialect::Postgres => format!(
                "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {cond} LIMIT {BATCH})"
            ),
            Dialect::MySql => format!("DELETE FROM {table} WHERE {cond} LIMIT {BATCH}"),
            Dialect::Sqlite => format!(
                "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {cond} LIMIT {BATCH})"
            ),
        }
        };
        let key_out = match dialect {
            Dialect::MySql => "CAST(cache_key AS CHAR CHARACTER SET utf8mb4)",
            _ => "cache_key",
        };
        let scan = format!(
            "SELECT {key_out} FROM {t} WHERE {} AND expires_at > {now} ORDER BY cache_key LIMIT {SCAN_PAGE} OFFSET {}",
            in_scope("cache_key"),
            p(5)
        );
        let lock = match dialect {
            // Inserted only when no row is there: `lock_expired` removes an expired one
            // first. (An upsert's affected-row count is ambiguous on MySQL.)
            Dialect::MySql => format!(
                "INSERT IGNORE INTO {t} (cache_key, cache_value, expires_at) VALUES (?, ?, {now} + ?)"
            ),
            _ => format!(
                "INSERT INTO {t} (cache_key, cache_value, expires_at) VALUES ({}, {}, {now} + {}) ON CONFLICT (cache_key) DO UPDATE \
                 SET cache_value = excluded.cache_value, expires_at = excluded.expires_at WHERE {t}.expires_at <= {now}",
                p(1),
                p(2),
                p(3)
            ),
        };
        let lock_expired = format!(
            "DELETE FROM {t} WHERE cache_key = {} AND expires_at <= {now}",
            p(1)
        );
        let unlock = format!(
            "DELETE FROM {t} WHERE cache_key = {} AND cache_value = {} AND expires_at > {now}",
            p(1),
            p(2)
        );
        let expired = format!("expires_at <= {now}");
        // Raise-only: a live entry whose expiry is sooner than the new one. A touch is
        // computed from the copy its caller last saw; a newer entry written meanwhile (by
        // another instance) may live longer, and must not be cut short. (Not `GREATEST`:
        // the matched-row count would then say "live" where Redis' `GT` says "raised".)
        let touch = format!(
            "UPDATE {t} SET expires_at = {now} + {} WHERE cache_key = {} AND expires_at > {now} AND expires_at < {now} + {}",
            p(1),
            p(2),
            p(3)
        );
        Self {
            dialect,
            ddl,
            probe,
            get,
            set,
            touch,
            tag,
            clear_entries: batched_delete(t, &in_scope("cache_key")),
            clear_tags: batched_delete(&g, &in_scope("tag_key")),
            scan,
            lock,
            lock_expired,
            unlock,
            prune_entries: batched_delete(t, &expired),
            prune_tags: batched_delete(&g, &expired),
            table: table.clone(),
            read_value: substr,
        }
    }

    /// (n keys) → the key and the first `max_value_size + 1` bytes of each live entry
    /// among them (PostgreSQL: `= ANY($1)`, one array).
    pub(crate) fn get_keys(&self, n: usize) -> String {
        let t = &self.table.full;
        let key_out = match self.dialect {
            Dialect::MySql => "CAST(cache_key AS CHAR CHARACTER SET utf8mb4)",
            _ => "cache_key",
        };
        format!(
            "SELECT {key_out}, {} FROM {t} WHERE cache_key {} AND expires_at > {}",
            self.read_value,
            self.in_list(1, n),
            self.dialect.now_ms()
        )
    }

    /// (key, value, ttl ms) × n: the upsert of `n` entries in one statement. The keys
    /// must be distinct (PostgreSQL refuses to update one row twice in one statement).
    pub(crate) fn set_rows(&self, n: usize) -> String {
        let t = &self.table.full;
        let now = self.dialect.now_ms();
        let rows: Vec<String> = (0..n)
            .map(|row| {
                let p = |i: usize| self.dialect.param(row * 3 + i);
                format!("({}, {}, {now} + {})", p(1), p(2), p(3))
            })
            .collect();
        let rows = rows.join(", ");
        match self.dialect {
            Dialect::MySql => format!(
                "INSERT INTO {t} (cache_key, cache_value, expires_at) VALUES {rows} \
                 ON DUPLICATE KEY UPDATE cache_value = VALUES(cache_value), expires_at = VALUES(expires_at)"
            ),
            _ => format!(
                "INSERT INTO {t} (cache_key, cache_value, expires_at) VALUES {rows} \
                 ON CONFLICT (cache_key) DO UPDATE SET cache_value = excluded.cache_value, expires_at = excluded.expires_at"
            ),
        }
    }

    /// `DELETE FROM {table} WHERE cache_key IN (..n..)` (PostgreSQL: `= ANY($1)`, one array).
    pub(crate) fn delete_keys(&self, n: usize) -> String {
        let t = &self.table.full;
        format!("DELETE FROM {t} WHERE cache_key {}", self.in_list(1, n))
    }

    /// `SELECT DISTINCT member_key FROM {tags} WHERE tag_key IN (..n..)` of live memberships.
    pub(crate) fn tagged(&self, n: usize) -> String {
        let g = self.table.tags();
        let key_out = match self.dialect {
            Dialect::MySql => "CAST(member_key AS CHAR CHARACTER SET utf8mb4)",
            _ => "member_key",
        };
        format!(
            "SELECT DISTINCT {key_out} FROM {g} WHERE tag_key {} AND expires_at > {}",
            self.in_list(1, n),
            self.dialect.now_ms()
        )
    }

    /// Deletes the memberships of `keys` (n) in `tags` (m).
    pub(crate) fn untag(&self, tags: usize, keys: usize) -> String {
        let g = self.table.tags();
        format!(
            "DELETE FROM {g} WHERE tag_key {} AND member_key {}",
            self.in_list(1, tags),
            self.in_list(
                if self.dialect == Dialect::Postgres {
                    2
                } else {
                    tags + 1
                },
                keys
            )
        )
    }

    /// `IN (p_from, ..)` of `n` parameters, or `= ANY(p_from)` (one array) on PostgreSQL.
    fn in_list(&self, from: usize, n: usize) -> String {
        if self.dialect == Dialect::Postgres {
            return format!("= ANY({})", self.dialect.param(from));
        }
        let params: Vec<String> = (from..from + n).map(|i| self.dialect.param(i)).collect();
        format!("IN ({})", params.join(", "))
    }

    /// The DDL as one script, for the error that shows it.
    pub(crate) fn ddl_script(&self) -> String {
        self.ddl
            .iter()
            .map(|s| format!("{s};"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The two key ranges of a scope, `[start, end)` for each of its [`Scope::starts`]
/// (`[{base}:, {base};)` and `[{base}#, {base}$)`): every key with that start, and only
/// those, under byte order.
pub(crate) fn scope_ranges(scope: &Scope) -> [String; 4] {
    let [entries, namespaces] = scope.starts();
    let (entries_end, namespaces_end) = (past(&entries), past(&namespaces));
    [entries, entries_end, namespaces, namespaces_end]
}

/// The least string after every string starting with `start`, under byte order: `start`
/// with its last character one higher (a scope's starts end in an ASCII separator, `:` or
/// `#`, so `;` or `$`).
fn past(start: &str) -> String {
    let mut end = start.to_owned();
    if let Some(last) = end.pop() {
        end.push(char::from_u32(u32::from(last) + 1).unwrap_or(char::MAX));
    }
    end
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scope_ranges_hold_exactly_the_scope_under_byte_order() {
        assert_eq!(
            scope_ranges(&Scope::new("app:c")),
            ["app:c:", "app:c;", "app:c#", "app:c$"]
        );
        let scope = Scope::new("app:c#a_b%");
        let [lo1, hi1, lo2, hi2] = scope_ranges(&scope);
        for key in [
            "app:c#a_b%:1",
            "app:c#a_b%#x:1",
            "app:c#a_b%",
            "app:c#aXb%:1",
            "app:c#a_b%;",
            "app:c#a_b%$",
            "app:c#a_b%:",
            "app:c#a_b%\u{10FFFF}",
            "app:c#a_b%:\u{10FFFF}",
            "app:c#a_b",
        ] {
            let b = key.as_bytes();
            let in_ranges = (b >= lo1.as_bytes() && b < hi1.as_bytes())
                || (b >= lo2.as_bytes() && b < hi2.as_bytes());
            let contained = scope.contains(key) || key == "app:c#a_b%:" || key == "app:c#a_b%#";
            assert_eq!(in_ranges, contained, "{key}");
        }
    }

    #[test]
    fn table_names_are_identifiers() {
        assert_eq!(Table::new("cachet_entries").unwrap().name, "cachet_entries");
        let t = Table::new("app.cache").unwrap();
        assert_eq!((t.full.as_str(), t.name.as_str()), ("app.cache", "cache"));
        assert_eq!(t.tags(), "app.cache_tags");
        for bad in ["", "a b", "a;b", "a.b.c", "9a", "a-b", "\"a\""] {
            assert!(Table::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_name_their_dialect() {
        assert!(Dialect::of_url("redis://h").is_err());
        assert!(!Dialect::of_url("oracle://u:pw@h")
            .unwrap_err()
            .contains("pw"));
    }
}
